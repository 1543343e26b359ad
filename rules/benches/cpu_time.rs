//! Matcher throughput per second of CPU time of the matching thread, for shared machines where wall-clock
//! figures mostly measure the neighbours: each case runs for a fixed wall time and is charged only the time the
//! thread actually ran (`/proc/thread-self/schedstat`, nanoseconds; Linux). Same events and rule sets as the
//! criterion bench (`benches/common/gen.rs`), JSON parsing included, one thread, with the serde_json parse peer
//! measured the same way in the same run. Prints a table.
//! `cargo bench -p busbar-rules --bench cpu_time [-- <seconds per case>] [<case name contains>]`

#[path = "common/gen.rs"]
mod generator;

use std::hint::black_box;
use std::time::{Duration, Instant};

use busbar_rules::{Event, MatchScratch, Matcher, MatcherBuilder, Pattern, PatternOptions};

/// Nanoseconds this thread has run on a CPU.
fn thread_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat (Linux) is needed for CPU-time figures");
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with the run time in ns")
}

fn matcher(kind: &str, n: usize) -> Matcher {
    let mut b = MatcherBuilder::new();
    for (i, p) in generator::rules(kind, n, 1).iter().enumerate() {
        b.add(
            i,
            &Pattern::parse(p, &PatternOptions::default()).expect("generated pattern is valid"),
        );
    }
    b.build()
}

/// Runs `f` over the events in rounds until `wall` has passed; returns (events per CPU-second, CPU share).
fn measure(events: &[String], wall: Duration, mut f: impl FnMut(&[u8])) -> (f64, f64) {
    // Warm up caches and scratch buffers.
    for e in events {
        f(e.as_bytes());
    }
    let (start, cpu0) = (Instant::now(), thread_cpu_ns());
    let mut n = 0u64;
    while start.elapsed() < wall {
        for e in events {
            f(e.as_bytes());
        }
        n += events.len() as u64;
    }
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    (n as f64 / cpu, cpu / start.elapsed().as_secs_f64())
}

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    // A word that is not a number picks the cases whose name contains it (for profiling one case).
    let only = std::env::args()
        .skip(1)
        .find(|a| a.parse::<f64>().is_err() && !a.starts_with('-'));
    let wall = Duration::from_secs_f64(secs);
    let events = generator::events(256, 2);
    let avg = events.iter().map(String::len).sum::<usize>() / events.len();
    println!(
        "events: {} of {avg} bytes on average; {secs} s wall per case",
        events.len()
    );
    println!(
        "| case | events per CPU-second | µs CPU / event | vs serde_json parse | CPU share | matches / event |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let (peer, share) = measure(&events, wall, |e| {
        black_box(serde_json::from_slice::<serde_json::Value>(e).unwrap());
    });
    println!(
        "| peer: serde_json::from_slice to Value only | {peer:.0} | {:.2} | 1.00x | {:.0}% | - |",
        1e6 / peer,
        share * 100.0
    );
    for (kind, n) in [
        ("mixed", 10),
        ("mixed", 1000),
        ("mixed", 10000),
        ("wildcard", 1000),
        ("or", 1000),
    ] {
        if only
            .as_deref()
            .is_some_and(|w| !format!("{kind} {n} rules").contains(w))
        {
            continue;
        }
        let m = matcher(kind, n);
        let mut scratch = MatchScratch::new();
        let mut out = Vec::new();
        let mut hits = 0usize;
        for e in &events {
            m.matches_into(&Event::Json(e.as_bytes()), &mut scratch, &mut out)
                .unwrap();
            hits += out.len();
        }
        let (rate, share) = measure(&events, wall, |e| {
            m.matches_into(&Event::Json(e), &mut scratch, &mut out)
                .unwrap();
            black_box(out.len());
        });
        println!(
            "| {kind} {n} rules | {rate:.0} | {:.2} | {:.2}x | {:.0}% | {:.2} |",
            1e6 / rate,
            rate / peer,
            share * 100.0,
            hits as f64 / events.len() as f64
        );
    }
}
