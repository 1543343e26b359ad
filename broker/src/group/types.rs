//! Request and response shapes of the coordinator, independent of wire versions: handlers fill them from the
//! decoded Kafka message and copy them back into the versioned response.

use std::collections::BTreeMap;

use bytes::Bytes;
use uuid::Uuid;

/// JoinGroup.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// -1 (v0) means "same as the session timeout".
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member must first ask for a member id (MEMBER_ID_REQUIRED), then join with it.
    pub require_known_member_id: bool,
    pub reason: Option<String>,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// JoinGroup response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinResponse {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    pub fn error(error: i16, member_id: &str) -> Self {
        JoinResponse {
            error,
            generation_id: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// SyncGroup.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Only the leader sends assignments: (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

/// SyncGroup response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncResponse {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: i16) -> Self {
        SyncResponse {
            error,
            ..Default::default()
        }
    }
}

/// Heartbeat.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One member named in a LeaveGroup request (v3+ batches them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// LeaveGroup response: a top-level error, or one code per member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeaveResponse {
    pub error: i16,
    pub members: Vec<(LeavingMember, i16)>,
}

/// DescribeGroups answer for one group (classic or consumer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupDescription {
    pub group_id: String,
    pub error: i16,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead (classic);
    /// for consumer groups DescribeGroups reports them the same way (Empty, Stable, …).
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// ListGroups entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    /// "classic" or "consumer".
    pub group_type: String,
}

/// One committed offset to store (OffsetCommit).
#[derive(Debug, Clone, PartialEq)]
pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// OffsetCommit.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub group_id: String,
    /// Classic: generation id; consumer groups: member epoch; -1 for a commit from outside the group (admin).
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub partitions: Vec<CommitPartition>,
}

/// A committed offset as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error: i16,
}

/// A topic partition by id (KIP-848 assignments name topics by id).
pub type Assignment = BTreeMap<Uuid, std::collections::BTreeSet<i32>>;

/// ConsumerGroupHeartbeat (KIP-848).
#[derive(Debug, Clone, Default)]
pub struct ConsumerHeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    /// 0 joins, -1 leaves, -2 leaves temporarily (static members), otherwise the member's current epoch.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// None when unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns now; None when unchanged.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// ConsumerGroupHeartbeat response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerHeartbeatResponse {
    pub error: i16,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Set when the member must (re)learn its assignment.
    pub assignment: Option<Assignment>,
}

impl ConsumerHeartbeatResponse {
    pub fn error(error: i16, message: impl Into<String>) -> Self {
        ConsumerHeartbeatResponse {
            error,
            error_message: Some(message.into()),
            ..Default::default()
        }
    }
}

/// ConsumerGroupDescribe answer for one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerGroupDescription {
    pub group_id: String,
    pub error: i16,
    pub error_message: Option<String>,
    /// empty, assigning, reconciling, stable (or dead when unknown).
    pub state: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: Assignment,
    pub target_assignment: Assignment,
}
