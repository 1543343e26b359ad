//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) as a pure state machine.
//!
//! States follow Apache Kafka's: Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and Dead once
//! deleted. Requests that must wait (JoinGroup until every member has rejoined, SyncGroup until the leader has
//! sent the assignment) park a oneshot sender on the member; [`ClassicGroup::tick`] fires the timers. Nothing
//! here reads a clock: the caller passes `now`, so tests control time completely.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info};

use super::codes::*;
use super::types::*;
use super::{GroupConfig, new_member_id, wall_ms};

/// Classic group states, named as Kafka names them (DescribeGroups and ListGroups report these strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// One member of a classic group.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub heartbeat_deadline: Instant,
    join_waiter: Option<oneshot::Sender<JoinResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncResponse>>,
}

impl Member {
    /// The metadata this member sent for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// The join phase timer: the initial delay of an empty group, or the rebalance timeout.
#[derive(Debug, Clone, Copy)]
struct JoinTimer {
    deadline: Instant,
    initial: bool,
    remaining: Duration,
}

/// A classic group.
#[derive(Debug)]
pub struct ClassicGroup {
    pub id: String,
    pub state: ClassicState,
    /// Wall-clock time of the last state change (offset retention counts from when the group became empty).
    pub state_since_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined with: they expire after their session.
    pending: HashMap<String, Instant>,
    join_timer: Option<JoinTimer>,
    new_member_added: bool,
    /// Members that have not sent SyncGroup for the current generation, and when they must have.
    pending_sync: HashSet<String>,
    sync_deadline: Option<Instant>,
    /// Set when the durable form of the group changed (Stable with a new assignment, or Empty).
    pub dirty: bool,
}

impl ClassicGroup {
    pub fn new(id: &str) -> Self {
        ClassicGroup {
            id: id.to_string(),
            state: ClassicState::Empty,
            state_since_ms: wall_ms(),
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_timer: None,
            new_member_added: false,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            dirty: false,
        }
    }

    /// Rebuilds a group loaded from the store: members come back Stable with a fresh session, as Kafka does
    /// after loading a group, so consumers carry on across a broker restart without a rebalance.
    pub fn restore(id: &str, stored: StoredClassic, now: Instant) -> Self {
        let mut g = ClassicGroup::new(id);
        g.generation = stored.generation;
        g.protocol_type = stored.protocol_type;
        g.protocol = stored.protocol;
        g.leader = stored.leader;
        g.state_since_ms = stored.state_since_ms;
        for m in stored.members {
            if let Some(i) = &m.instance_id {
                g.static_members.insert(i.clone(), m.id.clone());
            }
            let member = Member {
                heartbeat_deadline: now + m.session_timeout,
                id: m.id.clone(),
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout: m.session_timeout,
                rebalance_timeout: m.rebalance_timeout,
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                protocols: m.protocols,
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
            };
            g.members.insert(m.id, member);
        }
        g.state = if g.members.is_empty() {
            ClassicState::Empty
        } else {
            ClassicState::Stable
        };
        g
    }

