use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::*;

pub(crate) struct Catalog(pub Vec<(String, Uuid, i32)>);

impl TopicCatalog for Catalog {
    fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, id, p)| TopicMeta {
                id: *id,
                partitions: *p,
            })
    }
    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.0
            .iter()
            .find(|(_, i, _)| *i == id)
            .map(|(n, _, _)| n.clone())
    }
    fn topic_names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

const T: Uuid = Uuid::from_bytes([7; 16]);

fn catalog() -> Catalog {
    Catalog(vec![
        ("orders".into(), T, 6),
        ("__consumer_offsets".into(), Uuid::from_bytes([9; 16]), 50),
    ])
}

fn cfg() -> GroupConfig {
    GroupConfig::default()
}

fn join(id: &str) -> ConsumerHeartbeatRequest {
    ConsumerHeartbeatRequest {
        group_id: "g".into(),
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["orders".into()]),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        ..Default::default()
    }
}

fn beat(id: &str, epoch: i32, owned: &Assignment) -> ConsumerHeartbeatRequest {
    ConsumerHeartbeatRequest {
        group_id: "g".into(),
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        ..Default::default()
    }
}

fn parts(a: &Assignment) -> BTreeSet<i32> {
    a.get(&T).cloned().unwrap_or_default()
}

/// Drives members' heartbeats (each one reporting exactly what it was given) until nothing changes.
fn settle(g: &mut ConsumerGroup, owned: &mut BTreeMap<String, (i32, Assignment)>, now: Instant) {
    for _ in 0..10 {
        let ids: Vec<String> = owned.keys().cloned().collect();
        for id in ids {
            let (epoch, have) = owned[&id].clone();
            let r = g.heartbeat(&cfg(), beat(&id, epoch, &have), &catalog(), now);
            assert_eq!(r.error, NONE, "{r:?}");
            let next = r.assignment.unwrap_or(have);
            owned.insert(id, (r.member_epoch, next));
            // Invariant: no partition is owned by two members at any time.
            let mut seen = BTreeSet::new();
            for (_, a) in owned.values() {
                for p in parts(a) {
                    assert!(seen.insert(p), "partition {p} owned twice");
                }
            }
        }
    }
}

#[test]
fn three_members_converge_to_an_exact_cover_without_overlap() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut owned = BTreeMap::new();
    for id in ["a", "b", "c"] {
        let r = g.heartbeat(&cfg(), join(id), &catalog(), now);
        assert_eq!(r.error, NONE);
        assert!(
            r.assignment.is_some(),
            "a join always carries the assignment"
        );
        owned.insert(id.to_string(), (r.member_epoch, r.assignment.unwrap()));
        settle(&mut g, &mut owned, now);
    }
    assert_eq!(g.state_name(), "stable");
    let all: BTreeSet<i32> = owned.values().flat_map(|(_, a)| parts(a)).collect();
    assert_eq!(all, (0..6).collect());
    assert!(
        owned
            .values()
            .all(|(e, a)| *e == g.assignment_epoch && parts(a).len() == 2)
    );
    // One leaves: the other two take over its partitions.
    let r = g.heartbeat(
        &cfg(),
        ConsumerHeartbeatRequest {
            member_epoch: -1,
            ..beat("b", 0, &Assignment::new())
        },
        &catalog(),
        now,
    );
    assert_eq!((r.error, r.member_epoch), (NONE, -1));
    owned.remove("b");
    settle(&mut g, &mut owned, now);
    let all: BTreeSet<i32> = owned.values().flat_map(|(_, a)| parts(a)).collect();
    assert_eq!(all, (0..6).collect());
    assert_eq!(g.state_name(), "stable");
}

