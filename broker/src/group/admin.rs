//! Offsets and admin operations of the [`GroupCoordinator`]: OffsetCommit, OffsetFetch, OffsetDelete,
//! DescribeGroups, ListGroups, DeleteGroups, ConsumerGroupDescribe, offset retention and producer ids.

use std::collections::BTreeSet;

use tracing::{error, info};

use super::classic::ClassicGroup;
use super::codec::FrameWriter;
use super::codes::*;
use super::coordinator::{Group, GroupCoordinator, Kind, maybe_compact};
use super::offsets::{self, Committed, OffsetMap};
use super::subscription;
use super::types::*;
use super::{TopicCatalog, wall_ms};

/// Producer ids are reserved in blocks of this size, one journal record per block.
const PRODUCER_ID_BLOCK: i64 = 1000;

fn consumer_state_for_classic_api(state: &str) -> &'static str {
    match state {
        "empty" => "Empty",
        "assigning" => "PreparingRebalance",
        "reconciling" => "CompletingRebalance",
        _ => "Stable",
    }
}

fn capitalized(state: &str) -> String {
    let mut c = state.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

impl GroupCoordinator {
    /// OffsetCommit: one error code per partition, in request order. Topic existence is the caller's check.
    pub fn commit_offsets(&self, req: &CommitRequest) -> Vec<i16> {
        let all = |code| vec![code; req.partitions.len()];
        if req.group_id.is_empty() {
            return all(INVALID_GROUP_ID);
        }
        let cfg = &self.inner.cfg;
        let mut st = self.lock();
        let group = match st.groups.get_mut(&req.group_id) {
            Some(g) => g,
            None if req.generation_id < 0 => {
                st.groups
                    .entry(req.group_id.clone())
                    .or_insert_with(|| Group {
                        kind: Kind::Classic(ClassicGroup::new(&req.group_id)),
                        offsets: OffsetMap::new(),
                    })
            }
            None => return all(ILLEGAL_GENERATION),
        };
        let check = match &group.kind {
            Kind::Classic(g) => g.check_commit(req),
            Kind::Consumer(g) => {
                let parts: Vec<(&str, i32)> = req
                    .partitions
                    .iter()
                    .map(|p| (p.topic.as_str(), p.partition))
                    .collect();
                g.check_commit(&req.member_id, req.generation_id, &parts)
            }
        };
        if let Err(code) = check {
            return all(code);
        }
        let now = wall_ms();
        let mut w = FrameWriter::default();
        let mut codes = Vec::with_capacity(req.partitions.len());
        let mut accepted = Vec::with_capacity(req.partitions.len());
        for p in &req.partitions {
            let metadata = p.metadata.clone().unwrap_or_default();
            if metadata.len() > cfg.offset_metadata_max_bytes {
                codes.push(OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            let c = Committed {
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata,
                commit_ms: now,
            };
            w.offset(&req.group_id, &p.topic, p.partition, &c);
            accepted.push(((p.topic.clone(), p.partition), c));
            codes.push(NONE);
        }
        if let Err(e) = st.store.append(&w.buf) {
            error!(group = %req.group_id, error = %e, "could not save committed offsets");
            return all(COORDINATOR_NOT_AVAILABLE);
        }
        if let Some(g) = st.groups.get_mut(&req.group_id) {
            g.offsets.extend(accepted);
        }
        maybe_compact(&mut st, cfg.compact_min_bytes);
        codes
    }

    /// OffsetFetch for one group: `topics` None means every committed offset of the group. `member` is the
    /// (member id, epoch) a KIP-848 member sends (v9+), checked like a commit.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        member: Option<(&str, i32)>,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<FetchedOffset>, i16> {
        if group_id.is_empty() {
            return Err(INVALID_GROUP_ID);
        }
        let st = self.lock();
        let group = st.groups.get(group_id);
        if let (
            Some((member_id, epoch)),
            Some(Group {
                kind: Kind::Consumer(g),
                ..
            }),
        ) = (member, group)
            && !member_id.is_empty()
        {
            // Reading offsets is harmless: any epoch up to the current one will do.
            match g.members.get(member_id) {
                None => return Err(UNKNOWN_MEMBER_ID),
                Some(m) if epoch > m.epoch => return Err(FENCED_MEMBER_EPOCH),
                Some(_) => {}
            }
        }
        let empty = OffsetMap::new();
        let offsets = group.map(|g| &g.offsets).unwrap_or(&empty);
        let row = |topic: &str, partition: i32, c: Option<&Committed>| FetchedOffset {
            topic: topic.to_string(),
            partition,
            offset: c.map_or(-1, |c| c.offset),
            leader_epoch: c.map_or(-1, |c| c.leader_epoch),
            metadata: c.map(|c| c.metadata.clone()).unwrap_or_default(),
            error: NONE,
        };
        Ok(match topics {
            None => offsets
                .iter()
                .map(|((t, p), c)| row(t, *p, Some(c)))
                .collect(),
            Some(topics) => topics
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(move |p| (t, *p)))
                .map(|(t, p)| row(t, p, offsets.get(&(t.clone(), p))))
                .collect(),
        })
    }

    /// OffsetDelete: refuses topics the group is subscribed to while it has members.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        catalog: &dyn TopicCatalog,
    ) -> Result<Vec<i16>, i16> {
        let mut st = self.lock();
        let group = st.groups.get_mut(group_id).ok_or(GROUP_ID_NOT_FOUND)?;
        let subscribed: BTreeSet<String> = match &group.kind {
            Kind::Classic(g) if !g.is_empty() => {
                if g.protocol_type.as_deref() != Some("consumer") {
                    return Err(NON_EMPTY_GROUP);
                }
                let protocol = g.protocol.clone().unwrap_or_default();
                g.members
                    .values()
                    .filter_map(|m| subscription::subscribed_topics(&m.metadata(&protocol)))
                    .flatten()
                    .collect()
            }
            Kind::Consumer(g) => g.subscribed_topic_names(catalog),
            Kind::Classic(_) => BTreeSet::new(),
        };
        let mut w = FrameWriter::default();
        let mut codes = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            if subscribed.contains(topic) {
                codes.push(GROUP_SUBSCRIBED_TO_TOPIC);
            } else {
                if group.offsets.remove(&(topic.clone(), *partition)).is_some() {
                    w.offset_deleted(group_id, topic, *partition);
                }
                codes.push(NONE);
            }
        }
        if let Err(e) = st.store.append(&w.buf) {
            error!(group = group_id, error = %e, "could not save deleted offsets");
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        Ok(codes)
    }

    /// DescribeGroups. Unknown groups come back as state Dead with no error (the handler maps this to
    /// GROUP_ID_NOT_FOUND for v6+). Consumer groups are shown in classic terms, as Kafka does.
    pub fn describe_groups(
        &self,
        ids: &[String],
        catalog: &dyn TopicCatalog,
    ) -> Vec<GroupDescription> {
        let st = self.lock();
        ids.iter()
            .map(|id| match st.groups.get(id).map(|g| &g.kind) {
                None => GroupDescription {
                    group_id: id.clone(),
                    state: "Dead".into(),
                    ..Default::default()
                },
                Some(Kind::Classic(g)) => g.describe(),
                Some(Kind::Consumer(g)) => {
                    let d = g.describe(catalog);
                    let name_of = |a: &Assignment| -> Vec<(String, Vec<i32>)> {
                        a.iter()
                            .filter_map(|(t, parts)| {
                                catalog
                                    .topic_name(*t)
                                    .map(|n| (n, parts.iter().copied().collect()))
                            })
                            .collect()
                    };
                    GroupDescription {
                        group_id: id.clone(),
                        error: NONE,
                        state: consumer_state_for_classic_api(&d.state).into(),
                        protocol_type: "consumer".into(),
                        protocol: d.assignor.clone(),
                        members: d
                            .members
                            .iter()
                            .map(|m| MemberDescription {
                                member_id: m.member_id.clone(),
                                group_instance_id: m.instance_id.clone(),
                                client_id: m.client_id.clone(),
                                client_host: m.client_host.clone(),
                                metadata: subscription::encode_subscription(
                                    &m.subscribed_topic_names,
                                ),
                                assignment: subscription::encode_assignment(&name_of(
                                    &m.assignment,
                                )),
                            })
                            .collect(),
                    }
                }
            })
            .collect()
    }

    /// ConsumerGroupDescribe.
    pub fn consumer_describe(
        &self,
        ids: &[String],
        catalog: &dyn TopicCatalog,
    ) -> Vec<ConsumerGroupDescription> {
        let st = self.lock();
        ids.iter()
            .map(|id| match st.groups.get(id).map(|g| &g.kind) {
                Some(Kind::Consumer(g)) => g.describe(catalog),
                Some(Kind::Classic(_)) => ConsumerGroupDescription {
                    group_id: id.clone(),
                    error: GROUP_ID_NOT_FOUND,
                    error_message: Some(format!(
                        "group {id} is a classic group, not a consumer group"
                    )),
                    state: "dead".into(),
                    ..Default::default()
                },
                None => ConsumerGroupDescription {
                    group_id: id.clone(),
                    error: GROUP_ID_NOT_FOUND,
                    error_message: Some(format!("group {id} not found")),
                    state: "dead".into(),
                    ..Default::default()
                },
            })
            .collect()
    }

    /// ListGroups, filtered by state (case-insensitive) and type ("classic", "consumer") when filters are given.
    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let st = self.lock();
        let mut out: Vec<GroupListing> = st
            .groups
            .iter()
            .map(|(id, g)| match &g.kind {
                Kind::Classic(c) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: c.protocol_type.clone().unwrap_or_default(),
                    state: c.state.name().into(),
                    group_type: "classic".into(),
                },
                Kind::Consumer(c) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: "consumer".into(),
                    state: capitalized(c.state_name()),
                    group_type: "consumer".into(),
                },
            })
            .filter(|l| {
                states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&l.state))
            })
            .filter(|l| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(&l.group_type))
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DeleteGroups: only empty groups; their offsets go with them.
    pub fn delete_groups(&self, ids: &[String]) -> Vec<(String, i16)> {
        let mut st = self.lock();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let code = match st.groups.get(id) {
                _ if id.is_empty() => INVALID_GROUP_ID,
                None => GROUP_ID_NOT_FOUND,
                Some(g) if g.has_members() => NON_EMPTY_GROUP,
                Some(_) => {
                    let mut w = FrameWriter::default();
                    w.group_deleted(id);
                    match st.store.append(&w.buf) {
                        Ok(()) => {
                            st.groups.remove(id);
                            info!(group = %id, "group deleted");
                            NONE
                        }
                        Err(e) => {
                            error!(group = %id, error = %e, "could not save group deletion");
                            COORDINATOR_NOT_AVAILABLE
                        }
                    }
                }
            };
            out.push((id.clone(), code));
        }
        out
    }

    /// Drops offsets past retention (offsets.retention.minutes) and groups left with nothing; returns how many
    /// offsets expired. Runs from the timer task every offsets.retention.check.interval.
    pub fn expire_offsets(&self, now_ms: i64) -> usize {
        let retention = self.inner.cfg.offsets_retention;
        let mut st = self.lock();
        let mut w = FrameWriter::default();
        let mut expired_count = 0;
        let mut dead = Vec::new();
        for (id, g) in st.groups.iter_mut() {
            for key in offsets::expired(&g.offsets, g.empty_since_ms(), retention, now_ms) {
                g.offsets.remove(&key);
                w.offset_deleted(id, &key.0, key.1);
                expired_count += 1;
            }
            if g.offsets.is_empty() && g.empty_since_ms().is_some() {
                dead.push(id.clone());
            }
        }
        for id in &dead {
            st.groups.remove(id);
            w.group_deleted(id);
        }
        if expired_count > 0 || !dead.is_empty() {
            info!(
                offsets = expired_count,
                groups = dead.len(),
                "expired offsets removed"
            );
        }
        if let Err(e) = st.store.append(&w.buf) {
            error!(error = %e, "could not save offset expiry; it is retried at the next check");
        }
        expired_count
    }

    /// A new producer id (InitProducerId). Ids are reserved in journal-backed blocks and never reused.
    pub fn allocate_producer_id(&self) -> Result<i64, i16> {
        let mut st = self.lock();
        if st.next_producer_id >= st.producer_id_limit {
            let limit = st.next_producer_id + PRODUCER_ID_BLOCK;
            let mut w = FrameWriter::default();
            w.producer_ids(limit);
            if let Err(e) = st.store.append(&w.buf) {
                error!(error = %e, "could not reserve producer ids");
                return Err(COORDINATOR_NOT_AVAILABLE);
            }
            st.producer_id_limit = limit;
        }
        let id = st.next_producer_id;
        st.next_producer_id += 1;
        Ok(id)
    }
}
