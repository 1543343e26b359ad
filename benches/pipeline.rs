//! Pipeline benchmark: webhook in -> bus -> rules -> HTTP target, through `busbar serve` in its own process, next
//! to the baseline it replaces, measured in the same run: a hand-written forwarder (an axum handler that posts
//! each request on with reqwest, no durability, no retries), also in a process of its own (this binary with
//! `--forwarder`). For each, the CPU time its process spent per delivered event is reported beside the rate: on a
//! machine whose cores the clients and the receiver share, it is the figure other load disturbs least.
//!
//! Run: `cargo bench --bench pipeline` (`BENCH_SECONDS` sets each throughput phase's length, default 10;
//! `BENCH_ROUNDS` the rounds, default 3).
//!
//! Setups, all running at once against the same real HTTP receiver in this process: the forwarder; busbar with
//! 1 rule; the same with a scraper reading `/metrics` every second (the API's cost on the data path); busbar with
//! 1,000 rules (one matches, 999 near misses on the same fields); with `BUSBAR_BASELINE=<binary>`, another busbar
//! build with 1 rule. Their throughput phases alternate round by round, so drift of the machine hits them alike,
//! and each figure is the median of its rounds. Phases:
//! - throughput: 64 concurrent keep-alive clients post ~1 KB JSON events as fast as they are accepted; the figure
//!   is events delivered to the receiver per second (busbar: after each was durable on the bus, matched, sent);
//! - latency, after the rounds and a 1 s pause: an open-loop 2,000 events/s in 1 s windows, five per setup,
//!   alternating between setups like the rounds; posted to target-received, p50/p99/max over all five.
//!
//! The HTTP target runs with its defaults (one instance, up to 32 requests in flight, batches of up to 500 events
//! sent as soon as they are ready). `BENCH_TASKS` sets its instances, `BENCH_CONCURRENCY` its requests in flight,
//! `BENCH_BATCH` and `BENCH_WAIT` its batch's `max_records` and `max_wait`.
//! `BUSBAR_BIN` runs another busbar binary than the one built with the bench.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::json;

const CLIENTS: usize = 64;
const LATENCY_RATE: u64 = 2_000;
/// The latency phase: this many windows per setup, alternating between setups.
const LATENCY_WINDOWS: usize = 5;
const LATENCY_WINDOW: Duration = Duration::from_secs(1);

fn clock_us(origin: Instant) -> u64 {
    origin.elapsed().as_micros() as u64
}

