//! Topic-level settings: broker defaults, per-topic overrides and their validation.
//!
//! Overrides are stored as Kafka-style `key=value` lines in `topic.properties` beside the partitions, so a topic's
//! configuration survives restarts and can be read with any text tool.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

pub const RETENTION_MS: &str = "retention.ms";
pub const RETENTION_BYTES: &str = "retention.bytes";
pub const SEGMENT_BYTES: &str = "segment.bytes";
pub const SEGMENT_MS: &str = "segment.ms";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";

/// Every topic config the broker understands, in the order DescribeConfigs lists them.
pub const KEYS: [&str; 7] = [
    CLEANUP_POLICY,
    DELETE_RETENTION_MS,
    MAX_MESSAGE_BYTES,
    RETENTION_BYTES,
    RETENTION_MS,
    SEGMENT_BYTES,
    SEGMENT_MS,
];

/// Effective settings of one topic (defaults merged with overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    /// Delete closed segments whose newest record is older than this; -1 keeps them forever.
    pub retention_ms: i64,
    /// Delete the oldest closed segments while a partition is larger than this; -1 for no limit.
    pub retention_bytes: i64,
    /// Roll to a new segment file once the active one reaches this size.
    pub segment_bytes: u64,
    /// Roll to a new segment file once the active one is this old.
    pub segment_ms: i64,
    /// Largest record batch a producer may send.
    pub max_message_bytes: usize,
    /// cleanup.policy: delete old segments (retention), compact them (keep the latest record per key), or both.
    pub cleanup: CleanupPolicy,
    /// How long a tombstone (a record with a key and a null value) survives compaction, so consumers that are
    /// behind still see the delete.
    pub delete_retention_ms: i64,
}

/// cleanup.policy: `delete`, `compact`, or both (`compact,delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };

    /// Parses Kafka's list syntax: `delete`, `compact`, `compact,delete` (any order, spaces allowed).
    pub fn parse(value: &str) -> Option<Self> {
        let mut policy = Self {
            delete: false,
            compact: false,
        };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        (policy.delete || policy.compact).then_some(policy)
    }

    pub fn name(self) -> &'static str {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        }
    }
}

impl Default for TopicConfig {
    /// Kafka's own defaults.
    fn default() -> Self {
        Self {
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            max_message_bytes: 1_048_588,
            cleanup: CleanupPolicy::DELETE,
            delete_retention_ms: 24 * 3600 * 1000,
        }
    }
}

impl TopicConfig {
    /// Applies validated overrides on top of `self`.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<Self> {
        let mut config = *self;
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let invalid = |reason: &str| Error::InvalidConfig {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("expected an integer"))
        };
        match key {
            RETENTION_MS => self.retention_ms = at_least(int()?, -1).map_err(|r| invalid(&r))?,
            RETENTION_BYTES => {
                self.retention_bytes = at_least(int()?, -1).map_err(|r| invalid(&r))?
            }
            SEGMENT_BYTES => {
                self.segment_bytes = at_least(int()?, 14).map_err(|r| invalid(&r))? as u64
            }
            SEGMENT_MS => self.segment_ms = at_least(int()?, 1).map_err(|r| invalid(&r))?,
            MAX_MESSAGE_BYTES => {
                self.max_message_bytes = at_least(int()?, 0).map_err(|r| invalid(&r))? as usize;
            }
            CLEANUP_POLICY => {
                self.cleanup = CleanupPolicy::parse(value)
                    .ok_or_else(|| invalid("expected delete, compact or compact,delete"))?;
            }
            DELETE_RETENTION_MS => {
                self.delete_retention_ms = at_least(int()?, 0).map_err(|r| invalid(&r))?
            }
            _ => {
                return Err(invalid(&format!(
                    "unknown topic config; supported keys are {}",
                    KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The effective value of `key` as a string.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            RETENTION_MS => self.retention_ms.to_string(),
            RETENTION_BYTES => self.retention_bytes.to_string(),
            SEGMENT_BYTES => self.segment_bytes.to_string(),
            SEGMENT_MS => self.segment_ms.to_string(),
            MAX_MESSAGE_BYTES => self.max_message_bytes.to_string(),
            CLEANUP_POLICY => self.cleanup.name().to_owned(),
            DELETE_RETENTION_MS => self.delete_retention_ms.to_string(),
            _ => return None,
        })
    }
}

fn at_least(value: i64, min: i64) -> Result<i64, String> {
    if value < min {
        Err(format!("must be at least {min}"))
    } else {
        Ok(value)
    }
}

/// Parses a `key=value` properties file (blank lines and `#` comments ignored).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

pub fn format_properties(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Writes a small file atomically (write to a temporary name, fsync, rename) so a crash never leaves it half
/// written.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a directory entry change (create, rename, delete) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Checks a topic name the way Kafka does: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not allowed")
    } else if name.len() > 249 {
        Some("the name is longer than 249 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidTopicName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_reject_bad_values() {
        let mut overrides = BTreeMap::new();
        overrides.insert(RETENTION_MS.to_owned(), "1000".to_owned());
        let config = TopicConfig::default().with_overrides(&overrides).unwrap();
        assert_eq!(config.retention_ms, 1000);
        overrides.insert(SEGMENT_BYTES.to_owned(), "abc".to_owned());
        let err = TopicConfig::default()
            .with_overrides(&overrides)
            .unwrap_err();
        assert!(err.to_string().contains("segment.bytes"), "{err}");
        let mut compact = BTreeMap::new();
        compact.insert(CLEANUP_POLICY.to_owned(), "delete, compact".to_owned());
        let config = TopicConfig::default().with_overrides(&compact).unwrap();
        assert_eq!(config.get(CLEANUP_POLICY).unwrap(), "compact,delete");
        compact.insert(CLEANUP_POLICY.to_owned(), "compress".to_owned());
        let err = TopicConfig::default().with_overrides(&compact).unwrap_err();
        assert!(
            err.to_string().contains("expected delete, compact"),
            "{err}"
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["orders", "a.b_c-d", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/",
            &"x".repeat(250),
            "ünicode",
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn properties_round_trip() {
        let mut map = BTreeMap::new();
        map.insert("retention.ms".to_owned(), "5".to_owned());
        assert_eq!(parse_properties(&format_properties(&map)), map);
    }
}
