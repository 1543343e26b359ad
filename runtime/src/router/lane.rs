//! A delivery lane: the queue, batcher and retry loop between the router and one target of one rule.
//!
//! The router offers each matched event to the lane. While the lane keeps up, events wait in a bounded
//! in-memory queue. When the queue is full the lane is *parked*: new events go to the target's own retry topic
//! on the bus (durably, so the router may commit past them) and the lane drains that topic once its in-memory
//! queue is empty, then switches back. Order per lane is kept: queue first, then the retry topic, then the queue
//! again. A record that fails is retried with backoff (the lane waits, which keeps per-key order) until the
//! retry policy gives up; then it goes to the dead-letter topic with headers saying why.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::retry::RetryPolicy;
use super::target::{Delivery, Outcome, Target};
use crate::bus::{Bus, Record, TopicSpec};
use crate::envelope::{self, Envelope};

/// Turns a matched event into the payload a target receives (the input transformer), or says why it cannot.
/// `None`: the whole event, as it is. Only a transformer that reads the event should ask for its value
/// ([`Envelope::value`]): that parses an event which came as bytes.
pub type Prepare = Arc<dyn Fn(&Envelope) -> Result<Option<Bytes>, String> + Send + Sync>;

/// Called once a record is settled for this lane (delivered, dead-lettered or parked): `(partition, offset)`.
pub type Settle = Arc<dyn Fn(i32, i64) + Send + Sync>;

/// Settings of one lane.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    pub pipeline: String,
    pub rule: String,
    pub target: String,
    pub retry: RetryPolicy,
    /// Where records go when the retry policy gives up or the failure is fatal.
    pub dead_letter_topic: String,
    /// Where records are parked while the in-memory queue is full.
    pub retry_topic: String,
    /// Most records per `deliver` call.
    pub max_batch: usize,
    /// How long to wait for a batch to fill once it has one record.
    pub max_wait: Duration,
    /// A batch takes no more records once their events add up to this many bytes (it always takes one).
    pub max_batch_bytes: usize,
    /// In-memory queue length before the lane parks.
    pub buffer: usize,
}

impl LaneConfig {
    /// The consumer group that tracks how far the retry topic is drained.
    pub fn retry_group(&self) -> String {
        format!("busbar.retry.{}.{}.{}", self.pipeline, self.rule, self.target)
    }
}

/// One matched event on its way to the target.
#[derive(Debug, Clone)]
pub struct Work {
    /// Source partition and offset on the bus topic, settled once the lane is done with it. `None` for records
    /// that are already settled at the source (drained from the retry topic, replayed, re-driven).
    pub origin: Option<(i32, i64)>,
    pub key: Option<Bytes>,
    /// Shared by every lane the event matched.
    pub event: Arc<Envelope>,
}

/// Counters of a lane, for metrics and the API.
#[derive(Debug, Default)]
pub struct LaneStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub retries: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub parked: AtomicU64,
    /// Sum of delivery latencies (first attempt to outcome) of delivered events, microseconds; their count is
    /// `delivered`.
    pub latency_us_sum: AtomicU64,
    /// Delivered events per latency bucket: `latency_buckets[i]` counts latencies up to
    /// [`LATENCY_BUCKETS_MS`]`[i]` (not cumulative; the last slot is everything slower).
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    pub batches: AtomicU64,
}

/// Upper bounds of the delivery-latency histogram, milliseconds.
pub const LATENCY_BUCKETS_MS: [f64; 12] = [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0, 30000.0];

impl LaneStats {
    fn observe_latency(&self, latency: std::time::Duration) {
        let us = latency.as_micros() as u64;
        self.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        let ms = us as f64 / 1000.0;
        let slot = LATENCY_BUCKETS_MS.iter().position(|&bound| ms <= bound).unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_buckets[slot].fetch_add(1, Ordering::Relaxed);
    }
}

struct Shared<B> {
    config: LaneConfig,
    bus: Arc<B>,
    prepare: Prepare,
    settle: Settle,
    /// True while new events go to the retry topic. Held across the parked produce so that the worker's
    /// "caught up" check and the router's appends cannot interleave.
    parked: Mutex<bool>,
    stats: Arc<LaneStats>,
}

/// The router's handle on a lane.
pub struct Lane<B> {
    shared: Arc<Shared<B>>,
    tx: mpsc::Sender<Work>,
}

