//! The router: reads each bus record once, matches it against every rule of its pipeline in one pass, and hands
//! the matches to per-target delivery lanes with retries, dead-lettering and commit tracking.
//!
//! - `progress.rs`: which source offsets may be committed (lowest record some target still owes).
//! - `retry.rs`: the retry policy (attempts, age, exponential backoff with jitter).
//! - `target.rs`: the [`Target`] trait a sink implements; `lane.rs`: queue, batching, retry, DLQ, parking.
//! - this file: [`Router`], the per-partition read loops and the committer, with hot-swappable [`Routes`].

pub mod lane;
pub mod progress;
pub mod retry;
pub mod target;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use busbar_rules::{Event, MatchScratch, Matcher};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::bus::{Bus, BusError, Fetched};
use crate::envelope::Envelope;
use lane::{Lane, Settle, Work};
use progress::PartitionProgress;

pub use lane::{LaneConfig, LaneStats, Prepare};
pub use retry::RetryPolicy;
pub use target::{Delivery, Outcome, Target};

/// The compiled rules of one bus topic and where each rule's matches go. Swapped whole on reload.
pub struct Routes<B> {
    pub matcher: Matcher,
    /// Indexed by the matcher's rule id: the rule's name and its lanes (one per target).
    pub rules: Vec<RouteRule<B>>,
}

pub struct RouteRule<B> {
    pub name: String,
    pub lanes: Vec<Arc<Lane<B>>>,
}

/// Settlement bookkeeping of every partition of the router's topic, shared with its lanes.
#[derive(Clone, Default)]
pub struct Progress(Arc<Mutex<HashMap<i32, PartitionProgress>>>);

impl Progress {
    /// The callback lanes use to settle a source record.
    pub fn settler(&self) -> Settle {
        let inner = self.0.clone();
        Arc::new(move |partition, offset| {
            if let Some(p) = inner.lock().expect("progress lock").get_mut(&partition) {
                p.settled(offset);
            }
        })
    }

    fn with<R>(&self, partition: i32, f: impl FnOnce(&mut PartitionProgress) -> R) -> Option<R> {
        self.0.lock().expect("progress lock").get_mut(&partition).map(f)
    }

    /// Records still owed by some target, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.0.lock().expect("progress lock").values().map(PartitionProgress::in_flight).sum()
    }
}

/// Counters of a router, for metrics and the API.
#[derive(Debug, Default)]
pub struct RouterStats {
    pub records_read: AtomicU64,
    pub records_matched: AtomicU64,
    /// Matches per rule name.
    pub rule_matches: Mutex<HashMap<String, u64>>,
}

/// Routes one bus topic. The consumer group `group` holds its committed positions.
pub struct Router<B> {
    bus: Arc<B>,
    topic: String,
    group: String,
    routes: RwLock<Arc<Routes<B>>>,
    progress: Progress,
    stats: RouterStats,
}

impl<B: Bus> Router<B> {
    pub fn new(bus: Arc<B>, topic: String, group: String, routes: Routes<B>, progress: Progress) -> Arc<Self> {
        Arc::new(Self {
            bus,
            topic,
            group,
            routes: RwLock::new(Arc::new(routes)),
            progress,
            stats: RouterStats::default(),
        })
    }

    /// Replaces the rules and targets. Records read after the swap use the new routes; events already queued on
    /// a lane that is no longer routed are still delivered (the old lane drains, then stops).
    pub fn swap_routes(&self, routes: Routes<B>) {
        *self.routes.write().expect("routes lock") = Arc::new(routes);
    }

