//! Consumer groups with real librdkafka consumers (the `rdkafka` crate) against an in-process broker:
//! members joining and leaving mid-stream, a broker restart mid-stream, and admin operations.

mod groups_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use busbar_broker::Broker;
use groups_support::{Ledger, Worker, client, create_topic, produce, wait_until};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const CLASSIC: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "500"),
];

/// Three consumers share six partitions while members join and leave mid-stream; every record is processed
/// exactly once (each is counted only after its commit is accepted), and the assignments never overlap.
pub async fn members_join_and_leave_mid_stream(extra: &[(&str, &str)], group: &str) {
    let dir = groups_support_dir(group);
    let broker = groups_support::start(dir.path()).await;
    let addr = broker.local_addr();
    let topic = format!("{group}-t");
    create_topic(addr, &topic, 6).await;
    produce(addr, &topic, 6, 0..1200).await;
    let ledger = Arc::new(Ledger::default());
    let w0 = Worker::start(0, addr, group, &topic, extra, ledger.clone());
    let w1 = Worker::start(1, addr, group, &topic, extra, ledger.clone());
    let w2 = Worker::start(2, addr, group, &topic, extra, ledger.clone());
    ledger.wait_exact_cover(6, Duration::from_secs(30));
    produce(addr, &topic, 6, 1200..2400).await;
    // A member leaves mid-stream; a new one joins.
    w1.stop();
    ledger.wait_exact_cover(6, Duration::from_secs(30));
    let w3 = Worker::start(3, addr, group, &topic, extra, ledger.clone());
    produce(addr, &topic, 6, 2400..3600).await;
    wait_until(Duration::from_secs(60), "all records processed", || {
        ledger.processed_count() >= 3600
    });
    let cover = ledger.wait_exact_cover_by(Some(3), 6, Duration::from_secs(30));
    assert_eq!(
        cover.len(),
        3,
        "three live members share the partitions: {cover:?}"
    );
    assert!(
        cover.values().all(|p| p.len() == 2),
        "two partitions each: {cover:?}"
    );
    ledger.assert_no_overlap();
    ledger.assert_exactly_once(3600, 6);
    for w in [w0, w2, w3] {
        w.stop();
    }
    broker.shutdown().await;
}

fn groups_support_dir(label: &str) -> TempDir {
    TempDir::new(label)
}

/// A directory removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let p = std::env::temp_dir().join(format!("busbar-groups-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_members_join_and_leave_mid_stream() {
    members_join_and_leave_mid_stream(CLASSIC, "classic").await;
}

/// The broker restarts while a consumer is mid-stream: the group and its committed offsets come back, the
/// consumer reconnects and carries on, and no record is processed twice or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_resumes_from_committed_offsets() {
    let dir = TempDir::new("restart");
    let broker = groups_support::start(dir.path()).await;
    let addr = broker.local_addr();
    create_topic(addr, "r", 3).await;
    produce(addr, "r", 3, 0..600).await;
    let ledger = Arc::new(Ledger::default());
    // Paced (600 records take at least 3 s), so the restart below comes while records are left on a fast machine.
    let w = Worker::start_paced(
        0,
        addr,
        "restart",
        "r",
        CLASSIC,
        ledger.clone(),
        Duration::from_millis(5),
    );
    wait_until(Duration::from_secs(30), "some records processed", || {
        ledger.processed_count() >= 100
    });
    broker.shutdown().await;
    let processed_before = ledger.processed_count();
    assert!(
        processed_before < 600,
        "the restart happens mid-stream ({processed_before} of 600)"
    );
    // Same address, same data directory.
    let broker = Broker::start(groups_support::broker_config(dir.path(), &addr.to_string()))
        .await
        .expect("restart");
    produce(addr, "r", 3, 600..900).await;
    wait_until(Duration::from_secs(60), "all records processed", || {
        ledger.processed_count() >= 900
    });
    ledger.assert_exactly_once(900, 3);
    w.stop();
    // The committed offsets are the log ends.
    let c: BaseConsumer = client(addr).set("group.id", "restart").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("r", p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    for e in committed.elements() {
        assert_eq!(
            e.offset(),
            Offset::Offset(300),
            "partition {}",
            e.partition()
        );
    }
    broker.shutdown().await;
}

