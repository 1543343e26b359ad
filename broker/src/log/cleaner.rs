//! Log compaction (`cleanup.policy=compact`): closed segments are rewritten keeping only the latest record of
//! each key, as Kafka's log cleaner does.
//!
//! - Only closed segments are cleaned; the active one is never touched. Offsets are preserved: a cleaned
//!   segment has gaps where records were removed, and consumers skip them (as with Kafka).
//! - A batch whose records are all kept is copied byte for byte (never recompressed); a batch that loses some
//!   records is re-encoded with its own compression codec; a batch that loses all of them disappears. The last
//!   batch of each segment is always kept whole, so every segment still ends where the next one starts.
//! - Records without a key cannot be compacted: produce refuses them on compacted topics, as Kafka does, and
//!   the cleaner drops any it finds.
//! - A tombstone (a key with a null value) is kept while it is younger than `delete.retention.ms` (by record
//!   timestamp), so a consumer that is behind still sees the delete, then removed.
//!
//! The work is split so the partition lock is held only to take a plan and to swap the cleaned files in:
//! [`clean`] reads the closed segments through their (immutable) files and writes the new ones into a scratch
//! directory.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{BatchHeader, HEADER_LEN};
use super::segment::Segment;
use crate::error::{Error, Result};

/// A closed segment as the cleaner sees it: its file and how much of it is data.
pub struct SegmentRef {
    pub base_offset: i64,
    pub file: Arc<File>,
    pub path: PathBuf,
    pub size: u64,
}

/// What one cleaning pass produced for one segment.
pub struct Cleaned {
    pub base_offset: i64,
    /// The size of the segment the rewrite was made from (the swap checks it is unchanged).
    pub source_size: u64,
    /// A scratch directory holding `<base>.log`, `.index` and `.timeindex`.
    pub scratch: PathBuf,
}

/// Totals of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Earliest wall-clock time at which a kept tombstone expires (a later pass removes it).
    pub next_tombstone_expiry: Option<i64>,
}

/// One batch read back from a segment.
struct RawBatch {
    header: BatchHeader,
    bytes: Bytes,
}

fn read_batches(seg: &SegmentRef) -> Result<Vec<RawBatch>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos + HEADER_LEN as u64 <= seg.size {
        let mut head = [0u8; HEADER_LEN];
        seg.file
            .read_exact_at(&mut head, pos)
            .map_err(|e| Error::io(&seg.path, e))?;
        let header = BatchHeader::parse(&head).map_err(|e| corrupt(seg, pos, e.to_string()))?;
        let len = header.total_len();
        if len < HEADER_LEN || pos + len as u64 > seg.size {
            return Err(corrupt(
                seg,
                pos,
                format!("batch of {len} bytes overruns the segment"),
            ));
        }
        let mut bytes = vec![0u8; len];
        seg.file
            .read_exact_at(&mut bytes, pos)
            .map_err(|e| Error::io(&seg.path, e))?;
        out.push(RawBatch {
            header,
            bytes: Bytes::from(bytes),
        });
        pos += len as u64;
    }
    Ok(out)
}

fn corrupt(seg: &SegmentRef, position: u64, reason: String) -> Error {
    Error::Corrupt {
        path: seg.path.clone(),
        position,
        reason,
    }
}

fn decode(seg: &SegmentRef, batch: &RawBatch) -> Result<(Compression, Vec<Record>)> {
    let mut buf = batch.bytes.clone();
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
        corrupt(
            seg,
            0,
            format!("batch at offset {}: {e}", batch.header.base_offset),
        )
    })?;
    Ok((set.compression, set.records))
}

/// Cleans `segments` (the closed segments of one partition, oldest first) into scratch directories under
/// `scratch_root`. Segments that would not change are left out of the result.
pub fn clean(
    segments: &[SegmentRef],
    scratch_root: &Path,
    delete_retention_ms: i64,
    now_ms: i64,
) -> Result<(Vec<Cleaned>, Stats)> {
    // Pass 1: the offset of the latest record of every key.
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    for seg in segments {
        for batch in read_batches(seg)? {
            if batch.header.is_control() {
                continue;
            }
            for r in decode(seg, &batch)?.1 {
                if let Some(key) = r.key {
                    latest.insert(Bytes::copy_from_slice(&key), r.offset);
                }
            }
        }
    }
    // Pass 2: rewrite each segment with what survives.
    let horizon = now_ms - delete_retention_ms;
    let mut stats = Stats::default();
    let mut out = Vec::new();
    for seg in segments {
        let batches = read_batches(seg)?;
        let mut data = BytesMut::new();
        let mut changed = false;
        let last = batches.len().saturating_sub(1);
        for (i, batch) in batches.iter().enumerate() {
            if i == last || batch.header.is_control() {
                data.extend_from_slice(&batch.bytes);
                continue;
            }
            let (compression, records) = decode(seg, batch)?;
            let total = records.len();
            let mut kept: Vec<Record> = records
                .into_iter()
                .filter(|r| {
                    let Some(key) = &r.key else { return false };
                    if latest.get(key) != Some(&r.offset) {
                        return false;
                    }
                    if r.value.is_none() {
                        if r.timestamp < horizon {
                            return false;
                        }
                        let expiry = r.timestamp + delete_retention_ms;
                        stats.next_tombstone_expiry = Some(
                            stats
                                .next_tombstone_expiry
                                .map_or(expiry, |e| e.min(expiry)),
                        );
                    }
                    true
                })
                .collect();
            stats.records_removed += (total - kept.len()) as u64;
            if let Some(first) = kept.first().map(|r| r.offset)
                && batch.header.producer_id < 0
            {
                // Without a producer the batch's base sequence must stay -1 (the encoder derives it from the
                // first record's sequence, which decoding set to -1 + its offset delta).
                for r in &mut kept {
                    r.sequence = (r.offset - first) as i32 - 1;
                }
            }
            if kept.len() == total {
                data.extend_from_slice(&batch.bytes);
            } else if !kept.is_empty() {
                changed = true;
                RecordBatchEncoder::encode(
                    &mut data,
                    &kept,
                    &RecordEncodeOptions {
                        version: 2,
                        compression,
                    },
                )
                .map_err(|e| corrupt(seg, 0, format!("re-encoding a cleaned batch: {e}")))?;
            } else {
                changed = true;
            }
        }
        stats.bytes_before += seg.size;
        stats.bytes_after += data.len() as u64;
        if !changed {
            continue;
        }
        let scratch = scratch_root.join(format!("{:020}", seg.base_offset));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        let headers = headers_of(&data).map_err(|reason| corrupt(seg, 0, reason))?;
        let mut segment = Segment::create(&scratch, seg.base_offset, now_ms)?;
        segment.append(&data, &headers)?;
        segment
            .file()
            .sync_all()
            .map_err(|e| Error::io(segment.path(), e))?;
        out.push(Cleaned {
            base_offset: seg.base_offset,
            source_size: seg.size,
            scratch,
        });
    }
    Ok((out, stats))
}

