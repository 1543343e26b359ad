//! `busbar topics|produce|consume|groups|completions` driven through the real binary against a real broker
//! (`busbar broker` on a free port, in its own process), talking the Kafka protocol through librdkafka.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `busbar broker` process on 127.0.0.1:<free port> with its own data directory.
struct Broker {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_busbar"))
            .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            // The bad-input tests make the broker warn on purpose; keep the test output for real trouble.
            .env("BUSBAR_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn busbar broker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("busbar broker did not start in 60 s");
        let addr = line
            .strip_prefix("busbar broker listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Broker {
            child,
            addr,
            _dir: dir,
        }
    }

    /// Runs `busbar <args>` against this broker (through BUSBAR_BOOTSTRAP, the flag's environment fallback).
    fn run(&self, args: &[&str]) -> Output {
        busbar(args, Some(&self.addr), None)
    }

    /// Runs and expects exit code 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "busbar {args:?} failed:\n{}",
            stderr(&out)
        );
        String::from_utf8(out.stdout).expect("UTF-8 stdout")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let text = self.ok(&args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("busbar {args:?}: not JSON ({e}):\n{text}"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn busbar(args: &[&str], bootstrap: Option<&str>, stdin: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_busbar"));
    command
        .args(args)
        .env("BUSBAR_LOG", "warn")
        .env_remove("BUSBAR_BOOTSTRAP");
    if let Some(addr) = bootstrap {
        command.env("BUSBAR_BOOTSTRAP", addr);
    }
    if let Some(path) = stdin {
        command.stdin(std::fs::File::open(path).expect("stdin file"));
    }
    command.output().expect("run busbar")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Expects exit code 2 and returns stderr.
fn fails(out: Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    stderr(&out)
}

/// One record as the test wrote it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    key: String,
    value: String,
    headers: Vec<(String, String)>,
}

fn records_from_json_lines(text: &str) -> Vec<(i64, i64, Rec)> {
    text.lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let headers = v["headers"]
                .as_array()
                .expect("headers array")
                .iter()
                .map(|h| {
                    (
                        h["key"].as_str().unwrap().to_owned(),
                        h["value"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let rec = Rec {
                key: v["key"].as_str().expect("key").to_owned(),
                value: v["value"].as_str().expect("value").to_owned(),
                headers,
            };
            assert_eq!(v["topic"], "orders");
            assert!(
                v["timestamp"]
                    .as_i64()
                    .is_some_and(|t| t > 1_700_000_000_000),
                "{line}"
            );
            (
                v["partition"].as_i64().unwrap(),
                v["offset"].as_i64().unwrap(),
                rec,
            )
        })
        .collect()
}

fn lag(describe: &Value) -> i64 {
    describe["lag"].as_i64().expect("lag")
}

/// The whole life of a topic: create with 3 partitions, describe, alter settings, produce 1,000 keyed records
/// with headers from a file, read them back exactly, consume in a group, lag, reset, delete.
#[test]
fn topic_lifecycle_produce_consume_groups() {
    let broker = Broker::start();

    // Create and describe.
    let created = broker.run(&["topics", "create", "orders", "--partitions", "3"]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    assert!(
        stderr(&created).contains("created topic \"orders\" with 3 partitions"),
        "{}",
        stderr(&created)
    );
    let again = fails(
        broker.run(&["topics", "create", "orders", "--partitions", "3"]),
        "duplicate create",
    );
    assert!(
        again.contains("already exists") && again.contains("--if-not-exists"),
        "{again}"
    );
    broker.ok(&[
        "topics",
        "create",
        "orders",
        "--partitions",
        "3",
        "--if-not-exists",
    ]);
    let list = broker.json(&["topics", "list"]);
    let listed: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["topic"] == "orders")
        .collect();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["partitions"], 3);
    let table = broker.ok(&["topics", "list"]);
    assert!(
        table.lines().next().unwrap().starts_with("TOPIC"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["orders", "3", "1"]),
        "{table}"
    );

    let described = broker.json(&["topics", "describe", "orders"]);
    assert_eq!(described["topic"], "orders");
    let partitions = described["partitions"].as_array().unwrap();
    assert_eq!(
        partitions
            .iter()
            .map(|p| p["partition"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(
        partitions
            .iter()
            .all(|p| p["log_end_offset"] == 0 && p["leader"].as_i64().is_some())
    );
    assert_eq!(
        described["configs"]["retention.ms"]["source"], "default",
        "{described}"
    );

    // Alter: set retention.ms, then another key (retention.ms must survive), then delete the other key.
    broker.ok(&[
        "topics",
        "alter",
        "orders",
        "--config",
        "retention.ms=3600000",
    ]);
    let described = broker.json(&["topics", "describe", "orders"]);
    assert_eq!(
        described["configs"]["retention.ms"]["value"], "3600000",
        "{described}"
    );
    assert_eq!(
        described["configs"]["retention.ms"]["source"], "topic",
        "{described}"
    );
    broker.ok(&[
        "topics",
        "alter",
        "orders",
        "--config",
        "segment.bytes=1048576",
    ]);
    let described = broker.json(&["topics", "describe", "orders"]);
    assert_eq!(
        described["configs"]["retention.ms"]["value"], "3600000",
        "{described}"
    );
    assert_eq!(
        described["configs"]["segment.bytes"]["value"], "1048576",
        "{described}"
    );
    broker.ok(&[
        "topics",
        "alter",
        "orders",
        "--delete-config",
        "segment.bytes",
    ]);
    let described = broker.json(&["topics", "describe", "orders"]);
    assert_eq!(
        described["configs"]["segment.bytes"]["source"], "default",
        "{described}"
    );
    assert_eq!(
        described["configs"]["retention.ms"]["value"], "3600000",
        "{described}"
    );
    let table = broker.ok(&["topics", "describe", "orders"]);
    assert!(table.contains("retention.ms=3600000  (topic)"), "{table}");
    assert!(
        table.contains("PARTITION") && table.contains("LOG-END"),
        "{table}"
    );

    // Produce 1,000 keyed records with per-line and common headers from a file.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.txt");
    let mut expected = Vec::new();
    let mut text = String::new();
    for i in 0..1000 {
        let key = format!("customer-{}", i % 37);
        let value = format!("{{\"order\": {i}, \"note\": \"ünïcödé, tabs\\tand = signs\"}}");
        text.push_str(&format!("seq={i},trace=t-{i}|{key}:{value}\n"));
        expected.push(Rec {
            key,
            value,
            headers: vec![
                ("source".into(), "cli-test".into()),
                ("seq".into(), i.to_string()),
                ("trace".into(), format!("t-{i}")),
            ],
        });
    }
    std::fs::write(&input, text).unwrap();
    let produced = broker.json(&[
        "produce",
        "orders",
        "--file",
        input.to_str().unwrap(),
        "--key-separator",
        ":",
        "--headers-separator",
        "|",
        "-H",
        "source=cli-test",
    ]);
    assert_eq!(produced["records"], 1000, "{produced}");
    let per_partition: i64 = produced["partitions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(per_partition, 1000);
    assert_eq!(
        produced["partitions"].as_object().unwrap().len(),
        3,
        "37 keys spread over 3 partitions: {produced}"
    );

    // Read everything back from the earliest offsets as JSON lines and compare exactly.
    let out = broker.ok(&[
        "consume",
        "orders",
        "--from",
        "earliest",
        "--max-messages",
        "1000",
        "--output",
        "json",
    ]);
    let consumed = records_from_json_lines(&out);
    assert_eq!(consumed.len(), 1000);
    let mut got: Vec<Rec> = consumed.iter().map(|(_, _, r)| r.clone()).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "the records read back differ from the records written"
    );
    // Per partition: offsets 0..n without gaps; per key: one partition, in the order written.
    let mut offsets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut key_partition: BTreeMap<String, i64> = BTreeMap::new();
    let mut key_seq: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (partition, offset, rec) in &consumed {
        offsets.entry(*partition).or_default().push(*offset);
        assert_eq!(
            *key_partition.entry(rec.key.clone()).or_insert(*partition),
            *partition,
            "{} split",
            rec.key
        );
        key_seq
            .entry(rec.key.clone())
            .or_default()
            .push(rec.headers[1].1.parse().unwrap());
    }
    for (partition, mut offs) in offsets {
        offs.sort();
        assert_eq!(
            offs,
            (0..offs.len() as i64).collect::<Vec<_>>(),
            "partition {partition}"
        );
    }
    for (key, seq) in key_seq {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order: {seq:?}"
        );
    }
    // The log end offsets in describe add up.
    let described = broker.json(&["topics", "describe", "orders"]);
    let ends: i64 = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["log_end_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(ends, 1000);

    // A template, reading to the end of every partition.
    let out = broker.ok(&[
        "consume",
        "orders",
        "--from",
        "earliest",
        "--exit-at-end",
        "--format",
        "{partition}/{offset} {key} [{header.trace}] {headers} => {value}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1000, "{}", &out[..out.len().min(500)]);
    let line_7 = lines
        .iter()
        .find(|l| l.contains("[t-7]"))
        .expect("record 7");
    let rec_7 = &expected[7];
    assert!(
        line_7.ends_with(&format!(
            " {} [t-7] source=cli-test,seq=7,trace=t-7 => {}",
            rec_7.key, rec_7.value
        )),
        "{line_7}"
    );
    // Value only (the default), the last 2 records of partition 0.
    let out = broker.ok(&[
        "consume",
        "orders",
        "--partition",
        "0",
        "--from",
        "-2",
        "--max-messages",
        "2",
    ]);
    assert_eq!(out.lines().count(), 2);
    assert!(out.lines().all(|l| l.starts_with("{\"order\": ")), "{out}");

    // A consumer group reads everything and commits; describe shows lag 0 per partition.
    let out = broker.ok(&[
        "consume",
        "orders",
        "--group",
        "billing",
        "--from",
        "earliest",
        "--max-messages",
        "1000",
        "-o",
        "json",
    ]);
    assert_eq!(records_from_json_lines(&out).len(), 1000);
    let groups = broker.json(&["groups", "list"]);
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "billing"),
        "{groups}"
    );
    let described = broker.json(&["groups", "describe", "billing"]);
    assert_eq!(lag(&described), 0, "{described}");
    let parts = described["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "{described}");
    assert!(
        parts
            .iter()
            .all(|p| p["lag"] == 0 && p["committed_offset"] == p["log_end_offset"]),
        "{described}"
    );
    assert_eq!(
        described["members"].as_array().unwrap().len(),
        0,
        "the consumer left: {described}"
    );
    let table = broker.ok(&["groups", "describe", "billing"]);
    assert!(
        table.contains("CURRENT-OFFSET") && table.contains("Total lag: 0"),
        "{table}"
    );

    // Reset: a dry run by default changes nothing; --execute moves the offsets.
    let plan = broker.json(&[
        "groups",
        "reset",
        "billing",
        "--all-topics",
        "--to-earliest",
    ]);
    assert_eq!(plan["executed"], false);
    assert!(
        plan["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["new_offset"] == 0),
        "{plan}"
    );
    assert_eq!(
        lag(&broker.json(&["groups", "describe", "billing"])),
        0,
        "a dry run must not commit"
    );
    let by_time = broker.json(&[
        "groups",
        "reset",
        "billing",
        "--topic",
        "orders",
        "--to-datetime",
        "2000-01-01T00:00:00Z",
    ]);
    assert!(
        by_time["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["new_offset"] == 0),
        "{by_time}"
    );
    let future = broker.json(&[
        "groups",
        "reset",
        "billing",
        "--topic",
        "orders",
        "--to-datetime",
        "2999-01-01",
    ]);
    assert!(
        future["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["new_offset"] == p["current_offset"]),
        "{future}"
    );
    let done = broker.run(&[
        "groups",
        "reset",
        "billing",
        "--topic",
        "orders",
        "--to-earliest",
        "--execute",
    ]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(
        stderr(&done).contains("committed the new offsets"),
        "{}",
        stderr(&done)
    );
    assert_eq!(lag(&broker.json(&["groups", "describe", "billing"])), 1000);
    // The group resumes from the reset position.
    let out = broker.ok(&[
        "consume",
        "orders",
        "--group",
        "billing",
        "--max-messages",
        "10",
        "-o",
        "json",
    ]);
    assert!(
        records_from_json_lines(&out)
            .iter()
            .all(|(_, offset, _)| *offset < 10),
        "{out}"
    );
    assert_eq!(lag(&broker.json(&["groups", "describe", "billing"])), 990);
    // Shift and an explicit offset on one partition.
    broker.ok(&[
        "groups",
        "reset",
        "billing",
        "--topic",
        "orders:0",
        "--to-offset",
        "3",
        "--execute",
    ]);
    let described = broker.json(&["groups", "describe", "billing"]);
    let p0 = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partition"] == 0)
        .unwrap()
        .clone();
    assert_eq!(p0["committed_offset"], 3, "{described}");
    let shifted = broker.json(&[
        "groups",
        "reset",
        "billing",
        "--topic",
        "orders:0",
        "--shift-by",
        "-10",
    ]);
    assert_eq!(
        shifted["partitions"][0]["new_offset"], 0,
        "clamped at the log start: {shifted}"
    );

    // Grow to 4 partitions.
    broker.ok(&["topics", "alter", "orders", "--partitions", "4"]);
    let described = broker.json(&["topics", "describe", "orders"]);
    assert_eq!(
        described["partitions"].as_array().unwrap().len(),
        4,
        "{described}"
    );

    // Delete.
    broker.ok(&["topics", "delete", "orders"]);
    let list = broker.json(&["topics", "list"]);
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["topic"] == "orders"),
        "{list}"
    );
    let err = fails(
        broker.run(&["topics", "describe", "orders"]),
        "describe a deleted topic",
    );
    assert!(err.contains("topic \"orders\" does not exist"), "{err}");
    broker.ok(&["topics", "delete", "orders", "--if-exists"]);
}

/// Produce from stdin and a whole file as one record; binary values come back as base64 in JSON.
#[test]
fn produce_from_stdin_and_value_file() {
    let broker = Broker::start();
    broker.ok(&["topics", "create", "raw", "--partitions", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.txt");
    std::fs::write(&lines, "first\r\nsecond\n\nlast-without-newline").unwrap();
    let out = busbar(
        &["produce", "raw", "--key", "k1"],
        Some(&broker.addr),
        Some(&lines),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("produced 4 records"),
        "{}",
        stderr(&out)
    );
    let blob = dir.path().join("blob.bin");
    let bytes: Vec<u8> = (0..=255u8).chain([b'\n', 0, 0xff]).collect();
    std::fs::write(&blob, &bytes).unwrap();
    broker.ok(&[
        "produce",
        "raw",
        "--value-file",
        blob.to_str().unwrap(),
        "-H",
        "kind=blob",
    ]);
    let out = broker.ok(&[
        "consume",
        "raw",
        "--from",
        "earliest",
        "--exit-at-end",
        "-o",
        "json",
    ]);
    let values: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values.len(), 5, "{out}");
    let texts: Vec<&str> = values[..4]
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["first", "second", "", "last-without-newline"]);
    assert!(values[..4].iter().all(|v| v["key"] == "k1"));
    assert_eq!(values[4]["key"], Value::Null);
    assert!(
        values[4].get("value").is_none(),
        "binary value must not be a string: {}",
        values[4]
    );
    let b64 = values[4]["value_base64"].as_str().unwrap();
    assert_eq!(b64.len(), bytes.len().div_ceil(3) * 4);
    assert!(b64.starts_with("AAECAwQF"), "{b64}");
    assert_eq!(
        values[4]["headers"],
        serde_json::json!([{ "key": "kind", "value": "blob" }])
    );
    // Records written after a point in time: --from with a timestamp, and relative.
    let out = broker.ok(&[
        "consume",
        "raw",
        "--from",
        "2000-01-01T00:00:00Z",
        "--exit-at-end",
        "--format",
        "{offset}",
    ]);
    assert_eq!(out, "0\n1\n2\n3\n4\n");
    let out = broker.ok(&[
        "consume",
        "raw",
        "--from",
        "-1h",
        "--exit-at-end",
        "-o",
        "json",
    ]);
    assert_eq!(out.lines().count(), 5);
    let out = broker.ok(&["consume", "raw", "--from", "2999-01-01", "--exit-at-end"]);
    assert_eq!(out, "", "nothing at or after a future time");
}

/// Mistakes get exit code 2 and a message that says what was wrong and what would be right.
#[test]
fn bad_input_is_reported_clearly() {
    let broker = Broker::start();
    broker.ok(&["topics", "create", "t", "--partitions", "2"]);

    let err = fails(broker.run(&["topics", "describe", "nope"]), "unknown topic");
    assert!(
        err.contains("topic \"nope\" does not exist on 127.0.0.1:")
            && err.contains("busbar topics list"),
        "{err}"
    );
    let err = fails(
        broker.run(&["consume", "nope", "--max-messages", "1"]),
        "consume unknown topic",
    );
    assert!(err.contains("topic \"nope\" does not exist"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a:1\nb:2\nno separator\n").unwrap();
    let err = fails(
        broker.run(&["produce", "nope", "--file", input.to_str().unwrap()]),
        "produce unknown topic",
    );
    assert!(err.contains("topic \"nope\" does not exist"), "{err}");
    let err = fails(
        broker.run(&[
            "produce",
            "t",
            "--file",
            input.to_str().unwrap(),
            "--key-separator",
            ":",
        ]),
        "bad line",
    );
    assert!(
        err.contains("in.txt:3") && err.contains("KEY:VALUE"),
        "{err}"
    );
    let err = fails(
        broker.run(&["produce", "t", "--partition", "5"]),
        "bad partition",
    );
    assert!(err.contains("--partition 5 does not exist"), "{err}");
    let err = fails(
        broker.run(&["groups", "describe", "ghost"]),
        "unknown group",
    );
    assert!(
        err.contains("consumer group \"ghost\" does not exist"),
        "{err}"
    );
    let err = fails(
        broker.run(&["topics", "alter", "t", "--config", "retention.ms=abc"]),
        "bad value",
    );
    assert!(
        err.contains("did not apply") && err.contains("retention.ms=abc"),
        "{err}"
    );
    let err = fails(
        broker.run(&["topics", "alter", "t", "--config", "retention.mss=1"]),
        "unknown key",
    );
    assert!(
        err.contains("did not apply") && err.contains("retention.mss"),
        "{err}"
    );
    let described = broker.json(&["topics", "describe", "t"]);
    assert_eq!(
        described["configs"]["retention.ms"]["source"], "default",
        "{described}"
    );
    let err = fails(
        broker.run(&["topics", "create", "y", "--config", "retention.ms=abc"]),
        "bad create config",
    );
    assert!(
        err.contains("creating topic \"y\" failed") && err.contains("InvalidConfig"),
        "{err}"
    );
    let err = fails(
        broker.run(&["topics", "list", "-X", "bogus.prop=1"]),
        "bad client property",
    );
    assert!(err.contains("bogus.prop"), "{err}");
    let err = fails(
        broker.run(&["topics", "alter", "t", "--partitions", "1"]),
        "shrink",
    );
    assert!(err.contains("can only grow"), "{err}");

    // Flags clap rejects.
    let err = fails(
        broker.run(&["topics", "create", "x", "--partitions", "many"]),
        "non-numeric partitions",
    );
    assert!(
        err.contains("invalid value 'many'") && err.contains("--partitions"),
        "{err}"
    );
    let err = fails(broker.run(&["topics", "list", "--bogus"]), "unknown flag");
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    let err = fails(
        broker.run(&["consume", "t", "--from", "yesterday"]),
        "bad --from",
    );
    assert!(
        err.contains("RFC 3339") && err.contains("earliest, latest"),
        "{err}"
    );
    let err = fails(
        broker.run(&["consume", "t", "--format", "{vaule}", "--max-messages", "1"]),
        "bad template",
    );
    assert!(err.contains("unknown placeholder {vaule}"), "{err}");
    let err = fails(
        broker.run(&["consume", "t", "--group", "g", "--from", "5"]),
        "offset with group",
    );
    assert!(err.contains("busbar groups reset"), "{err}");
    let err = fails(
        broker.run(&["groups", "reset", "g", "--to-earliest"]),
        "reset without scope",
    );
    assert!(
        err.contains("--topic") && err.contains("--all-topics"),
        "{err}"
    );
    let err = fails(
        broker.run(&["groups", "reset", "g", "--topic", "t"]),
        "reset without target",
    );
    assert!(err.contains("--to-earliest"), "{err}");
    let err = fails(
        broker.run(&["topics", "list", "--timeout", "5"]),
        "duration without unit",
    );
    assert!(err.contains("needs a unit"), "{err}");
    let err = fails(
        broker.run(&["topics", "list", "--output", "yaml"]),
        "unknown output",
    );
    assert!(err.contains("table") && err.contains("json"), "{err}");
}

/// Nothing listens on the address: the error names it and arrives within the timeout, not after minutes.
#[test]
fn unreachable_broker_fails_fast_naming_the_address() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    for args in [
        vec!["topics", "list", "--bootstrap-server", addr.as_str()],
        vec!["consume", "t", "--bootstrap-server", addr.as_str()],
        vec![
            "groups",
            "list",
            "--bootstrap-server",
            addr.as_str(),
            "--timeout",
            "2s",
        ],
    ] {
        let started = Instant::now();
        let err = fails(busbar(&args, None, None), "unreachable");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(15), "{args:?} took {took:?}");
        assert!(
            err.contains(&format!("could not reach a Kafka broker at {addr}")),
            "{err}"
        );
        assert!(
            err.contains("Connection refused") || err.contains("Connect to"),
            "the cause is named: {err}"
        );
        assert!(
            err.contains("--bootstrap-server") && err.contains("BUSBAR_BOOTSTRAP"),
            "{err}"
        );
    }
    // The environment variable is the flag's fallback.
    let err = fails(
        busbar(&["topics", "list", "--timeout", "1s"], Some(&addr), None),
        "unreachable via env",
    );
    assert!(err.contains(&format!("at {addr} within 1s")), "{err}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "_busbar()"),
        ("zsh", "#compdef busbar"),
        ("fish", "complete -c busbar"),
    ] {
        let out = busbar(&["completions", shell], None, None);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for word in [
            "topics",
            "produce",
            "consume",
            "groups",
            "bootstrap-server",
            "to-earliest",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let err = fails(
        busbar(&["completions", "tcsh"], None, None),
        "unknown shell",
    );
    assert!(
        err.contains("possible values") && err.contains("bash"),
        "{err}"
    );
}

/// A group consumer without a record limit runs until stopped; SIGTERM makes it commit what it printed and leave.
/// --idle-timeout ends a consumer that has gone quiet.
#[test]
fn group_consumer_commits_on_sigterm_and_idle_timeout_stops() {
    let broker = Broker::start();
    broker.ok(&["topics", "create", "live", "--partitions", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: String = (0..100).map(|i| format!("k{i}:v{i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    broker.ok(&[
        "produce",
        "live",
        "--file",
        input.to_str().unwrap(),
        "--key-separator",
        ":",
    ]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_busbar"))
        .args([
            "consume", "live", "--group", "watchers", "--from", "earliest",
        ])
        .env("BUSBAR_LOG", "warn")
        .env("BUSBAR_BOOTSTRAP", &broker.addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn consume");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 100 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("100 records within 30 s");
        seen.push(line);
    }
    // While it runs: describe shows the member and what it owns; a reset is refused.
    let described = broker.json(&["groups", "describe", "watchers"]);
    let members = described["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(members[0]["client_id"], "busbar-cli", "{described}");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([{ "topic": "live", "partitions": [0, 1] }])
    );
    assert!(
        described["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["member"] == members[0]["id"])
    );
    let err = fails(
        broker.run(&[
            "groups",
            "reset",
            "watchers",
            "--topic",
            "live",
            "--to-earliest",
            "--execute",
        ]),
        "reset of an active group",
    );
    assert!(
        err.contains("is active") && err.contains("stop its consumers first"),
        "{err}"
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "consume did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    seen.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(seen, want);
    let described = broker.json(&["groups", "describe", "watchers"]);
    assert_eq!(lag(&described), 0, "{described}");
    let committed: i64 = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["committed_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, 100, "{described}");

    let started = Instant::now();
    let out = broker.ok(&[
        "consume",
        "live",
        "--from",
        "earliest",
        "--idle-timeout",
        "1s",
    ]);
    assert_eq!(out.lines().count(), 100);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