/// kafka-consumer-groups style operations: list, describe (members, assignments, lag), reset offsets to
/// earliest / latest / a timestamp, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_list_describe_reset_and_delete() {
    let dir = TempDir::new("admin");
    let broker = groups_support::start(dir.path()).await;
    let addr = broker.local_addr();
    create_topic(addr, "a", 2).await;
    produce(addr, "a", 2, 0..100).await;
    let ledger = Arc::new(Ledger::default());
    let w = Worker::start(0, addr, "admin-g", "a", CLASSIC, ledger.clone());
    wait_until(Duration::from_secs(30), "records processed", || {
        ledger.processed_count() >= 100
    });
    let probe: BaseConsumer = client(addr).set("group.id", "admin-g").create().unwrap();
    // List and describe: one stable member owning both partitions.
    let groups = probe
        .fetch_group_list(None, Duration::from_secs(10))
        .unwrap();
    let g = groups
        .groups()
        .iter()
        .find(|g| g.name() == "admin-g")
        .expect("group listed");
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.protocol_type(), "consumer");
    assert_eq!(g.members().len(), 1);
    let assignment = g.members()[0].assignment().expect("assignment bytes");
    let parts = busbar_broker::group::subscription::assigned_partitions(assignment)
        .expect("consumer protocol assignment");
    assert_eq!(parts, vec![("a".to_string(), vec![0, 1])]);
    // Lag: committed vs log end, after 20 more records nobody consumed yet.
    w.stop();
    produce(addr, "a", 2, 100..120).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("a", 0);
    tpl.add_partition("a", 1);
    let committed = probe
        .committed_offsets(tpl.clone(), Duration::from_secs(10))
        .unwrap();
    let mut lag = 0;
    for e in committed.elements() {
        let (_, high) = probe
            .fetch_watermarks("a", e.partition(), Duration::from_secs(10))
            .unwrap();
        let Offset::Offset(c) = e.offset() else {
            panic!("no committed offset for {}", e.partition())
        };
        lag += high - c;
    }
    assert_eq!(lag, 20);
    // Reset to earliest, then to a timestamp, then to latest: commits from outside the (now empty) group.
    let reset = |to: Offset| {
        let mut t = TopicPartitionList::new();
        t.add_partition_offset("a", 0, to).unwrap();
        t.add_partition_offset("a", 1, to).unwrap();
        probe.commit(&t, CommitMode::Sync).expect("reset commit");
        probe
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .unwrap()
    };
    let earliest = reset(Offset::Offset(0));
    assert!(
        earliest
            .elements()
            .iter()
            .all(|e| e.offset() == Offset::Offset(0))
    );
    let mut by_time = TopicPartitionList::new();
    by_time
        .add_partition_offset("a", 0, Offset::Offset(0))
        .unwrap();
    by_time
        .add_partition_offset("a", 1, Offset::Offset(0))
        .unwrap();
    let far_future = probe
        .offsets_for_times(by_time, Duration::from_secs(10))
        .unwrap();
    for e in far_future.elements() {
        // Timestamp 0: the first record of each partition.
        assert_eq!(e.offset(), Offset::Offset(0));
    }
    let (_, high) = probe
        .fetch_watermarks("a", 0, Duration::from_secs(10))
        .unwrap();
    let latest = reset(Offset::Offset(high));
    assert!(
        latest
            .elements()
            .iter()
            .all(|e| e.offset() == Offset::Offset(60))
    );
    drop(probe);
    // Delete: the group and its offsets go.
    let admin: AdminClient<DefaultClientContext> = client(addr).create().unwrap();
    let deleted = admin
        .delete_groups(&["admin-g", "never-existed"], &AdminOptions::new())
        .await
        .unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    assert!(deleted[1].is_err(), "unknown group: {deleted:?}");
    let probe: BaseConsumer = client(addr).set("group.id", "admin-g").create().unwrap();
    let committed = probe
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    assert!(
        committed
            .elements()
            .iter()
            .all(|e| e.offset() == Offset::Invalid),
        "{committed:?}"
    );
    let groups = probe
        .fetch_group_list(Some("admin-g"), Duration::from_secs(10))
        .unwrap();
    let names: BTreeSet<&str> = groups
        .groups()
        .iter()
        .filter(|g| g.state() != "Dead")
        .map(|g| g.name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    broker.shutdown().await;
}
