//! The KIP-848 consumer protocol: one ConsumerGroupHeartbeat carries membership, subscription and the
//! partitions a member owns; the coordinator computes a target assignment and walks each member towards it.
//!
//! Epochs: the group epoch moves on every membership or subscription change; the assignment epoch catches up
//! when a new target assignment is computed; a member moves to the assignment epoch once it has revoked what
//! it must give up. A partition is handed to its new owner only after the old owner has released it, so no
//! two members ever consume the same partition. Pure state machine: the caller passes `now`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::assignor::{self, ASSIGNORS, MemberSpec};
use super::codes::*;
use super::types::*;
use super::{GroupConfig, TopicCatalog, TopicMeta, new_member_id, wall_ms};

/// Where a member stands in its reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// At the assignment epoch with its full target.
    Stable,
    /// Must give up partitions before moving on.
    UnrevokedPartitions,
    /// At the assignment epoch, waiting for partitions that others still hold.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout: Duration,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    pub session_deadline: Instant,
    pub revocation_deadline: Option<Instant>,
    /// A static member that left with epoch -2: its partitions wait for it until its session expires.
    pub left_static: bool,
}

/// A KIP-848 consumer group.
#[derive(Debug)]
pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub static_members: HashMap<String, String>,
    pub target: HashMap<String, Assignment>,
    /// The subscribed topics as last resolved: a change (new topic, more partitions) bumps the group epoch.
    pub topics: BTreeMap<String, TopicMeta>,
    pub assignor: String,
    pub state_since_ms: i64,
    pub dirty: bool,
}

