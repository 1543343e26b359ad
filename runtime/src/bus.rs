//! The bus as the runtime sees it. The router, replay and source connectors talk to the bus only through
//! [`Bus`]: the embedded broker in-process and an external Kafka-compatible cluster both implement it.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

/// One record to produce or one record read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the Unix epoch (`CreateTime`); `None` lets the bus stamp it.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// The first header named `name`, if it has a value.
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_ref())
    }
}

/// A record read from a topic partition, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub partition: i32,
    pub offset: i64,
    pub record: Record,
}

/// Why a bus operation failed. `retryable` tells the caller whether trying again can help.
#[derive(Debug, thiserror::Error)]
#[error("bus: {operation} on {topic}: {message}")]
pub struct BusError {
    pub operation: &'static str,
    pub topic: String,
    pub message: String,
    pub retryable: bool,
}

impl BusError {
    pub fn new(operation: &'static str, topic: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self { operation, topic: topic.to_owned(), message: message.into(), retryable }
    }
}

/// How a topic is created when it does not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub partitions: i32,
    /// Kafka topic configs, e.g. `retention.ms`, `cleanup.policy`.
    pub configs: Vec<(String, String)>,
}

/// The operations the runtime needs from a Kafka-compatible log.
///
/// Every method is safe to call concurrently. `produce` returns only once the record is durable by the bus's
/// policy (acks=all), which is what lets a webhook answer only after its event is on the bus.
pub trait Bus: Send + Sync + 'static {
    /// Creates the topic if it is missing; an existing topic is left as it is.
    fn ensure_topic(&self, topic: &str, spec: &TopicSpec) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Number of partitions of an existing topic.
    fn partition_count(&self, topic: &str) -> impl Future<Output = Result<i32, BusError>> + Send;

    /// Appends one record; `partition: None` partitions by key (murmur2, as Kafka clients do) or round-robin.
    /// Returns the partition and offset it was written at.
    fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        record: Record,
    ) -> impl Future<Output = Result<(i32, i64), BusError>> + Send;

    /// Reads records at and after `offset`, waiting up to `max_wait` for the first one.
    fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Vec<Fetched>, BusError>> + Send;

    /// Earliest and next (high-watermark) offsets of a partition.
    fn offsets(&self, topic: &str, partition: i32) -> impl Future<Output = Result<(i64, i64), BusError>> + Send;

    /// The first offset whose timestamp is at or after `timestamp_ms` (the end offset if none is).
    fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> impl Future<Output = Result<i64, BusError>> + Send;

    /// Stores a consumer-group position (the next offset to read), durably.
    fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// The committed position of a group on a partition, if any.
    fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> impl Future<Output = Result<Option<i64>, BusError>> + Send;
}

/// Kafka's default partitioner for keyed records: murmur2 of the key, positive, modulo the partition count.
/// Using the same function as the Java and librdkafka clients keeps a key on the same partition whoever writes it.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from org.apache.kafka.common.utils.UtilsTest#testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58897971);
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn keys_spread_and_stay_in_range() {
        for key in ["a", "b", "order-1", ""] {
            let p = partition_for_key(key.as_bytes(), 6);
            assert!((0..6).contains(&p), "{key} -> {p}");
            assert_eq!(p, partition_for_key(key.as_bytes(), 6));
        }
    }
}
