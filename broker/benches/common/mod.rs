//! Helpers shared by the benches.

pub mod ceiling;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One v2 batch of `records` keyless records of `record_bytes` bytes each: from a producer without idempotence
/// (`producer` None, base sequence -1) or from producer id `.0` with base sequence `.1`.
pub fn batch(records: usize, record_bytes: usize, producer: Option<(i64, i32)>) -> Bytes {
    let value = Bytes::from(vec![b'x'; record_bytes]);
    let (producer_id, producer_epoch, base_sequence) = match producer {
        Some((id, sequence)) => (id, 0, sequence),
        None => (-1, -1, -1),
    };
    let records: Vec<Record> = (0..records as i64)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // kafka-protocol's encoder starts a new batch whenever `offset - sequence` changes; keeping it
            // constant makes this one batch.
            sequence: base_sequence + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encoding into memory");
    buf.freeze()
}
