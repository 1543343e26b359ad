//! A Rust sink built from source in this test run, driven through the host: describe, config validation,
//! open, write, close; and the built-ins.

mod common;

use busbar_runtime::Error;
use busbar_runtime::host::{Grants, Kind, Limits, OpenOptions, Outcome, Runtime, State};
use serde_json::json;

#[tokio::test]
async fn probe_sink_describes_itself() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let d = sink.description();
    assert_eq!(d.name, "probe-sink");
    assert_eq!(d.kind, Kind::Sink);
    assert_eq!(sink.world(), "sink");
    assert_eq!(sink.config_schema()["required"], json!(["label"]));
}

#[tokio::test]
async fn bad_config_is_rejected_with_its_path_before_open() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let options = |config| OpenOptions { name: "s".into(), config, grants: Grants::default(), limits: Limits::default() };
    let err = rt.open(sink.clone(), options(json!({ "label": 7 }))).await.err().expect("must be rejected");
    match &err {
        Error::ConfigRejected { path, message, .. } => {
            assert_eq!(path, "/label");
            assert!(message.contains("string"), "{message}");
        }
        other => panic!("expected ConfigRejected, got {other}"),
    }
    let err = rt.open(sink.clone(), options(json!({ "label": "x", "extra": 1 }))).await.err().expect("rejected");
    assert!(matches!(err, Error::ConfigRejected { .. }), "{err}");
    // Valid per the schema, refused by the connector's own open().
    let err = rt.open(sink, options(json!({ "label": "reject" }))).await.err().expect("open refuses");
    match err {
        Error::OpenFailed { message, .. } => assert!(message.contains("refused by the probe"), "{message}"),
        other => panic!("expected OpenFailed, got {other}"),
    }
}

#[tokio::test]
async fn writes_return_one_outcome_per_record_in_order() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let mut task =
        common::open(&rt, &sink, "probe", json!({ "label": "a" }), Grants::default(), Limits::default()).await;
    let batch: Vec<_> = [&b"plain"[..], b"!retry", b"{\"json\":1}", b"!fatal"].iter().map(|p| common::event(p)).collect();
    let outcomes = task.write(&batch).await.expect("write");
    assert_eq!(outcomes.len(), 4);
    assert!(matches!(outcomes[0], Outcome::Ok));
    assert!(matches!(&outcomes[1], Outcome::Retryable(m) if m == "asked to retry"));
    assert!(matches!(outcomes[2], Outcome::Ok));
    assert!(matches!(&outcomes[3], Outcome::Fatal(m) if m == "asked to fail"));
    // The same instance serves many calls.
    for _ in 0..100 {
        task.write(&batch[..1]).await.expect("write");
    }
    assert!(matches!(task.status().state, State::Running));
    assert_eq!(task.status().restarts, 0);
    task.close().await.expect("close");
    assert!(matches!(task.status().state, State::Closed));
    assert!(task.write(&batch[..1]).await.is_err(), "a closed task refuses writes");
}

#[tokio::test]
async fn builtins_load_and_describe() {
    let rt = common::runtime();
    let names = Runtime::builtin_names();
    assert!(names.contains(&"log"), "{names:?}");
    for connector in rt.builtins().await.expect("builtins") {
        let d = connector.description();
        assert!(!d.name.is_empty() && !d.version.is_empty() && !d.summary.is_empty());
    }
    let log = rt.load(&"builtin:log".parse().unwrap()).await.expect("builtin:log");
    let mut task = common::open(&rt, &log, "debug-log", json!({ "level": "debug" }), Grants::default(), Limits::default()).await;
    let outcomes = task.write(&[common::event(b"{\"hello\":1}")]).await.expect("write");
    assert!(matches!(outcomes[..], [Outcome::Ok]));
    let err = rt.load(&"builtin:nope".parse().unwrap()).await.err().expect("unknown builtin");
    assert!(err.to_string().contains("built-ins are: "), "{err}");
}

#[tokio::test]
async fn a_source_cannot_be_written_and_a_sink_cannot_be_polled() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let mut task = common::open(&rt, &sink, "s", json!({ "label": "a" }), Grants::default(), Limits::default()).await;
    let err = task.poll(None, 1).await.expect_err("sinks are not polled");
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
    let source = common::load(&rt, "probe-source").await;
    let mut task = common::open(&rt, &source, "p", json!({}), Grants::default(), Limits::default()).await;
    let result = task.poll(Some("count 5"), 3).await.expect("poll");
    assert_eq!(result.events.len(), 3);
    assert_eq!(result.cursor.as_deref(), Some("count 2"));
    let err = task.write(&[common::event(b"x")]).await.expect_err("sources are not written");
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
}
