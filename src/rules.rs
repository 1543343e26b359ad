//! `busbar rules` subcommands: try a pattern on an event, apply an input transformer, and measure a rule set's
//! matching throughput. Exit codes: 0 match (or success), 1 no match, 2 error (invalid pattern, event,
//! transformer or file).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use busbar_rules::{
    Event, InputTransformer, MatchScratch, MatcherBuilder, Pattern, PatternOptions,
    TransformContext,
};
use serde_json::Value;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Test an event pattern against one event: prints `match` (exit 0) or `no match` (exit 1).
    Test {
        /// The pattern: a JSON text, a file path, or `-` for standard input.
        #[arg(long)]
        pattern: String,
        /// The event: a JSON text, a file path, or `-` for standard input.
        #[arg(long)]
        event: String,
        /// Reject busbar's extensions ($and, operator lists, regex, wide numeric ranges).
        #[arg(long)]
        strict_eventbridge: bool,
    },
    /// Apply an input transformer (InputPathsMap + InputTemplate) to one event and print the result.
    Transform {
        /// The InputPathsMap: a JSON object text or a file path.
        #[arg(long)]
        paths_map: String,
        /// The InputTemplate, as text.
        #[arg(long)]
        template: String,
        /// The event: a JSON text, a file path, or `-` for standard input.
        #[arg(long)]
        event: String,
        /// Value of <aws.events.rule-name>.
        #[arg(long, default_value = "busbar-rule")]
        rule_name: String,
        /// Value of <aws.events.rule-arn> (default: derived from the rule name).
        #[arg(long)]
        rule_arn: Option<String>,
        /// Value of <aws.events.event.ingestion-time> (default: now, ISO 8601 UTC).
        #[arg(long)]
        ingestion_time: Option<String>,
    },
    /// Measure matching throughput of a rule set on sample events (one core, JSON parsing included).
    Bench {
        /// Rules: a JSON array of patterns or of {"name", "pattern"} objects, an object of name -> pattern, or
        /// a pipeline file (its "rules").
        #[arg(long)]
        rules: String,
        /// Events, one JSON object per line.
        #[arg(long)]
        events: String,
        /// How long to measure.
        #[arg(long, default_value = "3s", value_parser = parse_seconds)]
        duration: Duration,
        /// Reject busbar's extensions.
        #[arg(long)]
        strict_eventbridge: bool,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Test {
            pattern,
            event,
            strict_eventbridge,
        } => {
            let options = PatternOptions { strict_eventbridge };
            let pattern_json = json_arg(&pattern, "pattern")?;
            let pattern = Pattern::parse(&pattern_json, &options).context("--pattern")?;
            let event = json_arg(&event, "event")?;
            if !event.is_object() {
                bail!("--event: an event must be a JSON object");
            }
            let matched = pattern.matches(&event);
            println!("{}", if matched { "match" } else { "no match" });
            Ok(if matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Transform {
            paths_map,
            template,
            event,
            rule_name,
            rule_arn,
            ingestion_time,
        } => {
            let map = json_arg(&paths_map, "paths-map")?;
            let Value::Object(map) = map else {
                bail!("--paths-map must be a JSON object of name -> JSONPath")
            };
            let transformer = InputTransformer::new(&map, &template)?;
            let event = json_arg(&event, "event")?;
            let rule_arn =
                rule_arn.unwrap_or_else(|| format!("arn:busbar:events:::rule/{rule_name}"));
            let ingestion_time = ingestion_time.unwrap_or_else(now_iso8601);
            let ctx = TransformContext {
                rule_name: &rule_name,
                rule_arn: &rule_arn,
                ingestion_time: &ingestion_time,
            };
            println!("{}", transformer.transform(&event, &ctx)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            rules,
            events,
            duration,
            strict_eventbridge,
        } => bench(
            Path::new(&rules),
            Path::new(&events),
            duration,
            PatternOptions { strict_eventbridge },
        ),
    }
}

/// A JSON argument: inline JSON text when it looks like JSON, `-` for standard input, otherwise a file path.
fn json_arg(arg: &str, what: &str) -> anyhow::Result<Value> {
    let trimmed = arg.trim_start();
    let (text, source) = if trimmed.starts_with(['{', '[']) {
        (arg.to_owned(), "inline JSON".to_owned())
    } else if arg == "-" {
        (
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?,
            "standard input".to_owned(),
        )
    } else {
        (
            std::fs::read_to_string(arg).with_context(|| {
                format!("--{what}: cannot read file {arg:?} (give a file path or inline JSON)")
            })?,
            arg.to_owned(),
        )
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "--{what} ({source}): not valid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        )
    })
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a duration in seconds, e.g. 3s or 0.5"))
}

/// Rules from a rules file, as (name, pattern).
fn load_rules(path: &Path, options: &PatternOptions) -> anyhow::Result<Vec<(String, Pattern)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--rules: cannot read {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "--rules {}: not valid JSON at line {} column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let entries: Vec<(String, Value)> = match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(mut m) if m.contains_key("pattern") => {
                    let name = m
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("rule-{i}"), str::to_owned);
                    (name, m.remove("pattern").unwrap_or_default())
                }
                other => (format!("rule-{i}"), other),
            })
            .collect(),
        Value::Object(mut m) if m.get("rules").is_some_and(Value::is_array) => {
            let Some(Value::Array(rules)) = m.remove("rules") else {
                unreachable!("checked above")
            };
            rules
                .into_iter()
                .enumerate()
                .map(|(i, mut r)| {
                    let name = r
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("rule-{i}"), str::to_owned);
                    (
                        name,
                        r.get_mut("pattern").map(Value::take).unwrap_or_default(),
                    )
                })
                .collect()
        }
        Value::Object(m) => m.into_iter().collect(),
        _ => bail!(
            "--rules {}: expected an array of patterns, an object of name -> pattern, or a pipeline file",
            path.display()
        ),
    };
    entries
        .into_iter()
        .map(|(name, p)| {
            let pattern = Pattern::parse(&p, options)
                .with_context(|| format!("--rules {}: rule {name:?}", path.display()))?;
            Ok((name, pattern))
        })
        .collect()
}

