//! Crash safety: a real producer (librdkafka, acks=all) writes while the broker process is killed with SIGKILL
//! at random moments. After every restart each acknowledged record must be readable at the offset it was
//! acknowledged with, and the partition's offsets must be dense (no gap, no duplicate). A final clean stop
//! (SIGTERM) and restart must keep all data and the topic's config overrides.

mod common;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const ITERATIONS: usize = 20;
const TOPIC: &str = "crash";

fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn spawn_broker(dir: &Path, fsync: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--fsync", fsync, "--segment-bytes", "65536"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn broker-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected output {line:?}"));
    (child, addr.parse().unwrap())
}

/// Reads the whole partition and checks density and every acknowledged (offset -> value).
fn verify(addr: SocketAddr, acked: &BTreeMap<i64, String>) -> i64 {
    let consumer = common::consumer(addr);
    let (low, high) = consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!(low, 0);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while next < high {
        assert!(
            Instant::now() < deadline,
            "timed out reading back at offset {next} of {high}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("consume");
        assert_eq!(
            message.offset(),
            next,
            "offsets must be dense: expected {next}"
        );
        if let Some(value) = acked.get(&next) {
            assert_eq!(
                message.payload(),
                Some(value.as_bytes()),
                "acknowledged record at offset {next}"
            );
        }
        next += 1;
    }
    assert!(
        acked.keys().all(|&o| o < high),
        "an acknowledged offset is beyond the high watermark {high}"
    );
    high
}

async fn produce_until_killed(
    addr: SocketAddr,
    iteration: usize,
    mut child: Child,
    acked: &mut BTreeMap<i64, String>,
) {
    let producer = common::producer(
        addr,
        &[
            ("linger.ms", "2"),
            ("message.timeout.ms", "3000"),
            ("compression.type", "lz4"),
        ],
    );
    let kill_after = Duration::from_millis(150 + random() % 600);
    let started = Instant::now();
    let mut in_flight = Vec::new();
    let mut seq = 0u64;
    while started.elapsed() < kill_after {
        for _ in 0..50 {
            let value = format!(
                "iteration-{iteration}-record-{seq}-{}",
                "x".repeat((seq % 100) as usize)
            );
            let record = FutureRecord::to(TOPIC)
                .key("k")
                .payload(&value)
                .partition(0);
            match producer.send_result(record) {
                Ok(future) => in_flight.push((future, value)),
                Err((err, _)) => panic!("enqueue failed: {err}"),
            }
            seq += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    for (future, value) in in_flight {
        if let Ok(Ok(delivery)) = future.await {
            assert!(
                acked.insert(delivery.offset, value).is_none(),
                "offset {} acknowledged twice",
                delivery.offset
            );
        }
    }
}

fn crash_loop(fsync: &str) {
    let dir = common::TempDir::new(&format!("crash-{fsync}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (child, addr) = spawn_broker(dir.path(), fsync);
    runtime.block_on(async {
        let admin = common::admin(addr);
        let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
            .set("retention.bytes", "1000000000");
        let created = admin
            .create_topics(&[topic], &AdminOptions::new())
            .await
            .unwrap();
        assert!(created[0].is_ok(), "{created:?}");
    });
    let mut acked = BTreeMap::new();
    let mut child = Some(child);
    let mut addr = addr;
    let started = Instant::now();
    for iteration in 0..ITERATIONS {
        runtime.block_on(produce_until_killed(
            addr,
            iteration,
            child.take().unwrap(),
            &mut acked,
        ));
        let (next, next_addr) = spawn_broker(dir.path(), fsync);
        let high = verify(next_addr, &acked);
        assert!(acked.len() as i64 <= high);
        child = Some(next);
        addr = next_addr;
    }
    assert!(
        acked.len() > ITERATIONS * 50,
        "the producer got only {} acknowledgements",
        acked.len()
    );
    // A clean stop keeps everything, including the topic's overrides.
    let mut child = child.unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "clean shutdown exits 0");
    let (mut child, addr) = spawn_broker(dir.path(), fsync);
    verify(addr, &acked);
    runtime.block_on(async {
        let admin = common::admin(addr);
        let configs = admin
            .describe_configs(&[ResourceSpecifier::Topic(TOPIC)], &AdminOptions::new())
            .await
            .unwrap();
        let config = configs[0].as_ref().expect("describe configs");
        assert_eq!(
            config
                .get("retention.bytes")
                .and_then(|e| e.value.as_deref()),
            Some("1000000000")
        );
    });
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "{fsync}: {ITERATIONS} kills, {} acknowledged records verified in {:?}",
        acked.len(),
        started.elapsed()
    );
}

#[test]
fn sigkill_during_produce_loses_no_acknowledged_record() {
    crash_loop("os");
}

#[test]
fn sigkill_with_fsync_always_loses_no_acknowledged_record() {
    crash_loop("always");
}
