//! The durable group store: an append-only journal of framed, CRC-checked records (see [`super::codec`]).
//!
//! Why a journal of its own rather than an internal topic: committed offsets must be readable before the
//! first client connects and must survive a torn write, and a file of last-value-per-key records with a CRC
//! on each gives both with one `write` per commit. Recovery reads frames until the first one that is short or
//! fails its CRC, and truncates the file there (a kill -9 mid-write leaves at most one torn frame).
//! Compaction rewrites the live state to a temporary file, fsyncs it and renames it over the journal, so a
//! crash at any point leaves either the old journal or the new one, never a mix.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tokio::time::Instant;
use tracing::{info, warn};

use super::GroupConfig;
use super::classic::StoredClassic;
use super::codec::{self, FRAME_HEADER, Record};
use super::consumer::ConsumerGroup;
use super::offsets::OffsetMap;
use crate::error::Error;

const JOURNAL: &str = "groups.journal";
const JOURNAL_TMP: &str = "groups.journal.tmp";

/// What the journal held when it was opened.
#[derive(Debug, Default)]
pub struct Loaded {
    pub offsets: HashMap<String, OffsetMap>,
    pub classic: HashMap<String, StoredClassic>,
    pub consumer: HashMap<String, ConsumerGroup>,
    pub next_producer_id: i64,
    /// Bytes dropped from a torn or corrupt tail.
    pub truncated_bytes: u64,
}

/// The open journal.
#[derive(Debug)]
pub struct GroupStore {
    dir: PathBuf,
    file: File,
    len: u64,
    /// Size right after the last compaction (or open): compaction waits until the journal is 4x this.
    live_len: u64,
    fsync: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::io(path, source)
}

impl GroupStore {
    /// Opens (or creates) the journal in `dir`, replays it and truncates a torn tail.
    pub fn open(
        dir: &Path,
        cfg: &GroupConfig,
        now: Instant,
    ) -> Result<(GroupStore, Loaded), Error> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(JOURNAL);
        // A leftover temporary file is an unfinished compaction: the journal itself is still whole.
        let _ = fs::remove_file(dir.join(JOURNAL_TMP));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io(&path))?;
        let mut loaded = Loaded::default();
        let mut pos = 0usize;
        while pos + FRAME_HEADER <= data.len() {
            let len = u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
            let end = pos + FRAME_HEADER + len;
            if end > data.len() || crc32c::crc32c(&data[pos + FRAME_HEADER..end]) != crc {
                break;
            }
            let record = codec::decode(&data[pos + FRAME_HEADER..end], cfg, now).map_err(|e| Error::Corrupt {
                path: path.clone(),
                position: pos as u64,
                reason: format!("{}; the record has a valid checksum, so it was written by a newer busbar or the file was edited", e.0),
            })?;
            apply(&mut loaded, record);
            pos = end;
        }
        if pos < data.len() {
            loaded.truncated_bytes = (data.len() - pos) as u64;
            warn!(path = %path.display(), valid_bytes = pos, dropped_bytes = loaded.truncated_bytes, "group journal has a torn or corrupt tail; truncating it");
            file.set_len(pos as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        info!(path = %path.display(), bytes = pos, groups = loaded.offsets.len().max(loaded.classic.len() + loaded.consumer.len()), "group journal loaded");
        let store = GroupStore {
            dir: dir.to_path_buf(),
            file,
            len: pos as u64,
            live_len: pos as u64,
            fsync: cfg.fsync,
        };
        Ok((store, loaded))
    }

    /// Appends already framed records with one write (and an fsync when configured).
    pub fn append(&mut self, frames: &[u8]) -> Result<(), Error> {
        if frames.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(JOURNAL);
        self.file.write_all(frames).map_err(io(&path))?;
        if self.fsync {
            self.file.sync_data().map_err(io(&path))?;
        }
        self.len += frames.len() as u64;
        Ok(())
    }

    /// Whether the journal has grown enough (past `min` bytes and 4x its live size) to be worth compacting.
    pub fn wants_compaction(&self, min: u64) -> bool {
        self.len >= min && self.len >= self.live_len.saturating_mul(4)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces the journal with `snapshot` (the framed live state): write, fsync, rename, fsync the directory.
    pub fn rewrite(&mut self, snapshot: &[u8]) -> Result<(), Error> {
        let tmp = self.dir.join(JOURNAL_TMP);
        let path = self.dir.join(JOURNAL);
        {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(snapshot).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        info!(path = %path.display(), before = self.len, after = snapshot.len(), "group journal compacted");
        self.len = snapshot.len() as u64;
        self.live_len = self.len.max(1);
        Ok(())
    }
}

fn apply(loaded: &mut Loaded, record: Record) {
    match record {
        Record::Offset {
            group,
            topic,
            partition,
            committed,
        } => {
            loaded
                .offsets
                .entry(group)
                .or_default()
                .insert((topic, partition), committed);
        }
        Record::OffsetDeleted {
            group,
            topic,
            partition,
        } => {
            if let Some(o) = loaded.offsets.get_mut(&group) {
                o.remove(&(topic, partition));
            }
        }
        Record::Classic { group, stored } => {
            loaded.consumer.remove(&group);
            loaded.classic.insert(group, stored);
        }
        Record::Consumer { group, stored } => {
            loaded.classic.remove(&group);
            loaded.consumer.insert(group, *stored);
        }
        Record::GroupDeleted { group } => {
            loaded.offsets.remove(&group);
            loaded.classic.remove(&group);
            loaded.consumer.remove(&group);
        }
        Record::ProducerIds { next } => loaded.next_producer_id = loaded.next_producer_id.max(next),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
