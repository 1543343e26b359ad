//! Helpers of the consumer-group tests: a broker with quick group timers, topic and record setup, and consumer
//! workers that commit every record before counting it, so the ledger shows each record processed exactly once
//! when the coordinator fences stale members correctly.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use busbar_broker::group::GroupConfig;
use busbar_broker::{Broker, BrokerConfig, BrokerHandle};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub fn group_config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::from_millis(200),
        consumer_heartbeat_interval: Duration::from_millis(500),
        consumer_session_timeout: Duration::from_secs(6),
        ..GroupConfig::default()
    }
}

pub fn broker_config(dir: &Path, listen: &str) -> BrokerConfig {
    BrokerConfig {
        listen: listen.into(),
        data_dir: dir.to_owned(),
        groups: group_config(),
        default_partitions: 6,
        ..BrokerConfig::default()
    }
}

pub async fn start(dir: &Path) -> BrokerHandle {
    Broker::start(broker_config(dir, "127.0.0.1:0"))
        .await
        .expect("start broker")
}

pub fn client(addr: SocketAddr) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr.to_string())
        .set("broker.address.family", "v4");
    c
}

pub async fn create_topic(addr: SocketAddr, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(addr).create().expect("admin");
    let r = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topics");
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
}

/// Produces `n` records round-robin over `partitions`, values "<i>".
pub async fn produce(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
) {
    let producer: FutureProducer = client(addr)
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()
        .expect("producer");
    let mut pending = Vec::new();
    for i in range {
        let value = i.to_string();
        let key = format!("k{i}");
        let record = FutureRecord::to(topic)
            .partition((i % partitions as usize) as i32)
            .key(&key)
            .payload(&value);
        pending.push(producer.send_result(record).expect("queue"));
    }
    for p in pending {
        p.await.expect("delivery").expect("acked");
    }
}

/// Who processed what, and who owned which partitions.
///
/// Ownership is recorded in the rebalance callbacks, which librdkafka runs on the worker's thread before it
/// acts on a rebalance: a revocation is recorded before the member rejoins (eager protocol) or acknowledges it
/// (KIP-848), so before the coordinator may hand the partition to anyone else; an assignment is recorded before
/// the member starts fetching. Two members owning a partition at once in this ledger is therefore a real
/// double assignment, never a stale reading. (Sampling `assignment()` after each poll is not exact: a worker
/// thread that has not yet looped back still shows partitions librdkafka already revoked and rejoined without.)
#[derive(Default)]
pub struct Ledger {
    processed: Mutex<HashMap<(i32, i64), u32>>,
    assignments: Mutex<BTreeMap<usize, BTreeSet<i32>>>,
    /// Set when two live members ever claimed the same partition at the same time.
    overlap: Mutex<Option<String>>,
}

/// Records a worker's partition ownership from librdkafka's rebalance callbacks.
pub struct Tracker {
    id: usize,
    ledger: Arc<Ledger>,
}

impl ClientContext for Tracker {}

impl ConsumerContext for Tracker {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Eager assignments and revocations carry the whole assignment, incremental (KIP-848) ones the change:
        // applying them as additions and removals is right for both.
        let parts = |tpl: &TopicPartitionList| -> Vec<i32> {
            tpl.elements().iter().map(|e| e.partition()).collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => self.ledger.change(self.id, &parts(tpl), &[]),
            Rebalance::Revoke(tpl) => self.ledger.change(self.id, &[], &parts(tpl)),
            Rebalance::Error(_) => {}
        }
    }
}

impl Ledger {
    fn record(&self, partition: i32, offset: i64) {
        *self
            .processed
            .lock()
            .unwrap()
            .entry((partition, offset))
            .or_default() += 1;
    }

    fn change(&self, worker: usize, added: &[i32], removed: &[i32]) {
        let mut a = self.assignments.lock().unwrap();
        if added.is_empty() && !a.contains_key(&worker) {
            return; // a stopped worker's consumer revoking while it closes
        }
        let owned = a.entry(worker).or_default();
        owned.extend(added.iter().copied());
        owned.retain(|p| !removed.contains(p));
        let mut seen = BTreeSet::new();
        for (w, ps) in a.iter() {
            for p in ps {
                if !seen.insert(*p) {
                    *self.overlap.lock().unwrap() =
                        Some(format!("partition {p} claimed twice (worker {w}): {a:?}"));
                }
            }
        }
    }

