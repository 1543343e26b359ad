//! Whole-system benchmark: librdkafka (the `rdkafka` crate) producing and consuming 1 KiB records against
//! `broker-server` in its own process, next to the loopback ceiling measured in the same run: the same client
//! against a server in this process that does the least the protocol allows (`common/ceiling.rs`: Produce read
//! and discarded, Fetch answered from one prebuilt batch held in memory).
//!
//! Run: `cargo bench -p busbar-broker --bench throughput`. Environment:
//! - `BENCH_RECORDS`: records per run (default 200000);
//! - `BENCH_ONLY=idempotence`: only that comparison, alternating busbar and the ceiling round by round
//!   (`BENCH_ROUNDS`, default 5), medians;
//! - `BENCH_ONLY=consume`: the same for consuming (the full run measures it too);
//! - `BENCH_BASELINE`: with `BENCH_ONLY=consume`, a second `broker-server` binary run alongside;
//! - `BENCH_CONSUMER` / `BENCH_PRODUCER`: extra librdkafka settings for the consumer / producer, as
//!   `key=value,key=value`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::ceiling;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const RECORD: usize = 1024;

/// A `broker-server` child, killed when dropped: a panicking bench must not leave it running (it would also
/// keep holding whatever lock file descriptor the bench inherited).
struct Broker(Child);