impl<B: Bus> Lane<B> {
    /// Starts the lane's worker. The retry and dead-letter topics are created if missing, and a retry topic left
    /// with a backlog by a previous run starts the lane parked, so that backlog is delivered before new events.
    pub async fn spawn<T: Target>(
        config: LaneConfig,
        bus: Arc<B>,
        target: Arc<T>,
        prepare: Prepare,
        settle: Settle,
    ) -> Result<(Self, JoinHandle<()>), crate::bus::BusError> {
        let single = TopicSpec { partitions: 1, configs: Vec::new() };
        bus.ensure_topic(&config.retry_topic, &single).await?;
        bus.ensure_topic(&config.dead_letter_topic, &single).await?;
        let (_, end) = bus.offsets(&config.retry_topic, 0).await?;
        let drained = bus.committed(&config.retry_group(), &config.retry_topic, 0).await?;
        let backlog = drained.map(|d| d < end).unwrap_or(end > 0);
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let shared = Arc::new(Shared {
            config,
            bus,
            prepare,
            settle,
            parked: Mutex::new(backlog),
            stats: Arc::new(LaneStats::default()),
        });
        let worker = Worker { shared: shared.clone(), target, rx };
        let handle = tokio::spawn(worker.run());
        Ok((Self { shared, tx }, handle))
    }

    /// Hands an event to the lane. Returns once the event is queued in memory or parked durably.
    pub async fn offer(&self, work: Work) {
        let mut parked = self.shared.parked.lock().await;
        let work = if *parked {
            work
        } else {
            match self.tx.try_send(work) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(work)) => {
                    tracing::warn!(rule = %self.shared.config.rule, target = %self.shared.config.target,
                        retry_topic = %self.shared.config.retry_topic, "target is behind; parking new events");
                    *parked = true;
                    work
                }
                Err(mpsc::error::TrySendError::Closed(work)) => work,
            }
        };
        self.shared.park(work).await;
    }

    pub fn stats(&self) -> Arc<LaneStats> {
        self.shared.stats.clone()
    }

    pub fn config(&self) -> &LaneConfig {
        &self.shared.config
    }

    /// Whether new events currently go to the retry topic.
    pub async fn is_parked(&self) -> bool {
        *self.shared.parked.lock().await
    }
}

impl<B: Bus> Shared<B> {
    /// Writes `work` to the retry topic, retrying until the bus takes it, then settles it at the source.
    async fn park(&self, work: Work) {
        let mut headers = Vec::new();
        if let Some((partition, offset)) = work.origin {
            headers.push(("busbar.source.partition".to_owned(), Some(Bytes::from(partition.to_string()))));
            headers.push(("busbar.source.offset".to_owned(), Some(Bytes::from(offset.to_string()))));
        }
        let record = Record {
            key: work.key.clone(),
            value: Some(work.event.json()),
            headers,
            timestamp_ms: None,
        };
        self.produce_until_durable(&self.config.retry_topic, record).await;
        self.stats.parked.fetch_add(1, Ordering::Relaxed);
        if let Some((partition, offset)) = work.origin {
            (self.settle)(partition, offset);
        }
    }

    /// Sends `work` to the dead-letter topic with the reason, then settles it.
    async fn dead_letter(&self, work: &Work, error: &str, attempts: u32, first_failure: SystemTime) {
        let first_failure_ms =
            first_failure.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let mut headers = vec![
            header("busbar.pipeline", &self.config.pipeline),
            header("busbar.rule", &self.config.rule),
            header("busbar.target", &self.config.target),
            header("busbar.error", error),
            header("busbar.attempts", &attempts.to_string()),
            header("busbar.first-failure-time", &envelope::rfc3339(first_failure_ms)),
        ];
        if let Some((partition, offset)) = work.origin {
            headers.push(header("busbar.source.partition", &partition.to_string()));
            headers.push(header("busbar.source.offset", &offset.to_string()));
        }
        let record = Record {
            key: work.key.clone(),
            value: Some(work.event.json()),
            headers,
            timestamp_ms: None,
        };
        tracing::warn!(rule = %self.config.rule, target = %self.config.target, attempts, %error,
            topic = %self.config.dead_letter_topic, "event dead-lettered");
        self.produce_until_durable(&self.config.dead_letter_topic, record).await;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.settle(work);
    }

    fn settle(&self, work: &Work) {
        if let Some((partition, offset)) = work.origin {
            (self.settle)(partition, offset);
        }
    }