#[test]
fn a_new_member_waits_until_partitions_are_revoked() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let a = g.heartbeat(&cfg(), join("a"), &catalog(), now);
    let a_owned = a.assignment.clone().unwrap();
    assert_eq!(parts(&a_owned).len(), 6);
    let b = g.heartbeat(&cfg(), join("b"), &catalog(), now);
    assert!(
        parts(b.assignment.as_ref().unwrap()).is_empty(),
        "a still owns everything"
    );
    // a learns it must give three up; its epoch does not move yet.
    let a2 = g.heartbeat(&cfg(), beat("a", a.member_epoch, &a_owned), &catalog(), now);
    assert_eq!(a2.member_epoch, a.member_epoch);
    let kept = a2.assignment.unwrap();
    assert_eq!(parts(&kept).len(), 3);
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
    // b still gets nothing until a confirms.
    let b2 = g.heartbeat(
        &cfg(),
        beat("b", b.member_epoch, &Assignment::new()),
        &catalog(),
        now,
    );
    assert!(b2.assignment.is_none_or(|x| parts(&x).is_empty()));
    let a3 = g.heartbeat(&cfg(), beat("a", a.member_epoch, &kept), &catalog(), now);
    assert_eq!(a3.member_epoch, g.assignment_epoch);
    let b3 = g.heartbeat(
        &cfg(),
        beat("b", b2.member_epoch, &Assignment::new()),
        &catalog(),
        now,
    );
    assert_eq!(parts(&b3.assignment.unwrap()).len(), 3);
}

#[test]
fn epochs_are_fenced() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let a = g.heartbeat(&cfg(), join("a"), &catalog(), now);
    let owned = a.assignment.unwrap();
    let r = g.heartbeat(
        &cfg(),
        beat("a", a.member_epoch + 5, &owned),
        &catalog(),
        now,
    );
    assert_eq!(r.error, FENCED_MEMBER_EPOCH);
    let r = g.heartbeat(&cfg(), beat("zz", 3, &owned), &catalog(), now);
    assert_eq!(r.error, UNKNOWN_MEMBER_ID);
    // b joins; a revokes half and moves to the new epoch.
    let _b = g.heartbeat(&cfg(), join("b"), &catalog(), now);
    let a2 = g.heartbeat(&cfg(), beat("a", a.member_epoch, &owned), &catalog(), now);
    let kept = a2.assignment.unwrap();
    let a3 = g.heartbeat(&cfg(), beat("a", a.member_epoch, &kept), &catalog(), now);
    assert!(a3.member_epoch > a.member_epoch);
    // A lost response: the previous epoch with a subset of the assignment is accepted...
    let r = g.heartbeat(&cfg(), beat("a", a.member_epoch, &kept), &catalog(), now);
    assert_eq!(r.error, NONE, "{r:?}");
    // ...but not while still claiming the revoked partitions.
    let r = g.heartbeat(&cfg(), beat("a", a.member_epoch, &owned), &catalog(), now);
    assert_eq!(r.error, FENCED_MEMBER_EPOCH);
    let a = a3;
    let mine = parts(&kept).into_iter().next().unwrap();
    let theirs = (0..6).find(|p| !parts(&kept).contains(p)).unwrap();
    assert_eq!(
        g.check_commit("a", a.member_epoch, &[("orders", mine)]),
        Ok(())
    );
    // An older epoch may still commit what the member owns now, never what moved away.
    assert_eq!(
        g.check_commit("a", g.members["a"].previous_epoch, &[("orders", mine)]),
        Ok(())
    );
    assert_eq!(
        g.check_commit("a", g.members["a"].previous_epoch, &[("orders", theirs)]),
        Err(STALE_MEMBER_EPOCH)
    );
    assert_eq!(
        g.check_commit("a", 0, &[("orders", mine)]),
        Err(STALE_MEMBER_EPOCH),
        "older than the previous epoch"
    );
    assert_eq!(
        g.check_commit("a", a.member_epoch + 1, &[("orders", mine)]),
        Err(FENCED_MEMBER_EPOCH)
    );
    assert_eq!(
        g.check_commit("", -1, &[]),
        Err(UNKNOWN_MEMBER_ID),
        "commits from outside need an empty group"
    );
}