impl Broker {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_broker(dir: &Path, fsync: &str) -> (Broker, SocketAddr) {
    spawn_broker_bin(env!("CARGO_BIN_EXE_broker-server"), dir, fsync)
}

fn spawn_broker_bin(bin: &str, dir: &Path, fsync: &str) -> (Broker, SocketAddr) {
    let mut child = Command::new(bin)
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
        Broker(child),
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
        for (k, v) in env_settings("BENCH_PRODUCER") {
            config.set(k, v);
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

/// The consumer settings of every consume run: a throughput-minded user's (librdkafka's defaults, but up to
/// 10 MiB per partition per fetch instead of 1 MiB), plus `BENCH_CONSUMER`.
const CONSUMER: &[(&str, &str)] = &[
    ("fetch.max.bytes", "52428800"),
    ("max.partition.fetch.bytes", "10485760"),
];

/// Settings from an environment variable, `key=value,key=value`.
fn env_settings(name: &str) -> Vec<(String, String)> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// One assigned consumer reads `records` records from the start of every partition; MB/s.
fn consume(addr: SocketAddr, topic: &str, partitions: i32, records: usize) -> f64 {
    let mut config = client(addr);
    config
        .set("group.id", "bench")
        .set("enable.auto.commit", "false");
    for (k, v) in CONSUMER {
        config.set(*k, *v);
    }
    for (k, v) in env_settings("BENCH_CONSUMER") {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().unwrap();
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
            if let Err(e) = m {
                panic!("consuming from {addr}: {e} after {n} records");
            }
            n += 1;
        } else {
            panic!("consume stalled at {n}");
        }
    }
    (records * RECORD) as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// Mean records per batch in a topic's log on disk (what the ceiling serves, so both answer alike).
fn mean_batch_records(data_dir: &Path, topic: &str) -> usize {
    let (mut batches, mut records) = (0u64, 0u64);
    let topic_dir = data_dir.join("topics").join(topic);
    for partition in std::fs::read_dir(&topic_dir).unwrap().flatten() {
        for file in std::fs::read_dir(partition.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if file.path().extension().is_some_and(|e| e == "log") {
                let log = std::fs::read(file.path()).unwrap();
                let mut rest = &log[..];
                while rest.len() >= 61 {
                    let len = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize + 12;
                    records += u64::from(u32::from_be_bytes(rest[57..61].try_into().unwrap()));
                    batches += 1;
                    rest = &rest[len.min(rest.len())..];
                }
            }
        }
    }
    (records / batches.max(1)).max(1) as usize
}

/// Consumes `topic` from each broker in `brokers` (address and data directory) and from a ceiling server that
/// serves batches of the same mean size as the first broker's log, alternating, `rounds` times each; returns
/// the runs in MB/s (one list per broker, then the ceiling's) and the records per batch.
async fn consume_vs_ceiling(
    brokers: &[(SocketAddr, &Path)],
    topic: &str,
    partitions: i32,
    records: usize,
    rounds: usize,
) -> (Vec<Vec<f64>>, usize) {
    let batch_records = mean_batch_records(brokers[0].1, topic);
    let ceiling = ceiling::start(ceiling::Serve {
        partitions,
        batch_records,
        records_per_partition: records.div_ceil(partitions as usize),
        record_bytes: RECORD,
    })
    .await;
    let targets: Vec<SocketAddr> = brokers
        .iter()
        .map(|(addr, _)| *addr)
        .chain([ceiling])
        .collect();
    let mut runs = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (target, runs) in targets.iter().zip(&mut runs) {
            let (target, topic) = (*target, topic.to_owned());
            let mbs =
                tokio::task::spawn_blocking(move || consume(target, &topic, partitions, records))
                    .await
                    .unwrap();
            runs.push(mbs);
        }
    }
    (runs, batch_records)
}

fn median(runs: &[f64]) -> f64 {
    let mut v = runs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
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
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    println!(
        "{records} records of {RECORD} B, acks=all, linger.ms=5; broker-server in its own process; \
         producer extra {:?}, consumer {CONSUMER:?} extra {:?}",
        env_settings("BENCH_PRODUCER"),
        env_settings("BENCH_CONSUMER")
    );
    println!("| scenario | busbar | ceiling (in-memory server) | ratio |");
    println!("| --- | --- | --- | --- |");
    match only.as_str() {
        "idempotence" => idempotence(&dir, records).await,
        "consume" => consume_only(&dir, records).await,
        _ => all(&dir, records).await,
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn discard_ceiling(partitions: i32) -> ceiling::Serve {
    ceiling::Serve {
        partitions,
        batch_records: 1,
        records_per_partition: 0,
        record_bytes: RECORD,
    }
}

fn consume_row(partitions: i32, runs: &[Vec<f64>], batch_records: usize) {
    let (busbar, memory) = (&runs[0], &runs[runs.len() - 1]);
    println!(
        "| consume from page cache, {partitions} partition(s), median of {} alternating runs | {:.0} MB/s {busbar:.0?} | {:.0} MB/s {memory:.0?} ({batch_records} records per batch) | {:.2} |",
        busbar.len(),
        median(busbar),
        median(memory),
        median(busbar) / median(memory)
    );
    if let Some(baseline) = runs.get(1).filter(|_| runs.len() == 3) {
        println!(
            "| same, BENCH_BASELINE broker | {:.0} MB/s {baseline:.0?} | | {:.2} |",
            median(baseline),
            median(baseline) / median(memory)
        );
    }
}

/// Only the consume comparison: one producer fills each topic, then busbar and the ceiling alternate. With
/// `BENCH_BASELINE=<path of another broker-server>` (say, built from an earlier commit) that broker is filled
/// the same way and joins the alternation.
async fn consume_only(dir: &Path, records: usize) {
    let mut brokers = vec![spawn_broker(&dir.join("os"), "os")];
    let mut dirs = vec![dir.join("os")];
    if let Ok(bin) = std::env::var("BENCH_BASELINE") {
        brokers.push(spawn_broker_bin(&bin, &dir.join("baseline"), "os"));
        dirs.push(dir.join("baseline"));
    }
    for partitions in [1, 6] {
        let topic = format!("p{partitions}");
        for (_, addr) in &brokers {
            create(*addr, &topic, partitions).await;
            produce(*addr, &topic, partitions, records, 1, None).await;
        }
        let targets: Vec<(SocketAddr, &Path)> = brokers
            .iter()
            .zip(&dirs)
            .map(|((_, addr), dir)| (*addr, dir.as_path()))
            .collect();
        let (runs, batch) =
            consume_vs_ceiling(&targets, &topic, partitions, records, rounds()).await;
        consume_row(partitions, &runs, batch);
    }
    drop(brokers);
}

async fn all(dir: &Path, records: usize) {
    let (broker, addr) = spawn_broker(&dir.join("os"), "os");
    for partitions in [1, 6] {
        let topic = format!("p{partitions}");
        create(addr, &topic, partitions).await;
        let ceiling = ceiling::start(discard_ceiling(partitions)).await;
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
        let os_dir = dir.join("os");
        let (runs, batch) =
            consume_vs_ceiling(&[(addr, &os_dir)], &topic, partitions, records, rounds()).await;
        consume_row(partitions, &runs, batch);
    }
    create(addr, "fsync-os", 6).await;
    let os = produce(addr, "fsync-os", 6, records, 8, None).await;
    create(addr, "idle", 1000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = rss_mb(broker.id());
    drop(broker);
    let (broker, addr) = spawn_broker(&dir.join("always"), "always");
    create(addr, "fsync-always", 6).await;
    let always = produce(addr, "fsync-always", 6, records, 8, None).await;
    println!(
        "| 8 producers, --fsync os vs always (6 partitions) | os {:.0} MB/s, always {:.0} MB/s | | {:.2}x slower |",
        os.mb_s,
        always.mb_s,
        os.mb_s / always.mb_s
    );
    println!("| RSS with 1,000 idle partitions (+ the topics above) | {rss:.0} MB | | |");
    drop(broker);
    idempotence(dir, records).await;
}

/// The cost of idempotence: the same producer with `enable.idempotence` off and on, against busbar and against
/// the ceiling server (which answers idempotent produces without checking anything), all variants alternating
/// round by round so drift of this shared machine hits them alike; medians. librdkafka caps an idempotent
/// producer at 5 in-flight requests per connection (the plain producer has no cap), so a third variant,
/// idempotence off with the same cap, separates that client-side limit from the rest.
async fn idempotence(dir: &Path, records: usize) {
    let (broker, addr) = spawn_broker(&dir.join("idempotence"), "os");
    let ceiling = ceiling::start(discard_ceiling(6)).await;
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
    let rounds = rounds();
    // runs[target][variant]: target 0 is busbar, 1 the ceiling.
    let mut runs = vec![vec![Vec::new(); variants.len()]; 2];
    for round in 0..rounds {
        for (t, target) in [addr, ceiling].into_iter().enumerate() {
            for (v, (_, settings)) in variants.iter().enumerate() {
                let topic = format!("idem-{round}-{v}");
                if t == 0 {
                    create(addr, &topic, 6).await;
                }
                let r = produce_with(target, &topic, 6, records, 1, None, settings).await;
                runs[t][v].push(r.mb_s);
            }
        }
    }
    let m = |t: usize, v: usize| median(&runs[t][v]);
    for (v, (name, _)) in variants.iter().enumerate() {
        println!(
            "| produce, 6 partitions, idempotence {name} (median of {rounds} alternating runs) | {:.0} MB/s {:.0?} | {:.0} MB/s {:.0?} | {:.2} |",
            m(0, v),
            runs[0][v],
            m(1, v),
            runs[1][v],
            m(0, v) / m(1, v)
        );
    }
    println!(
        "| idempotence on/off | {:.2} | {:.2} | |",
        m(0, 1) / m(0, 0),
        m(1, 1) / m(1, 0)
    );
    println!(
        "| idempotence on/(off, max.in.flight=5) | {:.2} | {:.2} | |",
        m(0, 1) / m(0, 2),
        m(1, 1) / m(1, 2)
    );
    drop(broker);
    let (plain, checked) = append_cost(&dir.join("append"));
    println!(
        "| broker alone: LogStore::append of 100 x 1 KiB batches, no producer id vs idempotent (median of 5 x 2,000) | {plain:.1} us vs {checked:.1} us per batch | | {:+.1}% |",
        (checked / plain - 1.0) * 100.0
    );
}

/// The broker's own share of the cost: appending the same batches in-process with and without producer ids
/// (sequence checks, duplicate lookup, producer state update), alternating rounds, median per batch.
fn append_cost(dir: &Path) -> (f64, f64) {
    use busbar_broker::{LogStore, StoreOptions, TopicConfig};
    const BATCHES: usize = 2_000;
    let store = LogStore::open(StoreOptions {
        data_dir: dir.to_owned(),
        fsync: busbar_broker::FsyncPolicy::Os,
        defaults: TopicConfig::default(),
    })
    .unwrap();
    let plain_batch = common::batch(100, RECORD, None);
    let idempotent: Vec<bytes::Bytes> = (0..5 * BATCHES)
        .map(|i| common::batch(100, RECORD, Some((7, (i * 100) as i32))))
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
