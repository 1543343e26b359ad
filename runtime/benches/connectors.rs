//! Connector host benchmark: prints a table.
//!
//! `cargo bench -p busbar-runtime --bench connectors` measures, on one core (a current-thread executor):
//! - the Rust probe sink (built from source by busbar-connectors): per-call overhead (empty batch), records/s and
//!   per-record overhead with batches of 256 × 1 KiB records, next to the ceiling of copying the same batch
//!   natively (the least work that moving the records into a guest implies);
//! - cold compile and warm start (cache hit) of the JavaScript and Python examples, and their per-call cost,
//!   when `BUSBAR_BENCH_JS_SINK` / `BUSBAR_BENCH_PY_SOURCE` name their built `.wasm` files;
//! - host memory of idle instances beyond their linear memory.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use busbar_runtime::host::{
    CacheOutcome, ConnectorRef, Event, Grants, Limits, OpenOptions, Runtime, RuntimeConfig,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BATCH: usize = 256;
const RECORD: usize = 1024;

fn event(i: usize) -> Event {
    let mut payload = vec![b'x'; RECORD];
    payload[..8].copy_from_slice(&(i as u64).to_le_bytes());
    payload[0] = b'{'; // never a probe command
    Event {
        id: format!("e{i}"),
        source: "bench".into(),
        detail_type: "bench".into(),
        time: String::new(),
        key: None,
        headers: Vec::new(),
        payload,
    }
}

fn row(name: &str, value: String, note: &str) {
    println!("| {name:<52} | {value:>16} | {note} |");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// An HTTP/1.1 server on 127.0.0.1:0 answering every request with `body` (keep-alive).
async fn http_server(body: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    // Read one request: headers, then content-length bytes of body.
                    let header_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    while buf.len() < header_end + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..header_end + len);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    println!("| measurement | value | note |");
    println!("|---|---:|---|");
    rust_sink().await;
    for (var, kind) in [("BUSBAR_BENCH_JS_SINK", "js"), ("BUSBAR_BENCH_PY_SOURCE", "python")] {
        match std::env::var(var) {
            Ok(path) => guest_language(kind, &path).await,
            Err(_) => row(&format!("{kind} example"), "not run".into(), &format!("set {var} to its .wasm")),
        }
    }
    idle_memory().await;
}

async fn rust_sink() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let path = busbar_connectors::test_guest("probe-sink").unwrap();
    let sink = runtime.load(&ConnectorRef::Path(path.into())).await.unwrap();
    let options = OpenOptions {
        name: "bench".into(),
        config: json!({ "label": "bench" }),
        grants: Grants::default(),
        limits: Limits::default(),
    };
    let mut task = runtime.open(sink, options).await.unwrap();

    let calls = 20_000;
    for _ in 0..1000 {
        task.write(&[]).await.unwrap();
    }
    let started = Instant::now();
    for _ in 0..calls {
        black_box(task.write(&[]).await.unwrap());
    }
    let per_call = started.elapsed() / calls;
    row("rust sink: per-call overhead (empty batch)", format!("{:.2} µs", per_call.as_secs_f64() * 1e6), "write(&[]) round trip");

    let batch: Vec<Event> = (0..BATCH).map(event).collect();
    for _ in 0..200 {
        task.write(&batch).await.unwrap();
    }
    let mut samples = Vec::new();
    let mut records = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let outcomes = task.write(&batch).await.unwrap();
        samples.push(t.elapsed());
        records += outcomes.len();
    }
    let total = started.elapsed();
    let per_batch = median(samples);
    let rate = records as f64 / total.as_secs_f64();
    row(
        "rust sink: records/s (256 × 1 KiB per batch)",
        format!("{:.0}", rate),
        &format!("{:.1} MiB/s; median batch {:.1} µs", rate * RECORD as f64 / 1048576.0, per_batch.as_secs_f64() * 1e6),
    );
    let per_record = per_batch.saturating_sub(per_call) / BATCH as u32;
    row("rust sink: per-record overhead", format!("{} ns", per_record.as_nanos()), "(median batch − empty call) / 256");

    // Ceiling: copying the batch natively (what lowering it into guest memory at least costs).
    let mut samples = Vec::new();
    let started = Instant::now();
    let mut copied = 0usize;
    while started.elapsed() < Duration::from_secs(1) {
        let t = Instant::now();
        let copy: Vec<Event> = black_box(&batch).clone();
        copied += black_box(copy).len();
        samples.push(t.elapsed());
    }
    let native = median(samples);
    row(
        "ceiling: native copy of the same batch, records/s",
        format!("{:.0}", BATCH as f64 / native.as_secs_f64()),
        &format!("median {:.1} µs per batch; host reaches {:.0}% of it ({copied} copied)", native.as_secs_f64() * 1e6,
            100.0 * native.as_secs_f64() / per_batch.as_secs_f64()),
    );
}

