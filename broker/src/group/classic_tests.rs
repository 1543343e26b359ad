use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;

fn cfg() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupConfig::default()
    }
}

fn join_req(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![
            ("range".into(), Bytes::from_static(b"meta")),
            ("roundrobin".into(), Bytes::new()),
        ],
        require_known_member_id: true,
        reason: None,
    }
}

fn join(g: &mut ClassicGroup, req: JoinRequest, now: Instant) -> oneshot::Receiver<JoinResponse> {
    let (tx, rx) = oneshot::channel();
    g.join(&cfg(), req, now, tx);
    rx
}

fn sync(
    g: &mut ClassicGroup,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> oneshot::Receiver<SyncResponse> {
    let (tx, rx) = oneshot::channel();
    g.sync(
        SyncRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            assignments,
            ..Default::default()
        },
        tx,
    );
    rx
}

fn hb(g: &mut ClassicGroup, member: &str, generation: i32, now: Instant) -> i16 {
    g.heartbeat(
        &HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: None,
        },
        now,
    )
}

/// Joins one dynamic member through the MEMBER_ID_REQUIRED round trip; returns its id and its join receiver.
fn join_dynamic(g: &mut ClassicGroup, now: Instant) -> (String, oneshot::Receiver<JoinResponse>) {
    let first = join(g, join_req("", None), now)
        .try_recv()
        .expect("answered at once");
    assert_eq!(first.error, MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty());
    let id = first.member_id.clone();
    (id.clone(), join(g, join_req(&id, None), now))
}

/// A stable group of one member: (member id, generation).
fn stable_one(g: &mut ClassicGroup, now: Instant) -> (String, i32) {
    let (id, mut rx) = join_dynamic(g, now);
    let r = rx.try_recv().expect("single member completes at once");
    assert_eq!(r.error, NONE);
    assert_eq!(r.leader, id);
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let s = sync(
        g,
        &id,
        r.generation_id,
        vec![(id.clone(), Bytes::from_static(b"a1"))],
    )
    .try_recv()
    .unwrap();
    assert_eq!(s.error, NONE);
    assert_eq!(s.assignment, Bytes::from_static(b"a1"));
    assert_eq!(g.state, ClassicState::Stable);
    (id, r.generation_id)
}

#[test]
fn member_id_required_then_join_sync_stable() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (id, generation) = stable_one(&mut g, now);
    assert_eq!(generation, 1);
    assert_eq!(hb(&mut g, &id, generation, now), NONE);
    assert!(g.dirty, "a stable group must be persisted");
}

