//! Committed offsets of one group and their retention (offsets.retention.minutes).
//!
//! Retention follows KIP-211: while a group has members its offsets never expire; once it is empty, each
//! offset expires `retention` after the later of its commit and the moment the group became empty.

use std::collections::BTreeMap;
use std::time::Duration;

/// One committed offset.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// Wall-clock milliseconds of the commit.
    pub commit_ms: i64,
}

/// (topic, partition) -> committed offset, ordered so OffsetFetch of a whole group is stable.
pub type OffsetMap = BTreeMap<(String, i32), Committed>;

/// The partitions whose offsets have expired at `now_ms` for a group that has been empty since
/// `empty_since_ms` (None while the group has members).
pub fn expired(
    offsets: &OffsetMap,
    empty_since_ms: Option<i64>,
    retention: Duration,
    now_ms: i64,
) -> Vec<(String, i32)> {
    let Some(empty_since) = empty_since_ms else {
        return Vec::new();
    };
    let retention = retention.as_millis() as i64;
    offsets
        .iter()
        .filter(|(_, c)| c.commit_ms.max(empty_since).saturating_add(retention) <= now_ms)
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(commit_ms: i64) -> Committed {
        Committed {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_ms,
        }
    }

    #[test]
    fn offsets_of_active_groups_never_expire() {
        let offsets = OffsetMap::from([(("t".into(), 0), c(0))]);
        assert!(expired(&offsets, None, Duration::from_secs(1), i64::MAX / 2).is_empty());
    }

    #[test]
    fn retention_counts_from_the_later_of_commit_and_emptiness() {
        let offsets = OffsetMap::from([(("t".into(), 0), c(1_000)), (("t".into(), 1), c(50_000))]);
        let r = Duration::from_secs(60);
        // Empty since 10 s: partition 0 expires at 70 s, partition 1 (committed at 50 s) at 110 s.
        assert!(expired(&offsets, Some(10_000), r, 69_999).is_empty());
        assert_eq!(
            expired(&offsets, Some(10_000), r, 70_000),
            vec![("t".to_string(), 0)]
        );
        assert_eq!(expired(&offsets, Some(10_000), r, 110_000).len(), 2);
    }
}
