//! One segment: a `.log` file of record batches plus its sparse `.index` (offset -> file position) and
//! `.timeindex` (timestamp -> offset).
//!
//! File names are the zero-padded base offset, as in Kafka. Index entries are written as batches are appended
//! and kept in memory for lookups; they are rebuilt from the log whenever they cannot be trusted, so they are
//! never fsynced.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, BytesMut};

use super::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::{Error, Result};

/// Bytes of log between two offset index entries (Kafka's `index.interval.bytes`).
pub const INDEX_INTERVAL: u64 = 4096;
/// Batches remembered in [`Segment::recent`].
const RECENT: usize = 64;
const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

pub struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp`.
    max_timestamp_batch: i64,
    /// Wall-clock time of the first append, for roll by age.
    pub created_ms: i64,
    index: Vec<(u32, u32)>,
    time_index: Vec<(i64, u32)>,
    /// `(base offset, last offset, file position)` of the last batches indexed, oldest first: a consumer reading
    /// at the tail (the router, a caught-up Kafka consumer) finds its batch here without reading headers from
    /// the file.
    recent: VecDeque<(i64, i64, u64)>,
    index_file: File,
    time_index_file: File,
    bytes_since_index: u64,
}

/// How to treat existing bytes when opening a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// After a clean shutdown: trust the index files and only walk the batch headers after the last entry.
    Trusted,
    /// After a crash: check every batch's CRC and offset continuity, truncate at the first bad one and rebuild
    /// both indexes.
    Full,
}

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

/// An empty `<base>.cleaned` file beside a segment that log compaction rewrote: only such a segment may have
/// offset gaps between its batches. It is written before the cleaned files replace the old ones, so a crash
/// in between leaves a marked gapless segment (harmless), never an unmarked one with gaps.
pub fn cleaned_marker(dir: &Path, base_offset: i64) -> PathBuf {
    log_path(dir, base_offset).with_extension("cleaned")
}

fn open_rw(path: &Path, truncate: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Index files are opened in append mode so entry writes always land at the end, even after a rewrite.
fn open_index(path: &Path, truncate: bool) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    if truncate {
        file.set_len(0).map_err(|e| Error::io(path, e))?;
    }
    Ok(file)
}

impl Segment {
    /// Creates a new, empty segment (replacing any leftover files of the same name).
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Self> {
        let log_path = log_path(dir, base_offset);
        let file = open_rw(&log_path, true)?;
        let index_file = open_index(&log_path.with_extension("index"), true)?;
        let time_index_file = open_index(&log_path.with_extension("timeindex"), true)?;
        Ok(Self {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            max_timestamp_batch: base_offset,
            created_ms: now_ms,
            index: Vec::new(),
            time_index: Vec::new(),
            recent: VecDeque::new(),
            index_file,
            time_index_file,
            bytes_since_index: 0,
        })
    }

    /// Opens an existing segment. Returns the segment and the number of bytes cut from a torn or corrupt tail.
    ///
    /// `allow_gaps` is set for a segment rewritten by log compaction (see [`cleaned_marker`]): compaction
    /// removes records but keeps offsets, so its batches may skip offsets. Every other segment must be
    /// gapless, which is how a torn or corrupt tail is recognised.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        recovery: Recovery,
        now_ms: i64,
        allow_gaps: bool,
    ) -> Result<(Self, u64)> {
        let log_path = log_path(dir, base_offset);
        let file = open_rw(&log_path, false)?;
        let file_len = file.metadata().map_err(|e| Error::io(&log_path, e))?.len();
        let mut segment = Self::create_with(dir, base_offset, file, now_ms)?;
        let (start_pos, start_offset) = match recovery {
            Recovery::Trusted => segment.load_indexes(file_len).unwrap_or((0, base_offset)),
            Recovery::Full => (0, base_offset),
        };
        if start_pos == 0 {
            segment.reset_indexes()?;
        }
        let verify = recovery == Recovery::Full;
        let (valid_end, next_offset) =
            segment.scan(start_pos, start_offset, file_len, verify, allow_gaps)?;
        segment.size = valid_end;
        segment.next_offset = next_offset;
        let cut = file_len - valid_end;
        if cut > 0 {
            segment
                .file
                .set_len(valid_end)
                .map_err(|e| Error::io(&segment.log_path, e))?;
            segment
                .file
                .sync_all()
                .map_err(|e| Error::io(&segment.log_path, e))?;
        }
        if let Ok(meta) = segment.file.metadata()
            && let Ok(modified) = meta.modified()
            && let Ok(age) = modified.elapsed()
        {
            segment.created_ms = now_ms - age.as_millis() as i64;
        }
        Ok((segment, cut))
    }

    fn create_with(dir: &Path, base_offset: i64, file: File, now_ms: i64) -> Result<Self> {
        let log_path = log_path(dir, base_offset);
        let index_file = open_index(&log_path.with_extension("index"), false)?;
        let time_index_file = open_index(&log_path.with_extension("timeindex"), false)?;
        Ok(Self {
            base_offset,
            log_path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            max_timestamp_batch: base_offset,
            created_ms: now_ms,
            index: Vec::new(),
            time_index: Vec::new(),
            recent: VecDeque::new(),
            index_file,
            time_index_file,
            bytes_since_index: 0,
        })
    }

    /// Loads index files; returns where header scanning must resume, or None when they are unusable.
    fn load_indexes(&mut self, file_len: u64) -> Option<(u64, i64)> {
        let mut raw = Vec::new();
        let mut index_file = &self.index_file;
        std::io::Read::read_to_end(&mut index_file, &mut raw).ok()?;
        if raw.len() % OFFSET_ENTRY != 0 {
            return None;
        }
        let mut buf = &raw[..];
        let mut entries = Vec::with_capacity(raw.len() / OFFSET_ENTRY);
        while buf.has_remaining() {
            entries.push((buf.get_u32(), buf.get_u32()));
        }
        let monotonic = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let &(last_rel, last_pos) = entries.last()?;
        if !monotonic || u64::from(last_pos) >= file_len {
            return None;
        }
        let mut raw = Vec::new();
        let mut time_file = &self.time_index_file;
        std::io::Read::read_to_end(&mut time_file, &mut raw).ok()?;
        let mut buf = &raw[..raw.len() - raw.len() % TIME_ENTRY];
        let mut time_entries = Vec::new();
        while buf.has_remaining() {
            let (ts, rel) = (buf.get_i64(), buf.get_u32());
            if rel > last_rel {
                break; // written after the last offset entry we trust: the scan below re-adds it
            }
            time_entries.push((ts, rel));
        }
        if let Some(&(ts, rel)) = time_entries.last() {
            self.max_timestamp = ts;
            self.max_timestamp_batch = self.base_offset + i64::from(rel);
        }
        // Drop the last offset entry and re-scan from it so the tail (and its time entries) is rebuilt.
        entries.pop();
        self.index = entries;
        self.time_index = time_entries;
        self.rewrite_index_files().ok()?;
        Some((u64::from(last_pos), self.base_offset + i64::from(last_rel)))
    }

    fn reset_indexes(&mut self) -> Result<()> {
        self.index.clear();
        self.time_index.clear();
        self.max_timestamp = -1;
        self.rewrite_index_files()
    }

    fn rewrite_index_files(&mut self) -> Result<()> {
        let mut raw = Vec::with_capacity(self.index.len() * OFFSET_ENTRY);
        for (rel, pos) in &self.index {
            raw.extend_from_slice(&rel.to_be_bytes());
            raw.extend_from_slice(&pos.to_be_bytes());
        }
        let path = self.log_path.with_extension("index");
        self.index_file
            .set_len(0)
            .map_err(|e| Error::io(&path, e))?;
        (&self.index_file)
            .write_all(&raw)
            .map_err(|e| Error::io(&path, e))?;
        let mut raw = Vec::with_capacity(self.time_index.len() * TIME_ENTRY);
        for (ts, rel) in &self.time_index {
            raw.extend_from_slice(&ts.to_be_bytes());
            raw.extend_from_slice(&rel.to_be_bytes());
        }
        let path = self.log_path.with_extension("timeindex");
        self.time_index_file
            .set_len(0)
            .map_err(|e| Error::io(&path, e))?;
        (&self.time_index_file)
            .write_all(&raw)
            .map_err(|e| Error::io(&path, e))?;
        Ok(())
    }

    /// Walks batches from `pos`, re-indexing each, until the end of the file or the first batch that is torn,
    /// corrupt (when `verify`) or out of sequence. Returns the end of the last good batch and the next offset.
    fn scan(
        &mut self,
        mut pos: u64,
        mut next_offset: i64,
        file_len: u64,
        verify: bool,
        allow_gaps: bool,
    ) -> Result<(u64, i64)> {
        self.size = pos;
        self.recent.clear();
        self.bytes_since_index = INDEX_INTERVAL; // index the first batch scanned
        while let Some(header) = self.read_header(pos, file_len) {
            let in_sequence = if allow_gaps {
                header.base_offset >= next_offset
            } else {
                header.base_offset == next_offset
            };
            if !in_sequence || header.magic != 2 || header.last_offset_delta < 0 {
                break;
            }
            let end = pos + header.total_len() as u64;
            if end > file_len || header.total_len() < HEADER_LEN {
                break;
            }
            if verify {
                let mut whole = vec![0u8; header.total_len()];
                if self.file.read_exact_at(&mut whole, pos).is_err()
                    || batch::validate(&whole).is_err()
                {
                    break;
                }
            }
            self.index_batch(&header, pos)?;
            self.size = end;
            pos = end;
            next_offset = header.last_offset() + 1;
        }
        Ok((pos, next_offset))
    }

    fn read_header(&self, pos: u64, file_len: u64) -> Option<BatchHeader> {
        if pos + HEADER_LEN as u64 > file_len {
            return None;
        }
        let mut raw = [0u8; HEADER_LEN];
        self.file.read_exact_at(&mut raw, pos).ok()?;
        BatchHeader::parse(&raw).ok()
    }

    /// The headers of every batch in the segment, in order (producer state recovery reads the log's tail).
    pub fn headers(&self) -> Vec<BatchHeader> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(h) = self.read_header(pos, self.size) {
            if h.total_len() < HEADER_LEN {
                break;
            }
            out.push(h);
            pos += h.total_len() as u64;
        }
        out
    }

    /// Adds index entries for a batch written at `pos` and updates the segment's bookkeeping.
    ///
    /// Both indexes are sparse, as Kafka's: an entry every [`INDEX_INTERVAL`] bytes of log. The time entry
    /// written with it is the greatest timestamp so far and the batch holding it, when that grew since the last
    /// entry; lookups scan forward from an entry, so no batch before it can hold a later timestamp.
    fn index_batch(&mut self, header: &BatchHeader, pos: u64) -> Result<()> {
        let rel = (header.base_offset - self.base_offset) as u32;
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_batch = header.base_offset;
        }
        if self.bytes_since_index >= INDEX_INTERVAL {
            self.index.push((rel, pos as u32));
            let mut entry = [0u8; OFFSET_ENTRY];
            entry[..4].copy_from_slice(&rel.to_be_bytes());
            entry[4..].copy_from_slice(&(pos as u32).to_be_bytes());
            let path = self.log_path.with_extension("index");
            (&self.index_file)
                .write_all(&entry)
                .map_err(|e| Error::io(path, e))?;
            self.bytes_since_index = 0;
            if self
                .time_index
                .last()
                .is_none_or(|&(ts, _)| self.max_timestamp > ts)
            {
                // Entries stay strictly increasing in both timestamp and offset.
                let max_rel = (self.max_timestamp_batch - self.base_offset) as u32;
                self.time_index.push((self.max_timestamp, max_rel));
                let mut entry = [0u8; TIME_ENTRY];
                entry[..8].copy_from_slice(&self.max_timestamp.to_be_bytes());
                entry[8..].copy_from_slice(&max_rel.to_be_bytes());
                let path = self.log_path.with_extension("timeindex");
                (&self.time_index_file)
                    .write_all(&entry)
                    .map_err(|e| Error::io(path, e))?;
            }
        }
        self.bytes_since_index += header.total_len() as u64;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent
            .push_back((header.base_offset, header.last_offset(), pos));
        self.next_offset = header.last_offset() + 1;
        Ok(())
    }

    /// Appends already offset-stamped batches (one contiguous buffer) and indexes them.
    pub fn append(&mut self, data: &[u8], headers: &[BatchHeader]) -> Result<()> {
        self.file
            .write_all_at(data, self.size)
            .map_err(|e| Error::io(&self.log_path, e))?;
        let mut pos = self.size;
        for header in headers {
            self.index_batch(header, pos)?;
            pos += header.total_len() as u64;
        }
        self.size = pos;
        Ok(())
    }

    /// File position of the batch that contains `offset` (or the first batch after it), or `size` if none.
    pub fn position_of(&self, offset: i64) -> u64 {
        if offset >= self.next_offset {
            return self.size;
        }
        if let Some(&(oldest, _, _)) = self.recent.front()
            && offset >= oldest
        {
            // The batch holding `offset` is the last to start at or before it, unless compaction left a gap
            // after that one: then it is the next batch.
            let slot = self.recent.partition_point(|&(base, _, _)| base <= offset);
            let (_, last, pos) = self.recent[slot - 1];
            if offset <= last {
                return pos;
            }
            return self.recent.get(slot).map_or(self.size, |&(_, _, pos)| pos);
        }
        let rel = (offset - self.base_offset).max(0) as u32;
        let slot = self.index.partition_point(|&(r, _)| r <= rel);
        let mut pos = if slot == 0 {
            0
        } else {
            u64::from(self.index[slot - 1].1)
        };
        while let Some(header) = self.read_header(pos, self.size) {
            if header.last_offset() >= offset {
                return pos;
            }
            pos += header.total_len() as u64;
        }
        self.size
    }

    /// Position of the first batch whose max timestamp is at least `timestamp`, with its header.
    pub fn batch_for_timestamp(&self, timestamp: i64) -> Option<(u64, BatchHeader)> {
        if self.max_timestamp < timestamp {
            return None;
        }
        let slot = self.time_index.partition_point(|&(ts, _)| ts < timestamp);
        let start_offset = if slot == 0 {
            self.base_offset
        } else {
            self.base_offset + i64::from(self.time_index[slot - 1].1)
        };
        let mut pos = self.position_of(start_offset);
        while let Some(header) = self.read_header(pos, self.size) {
            if header.max_timestamp >= timestamp {
                return Some((pos, header));
            }
            pos += header.total_len() as u64;
        }
        None
    }

    /// Reads the whole batch at `pos`.
    pub fn read_batch(&self, pos: u64) -> Result<Option<BytesMut>> {
        let Some(header) = self.read_header(pos, self.size) else {
            return Ok(None);
        };
        let mut buf = BytesMut::zeroed(header.total_len());
        self.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| Error::io(&self.log_path, e))?;
        Ok(Some(buf))
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub fn max_timestamp_batch(&self) -> i64 {
        self.max_timestamp_batch
    }

    pub fn path(&self) -> &Path {
        &self.log_path
    }

    /// Removes the segment's files. Readers holding the file handle keep reading until they drop it.
    pub fn delete(self) -> Result<()> {
        for path in [
            self.log_path.clone(),
            self.log_path.with_extension("index"),
            self.log_path.with_extension("timeindex"),
            self.log_path.with_extension("cleaned"),
        ] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
