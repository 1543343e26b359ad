//! Record batch (magic v2) headers: parsing, validation and offset assignment.
//!
//! Batches are stored exactly as the producer sent them. The broker only reads the fixed 61-byte header, checks
//! the CRC32C (which covers everything from `attributes` to the end, so rewriting `baseOffset` and
//! `partitionLeaderEpoch` does not invalidate it) and overwrites the base offset. Records are never decompressed
//! on the write path.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::BatchError;

/// Size of the fixed v2 batch header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// `baseOffset` (8) + `batchLength` (4): the part of the header not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// The fields of a batch header the broker uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the `batchLength` field; the whole batch is `batch_length + 12` bytes.
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads a header from the start of `buf` without validating anything but the length.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let mut b = buf;
        let base_offset = b.get_i64();
        let batch_length = b.get_i32();
        let _leader_epoch = b.get_i32();
        let magic = b.get_i8();
        let crc = b.get_u32();
        let attributes = b.get_i16();
        let last_offset_delta = b.get_i32();
        let base_timestamp = b.get_i64();
        let max_timestamp = b.get_i64();
        let producer_id = b.get_i64();
        let producer_epoch = b.get_i16();
        let base_sequence = b.get_i32();
        let record_count = b.get_i32();
        Ok(Self {
            base_offset,
            batch_length,
            magic,
            crc,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        })
    }

    /// Total size of the batch on the wire and on disk.
    pub fn total_len(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Number of offsets the batch occupies.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// Whether the batch comes from an idempotent (or transactional) producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence number of the batch's last record; sequences wrap from `i32::MAX` to 0, as Kafka's do.
    pub fn last_sequence(&self) -> i32 {
        let base = i64::from(self.base_sequence);
        let last = base + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }

    /// Whether the batch is a transaction control batch (commit/abort marker).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// Checks one complete batch: magic 2, a length that fits, a sane offset delta and a matching CRC32C.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic {
            magic: header.magic,
        });
    }
    let min_length = (HEADER_LEN - LOG_OVERHEAD) as i32;
    if header.batch_length < min_length {
        return Err(BatchError::BadLength {
            length: header.batch_length,
            min: min_length,
        });
    }
    if header.total_len() > batch.len() {
        return Err(BatchError::Truncated {
            needed: header.total_len(),
            available: batch.len(),
        });
    }
    if header.last_offset_delta < 0 || header.record_count < 0 {
        return Err(BatchError::BadCounts {
            last_offset_delta: header.last_offset_delta,
            record_count: header.record_count,
        });
    }
    let actual = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..header.total_len()]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        });
    }
    debug_assert_eq!(batch[MAGIC_OFFSET] as i8, header.magic);
    debug_assert_eq!(
        &batch[CRC_OFFSET..CRC_OFFSET + 4],
        &header.crc.to_be_bytes()
    );
    Ok(header)
}

/// Splits a produce payload into validated batches. A payload must hold whole batches only.
pub fn split_batches(mut records: Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut out = Vec::new();
    while !records.is_empty() {
        let header = validate(&records)?;
        out.push((header, records.split_to(header.total_len())));
    }
    if out.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(out)
}

/// Copies a validated batch with its base offset set to `base_offset` (the only bytes the broker changes).
pub fn with_base_offset(batch: &[u8], base_offset: i64, out: &mut BytesMut) {
    out.reserve(batch.len());
    out.put_i64(base_offset);
    out.put_slice(&batch[8..]);
}

/// Walks the batch headers of a contiguous byte range and returns the length of the prefix made of whole
/// batches (used to trim a fetch read to batch boundaries and to find the valid end of a segment).
pub fn whole_batches_len(buf: &[u8]) -> usize {
    let mut pos = 0;
    while let Ok(header) = BatchHeader::parse(&buf[pos..]) {
        if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32
            || pos + header.total_len() > buf.len()
        {
            break;
        }
        pos += header.total_len();
    }
    pos
}

/// Records in the whole batches at the start of `batches` (a fetch response's record set); a trailing partial
/// batch is not counted.
pub fn count_records(mut batches: &[u8]) -> u64 {
    // batchLength sits at bytes 8..12 and recordCount at 57..61 of a v2 batch.
    let mut records = 0;
    while batches.len() >= 61 {
        let length = i32::from_be_bytes([batches[8], batches[9], batches[10], batches[11]]);
        let total = usize::try_from(length).unwrap_or(0) + LOG_OVERHEAD;
        if length <= 0 || total > batches.len() {
            break;
        }
        let count = i32::from_be_bytes([batches[57], batches[58], batches[59], batches[60]]);
        records += u64::try_from(count).unwrap_or(0);
        batches = &batches[total..];
    }
    records
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Builds a real v2 batch with `n` records through the kafka-protocol encoder.
    pub(crate) fn make_batch(n: usize, timestamp: i64) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: timestamp + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
        buf.freeze()
    }

    #[test]
    fn valid_batch_passes_and_reports_counts() {
        let batch = make_batch(3, 1000);
        let header = validate(&batch).unwrap();
        assert_eq!(header.record_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.max_timestamp, 1002);
        assert_eq!(header.total_len(), batch.len());
    }

    #[test]
    fn flipped_payload_byte_fails_crc() {
        let mut batch = BytesMut::from(&make_batch(2, 0)[..]);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(matches!(
            validate(&batch),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn wrong_magic_is_rejected() {
        let mut batch = BytesMut::from(&make_batch(1, 0)[..]);
        batch[MAGIC_OFFSET] = 1;
        assert!(matches!(
            validate(&batch),
            Err(BatchError::UnsupportedMagic { magic: 1 })
        ));
    }

    #[test]
    fn rewriting_base_offset_keeps_crc_valid() {
        let batch = make_batch(2, 0);
        let mut out = BytesMut::new();
        with_base_offset(&batch, 42, &mut out);
        let header = validate(&out).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.last_offset(), 43);
    }

    #[test]
    fn truncated_batch_is_rejected_and_trimmed() {
        let batch = make_batch(2, 0);
        assert!(matches!(
            validate(&batch[..batch.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        let mut two = BytesMut::new();
        two.extend_from_slice(&batch);
        two.extend_from_slice(&batch[..batch.len() - 5]);
        assert_eq!(whole_batches_len(&two), batch.len());
    }
}