    /// The durable form of the group.
    pub fn to_stored(&self) -> StoredClassic {
        StoredClassic {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_since_ms: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: m.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols: m.protocols.clone(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    fn set_state(&mut self, state: ClassicState) {
        self.state = state;
        self.state_since_ms = wall_ms();
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Protocols every member supports.
    fn common_protocols(&self) -> Vec<String> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return Vec::new();
        };
        let mut common: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in it {
            common.retain(|p| m.protocols.iter().any(|(n, _)| n == p));
        }
        common
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .common_protocols()
                .iter()
                .any(|p| protocols.iter().any(|(n, _)| n == p))
    }

    /// Each member votes for its most preferred protocol among those all support; most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols();
        let mut votes: Vec<(String, usize)> = common.iter().map(|p| (p.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| common.contains(n))
                && let Some(v) = votes.iter_mut().find(|(p, _)| p == name)
            {
                v.1 += 1;
            }
        }
        // max_by_key keeps the last maximum; iterate reversed so ties go to the earliest-listed protocol.
        votes
            .into_iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map(|(p, _)| p)
    }

    fn join_members(&self, protocol: &str) -> Vec<JoinMember> {
        self.members
            .values()
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// The answer a member gets when it joins without changing anything in the current generation.
    fn current_generation_response(&self, member_id: &str, skip_assignment: bool) -> JoinResponse {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResponse {
            error: NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: is_leader && skip_assignment,
            member_id: member_id.to_string(),
            members: if is_leader {
                self.join_members(&protocol)
            } else {
                Vec::new()
            },
        }
    }

    /// JoinGroup. The answer is sent on `tx`, at once or when the join phase completes.
    pub fn join(
        &mut self,
        cfg: &GroupConfig,
        req: JoinRequest,
        now: Instant,
        tx: oneshot::Sender<JoinResponse>,
    ) {
        if self.state == ClassicState::Dead {
            let _ = tx.send(JoinResponse::error(
                COORDINATOR_NOT_AVAILABLE,
                &req.member_id,
            ));
            return;
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            let _ = tx.send(JoinResponse::error(
                INCONSISTENT_GROUP_PROTOCOL,
                &req.member_id,
            ));
            return;
        }
        if req.member_id.is_empty() {
            self.join_new(cfg, req, now, tx);
        } else {
            self.join_known(cfg, req, now, tx);
        }
    }

    fn join_new(
        &mut self,
        cfg: &GroupConfig,
        req: JoinRequest,
        now: Instant,
        tx: oneshot::Sender<JoinResponse>,
    ) {
        let prefix = req
            .group_instance_id
            .clone()
            .unwrap_or_else(|| req.client_id.clone());
        let new_id = new_member_id(&prefix);
        if let Some(instance) = req.group_instance_id.clone()
            && let Some(old_id) = self.static_members.get(&instance).cloned()
        {
            self.replace_static_member(&old_id, &new_id);
            self.rejoin_static(cfg, new_id, req, now, tx);
            return;
        }
        if self.members.len() + self.pending.len() >= cfg.max_group_size {
            let _ = tx.send(JoinResponse::error(GROUP_MAX_SIZE_REACHED, ""));
            return;
        }
        if req.group_instance_id.is_none() && req.require_known_member_id {
            // KIP-394: hand out the id first, so a client that times out cannot leave ghost members behind.
            self.pending
                .insert(new_id.clone(), now + session_timeout(&req));
            let _ = tx.send(JoinResponse::error(MEMBER_ID_REQUIRED, &new_id));
            return;
        }
        self.add_member(cfg, new_id, req, now, tx);
    }

    fn join_known(
        &mut self,
        cfg: &GroupConfig,
        req: JoinRequest,
        now: Instant,
        tx: oneshot::Sender<JoinResponse>,
    ) {
        let id = req.member_id.clone();
        if self.pending.remove(&id).is_some() {
            self.add_member(cfg, id, req, now, tx);
            return;
        }
        if let Err(code) = self.check_static(&id, req.group_instance_id.as_deref()) {
            let _ = tx.send(JoinResponse::error(code, &id));
            return;
        }
        let Some(member) = self.members.get(&id) else {
            let _ = tx.send(JoinResponse::error(UNKNOWN_MEMBER_ID, &id));
            return;
        };
        let unchanged = member.same_protocols(&req.protocols);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            ClassicState::PreparingRebalance => {
                self.update_member_and_rebalance(cfg, &id, req, now, tx)
            }
            ClassicState::CompletingRebalance if unchanged => {
                // The JoinGroup response was lost: send it again.
                let _ = tx.send(self.current_generation_response(&id, false));
            }
            ClassicState::Stable if unchanged && !is_leader => {
                let _ = tx.send(self.current_generation_response(&id, false));
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                self.update_member_and_rebalance(cfg, &id, req, now, tx)
            }
            ClassicState::Empty | ClassicState::Dead => {
                let _ = tx.send(JoinResponse::error(UNKNOWN_MEMBER_ID, &id));
            }
        }
    }

    /// A static member came back under a new member id: the old id is fenced, its place kept.
    fn replace_static_member(&mut self, old_id: &str, new_id: &str) {
        let Some(mut m) = self.members.remove(old_id) else {
            return;
        };
        info!(group = %self.id, old_id, new_id, "static member replaced");
        if let Some(tx) = m.join_waiter.take() {
            let _ = tx.send(JoinResponse::error(FENCED_INSTANCE_ID, old_id));
        }
        if let Some(tx) = m.sync_waiter.take() {
            let _ = tx.send(SyncResponse::error(FENCED_INSTANCE_ID));
        }
        m.id = new_id.to_string();
        if let Some(i) = &m.instance_id {
            self.static_members.insert(i.clone(), new_id.to_string());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.to_string());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_string());
        }
        self.members.insert(new_id.to_string(), m);
    }

