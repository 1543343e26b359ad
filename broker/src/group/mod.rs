//! Group coordinator: consumer-group membership, rebalances and committed offsets.
//!
//! Module map:
//! - [`coordinator`]: [`GroupCoordinator`], the shared handle the request handlers call. It owns every group
//!   behind one lock, runs the timers (session, rebalance, join delay) and writes changes to the store.
//! - [`classic`]: the classic protocol state machine (JoinGroup / SyncGroup / Heartbeat / LeaveGroup), pure:
//!   every operation takes `now`, so tests drive time explicitly.
//! - [`consumer`]: the KIP-848 consumer protocol (ConsumerGroupHeartbeat) with member epochs and server-side
//!   reconciliation; [`assignor`] holds its `uniform` and `range` assignors.
//! - [`admin`]: OffsetCommit / OffsetFetch / OffsetDelete, Describe/List/DeleteGroups, retention, producer ids.
//! - [`offsets`]: committed offsets per group, their validation and their retention.
//! - [`store`]: the durable journal (CRC per record, torn-tail recovery, compaction by snapshot rewrite);
//!   [`codec`] is its byte encoding.
//! - [`subscription`]: reads the `consumer` embedded protocol (subscribed topics, assigned partitions) so the
//!   coordinator can describe assignments and refuse to delete offsets of subscribed topics.
//! - [`types`]: the request and response shapes the handlers translate to and from the wire.
//!
//! The coordinator knows nothing of the wire format or of the log: handlers translate messages, and topics are
//! looked up through the small [`TopicCatalog`] trait.

pub mod admin;
pub mod assignor;
pub mod classic;
pub mod codec;
pub mod consumer;
pub mod coordinator;
pub mod log_catalog;
pub mod offsets;
pub mod store;
pub mod subscription;
pub mod types;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use coordinator::GroupCoordinator;
pub use types::*;

/// Kafka error codes the coordinator answers with (values from the Kafka protocol).
pub mod codes {
    use kafka_protocol::error::ResponseError as E;

    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = E::UnknownServerError.code();
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
    pub const OFFSET_METADATA_TOO_LARGE: i16 = E::OffsetMetadataTooLarge.code();
    pub const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
    pub const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
    pub const INVALID_GROUP_ID: i16 = E::InvalidGroupId.code();
    pub const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
    pub const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
    pub const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
    pub const INVALID_REQUEST: i16 = E::InvalidRequest.code();
    pub const NON_EMPTY_GROUP: i16 = E::NonEmptyGroup.code();
    pub const GROUP_ID_NOT_FOUND: i16 = E::GroupIdNotFound.code();
    pub const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
    pub const GROUP_MAX_SIZE_REACHED: i16 = E::GroupMaxSizeReached.code();
    pub const FENCED_INSTANCE_ID: i16 = E::FencedInstanceId.code();
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = E::GroupSubscribedToTopic.code();
    pub const FENCED_MEMBER_EPOCH: i16 = E::FencedMemberEpoch.code();
    pub const UNRELEASED_INSTANCE_ID: i16 = E::UnreleasedInstanceId.code();
    pub const UNSUPPORTED_ASSIGNOR: i16 = E::UnsupportedAssignor.code();
    pub const STALE_MEMBER_EPOCH: i16 = E::StaleMemberEpoch.code();
    pub const INVALID_REGULAR_EXPRESSION: i16 = E::InvalidRegularExpression.code();
}

/// Coordinator settings; the defaults are Apache Kafka's broker defaults (names in each field's doc).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// group.min.session.timeout.ms: the smallest session timeout a classic member may ask for.
    pub min_session_timeout: Duration,
    /// group.max.session.timeout.ms: the largest session timeout a classic member may ask for.
    pub max_session_timeout: Duration,
    /// group.initial.rebalance.delay.ms: how long the first rebalance of an empty group waits for more members.
    pub initial_rebalance_delay: Duration,
    /// group.max.size: members per group.
    pub max_group_size: usize,
    /// group.consumer.session.timeout.ms: session timeout of KIP-848 consumer members.
    pub consumer_session_timeout: Duration,
    /// group.consumer.heartbeat.interval.ms: heartbeat interval handed to KIP-848 consumer members.
    pub consumer_heartbeat_interval: Duration,
    /// offsets.retention.minutes: how long the offsets of an empty group are kept.
    pub offsets_retention: Duration,
    /// offsets.retention.check.interval.ms: how often expired offsets are looked for.
    pub offsets_retention_check_interval: Duration,
    /// offset.metadata.max.bytes: the largest metadata string allowed with a committed offset.
    pub offset_metadata_max_bytes: usize,
    /// fsync the group journal after every write (default: the write reaching the OS acknowledges it).
    pub fsync: bool,
    /// The journal is rewritten from a snapshot once it is this large and four times its live content.
    pub compact_min_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::from_secs(3),
            max_group_size: i32::MAX as usize,
            consumer_session_timeout: Duration::from_secs(45),
            consumer_heartbeat_interval: Duration::from_secs(5),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            offsets_retention_check_interval: Duration::from_secs(600),
            offset_metadata_max_bytes: 4096,
            fsync: false,
            compact_min_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Looks topics up for the KIP-848 protocol, whose assignments name topics by id.
pub trait TopicCatalog {
    /// The id and partition count of a topic, if it exists.
    fn topic(&self, name: &str) -> Option<TopicMeta>;
    /// The name of the topic with this id.
    fn topic_name(&self, id: uuid::Uuid) -> Option<String>;
    /// All topic names (regex subscriptions are matched against them).
    fn topic_names(&self) -> Vec<String>;
}

/// What the coordinator needs to know about one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicMeta {
    pub id: uuid::Uuid,
    pub partitions: i32,
}

/// Milliseconds since the Unix epoch: commit timestamps and retention are wall-clock, because they outlive a
/// restart; membership timers use the monotonic (and, in tests, paused) tokio clock instead.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh member id: `<prefix>-<32 hex digits>`, as Kafka builds them (client id or instance id prefix).
pub fn new_member_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = SEED.get_or_init(RandomState::new);
    let mut a = seed.build_hasher();
    a.write_u64(n);
    let mut b = seed.build_hasher();
    b.write_u64(!n);
    b.write_u64(wall_ms() as u64);
    format!("{prefix}-{:016x}{:016x}", a.finish(), b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_unique_and_prefixed() {
        let a = new_member_id("rdkafka");
        let b = new_member_id("rdkafka");
        assert_ne!(a, b);
        assert!(
            a.starts_with("rdkafka-") && a.len() == "rdkafka-".len() + 32,
            "{a}"
        );
    }

    #[test]
    fn codes_match_the_kafka_protocol() {
        assert_eq!(codes::ILLEGAL_GENERATION, 22);
        assert_eq!(codes::UNKNOWN_MEMBER_ID, 25);
        assert_eq!(codes::REBALANCE_IN_PROGRESS, 27);
        assert_eq!(codes::MEMBER_ID_REQUIRED, 79);
        assert_eq!(codes::FENCED_INSTANCE_ID, 82);
        assert_eq!(codes::FENCED_MEMBER_EPOCH, 110);
        assert_eq!(codes::STALE_MEMBER_EPOCH, 113);
    }
}
