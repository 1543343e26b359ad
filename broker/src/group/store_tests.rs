use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::group::classic::StoredMember;
use crate::group::codec::FrameWriter;
use crate::group::offsets::Committed;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("busbar-groupstore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn commit(offset: i64) -> Committed {
    Committed {
        offset,
        leader_epoch: 3,
        metadata: "meta".into(),
        commit_ms: 1_700_000_000_000,
    }
}

fn classic() -> StoredClassic {
    StoredClassic {
        generation: 4,
        protocol_type: Some("consumer".into()),
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        state_since_ms: 42,
        members: vec![StoredMember {
            id: "m1".into(),
            instance_id: Some("i1".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: std::time::Duration::from_secs(10),
            rebalance_timeout: std::time::Duration::from_secs(30),
            protocols: vec![("range".into(), Bytes::from_static(b"\x00\x01"))],
            assignment: Bytes::from_static(b"assign"),
        }],
    }
}

fn open(dir: &Path) -> (GroupStore, Loaded) {
    GroupStore::open(dir, &GroupConfig::default(), Instant::now()).expect("open")
}

#[test]
fn records_replay_to_the_last_value_per_key() {
    let dir = tmpdir("replay");
    {
        let (mut s, loaded) = open(&dir);
        assert!(loaded.offsets.is_empty());
        let mut w = FrameWriter::default();
        w.offset("g", "t", 0, &commit(5));
        w.offset("g", "t", 0, &commit(9));
        w.offset("g", "t", 1, &commit(1));
        w.offset_deleted("g", "t", 1);
        w.offset("gone", "t", 0, &commit(1));
        w.group_deleted("gone");
        w.classic("g", &classic());
        w.producer_ids(5000);
        s.append(&w.buf).unwrap();
    }
    let (_, loaded) = open(&dir);
    assert_eq!(loaded.offsets.len(), 1);
    assert_eq!(loaded.offsets["g"].len(), 1);
    assert_eq!(loaded.offsets["g"][&("t".to_string(), 0)], commit(9));
    assert_eq!(loaded.classic["g"], classic());
    assert_eq!(loaded.next_producer_id, 5000);
    assert_eq!(loaded.truncated_bytes, 0);
}

#[test]
fn a_torn_tail_is_truncated_and_earlier_records_survive() {
    let dir = tmpdir("torn");
    let full_len;
    {
        let (mut s, _) = open(&dir);
        let mut w = FrameWriter::default();
        for i in 0..100 {
            w.offset("g", "t", 0, &commit(i));
        }
        s.append(&w.buf).unwrap();
        full_len = s.len();
        // A kill -9 in the middle of the next write: half a frame reaches the file.
        let mut torn = FrameWriter::default();
        torn.offset("g", "t", 0, &commit(1000));
        let half = &torn.buf[..torn.buf.len() / 2];
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("groups.journal"))
            .unwrap();
        f.write_all(half).unwrap();
    }
    let (mut s, loaded) = open(&dir);
    assert!(loaded.truncated_bytes > 0);
    assert_eq!(loaded.offsets["g"][&("t".to_string(), 0)].offset, 99);
    assert_eq!(
        std::fs::metadata(dir.join("groups.journal")).unwrap().len(),
        full_len
    );
    // The journal continues cleanly after the truncation point.
    let mut w = FrameWriter::default();
    w.offset("g", "t", 0, &commit(100));
    s.append(&w.buf).unwrap();
    drop(s);
    let (_, loaded) = open(&dir);
    assert_eq!(loaded.offsets["g"][&("t".to_string(), 0)].offset, 100);
    assert_eq!(loaded.truncated_bytes, 0);
}

#[test]
fn a_flipped_bit_fails_the_checksum_and_cuts_the_tail_there() {
    let dir = tmpdir("bitflip");
    {
        let (mut s, _) = open(&dir);
        let mut w = FrameWriter::default();
        w.offset("g", "t", 0, &commit(1));
        w.offset("g", "t", 1, &commit(2));
        s.append(&w.buf).unwrap();
    }
    let path = dir.join("groups.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let (_, loaded) = open(&dir);
    assert_eq!(
        loaded.offsets["g"].len(),
        1,
        "the corrupt record is dropped, the first kept"
    );
    assert!(loaded.truncated_bytes > 0);
}

#[test]
fn compaction_keeps_exactly_the_snapshot() {
    let dir = tmpdir("compact");
    let (mut s, _) = open(&dir);
    let mut w = FrameWriter::default();
    for i in 0..1000 {
        w.offset("g", "t", 0, &commit(i));
    }
    s.append(&w.buf).unwrap();
    assert!(s.wants_compaction(1024));
    let mut snap = FrameWriter::default();
    snap.offset("g", "t", 0, &commit(999));
    s.rewrite(&snap.buf).unwrap();
    assert!(!s.wants_compaction(1024));
    let mut more = FrameWriter::default();
    more.offset("g", "t", 1, &commit(7));
    s.append(&more.buf).unwrap();
    drop(s);
    assert!(!dir.join("groups.journal.tmp").exists());
    let (s, loaded) = open(&dir);
    assert_eq!(loaded.offsets["g"].len(), 2);
    assert_eq!(loaded.offsets["g"][&("t".to_string(), 0)].offset, 999);
    assert_eq!(s.len(), (snap.buf.len() + more.buf.len()) as u64);
}

#[test]
fn a_record_from_the_future_is_refused_not_truncated() {
    let dir = tmpdir("future");
    std::fs::create_dir_all(&dir).unwrap();
    let body = [99u8, 1, 2, 3];
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    frame.extend_from_slice(&body);
    std::fs::write(dir.join("groups.journal"), &frame).unwrap();
    let err = GroupStore::open(&dir, &GroupConfig::default(), Instant::now()).unwrap_err();
    assert!(err.to_string().contains("unknown record type 99"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("groups.journal")).unwrap(),
        frame,
        "nothing was cut"
    );
}