    fn rejoin_static(
        &mut self,
        cfg: &GroupConfig,
        id: String,
        req: JoinRequest,
        now: Instant,
        tx: oneshot::Sender<JoinResponse>,
    ) {
        match self.state {
            ClassicState::Stable => {
                let old_protocols = self
                    .members
                    .get(&id)
                    .map(|m| m.protocols.clone())
                    .unwrap_or_default();
                self.update_member(&id, &req, now);
                if self.select_protocol() == self.protocol {
                    // KIP-345: a static member restarting with the same subscription skips the rebalance.
                    self.dirty = true;
                    let _ = tx.send(self.current_generation_response(&id, true));
                } else {
                    if let Some(m) = self.members.get_mut(&id) {
                        m.protocols = old_protocols;
                    }
                    self.update_member_and_rebalance(cfg, &id, req, now, tx);
                }
            }
            _ => self.update_member_and_rebalance(cfg, &id, req, now, tx),
        }
    }

    fn update_member(&mut self, id: &str, req: &JoinRequest, now: Instant) {
        if let Some(m) = self.members.get_mut(id) {
            m.protocols = req.protocols.clone();
            m.session_timeout = session_timeout(req);
            m.rebalance_timeout = rebalance_timeout(req);
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            m.heartbeat_deadline = now + m.session_timeout;
        }
    }

    fn update_member_and_rebalance(
        &mut self,
        cfg: &GroupConfig,
        id: &str,
        req: JoinRequest,
        now: Instant,
        tx: oneshot::Sender<JoinResponse>,
    ) {
        self.update_member(id, &req, now);
        if let Some(m) = self.members.get_mut(id)
            && let Some(old) = m.join_waiter.replace(tx)
        {
            // A second JoinGroup from the same member replaces the first; the first asks it to retry.
            let _ = old.send(JoinResponse::error(REBALANCE_IN_PROGRESS, id));
        }
        self.maybe_prepare_rebalance(cfg, now, "member rejoined with new metadata");
    }

    fn add_member(
        &mut self,
        cfg: &GroupConfig,
        id: String,
        req: JoinRequest,
        now: Instant,
        tx: oneshot::Sender<JoinResponse>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(i) = &req.group_instance_id {
            self.static_members.insert(i.clone(), id.clone());
        }
        if self.state == ClassicState::PreparingRebalance
            && self.join_timer.is_some_and(|t| t.initial)
        {
            self.new_member_added = true;
        }
        let member = Member {
            id: id.clone(),
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout: session_timeout(&req),
            rebalance_timeout: rebalance_timeout(&req),
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols,
            assignment: Bytes::new(),
            heartbeat_deadline: now + session_timeout_raw(req.session_timeout_ms),
            join_waiter: Some(tx),
            sync_waiter: None,
        };
        debug!(group = %self.id, member = %id, "member added");
        self.members.insert(id, member);
        self.maybe_prepare_rebalance(cfg, now, "member joined");
    }

    fn maybe_prepare_rebalance(&mut self, cfg: &GroupConfig, now: Instant, reason: &str) {
        if matches!(
            self.state,
            ClassicState::Stable | ClassicState::CompletingRebalance | ClassicState::Empty
        ) {
            self.prepare_rebalance(cfg, now, reason);
        }
        self.try_complete_join(now);
    }

