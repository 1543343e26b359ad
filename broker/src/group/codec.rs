//! Byte encoding of the group journal's records.
//!
//! Frame: `u32 length | u32 crc32c(body) | body`, big-endian. Body: one type byte, then the fields. A record is
//! the full new value of one key (an offset, a group's metadata) or a tombstone, so replaying the journal in
//! order and keeping the last value per key rebuilds the state; compaction writes exactly those last values.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use uuid::Uuid;

use super::classic::{StoredClassic, StoredMember};
use super::consumer::{ConsumerGroup, ConsumerMember, MemberState};
use super::offsets::Committed;
use super::types::Assignment;
use super::{GroupConfig, TopicMeta};

pub const FRAME_HEADER: usize = 8;

const OFFSET: u8 = 1;
const OFFSET_DELETED: u8 = 2;
const CLASSIC: u8 = 3;
const CONSUMER: u8 = 4;
const GROUP_DELETED: u8 = 5;
const PRODUCER_IDS: u8 = 6;

/// One decoded journal record.
#[derive(Debug)]
pub enum Record {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        committed: Committed,
    },
    OffsetDeleted {
        group: String,
        topic: String,
        partition: i32,
    },
    Classic {
        group: String,
        stored: StoredClassic,
    },
    Consumer {
        group: String,
        stored: Box<ConsumerGroup>,
    },
    GroupDeleted {
        group: String,
    },
    ProducerIds {
        next: i64,
    },
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError(pub String);

/// Appends framed records to a buffer.
#[derive(Default)]
pub struct FrameWriter {
    pub buf: Vec<u8>,
}

impl FrameWriter {
    fn frame(&mut self, body: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        body(&mut self.buf);
        let len = (self.buf.len() - start - FRAME_HEADER) as u32;
        let crc = crc32c::crc32c(&self.buf[start + FRAME_HEADER..]);
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    }

    pub fn offset(&mut self, group: &str, topic: &str, partition: i32, c: &Committed) {
        self.frame(|b| {
            b.push(OFFSET);
            put_str(b, group);
            put_str(b, topic);
            put_i32(b, partition);
            put_i64(b, c.offset);
            put_i32(b, c.leader_epoch);
            put_str(b, &c.metadata);
            put_i64(b, c.commit_ms);
        });
    }

    pub fn offset_deleted(&mut self, group: &str, topic: &str, partition: i32) {
        self.frame(|b| {
            b.push(OFFSET_DELETED);
            put_str(b, group);
            put_str(b, topic);
            put_i32(b, partition);
        });
    }

    pub fn group_deleted(&mut self, group: &str) {
        self.frame(|b| {
            b.push(GROUP_DELETED);
            put_str(b, group);
        });
    }

    pub fn producer_ids(&mut self, next: i64) {
        self.frame(|b| {
            b.push(PRODUCER_IDS);
            put_i64(b, next);
        });
    }

    pub fn classic(&mut self, group: &str, s: &StoredClassic) {
        self.frame(|b| {
            b.push(CLASSIC);
            put_str(b, group);
            put_i32(b, s.generation);
            put_opt(b, s.protocol_type.as_deref());
            put_opt(b, s.protocol.as_deref());
            put_opt(b, s.leader.as_deref());
            put_i64(b, s.state_since_ms);
            put_u32(b, s.members.len() as u32);
            for m in &s.members {
                put_str(b, &m.id);
                put_opt(b, m.instance_id.as_deref());
                put_str(b, &m.client_id);
                put_str(b, &m.client_host);
                put_i64(b, m.session_timeout.as_millis() as i64);
                put_i64(b, m.rebalance_timeout.as_millis() as i64);
                put_u32(b, m.protocols.len() as u32);
                for (name, meta) in &m.protocols {
                    put_str(b, name);
                    put_bytes(b, meta);
                }
                put_bytes(b, &m.assignment);
            }
        });
    }

    pub fn consumer(&mut self, g: &ConsumerGroup) {
        self.frame(|b| {
            b.push(CONSUMER);
            put_str(b, &g.id);
            put_i32(b, g.group_epoch);
            put_i32(b, g.assignment_epoch);
            put_str(b, &g.assignor);
            put_i64(b, g.state_since_ms);
            put_u32(b, g.topics.len() as u32);
            for (name, t) in &g.topics {
                put_str(b, name);
                b.extend_from_slice(t.id.as_bytes());
                put_i32(b, t.partitions);
            }
            put_u32(b, g.members.len() as u32);
            for m in g.members.values() {
                put_str(b, &m.id);
                put_opt(b, m.instance_id.as_deref());
                put_opt(b, m.rack_id.as_deref());
                put_str(b, &m.client_id);
                put_str(b, &m.client_host);
                put_i32(b, m.epoch);
                put_i32(b, m.previous_epoch);
                b.push(match m.state {
                    MemberState::Stable => 0,
                    MemberState::UnrevokedPartitions => 1,
                    MemberState::UnreleasedPartitions => 2,
                });
                put_i64(b, m.rebalance_timeout.as_millis() as i64);
                put_u32(b, m.subscribed_names.len() as u32);
                for n in &m.subscribed_names {
                    put_str(b, n);
                }
                put_opt(b, m.subscribed_regex.as_deref());
                put_opt(b, m.server_assignor.as_deref());
                b.push(u8::from(m.left_static));
                put_assignment(b, &m.assigned);
                put_assignment(b, &m.pending_revocation);
                put_assignment(b, &g.target.get(&m.id).cloned().unwrap_or_default());
            }
        });
    }
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_u32(b, v.len() as u32);
    b.extend_from_slice(v);
}
fn put_str(b: &mut Vec<u8>, v: &str) {
    put_bytes(b, v.as_bytes());
}
fn put_opt(b: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => {
            b.push(1);
            put_str(b, s);
        }
        None => b.push(0),
    }
}
fn put_assignment(b: &mut Vec<u8>, a: &Assignment) {
    put_u32(b, a.len() as u32);
    for (t, parts) in a {
        b.extend_from_slice(t.as_bytes());
        put_u32(b, parts.len() as u32);
        for p in parts {
            put_i32(b, *p);
        }
    }
}