#[test]
fn invalid_requests_get_clear_errors() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut bad = join("a");
    bad.server_assignor = Some("sticky".into());
    let r = g.heartbeat(&cfg(), bad, &catalog(), now);
    assert_eq!(r.error, UNSUPPORTED_ASSIGNOR);
    assert!(r.error_message.unwrap().contains("uniform"));
    let mut bad = join("a");
    bad.subscribed_topic_names = None;
    assert_eq!(
        g.heartbeat(&cfg(), bad, &catalog(), now).error,
        INVALID_REQUEST
    );
    let mut bad = join("a");
    bad.subscribed_topic_regex = Some("orders(".into());
    assert_eq!(
        g.heartbeat(&cfg(), bad, &catalog(), now).error,
        INVALID_REGULAR_EXPRESSION
    );
}

#[test]
fn regex_subscription_skips_internal_topics() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut r = join("a");
    r.subscribed_topic_names = Some(Vec::new());
    r.subscribed_topic_regex = Some(".*".into());
    let resp = g.heartbeat(&cfg(), r, &catalog(), now);
    assert_eq!(
        resp.assignment.unwrap().keys().copied().collect::<Vec<_>>(),
        vec![T]
    );
}

#[test]
fn silent_members_and_slow_revokers_are_removed() {
    let t0 = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let a = g.heartbeat(&cfg(), join("a"), &catalog(), t0);
    let _b = g.heartbeat(&cfg(), join("b"), &catalog(), t0);
    // a is told to revoke but never confirms; it keeps heartbeating without the revocation.
    let owned = a.assignment.unwrap();
    let t1 = t0 + Duration::from_secs(1);
    let _ = g.heartbeat(&cfg(), beat("a", a.member_epoch, &owned), &catalog(), t1);
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
    g.tick(t1 + Duration::from_secs(29));
    assert!(g.members.contains_key("a"));
    g.tick(t1 + Duration::from_secs(30));
    assert!(
        !g.members.contains_key("a"),
        "a did not revoke in its rebalance timeout"
    );
    // b never heartbeats again: its session (45 s) ends.
    g.tick(t0 + Duration::from_secs(45));
    assert!(g.members.is_empty());
    assert_eq!(g.state_name(), "empty");
}

#[test]
fn static_member_leaving_temporarily_keeps_its_partitions() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut j = join("a");
    j.instance_id = Some("w1".into());
    let a = g.heartbeat(&cfg(), j.clone(), &catalog(), now);
    let mut j2 = join("x");
    j2.instance_id = Some("w1".into());
    assert_eq!(
        g.heartbeat(&cfg(), j2.clone(), &catalog(), now).error,
        UNRELEASED_INSTANCE_ID
    );
    let leave = ConsumerHeartbeatRequest {
        member_epoch: -2,
        instance_id: Some("w1".into()),
        ..beat("a", 0, &Assignment::new())
    };
    assert_eq!(g.heartbeat(&cfg(), leave, &catalog(), now).member_epoch, -2);
    let back = g.heartbeat(&cfg(), j2, &catalog(), now);
    assert_eq!(back.error, NONE);
    assert_eq!(
        back.member_epoch, a.member_epoch,
        "no new epoch: same place in the group"
    );
    assert_eq!(back.assignment, a.assignment);
}

#[test]
fn new_partitions_bump_the_epoch_and_get_assigned() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let a = g.heartbeat(&cfg(), join("a"), &catalog(), now);
    let grown = Catalog(vec![("orders".into(), T, 8)]);
    let r = g.heartbeat(
        &cfg(),
        beat("a", a.member_epoch, &a.assignment.unwrap()),
        &grown,
        now,
    );
    assert!(r.member_epoch > a.member_epoch);
    assert_eq!(parts(&r.assignment.unwrap()).len(), 8);
}
