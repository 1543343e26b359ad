//! Group coordinator figures, printed as a table:
//! - OffsetCommit requests/s over the wire (pipelined, 4 connections), with ApiVersions requests/s over the
//!   same connections as the ceiling of the request path measured in the same run;
//! - a rebalance of 3 members: time from the last JoinGroup to every member holding its SyncGroup answer
//!   (coordinator in-process), and end to end with librdkafka consumers (a third member joins a stable group
//!   of two; time until the three own all six partitions).
//!
//! Run: `cargo run --release -p busbar-broker --example groups_bench`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use busbar_broker::group::{GroupConfig, GroupCoordinator, JoinRequest, SyncRequest, codes};
use busbar_broker::{Broker, BrokerConfig};
use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, GroupId, OffsetCommitRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 4;
const PIPELINE: usize = 64;
const RUN: Duration = Duration::from_secs(3);

fn frame(api: ApiKey, version: i16, correlation: i32, body: &impl Encodable) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("bench")))
        .encode(&mut b, api.request_header_version(version))
        .unwrap();
    body.encode(&mut b, version).unwrap();
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b
}

/// Sends `request` as fast as the broker answers, PIPELINE in flight per connection; returns requests/s.
async fn hammer(addr: SocketAddr, request: BytesMut) -> f64 {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..CONNECTIONS {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut rd, mut wr) = stream.into_split();
            let writer = tokio::spawn(async move {
                let mut batch = BytesMut::new();
                for _ in 0..PIPELINE {
                    batch.extend_from_slice(&request);
                }
                let mut sent = 0u64;
                while start.elapsed() < RUN {
                    wr.write_all(&batch).await.unwrap();
                    sent += PIPELINE as u64;
                    // Keep at most two batches in flight.
                    tokio::time::sleep(Duration::ZERO).await;
                }
                sent
            });
            let mut buf = BytesMut::with_capacity(1 << 16);
            let mut answered = 0u64;
            while start.elapsed() < RUN + Duration::from_secs(2) {
                let read =
                    tokio::time::timeout(Duration::from_millis(500), rd.read_buf(&mut buf)).await;
                match read {
                    Ok(Ok(0)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => panic!("read: {e}"),
                }
                while buf.len() >= 4 {
                    let len = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    if buf.len() < 4 + len {
                        break;
                    }
                    buf.advance(4 + len);
                    answered += 1;
                }
            }
            let _ = writer.await;
            answered
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

async fn rebalance_in_process() -> Duration {
    let dir = std::env::temp_dir().join(format!("busbar-groups-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupConfig::default()
    };
    let c = GroupCoordinator::open(&dir, cfg).unwrap();
    let join = |id: String| JoinRequest {
        group_id: "bench".into(),
        member_id: id,
        client_id: "bench".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), bytes::Bytes::from_static(b"x"))],
        require_known_member_id: true,
        ..Default::default()
    };
    // Ids first (MEMBER_ID_REQUIRED round), then the three real joins; the clock starts at the last one.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(c.join_group(join(String::new())).await.member_id);
    }
    let (a, b) = (c.clone(), c.clone());
    let (ja, jb) = (join(ids[0].clone()), join(ids[1].clone()));
    let ta = tokio::spawn(async move { a.join_group(ja).await });
    let tb = tokio::spawn(async move { b.join_group(jb).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last = Instant::now();
    let rc = c.join_group(join(ids[2].clone())).await;
    let answers = [ta.await.unwrap(), tb.await.unwrap(), rc];
    let mut syncs = Vec::new();
    for r in &answers {
        let c = c.clone();
        let assignments = r
            .members
            .iter()
            .map(|m| (m.member_id.clone(), bytes::Bytes::new()))
            .collect();
        let req = SyncRequest {
            group_id: "bench".into(),
            generation_id: r.generation_id,
            member_id: r.member_id.clone(),
            assignments,
            ..Default::default()
        };
        syncs.push(tokio::spawn(async move { c.sync_group(req).await }));
    }
    for s in syncs {
        assert_eq!(s.await.unwrap().error, codes::NONE);
    }
    let took = last.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    took
}

fn consumer(addr: SocketAddr) -> BaseConsumer {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", addr.to_string())
        .set("broker.address.family", "v4")
        .set("group.id", "bench-rebalance")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "100")
        .create()
        .unwrap();
    c.subscribe(&["rebalance"]).unwrap();
    c
}

fn owned(cs: &[&BaseConsumer]) -> usize {
    cs.iter()
        .map(|c| c.assignment().map(|a| a.count()).unwrap_or(0))
        .sum()
}

fn poll_until(cs: &[&BaseConsumer], done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "rebalance did not finish");
        for c in cs {
            let _ = c.poll(Duration::from_millis(5));
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir =
        std::env::temp_dir().join(format!("busbar-groups-bench-broker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = BrokerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.clone(),
        groups: GroupConfig {
            initial_rebalance_delay: Duration::ZERO,
            ..GroupConfig::default()
        },
        default_partitions: 6,
        ..BrokerConfig::default()
    };
    let broker = Broker::start(config).await.unwrap();
    let addr = broker.local_addr();
    broker.store().ensure_topic("bench", 1).unwrap();
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("bench-commits")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("bench")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42),
                ]),
        ]);
    let ceiling = hammer(
        addr,
        frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default()),
    )
    .await;
    let commits = hammer(addr, frame(ApiKey::OffsetCommit, 8, 1, &commit)).await;
    let in_process = rebalance_in_process().await;
    broker.store().ensure_topic("rebalance", 6).unwrap();
    let end_to_end = tokio::task::spawn_blocking(move || {
        let (a, b) = (consumer(addr), consumer(addr));
        poll_until(&[&a, &b], || owned(&[&a, &b]) == 6);
        let start = Instant::now();
        let c = consumer(addr);
        poll_until(&[&a, &b, &c], || {
            owned(&[&a, &b, &c]) == 6 && [&a, &b, &c].iter().all(|x| owned(&[x]) == 2)
        });
        start.elapsed()
    })
    .await
    .unwrap();
    println!("| figure | value | ceiling / target |");
    println!("|---|---|---|");
    println!(
        "| OffsetCommit requests/s ({CONNECTIONS} connections, {PIPELINE} pipelined) | {commits:.0} | ApiVersions on the same path: {ceiling:.0}/s; target >= 20,000 |"
    );
    println!(
        "| rebalance of 3 members, last JoinGroup -> all SyncGroup answers (in-process) | {:.2} ms | target < 1 s |",
        in_process.as_secs_f64() * 1e3
    );
    println!(
        "| rebalance, librdkafka: third consumer created -> 3 x 2 partitions owned | {:.0} ms | includes the client's connect, FindCoordinator and the others' next heartbeat (100 ms) |",
        end_to_end.as_secs_f64() * 1e3
    );
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