/// Reads fields from one record body.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.b.len() < n {
            return Err(DecodeError(format!(
                "record body ends early: wanted {n} more bytes, {} left",
                self.b.len()
            )));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|e| DecodeError(format!("string is not UTF-8: {e}")))
    }
    fn opt(&mut self) -> Result<Option<String>, DecodeError> {
        Ok(if self.u8()? == 1 {
            Some(self.string()?)
        } else {
            None
        })
    }
    fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes(
            self.take(16)?.try_into().expect("16 bytes"),
        ))
    }
    fn ms(&mut self) -> Result<Duration, DecodeError> {
        Ok(Duration::from_millis(self.i64()?.max(0) as u64))
    }
    fn assignment(&mut self) -> Result<Assignment, DecodeError> {
        let mut a = Assignment::new();
        for _ in 0..self.u32()? {
            let t = self.uuid()?;
            let mut parts = BTreeSet::new();
            for _ in 0..self.u32()? {
                parts.insert(self.i32()?);
            }
            a.insert(t, parts);
        }
        Ok(a)
    }
}

/// Decodes one record body (CRC already checked). Deadlines of restored members start at `now`.
pub fn decode(body: &[u8], cfg: &GroupConfig, now: Instant) -> Result<Record, DecodeError> {
    let mut r = Reader { b: body };
    let rec = match r.u8()? {
        OFFSET => Record::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
            committed: Committed {
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_ms: r.i64()?,
            },
        },
        OFFSET_DELETED => Record::OffsetDeleted {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        },
        GROUP_DELETED => Record::GroupDeleted { group: r.string()? },
        PRODUCER_IDS => Record::ProducerIds { next: r.i64()? },
        CLASSIC => {
            let group = r.string()?;
            let mut s = StoredClassic {
                generation: r.i32()?,
                protocol_type: r.opt()?,
                protocol: r.opt()?,
                leader: r.opt()?,
                state_since_ms: r.i64()?,
                members: Vec::new(),
            };
            for _ in 0..r.u32()? {
                let mut m = StoredMember {
                    id: r.string()?,
                    instance_id: r.opt()?,
                    client_id: r.string()?,
                    client_host: r.string()?,
                    session_timeout: r.ms()?,
                    rebalance_timeout: r.ms()?,
                    protocols: Vec::new(),
                    assignment: Bytes::new(),
                };
                for _ in 0..r.u32()? {
                    m.protocols
                        .push((r.string()?, Bytes::copy_from_slice(r.bytes()?)));
                }
                m.assignment = Bytes::copy_from_slice(r.bytes()?);
                s.members.push(m);
            }
            Record::Classic { group, stored: s }
        }
        CONSUMER => {
            let mut g = ConsumerGroup::new(&r.string()?);
            g.group_epoch = r.i32()?;
            g.assignment_epoch = r.i32()?;
            g.assignor = r.string()?;
            g.state_since_ms = r.i64()?;
            let mut topics = BTreeMap::new();
            for _ in 0..r.u32()? {
                let name = r.string()?;
                topics.insert(
                    name,
                    TopicMeta {
                        id: r.uuid()?,
                        partitions: r.i32()?,
                    },
                );
            }
            g.topics = topics;
            let mut target = HashMap::new();
            for _ in 0..r.u32()? {
                let mut m = ConsumerMember {
                    id: r.string()?,
                    instance_id: r.opt()?,
                    rack_id: r.opt()?,
                    client_id: r.string()?,
                    client_host: r.string()?,
                    epoch: r.i32()?,
                    previous_epoch: r.i32()?,
                    state: match r.u8()? {
                        0 => MemberState::Stable,
                        1 => MemberState::UnrevokedPartitions,
                        _ => MemberState::UnreleasedPartitions,
                    },
                    rebalance_timeout: r.ms()?,
                    subscribed_names: Vec::new(),
                    subscribed_regex: None,
                    server_assignor: None,
                    assigned: Assignment::new(),
                    pending_revocation: Assignment::new(),
                    session_deadline: now + cfg.consumer_session_timeout,
                    revocation_deadline: None,
                    left_static: false,
                };
                for _ in 0..r.u32()? {
                    m.subscribed_names.push(r.string()?);
                }
                m.subscribed_regex = r.opt()?;
                m.server_assignor = r.opt()?;
                m.left_static = r.u8()? == 1;
                m.assigned = r.assignment()?;
                m.pending_revocation = r.assignment()?;
                if m.state == MemberState::UnrevokedPartitions {
                    m.revocation_deadline = Some(now + m.rebalance_timeout);
                }
                target.insert(m.id.clone(), r.assignment()?);
                if let Some(i) = &m.instance_id {
                    g.static_members.insert(i.clone(), m.id.clone());
                }
                g.members.insert(m.id.clone(), m);
            }
            g.target = target;
            Record::Consumer {
                group: g.id.clone(),
                stored: Box::new(g),
            }
        }
        other => return Err(DecodeError(format!("unknown record type {other}"))),
    };
    if !r.b.is_empty() {
        return Err(DecodeError(format!(
            "{} unexpected bytes after the record",
            r.b.len()
        )));
    }
    Ok(rec)
}