    /// A record that must not be lost is retried until the bus accepts it.
    async fn produce_until_durable(&self, topic: &str, record: Record) {
        let mut attempt: u64 = 0;
        loop {
            match self.bus.produce(topic, Some(0), record.clone()).await {
                Ok(_) => return,
                Err(err) => {
                    attempt += 1;
                    tracing::error!(%topic, attempt, error = %err, "cannot write to the bus; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt.min(50))).await;
                }
            }
        }
    }
}

fn header(name: &str, value: &str) -> (String, Option<Bytes>) {
    (name.to_owned(), Some(Bytes::copy_from_slice(value.as_bytes())))
}

struct Worker<B, T> {
    shared: Arc<Shared<B>>,
    target: Arc<T>,
    rx: mpsc::Receiver<Work>,
}

impl<B: Bus, T: Target> Worker<B, T> {
    async fn run(mut self) {
        loop {
            let parked = *self.shared.parked.lock().await;
            if parked {
                // The queue holds older events than the retry topic: empty it first.
                match self.rx.try_recv() {
                    Ok(first) => {
                        let batch = self.fill(first).await;
                        self.process(batch).await;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => self.drain_retry_topic().await,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            } else {
                match self.rx.recv().await {
                    Some(first) => {
                        let batch = self.fill(first).await;
                        self.process(batch).await;
                    }
                    None => return,
                }
            }
        }
    }

    /// Collects up to `max_batch` records, and records until they hold `max_batch_bytes`, waiting at most
    /// `max_wait` after the first.
    async fn fill(&mut self, first: Work) -> Vec<Work> {
        let max = self.shared.config.max_batch.max(1);
        let max_bytes = self.shared.config.max_batch_bytes;
        let mut batch = Vec::with_capacity(max.min(1024));
        let mut bytes = first.event.json_len();
        batch.push(first);
        let deadline = tokio::time::Instant::now() + self.shared.config.max_wait;
        while batch.len() < max && bytes < max_bytes {
            let work = match self.rx.try_recv() {
                Ok(work) => work,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.shared.config.max_wait.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(Some(work)) => work,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            bytes += work.event.json_len();
            batch.push(work);
        }
        batch
    }

    /// Reads one batch from the retry topic and delivers it; unparks the lane once the topic is drained.
    async fn drain_retry_topic(&mut self) {
        let shared = self.shared.clone();
        let config = &shared.config;
        let group = config.retry_group();
        let position = match shared.bus.committed(&group, &config.retry_topic, 0).await {
            Ok(Some(position)) => position,
            Ok(None) => shared.bus.offsets(&config.retry_topic, 0).await.map(|(start, _)| start).unwrap_or(0),
            Err(err) => {
                tracing::error!(error = %err, "cannot read the retry topic position");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return;
            }
        };
        let fetched = shared
            .bus
            .fetch(&config.retry_topic, 0, position, 1 << 20, Duration::from_millis(50))
            .await
            .unwrap_or_default();
        let fetched: Vec<_> = fetched.into_iter().take(config.max_batch.max(1)).collect();
        if fetched.is_empty() {
            let mut parked = shared.parked.lock().await;
            let end = shared.bus.offsets(&config.retry_topic, 0).await.map(|(_, end)| end).unwrap_or(i64::MAX);
            if end <= position && self.rx.is_empty() {
                *parked = false;
                tracing::info!(rule = %config.rule, target = %config.target, "retry topic drained; lane resumed");
            }
            return;
        }
        let next = fetched.last().map(|f| f.offset + 1).unwrap_or(position);
        let batch = fetched
            .into_iter()
            .filter_map(|f| {
                // Parked records hold the whole event as it was to be delivered; anything else is not ours.
                let event = Envelope::from_json(f.record.value?)?;
                Some(Work { origin: None, key: f.record.key, event: Arc::new(event) })
            })
            .collect();
        self.process(batch).await;
        if let Err(err) = shared.bus.commit(&group, &config.retry_topic, 0, next).await {
            tracing::error!(error = %err, "cannot commit the retry topic position");
        }
    }

    /// Delivers a batch, retrying what failed, dead-lettering what cannot be delivered. Each record counts its
    /// own attempts. When a whole multi-record call fails with one error (a trap, a timeout), the records are
    /// retried one call each, so a poison pill is isolated and dead-lettered alone.
    async fn process(&mut self, batch: Vec<Work>) {
        struct Pending {
            work: Work,
            delivery: Delivery,
            attempts: u32,
            first_failure: Option<(SystemTime, Instant)>,
            last_error: String,
        }
        let shared = self.shared.clone();
        let started = Instant::now();
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
        for work in batch {
            match (shared.prepare)(&work.event) {
                Ok(payload) => {
                    let payload = payload.unwrap_or_else(|| work.event.json());
                    let delivery = Delivery {
                        key: work.key.clone(),
                        payload,
                        event_id: work.event.id().to_owned(),
                    };
                    pending.push(Pending { work, delivery, attempts: 0, first_failure: None, last_error: String::new() });
                }
                Err(error) => {
                    let error = format!("input transformer: {error}");
                    shared.dead_letter(&work, &error, 0, SystemTime::now()).await;
                }
            }
        }
        let mut one_at_a_time = false;
        let mut round = 0u32;
        while !pending.is_empty() {
            round += 1;
            let outcomes = if one_at_a_time {
                let mut outcomes = Vec::with_capacity(pending.len());
                for p in &pending {
                    let mut one = self.target.deliver(std::slice::from_ref(&p.delivery)).await;
                    outcomes.push(one.pop().unwrap_or(Outcome::Retryable {
                        error: "target returned no outcome".into(),
                        retry_after: None,
                    }));
                }
                outcomes
            } else {
                let deliveries: Vec<Delivery> = pending.iter().map(|p| p.delivery.clone()).collect();
                let outcomes = self.target.deliver(&deliveries).await;
                if outcomes.len() == deliveries.len() {
                    outcomes
                } else {
                    let error = format!("target returned {} outcomes for {} records", outcomes.len(), deliveries.len());
                    vec![Outcome::Retryable { error, retry_after: None }; deliveries.len()]
                }
            };
            shared.stats.batches.fetch_add(1, Ordering::Relaxed);
            let whole_call_failed = pending.len() > 1
                && matches!(&outcomes[0], Outcome::Retryable { .. })
                && outcomes.iter().all(|o| o == &outcomes[0]);
            let mut retry = Vec::new();
            let mut wait: Option<Duration> = None;
            let mut deferred: Option<Duration> = None;
            for (mut p, outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Delivered => {
                        shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
                        shared.stats.observe_latency(started.elapsed());
                        shared.settle(&p.work);
                    }
                    Outcome::Fatal { error } => {
                        shared.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        let first = p.first_failure.map(|(t, _)| t).unwrap_or_else(SystemTime::now);
                        shared.dead_letter(&p.work, &error, p.attempts + 1, first).await;
                    }
                    Outcome::Retryable { error, retry_after } => {
                        shared.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        p.attempts += 1;
                        let (first_wall, first_instant) =
                            *p.first_failure.get_or_insert((SystemTime::now(), Instant::now()));
                        if shared.config.retry.exhausted(p.attempts, first_instant.elapsed()) {
                            shared.dead_letter(&p.work, &error, p.attempts, first_wall).await;
                            continue;
                        }
                        let delay = shared.config.retry.delay(p.attempts, retry_after);
                        wait = Some(wait.map_or(delay, |w| w.min(delay)));
                        p.last_error = error;
                        retry.push(p);
                    }
                    Outcome::Deferred { reason, retry_after } => {
                        if let Some((first_wall, first_instant)) = p.first_failure
                            && shared.config.retry.exhausted(0, first_instant.elapsed())
                        {
                            let error = if p.last_error.is_empty() { reason } else { p.last_error.clone() };
                            shared.dead_letter(&p.work, &error, p.attempts, first_wall).await;
                            continue;
                        }
                        deferred = Some(deferred.map_or(retry_after, |w| w.min(retry_after)));
                        retry.push(p);
                    }
                }
            }
            // Records that were not attempted wait for the ones that failed (their backoff), or for their own hint
            // when nothing failed.
            let wait = wait.or(deferred);
            if retry.is_empty() {
                break;
            }
            if whole_call_failed && !one_at_a_time {
                one_at_a_time = true;
            }
            let delay = wait.unwrap_or_default();
            tracing::debug!(rule = %shared.config.rule, target = %shared.config.target, records = retry.len(),
                round, ?delay, one_at_a_time, error = %retry[0].last_error, "delivery failed; retrying");
            shared.stats.retries.fetch_add(retry.len() as u64, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            pending = retry;
        }
    }
}