    fn forget(&self, worker: usize) {
        self.assignments.lock().unwrap().remove(&worker);
    }

    pub fn processed_count(&self) -> usize {
        self.processed.lock().unwrap().len()
    }

    /// Every (partition, offset) below `per_partition[p]` processed exactly once, nothing else.
    pub fn assert_exactly_once(&self, total: usize, partitions: i32) {
        let processed = self.processed.lock().unwrap();
        let twice: Vec<_> = processed.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "records processed twice after a successful commit: {twice:?}"
        );
        assert_eq!(processed.len(), total, "every record processed");
        let per_partition = total / partitions as usize;
        for p in 0..partitions {
            for o in 0..per_partition as i64 {
                assert!(processed.contains_key(&(p, o)), "record {p}/{o} missing");
            }
        }
    }

    pub fn assert_no_overlap(&self) {
        if let Some(o) = self.overlap.lock().unwrap().as_ref() {
            panic!("{o}");
        }
    }

    /// Waits until the live workers' assignments cover `0..partitions` exactly once.
    pub fn wait_exact_cover(
        &self,
        partitions: i32,
        within: Duration,
    ) -> BTreeMap<usize, BTreeSet<i32>> {
        self.wait_exact_cover_by(None, partitions, within)
    }

    /// Like [`Ledger::wait_exact_cover`], and with `members` workers holding partitions when given (a member
    /// still joining leaves the others an exact cover of their own meanwhile).
    pub fn wait_exact_cover_by(
        &self,
        members: Option<usize>,
        partitions: i32,
        within: Duration,
    ) -> BTreeMap<usize, BTreeSet<i32>> {
        let deadline = Instant::now() + within;
        loop {
            let a = self.assignments.lock().unwrap().clone();
            let all: Vec<i32> = a.values().flatten().copied().collect();
            let unique: BTreeSet<i32> = all.iter().copied().collect();
            let holders = a.values().filter(|p| !p.is_empty()).count();
            if all.len() == partitions as usize
                && unique == (0..partitions).collect()
                && members.is_none_or(|m| m == holders)
            {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "assignments never covered all {partitions} partitions once (by {members:?} members): {a:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A consumer running on its own thread until stopped.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// `extra` config on top of: group.id, earliest, manual commits.
    pub fn start(
        id: usize,
        addr: SocketAddr,
        group: &str,
        topic: &str,
        extra: &[(&str, &str)],
        ledger: Arc<Ledger>,
    ) -> Worker {
        Self::start_paced(id, addr, group, topic, extra, ledger, Duration::ZERO)
    }

    /// Like [`Worker::start`], taking at least `pace` per record, so a test can act while records are left.
    pub fn start_paced(
        id: usize,
        addr: SocketAddr,
        group: &str,
        topic: &str,
        extra: &[(&str, &str)],
        ledger: Arc<Ledger>,
        pace: Duration,
    ) -> Worker {
        let mut c = client(addr);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        for (k, v) in extra {
            c.set(*k, *v);
        }
        let tracker = Tracker {
            id,
            ledger: ledger.clone(),
        };
        let consumer: BaseConsumer<Tracker> = c.create_with_context(tracker).expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let topic = topic.to_string();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(&topic, m.partition(), Offset::Offset(m.offset() + 1))
                        .unwrap();
                    // Count the record only once its commit is accepted: a fenced member's commit fails, and the
                    // partition's next owner then starts from the last accepted commit.
                    if consumer.commit(&tpl, CommitMode::Sync).is_ok() {
                        ledger.record(m.partition(), m.offset());
                    }
                    if !pace.is_zero() {
                        std::thread::sleep(pace);
                    }
                }
            }
            ledger.forget(id);
            // Dropping the consumer closes it, which sends LeaveGroup.
            drop(consumer);
        });
        Worker {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the worker; its consumer leaves the group.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("worker thread");
        }
    }
}

pub fn wait_until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
