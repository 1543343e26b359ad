//! One partition's log: an ordered list of segments, the last one active.
//!
//! All methods are synchronous and called with the partition's mutex held; they only touch the page cache
//! (write, pread) except recovery and deletion. Reading the bytes of a fetch happens outside the lock through
//! [`ReadPlan`], so a slow consumer never blocks producers.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use tracing::{info, warn};

use super::batch::{self, BatchHeader};
use super::cleaner::{self, Cleaned, SegmentRef};
use super::config::{TopicConfig, write_atomic};
use super::producer::{Checked, ProducerStates};
use super::segment::{Recovery, Segment};
use crate::error::{Error, Result};

const LOG_START_FILE: &str = "log-start-offset";
/// Segments at the log's end replayed on start to rebuild the idempotent producers' state. The batches a
/// producer may still retry are the last ones it wrote before the restart, so they are in the tail.
const PRODUCER_RECOVERY_SEGMENTS: usize = 2;
/// Kafka's `producer.id.expiration.ms` default: a producer idle this long is forgotten.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;

pub struct Partition {
    pub topic: String,
    pub index: i32,
    dir: PathBuf,
    segments: Vec<Segment>,
    log_start_offset: i64,
    producers: ProducerStates,
    /// Compaction bookkeeping: closed segments from this base offset on have not been cleaned yet.
    cleaned_up_to: i64,
    /// When a tombstone kept by the last cleaning expires (a new pass is due then).
    tombstone_expiry: Option<i64>,
    /// Traffic since the process started, for metrics.
    pub io: Arc<PartitionIo>,
    /// Bumped after every append to this partition: a long poll on one partition waits on this, so appends to
    /// other partitions do not wake it.
    pub(crate) appended: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Traffic through one partition since the process started: what producers appended (retried duplicates not
/// counted) and what fetches read (every reader: Kafka consumers and busbar's own routers).
#[derive(Debug, Default)]
pub struct PartitionIo {
    pub bytes_in: AtomicU64,
    pub records_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_out: AtomicU64,
}

impl PartitionIo {
    /// Counts a fetch's whole batches.
    pub(crate) fn read(&self, batches: &[u8]) {
        self.bytes_out
            .fetch_add(batches.len() as u64, Ordering::Relaxed);
        self.records_out
            .fetch_add(batch::count_records(batches), Ordering::Relaxed);
    }
}

/// Where a fetch reads, resolved under the lock and executed outside it.
pub struct ReadPlan {
    file: Arc<File>,
    path: PathBuf,
    position: u64,
    /// End of the segment's data when the plan was made: bytes past it may still be in flight.
    end: u64,
}

/// Offsets of a partition at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
}

impl Partition {
    /// Opens (or creates) the partition directory and recovers its segments.
    pub fn open(
        dir: PathBuf,
        topic: &str,
        index: i32,
        recovery: Recovery,
        now_ms: i64,
    ) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Scratch files of a compaction interrupted by a crash; the segments they were made from are intact.
        let _ = std::fs::remove_dir_all(dir.join(".cleaning"));
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let name = entry.map_err(|e| Error::io(&dir, e))?.file_name();
            let name = name.to_string_lossy();
            if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<i64>().ok())
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::new();
        let mut expected: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            if expected.is_some_and(|next| next != base) {
                // A segment that does not start where the previous one ends would be a gap: drop it and the rest.
                warn!(%topic, partition = index, base, "segment does not continue the log; dropping it and later ones");
                for &later in &bases[i..] {
                    Segment::open(&dir, later, Recovery::Trusted, now_ms, true)?
                        .0
                        .delete()?;
                }
                break;
            }
            // Only a closed segment rewritten by compaction may skip offsets; the active one never does.
            let allow_gaps =
                i + 1 < bases.len() && super::segment::cleaned_marker(&dir, base).exists();
            let (segment, cut) = Segment::open(&dir, base, recovery, now_ms, allow_gaps)?;
            if cut > 0 {
                warn!(%topic, partition = index, segment = %segment.path().display(), bytes = cut,
                    "truncated a torn or corrupt tail");
            }
            expected = Some(segment.next_offset());
            segments.push(segment);
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0, now_ms)?);
        }
        let persisted = std::fs::read_to_string(dir.join(LOG_START_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let first = segments[0].base_offset;
        let end = segments.last().map_or(0, Segment::next_offset);
        let log_start_offset = persisted.unwrap_or(first).clamp(first, end);
        let mut producers = ProducerStates::default();
        let tail = segments.len().saturating_sub(PRODUCER_RECOVERY_SEGMENTS);
        for segment in &segments[tail..] {
            for header in segment.headers() {
                producers.observe(&header, now_ms);
            }
        }
        Ok(Self {
            topic: topic.to_owned(),
            index,
            dir,
            segments,
            log_start_offset,
            producers,
            cleaned_up_to: 0,
            io: Arc::default(),
            tombstone_expiry: None,
            appended: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    fn active(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a partition always has an active segment")
    }

    pub fn offsets(&self) -> Offsets {
        Offsets {
            log_start: self.log_start_offset,
            high_watermark: self.next_offset(),
        }
    }

    pub fn next_offset(&self) -> i64 {
        self.segments.last().map_or(0, Segment::next_offset)
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }

    /// Stamps offsets on validated batches and appends them. Returns the first offset assigned and the file
    /// that now holds them (for fsync). Batches of idempotent producers are checked first: a retry of a batch
    /// already written appends nothing and returns the original offset (see [`super::producer`]).
    pub fn append(
        &mut self,
        batches: &[(BatchHeader, Bytes)],
        config: &TopicConfig,
        now_ms: i64,
    ) -> Result<(i64, Arc<File>)> {
        let mut producer_updates = None;
        if batches.iter().any(|(h, _)| h.has_producer_id()) {
            let headers: Vec<BatchHeader> = batches.iter().map(|(h, _)| *h).collect();
            match self.producers.check(&headers, self.next_offset()) {
                Ok(Checked::Append(updates)) => producer_updates = Some(updates),
                Ok(Checked::Duplicate(original)) => {
                    return Ok((original.base_offset, Arc::clone(self.active().file())));
                }
                Err(source) => {
                    return Err(Error::Sequence {
                        topic: self.topic.clone(),
                        partition: self.index,
                        source,
                    });
                }
            }
        }
        let total: usize = batches.iter().map(|(h, _)| h.total_len()).sum();
        let active = self.active();
        let too_old = now_ms - active.created_ms >= config.segment_ms;
        if active.size() > 0 && (active.size() + total as u64 > config.segment_bytes || too_old) {
            self.roll(now_ms)?;
        }
        let base_offset = self.next_offset();
        let mut next = base_offset;
        let mut data = BytesMut::with_capacity(total);
        let mut headers = Vec::with_capacity(batches.len());
        for (header, bytes) in batches {
            batch::with_base_offset(bytes, next, &mut data);
            headers.push(BatchHeader {
                base_offset: next,
                ..*header
            });
            next += header.offset_count();
        }
        let active = self.active();
        active.append(&data, &headers)?;
        let file = Arc::clone(active.file());
        self.io.bytes_in.fetch_add(total as u64, Ordering::Relaxed);
        let records: i64 = batches
            .iter()
            .map(|(h, _)| i64::from(h.record_count.max(0)))
            .sum();
        self.io
            .records_in
            .fetch_add(records as u64, Ordering::Relaxed);
        if let Some(updates) = producer_updates {
            self.producers.apply(updates, now_ms);
        }
        Ok((base_offset, file))
    }

    /// Closes the active segment and starts a new one at the next offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let base = self.next_offset();
        let segment = Segment::create(&self.dir, base, now_ms)?;
        info!(topic = %self.topic, partition = self.index, base_offset = base, "segment rolled");
        self.segments.push(segment);
        Ok(())
    }

    /// Resolves a fetch at `offset`. Ok(None) means the offset is the high watermark (nothing to read yet).
    pub fn plan_read(&self, offset: i64) -> Result<Option<ReadPlan>> {
        let offsets = self.offsets();
        if offset < offsets.log_start || offset > offsets.high_watermark {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.index,
                offset,
                start: offsets.log_start,
                end: offsets.high_watermark,
            });
        }
        if offset == offsets.high_watermark {
            return Ok(None);
        }
        let slot = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .max(1)
            - 1;
        for segment in &self.segments[slot..] {
            let position = segment.position_of(offset);
            if position < segment.size() {
                return Ok(Some(ReadPlan {
                    file: Arc::clone(segment.file()),
                    path: segment.path().to_owned(),
                    position,
                    end: segment.size(),
                }));
            }
        }
        Ok(None)
    }

    /// First offset whose record timestamp is at least `timestamp`, with that timestamp.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for segment in &self.segments {
            if let Some((pos, header)) = segment.batch_for_timestamp(timestamp) {
                if header.last_offset() < self.log_start_offset {
                    continue;
                }
                let found = self.record_in_batch(segment, pos, |offset, ts| {
                    ts >= timestamp && offset >= self.log_start_offset
                })?;
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        Ok(None)
    }

    /// Offset and timestamp of the record with the largest timestamp (ListOffsets "max timestamp").
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let Some(segment) = self
            .segments
            .iter()
            .filter(|s| s.size() > 0)
            .max_by_key(|s| s.max_timestamp())
        else {
            return Ok(None);
        };
        let max = segment.max_timestamp();
        let pos = segment.position_of(segment.max_timestamp_batch());
        self.record_in_batch(segment, pos, |_, ts| ts == max)
    }

    /// Decodes the batch at `pos` (decompressing it) and returns the first record matching `pred`.
    fn record_in_batch(
        &self,
        segment: &Segment,
        pos: u64,
        pred: impl Fn(i64, i64) -> bool,
    ) -> Result<Option<(i64, i64)>> {
        let Some(raw) = segment.read_batch(pos)? else {
            return Ok(None);
        };
        let mut raw = raw.freeze();
        let set = RecordBatchDecoder::decode(&mut raw).map_err(|e| Error::Corrupt {
            path: segment.path().to_owned(),
            position: pos,
            reason: e.to_string(),
        })?;
        Ok(set
            .records
            .iter()
            .find(|r| pred(r.offset, r.timestamp))
            .map(|r| (r.offset, r.timestamp)))
    }

    /// Moves the log start offset forward (DeleteRecords). Whole segments below it are removed.
    pub fn delete_records(&mut self, before: i64) -> Result<i64> {
        let end = self.next_offset();
        let target = if before == -1 { end } else { before };
        if target < 0 || target > end {
            return Err(Error::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.index,
                offset: before,
                start: self.log_start_offset,
                end,
            });
        }
        if target > self.log_start_offset {
            self.log_start_offset = target;
            write_atomic(
                &self.dir.join(LOG_START_FILE),
                target.to_string().as_bytes(),
            )?;
            self.drop_segments_below_start()?;
        }
        Ok(self.log_start_offset)
    }

    fn drop_segments_below_start(&mut self) -> Result<()> {
        while self.segments.len() > 1 && self.segments[1].base_offset <= self.log_start_offset {
            self.segments.remove(0).delete()?;
        }
        Ok(())
    }

    /// Background housekeeping: roll an old active segment, then apply retention by time and by size.
    /// Returns how many segments were deleted.
    pub fn housekeep(&mut self, config: &TopicConfig, now_ms: i64) -> Result<usize> {
        self.producers.expire(now_ms, PRODUCER_ID_EXPIRATION_MS);
        let active = self.segments.last().expect("active segment");
        let expired = config.retention_ms >= 0
            && active.max_timestamp() >= 0
            && now_ms - active.max_timestamp() > config.retention_ms;
        if active.size() > 0 && (now_ms - active.created_ms >= config.segment_ms || expired) {
            self.roll(now_ms)?;
        }
        let mut deleted = 0;
        let mut total = self.size_bytes() as i64;
        while config.cleanup.delete && self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let by_time = config.retention_ms >= 0
                && now_ms - oldest.max_timestamp().max(0) > config.retention_ms;
            let by_size = config.retention_bytes >= 0
                && total - oldest.size() as i64 >= config.retention_bytes;
            if !(by_time || by_size) {
                break;
            }
            let segment = self.segments.remove(0);
            total -= segment.size() as i64;
            info!(topic = %self.topic, partition = self.index, base_offset = segment.base_offset,
                reason = if by_time { "retention.ms" } else { "retention.bytes" }, "segment deleted");
            segment.delete()?;
            deleted += 1;
        }
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset);
        Ok(deleted)
    }

    /// The closed segments to compact, when a cleaning pass is due: a segment was closed since the last pass,
    /// or a tombstone it kept has expired.
    /// Returns the segments, the scratch directory and the base offset of the active segment (where the next
    /// dirty segment will start).
    pub fn compaction_plan(&self, now_ms: i64) -> Option<(Vec<SegmentRef>, PathBuf, i64)> {
        let closed = &self.segments[..self.segments.len() - 1];
        let dirty = closed
            .last()
            .is_some_and(|s| s.base_offset >= self.cleaned_up_to);
        let tombstones_due = self.tombstone_expiry.is_some_and(|t| t <= now_ms);
        if !(dirty || tombstones_due) {
            return None;
        }
        let refs = closed
            .iter()
            .map(|s| SegmentRef {
                base_offset: s.base_offset,
                file: Arc::clone(s.file()),
                path: s.path().to_owned(),
                size: s.size(),
            })
            .collect();
        let active_base = self.segments.last().map_or(0, |s| s.base_offset);
        Some((refs, self.dir.join(".cleaning"), active_base))
    }

    /// Swaps cleaned segments in for the ones they were made from. A segment deleted or changed meanwhile
    /// (retention, DeleteRecords) is skipped and its scratch files dropped.
    pub fn install_cleaned(
        &mut self,
        cleaned: Vec<Cleaned>,
        stats: &cleaner::Stats,
        planned_up_to: i64,
        now_ms: i64,
    ) -> Result<usize> {
        let mut installed = 0;
        for c in cleaned {
            let slot = self.segments[..self.segments.len() - 1]
                .iter()
                .position(|s| s.base_offset == c.base_offset && s.size() == c.source_size);
            if let Some(i) = slot {
                let target = self.segments[i].path().to_owned();
                let marker = super::segment::cleaned_marker(&self.dir, c.base_offset);
                std::fs::File::create(&marker).map_err(|e| Error::io(&marker, e))?;
                super::config::sync_dir(&self.dir)?;
                let scratch_log = super::segment::log_path(&c.scratch, c.base_offset);
                for ext in ["index", "timeindex", "log"] {
                    let from = scratch_log.with_extension(ext);
                    let to = target.with_extension(ext);
                    std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
                }
                super::config::sync_dir(&self.dir)?;
                let (segment, _) =
                    Segment::open(&self.dir, c.base_offset, Recovery::Trusted, now_ms, true)?;
                self.segments[i] = segment;
                installed += 1;
            }
            let _ = std::fs::remove_dir_all(&c.scratch);
        }
        self.cleaned_up_to = planned_up_to;
        self.tombstone_expiry = stats.next_tombstone_expiry;
        if installed > 0 {
            info!(topic = %self.topic, partition = self.index, segments = installed,
                records_removed = stats.records_removed, bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after, "log compacted");
        }
        Ok(installed)
    }

    /// Flushes the active segment to disk.
    pub fn sync(&self) -> Result<()> {
        let active = self.segments.last().expect("active segment");
        active
            .file()
            .sync_data()
            .map_err(|e| Error::io(active.path(), e))
    }
}

impl ReadPlan {
    /// Reads whole batches starting at the planned position: up to `max_bytes`, but always at least the first
    /// batch even when it is larger (as Kafka does, so a consumer can always make progress).
    pub fn read(&self, max_bytes: usize) -> Result<Bytes> {
        let available = (self.end - self.position) as usize;
        let mut len = available.min(max_bytes.max(batch::HEADER_LEN));
        let mut buf = BytesMut::zeroed(len);
        self.file
            .read_exact_at(&mut buf, self.position)
            .map_err(|e| Error::io(&self.path, e))?;
        let mut whole = batch::whole_batches_len(&buf);
        if whole == 0 {
            // The first batch is larger than max_bytes: read exactly that batch.
            let header = BatchHeader::parse(&buf).map_err(|e| Error::Corrupt {
                path: self.path.clone(),
                position: self.position,
                reason: e.to_string(),
            })?;
            len = header.total_len().min(available);
            buf = BytesMut::zeroed(len);
            self.file
                .read_exact_at(&mut buf, self.position)
                .map_err(|e| Error::io(&self.path, e))?;
            whole = batch::whole_batches_len(&buf);
        }
        buf.truncate(whole);
        Ok(buf.freeze())
    }
}
