//! The log store: every topic and partition under one data directory, with the operations the wire handlers
//! and in-process users (the router of `busbar serve`) need: produce, fetch, list offsets, delete records.
//! Topic administration lives in `topics.rs`.
//!
//! Layout: `<data-dir>/topics/<topic>/topic.properties` (config overrides), `topic.id`, and one directory per
//! partition (`0/`, `1/`, ...) holding `<base-offset>.log|.index|.timeindex` segments.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;
use tracing::{error, info, warn};
use uuid::Uuid;

use super::batch;
use super::cleaner;
use super::config::{TopicConfig, sync_dir};
use super::flush::GroupCommit;
use super::partition::{Offsets, Partition, PartitionIo};
use super::segment::Recovery;
use crate::error::{Error, Result};

const CLEAN_SHUTDOWN: &str = ".clean-shutdown";
const LOCK_FILE: &str = ".lock";

/// When a produce is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Once the write reached the operating system (Kafka's default): survives a process crash, not power loss.
    #[default]
    Os,
    /// Once the data is fsynced; concurrent producers share one fsync (group commit).
    Always,
}

/// How a log store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Settings of topics that do not override them.
    pub defaults: TopicConfig,
}

/// Which offset ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    MaxTimestamp,
    /// First offset whose timestamp is at least this (milliseconds since the epoch).
    Timestamp(i64),
}

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub log_start_offset: i64,
    /// Group-commit ticket to wait for when the fsync policy is `Always`.
    pub durable_ticket: Option<u64>,
}

/// Result of a fetch: whole record batches, possibly starting before the requested offset (clients skip).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

pub(crate) struct Topic {
    pub name: String,
    pub id: Uuid,
    pub dir: PathBuf,
    pub overrides: Mutex<BTreeMap<String, String>>,
    pub config: RwLock<TopicConfig>,
    pub partitions: RwLock<Vec<Arc<Mutex<Partition>>>>,
}

pub(crate) struct Inner {
    pub data_dir: PathBuf,
    pub topics_dir: PathBuf,
    pub defaults: TopicConfig,
    pub topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Bumped after every append so long-polling fetches wake up.
    pub appended: watch::Sender<u64>,
    pub commit: Option<GroupCommit>,
    pub recovery: Recovery,
    _lock: File,
}

/// A cloneable handle to the broker's storage.
#[derive(Clone)]
pub struct LogStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Compacted topics keep the latest record per key, so a record without a key is refused, as Kafka does.
fn require_keys(batch: &Bytes) -> std::result::Result<(), crate::error::BatchError> {
    use crate::error::BatchError;
    let mut buf = batch.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).map_err(|e| {
        BatchError::Undecodable {
            reason: e.to_string(),
        }
    })?;
    match set.records.iter().find(|r| r.key.is_none()) {
        Some(r) => Err(BatchError::MissingKey {
            offset_delta: (r.offset - set.records[0].offset) as i32,
        }),
        None => Ok(()),
    }
}