    fn prepare_rebalance(&mut self, cfg: &GroupConfig, now: Instant, reason: &str) {
        if self.state == ClassicState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.sync_waiter.take() {
                    let _ = tx.send(SyncResponse::error(REBALANCE_IN_PROGRESS));
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let timeout = self.max_rebalance_timeout();
        // An empty group waits group.initial.rebalance.delay for more members (none when it is zero).
        let initial = self.state == ClassicState::Empty && !cfg.initial_rebalance_delay.is_zero();
        self.join_timer = Some(if initial {
            let delay = cfg.initial_rebalance_delay.min(timeout);
            JoinTimer {
                deadline: now + delay,
                initial: true,
                remaining: timeout.saturating_sub(delay),
            }
        } else {
            JoinTimer {
                deadline: now + timeout,
                initial: false,
                remaining: Duration::ZERO,
            }
        });
        info!(group = %self.id, generation = self.generation, reason, "preparing rebalance");
        self.set_state(ClassicState::PreparingRebalance);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state == ClassicState::PreparingRebalance
            && !self.join_timer.is_some_and(|t| t.initial)
            && self.all_joined()
        {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        self.join_timer = None;
        // Dynamic members that did not rejoin in time are gone; static ones keep their place.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member_quietly(&id);
        }
        if self.members.is_empty() {
            self.generation += 1;
            self.protocol = None;
            self.leader = None;
            self.set_state(ClassicState::Empty);
            self.dirty = true;
            info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        let leader_joined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.join_waiter.is_some());
        if !leader_joined {
            self.leader = self
                .members
                .values()
                .find(|m| m.join_waiter.is_some())
                .or_else(|| self.members.values().next())
                .map(|m| m.id.clone());
        }
        self.generation += 1;
        self.protocol = self.select_protocol();
        self.set_state(ClassicState::CompletingRebalance);
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = self.join_members(&protocol);
        let sync_timeout = self.max_rebalance_timeout();
        for m in self.members.values_mut() {
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinResponse {
                    error: NONE,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    leader: leader.clone(),
                    skip_assignment: false,
                    member_id: m.id.clone(),
                    members: if m.id == leader {
                        members.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
            m.heartbeat_deadline = now + m.session_timeout;
        }
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now + sync_timeout);
        info!(group = %self.id, generation = self.generation, %protocol, members = self.members.len(), "join phase complete");
    }

    /// Checks group.instance.id against the member id it is registered with.
    fn check_static(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        match instance_id.and_then(|i| self.static_members.get(i)) {
            Some(id) if id != member_id => Err(FENCED_INSTANCE_ID),
            _ => Ok(()),
        }
    }

    /// Common checks of SyncGroup, Heartbeat and OffsetCommit on a member and its generation.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if self.state == ClassicState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        self.check_static(member_id, instance_id)?;
        if !self.members.contains_key(member_id) {
            return Err(UNKNOWN_MEMBER_ID);
        }
        if generation != self.generation {
            return Err(ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// SyncGroup. The answer is sent on `tx`, at once or when the leader's assignment arrives.
    pub fn sync(&mut self, req: SyncRequest, tx: oneshot::Sender<SyncResponse>) {
        if let Err(code) = self.check_member(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        ) {
            let _ = tx.send(SyncResponse::error(code));
            return;
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|p| Some(p) != self.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            let _ = tx.send(SyncResponse::error(INCONSISTENT_GROUP_PROTOCOL));
            return;
        }
        match self.state {
            ClassicState::Empty | ClassicState::Dead => {
                let _ = tx.send(SyncResponse::error(UNKNOWN_MEMBER_ID));
            }
            ClassicState::PreparingRebalance => {
                let _ = tx.send(SyncResponse::error(REBALANCE_IN_PROGRESS));
            }
            ClassicState::CompletingRebalance => {
                self.pending_sync.remove(&req.member_id);
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    let assignments: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
                    }
                    self.set_state(ClassicState::Stable);
                    self.dirty = true;
                    info!(group = %self.id, generation = self.generation, "group is stable");
                    self.answer_syncs();
                }
            }
            ClassicState::Stable => {
                self.pending_sync.remove(&req.member_id);
                let _ = tx.send(self.sync_answer(&req.member_id));
            }
        }
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    fn sync_answer(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    fn answer_syncs(&mut self) {
        let waiting: Vec<String> = self
            .members
            .values()
            .filter(|m| m.sync_waiter.is_some())
            .map(|m| m.id.clone())
            .collect();
        for id in waiting {
            let answer = self.sync_answer(&id);
            if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                let _ = tx.send(answer);
            }
        }
    }

    /// Heartbeat: keeps the member's session alive and tells it whether to rejoin.
    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now: Instant) -> i16 {
        if let Err(code) = self.check_member(
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        ) {
            return code;
        }
        let state = self.state;
        let Some(m) = self.members.get_mut(&req.member_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        match state {
            ClassicState::Empty | ClassicState::Dead => UNKNOWN_MEMBER_ID,
            ClassicState::PreparingRebalance => {
                m.heartbeat_deadline = now + m.session_timeout;
                REBALANCE_IN_PROGRESS
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                m.heartbeat_deadline = now + m.session_timeout;
                NONE
            }
        }
    }

    /// OffsetCommit's membership check (Kafka's rules: a commit from outside the group needs it empty).
    pub fn check_commit(&self, req: &CommitRequest) -> Result<(), i16> {
        if self.state == ClassicState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        self.check_static(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id < 0 && self.state == ClassicState::Empty {
            return Ok(());
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(REBALANCE_IN_PROGRESS);
        }
        if !self.members.contains_key(&req.member_id) {
            return Err(UNKNOWN_MEMBER_ID);
        }
        if req.generation_id != self.generation {
            return Err(ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// LeaveGroup for a batch of members.
    pub fn leave(
        &mut self,
        cfg: &GroupConfig,
        members: Vec<LeavingMember>,
        now: Instant,
    ) -> LeaveResponse {
        if self.state == ClassicState::Dead {
            return LeaveResponse {
                error: COORDINATOR_NOT_AVAILABLE,
                members: Vec::new(),
            };
        }
        let mut out = Vec::with_capacity(members.len());
        for lm in members {
            let code = match &lm.group_instance_id {
                Some(instance) => match self.static_members.get(instance).cloned() {
                    None => UNKNOWN_MEMBER_ID,
                    Some(id) if !lm.member_id.is_empty() && lm.member_id != id => {
                        FENCED_INSTANCE_ID
                    }
                    Some(id) => {
                        self.remove_member(cfg, &id, now, "static member left");
                        NONE
                    }
                },
                None if self.pending.remove(&lm.member_id).is_some() => {
                    self.try_complete_join(now);
                    NONE
                }
                None if self.members.contains_key(&lm.member_id) => {
                    self.remove_member(cfg, &lm.member_id, now, "member left");
                    NONE
                }
                None => UNKNOWN_MEMBER_ID,
            };
            out.push((lm, code));
        }
        LeaveResponse {
            error: NONE,
            members: out,
        }
    }

    fn remove_member_quietly(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(i) = &m.instance_id {
                self.static_members.remove(i);
            }
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinResponse::error(UNKNOWN_MEMBER_ID, id));
            }
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncResponse::error(UNKNOWN_MEMBER_ID));
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    fn remove_member(&mut self, cfg: &GroupConfig, id: &str, now: Instant, reason: &str) {
        info!(group = %self.id, member = %id, reason, "member removed");
        self.remove_member_quietly(id);
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(cfg, now, reason)
            }
            _ => {}
        }
        self.try_complete_join(now);
    }

    /// The earliest instant at which [`ClassicGroup::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
            .map(|m| m.heartbeat_deadline);
        sessions
            .chain(self.pending.values().copied())
            .chain(self.join_timer.map(|t| t.deadline))
            .chain(self.sync_deadline)
            .min()
    }

    /// Fires every timer due at `now`: expired sessions, the join phase deadline, the sync deadline.
    pub fn tick(&mut self, cfg: &GroupConfig, now: Instant) {
        let expired_pending: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired_pending {
            self.pending.remove(&id);
            self.try_complete_join(now);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.join_waiter.is_none() && m.sync_waiter.is_none() && m.heartbeat_deadline <= now
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            self.remove_member(cfg, &id, now, "session timeout expired");
        }
        if let Some(t) = self.join_timer
            && t.deadline <= now
        {
            if t.initial && self.new_member_added && !t.remaining.is_zero() {
                // More members arrived during the initial delay: wait once more for stragglers.
                let delay = cfg.initial_rebalance_delay.min(t.remaining);
                self.new_member_added = false;
                self.join_timer = Some(JoinTimer {
                    deadline: now + delay,
                    initial: true,
                    remaining: t.remaining - delay,
                });
            } else {
                self.complete_join(now);
            }
        }
        if let Some(d) = self.sync_deadline
            && d <= now
        {
            self.sync_deadline = None;
            let late: Vec<String> = self.pending_sync.drain().collect();
            if !late.is_empty() {
                for id in &late {
                    self.remove_member_quietly(id);
                }
                info!(group = %self.id, members = late.len(), "members did not sync in time");
                if matches!(
                    self.state,
                    ClassicState::Stable | ClassicState::CompletingRebalance
                ) {
                    self.prepare_rebalance(cfg, now, "members did not sync in time");
                }
                self.try_complete_join(now);
            }
        }
    }

    /// Answers every parked request (used when the group is deleted or the coordinator shuts down).
    pub fn fail_waiters(&mut self, code: i16) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.join_waiter.take() {
                let _ = tx.send(JoinResponse::error(code, &m.id));
            }
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncResponse::error(code));
            }
        }
    }

    /// DescribeGroups. Member metadata and assignments are shown only when Stable, as Kafka does.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == ClassicState::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupDescription {
            group_id: self.id.clone(),
            error: NONE,
            state: self.state.name().to_string(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }
}

fn session_timeout_raw(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

fn session_timeout(req: &JoinRequest) -> Duration {
    session_timeout_raw(req.session_timeout_ms)
}

/// JoinGroup v0 has no rebalance timeout: Kafka then uses the session timeout.
fn rebalance_timeout(req: &JoinRequest) -> Duration {
    if req.rebalance_timeout_ms < 0 {
        session_timeout(req)
    } else {
        session_timeout_raw(req.rebalance_timeout_ms)
    }
}

/// The durable form of a classic group (see [`super::store`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredClassic {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_since_ms: i64,
    pub members: Vec<StoredMember>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
