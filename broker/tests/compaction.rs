//! Log compaction with real librdkafka clients: after cleaning, each key's latest value remains, offsets are
//! preserved, superseded records and expired tombstones are gone; records without a key are refused.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

/// What was produced at each offset: key and value (None for a tombstone).
type Produced = BTreeMap<i64, (String, Option<String>)>;

/// Base offsets of the partition's segment files.
fn segment_bases(dir: &Path, topic: &str) -> BTreeSet<i64> {
    std::fs::read_dir(dir.join("topics").join(topic).join("0"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log").and_then(|b| b.parse().ok())
        })
        .collect()
}

/// Reads the whole partition: offset -> (key, value).
fn read_all(addr: std::net::SocketAddr, topic: &str) -> Produced {
    let consumer: BaseConsumer = common::client_config(addr)
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Produced::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.keys().next_back().is_none_or(|o| *o < high - 1) {
        assert!(Instant::now() < deadline, "could not read up to {high}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            let value = m.payload().map(|v| String::from_utf8(v.to_vec()).unwrap());
            out.insert(m.offset(), (key, value));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_latest_value_per_key_and_preserves_offsets() {
    let dir = common::TempDir::new("compaction");
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addr();
    let admin = common::admin(addr);
    let opts = AdminOptions::new();
    let topic = NewTopic::new("compacted", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("delete.retention.ms", "3000");
    let both = NewTopic::new("compact-delete", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact,delete");
    let created = admin.create_topics(&[topic, both], &opts).await.unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("compact-delete")], &opts)
        .await
        .unwrap();
    assert_eq!(
        described[0]
            .as_ref()
            .unwrap()
            .get("cleanup.policy")
            .unwrap()
            .value
            .as_deref(),
        Some("compact,delete")
    );

    // One record per batch (each send awaited), so the cleaner's contract can be checked record by record.
    let producer = common::producer(addr, &[("linger.ms", "0"), ("compression.type", "lz4")]);
    let mut produced = Produced::new();
    let mut send = async |key: String, value: Option<String>| {
        let mut record = FutureRecord::to("compacted").key(&key).partition(0);
        if let Some(v) = &value {
            record = record.payload(v);
        }
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .expect("acknowledged");
        produced.insert(delivery.offset, (key, value));
    };
    for round in 0..40 {
        for k in 0..10 {
            send(format!("k{k}"), Some(format!("k{k}-v{round}"))).await;
        }
    }
    send("k3".into(), None).await; // delete k3
    for i in 0..150 {
        send(format!("f{i}"), Some("filler".into())).await;
    }

    // A record without a key cannot be compacted: refused with INVALID_RECORD, as Kafka does.
    let refused = producer
        .send(
            FutureRecord::<(), _>::to("compacted")
                .payload("no key")
                .partition(0),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord),
                _
            ))
        ),
        "{refused:?}"
    );

    let latest: HashMap<&str, i64> = produced
        .iter()
        .map(|(o, (k, _))| (k.as_str(), *o))
        .collect();
    let tombstone = latest["k3"];
    let tombstone_written = Instant::now();
    // Wait until the cleaner has run over the closed segments and the tombstone has expired.
    let deadline = Instant::now() + Duration::from_secs(60);
    let survivors = loop {
        let survivors = read_all(addr, "compacted");
        let expired = tombstone_written.elapsed() > Duration::from_secs(4);
        let bases = segment_bases(dir.path(), "compacted");
        let clean = survivors.keys().all(|o| {
            latest.values().any(|l| l == o) && (*o != tombstone || !expired)
                || bases.contains(&(o + 1))
        });
        if expired && clean {
            break survivors;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted within 60 s: {} of {} records remain",
            survivors.len(),
            produced.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let bases = segment_bases(dir.path(), "compacted");
    assert!(
        bases.len() > 3,
        "the test spans several segments: {bases:?}"
    );
    // Offsets are preserved: every surviving record is exactly what was written at that offset.
    for (offset, record) in &survivors {
        assert_eq!(Some(record), produced.get(offset), "offset {offset}");
    }
    // Each live key's latest value remains; the deleted key's tombstone expired and took its history with it,
    // except a record that ends a segment (kept whole so segments stay contiguous).
    for (key, offset) in &latest {
        if *key != "k3" {
            assert!(survivors.contains_key(offset), "latest value of {key} kept");
        }
    }
    assert!(!survivors.contains_key(&tombstone) || bases.contains(&(tombstone + 1)));
    let superseded = survivors
        .keys()
        .filter(|o| !latest.values().any(|l| l == *o))
        .count();
    assert!(
        superseded < bases.len(),
        "only segment-ending records may be superseded: {superseded} with {} segments",
        bases.len()
    );
    assert!(
        survivors.len() < produced.len() / 2,
        "{} of {} records remain",
        survivors.len(),
        produced.len()
    );
    drop(producer);

    // A restart recovers the compacted segments, gaps included, and serves the same records. The clean-shutdown
    // marker is removed so the restart checks every batch, as after a crash: the gaps of cleaned segments (and
    // only theirs, see the `.cleaned` markers) must not be taken for damage.
    broker.shutdown().await;
    std::fs::remove_file(dir.path().join(".clean-shutdown")).expect("clean-shutdown marker");
    let partition_dir = dir.path().join("topics/compacted/0");
    let marked = std::fs::read_dir(&partition_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "cleaned")
        })
        .count();
    assert!(marked > 0, "cleaned segments are marked");
    let broker = busbar_broker::Broker::start(common::config(dir.path()))
        .await
        .expect("restart");
    let after = read_all(broker.local_addr(), "compacted");
    assert_eq!(after, survivors, "the same records after a restart");
    broker.shutdown().await;
}
