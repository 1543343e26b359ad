//! Writes the deterministic sample files for `busbar rules bench`:
//! `cargo run -p busbar-rules --example bench_data -- <dir> <kind: mixed|wildcard|or> <rules> <events>`.

#[path = "../benches/common/gen.rs"]
mod generator;

use std::io::Write as _;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, kind, n_rules, n_events] = args.as_slice() else {
        eprintln!("usage: bench_data <dir> <mixed|wildcard|or> <rules> <events>");
        std::process::exit(2);
    };
    let n_rules: usize = n_rules.parse().expect("rule count");
    let n_events: usize = n_events.parse().expect("event count");
    let rules: Vec<serde_json::Value> = generator::rules(kind, n_rules, 1)
        .into_iter()
        .enumerate()
        .map(|(i, p)| serde_json::json!({"name": format!("{kind}-{i}"), "pattern": p}))
        .collect();
    let mut f = std::fs::File::create(format!("{dir}/rules-{kind}-{n_rules}.json"))?;
    // One rule per line: readable, diffable, compact.
    f.write_all(b"[\n")?;
    for (i, rule) in rules.iter().enumerate() {
        let sep = if i + 1 < rules.len() { ",\n" } else { "\n" };
        f.write_all(format!("  {rule}{sep}").as_bytes())?;
    }
    f.write_all(b"]\n")?;
    let mut f = std::fs::File::create(format!("{dir}/events-{n_events}.jsonl"))?;
    for e in generator::events(n_events, 2) {
        f.write_all(e.as_bytes())?;
        f.write_all(b"\n")?;
    }
    Ok(())
}