fn bench(
    rules: &Path,
    events: &Path,
    duration: Duration,
    options: PatternOptions,
) -> anyhow::Result<ExitCode> {
    let rules = load_rules(rules, &options)?;
    if rules.is_empty() {
        bail!("--rules: the file holds no rules");
    }
    let text = std::fs::read_to_string(events)
        .with_context(|| format!("--events: cannot read {}", events.display()))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    if lines.is_empty() {
        bail!(
            "--events {}: no events (one JSON object per line)",
            events.display()
        );
    }
    let build_start = Instant::now();
    let mut builder = MatcherBuilder::new();
    for (i, (_, pattern)) in rules.iter().enumerate() {
        builder.add(i, pattern);
    }
    let matcher = builder.build();
    let build_time = build_start.elapsed();

    // One checked pass first: every event must be valid, and it gives the per-rule hit counts.
    let mut scratch = MatchScratch::new();
    let mut out = Vec::new();
    let mut hits = vec![0u64; rules.len()];
    let mut matched_events = 0u64;
    for (line, l) in &lines {
        matcher
            .matches_into(&Event::Json(l.as_bytes()), &mut scratch, &mut out)
            .with_context(|| format!("--events {} line {line}", events.display()))?;
        matched_events += u64::from(!out.is_empty());
        out.iter().for_each(|&r| hits[r] += 1);
    }

    let bytes: usize = lines.iter().map(|(_, l)| l.len()).sum();
    let start = Instant::now();
    let mut processed = 0u64;
    let mut processed_bytes = 0u64;
    let mut rule_matches = 0u64;
    while start.elapsed() < duration {
        for (_, l) in &lines {
            matcher.matches_into(
                &Event::Json(std::hint::black_box(l.as_bytes())),
                &mut scratch,
                &mut out,
            )?;
            rule_matches += out.len() as u64;
        }
        processed += lines.len() as u64;
        processed_bytes += bytes as u64;
    }
    let secs = start.elapsed().as_secs_f64();

    // Peer measured in the same run: parsing the same events into a serde_json::Value, nothing else.
    let peer_start = Instant::now();
    let mut peer_processed = 0u64;
    while peer_start.elapsed() < duration / 2 {
        for (_, l) in &lines {
            std::hint::black_box(serde_json::from_str::<Value>(std::hint::black_box(l))?);
        }
        peer_processed += lines.len() as u64;
    }
    let peer_rate = peer_processed as f64 / peer_start.elapsed().as_secs_f64();
    let total_hits: u64 = hits.iter().sum();
    println!("rules                 {}", rules.len());
    println!("distinct fields read  {}", matcher.field_paths().count());
    println!(
        "compile time          {:.1} ms",
        build_time.as_secs_f64() * 1e3
    );
    println!(
        "events (sample)       {} ({:.0} bytes average)",
        lines.len(),
        bytes as f64 / lines.len() as f64
    );
    println!("events matched        {matched_events} of {}", lines.len());
    println!(
        "rule matches / event  {:.2}",
        total_hits as f64 / lines.len() as f64
    );
    println!(
        "throughput            {:.0} events/s  ({:.1} MB/s, one core, JSON parsing included)",
        processed as f64 / secs,
        processed_bytes as f64 / secs / 1e6
    );
    println!(
        "latency               {:.2} µs/event",
        secs * 1e6 / processed as f64
    );
    println!(
        "peer: serde_json       {peer_rate:.0} events/s  (same events parsed to a Value, nothing matched; matcher = {:.2}x that)",
        processed as f64 / secs / peer_rate
    );
    std::hint::black_box(rule_matches);
    let mut top: Vec<(usize, u64)> = hits
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, h)| *h > 0)
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("rules that matched    {} of {}", top.len(), rules.len());
    for (i, h) in top.iter().take(10) {
        println!("  {:>8}  {}", h, rules[*i].0);
    }
    Ok(ExitCode::SUCCESS)
}

/// Current time as an ISO 8601 UTC timestamp (`2024-05-01T12:00:00Z`).
fn now_iso8601() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
