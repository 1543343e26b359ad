//! Topic administration on the log store: create, delete, add partitions, read and change configs.
//! Config changes take effect at once: appends and housekeeping read the current config every time.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, RwLock};

use tracing::info;
use uuid::Uuid;

use super::config::{
    self, TopicConfig, format_properties, parse_properties, sync_dir, validate_topic_name,
    write_atomic,
};
use super::partition::Partition;
use super::store::{LogStore, Topic, now_ms};
use crate::error::{Error, Result};

const PROPERTIES: &str = "topic.properties";
const ID_FILE: &str = "topic.id";
/// Kafka caps partitions per request; a sane limit keeps a typo from creating a million directories.
pub const MAX_PARTITIONS: i32 = 10_000;

/// What the metadata API needs to know about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
}

/// A config change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
}

fn random_uuid() -> Uuid {
    // RandomState is seeded from the OS per process and varies per instance: enough for a unique topic id.
    let mut hi = std::collections::hash_map::RandomState::new().build_hasher();
    hi.write_i64(now_ms());
    let mut lo = std::collections::hash_map::RandomState::new().build_hasher();
    lo.write_u64(hi.finish());
    uuid::Builder::from_random_bytes(
        ((u128::from(hi.finish()) << 64) | u128::from(lo.finish())).to_be_bytes(),
    )
    .into_uuid()
}

impl LogStore {
    pub(crate) fn load_topic(&self, name: &str) -> Result<Topic> {
        let dir = self.inner.topics_dir.join(name);
        let overrides = std::fs::read_to_string(dir.join(PROPERTIES))
            .map(|t| parse_properties(&t))
            .unwrap_or_default();
        let config = self.inner.defaults.with_overrides(&overrides)?;
        let id = std::fs::read_to_string(dir.join(ID_FILE))
            .ok()
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .ok_or_else(|| Error::Corrupt {
                path: dir.join(ID_FILE),
                position: 0,
                reason: "missing or invalid topic id".into(),
            })?;
        let mut partitions = Vec::new();
        while dir.join(partitions.len().to_string()).is_dir() {
            let index = partitions.len() as i32;
            let p = Partition::open(
                dir.join(index.to_string()),
                name,
                index,
                self.inner.recovery,
                now_ms(),
            )?;
            partitions.push(Arc::new(Mutex::new(p)));
        }
        if partitions.is_empty() {
            return Err(Error::Corrupt {
                path: dir,
                position: 0,
                reason: "topic has no partition directory".into(),
            });
        }
        info!(topic = %name, partitions = partitions.len(), "topic loaded");
        Ok(Topic {
            name: name.to_owned(),
            id,
            dir,
            overrides: Mutex::new(overrides),
            config: RwLock::new(config),
            partitions: RwLock::new(partitions),
        })
    }