fn headers_of(mut data: &[u8]) -> std::result::Result<Vec<BatchHeader>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let h = BatchHeader::parse(data).map_err(|e| e.to_string())?;
        out.push(h);
        data = &data[h.total_len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: &str, value: Option<&str>, ts: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset,
            sequence: offset as i32 - 1,
            timestamp: ts,
            key: Some(Bytes::from(key.to_owned())),
            value: value.map(|v| Bytes::from(v.to_owned())),
            headers: Default::default(),
        }
    }

    fn encode(records: &[Record], compression: Compression) -> BytesMut {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        buf
    }

    fn segment(dir: &Path, base: i64, batches: &[BytesMut]) -> SegmentRef {
        let mut seg = Segment::create(dir, base, 0).unwrap();
        let mut data = BytesMut::new();
        for b in batches {
            data.extend_from_slice(b);
        }
        let headers = headers_of(&data).unwrap();
        seg.append(&data, &headers).unwrap();
        SegmentRef {
            base_offset: base,
            file: Arc::clone(seg.file()),
            path: seg.path().to_owned(),
            size: seg.size(),
        }
    }

    #[test]
    fn partial_batches_are_re_encoded_with_their_codec_whole_ones_copied() {
        let dir = std::env::temp_dir().join(format!("busbar-cleaner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = 1_000_000;
        // Batch 1 (gzip): a@0 b@1 c@2, all superseded later. Batch 2: d@3, kept whole. Batch 3: b@4, a young
        // tombstone of c@5 and an old one of e@6. Batch 4, the segment's last: a@7.
        let b1 = encode(
            &[
                record(0, "a", Some("a0"), now),
                record(1, "b", Some("b1"), now),
                record(2, "c", Some("c2"), now),
            ],
            Compression::Gzip,
        );
        let b2 = encode(&[record(3, "d", Some("d3"), now)], Compression::None);
        let b3 = encode(
            &[
                record(4, "b", Some("b4"), now),
                record(5, "c", None, now),
                record(6, "e", None, now - 10_000),
            ],
            Compression::None,
        );
        let b4 = encode(&[record(7, "a", Some("a7"), now)], Compression::None);
        let seg = segment(&dir, 0, &[b1, b2.clone(), b3, b4]);
        let scratch = dir.join(".cleaning");
        let (cleaned, stats) = clean(std::slice::from_ref(&seg), &scratch, 5_000, now).unwrap();
        assert_eq!(cleaned.len(), 1);
        // a@0, b@1, c@2 superseded; e@6 an expired tombstone.
        assert_eq!(stats.records_removed, 4);
        assert_eq!(stats.next_tombstone_expiry, Some(now + 5_000));
        let log = std::fs::read(super::super::segment::log_path(&cleaned[0].scratch, 0)).unwrap();
        let mut buf = Bytes::from(log);
        let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
        let kept: Vec<(i64, Option<Bytes>)> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| (r.offset, r.value.clone())))
            .collect();
        assert_eq!(
            kept,
            vec![
                (3, Some(Bytes::from("d3"))),
                (4, Some(Bytes::from("b4"))),
                (5, None),
                (7, Some(Bytes::from("a7"))),
            ]
        );
        // Batch 1 lost every record, batch 2 was copied byte for byte, batch 3 re-encoded.
        assert_eq!(sets.len(), 3);
        let raw = std::fs::read(super::super::segment::log_path(&cleaned[0].scratch, 0)).unwrap();
        assert_eq!(
            &raw[..b2.len()],
            &b2[..],
            "a whole batch is copied unchanged"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn re_encoding_keeps_the_codec() {
        let dir = std::env::temp_dir().join(format!("busbar-cleaner-codec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let b1 = encode(
            &[record(0, "a", Some("x"), 5), record(1, "b", Some("y"), 5)],
            Compression::Gzip,
        );
        let b2 = encode(&[record(2, "a", Some("z"), 5)], Compression::None);
        let seg = segment(&dir, 0, &[b1, b2]);
        let (cleaned, _) = clean(&[seg], &dir.join(".cleaning"), 0, 10).unwrap();
        let mut buf = Bytes::from(
            std::fs::read(super::super::segment::log_path(&cleaned[0].scratch, 0)).unwrap(),
        );
        let first = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(first.compression, Compression::Gzip);
        assert_eq!(first.records.len(), 1);
        assert_eq!(first.records[0].offset, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
