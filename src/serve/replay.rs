//! Replay: re-delivers what the bus holds for a time window to one rule's targets. The bus is the archive, so
//! nothing is copied: the window is found with the log's time index, read once, matched against the rule as it
//! is now, and each match is handed to the rule's lanes like a live event (retries and dead-lettering apply).
//! Replayed events are already settled at the source, so they never hold back the router's commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use busbar_rules::{Event, MatchScratch};
use busbar_runtime::bus::Bus;
use busbar_runtime::envelope::Envelope;
use busbar_runtime::router::Router;
use busbar_runtime::router::lane::Work;
use serde::Serialize;

/// What to replay.
#[derive(Debug, Clone)]
pub struct Request {
    pub rule: String,
    /// Only this target of the rule; all of them when `None`.
    pub target: Option<String>,
    /// Window start, Unix milliseconds (inclusive).
    pub from_ms: i64,
    /// Window end, Unix milliseconds (exclusive); up to what the bus holds when the replay starts if `None`.
    pub to_ms: Option<i64>,
}

/// A replay's progress, shared with whoever asks.
#[derive(Debug, Default)]
pub struct Progress {
    /// Records in the window, over all partitions (known once the window is resolved).
    pub total: AtomicU64,
    pub scanned: AtomicU64,
    pub matched: AtomicU64,
    /// Events handed to a target's lane (one per matched record and selected target).
    pub queued: AtomicU64,
    pub done: AtomicBool,
    pub error: std::sync::Mutex<Option<String>>,
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub total: u64,
    pub scanned: u64,
    pub matched: u64,
    pub queued: u64,
    pub done: bool,
    pub error: Option<String>,
}

impl Progress {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            total: self.total.load(Ordering::Relaxed),
            scanned: self.scanned.load(Ordering::Relaxed),
            matched: self.matched.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Acquire),
            error: self.error.lock().expect("replay error lock").clone(),
        }
    }
}

/// Why a replay cannot start: names the missing thing and what exists.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("pipeline {pipeline} has no rule named {rule:?}; its rules are: {known}")]
    UnknownRule { pipeline: String, rule: String, known: String },
    #[error("rule {rule:?} has no target named {target:?}; its targets are: {known}")]
    UnknownTarget { rule: String, target: String, known: String },
    #[error("the window is empty: --to ({to}) is not after --from ({from})")]
    EmptyWindow { from: i64, to: i64 },
}

/// Checks the request against the router's current routes; on success the replay can run.
pub fn check<B: Bus>(pipeline: &str, router: &Router<B>, request: &Request) -> Result<(), Invalid> {
    let routes = router.routes();
    let Some(rule) = routes.rules.iter().find(|r| r.name == request.rule) else {
        let known: Vec<&str> = routes.rules.iter().map(|r| r.name.as_str()).collect();
        return Err(Invalid::UnknownRule {
            pipeline: pipeline.to_owned(),
            rule: request.rule.clone(),
            known: known.join(", "),
        });
    };
    if let Some(target) = &request.target
        && !rule.lanes.iter().any(|lane| &lane.config().target == target)
    {
        let known: Vec<&str> = rule.lanes.iter().map(|lane| lane.config().target.as_str()).collect();
        return Err(Invalid::UnknownTarget { rule: request.rule.clone(), target: target.clone(), known: known.join(", ") });
    }
    if let Some(to) = request.to_ms
        && to <= request.from_ms
    {
        return Err(Invalid::EmptyWindow { from: request.from_ms, to });
    }
    Ok(())
}

/// Runs a checked replay to its end, updating `progress`.
pub async fn run<B: Bus>(bus: Arc<B>, router: Arc<Router<B>>, request: Request, progress: Arc<Progress>) {
    if let Err(err) = replay(&*bus, &router, &request, &progress).await {
        *progress.error.lock().expect("replay error lock") = Some(err);
    }
    progress.done.store(true, Ordering::Release);
}

async fn replay<B: Bus>(bus: &B, router: &Router<B>, request: &Request, progress: &Progress) -> Result<(), String> {
    let topic = router.topic().to_owned();
    let partitions = bus.partition_count(&topic).await.map_err(|e| e.to_string())?;
    let mut windows = Vec::new();
    for partition in 0..partitions {
        let start = bus.offset_for_time(&topic, partition, request.from_ms).await.map_err(|e| e.to_string())?;
        let end = match request.to_ms {
            Some(to) => bus.offset_for_time(&topic, partition, to).await.map_err(|e| e.to_string())?,
            None => bus.offsets(&topic, partition).await.map_err(|e| e.to_string())?.1,
        };
        if end > start {
            windows.push((partition, start, end));
            progress.total.fetch_add((end - start) as u64, Ordering::Relaxed);
        }
    }
    let mut scratch = MatchScratch::new();
    let mut matched = Vec::new();
    for (partition, start, end) in windows {
        let mut position = start;
        let mut empty_reads = 0;
        while position < end {
            let records = bus
                .fetch(&topic, partition, position, 1 << 20, Duration::from_millis(100))
                .await
                .map_err(|e| e.to_string())?;
            if records.is_empty() {
                // Records removed by retention or DeleteRecords while we read: the window is shorter.
                let (earliest, latest) = bus.offsets(&topic, partition).await.map_err(|e| e.to_string())?;
                if position < earliest {
                    position = earliest;
                    continue;
                }
                if position >= latest {
                    break;
                }
                empty_reads += 1;
                if empty_reads > 50 {
                    return Err(format!("{topic}/{partition}: no record readable at offset {position} (log ends at {latest})"));
                }
                continue;
            }
            empty_reads = 0;
            for fetched in records {
                if fetched.offset < position || fetched.offset >= end {
                    continue;
                }
                position = fetched.offset + 1;
                progress.scanned.fetch_add(1, Ordering::Relaxed);
                // The routes as they are now: a replay after a reload uses the new pattern and targets.
                let routes = router.routes();
                let Some(rule_id) = routes.rules.iter().position(|r| r.name == request.rule) else {
                    return Err(format!("rule {:?} was removed by a reload during the replay", request.rule));
                };
                let event = Envelope::from_record(&topic, &fetched);
                let view = match event.bytes() {
                    Some(bytes) => Event::Json(bytes),
                    None => Event::Value(event.value()),
                };
                if routes.matcher.matches_into(&view, &mut scratch, &mut matched).is_err()
                    || !matched.contains(&rule_id)
                {
                    continue;
                }
                progress.matched.fetch_add(1, Ordering::Relaxed);
                let event = Arc::new(event);
                for lane in &routes.rules[rule_id].lanes {
                    if request.target.as_ref().is_some_and(|t| &lane.config().target != t) {
                        continue;
                    }
                    lane.offer(Work { origin: None, key: fetched.record.key.clone(), event: event.clone() }).await;
                    progress.queued.fetch_add(1, Ordering::Relaxed);
                }
            }
            if position >= end {
                break;
            }
        }
    }
    Ok(())
}