/// The target: counts requests and records, per request, how long since the event's `sent_us` stamp.
#[derive(Clone)]
struct Receiver {
    origin: Instant,
    count: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<u64>>>,
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> StatusCode {
    let now = clock_us(receiver.origin);
    if let Some(sent) = sent_us(&body) {
        receiver.latencies.lock().unwrap().push(now.saturating_sub(sent));
    }
    receiver.count.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// The `"sent_us":N` stamp wherever it sits in the body (the raw event, or busbar's envelope around it).
fn sent_us(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"sent_us\":")? + "\"sent_us\":".len();
    let digits: String = text[at..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn start_receiver(origin: Instant) -> (Receiver, SocketAddr) {
    let receiver = Receiver { origin, count: Arc::default(), latencies: Arc::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/{*rest}", post(receive)).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, addr)
}

/// The baseline in its own process, as busbar runs in its own: this bench binary started with `--forwarder
/// <target>`. Returns the child and the address it listens on.
fn spawn_forwarder(target: SocketAddr) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
        .arg("--forwarder")
        .arg(target.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the forwarder");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().parse().expect("the forwarder's address");
    (child, addr)
}

/// The baseline: what people write instead of busbar.
async fn start_forwarder(target: SocketAddr) -> SocketAddr {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let url = format!("http://{target}/forwarded");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hooks/in",
        post(move |body: Bytes| {
            let client = client.clone();
            let url = url.clone();
            async move {
                match client.post(&url).header("content-type", "application/json").body(body).send().await {
                    Ok(r) if r.status().is_success() => StatusCode::ACCEPTED,
                    _ => StatusCode::BAD_GATEWAY,
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The forwarding rule's HTTP target: the connector's and the lane's defaults (what a user who writes only a URL
/// gets), unless `BENCH_BATCH` (`max_records`), `BENCH_WAIT` (`max_wait`) or `BENCH_CONCURRENCY` set them.
fn http_target(target: SocketAddr, tasks: u32) -> serde_json::Value {
    let mut spec = json!({ "name": "http", "connector": "builtin:http", "grants": { "http": [target.to_string()] },
                           "config": { "url": format!("http://{target}/busbar") }, "tasks": tasks });
    if let Ok(concurrency) = std::env::var("BENCH_CONCURRENCY") {
        spec["config"]["concurrency"] = json!(concurrency.parse::<u32>().expect("BENCH_CONCURRENCY: a number"));
    }
    if let Ok(records) = std::env::var("BENCH_BATCH") {
        spec["batch"]["max_records"] = json!(records.parse::<u32>().expect("BENCH_BATCH: a number"));
    }
    if let Ok(wait) = std::env::var("BENCH_WAIT") {
        spec["batch"]["max_wait"] = json!(wait);
    }
    spec
}

fn pipeline(target: SocketAddr, rules: usize, tasks: u32) -> serde_json::Value {
    let mut all = vec![json!({
        "name": "forward",
        "pattern": { "source": ["bench"], "detail": { "kind": ["order"], "total": [{ "numeric": [">", 10] }] } },
        "targets": [ http_target(target, tasks) ]
    })];
    for i in 1..rules {
        // Near misses on the same fields, mixing exact, prefix, numeric and anything-but.
        let pattern = match i % 4 {
            0 => json!({ "source": ["bench"], "detail": { "kind": [format!("order-{i}")] } }),
            1 => json!({ "source": ["bench"], "detail": { "customer": [{ "prefix": format!("zz{i}") }] } }),
            2 => json!({ "source": ["bench"], "detail": { "kind": ["refund"], "total": [{ "numeric": [">", i] }] } }),
            _ => json!({ "source": [format!("other-{i}")], "detail": { "kind": [{ "anything-but": ["order"] }] } }),
        };
        all.push(json!({ "name": format!("rule-{i}"), "pattern": pattern,
                         "targets": [ { "name": "log", "connector": "builtin:log" } ] }));
    }
    json!({
        "name": "bench",
        "bus": { "topic": "bench", "partitions": 6 },
        "sources": { "in": { "connector": "builtin:http-webhook",
                             "config": { "path": "/hooks/in", "source": "bench", "detail-type": "order", "key": "/customer" } } },
        "rules": all,
    })
}

/// One setup under test: a server process and what was measured of it.
struct Setup {
    name: String,
    child: Child,
    addr: SocketAddr,
    /// Whether a scraper reads its `/metrics` during its throughput phases.
    scraped: bool,
    rates: Vec<f64>,
    cpu: Vec<f64>,
    latency: (u64, u64, u64),
    rss: f64,
}

impl Setup {
    fn new(name: &str, child: Child, addr: SocketAddr, scraped: bool) -> Self {
        Self { name: name.to_owned(), child, addr, scraped, rates: Vec::new(), cpu: Vec::new(), latency: (0, 0, 0), rss: 0.0 }
    }
}

fn start_busbar(bin: &str, file: &Path, data: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(file)
        .arg("--data-dir")
        .arg(data)
        .args(["--http-listen", "127.0.0.1:0", "--broker-listen", "127.0.0.1:0", "--target-buffer", "100000"])
        .env("BUSBAR_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn busbar serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let http = words[words.iter().position(|w| *w == "http").expect("http address") + 1].parse().unwrap();
    (child, http)
}

/// A ~1 KB order event; every one matches the forwarding rule (`total` > 10), so each accepted event is owed to
/// the receiver.
fn event(n: u64, sent_us: u64) -> Vec<u8> {
    let padding = "x".repeat(860);
    serde_json::to_vec(&json!({ "kind": "order", "id": n, "customer": format!("c{}", n % 97), "total": 11 + n % 990,
                                "note": padding, "sent_us": sent_us }))
    .unwrap()
}

async fn wait_delivered(receiver: &Receiver, n: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while receiver.count.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Closed loop: `CLIENTS` posters for `seconds`; returns events delivered per second (accepted and received).
async fn throughput(webhook: SocketAddr, receiver: &Receiver, seconds: u64) -> f64 {
    measured(webhook, receiver, seconds, None).await.0
}

/// [`throughput`], and the CPU time `pid` used per delivered event over the phase, in microseconds.
async fn measured(webhook: SocketAddr, receiver: &Receiver, seconds: u64, pid: Option<u32>) -> (f64, f64) {
    let cpu_before = pid.map(cpu_ns);
    let url = format!("http://{webhook}/hooks/in");
    let before = receiver.count.load(Ordering::Relaxed);
    let started = Instant::now();
    let stop = started + Duration::from_secs(seconds);
    let sent = Arc::new(AtomicU64::new(0));
    let mut posters = Vec::new();
    for c in 0..CLIENTS {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let url = url.clone();
        let sent = sent.clone();
        let origin = receiver.origin;
        posters.push(tokio::spawn(async move {
            let mut n = c as u64 * 1_000_000_000;
            while Instant::now() < stop {
                let body = event(n, clock_us(origin));
                n += 1;
                if let Ok(r) = client.post(&url).header("content-type", "application/json").body(body).send().await
                    && r.status().is_success()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for p in posters {
        p.await.unwrap();
    }
    let accepted = sent.load(Ordering::Relaxed);
    // Delivered per second, from the first post until the last accepted event arrived (or 120 s passed).
    let _ = wait_delivered(receiver, before + accepted, Duration::from_secs(120)).await;
    let delivered = receiver.count.load(Ordering::Relaxed) - before;
    let cpu_us = match (pid, cpu_before) {
        (Some(pid), Some(before)) => cpu_ns(pid).saturating_sub(before) as f64 / 1000.0 / delivered.max(1) as f64,
        _ => 0.0,
    };
    (delivered as f64 / started.elapsed().as_secs_f64(), cpu_us)
}

/// CPU time used so far by every thread of `pid` (its scheduler statistics), nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()))
        .sum()
}

/// Open loop at `LATENCY_RATE` events/s for one `LATENCY_WINDOW`: posted -> target received, in microseconds, for
/// every event of the window that was delivered.
async fn latency_window(webhook: SocketAddr, receiver: &Receiver, client: &reqwest::Client) -> Vec<u64> {
    receiver.latencies.lock().unwrap().clear();
    let before = receiver.count.load(Ordering::Relaxed);
    let url = format!("http://{webhook}/hooks/in");
    let total = LATENCY_RATE * LATENCY_WINDOW.as_millis() as u64 / 1000;
    let mut interval = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut posts = Vec::with_capacity(total as usize);
    for n in 0..total {
        interval.tick().await;
        let client = client.clone();
        let url = url.clone();
        let origin = receiver.origin;
        posts.push(tokio::spawn(async move {
            let body = event(n, clock_us(origin));
            client.post(&url).header("content-type", "application/json").body(body).send().await.map(|r| r.status().is_success()).unwrap_or(false)
        }));
    }
    let mut accepted = 0;
    for p in posts {
        accepted += u64::from(p.await.unwrap());
    }
    if !wait_delivered(receiver, before + accepted, Duration::from_secs(60)).await {
        let delivered = receiver.count.load(Ordering::Relaxed) - before;
        eprintln!("latency window incomplete: {delivered} of {accepted} accepted events delivered within 60 s; the figures cover those only");
    }
    std::mem::take(&mut *receiver.latencies.lock().unwrap())
}

/// p50, p99 and max of `latencies`.
fn percentiles(mut l: Vec<u64>) -> (u64, u64, u64) {
    if l.is_empty() {
        return (0, 0, 0);
    }
    l.sort_unstable();
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    (at(0.5), at(0.99), *l.last().unwrap())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Reads `/metrics` once a second until told to stop; returns how many scrapes succeeded.
async fn scrape(http: SocketAddr, running: Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let client = reqwest::Client::new();
    let url = format!("http://{http}/metrics");
    let mut ok = 0;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    while running.load(Ordering::Relaxed) {
        every.tick().await;
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
            && r.bytes().await.is_ok()
        {
            ok += 1;
        }
    }
    ok
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("pipeline: benchmark");
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--forwarder") {
        let target: SocketAddr = args[at + 1].parse().expect("--forwarder <target address>");
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            println!("{}", start_forwarder(target).await);
            std::future::pending::<()>().await;
        });
        return;
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let origin = Instant::now();
        let (receiver, target) = start_receiver(origin).await;
        let dir = tempfile::tempdir().unwrap();
        let tasks: u32 = std::env::var("BENCH_TASKS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
        let bin = std::env::var("BUSBAR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_busbar").to_owned());

        // Every setup runs at once (idle ones cost nothing), and their throughput phases alternate round by round,
        // so that drift of the machine (other load, CPU taken by the hypervisor) hits them alike; medians.
        let mut setups: Vec<Setup> = Vec::new();
        let (child, addr) = spawn_forwarder(target);
        setups.push(Setup::new("forwarder (axum + reqwest, no durability)", child, addr, false));
        for rules in [1usize, 1000] {
            let file = dir.path().join(format!("bench-{rules}.json"));
            std::fs::write(&file, serde_json::to_vec(&pipeline(target, rules, tasks)).unwrap()).unwrap();
            let (child, addr) = start_busbar(&bin, &file, &dir.path().join(format!("data-{rules}")));
            let name = if rules == 1 { "busbar serve, 1 rule".to_owned() } else { format!("busbar serve, {rules} rules") };
            setups.push(Setup::new(&name, child, addr, false));
            if rules == 1 {
                // The API's cost on the data path: the same process with a scraper reading /metrics every second,
                // as Prometheus would.
                let (child, addr) = start_busbar(&bin, &file, &dir.path().join("data-1-scraped"));
                setups.push(Setup::new("busbar serve, 1 rule, /metrics scraped every second", child, addr, true));
            }
        }
        // `BUSBAR_BASELINE`: another busbar build (say, of an earlier commit) with the 1-rule pipeline, in the rounds.
        if let Ok(baseline) = std::env::var("BUSBAR_BASELINE") {
            let file = dir.path().join("bench-1.json");
            let (child, addr) = start_busbar(&baseline, &file, &dir.path().join("data-baseline"));
            setups.push(Setup::new("BUSBAR_BASELINE build, 1 rule", child, addr, false));
        }
        for setup in &setups {
            // Warm up: connections, compiled components, the bus topic.
            let _ = throughput(setup.addr, &receiver, 1).await;
        }
        for round in 0..rounds {
            for setup in &mut setups {
                let scraping = Arc::new(std::sync::atomic::AtomicBool::new(setup.scraped));
                let scraper = tokio::spawn(scrape(setup.addr, scraping.clone()));
                let (rate, cpu) = measured(setup.addr, &receiver, seconds, Some(setup.child.id())).await;
                scraping.store(false, Ordering::Relaxed);
                let _ = scraper.await;
                eprintln!("round {round}: {}: {rate:.0} events/s, {cpu:.1} us CPU per event", setup.name);
                setup.rates.push(rate);
                setup.cpu.push(cpu);
            }
        }
        // Latency: short open-loop windows, alternating between setups as the throughput phases do, so that a
        // stall of the machine lands in one window of one setup rather than in a whole setup's phase.
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); setups.len()];
        // Let the last throughput phase's backlog drain before measuring latency at a steady rate.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for _ in 0..LATENCY_WINDOWS {
            for (setup, all) in setups.iter().zip(&mut latencies) {
                all.extend(latency_window(setup.addr, &receiver, &client).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        for (setup, all) in setups.iter_mut().zip(latencies) {
            setup.latency = percentiles(all);
            setup.rss = rss_mb(setup.child.id());
            eprintln!("{}: latency {:?} us; runs {:?} events/s", setup.name, setup.latency, setup.rates);
        }

        let base = median(&mut setups[0].rates.clone());
        println!();
        println!(
            "webhook -> rules -> HTTP target, ~1 KB events, {CLIENTS} clients, {seconds} s per throughput phase, \
             {rounds} alternating rounds (medians), target tasks {tasks}"
        );
        println!("| setup | events/s | vs forwarder | CPU µs/event (server process) | p50 ms @2k/s | p99 ms @2k/s | max ms | RSS MB |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut medians = Vec::new();
        for setup in &mut setups {
            let rate = median(&mut setup.rates.clone());
            let cpu = median(&mut setup.cpu.clone());
            let (p50, p99, max) = setup.latency;
            medians.push(rate);
            println!(
                "| {} | {rate:.0} | {:.2} | {cpu:.1} | {:.2} | {:.2} | {:.1} | {:.0} |",
                setup.name,
                rate / base,
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0,
                max as f64 / 1000.0,
                setup.rss
            );
        }
        println!();
        println!("/metrics scraped every second vs not: {:.3}x throughput", medians[2] / medians[1]);
        println!("1,000 rules vs 1 rule: {:.3}x throughput", medians[3] / medians[1]);
        for setup in &mut setups {
            let _ = setup.child.kill();
            let _ = setup.child.wait();
        }
    });
}