#[test]
fn second_member_triggers_rebalance_and_both_get_assignments() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (a, gen1) = stable_one(&mut g, now);
    let (b, mut b_rx) = join_dynamic(&mut g, now);
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert!(b_rx.try_recv().is_err(), "B waits for A to rejoin");
    assert_eq!(hb(&mut g, &a, gen1, now), REBALANCE_IN_PROGRESS);
    // A commit-time sync with the old generation is refused while rebalancing.
    assert_eq!(
        sync(&mut g, &a, gen1, vec![]).try_recv().unwrap().error,
        REBALANCE_IN_PROGRESS
    );
    let mut a_rx = join(&mut g, join_req(&a, None), now);
    let ra = a_rx.try_recv().unwrap();
    let rb = b_rx.try_recv().unwrap();
    assert_eq!((ra.error, rb.error), (NONE, NONE));
    assert_eq!(ra.generation_id, gen1 + 1);
    assert_eq!(ra.leader, a, "the old leader stays leader");
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "only the leader sees the members");
    // B syncs first and waits for the leader.
    let mut b_sync = sync(&mut g, &b, rb.generation_id, vec![]);
    assert!(b_sync.try_recv().is_err());
    let a_sync = sync(
        &mut g,
        &a,
        ra.generation_id,
        vec![
            (a.clone(), Bytes::from_static(b"pa")),
            (b.clone(), Bytes::from_static(b"pb")),
        ],
    );
    assert_eq!(
        a_sync.blocking_recv().unwrap().assignment,
        Bytes::from_static(b"pa")
    );
    assert_eq!(
        b_sync.try_recv().unwrap().assignment,
        Bytes::from_static(b"pb")
    );
    assert_eq!(g.state, ClassicState::Stable);
    assert_eq!(hb(&mut g, &b, gen1, now), ILLEGAL_GENERATION);
    assert_eq!(
        hb(&mut g, "nobody", ra.generation_id, now),
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn silent_member_is_evicted_after_its_session_timeout() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (a, gen1) = stable_one(&mut g, t0);
    let (b, mut b_rx) = join_dynamic(&mut g, t0);
    let _ = join(&mut g, join_req(&a, None), t0).try_recv().unwrap();
    let rb = b_rx.try_recv().unwrap();
    drop(sync(&mut g, &a, rb.generation_id, vec![]));
    drop(sync(&mut g, &b, rb.generation_id, vec![]));
    assert!(gen1 < rb.generation_id);
    // A keeps heartbeating, B goes silent.
    let t1 = t0 + Duration::from_secs(6);
    assert_eq!(hb(&mut g, &a, rb.generation_id, t1), NONE);
    g.tick(&cfg(), t0 + Duration::from_millis(9_999));
    assert!(g.members.contains_key(&b), "not yet expired");
    g.tick(&cfg(), t0 + Duration::from_secs(10));
    assert!(!g.members.contains_key(&b), "B evicted");
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert_eq!(hb(&mut g, &a, rb.generation_id, t1), REBALANCE_IN_PROGRESS);
    let ra = join(&mut g, join_req(&a, None), t1).try_recv().unwrap();
    assert_eq!(ra.members.len(), 1);
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (a, _) = stable_one(&mut g, t0);
    let (_b, mut b_rx) = join_dynamic(&mut g, t0);
    // A keeps heartbeating but never rejoins.
    for s in 1..30 {
        assert_eq!(
            hb(&mut g, &a, 1, t0 + Duration::from_secs(s)),
            REBALANCE_IN_PROGRESS
        );
        g.tick(&cfg(), t0 + Duration::from_secs(s));
    }
    assert!(b_rx.try_recv().is_err());
    g.tick(&cfg(), t0 + Duration::from_secs(30));
    let rb = b_rx.try_recv().unwrap();
    assert_eq!(rb.error, NONE);
    assert_eq!(rb.members.len(), 1, "A was dropped");
    assert_eq!(rb.leader, rb.member_id, "B became leader");
    assert_eq!(
        hb(&mut g, &a, 1, t0 + Duration::from_secs(31)),
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn static_member_restart_keeps_assignment_without_rebalance_and_fences_old_id() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let r = join(&mut g, join_req("", Some("worker-1")), now)
        .try_recv()
        .unwrap();
    assert_eq!(r.error, NONE, "static members skip MEMBER_ID_REQUIRED");
    let old = r.member_id.clone();
    drop(sync(
        &mut g,
        &old,
        r.generation_id,
        vec![(old.clone(), Bytes::from_static(b"p0"))],
    ));
    assert_eq!(g.state, ClassicState::Stable);
    // Restart: joins again without member id, same instance id.
    let r2 = join(&mut g, join_req("", Some("worker-1")), now)
        .try_recv()
        .unwrap();
    assert_eq!(r2.error, NONE);
    assert_ne!(r2.member_id, old);
    assert_eq!(r2.generation_id, r.generation_id, "no rebalance");
    assert!(
        r2.skip_assignment,
        "the static leader keeps the existing assignment"
    );
    assert_eq!(g.state, ClassicState::Stable);
    let s = sync(&mut g, &r2.member_id, r2.generation_id, vec![])
        .try_recv()
        .unwrap();
    assert_eq!(s.assignment, Bytes::from_static(b"p0"));
    let fenced = g.heartbeat(
        &HeartbeatRequest {
            group_id: "g".into(),
            generation_id: r.generation_id,
            member_id: old.clone(),
            group_instance_id: Some("worker-1".into()),
        },
        now,
    );
    assert_eq!(fenced, FENCED_INSTANCE_ID);
    // LeaveGroup by instance id with the stale member id is fenced too; with the right one it leaves.
    let out = g.leave(
        &cfg(),
        vec![LeavingMember {
            member_id: old,
            group_instance_id: Some("worker-1".into()),
        }],
        now,
    );
    assert_eq!(out.members[0].1, FENCED_INSTANCE_ID);
    let out = g.leave(
        &cfg(),
        vec![LeavingMember {
            member_id: String::new(),
            group_instance_id: Some("worker-1".into()),
        }],
        now,
    );
    assert_eq!(out.members[0].1, NONE);
    assert_eq!(g.state, ClassicState::Empty);
}

#[test]
fn batched_leave_reports_each_member() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (a, _) = stable_one(&mut g, now);
    let out = g.leave(
        &cfg(),
        vec![
            LeavingMember {
                member_id: a.clone(),
                group_instance_id: None,
            },
            LeavingMember {
                member_id: "ghost".into(),
                group_instance_id: None,
            },
            LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("nobody".into()),
            },
        ],
        now,
    );
    let codes: Vec<i16> = out.members.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes, vec![NONE, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]);
    assert_eq!(g.state, ClassicState::Empty);
    assert_eq!(
        g.generation, 2,
        "leaving the last member completes an empty generation"
    );
}