    pub fn routes(&self) -> Arc<Routes<B>> {
        self.routes.read().expect("routes lock").clone()
    }

    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Reads every partition from its committed position until `shutdown` turns true, then commits what is
    /// settled and returns.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
        let partitions = self.bus.partition_count(&self.topic).await?;
        let mut tasks = JoinSet::new();
        for partition in 0..partitions {
            let start = match self.bus.committed(&self.group, &self.topic, partition).await? {
                Some(position) => position,
                None => self.bus.offsets(&self.topic, partition).await?.0,
            };
            self.progress.0.lock().expect("progress lock").insert(partition, PartitionProgress::new(start));
            tasks.spawn(self.clone().read_partition(partition, start, shutdown.clone()));
        }
        tasks.spawn(self.clone().commit_loop(shutdown.clone()));
        while let Some(result) = tasks.join_next().await {
            if let Ok(Err(err)) = result {
                tracing::error!(topic = %self.topic, error = %err, "router task failed");
            }
        }
        Ok(())
    }

    async fn read_partition(
        self: Arc<Self>,
        partition: i32,
        mut position: i64,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), BusError> {
        let mut scratch = MatchScratch::new();
        let mut matched = Vec::new();
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let fetched = tokio::select! {
                fetched = self.bus.fetch(&self.topic, partition, position, 1 << 20, Duration::from_millis(500)) => fetched,
                _ = shutdown.changed() => return Ok(()),
            };
            let records = match fetched {
                Ok(records) => records,
                Err(err) => {
                    tracing::warn!(topic = %self.topic, partition, error = %err, "fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            for fetched in records {
                if fetched.offset < position {
                    continue;
                }
                position = fetched.offset + 1;
                self.route(fetched, &mut scratch, &mut matched).await;
            }
        }
    }

    /// Matches one record and offers it to the lanes of every matching rule.
    async fn route(&self, fetched: Fetched, scratch: &mut MatchScratch, matched: &mut Vec<usize>) {
        self.stats.records_read.fetch_add(1, Ordering::Relaxed);
        let routes = self.routes();
        let event = Envelope::from_record(&self.topic, &fetched);
        // A complete envelope is matched from its bytes; only wrapped or filled-in records need their value.
        let view = match event.bytes() {
            Some(bytes) => Event::Json(bytes),
            None => Event::Value(event.value()),
        };
        if let Err(err) = routes.matcher.matches_into(&view, scratch, matched) {
            tracing::debug!(topic = %self.topic, offset = fetched.offset, error = %err, "record not matchable");
            matched.clear();
        }
        let lanes: usize = matched.iter().filter_map(|&id| routes.rules.get(id)).map(|r| r.lanes.len()).sum();
        self.progress.with(fetched.partition, |p| p.dispatched(fetched.offset, lanes as u32));
        if matched.is_empty() {
            return;
        }
        self.stats.records_matched.fetch_add(1, Ordering::Relaxed);
        {
            let mut per_rule = self.stats.rule_matches.lock().expect("stats lock");
            for &id in matched.iter() {
                if let Some(rule) = routes.rules.get(id) {
                    // The name is copied only the first time a rule matches.
                    match per_rule.get_mut(rule.name.as_str()) {
                        Some(count) => *count += 1,
                        None => {
                            per_rule.insert(rule.name.clone(), 1);
                        }
                    }
                }
            }
        }
        let event = Arc::new(event);
        for &id in matched.iter() {
            let Some(rule) = routes.rules.get(id) else { continue };
            for lane in &rule.lanes {
                let work =
                    Work { origin: Some((fetched.partition, fetched.offset)), key: fetched.record.key.clone(), event: event.clone() };
                lane.offer(work).await;
            }
        }
    }

    async fn commit_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> Result<(), BusError> {
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => false,
                _ = shutdown.changed() => true,
            };
            self.commit_settled().await;
            if stop || *shutdown.borrow() {
                return Ok(());
            }
        }
    }

    /// Commits, per partition, everything settled so far.
    pub async fn commit_settled(&self) {
        let due: Vec<(i32, i64)> = {
            let map = self.progress.0.lock().expect("progress lock");
            map.iter().filter_map(|(&p, progress)| progress.to_commit().map(|o| (p, o))).collect()
        };
        for (partition, offset) in due {
            match self.bus.commit(&self.group, &self.topic, partition, offset).await {
                Ok(()) => {
                    self.progress.with(partition, |p| p.mark_committed(offset));
                }
                Err(err) => tracing::warn!(topic = %self.topic, partition, error = %err, "commit failed"),
            }
        }
    }
}