    /// Creates a topic with `partitions` partitions and config overrides. With `validate_only` nothing changes.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicInfo> {
        validate_topic_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(Error::InvalidPartitions {
                topic: name.to_owned(),
                reason: format!("{partitions} requested, expected 1..={MAX_PARTITIONS}"),
            });
        }
        let config = self.inner.defaults.with_overrides(&overrides)?;
        let mut topics = self.inner.topics.write().expect("topics lock");
        if topics.contains_key(name) {
            return Err(Error::TopicExists {
                topic: name.to_owned(),
            });
        }
        let id = random_uuid();
        let info = TopicInfo {
            name: name.to_owned(),
            id,
            partitions,
        };
        if validate_only {
            return Ok(info);
        }
        let dir = self.inner.topics_dir.join(name);
        let _ = std::fs::remove_dir_all(&dir); // leftovers of a crashed creation
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_atomic(
            &dir.join(PROPERTIES),
            format_properties(&overrides).as_bytes(),
        )?;
        let parts = (0..partitions)
            .map(|i| {
                Partition::open(
                    dir.join(i.to_string()),
                    name,
                    i,
                    self.inner.recovery,
                    now_ms(),
                )
                .map(|p| Arc::new(Mutex::new(p)))
            })
            .collect::<Result<Vec<_>>>()?;
        // The id file is written last: a topic directory without it is an unfinished creation.
        write_atomic(&dir.join(ID_FILE), id.to_string().as_bytes())?;
        sync_dir(&self.inner.topics_dir)?;
        topics.insert(
            name.to_owned(),
            Arc::new(Topic {
                name: name.to_owned(),
                id,
                dir,
                overrides: Mutex::new(overrides),
                config: RwLock::new(config),
                partitions: RwLock::new(parts),
            }),
        );
        info!(topic = %name, partitions, "topic created");
        Ok(info)
    }

    /// Creates `name` with the default settings unless it exists (auto-creation on produce or metadata).
    pub fn ensure_topic(&self, name: &str, partitions: i32) -> Result<TopicInfo> {
        match self.create_topic(name, partitions, BTreeMap::new(), false) {
            Err(Error::TopicExists { .. }) => self.topic_info(name),
            other => other,
        }
    }

    /// Deletes a topic and all its data.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        let topic = self
            .inner
            .topics
            .write()
            .expect("topics lock")
            .remove(name)
            .ok_or_else(|| Error::UnknownTopic {
                topic: name.to_owned(),
            })?;
        // Rename first (atomic), then remove: a crash in between leaves a dot-directory that the next start deletes.
        let trash = self
            .inner
            .topics_dir
            .join(format!(".deleted-{}-{}", name, now_ms()));
        std::fs::rename(&topic.dir, &trash).map_err(|e| Error::io(&topic.dir, e))?;
        sync_dir(&self.inner.topics_dir)?;
        std::fs::remove_dir_all(&trash).map_err(|e| Error::io(&trash, e))?;
        info!(topic = %name, "topic deleted");
        Ok(())
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(&self, name: &str, total: i32, validate_only: bool) -> Result<()> {
        let topic = self.topic(name)?;
        let mut partitions = topic.partitions.write().expect("partitions lock");
        let current = partitions.len() as i32;
        if total <= current || total > MAX_PARTITIONS {
            return Err(Error::InvalidPartitions {
                topic: name.to_owned(),
                reason: format!(
                    "topic has {current} partitions, {total} requested; expected more than {current} and at most {MAX_PARTITIONS}"
                ),
            });
        }
        if validate_only {
            return Ok(());
        }
        for i in current..total {
            let p = Partition::open(
                topic.dir.join(i.to_string()),
                name,
                i,
                self.inner.recovery,
                now_ms(),
            )?;
            partitions.push(Arc::new(Mutex::new(p)));
        }
        sync_dir(&topic.dir)?;
        info!(topic = %name, from = current, to = total, "partitions added");
        Ok(())
    }

    pub fn topic_info(&self, name: &str) -> Result<TopicInfo> {
        let topic = self.topic(name)?;
        let partitions = topic.partitions.read().expect("partitions lock").len() as i32;
        Ok(TopicInfo {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
        })
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let names: Vec<String> = self
            .inner
            .topics
            .read()
            .expect("topics lock")
            .keys()
            .cloned()
            .collect();
        names
            .iter()
            .filter_map(|n| self.topic_info(n).ok())
            .collect()
    }

    /// Effective config of a topic plus the keys it overrides.
    pub fn topic_config(&self, name: &str) -> Result<(TopicConfig, BTreeMap<String, String>)> {
        let topic = self.topic(name)?;
        let config = *topic.config.read().expect("config lock");
        let overrides = topic.overrides.lock().expect("overrides lock").clone();
        Ok((config, overrides))
    }

    /// Replaces all overrides of a topic (AlterConfigs semantics).
    pub fn replace_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<()> {
        self.update_config(name, validate_only, |current| *current = overrides)
    }

    /// Applies set/delete operations to a topic's overrides (IncrementalAlterConfigs semantics).
    pub fn alter_config(&self, name: &str, ops: &[ConfigOp], validate_only: bool) -> Result<()> {
        for op in ops {
            let key = match op {
                ConfigOp::Set(k, _) | ConfigOp::Delete(k) => k,
            };
            if !config::KEYS.contains(&key.as_str()) {
                return Err(Error::InvalidConfig {
                    key: key.clone(),
                    value: String::new(),
                    reason: format!(
                        "unknown topic config; supported keys are {}",
                        config::KEYS.join(", ")
                    ),
                });
            }
        }
        self.update_config(name, validate_only, |current| {
            for op in ops {
                match op {
                    ConfigOp::Set(k, v) => {
                        current.insert(k.clone(), v.clone());
                    }
                    ConfigOp::Delete(k) => {
                        current.remove(k);
                    }
                }
            }
        })
    }

    fn update_config(
        &self,
        name: &str,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<()> {
        let topic = self.topic(name)?;
        let mut overrides = topic.overrides.lock().expect("overrides lock");
        let mut next = overrides.clone();
        change(&mut next);
        let config: TopicConfig = self.inner.defaults.with_overrides(&next)?;
        if validate_only {
            return Ok(());
        }
        write_atomic(
            &topic.dir.join(PROPERTIES),
            format_properties(&next).as_bytes(),
        )?;
        *topic.config.write().expect("config lock") = config;
        info!(topic = %name, overrides = ?next, "topic config changed");
        *overrides = next;
        Ok(())
    }
}