async fn guest_language(kind: &str, path: &str) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let cache_dir = std::env::temp_dir().join(format!("busbar-bench-cache-{}-{kind}", std::process::id()));
    std::fs::remove_dir_all(&cache_dir).ok();
    let config = || RuntimeConfig { cache_dir: Some(cache_dir.clone()), ..RuntimeConfig::default() };
    let reference = ConnectorRef::Path(path.into());

    let runtime = Runtime::new(config()).unwrap();
    let t = Instant::now();
    let connector = runtime.load_bytes(reference.clone(), bytes.clone()).await.unwrap();
    let cold = t.elapsed();
    assert_eq!(connector.cache_outcome(), CacheOutcome::Miss);
    row(&format!("{kind}: cold compile + describe"), format!("{:.0} ms", cold.as_secs_f64() * 1e3), &format!("{} KiB component", bytes.len() / 1024));

    let port = http_server(if kind == "js" { "{\"ok\":true}" } else { "[]" }).await;
    let (config_json, grants) = if kind == "js" {
        (json!({ "url": format!("http://127.0.0.1:{port}/events") }), Grants { http: vec![format!("127.0.0.1:{port}")], ..Grants::default() })
    } else {
        (json!({ "url": format!("http://127.0.0.1:{port}/items") }), Grants { http: vec![format!("127.0.0.1:{port}")], ..Grants::default() })
    };
    let mut loads = Vec::new();
    let mut opens = Vec::new();
    let mut task = None;
    for _ in 0..5 {
        // A new runtime each time: what a restart of busbar does.
        let runtime = Runtime::new(config()).unwrap();
        let t = Instant::now();
        let connector = runtime.load_bytes(reference.clone(), bytes.clone()).await.unwrap();
        loads.push(t.elapsed());
        assert_eq!(connector.cache_outcome(), CacheOutcome::Hit);
        let t = Instant::now();
        // JavaScript's heap grows with the batches it encodes (see the memory row below): room beyond the default cap.
        let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
        let options = OpenOptions { name: format!("bench-{kind}"), config: config_json.clone(), grants: grants.clone(), limits };
        task = Some(runtime.open(connector, options).await.unwrap());
        opens.push(t.elapsed());
    }
    let load = median(loads);
    let open = median(opens);
    row(
        &format!("{kind}: warm start (cache hit): load + describe"),
        format!("{:.1} ms", load.as_secs_f64() * 1e3),
        &format!("+ instantiate and open {:.1} ms = {:.1} ms; {:.0}× faster than cold", open.as_secs_f64() * 1e3,
            (load + open).as_secs_f64() * 1e3, cold.as_secs_f64() / (load + open).as_secs_f64()),
    );
    let mut task = task.unwrap();
    if kind == "js" {
        let calls = 2000;
        let started = Instant::now();
        for _ in 0..calls {
            task.write(&[]).await.unwrap();
        }
        let per_call = started.elapsed() / calls;
        row("js sink: per-call overhead (empty batch, no fetch)", format!("{:.1} µs", per_call.as_secs_f64() * 1e6), "");
        let batch: Vec<Event> = (0..BATCH).map(event).collect();
        let mut samples = Vec::new();
        let started = Instant::now();
        let mut records = 0;
        while started.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            let out = task.write(&batch).await.unwrap();
            assert!(out.iter().all(|o| matches!(o, busbar_runtime::host::Outcome::Ok)), "{:?}", out[0]);
            records += out.len();
            samples.push(t.elapsed());
        }
        let per_batch = median(samples);
        row(
            "js sink: linear memory after the run",
            format!("{:.0} MiB", task.status().memory_bytes as f64 / 1048576.0),
            &format!("{} batches of 256 × 1 KiB written; the default cap is {} MiB", records / BATCH, Limits::default().memory_bytes >> 20),
        );
        row(
            "js sink: records/s (256 × 1 KiB, one fetch POST per batch)",
            format!("{:.0}", records as f64 / started.elapsed().as_secs_f64()),
            &format!("median batch {:.2} ms incl. JSON encoding and a local HTTP round trip; per record {:.1} µs",
                per_batch.as_secs_f64() * 1e3, (per_batch.saturating_sub(per_call)).as_secs_f64() * 1e6 / BATCH as f64),
        );
    } else {
        let calls = 500u32;
        let mut done = 0u32;
        let mut failure = None;
        let started = Instant::now();
        for _ in 0..calls {
            match task.poll(Some("0"), 256).await {
                Ok(_) => done += 1,
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let elapsed = started.elapsed();
        match failure {
            None => row(
                "python source: per-poll cost (HTTP GET answering [])",
                format!("{:.1} µs", (elapsed / calls).as_secs_f64() * 1e6),
                "wasi:http round trip to a local server included",
            ),
            Some(e) => {
                let reason: String = e.lines().filter(|l| l.contains("Error") || l.contains("panicked")).collect::<Vec<_>>().join(" ");
                row(
                    "python source: per-poll cost (HTTP GET answering [])",
                    format!("{:.1} µs", (elapsed / done.max(1)).as_secs_f64() * 1e6),
                    &format!("FAILED after {done} polls: {}", reason.chars().take(300).collect::<String>()),
                )
            }
        }
    }
    std::fs::remove_dir_all(&cache_dir).ok();
}

async fn idle_memory() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let path = busbar_connectors::test_guest("probe-sink").unwrap();
    let sink = runtime.load(&ConnectorRef::Path(path.into())).await.unwrap();
    // One instance first, so one-time costs (code mapping, pools) are not counted per instance.
    let mut tasks = Vec::new();
    let open = |i: usize| OpenOptions {
        name: format!("idle-{i}"),
        config: json!({ "label": "idle" }),
        grants: Grants::default(),
        limits: Limits::default(),
    };
    tasks.push(runtime.open(Arc::clone(&sink), open(0)).await.unwrap());
    let n = 200;
    let before = rss_bytes();
    for i in 1..=n {
        tasks.push(runtime.open(Arc::clone(&sink), open(i)).await.unwrap());
    }
    let after = rss_bytes();
    let per_instance = (after.saturating_sub(before)) / n;
    let linear = tasks[1].status().memory_bytes;
    row(
        "idle rust instance: resident host memory per instance",
        format!("{:.0} KiB", per_instance as f64 / 1024.0),
        &format!("RSS delta over {n} opened instances; each has {} KiB of linear memory reserved, the rest is host state", linear / 1024),
    );
    black_box(tasks);
}