impl LogStore {
    /// Opens the data directory, recovering every partition. After an unclean shutdown every batch is checked.
    pub fn open(options: StoreOptions) -> Result<Self> {
        let data_dir = options.data_dir;
        let topics_dir = data_dir.join("topics");
        std::fs::create_dir_all(&topics_dir).map_err(|e| Error::io(&topics_dir, e))?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.try_lock().map_err(|_| {
            Error::io(
                &lock_path,
                std::io::Error::other("the data directory is in use by another broker"),
            )
        })?;
        let marker = data_dir.join(CLEAN_SHUTDOWN);
        let recovery = if marker.exists() {
            Recovery::Trusted
        } else {
            Recovery::Full
        };
        if recovery == Recovery::Trusted {
            std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
            sync_dir(&data_dir)?;
        } else {
            info!(data_dir = %data_dir.display(), "no clean-shutdown marker: checking every record batch");
        }
        let (appended, _) = watch::channel(0);
        let store = Self {
            inner: Arc::new(Inner {
                data_dir,
                topics_dir,
                defaults: options.defaults,
                topics: RwLock::new(BTreeMap::new()),
                appended,
                commit: (options.fsync == FsyncPolicy::Always).then(GroupCommit::start),
                recovery,
                _lock: lock,
            }),
        };
        store.load_topics()?;
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .expect("topics lock")
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_owned(),
            })
    }

    pub(crate) fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(Arc<Topic>, Arc<Mutex<Partition>>)> {
        let t = self.topic(topic)?;
        let p = usize::try_from(partition)
            .ok()
            .and_then(|i| {
                t.partitions
                    .read()
                    .expect("partitions lock")
                    .get(i)
                    .cloned()
            })
            .ok_or_else(|| Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })?;
        Ok((t, p))
    }

    /// Validates and appends the record batches in `records` (as a producer sends them) without waiting for
    /// durability; see [`LogStore::wait_durable`].
    pub fn append(&self, topic: &str, partition: i32, records: Bytes) -> Result<Appended> {
        let (t, p) = self.partition(topic, partition)?;
        let config = *t.config.read().expect("config lock");
        let batches = batch::split_batches(records).map_err(|source| Error::Batch {
            topic: topic.to_owned(),
            partition,
            source,
        })?;
        if let Some((h, _)) = batches
            .iter()
            .find(|(h, _)| h.total_len() > config.max_message_bytes)
        {
            return Err(Error::RecordTooLarge {
                topic: topic.to_owned(),
                partition,
                size: h.total_len(),
                max: config.max_message_bytes,
            });
        }
        if config.cleanup.compact {
            for (_, bytes) in &batches {
                require_keys(bytes).map_err(|source| Error::Batch {
                    topic: topic.to_owned(),
                    partition,
                    source,
                })?;
            }
        }
        let (base_offset, log_start_offset, file, appended) = {
            let mut log = p.lock().expect("partition lock");
            let (base, file) = log.append(&batches, &config, now_ms())?;
            (
                base,
                log.offsets().log_start,
                file,
                Arc::clone(&log.appended),
            )
        };
        appended.send_modify(|n| *n += 1);
        self.inner.appended.send_modify(|n| *n += 1);
        let durable_ticket = self.inner.commit.as_ref().map(|c| c.request(file));
        Ok(Appended {
            base_offset,
            log_start_offset,
            durable_ticket,
        })
    }

    /// The traffic counters of a partition.
    pub fn io(&self, topic: &str, partition: i32) -> Result<Arc<PartitionIo>> {
        let (_, p) = self.partition(topic, partition)?;
        let io = Arc::clone(&p.lock().expect("partition lock").io);
        Ok(io)
    }

    /// Waits until an append is durable under the store's fsync policy.
    pub async fn wait_durable(&self, appended: &Appended) -> Result<()> {
        match (&self.inner.commit, appended.durable_ticket) {
            (Some(commit), Some(ticket)) => commit.wait(ticket).await,
            _ => Ok(()),
        }
    }

    /// Appends and waits for durability: the in-process producer API.
    pub async fn produce(&self, topic: &str, partition: i32, records: Bytes) -> Result<Appended> {
        let appended = self.append(topic, partition, records)?;
        self.wait_durable(&appended).await?;
        Ok(appended)
    }

    /// Reads whole batches from `offset`, at most `max_bytes` (but at least one batch).
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Fetched> {
        let (_, p) = self.partition(topic, partition)?;
        let (plan, offsets, io) = {
            let log = p.lock().expect("partition lock");
            (log.plan_read(offset)?, log.offsets(), Arc::clone(&log.io))
        };
        let records = match plan {
            Some(plan) => plan.read(max_bytes)?,
            None => Bytes::new(),
        };
        io.read(&records);
        Ok(Fetched {
            records,
            high_watermark: offsets.high_watermark,
            log_start_offset: offsets.log_start,
        })
    }

    /// Like [`LogStore::fetch`], but waits up to `max_wait` for data when there is none yet.
    pub async fn fetch_wait(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<Fetched> {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut changes = self.partition_changes(topic, partition)?;
        loop {
            let fetched = self.fetch(topic, partition, offset, max_bytes)?;
            if !fetched.records.is_empty() {
                return Ok(fetched);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Err(_) => return Ok(fetched),
                Ok(Ok(())) => {}
                // The partition was deleted (perhaps created again since): watch the one there is now.
                Ok(Err(_)) => changes = self.partition_changes(topic, partition)?,
            }
        }
    }

    /// A receiver that changes after every append to one partition.
    fn partition_changes(&self, topic: &str, partition: i32) -> Result<watch::Receiver<u64>> {
        let (_, p) = self.partition(topic, partition)?;
        let log = p.lock().expect("partition lock");
        Ok(log.appended.subscribe())
    }

    /// A receiver that changes after every append (for long polls).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.appended.subscribe()
    }

    pub fn offsets(&self, topic: &str, partition: i32) -> Result<Offsets> {
        let (_, p) = self.partition(topic, partition)?;
        let log = p.lock().expect("partition lock");
        Ok(log.offsets())
    }

    /// Answers ListOffsets: the offset (and timestamp, when one applies) for `spec`, or None when no record
    /// matches a timestamp query.
    pub fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<Option<(i64, i64)>> {
        let (_, p) = self.partition(topic, partition)?;
        let log = p.lock().expect("partition lock");
        let offsets = log.offsets();
        match spec {
            OffsetSpec::Earliest => Ok(Some((offsets.log_start, -1))),
            OffsetSpec::Latest => Ok(Some((offsets.high_watermark, -1))),
            OffsetSpec::MaxTimestamp => log.max_timestamp(),
            OffsetSpec::Timestamp(ts) => log.offset_for_timestamp(ts),
        }
    }

    /// Makes records before `before` unreadable (-1: all of them); returns the new log start offset.
    pub fn delete_records(&self, topic: &str, partition: i32, before: i64) -> Result<i64> {
        let (_, p) = self.partition(topic, partition)?;
        let mut log = p.lock().expect("partition lock");
        log.delete_records(before)
    }

    /// Rolls old segments and applies retention to every partition; returns how many segments were deleted.
    pub fn housekeep(&self) -> usize {
        let topics: Vec<Arc<Topic>> = self
            .inner
            .topics
            .read()
            .expect("topics lock")
            .values()
            .cloned()
            .collect();
        let mut deleted = 0;
        for topic in topics {
            let config = *topic.config.read().expect("config lock");
            let partitions = topic.partitions.read().expect("partitions lock").clone();
            for p in partitions {
                let plan = {
                    let mut log = p.lock().expect("partition lock");
                    match log.housekeep(&config, now_ms()) {
                        Ok(n) => deleted += n,
                        Err(err) => {
                            error!(topic = %topic.name, partition = log.index, error = %err, "housekeeping failed")
                        }
                    }
                    config
                        .cleanup
                        .compact
                        .then(|| log.compaction_plan(now_ms()))
                        .flatten()
                };
                if let Some((segments, scratch, planned_up_to)) = plan {
                    // Cleaning reads and writes outside the lock; only the swap holds it.
                    let now = now_ms();
                    let result =
                        cleaner::clean(&segments, &scratch, config.delete_retention_ms, now)
                            .and_then(|(cleaned, stats)| {
                                p.lock().expect("partition lock").install_cleaned(
                                    cleaned,
                                    &stats,
                                    planned_up_to,
                                    now,
                                )
                            });
                    if let Err(err) = result {
                        error!(topic = %topic.name, error = %err, "log compaction failed");
                        let _ = std::fs::remove_dir_all(&scratch);
                    }
                }
            }
        }
        deleted
    }

    /// Runs [`LogStore::housekeep`] every `interval` until the returned task is aborted.
    pub fn spawn_housekeeping(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let s = store.clone();
                if let Err(err) = tokio::task::spawn_blocking(move || s.housekeep()).await {
                    error!(error = %err, "housekeeping task panicked");
                }
            }
        })
    }

    /// Flushes every partition and marks the shutdown clean, so the next start trusts the indexes.
    pub fn close(&self) -> Result<()> {
        if let Some(commit) = &self.inner.commit {
            commit.stop();
        }
        let topics: Vec<Arc<Topic>> = self
            .inner
            .topics
            .read()
            .expect("topics lock")
            .values()
            .cloned()
            .collect();
        for topic in topics {
            for p in topic.partitions.read().expect("partitions lock").iter() {
                p.lock().expect("partition lock").sync()?;
            }
        }
        let marker = self.inner.data_dir.join(CLEAN_SHUTDOWN);
        File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&marker, e))?;
        sync_dir(&self.inner.data_dir)?;
        info!(data_dir = %self.inner.data_dir.display(), "log store closed cleanly");
        Ok(())
    }

    fn load_topics(&self) -> Result<()> {
        let dir = &self.inner.topics_dir;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                // A topic deleted while the broker stopped half-way: finish the job.
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            }
            names.push(name);
        }
        for name in names {
            match self.load_topic(&name) {
                Ok(topic) => {
                    self.inner
                        .topics
                        .write()
                        .expect("topics lock")
                        .insert(name, Arc::new(topic));
                }
                Err(err) => {
                    warn!(topic = %name, error = %err, "skipping unreadable topic directory")
                }
            }
        }
        Ok(())
    }
}
