//! The embedded broker as the runtime's [`Bus`]: produce and fetch go straight to the log store, commits to the
//! group coordinator, with no network hop. Records are encoded as Kafka v2 batches, exactly as a client would
//! write them, so Kafka consumers of the same topics see the same bytes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use busbar_broker::LogStore;
use busbar_broker::group::GroupCoordinator;
use busbar_broker::group::types::{CommitPartition, CommitRequest};
use busbar_runtime::bus::{Bus, BusError, Fetched, Record, TopicSpec, partition_for_key};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// The in-process bus of `busbar serve`.
#[derive(Clone)]
pub struct EmbeddedBus {
    store: LogStore,
    groups: GroupCoordinator,
    round_robin: std::sync::Arc<AtomicU32>,
}

impl EmbeddedBus {
    pub fn new(store: LogStore, groups: GroupCoordinator) -> Self {
        Self { store, groups, round_robin: Default::default() }
    }

    /// The log store, for the API's topic views and metrics.
    pub fn store(&self) -> &LogStore {
        &self.store
    }

    /// The group coordinator, for the API's group views and metrics.
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }
}

fn err(operation: &'static str, topic: &str, e: impl std::fmt::Display) -> BusError {
    BusError::new(operation, topic, e.to_string(), true)
}

/// Encodes one record as a v2 batch, as a producer without idempotence would.
pub fn encode(record: &Record) -> Bytes {
    let now = busbar_runtime::envelope::now_ms();
    let headers = record
        .headers
        .iter()
        .map(|(k, v)| (kafka_protocol::protocol::StrBytes::from_string(k.clone()), v.clone()))
        .collect();
    let kafka = KafkaRecord {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: record.timestamp_ms.unwrap_or(now),
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
        delete_horizon: false,
    };
    let mut buf = BytesMut::with_capacity(128 + record.value.as_ref().map_or(0, Bytes::len));
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&kafka), &options).expect("encoding into memory cannot fail");
    buf.freeze()
}

/// Decodes every record of the batches in `raw` at or after `from`.
pub fn decode(topic: &str, partition: i32, mut raw: Bytes, from: i64) -> Result<Vec<Fetched>, BusError> {
    let sets = RecordBatchDecoder::decode_all(&mut raw).map_err(|e| err("fetch", topic, e))?;
    let mut out = Vec::new();
    for set in sets {
        for r in set.records {
            if r.offset < from || r.control {
                continue;
            }
            out.push(Fetched {
                partition,
                offset: r.offset,
                record: Record {
                    key: r.key,
                    value: r.value,
                    headers: r.headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    timestamp_ms: Some(r.timestamp),
                },
            });
        }
    }
    Ok(out)
}

impl Bus for EmbeddedBus {
    async fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> Result<(), BusError> {
        if self.store.topic_info(topic).is_ok() {
            return Ok(());
        }
        let configs: BTreeMap<String, String> = spec.configs.iter().cloned().collect();
        match self.store.create_topic(topic, spec.partitions, configs, false) {
            Ok(_) => Ok(()),
            // Lost a race with another creator: the topic exists, which is all we asked for.
            Err(_) if self.store.topic_info(topic).is_ok() => Ok(()),
            Err(e) => Err(BusError::new("create topic", topic, e.to_string(), false)),
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, BusError> {
        self.store.topic_info(topic).map(|t| t.partitions).map_err(|e| err("metadata", topic, e))
    }

    async fn produce(&self, topic: &str, partition: Option<i32>, record: Record) -> Result<(i32, i64), BusError> {
        let partition = match partition {
            Some(p) => p,
            None => {
                let count = self.partition_count(topic).await?;
                match &record.key {
                    Some(key) => partition_for_key(key, count),
                    None => (self.round_robin.fetch_add(1, Ordering::Relaxed) % count.max(1) as u32) as i32,
                }
            }
        };
        let appended =
            self.store.produce(topic, partition, encode(&record)).await.map_err(|e| err("produce", topic, e))?;
        Ok((partition, appended.base_offset))
    }

    async fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<Vec<Fetched>, BusError> {
        let fetched = self
            .store
            .fetch_wait(topic, partition, offset, max_bytes, max_wait)
            .await
            .map_err(|e| err("fetch", topic, e))?;
        decode(topic, partition, fetched.records, offset)
    }

    async fn offsets(&self, topic: &str, partition: i32) -> Result<(i64, i64), BusError> {
        self.store.offsets(topic, partition).map(|o| (o.log_start, o.high_watermark)).map_err(|e| err("offsets", topic, e))
    }

    async fn offset_for_time(&self, topic: &str, partition: i32, timestamp_ms: i64) -> Result<i64, BusError> {
        let found = self
            .store
            .list_offsets(topic, partition, busbar_broker::OffsetSpec::Timestamp(timestamp_ms))
            .map_err(|e| err("list offsets", topic, e))?;
        match found {
            Some((offset, _)) => Ok(offset),
            None => Ok(self.offsets(topic, partition).await?.1),
        }
    }

    async fn commit(&self, group: &str, topic: &str, partition: i32, offset: i64) -> Result<(), BusError> {
        let request = CommitRequest {
            group_id: group.to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            partitions: vec![CommitPartition {
                topic: topic.to_owned(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: None,
            }],
        };
        match self.groups.commit_offsets(&request).first() {
            Some(0) => Ok(()),
            Some(code) => Err(err("commit", topic, format!("the coordinator answered error code {code}"))),
            None => Err(err("commit", topic, "the coordinator answered nothing")),
        }
    }

    async fn committed(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        let topics = [(topic.to_owned(), vec![partition])];
        let rows = self
            .groups
            .fetch_offsets(group, None, Some(&topics))
            .map_err(|code| err("offset fetch", topic, format!("error code {code}")))?;
        Ok(rows.first().map(|r| r.offset).filter(|&o| o >= 0))
    }
}