#[test]
fn inconsistent_protocols_are_refused() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    stable_one(&mut g, now);
    let mut other = join_req("", None);
    other.protocols = vec![("cooperative-sticky".into(), Bytes::new())];
    assert_eq!(
        join(&mut g, other, now).try_recv().unwrap().error,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut wrong_type = join_req("", None);
    wrong_type.protocol_type = "connect".into();
    assert_eq!(
        join(&mut g, wrong_type, now).try_recv().unwrap().error,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut empty = join_req("", None);
    empty.protocols.clear();
    assert_eq!(
        join(&mut g, empty, now).try_recv().unwrap().error,
        INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn protocol_selection_takes_the_most_voted_common_protocol() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    for prefs in [
        ["roundrobin", "range"],
        ["roundrobin", "range"],
        ["range", "roundrobin"],
    ] {
        let mut r = join_req("", None);
        r.require_known_member_id = false;
        r.protocols = prefs
            .iter()
            .map(|p| (p.to_string(), Bytes::new()))
            .collect();
        let (tx, _rx) = oneshot::channel();
        g.join(
            &GroupConfig {
                initial_rebalance_delay: Duration::from_secs(1),
                ..cfg()
            },
            r,
            now,
            tx,
        );
    }
    assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
}

#[test]
fn initial_delay_waits_for_more_members_then_completes() {
    let cfg = GroupConfig {
        initial_rebalance_delay: Duration::from_secs(3),
        ..GroupConfig::default()
    };
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut rxs = Vec::new();
    for i in 0..3u64 {
        let mut r = join_req("", None);
        r.require_known_member_id = false;
        let (tx, rx) = oneshot::channel();
        g.join(&cfg, r, t0 + Duration::from_secs(i), tx);
        rxs.push(rx);
    }
    g.tick(&cfg, t0 + Duration::from_secs(3));
    assert!(
        rxs[0].try_recv().is_err(),
        "members arrived during the delay: wait once more"
    );
    assert_eq!(g.next_deadline(), Some(t0 + Duration::from_secs(6)));
    g.tick(&cfg, t0 + Duration::from_secs(6));
    let answers: Vec<JoinResponse> = rxs.iter_mut().map(|rx| rx.try_recv().unwrap()).collect();
    assert!(
        answers
            .iter()
            .all(|a| a.error == NONE && a.generation_id == 1)
    );
    assert_eq!(
        answers.iter().filter(|a| a.members.len() == 3).count(),
        1,
        "exactly one leader"
    );
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (a, _) = stable_one(&mut g, t0);
    let (b, mut b_rx) = join_dynamic(&mut g, t0);
    let ra = join(&mut g, join_req(&a, None), t0).try_recv().unwrap();
    let rb = b_rx.try_recv().unwrap();
    drop(sync(&mut g, &a, ra.generation_id, vec![]));
    assert_eq!(g.state, ClassicState::Stable);
    // B keeps heartbeating but never syncs.
    for s in 1..30 {
        assert_eq!(
            hb(&mut g, &b, rb.generation_id, t0 + Duration::from_secs(s)),
            NONE
        );
        assert_eq!(
            hb(&mut g, &a, ra.generation_id, t0 + Duration::from_secs(s)),
            NONE
        );
    }
    g.tick(&cfg(), t0 + Duration::from_secs(30));
    assert!(!g.members.contains_key(&b));
    assert_eq!(g.state, ClassicState::PreparingRebalance);
}

#[test]
fn commit_checks_follow_kafka() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let admin = CommitRequest {
        group_id: "g".into(),
        generation_id: -1,
        ..Default::default()
    };
    assert_eq!(
        g.check_commit(&admin),
        Ok(()),
        "an empty group accepts commits from outside"
    );
    let (a, generation) = stable_one(&mut g, now);
    assert_eq!(
        g.check_commit(&admin),
        Err(UNKNOWN_MEMBER_ID),
        "an active group refuses them"
    );
    let ok = CommitRequest {
        generation_id: generation,
        member_id: a.clone(),
        ..admin.clone()
    };
    assert_eq!(g.check_commit(&ok), Ok(()));
    let stale = CommitRequest {
        generation_id: generation - 1,
        member_id: a,
        ..admin
    };
    assert_eq!(g.check_commit(&stale), Err(ILLEGAL_GENERATION));
}

#[test]
fn stored_form_round_trips_and_restores_stable() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let (a, generation) = stable_one(&mut g, now);
    let restored = ClassicGroup::restore("g", g.to_stored(), now);
    assert_eq!(restored.state, ClassicState::Stable);
    assert_eq!(restored.generation, generation);
    assert_eq!(restored.to_stored(), g.to_stored());
    let mut restored = restored;
    assert_eq!(hb(&mut restored, &a, generation, now), NONE);
}
