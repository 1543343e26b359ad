//! Sandbox tests with purpose-built misbehaving guests (built from source in this test run): ungranted hosts,
//! an endless loop, memory past the cap, a trap restarted with backoff, and a neighbour that keeps working.

mod common;

use std::time::{Duration, Instant};

use busbar_runtime::Error;
use busbar_runtime::host::{FailureKind, Grants, Limits, Outcome, State};
use serde_json::json;

fn fatal_message(outcomes: &[Outcome]) -> &str {
    match &outcomes[0] {
        Outcome::Fatal(m) => m,
        other => panic!("expected a fatal outcome, got {other:?}"),
    }
}

#[tokio::test]
async fn ungranted_state_and_http_are_denied_with_a_clear_error() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let mut task = common::open(&rt, &sink, "nogrants", json!({ "label": "a" }), Grants::default(), Limits::default()).await;
    let out = task.write(&[common::event(b"!state")]).await.expect("write");
    let msg = fatal_message(&out);
    assert!(msg.contains("was not granted `state`"), "{msg}");
    let out = task.write(&[common::event(b"!http http://127.0.0.1:9/x")]).await.expect("write");
    let msg = fatal_message(&out);
    assert!(msg.contains("HTTP request denied"), "{msg}");
    // Denials are errors the guest handles, not failures of the instance.
    assert!(matches!(task.status().state, State::Running));

    let granted = Grants { state: true, ..Grants::default() };
    let mut task = common::open(&rt, &sink, "withstate", json!({ "label": "b" }), granted, Limits::default()).await;
    let out = task.write(&[common::event(b"!state")]).await.expect("write");
    assert!(matches!(out[..], [Outcome::Ok]), "{out:?}");
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_deadline() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let limits = common::fast_limits();
    let mut task = common::open(&rt, &sink, "looper", json!({ "label": "a" }), Grants::default(), limits).await;
    let started = Instant::now();
    let err = task.write(&[common::event(b"!loop")]).await.expect_err("the loop must be stopped");
    let elapsed = started.elapsed();
    match err {
        Error::Failed { failure, .. } => {
            assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
            assert!(failure.message.contains("deadline of 500 ms"), "{failure}");
        }
        other => panic!("expected a timeout failure, got {other}"),
    }
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn allocating_past_the_cap_is_stopped() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let limits = common::fast_limits(); // 32 MiB
    let mut task = common::open(&rt, &sink, "hog", json!({ "label": "a" }), Grants::default(), limits).await;
    // Under the cap: fine.
    let out = task.write(&[common::event(b"!alloc 8388608")]).await.expect("8 MiB fits");
    assert!(matches!(out[..], [Outcome::Ok]));
    let err = task.write(&[common::event(b"!alloc 67108864")]).await.expect_err("64 MiB must not fit");
    match err {
        Error::Failed { failure, .. } => {
            assert_eq!(failure.kind, FailureKind::MemoryLimit, "{failure}");
            assert!(failure.message.contains("memory cap of 33554432 bytes"), "{failure}");
        }
        other => panic!("expected a memory-limit failure, got {other}"),
    }
}

