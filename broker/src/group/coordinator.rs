//! [`GroupCoordinator`]: every group behind one lock, the timers that drive them, and the journal they are
//! saved to. Membership operations live here; offsets and admin operations in [`super::admin`].
//!
//! One lock for all groups keeps the code obvious and is cheap: every operation is a few map lookups plus at
//! most one `write` to the journal (the OS page cache), so the lock is held for microseconds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::{error, warn};

use super::classic::{ClassicGroup, ClassicState};
use super::codec::FrameWriter;
use super::codes::*;
use super::consumer::ConsumerGroup;
use super::offsets::OffsetMap;
use super::store::GroupStore;
use super::types::*;
use super::{GroupConfig, TopicCatalog, wall_ms};
use crate::error::Error;

/// A group's membership protocol and its committed offsets.
#[derive(Debug)]
pub(crate) struct Group {
    pub kind: Kind,
    pub offsets: OffsetMap,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

impl Group {
    pub fn has_members(&self) -> bool {
        match &self.kind {
            Kind::Classic(g) => !g.is_empty(),
            Kind::Consumer(g) => !g.members.is_empty(),
        }
    }

    /// Since when the group has had no members (None while it has some): offset retention counts from here.
    pub fn empty_since_ms(&self) -> Option<i64> {
        match &self.kind {
            Kind::Classic(g) if g.state == ClassicState::Empty && g.is_empty() => {
                Some(g.state_since_ms)
            }
            Kind::Consumer(g) if g.members.is_empty() => Some(g.state_since_ms),
            _ => None,
        }
    }
}

pub(crate) struct State {
    pub groups: HashMap<String, Group>,
    pub store: GroupStore,
    /// Producer ids are handed out from blocks reserved in the journal, so none is reused after a restart.
    pub next_producer_id: i64,
    pub producer_id_limit: i64,
}

pub(crate) struct Inner {
    pub cfg: GroupConfig,
    pub state: Mutex<State>,
    wake: Notify,
}

/// The group coordinator. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct GroupCoordinator {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator").finish_non_exhaustive()
    }
}

