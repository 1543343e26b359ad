use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::group::consumer::tests::Catalog;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("busbar-coordinator-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn cfg() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::from_millis(100),
        ..GroupConfig::default()
    }
}

fn join_req(member_id: &str) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 6_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        require_known_member_id: true,
        ..Default::default()
    }
}

/// Joins through MEMBER_ID_REQUIRED; returns the final JoinGroup answer.
async fn join(c: &GroupCoordinator) -> JoinResponse {
    let first = c.join_group(join_req("")).await;
    assert_eq!(first.error, MEMBER_ID_REQUIRED);
    c.join_group(join_req(&first.member_id)).await
}

fn commit(c: &GroupCoordinator, generation: i32, member: &str, offset: i64) -> Vec<i16> {
    c.commit_offsets(&CommitRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        partitions: vec![CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: None,
        }],
    })
}

#[tokio::test(start_paused = true)]
async fn three_members_rebalance_together_and_a_silent_one_is_evicted() {
    let dir = tmpdir("three");
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    let (a, b, d) = tokio::join!(join(&c), join(&c), join(&c));
    let answers = [a, b, d];
    assert!(
        answers
            .iter()
            .all(|r| r.error == NONE && r.generation_id == 1),
        "{answers:?}"
    );
    let leader = answers
        .iter()
        .find(|r| r.members.len() == 3)
        .expect("one leader");
    let assignments: Vec<(String, Bytes)> = answers
        .iter()
        .map(|r| (r.member_id.clone(), Bytes::from(r.member_id.clone())))
        .collect();
    let syncs = answers.iter().map(|r| {
        c.sync_group(SyncRequest {
            group_id: "g".into(),
            generation_id: 1,
            member_id: r.member_id.clone(),
            assignments: if r.member_id == leader.member_id {
                assignments.clone()
            } else {
                Vec::new()
            },
            ..Default::default()
        })
    });
    for (r, s) in answers.iter().zip(futures_join_all(syncs).await) {
        assert_eq!(s.error, NONE);
        assert_eq!(
            s.assignment,
            Bytes::from(r.member_id.clone()),
            "each gets its own assignment"
        );
    }
    // Two members heartbeat every 2 s; the third goes silent and is evicted after its 6 s session.
    let hb = |m: &str| HeartbeatRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: m.into(),
        group_instance_id: None,
    };
    let mut saw_rebalance = false;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let codes = [
            c.heartbeat(&hb(&answers[0].member_id)),
            c.heartbeat(&hb(&answers[1].member_id)),
        ];
        saw_rebalance |= codes.contains(&REBALANCE_IN_PROGRESS);
    }
    assert!(saw_rebalance, "the eviction started a rebalance");
    assert_eq!(c.heartbeat(&hb(&answers[2].member_id)), UNKNOWN_MEMBER_ID);
    let d = c.describe_groups(&["g".into()], &Catalog(vec![]));
    assert_eq!(d[0].members.len(), 2);
}

/// tokio::join! over an iterator without pulling in the futures crate.
async fn futures_join_all<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.map(Box::pin).collect();
    let mut out = Vec::new();
    // The futures park on channels that the leader's sync completes, so poll them concurrently.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("completed")));
    out
}

#[tokio::test(start_paused = true)]
async fn committed_offsets_and_stable_groups_survive_a_restart() {
    let dir = tmpdir("restart");
    let member;
    {
        let c = GroupCoordinator::open(&dir, cfg()).unwrap();
        let r = join(&c).await;
        member = r.member_id.clone();
        let s = c
            .sync_group(SyncRequest {
                group_id: "g".into(),
                generation_id: r.generation_id,
                member_id: member.clone(),
                assignments: vec![(member.clone(), Bytes::from_static(b"p0"))],
                ..Default::default()
            })
            .await;
        assert_eq!(s.error, NONE);
        assert_eq!(commit(&c, 1, &member, 42), vec![NONE]);
        assert_eq!(commit(&c, 7, &member, 43), vec![ILLEGAL_GENERATION]);
        assert_eq!(
            commit(&c, -1, "", 44),
            vec![UNKNOWN_MEMBER_ID],
            "no outside commits to an active group"
        );
    }
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    let fetched = c.fetch_offsets("g", None, None).unwrap();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].offset, 42);
    // The member carries on with its generation, no rejoin needed.
    let hb = HeartbeatRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: member.clone(),
        group_instance_id: None,
    };
    assert_eq!(c.heartbeat(&hb), NONE);
    let unknown = c
        .fetch_offsets("g", None, Some(&[("t".into(), vec![0, 1])]))
        .unwrap();
    assert_eq!(
        unknown.iter().map(|f| f.offset).collect::<Vec<_>>(),
        vec![42, -1]
    );
}