#[tokio::test]
async fn a_trap_is_reported_with_backtrace_and_restarted_with_backoff() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let limits = common::fast_limits(); // backoff 300 ms, doubling
    let mut task = common::open(&rt, &sink, "trapper", json!({ "label": "a" }), Grants::default(), limits).await;

    let err = task.write(&[common::event(b"!trap boom")]).await.expect_err("trap");
    let failure = match err {
        Error::Failed { failure, .. } => failure,
        other => panic!("expected a trap, got {other}"),
    };
    assert_eq!(failure.kind, FailureKind::Trap);
    assert!(failure.message.contains("probe trap: boom"), "panic message from guest stderr: {failure}");
    assert!(failure.message.contains("wasm backtrace"), "guest backtrace: {failure}");
    assert!(failure.message.contains("probe_sink"), "backtrace names the guest's functions: {failure}");

    // Immediately after: backing off, with the reason.
    let err = task.write(&[common::event(b"ok")]).await.expect_err("backing off");
    match &err {
        Error::BackingOff { retry_in_ms, failure, .. } => {
            assert!(*retry_in_ms > 0 && *retry_in_ms <= 300, "{err}");
            assert!(failure.message.contains("probe trap: boom"));
        }
        other => panic!("expected BackingOff, got {other}"),
    }
    let status = task.status();
    assert!(matches!(status.state, State::BackingOff { .. }), "{status:?}");
    assert_eq!(status.consecutive_failures, 1);

    // After the backoff the instance is restarted and works.
    tokio::time::sleep(Duration::from_millis(320)).await;
    let out = task.write(&[common::event(b"ok")]).await.expect("restarted");
    assert!(matches!(out[..], [Outcome::Ok]));
    assert_eq!(task.status().restarts, 1);
    assert!(matches!(task.status().state, State::Running));

    // Two failures in a row: the second backoff is twice the first.
    task.write(&[common::event(b"!trap again")]).await.expect_err("trap");
    tokio::time::sleep(Duration::from_millis(320)).await;
    task.write(&[common::event(b"!trap and again")]).await.expect_err("trap after restart");
    match task.write(&[common::event(b"ok")]).await.expect_err("backing off") {
        Error::BackingOff { retry_in_ms, .. } => assert!(retry_in_ms > 300 && retry_in_ms <= 600, "{retry_in_ms}"),
        other => panic!("expected BackingOff, got {other}"),
    }
    assert_eq!(task.status().consecutive_failures, 2);
    assert_eq!(task.status().restarts, 2);
    // An explicit restart ignores the backoff.
    task.restart().await.expect("restart");
    assert!(task.write(&[common::event(b"ok")]).await.is_ok());
}

/// A neighbour on the same single-threaded executor keeps working while a guest loops until its deadline.
#[tokio::test(flavor = "current_thread")]
async fn misbehaving_guests_do_not_disturb_a_neighbour() {
    let rt = common::runtime();
    let sink = common::load(&rt, "probe-sink").await;
    let limits = Limits { call_timeout_ms: 1_000, ..common::fast_limits() };
    let mut bad = common::open(&rt, &sink, "bad", json!({ "label": "bad" }), Grants::default(), limits.clone()).await;
    let mut good = common::open(&rt, &sink, "good", json!({ "label": "good" }), Grants::default(), limits).await;

    let started = Instant::now();
    let looping = async {
        let err = bad.write(&[common::event(b"!loop")]).await.expect_err("stopped");
        (started.elapsed(), err)
    };
    let neighbour = async {
        let batch: Vec<_> = (0..64).map(|_| common::event(&[b'x'; 1024])).collect();
        let mut batches = 0;
        while started.elapsed() < Duration::from_millis(700) {
            let out = good.write(&batch).await.expect("neighbour write");
            assert_eq!(out.len(), 64);
            batches += 1;
            tokio::task::yield_now().await;
        }
        (started.elapsed(), batches)
    };
    let ((loop_done, err), (neighbour_done, batches)) = tokio::join!(looping, neighbour);
    assert!(matches!(err, Error::Failed { ref failure, .. } if failure.kind == FailureKind::Timeout), "{err}");
    assert!(batches >= 10, "the neighbour made progress while the other guest looped: {batches} batches");
    assert!(neighbour_done < loop_done, "neighbour finished at {neighbour_done:?}, loop stopped at {loop_done:?}");

    // A memory hog and a trap beside it change nothing for the neighbour either.
    bad.restart().await.expect("restart");
    bad.write(&[common::event(b"!alloc 67108864")]).await.expect_err("memory cap");
    tokio::time::sleep(Duration::from_millis(320)).await;
    bad.write(&[common::event(b"!trap x")]).await.expect_err("trap");
    let out = good.write(&[common::event(b"still fine")]).await.expect("neighbour");
    assert!(matches!(out[..], [Outcome::Ok]));
    assert_eq!(good.status().restarts, 0);
    assert_eq!(good.status().consecutive_failures, 0);
}