fn subtract(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, parts) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(other) => parts.difference(other).copied().collect(),
            None => parts.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, parts) in a {
        if let Some(other) = b.get(t) {
            let both: BTreeSet<i32> = parts.intersection(other).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

fn union(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    for (t, parts) in b {
        out.entry(*t).or_default().extend(parts.iter().copied());
    }
    out
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    subtract(a, b).is_empty()
}

/// Kafka's regex subscriptions match whole topic names (RE2 syntax, which the `regex` crate shares).
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

impl ConsumerGroup {
    pub fn new(id: &str) -> Self {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: HashMap::new(),
            topics: BTreeMap::new(),
            assignor: ASSIGNORS[0].to_string(),
            state_since_ms: wall_ms(),
            dirty: false,
        }
    }

    /// Kafka's state names for ConsumerGroupDescribe.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "empty"
        } else if self.group_epoch > self.assignment_epoch {
            "assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "reconciling"
        } else {
            "stable"
        }
    }

    fn bump(&mut self, why: &str) {
        self.group_epoch += 1;
        self.dirty = true;
        info!(group = %self.id, epoch = self.group_epoch, why, "group epoch bumped");
    }

    fn remove_member(&mut self, id: &str, why: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(i) = &m.instance_id {
                self.static_members.remove(i);
            }
            self.target.remove(id);
            if self.members.is_empty() {
                self.state_since_ms = wall_ms();
            }
            self.bump(why);
        }
    }

    /// OffsetCommit's membership check: the member's current epoch, or an empty group for outside commits.
    /// A commit with an older epoch is still accepted for partitions the member owns right now: its heartbeat
    /// response may have moved it to a new epoch while the commit was on its way, and refusing would lose a
    /// legitimate commit (Kafka later relaxed the same check, KIP-1251). Partitions it no longer owns are refused.
    pub fn check_commit(
        &self,
        member_id: &str,
        epoch: i32,
        partitions: &[(&str, i32)],
    ) -> Result<(), i16> {
        if epoch < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        let m = self.members.get(member_id).ok_or(UNKNOWN_MEMBER_ID)?;
        if epoch > m.epoch {
            return Err(FENCED_MEMBER_EPOCH);
        }
        if epoch < m.epoch {
            let owns = |(topic, p): &(&str, i32)| {
                self.topics.get(*topic).is_some_and(|t| {
                    m.assigned.get(&t.id).is_some_and(|s| s.contains(p))
                        || m.pending_revocation
                            .get(&t.id)
                            .is_some_and(|s| s.contains(p))
                })
            };
            if epoch < m.previous_epoch || partitions.is_empty() || !partitions.iter().all(owns) {
                return Err(STALE_MEMBER_EPOCH);
            }
        }
        Ok(())
    }

    /// ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        cfg: &GroupConfig,
        req: ConsumerHeartbeatRequest,
        catalog: &dyn TopicCatalog,
        now: Instant,
    ) -> ConsumerHeartbeatResponse {
        if let Some(a) = &req.server_assignor
            && !ASSIGNORS.contains(&a.as_str())
        {
            return ConsumerHeartbeatResponse::error(
                UNSUPPORTED_ASSIGNOR,
                format!("assignor {a:?} is not supported; use one of {ASSIGNORS:?}"),
            );
        }
        if let Some(r) = &req.subscribed_topic_regex
            && let Err(e) = compile_regex(r)
        {
            return ConsumerHeartbeatResponse::error(
                INVALID_REGULAR_EXPRESSION,
                format!("SubscribedTopicRegex {r:?}: {e}"),
            );
        }
        if req.member_epoch == -1 || req.member_epoch == -2 {
            return self.leave(cfg, &req, now);
        }
        let id = match self.find_or_create(&req, now) {
            Ok(id) => id,
            Err(resp) => return resp,
        };
        let full = req.member_epoch == 0
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.owned.is_some());
        let before = self.members.get(&id).map(|m| (m.epoch, m.assigned.clone()));
        self.update_member(cfg, &id, &req, now);
        self.refresh_topics(catalog);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(catalog);
        }
        self.reconcile(&id, req.owned.as_ref(), now);
        let m = &self.members[&id];
        let changed = before
            .as_ref()
            .is_none_or(|(e, a)| *e != m.epoch || *a != m.assigned);
        if changed {
            self.dirty = true;
        }
        ConsumerHeartbeatResponse {
            error: NONE,
            error_message: None,
            member_id: Some(id.clone()),
            member_epoch: m.epoch,
            heartbeat_interval_ms: cfg.consumer_heartbeat_interval.as_millis() as i32,
            assignment: if full || changed {
                Some(m.assigned.clone())
            } else {
                None
            },
        }
    }

    fn leave(
        &mut self,
        cfg: &GroupConfig,
        req: &ConsumerHeartbeatRequest,
        now: Instant,
    ) -> ConsumerHeartbeatResponse {
        let id = match (&req.instance_id, self.members.contains_key(&req.member_id)) {
            (_, true) => req.member_id.clone(),
            (Some(i), false) => match self.static_members.get(i) {
                Some(id) => id.clone(),
                None => {
                    return ConsumerHeartbeatResponse::error(
                        UNKNOWN_MEMBER_ID,
                        format!("instance {i} is not in the group"),
                    );
                }
            },
            (None, false) => {
                return ConsumerHeartbeatResponse::error(
                    UNKNOWN_MEMBER_ID,
                    format!("member {} is not in the group", req.member_id),
                );
            }
        };
        let static_leave = req.member_epoch == -2 && req.instance_id.is_some();
        if static_leave {
            if let Some(m) = self.members.get_mut(&id) {
                m.left_static = true;
                m.session_deadline = now + cfg.consumer_session_timeout;
            }
            self.dirty = true;
        } else {
            self.remove_member(&id, "member left");
        }
        ConsumerHeartbeatResponse {
            member_id: Some(id),
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: cfg.consumer_heartbeat_interval.as_millis() as i32,
            ..Default::default()
        }
    }

    fn find_or_create(
        &mut self,
        req: &ConsumerHeartbeatRequest,
        now: Instant,
    ) -> Result<String, ConsumerHeartbeatResponse> {
        if req.member_epoch != 0 {
            let m = self.members.get(&req.member_id).ok_or_else(|| {
                ConsumerHeartbeatResponse::error(
                    UNKNOWN_MEMBER_ID,
                    format!("member {} is not in group {}", req.member_id, self.id),
                )
            })?;
            let received = req.member_epoch;
            let owned_ok = req
                .owned
                .as_ref()
                .is_some_and(|o| is_subset(o, &m.assigned));
            if received > m.epoch
                || (received < m.epoch && (received != m.previous_epoch || !owned_ok))
            {
                return Err(ConsumerHeartbeatResponse::error(
                    FENCED_MEMBER_EPOCH,
                    format!(
                        "member epoch {received} is fenced; the current epoch is {}",
                        m.epoch
                    ),
                ));
            }
            return Ok(req.member_id.clone());
        }
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(ConsumerHeartbeatResponse::error(
                INVALID_REQUEST,
                "a member joining (epoch 0) must send SubscribedTopicNames or SubscribedTopicRegex",
            ));
        }
        let id = if req.member_id.is_empty() {
            new_member_id("consumer")
        } else {
            req.member_id.clone()
        };
        if let Some(instance) = &req.instance_id
            && let Some(old_id) = self.static_members.get(instance).cloned()
            && old_id != id
        {
            let old = &self.members[&old_id];
            if !old.left_static {
                return Err(ConsumerHeartbeatResponse::error(
                    UNRELEASED_INSTANCE_ID,
                    format!("instance {instance} is still used by member {old_id}"),
                ));
            }
            // The static member is back under a new id: it takes over its place, epoch and partitions.
            let mut m = self.members.remove(&old_id).expect("static member present");
            m.id = id.clone();
            m.left_static = false;
            if let Some(t) = self.target.remove(&old_id) {
                self.target.insert(id.clone(), t);
            }
            self.static_members.insert(instance.clone(), id.clone());
            self.members.insert(id.clone(), m);
            self.dirty = true;
            return Ok(id);
        }
        if !self.members.contains_key(&id) {
            self.members.insert(
                id.clone(),
                ConsumerMember {
                    id: id.clone(),
                    instance_id: req.instance_id.clone(),
                    rack_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    epoch: 0,
                    previous_epoch: -1,
                    state: MemberState::Stable,
                    rebalance_timeout: Duration::ZERO,
                    subscribed_names: Vec::new(),
                    subscribed_regex: None,
                    server_assignor: None,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    session_deadline: now,
                    revocation_deadline: None,
                    left_static: false,
                },
            );
            if let Some(i) = &req.instance_id {
                self.static_members.insert(i.clone(), id.clone());
            }
            self.bump("member joined");
        }
        Ok(id)
    }

    fn update_member(
        &mut self,
        cfg: &GroupConfig,
        id: &str,
        req: &ConsumerHeartbeatRequest,
        now: Instant,
    ) {
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        let mut subscription_changed = false;
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            subscription_changed |= names != m.subscribed_names;
            m.subscribed_names = names;
        }
        if req.subscribed_topic_regex.is_some() && req.subscribed_topic_regex != m.subscribed_regex
        {
            subscription_changed = true;
            m.subscribed_regex = req.subscribed_topic_regex.clone();
        }
        if req.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms as u64);
        }
        if req.server_assignor.is_some() {
            m.server_assignor = req.server_assignor.clone();
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if !req.client_id.is_empty() {
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
        }
        m.session_deadline = now + cfg.consumer_session_timeout;
        if subscription_changed {
            self.bump("subscription changed");
        }
    }

    /// The topic names a member subscribes to, regex included, that exist now.
    fn member_topics(m: &ConsumerMember, catalog: &dyn TopicCatalog) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m.subscribed_names.iter().cloned().collect();
        if let Some(re) = m
            .subscribed_regex
            .as_deref()
            .and_then(|r| compile_regex(r).ok())
        {
            out.extend(
                catalog
                    .topic_names()
                    .into_iter()
                    .filter(|t| !t.starts_with("__") && re.is_match(t)),
            );
        }
        out
    }

    fn refresh_topics(&mut self, catalog: &dyn TopicCatalog) {
        let mut names = BTreeSet::new();
        for m in self.members.values() {
            names.extend(Self::member_topics(m, catalog));
        }
        let resolved: BTreeMap<String, TopicMeta> = names
            .into_iter()
            .filter_map(|n| catalog.topic(&n).map(|meta| (n, meta)))
            .collect();
        if resolved != self.topics {
            self.topics = resolved;
            self.bump("subscribed topic metadata changed");
        }
    }

    fn choose_assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| ASSIGNORS[0].to_string())
    }

    fn compute_target(&mut self, catalog: &dyn TopicCatalog) {
        self.assignor = self.choose_assignor();
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: m.id.clone(),
                topics: Self::member_topics(m, catalog)
                    .iter()
                    .filter_map(|n| self.topics.get(n).map(|t| t.id))
                    .collect(),
            })
            .collect();
        let topics: BTreeMap<uuid::Uuid, i32> =
            self.topics.values().map(|t| (t.id, t.partitions)).collect();
        self.target = assignor::assign(&self.assignor, &specs, &topics, &self.target);
        self.assignment_epoch = self.group_epoch;
        self.dirty = true;
        info!(group = %self.id, epoch = self.assignment_epoch, assignor = %self.assignor, "target assignment computed");
    }

    /// Moves one member towards its target assignment.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let Some(m) = self.members.get(id) else {
            return;
        };
        if m.state == MemberState::UnrevokedPartitions {
            // The member may move on once it no longer owns anything it was asked to give up.
            if owned.is_some_and(|o| is_subset(o, &m.assigned)) {
                let m = self.members.get_mut(id).expect("member present");
                m.pending_revocation.clear();
                m.revocation_deadline = None;
                m.state = MemberState::Stable;
            } else {
                return;
            }
        }
        let m = &self.members[id];
        if m.epoch == self.assignment_epoch && m.state == MemberState::Stable {
            return;
        }
        let target = self.target.get(id).cloned().unwrap_or_default();
        let mut held_by_others = Assignment::new();
        for other in self.members.values().filter(|o| o.id != id) {
            held_by_others = union(
                &held_by_others,
                &union(&other.assigned, &other.pending_revocation),
            );
        }
        let kept = intersect(&m.assigned, &target);
        let revoke = subtract(&m.assigned, &target);
        let wanted = subtract(&target, &m.assigned);
        let free = subtract(&wanted, &held_by_others);
        let unreleased = !subtract(&wanted, &free).is_empty();
        let epoch = self.assignment_epoch;
        let m = self.members.get_mut(id).expect("member present");
        if !revoke.is_empty() {
            m.assigned = kept;
            m.pending_revocation = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revocation_deadline = Some(now + m.rebalance_timeout);
        } else {
            m.assigned = union(&kept, &free);
            if m.epoch != epoch {
                m.previous_epoch = m.epoch;
                m.epoch = epoch;
            }
            m.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline), m.revocation_deadline])
            .flatten()
            .min()
    }

    /// Removes members whose session expired or who did not revoke within their rebalance timeout.
    pub fn tick(&mut self, now: Instant) {
        let expired: Vec<(String, &str)> = self
            .members
            .values()
            .filter_map(|m| {
                if m.session_deadline <= now {
                    Some((m.id.clone(), "session timeout expired"))
                } else if m.revocation_deadline.is_some_and(|d| d <= now) {
                    Some((
                        m.id.clone(),
                        "partitions not revoked within the rebalance timeout",
                    ))
                } else {
                    None
                }
            })
            .collect();
        for (id, why) in expired {
            info!(group = %self.id, member = %id, why, "member fenced");
            self.remove_member(&id, why);
        }
    }

    pub fn describe(&self, catalog: &dyn TopicCatalog) -> ConsumerGroupDescription {
        let _ = catalog;
        ConsumerGroupDescription {
            group_id: self.id.clone(),
            error: NONE,
            error_message: None,
            state: self.state_name().to_string(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.clone(),
            members: self
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_names.clone(),
                    subscribed_topic_regex: m.subscribed_regex.clone(),
                    assignment: m.assigned.clone(),
                    target_assignment: self.target.get(&m.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// Topic names subscribed by any member (OffsetDelete refuses to delete their offsets).
    pub fn subscribed_topic_names(&self, catalog: &dyn TopicCatalog) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(Self::member_topics(m, catalog));
        }
        out
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
pub(crate) mod tests;
