//! Matcher throughput on ~1 KB JSON events, JSON parsing included, one core. Compares rule-set sizes (10, 1,000,
//! 10,000 mixed rules), wildcard- and `$or`-heavy sets, and two peers measured in the same run: parsing the
//! event into a `serde_json::Value` alone, and the per-rule evaluator on 10 rules.
//! `cargo bench -p busbar-rules --bench matcher`

#[path = "common/gen.rs"]
mod generator;

use std::hint::black_box;
use std::time::Duration;

use busbar_rules::{Event, MatchScratch, Matcher, MatcherBuilder, Pattern, PatternOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

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

fn bench(c: &mut Criterion) {
    let events = generator::events(256, 2);
    let avg = events.iter().map(String::len).sum::<usize>() / events.len();
    let mut g = c.benchmark_group(format!("match_{avg}B_event"));
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);

    let mut idx = 0usize;
    let mut next = || {
        idx = (idx + 1) % events.len();
        events[idx].as_bytes()
    };
    g.bench_function("peer: serde_json::from_slice to Value only", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(next()).unwrap()))
    });
    for (kind, n) in [
        ("mixed", 10),
        ("mixed", 1000),
        ("mixed", 10000),
        ("wildcard", 1000),
        ("or", 1000),
    ] {
        let m = matcher(kind, n);
        let mut scratch = MatchScratch::new();
        let mut out = Vec::new();
        g.bench_function(format!("{kind} {n} rules"), |b| {
            b.iter(|| {
                m.matches_into(&Event::Json(next()), &mut scratch, &mut out)
                    .unwrap();
                black_box(out.len())
            })
        });
    }
    let patterns: Vec<Pattern> = generator::rules("mixed", 10, 1)
        .iter()
        .map(|p| Pattern::parse(p, &PatternOptions::default()).unwrap())
        .collect();
    g.bench_function(
        "peer: per-rule evaluator, 10 mixed rules (parse to Value + evaluate each)",
        |b| {
            b.iter(|| {
                let v: serde_json::Value = serde_json::from_slice(next()).unwrap();
                black_box(patterns.iter().filter(|p| p.matches(&v)).count())
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