impl GroupCoordinator {
    /// Opens the group store under `dir` and restores every group. When called inside a tokio runtime it also
    /// starts the timer task (sessions, rebalance deadlines, offset retention), which ends with the last clone.
    pub fn open(dir: &Path, cfg: GroupConfig) -> Result<Self, Error> {
        let now = Instant::now();
        let (store, loaded) = GroupStore::open(dir, &cfg, now)?;
        let mut groups: HashMap<String, Group> = HashMap::new();
        for (id, stored) in loaded.classic {
            groups.insert(
                id.clone(),
                Group {
                    kind: Kind::Classic(ClassicGroup::restore(&id, stored, now)),
                    offsets: OffsetMap::new(),
                },
            );
        }
        for (id, g) in loaded.consumer {
            groups.insert(
                id,
                Group {
                    kind: Kind::Consumer(g),
                    offsets: OffsetMap::new(),
                },
            );
        }
        for (id, offsets) in loaded.offsets {
            if offsets.is_empty() {
                continue;
            }
            let g = groups.entry(id.clone()).or_insert_with(|| {
                // A group known only by its offsets: retention counts from each commit.
                let mut c = ClassicGroup::new(&id);
                c.state_since_ms = 0;
                Group {
                    kind: Kind::Classic(c),
                    offsets: OffsetMap::new(),
                }
            });
            g.offsets = offsets;
        }
        let state = State {
            groups,
            store,
            next_producer_id: loaded.next_producer_id,
            producer_id_limit: loaded.next_producer_id,
        };
        let coordinator = GroupCoordinator {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(state),
                wake: Notify::new(),
            }),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(run_timers(Arc::downgrade(&coordinator.inner)));
        }
        Ok(coordinator)
    }

    pub fn config(&self) -> &GroupConfig {
        &self.inner.cfg
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in a pure state machine; keep serving the others.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets the timer task recompute its next deadline.
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// JoinGroup: resolves when the member's join phase completes (or at once for errors and MEMBER_ID_REQUIRED).
    pub async fn join_group(&self, req: JoinRequest) -> JoinResponse {
        let cfg = &self.inner.cfg;
        if req.group_id.is_empty() {
            return JoinResponse::error(INVALID_GROUP_ID, &req.member_id);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if session < cfg.min_session_timeout || session > cfg.max_session_timeout {
            return JoinResponse::error(INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.lock();
            let now = Instant::now();
            let exists = st.groups.contains_key(&req.group_id);
            if !exists && !req.member_id.is_empty() {
                return JoinResponse::error(UNKNOWN_MEMBER_ID, &req.member_id);
            }
            let group = st
                .groups
                .entry(req.group_id.clone())
                .or_insert_with(|| Group {
                    kind: Kind::Classic(ClassicGroup::new(&req.group_id)),
                    offsets: OffsetMap::new(),
                });
            if let Kind::Consumer(c) = &group.kind {
                if !c.members.is_empty() {
                    return JoinResponse::error(INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
                }
                // An empty consumer group may switch protocols; its offsets stay.
                group.kind = Kind::Classic(ClassicGroup::new(&req.group_id));
            }
            let group_id = req.group_id.clone();
            if let Kind::Classic(g) = &mut group.kind {
                g.join(cfg, req, now, tx);
            }
            persist_group(&mut st, &group_id);
        }
        self.wake();
        rx.await
            .unwrap_or_else(|_| JoinResponse::error(REBALANCE_IN_PROGRESS, ""))
    }

    /// SyncGroup: followers wait here for the leader's assignment.
    pub async fn sync_group(&self, req: SyncRequest) -> SyncResponse {
        if req.group_id.is_empty() {
            return SyncResponse::error(INVALID_GROUP_ID);
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.lock();
            let group_id = req.group_id.clone();
            match st.groups.get_mut(&group_id).map(|g| &mut g.kind) {
                Some(Kind::Classic(g)) => g.sync(req, tx),
                _ => return SyncResponse::error(UNKNOWN_MEMBER_ID),
            }
            persist_group(&mut st, &group_id);
        }
        self.wake();
        rx.await
            .unwrap_or_else(|_| SyncResponse::error(REBALANCE_IN_PROGRESS))
    }

    /// Heartbeat of a classic member.
    pub fn heartbeat(&self, req: &HeartbeatRequest) -> i16 {
        if req.group_id.is_empty() {
            return INVALID_GROUP_ID;
        }
        let mut st = self.lock();
        match st.groups.get_mut(&req.group_id).map(|g| &mut g.kind) {
            Some(Kind::Classic(g)) => g.heartbeat(req, Instant::now()),
            _ => UNKNOWN_MEMBER_ID,
        }
    }

    /// LeaveGroup for one (v0-2) or several (v3+) members.
    pub fn leave_group(&self, group_id: &str, members: Vec<LeavingMember>) -> LeaveResponse {
        let out = {
            let mut st = self.lock();
            let out = match st.groups.get_mut(group_id).map(|g| &mut g.kind) {
                Some(Kind::Classic(g)) => g.leave(&self.inner.cfg, members, Instant::now()),
                _ => LeaveResponse {
                    error: NONE,
                    members: members
                        .into_iter()
                        .map(|m| (m, UNKNOWN_MEMBER_ID))
                        .collect(),
                },
            };
            persist_group(&mut st, group_id);
            out
        };
        self.wake();
        out
    }

    /// ConsumerGroupHeartbeat (KIP-848).
    pub fn consumer_heartbeat(
        &self,
        req: ConsumerHeartbeatRequest,
        catalog: &dyn TopicCatalog,
    ) -> ConsumerHeartbeatResponse {
        if req.group_id.is_empty() {
            return ConsumerHeartbeatResponse::error(INVALID_GROUP_ID, "GroupId can't be empty");
        }
        if req.member_epoch < -2 {
            return ConsumerHeartbeatResponse::error(
                INVALID_REQUEST,
                format!(
                    "MemberEpoch {} is invalid: it must be >= -2",
                    req.member_epoch
                ),
            );
        }
        if req.member_epoch != 0 && req.member_id.is_empty() {
            return ConsumerHeartbeatResponse::error(
                INVALID_REQUEST,
                "MemberId can't be empty unless MemberEpoch is 0",
            );
        }
        let resp = {
            let mut st = self.lock();
            let group_id = req.group_id.clone();
            let now = Instant::now();
            let group = match st.groups.get_mut(&group_id) {
                Some(g) => g,
                None if req.member_epoch == 0 => {
                    st.groups.entry(group_id.clone()).or_insert_with(|| Group {
                        kind: Kind::Consumer(ConsumerGroup::new(&group_id)),
                        offsets: OffsetMap::new(),
                    })
                }
                None => {
                    return ConsumerHeartbeatResponse::error(
                        UNKNOWN_MEMBER_ID,
                        format!("group {group_id} has no member {}", req.member_id),
                    );
                }
            };
            if let Kind::Classic(c) = &group.kind {
                if !c.is_empty() {
                    return ConsumerHeartbeatResponse::error(
                        GROUP_ID_NOT_FOUND,
                        format!(
                            "group {group_id} is a classic group with members, not a consumer group"
                        ),
                    );
                }
                group.kind = Kind::Consumer(ConsumerGroup::new(&group_id));
            }
            let Kind::Consumer(g) = &mut group.kind else {
                unreachable!("converted above")
            };
            let resp = g.heartbeat(&self.inner.cfg, req, catalog, now);
            persist_group(&mut st, &group_id);
            resp
        };
        self.wake();
        resp
    }

    /// Fires every timer due now (the timer task calls this; tests may too).
    pub fn tick(&self) {
        let now = Instant::now();
        let mut st = self.lock();
        let ids: Vec<String> = st
            .groups
            .iter()
            .filter(|(_, g)| next_deadline_of(g).is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(g) = st.groups.get_mut(&id) {
                match &mut g.kind {
                    Kind::Classic(c) => c.tick(&self.inner.cfg, now),
                    Kind::Consumer(c) => c.tick(now),
                }
            }
            persist_group(&mut st, &id);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.lock()
            .groups
            .values()
            .filter_map(next_deadline_of)
            .min()
    }
}

fn next_deadline_of(g: &Group) -> Option<Instant> {
    match &g.kind {
        Kind::Classic(c) => c.next_deadline(),
        Kind::Consumer(c) => c.next_deadline(),
    }
}

/// Writes a group's metadata to the journal if it changed.
pub(crate) fn persist_group(st: &mut State, group_id: &str) {
    let Some(g) = st.groups.get_mut(group_id) else {
        return;
    };
    let mut w = FrameWriter::default();
    match &mut g.kind {
        Kind::Classic(c) if c.dirty => {
            c.dirty = false;
            w.classic(group_id, &c.to_stored());
        }
        Kind::Consumer(c) if c.dirty => {
            c.dirty = false;
            w.consumer(c);
        }
        _ => return,
    }
    if let Err(e) = st.store.append(&w.buf) {
        // Membership survives in memory; only a restart would lose this change, and clients recover by rejoining.
        error!(group = group_id, error = %e, "could not save group metadata");
    }
}

/// Rewrites the journal from the live state once it has grown enough.
pub(crate) fn maybe_compact(st: &mut State, min_bytes: u64) {
    if !st.store.wants_compaction(min_bytes) {
        return;
    }
    let mut w = FrameWriter::default();
    for (id, g) in &st.groups {
        match &g.kind {
            Kind::Classic(c) if c.protocol_type.is_some() || c.generation > 0 => {
                w.classic(id, &c.to_stored())
            }
            Kind::Consumer(c) => w.consumer(c),
            Kind::Classic(_) => {}
        }
        for ((topic, partition), c) in &g.offsets {
            w.offset(id, topic, *partition, c);
        }
    }
    w.producer_ids(st.producer_id_limit);
    if let Err(e) = st.store.rewrite(&w.buf) {
        warn!(error = %e, "group journal compaction failed; the journal keeps growing until the next attempt");
    }
}

async fn run_timers(inner: Weak<Inner>) {
    let mut next_retention = Instant::now();
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let coordinator = GroupCoordinator { inner: strong };
        let now = Instant::now();
        if now >= next_retention {
            coordinator.expire_offsets(wall_ms());
            next_retention = now + coordinator.inner.cfg.offsets_retention_check_interval;
        }
        coordinator.tick();
        // Wake for the next deadline, a change, or after a second at most (to notice the coordinator is gone).
        let deadline = coordinator
            .next_deadline()
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_secs(1))
            .min(next_retention);
        let woken = {
            let notified = coordinator.inner.wake.notified();
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => false,
                _ = notified => true,
            }
        };
        let _ = woken;
        if Arc::strong_count(&coordinator.inner) == 1 {
            return;
        }
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
