//! Admin APIs through librdkafka's admin client: configs (described, altered online), partitions added,
//! records deleted, topics deleted, retention applied in the background.

mod common;

use std::time::Duration;

use rdkafka::admin::{
    AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

async fn produce(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    partition: i32,
    n: usize,
    timestamp: Option<i64>,
) {
    for i in 0..n {
        let value = format!("value-{i}");
        let mut record = FutureRecord::to(topic)
            .key("k")
            .payload(&value)
            .partition(partition);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_partitions_records_and_topics_are_administered_online() {
    let dir = common::TempDir::new("admin");
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addr();
    let admin = common::admin(addr);
    let opts = AdminOptions::new();

    let topic = NewTopic::new("adm", 2, TopicReplication::Fixed(1)).set("retention.ms", "86400000");
    assert!(admin.create_topics(&[topic], &opts).await.unwrap()[0].is_ok());
    // Replication factor 3 cannot be honoured by a single broker.
    let too_many = NewTopic::new("adm-rf3", 1, TopicReplication::Fixed(3));
    assert!(admin.create_topics(&[too_many], &opts).await.unwrap()[0].is_err());

    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let config = described[0].as_ref().unwrap();
    assert_eq!(
        config.get("retention.ms").unwrap().value.as_deref(),
        Some("86400000")
    );
    assert_eq!(
        config.get("cleanup.policy").unwrap().value.as_deref(),
        Some("delete")
    );
    assert!(
        config.get("retention.ms").unwrap().source == rdkafka::admin::ConfigSource::DynamicTopic
    );

    let alter = AlterConfig::new(ResourceSpecifier::Topic("adm"))
        .set("max.message.bytes", "2000")
        .set("retention.bytes", "50000");
    assert!(admin.alter_configs(&[alter], &opts).await.unwrap()[0].is_ok());
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let config = described[0].as_ref().unwrap();
    assert_eq!(
        config.get("max.message.bytes").unwrap().value.as_deref(),
        Some("2000")
    );
    // AlterConfigs replaces all overrides: retention.ms is back to the default.
    assert_eq!(
        config.get("retention.ms").unwrap().source,
        rdkafka::admin::ConfigSource::Default
    );
    let bad = AlterConfig::new(ResourceSpecifier::Topic("adm")).set("cleanup.policy", "compress");
    // Refused with INVALID_CONFIG (rdkafka's AlterConfigs result does not surface per-resource errors, so the
    // proof is that nothing changed).
    let _ = admin.alter_configs(&[bad], &opts).await.unwrap();
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("adm")], &opts)
        .await
        .unwrap();
    let config = described[0].as_ref().unwrap();
    assert_eq!(
        config.get("max.message.bytes").unwrap().value.as_deref(),
        Some("2000"),
        "rejected change applied nothing"
    );

    // The new max.message.bytes applies to the very next produce.
    let producer = common::producer(addr, &[("linger.ms", "0")]);
    let big = "x".repeat(3000);
    let refused = producer
        .send(
            FutureRecord::to("adm").key("k").payload(&big).partition(0),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        refused.is_err(),
        "a 3000-byte record over max.message.bytes=2000 is refused"
    );

    assert!(
        admin
            .create_partitions(&[NewPartitions::new("adm", 4)], &opts)
            .await
            .unwrap()[0]
            .is_ok()
    );
    assert!(
        admin
            .create_partitions(&[NewPartitions::new("adm", 3)], &opts)
            .await
            .unwrap()[0]
            .is_err(),
        "never shrink"
    );
    // A fresh client sees the new partition in its first metadata.
    let producer = common::producer(addr, &[("linger.ms", "0")]);
    produce(&producer, "adm", 3, 10, None).await;

    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset("adm", 3, Offset::Offset(6))
        .unwrap();
    let deleted = admin.delete_records(&before, &opts).await.unwrap();
    assert_eq!(
        deleted.find_partition("adm", 3).unwrap().offset(),
        Offset::Offset(6)
    );
    let consumer = common::consumer(addr);
    assert_eq!(
        consumer
            .fetch_watermarks("adm", 3, Duration::from_secs(5))
            .unwrap(),
        (6, 10)
    );

    assert!(admin.delete_topics(&["adm"], &opts).await.unwrap()[0].is_ok());
    assert!(
        admin.delete_topics(&["adm"], &opts).await.unwrap()[0].is_err(),
        "already gone"
    );
    assert!(broker.store().topics().iter().all(|t| t.name != "adm"));
    assert!(!dir.path().join("topics/adm").exists());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_and_size_runs_in_the_background() {
    let dir = common::TempDir::new("retention");
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addr();
    let admin = common::admin(addr);
    let opts = AdminOptions::new();
    let topics = [
        NewTopic::new("by-time", 1, TopicReplication::Fixed(1)).set("segment.bytes", "1024"),
        NewTopic::new("by-size", 1, TopicReplication::Fixed(1))
            .set("segment.bytes", "1024")
            .set("retention.bytes", "3000"),
    ];
    assert!(
        admin
            .create_topics(&topics, &opts)
            .await
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    let producer = common::producer(addr, &[("linger.ms", "0")]);
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    produce(&producer, "by-time", 0, 60, Some(hour_ago)).await;
    produce(&producer, "by-size", 0, 60, None).await;
    let consumer = common::consumer(addr);
    assert_eq!(
        consumer
            .fetch_watermarks("by-time", 0, Duration::from_secs(5))
            .unwrap(),
        (0, 60)
    );

    // Online change: records an hour old fall out of a one-minute retention without a restart.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("by-time"))
        .set("retention.ms", "60000")
        .set("segment.bytes", "1024");
    assert!(admin.alter_configs(&[alter], &opts).await.unwrap()[0].is_ok());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (low, high) = consumer
            .fetch_watermarks("by-time", 0, Duration::from_secs(5))
            .unwrap();
        let (size_low, size_high) = consumer
            .fetch_watermarks("by-size", 0, Duration::from_secs(5))
            .unwrap();
        if low == 60 && size_low > 0 {
            assert_eq!(high, 60);
            assert_eq!(size_high, 60);
            let kept = broker.store().offsets("by-size", 0).unwrap();
            assert!(
                kept.log_start < 60,
                "retention.bytes keeps the newest segments"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention did not run: by-time {low}..{high}, by-size {size_low}..{size_high}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.shutdown().await;
}
