//! Whole-system benchmark: librdkafka (the `rdkafka` crate) producing and consuming 1 KiB records against
//! `broker-server` in its own process, next to the loopback ceiling measured in the same run: the same producer
//! against a server in this process that answers Produce without storing anything (it reads and discards).
//!
//! Run: `cargo bench -p busbar-broker --bench throughput` (BENCH_RECORDS overrides the record count;
//! BENCH_ONLY=idempotence runs only the idempotent-producer comparison).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RECORD: usize = 1024;

fn spawn_broker(dir: &std::path::Path, fsync: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker-server"))
        .args(["--listen", "127.0.0.1:0", "--fsync", fsync, "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn broker-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (
        child,
        line.trim()
            .trim_start_matches("listening on ")
            .parse()
            .unwrap(),
    )
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The ceiling: ApiVersions, Metadata (one topic, `partitions` partitions) and Produce answered from memory.
async fn discard_server(partitions: i32) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
                let mut buf = BytesMut::with_capacity(1 << 20);
                let mut out = BytesMut::new();
                loop {
                    while buf.len() >= 4
                        && buf.len()
                            >= 4 + i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
                    {
                        let size = buf.get_i32() as usize;
                        let mut frame = buf.split_to(size).freeze();
                        let key =
                            ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
                        let version = i16::from_be_bytes([frame[2], frame[3]]);
                        let header =
                            RequestHeader::decode(&mut frame, key.request_header_version(version))
                                .unwrap();
                        let body: ResponseKind =
                            match RequestKind::decode(key, &mut frame, version).unwrap() {
                                RequestKind::ApiVersions(_) => ApiVersionsResponse::default()
                                    .with_api_keys(
                                        [
                                            (ApiKey::Produce, 3, 11),
                                            (ApiKey::Metadata, 0, 12),
                                            (ApiKey::ApiVersions, 0, 3),
                                        ]
                                        .iter()
                                        .map(|&(k, min, max)| {
                                            ApiVersion::default()
                                                .with_api_key(k as i16)
                                                .with_min_version(min)
                                                .with_max_version(max)
                                        })
                                        .collect(),
                                    )
                                    .into(),
                                RequestKind::Metadata(req) => {
                                    let names: Vec<TopicName> = req
                                        .topics
                                        .unwrap_or_default()
                                        .into_iter()
                                        .filter_map(|t| t.name)
                                        .collect();
                                    MetadataResponse::default()
                                        .with_brokers(vec![
                                            MetadataResponseBroker::default()
                                                .with_node_id(BrokerId(1))
                                                .with_host(StrBytes::from_static_str("127.0.0.1"))
                                                .with_port(i32::from(addr.port())),
                                        ])
                                        .with_controller_id(BrokerId(1))
                                        .with_topics(
                                            names
                                                .into_iter()
                                                .map(|n| {
                                                    MetadataResponseTopic::default()
                                                    .with_name(Some(n))
                                                    .with_partitions(
                                                        (0..partitions)
                                                            .map(|p| {
                                                                MetadataResponsePartition::default()
                                                                    .with_partition_index(p)
                                                                    .with_leader_id(BrokerId(1))
                                                                    .with_replica_nodes(vec![
                                                                        BrokerId(1),
                                                                    ])
                                                                    .with_isr_nodes(vec![BrokerId(
                                                                        1,
                                                                    )])
                                                            })
                                                            .collect(),
                                                    )
                                                })
                                                .collect(),
                                        )
                                        .into()
                                }
                                RequestKind::Produce(req) => ProduceResponse::default()
                                    .with_responses(
                                        req.topic_data
                                            .into_iter()
                                            .map(|t| {
                                                TopicProduceResponse::default()
                                                    .with_name(t.name)
                                                    .with_partition_responses(
                                                        t.partition_data
                                                            .iter()
                                                            .map(|p| {
                                                                // Read the batch header's record count, then drop the bytes.
                                                                let records = p
                                                                    .records
                                                                    .clone()
                                                                    .unwrap_or_default();
                                                                let count = if records.len() >= 27 {
                                                                    i64::from(i32::from_be_bytes(
                                                                        records[23..27]
                                                                            .try_into()
                                                                            .unwrap(),
                                                                    )) + 1
                                                                } else {
                                                                    0
                                                                };
                                                                let offset = next_offset
                                                                    .entry(p.index)
                                                                    .or_default();
                                                                let base = *offset;
                                                                *offset += count;
                                                                PartitionProduceResponse::default()
                                                                    .with_index(p.index)
                                                                    .with_base_offset(base)
                                                            })
                                                            .collect(),
                                                    )
                                            })
                                            .collect(),
                                    )
                                    .into(),
                                other => panic!("discard server does not answer {other:?}"),
                            };
                        let start = out.len();
                        out.put_i32(0);
                        ResponseHeader::default()
                            .with_correlation_id(header.correlation_id)
                            .encode(&mut out, key.response_header_version(version))
                            .unwrap();
                        body.encode(&mut out, version).unwrap();
                        let len = (out.len() - start - 4) as i32;
                        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
                    }
                    if !out.is_empty() {
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                    match stream.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

fn client(addr: SocketAddr) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr.to_string())
        .set("broker.address.family", "v4");
    c
}

struct ProduceResult {
    mb_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `producers` concurrent producers send `records` 1 KiB records in total, round-robin over `partitions`.
async fn produce(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    records: usize,
    producers: usize,
    rate_limit: Option<f64>,
) -> ProduceResult {
    produce_with(addr, topic, partitions, records, producers, rate_limit, &[]).await
}

/// [`produce`] with extra producer settings (`enable.idempotence`, …).
async fn produce_with(
    addr: SocketAddr,
    topic: &str,
    partitions: i32,
    records: usize,
    producers: usize,
    rate_limit: Option<f64>,
    settings: &[(&str, &str)],
) -> ProduceResult {
    let payload = vec![b'x'; RECORD];
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let mut config = client(addr);
        config
            .set("linger.ms", "5")
            .set("acks", "all")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000");
        for (k, v) in settings {
            config.set(*k, *v);
        }
        let producer: FutureProducer = config.create().unwrap();
        let payload = payload.clone();
        let topic = topic.to_owned();
        tasks.push(tokio::spawn(async move {
            // Each delivery is awaited by its own task, so its latency is measured when it completes.
            let mut deliveries = tokio::task::JoinSet::new();
            let t0 = Instant::now();
            for i in 0..records / producers {
                if let Some(rate) = rate_limit {
                    let due = Duration::from_secs_f64((i * producers) as f64 / rate);
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                let record = FutureRecord::<(), _>::to(&topic)
                    .payload(&payload)
                    .partition(((i + p) % partitions as usize) as i32);
                let sent = Instant::now();
                let delivery = producer.send_result(record).map_err(|(e, _)| e).unwrap();
                deliveries.spawn(async move {
                    delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
                    sent.elapsed()
                });
            }
            let mut latencies = Vec::with_capacity(records / producers);
            while let Some(latency) = deliveries.join_next().await {
                latencies.push(latency.unwrap());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct =
        |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    ProduceResult {
        mb_s: (records * RECORD) as f64 / secs / 1e6,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    }
}

fn consume(addr: SocketAddr, topic: &str, partitions: i32, records: usize) -> f64 {
    let consumer: BaseConsumer = client(addr)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let started = Instant::now();
    let mut n = 0;
    while n < records {
        if let Some(m) = consumer.poll(Duration::from_secs(5)) {
            m.unwrap();
            n += 1;
        } else {
            panic!("consume stalled at {n}");
        }
    }
    (records * RECORD) as f64 / started.elapsed().as_secs_f64() / 1e6
}

async fn create(addr: SocketAddr, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(addr).create().unwrap();
    let r = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let records: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("busbar-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("idempotence") {
        idempotence(&dir, records).await;
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    println!(
        "{records} records of {RECORD} B, acks=all, linger.ms=5; broker-server in its own process"
    );
    println!("| scenario | busbar | ceiling (discard server) | ratio |");
    println!("| --- | --- | --- | --- |");
    let (mut broker, addr) = spawn_broker(&dir.join("os"), "os");
    for partitions in [1, 6] {
        let topic = format!("p{partitions}");
        create(addr, &topic, partitions).await;
        let ceiling = discard_server(partitions).await;
        let c = produce(ceiling, &topic, partitions, records, 1, None).await;
        let b = produce(addr, &topic, partitions, records, 1, None).await;
        println!(
            "| produce, {partitions} partition(s) | {:.0} MB/s (p99 {:.1} ms) | {:.0} MB/s (p99 {:.1} ms) | {:.2} |",
            b.mb_s,
            b.p99_ms,
            c.mb_s,
            c.p99_ms,
            b.mb_s / c.mb_s
        );
        let half = b.mb_s * 1e6 / RECORD as f64 / 2.0;
        let h = produce(addr, &topic, partitions, records / 2, 1, Some(half)).await;
        println!(
            "| produce at half that rate, {partitions} partition(s): latency | p50 {:.2} ms, p99 {:.2} ms | | |",
            h.p50_ms, h.p99_ms
        );
        let mbs = tokio::task::spawn_blocking({
            let topic = topic.clone();
            move || consume(addr, &topic, partitions, records)
        })
        .await
        .unwrap();
        println!("| consume from page cache, {partitions} partition(s) | {mbs:.0} MB/s | | |");
    }
    create(addr, "fsync-os", 6).await;
    let os = produce(addr, "fsync-os", 6, records, 8, None).await;
    create(addr, "idle", 1000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_mb(broker.id());
    broker.kill().unwrap();
    broker.wait().unwrap();
    let (mut broker, addr) = spawn_broker(&dir.join("always"), "always");
    create(addr, "fsync-always", 6).await;
    let always = produce(addr, "fsync-always", 6, records, 8, None).await;
    println!(
        "| 8 producers, --fsync os vs always (6 partitions) | os {:.0} MB/s, always {:.0} MB/s | | {:.2}x slower |",
        os.mb_s,
        always.mb_s,
        os.mb_s / always.mb_s
    );
    println!("| RSS with 1,000 idle partitions (+ the topics above) | {rss:.0} MB | | |");
    broker.kill().unwrap();
    broker.wait().unwrap();
    idempotence(&dir, records).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cost of idempotence: the same producer with `enable.idempotence` off and on, alternating runs on one
/// broker (so drift of this shared machine hits both alike), median of five each. librdkafka caps an
/// idempotent producer at 5 in-flight requests per connection (the plain producer has no cap), so a third
/// variant, idempotence off with the same cap, separates that client-side limit from the broker's checks.
async fn idempotence(dir: &std::path::Path, records: usize) {
    let (mut broker, addr) = spawn_broker(&dir.join("idempotence"), "os");
    let variants: [(&str, &[(&str, &str)]); 3] = [
        ("off", &[("enable.idempotence", "false")]),
        ("on", &[("enable.idempotence", "true")]),
        (
            "off, max.in.flight=5",
            &[
                ("enable.idempotence", "false"),
                ("max.in.flight.requests.per.connection", "5"),
            ],
        ),
    ];
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..5 {
        for (v, (_, settings)) in variants.iter().enumerate() {
            let topic = format!("idem-{round}-{v}");
            create(addr, &topic, 6).await;
            let r = produce_with(addr, &topic, 6, records, 1, None, settings).await;
            runs[v].push(r.mb_s);
        }
    }
    let medians: Vec<f64> = runs
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    println!(
        "| produce, 6 partitions, enable.idempotence off vs on (median of 5 alternating runs) | off {:.0} MB/s, on {:.0} MB/s | | on/off {:.2} |",
        medians[0],
        medians[1],
        medians[1] / medians[0]
    );
    println!(
        "| same, idempotence off with librdkafka's idempotent in-flight cap (max.in.flight=5) | {:.0} MB/s | | on/(off, cap 5) {:.2} |",
        medians[2],
        medians[1] / medians[2]
    );
    for ((name, _), r) in variants.iter().zip(&runs) {
        println!("|   runs, {name}: {r:.0?} MB/s | | | |");
    }
    broker.kill().unwrap();
    broker.wait().unwrap();
    let (plain, checked) = append_cost(&dir.join("append"));
    println!(
        "| broker alone: LogStore::append of 100 x 1 KiB batches, no producer id vs idempotent (median of 5 x 2,000) | {plain:.1} us vs {checked:.1} us per batch | | {:+.1}% |",
        (checked / plain - 1.0) * 100.0
    );
}

/// The broker's own share of the cost: appending the same batches in-process with and without producer ids
/// (sequence checks, duplicate lookup, producer state update), alternating rounds, median per batch.
fn append_cost(dir: &std::path::Path) -> (f64, f64) {
    use busbar_broker::{LogStore, StoreOptions, TopicConfig};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    const BATCHES: usize = 2_000;
    let store = LogStore::open(StoreOptions {
        data_dir: dir.to_owned(),
        fsync: busbar_broker::FsyncPolicy::Os,
        defaults: TopicConfig::default(),
    })
    .unwrap();
    let batch = |producer_id: i64, seq: i32| {
        let records: Vec<Record> = (0..100)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch: if producer_id < 0 { -1 } else { 0 },
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: if producer_id < 0 { -1 } else { seq + i as i32 },
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(bytes::Bytes::from(vec![b'x'; RECORD])),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    };
    let plain_batch = batch(-1, -1);
    let idempotent: Vec<bytes::Bytes> = (0..5 * BATCHES)
        .map(|i| batch(7, (i * 100) as i32))
        .collect();
    let mut plain = Vec::new();
    let mut checked = Vec::new();
    for round in 0..5 {
        for topic in ["plain", "idempotent"] {
            let name = format!("{topic}-{round}");
            store.ensure_topic(&name, 1).unwrap();
            let started = Instant::now();
            for i in 0..BATCHES {
                let b = if topic == "plain" {
                    plain_batch.clone()
                } else {
                    idempotent[round * BATCHES + i].clone()
                };
                store.append(&name, 0, b).unwrap();
            }
            let us = started.elapsed().as_secs_f64() * 1e6 / BATCHES as f64;
            if topic == "plain" {
                &mut plain
            } else {
                &mut checked
            }
            .push(us);
        }
    }
    for v in [&mut plain, &mut checked] {
        v.sort_by(f64::total_cmp);
    }
    (plain[2], checked[2])
}
