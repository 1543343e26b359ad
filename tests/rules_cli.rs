//! `busbar rules test|transform|bench` driven through the real binary: output and exit codes
//! (0 match / 1 no match / 2 error).

use std::process::{Command, Output};

fn busbar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_busbar"))
        .args(args)
        .env("BUSBAR_LOG", "warn")
        .output()
        .expect("run busbar")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const EVENT: &str = r#"{"source": "com.example.orders", "detail-type": "Order Placed", "detail": {"total": 1500, "id": "o-1", "customer": {"name": "Ann"}}}"#;

#[test]
fn test_prints_match_and_exits_0() {
    let o = busbar(&[
        "rules",
        "test",
        "--pattern",
        r#"{"detail": {"total": [{"numeric": [">", 1000]}]}}"#,
        "--event",
        EVENT,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "match\n");
}

#[test]
fn test_prints_no_match_and_exits_1() {
    let o = busbar(&[
        "rules",
        "test",
        "--pattern",
        r#"{"source": ["other"]}"#,
        "--event",
        EVENT,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no match\n");
}

#[test]
fn test_reads_files() {
    let dir = std::env::temp_dir().join(format!("busbar-rules-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pattern = dir.join("pattern.json");
    let event = dir.join("event.json");
    std::fs::write(
        &pattern,
        r#"{"detail": {"customer": {"name": [{"equals-ignore-case": "ANN"}]}}}"#,
    )
    .unwrap();
    std::fs::write(&event, EVENT).unwrap();
    let o = busbar(&[
        "rules",
        "test",
        "--pattern",
        pattern.to_str().unwrap(),
        "--event",
        event.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "match\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_pattern_exits_2_naming_the_path() {
    let o = busbar(&[
        "rules",
        "test",
        "--pattern",
        r#"{"detail": {"total": [{"numeric": [">"]}]}}"#,
        "--event",
        EVENT,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).contains("$.detail.total[0].numeric"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn invalid_event_exits_2() {
    let o = busbar(&[
        "rules",
        "test",
        "--pattern",
        r#"{"source": ["x"]}"#,
        "--event",
        r#"{"source": "#,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--event"), "{}", stderr(&o));
    let o = busbar(&[
        "rules",
        "test",
        "--pattern",
        r#"{"source": ["x"]}"#,
        "--event",
        "/nonexistent/event.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/event.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn strict_mode_rejects_extensions() {
    let pattern = r#"{"detail": {"id": [{"regex": "o-[0-9]+"}]}}"#;
    let o = busbar(&["rules", "test", "--pattern", pattern, "--event", EVENT]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = busbar(&[
        "rules",
        "test",
        "--strict-eventbridge",
        "--pattern",
        pattern,
        "--event",
        EVENT,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("extension"), "{}", stderr(&o));
}

#[test]
fn transform_prints_the_output() {
    let o = busbar(&[
        "rules",
        "transform",
        "--paths-map",
        r#"{"id": "$.detail.id", "total": "$.detail.total"}"#,
        "--template",
        r#"{"order": <id>, "total": <total>, "rule": <aws.events.rule-name>, "at": "<aws.events.event.ingestion-time>"}"#,
        "--event",
        EVENT,
        "--rule-name",
        "big-orders",
        "--ingestion-time",
        "2026-01-02T03:04:05Z",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"order": "o-1", "total": 1500, "rule": "big-orders", "at": "2026-01-02T03:04:05Z"})
    );

    let o = busbar(&[
        "rules",
        "transform",
        "--paths-map",
        r#"{"n": "$.detail.customer.name"}"#,
        "--template",
        "\"Hello <n>\"",
        "--event",
        EVENT,
    ]);
    assert_eq!(stdout(&o), "\"Hello Ann\"\n");
}

#[test]
fn transform_errors_exit_2() {
    // Undefined placeholder: rejected at load time.
    let o = busbar(&[
        "rules",
        "transform",
        "--paths-map",
        "{}",
        "--template",
        "<nope>",
        "--event",
        EVENT,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<nope>"), "{}", stderr(&o));
    // A JSON template whose output is not JSON: error at delivery, never a silent string.
    let o = busbar(&[
        "rules",
        "transform",
        "--paths-map",
        r#"{"c": "$.detail.customer"}"#,
        "--template",
        r#"{"x": "c=<c>"}"#,
        "--event",
        EVENT,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not valid JSON"), "{}", stderr(&o));
}

#[test]
fn bench_runs_the_shipped_sample() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/benches/data");
    let o = busbar(&[
        "rules",
        "bench",
        "--rules",
        &format!("{data}/rules-mixed-1000.json"),
        "--events",
        &format!("{data}/events-200.jsonl"),
        "--duration",
        "0.2s",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("rules                 1000"), "{out}");
    assert!(out.contains("events/s"), "{out}");
    let matched: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("rules that matched"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("rules that matched line");
    assert!(matched > 0, "{out}");
}

#[test]
fn bench_rejects_a_bad_events_line() {
    let dir = std::env::temp_dir().join(format!("busbar-rules-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.json"), r#"[{"source": ["a"]}]"#).unwrap();
    std::fs::write(dir.join("events.jsonl"), "{\"source\": \"a\"}\n{oops}\n").unwrap();
    let o = busbar(&[
        "rules",
        "bench",
        "--rules",
        dir.join("rules.json").to_str().unwrap(),
        "--events",
        dir.join("events.jsonl").to_str().unwrap(),
        "--duration",
        "0.1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}