#[tokio::test(start_paused = true)]
async fn admin_operations_list_describe_reset_and_delete() {
    let dir = tmpdir("admin");
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    let r = join(&c).await;
    let listed = c.list_groups(&[], &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "CompletingRebalance");
    assert!(c.list_groups(&["stable".into()], &[]).is_empty());
    assert_eq!(c.list_groups(&[], &["classic".into()]).len(), 1);
    assert_eq!(
        c.delete_groups(&["g".into(), "nope".into()]),
        vec![
            ("g".into(), NON_EMPTY_GROUP),
            ("nope".into(), GROUP_ID_NOT_FOUND)
        ]
    );
    let left = c.leave_group(
        "g",
        vec![LeavingMember {
            member_id: r.member_id.clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left.members[0].1, NONE);
    // An empty group accepts an outside commit: this is how offsets are reset.
    assert_eq!(commit(&c, -1, "", 0), vec![NONE]);
    assert_eq!(c.fetch_offsets("g", None, None).unwrap()[0].offset, 0);
    let catalog = Catalog(vec![]);
    assert_eq!(
        c.delete_offsets("g", &[("t".into(), 0)], &catalog).unwrap(),
        vec![NONE]
    );
    assert!(c.fetch_offsets("g", None, None).unwrap().is_empty());
    assert_eq!(commit(&c, -1, "", 5), vec![NONE]);
    assert_eq!(c.delete_groups(&["g".into()]), vec![("g".into(), NONE)]);
    assert!(c.list_groups(&[], &[]).is_empty());
    drop(c);
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    assert!(
        c.fetch_offsets("g", None, None).unwrap().is_empty(),
        "deletion is durable"
    );
}

#[tokio::test(start_paused = true)]
async fn offsets_of_an_empty_group_expire_after_retention() {
    let dir = tmpdir("retention");
    let c = GroupCoordinator::open(
        &dir,
        GroupConfig {
            offsets_retention: Duration::from_secs(60),
            ..cfg()
        },
    )
    .unwrap();
    assert_eq!(commit(&c, -1, "", 9), vec![NONE]);
    let now = crate::group::wall_ms();
    assert_eq!(c.expire_offsets(now + 59_000), 0);
    assert_eq!(c.expire_offsets(now + 61_000), 1);
    assert!(
        c.list_groups(&[], &[]).is_empty(),
        "a group with nothing left is removed"
    );
    drop(c);
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    assert!(
        c.fetch_offsets("g", None, None).unwrap().is_empty(),
        "expiry is durable"
    );
}

#[tokio::test(start_paused = true)]
async fn consumer_protocol_groups_are_durable_and_exclusive_with_classic() {
    let dir = tmpdir("consumer");
    let catalog = Catalog(vec![("t".into(), uuid::Uuid::from_bytes([1; 16]), 4)]);
    let join = ConsumerHeartbeatRequest {
        group_id: "g".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    let r;
    {
        let c = GroupCoordinator::open(&dir, cfg()).unwrap();
        r = c.consumer_heartbeat(join.clone(), &catalog);
        assert_eq!(r.error, NONE);
        assert_eq!(
            r.assignment
                .as_ref()
                .unwrap()
                .values()
                .map(|s| s.len())
                .sum::<usize>(),
            4
        );
        let classic = c.join_group(join_req("")).await;
        assert_eq!(classic.error, INCONSISTENT_GROUP_PROTOCOL);
        let d = c.consumer_describe(&["g".into(), "x".into()], &catalog);
        assert_eq!(
            (d[0].state.as_str(), d[1].error),
            ("stable", GROUP_ID_NOT_FOUND)
        );
        let member = r.member_id.clone().unwrap();
        let commit = CommitRequest {
            group_id: "g".into(),
            generation_id: r.member_epoch,
            member_id: member,
            group_instance_id: None,
            partitions: vec![CommitPartition {
                topic: "t".into(),
                partition: 1,
                offset: 5,
                leader_epoch: -1,
                metadata: None,
            }],
        };
        assert_eq!(c.commit_offsets(&commit), vec![NONE]);
        assert_eq!(
            c.delete_offsets("g", &[("t".into(), 1)], &catalog).unwrap(),
            vec![GROUP_SUBSCRIBED_TO_TOPIC]
        );
    }
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    let member = r.member_id.clone().unwrap();
    let owned = r.assignment.clone().unwrap();
    let again = c.consumer_heartbeat(
        ConsumerHeartbeatRequest {
            member_id: member,
            member_epoch: r.member_epoch,
            owned: Some(owned),
            rebalance_timeout_ms: -1,
            ..join
        },
        &catalog,
    );
    assert_eq!(
        (again.error, again.member_epoch),
        (NONE, r.member_epoch),
        "the member carries on after a restart"
    );
    assert_eq!(c.fetch_offsets("g", None, None).unwrap()[0].offset, 5);
}

#[tokio::test(start_paused = true)]
async fn producer_ids_are_never_reused_across_restarts() {
    let dir = tmpdir("pids");
    let first = {
        let c = GroupCoordinator::open(&dir, cfg()).unwrap();
        (0..3)
            .map(|_| c.allocate_producer_id().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(first, vec![0, 1, 2]);
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    assert!(c.allocate_producer_id().unwrap() > 2);
}

#[tokio::test(start_paused = true)]
async fn bad_requests_get_kafka_errors() {
    let dir = tmpdir("bad");
    let c = GroupCoordinator::open(&dir, cfg()).unwrap();
    let mut r = join_req("");
    r.session_timeout_ms = 1_000;
    assert_eq!(c.join_group(r).await.error, INVALID_SESSION_TIMEOUT);
    let mut r = join_req("");
    r.group_id.clear();
    assert_eq!(c.join_group(r).await.error, INVALID_GROUP_ID);
    assert_eq!(
        c.join_group(join_req("someone")).await.error,
        UNKNOWN_MEMBER_ID
    );
    let meta = CommitPartition {
        topic: "t".into(),
        partition: 0,
        offset: 1,
        leader_epoch: -1,
        metadata: Some("x".repeat(5000)),
    };
    let codes = c.commit_offsets(&CommitRequest {
        group_id: "g2".into(),
        generation_id: -1,
        partitions: vec![meta],
        ..Default::default()
    });
    assert_eq!(codes, vec![OFFSET_METADATA_TOO_LARGE]);
}
