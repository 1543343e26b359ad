//! `builtin:http` (the HTTP target) against real HTTP servers on 127.0.0.1: templates, auth, outcomes,
//! Retry-After, OAuth token caching and refresh, rate limiting and timeouts.

#[path = "common/builtins.rs"]
mod builtins;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use builtins::{Received, Reply, TestServer, open_builtin};
use busbar_runtime::host::{ConnectorTask, Event, Grants, Outcome};
use serde_json::{Value, json};

fn event(payload: Value) -> Event {
    Event {
        id: "ev-1".into(),
        source: "shop".into(),
        detail_type: "order.created".into(),
        time: "2026-01-01T00:00:00Z".into(),
        key: None,
        headers: Vec::new(),
        payload: payload.to_string().into_bytes(),
    }
}

async fn sink(config: Value, grants: Grants) -> ConnectorTask {
    open_builtin(&builtins::runtime(), "http", config, grants).await
}

fn retryable(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Retryable(m) => m,
        other => panic!("expected retryable, got {other:?}"),
    }
}

fn fatal(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Fatal(m) => m,
        other => panic!("expected fatal, got {other:?}"),
    }
}

#[tokio::test]
async fn fills_url_method_and_header_templates_and_sends_the_payload() {
    let server = TestServer::start(|_| Reply::status(200)).await;
    let mut task = sink(
        json!({
            "url": server.url("/orders/{$.detail.id}?from={$.source}&literal={{x}}"),
            "method": "{$.detail.verb}",
            "headers": { "X-Order": "{$.detail.id}", "X-Event": "{$.id}", "X-Static": "yes" },
            "auth": { "type": "basic", "username": "ada", "password": "s3cret" }
        }),
        server.grant(),
    )
    .await;
    let e =
        event(json!({ "source": "shop", "detail": { "id": "a b/7", "verb": "PUT", "total": 3 } }));
    let outcomes = task.write(std::slice::from_ref(&e)).await.expect("write");
    assert!(matches!(outcomes[..], [Outcome::Ok]), "{outcomes:?}");
    let got = server.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.target, "/orders/a%20b%2F7?from=shop&literal={x}");
    assert_eq!(r.header("x-order"), Some("a b/7"));
    assert_eq!(
        r.header("x-event"),
        Some("ev-1"),
        "$.id falls back to the envelope field"
    );
    assert_eq!(r.header("x-static"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Basic YWRhOnMzY3JldA=="));
    assert_eq!(r.body, e.payload);

    // A placeholder that finds nothing is the record's fatal error; nothing is sent.
    let outcomes = task
        .write(&[event(json!({ "detail": { "verb": "POST" } }))])
        .await
        .expect("write");
    assert!(
        fatal(&outcomes[0]).contains("$.detail.id finds no value"),
        "{outcomes:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn outcomes_follow_the_status_and_carry_retry_after() {
    let server = TestServer::start(|r| match r.target.as_str() {
        "/ok" => Reply::status(204),
        "/busy" => Reply::status(503).header("Retry-After", "7"),
        "/slow-down" => Reply::json(429, json!({ "error": "rate" }))
            .header("Retry-After", "Fri, 01 Jan 2100 00:00:00 GMT"),
        "/oops" => Reply::status(500),
        "/bad" => Reply::json(400, json!({ "error": "missing field total" })),
        "/gone" => Reply::status(404),
        _ => Reply::status(418),
    })
    .await;
    let rt = builtins::runtime();
    let connector = builtins::load_builtin(&rt, "http").await;
    let err = connector
        .validate_config(&json!({ "url": "http://x/", "api-key-unused": 1 }))
        .expect_err("unknown");
    assert!(err.to_string().contains("api-key-unused"), "{err}");
    let mut task = open_builtin(
        &rt,
        "http",
        json!({ "url": server.url("/{$.detail.to}"), "auth": { "type": "api-key", "header": "X-Api-Key", "value": "k-1" } }),
        server.grant(),
    )
    .await;
    // One key each: a failure holds back only later events of its own key.
    let batch: Vec<Event> = ["ok", "busy", "slow-down", "oops", "bad", "gone"]
        .iter()
        .map(|to| Event {
            key: Some(to.as_bytes().to_vec()),
            ..event(json!({ "detail": { "to": to } }))
        })
        .collect();
    let outcomes = task.write(&batch).await.expect("write");
    assert!(matches!(outcomes[0], Outcome::Ok), "{outcomes:?}");
    assert!(
        retryable(&outcomes[1]).contains("retry-after=7s"),
        "{outcomes:?}"
    );
    let secs: u64 = retryable(&outcomes[2])
        .split("retry-after=")
        .nth(1)
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .expect("retry-after from an HTTP date");
    assert!(secs > 365 * 86_400, "{secs}");
    assert!(retryable(&outcomes[3]).contains("500"));
    assert!(!retryable(&outcomes[3]).contains("retry-after"));
    assert!(
        fatal(&outcomes[4]).contains("400") && fatal(&outcomes[4]).contains("missing field total"),
        "{outcomes:?}"
    );
    assert!(fatal(&outcomes[5]).contains("404"));
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.header("x-api-key") == Some("k-1"))
    );

    // Connection refused: retryable. A host that is not granted: fatal, and nothing leaves.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut down = sink(
        json!({ "url": format!("http://127.0.0.1:{closed_port}/x") }),
        Grants {
            http: vec![format!("127.0.0.1:{closed_port}")],
            ..Grants::default()
        },
    )
    .await;
    let outcomes = down.write(&[event(json!({}))]).await.expect("write");
    assert!(
        retryable(&outcomes[0]).contains("127.0.0.1"),
        "{outcomes:?}"
    );
    let mut denied = sink(json!({ "url": server.url("/ok") }), Grants::default()).await;
    let before = server.requests().len();
    let outcomes = denied.write(&[event(json!({}))]).await.expect("write");
    assert!(fatal(&outcomes[0]).contains("denied"), "{outcomes:?}");
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn oauth_tokens_are_cached_and_refreshed_on_401_and_expiry() {
    let issued = Arc::new(AtomicUsize::new(0));
    let valid = Arc::new(AtomicUsize::new(0));
    let (issued2, valid2) = (issued.clone(), valid.clone());
    let lifetime = Arc::new(AtomicUsize::new(3600));
    let lifetime2 = lifetime.clone();
    let server = TestServer::start(move |r| {
        if r.target == "/token" {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            // client-id "app", client-secret "p@ss" as HTTP Basic of the form-encoded values.
            if r.header("authorization") != Some("Basic YXBwOnAlNDBzcw==")
                || !body.contains("grant_type=client_credentials")
                || !body.contains("scope=orders%3Awrite")
                || !body.contains("audience=api")
            {
                return Reply::json(401, json!({ "error": "invalid_client", "got": body }));
            }
            let n = issued2.fetch_add(1, Ordering::SeqCst) + 1;
            valid2.store(n, Ordering::SeqCst);
            return Reply::json(
                200,
                json!({ "access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": lifetime2.load(Ordering::SeqCst) }),
            );
        }
        let want = format!("Bearer tok-{}", valid2.load(Ordering::SeqCst));
        if r.header("authorization") == Some(want.as_str()) { Reply::status(200) } else { Reply::status(401) }
    })
    .await;
    let mut task = sink(
        json!({ "url": server.url("/api"), "auth": {
            "type": "oauth-client-credentials", "token-url": server.url("/token"),
            "client-id": "app", "client-secret": "p@ss", "scope": "orders:write", "params": { "audience": "api" } } }),
        server.grant(),
    )
    .await;
    let outcomes = task
        .write(&[event(json!({ "n": 1 })), event(json!({ "n": 2 }))])
        .await
        .expect("write");
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Ok)),
        "{outcomes:?}"
    );
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token for both records"
    );

    // The endpoint revokes the token (it now only accepts a newer one): a 401 fetches a new token and retries.
    valid.store(99, Ordering::SeqCst);
    let outcomes = task
        .write(&[event(json!({ "n": 3 }))])
        .await
        .expect("write");
    assert!(matches!(outcomes[..], [Outcome::Ok]), "{outcomes:?}");
    assert_eq!(issued.load(Ordering::SeqCst), 2);

    // Short-lived tokens are fetched again once expired, without a 401 first.
    lifetime.store(1, Ordering::SeqCst);
    valid.store(0, Ordering::SeqCst);
    task.write(&[event(json!({ "n": 4 }))])
        .await
        .expect("write"); // 401 -> token 3 (lifetime 1 s)
    assert_eq!(issued.load(Ordering::SeqCst), 3);
    let api_calls = |s: &TestServer| s.requests().iter().filter(|r| r.target == "/api").count();
    let calls_before = api_calls(&server);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let outcomes = task
        .write(&[event(json!({ "n": 5 }))])
        .await
        .expect("write");
    assert!(matches!(outcomes[..], [Outcome::Ok]), "{outcomes:?}");
    assert_eq!(issued.load(Ordering::SeqCst), 4, "expired token replaced");
    assert_eq!(
        api_calls(&server) - calls_before,
        1,
        "no 401 round trip for an expired token"
    );

    // Wrong credentials: the token endpoint's 401 is fatal and says so.
    let mut bad = sink(
        json!({ "url": server.url("/api"), "auth": {
            "type": "oauth-client-credentials", "token-url": server.url("/token"),
            "client-id": "app", "client-secret": "wrong", "client-auth": "body" } }),
        server.grant(),
    )
    .await;
    let outcomes = bad.write(&[event(json!({}))]).await.expect("write");
    assert!(
        fatal(&outcomes[0]).contains("OAuth token request"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn rate_limit_paces_requests() {
    let server = TestServer::start(|_| Reply::status(200)).await;
    let mut task = sink(
        json!({ "url": server.url("/"), "rate-limit": 20 }),
        server.grant(),
    )
    .await;
    let batch: Vec<Event> = (0..8).map(|i| event(json!({ "i": i }))).collect();
    let start = Instant::now();
    let outcomes = task.write(&batch).await.expect("write");
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok)));
    assert!(
        start.elapsed() >= Duration::from_millis(340),
        "8 requests at 20/s take at least 7 gaps of 50 ms"
    );
    let got = server.requests();
    let spread = got[7].at.duration_since(got[0].at);
    assert!(
        spread >= Duration::from_millis(300),
        "8 paced requests arrived within {spread:?}"
    );

    // A batch that cannot finish within the call budget answers the rest retryable without sending them.
    let mut tight = sink(
        json!({ "url": server.url("/"), "rate-limit": 5, "call-budget-ms": 500 }),
        server.grant(),
    )
    .await;
    let before = server.requests().len();
    let outcomes = tight.write(&batch).await.expect("write");
    let sent = outcomes.iter().filter(|o| matches!(o, Outcome::Ok)).count();
    assert!((2..=4).contains(&sent), "{outcomes:?}");
    assert!(retryable(outcomes.last().unwrap()).contains("call-budget-ms"));
    assert_eq!(server.requests().len() - before, sent);
}

#[tokio::test]
async fn a_slow_endpoint_times_out_retryably() {
    let server = TestServer::start(|_| Reply::status(200).delayed(Duration::from_secs(3))).await;
    let mut task = sink(
        json!({ "url": server.url("/slow"), "timeout-ms": 300 }),
        server.grant(),
    )
    .await;
    let start = Instant::now();
    let outcomes = task.write(&[event(json!({}))]).await.expect("write");
    assert!(
        retryable(&outcomes[0]).contains("timed out"),
        "{outcomes:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn bad_templates_are_rejected_at_open() {
    let rt = builtins::runtime();
    let connector = builtins::load_builtin(&rt, "http").await;
    for (config, want) in [
        (json!({ "url": "http://h/{detail.id}" }), "starts with `$`"),
        (json!({ "url": "http://h/{$.a" }), "unclosed"),
        (
            json!({ "url": "http://h/", "headers": { "X": "a}b" } }),
            "unmatched",
        ),
        (json!({ "url": "http://h/", "concurrency": 0 }), "concurrency"),
    ] {
        let err = rt
            .open(
                connector.clone(),
                busbar_runtime::host::OpenOptions {
                    name: "t".into(),
                    config: config.clone(),
                    grants: Grants::default(),
                    limits: Default::default(),
                },
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{config} should be rejected"));
        assert!(err.to_string().contains(want), "{config}: {err}");
    }
}

/// The most requests whose arrivals fall within `window` of each other: with a fixed reply delay of `window`
/// or more, how many were in flight at once.
fn most_at_once(arrivals: &[Instant], window: Duration) -> usize {
    let mut sorted = arrivals.to_vec();
    sorted.sort();
    (0..sorted.len())
        .map(|i| {
            sorted[i..]
                .iter()
                .take_while(|t| t.duration_since(sorted[i]) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn keyed(key: &str, seq: usize) -> Event {
    Event {
        id: format!("{key}-{seq}"),
        key: Some(key.as_bytes().to_vec()),
        ..event(json!({ "key": key, "seq": seq }))
    }
}

#[tokio::test]
async fn requests_go_out_concurrently_up_to_the_limit() {
    let server = TestServer::start(|_| Reply::status(200).delayed(Duration::from_millis(150))).await;
    let mut task = sink(
        json!({ "url": server.url("/"), "concurrency": 4 }),
        server.grant(),
    )
    .await;
    let batch: Vec<Event> = (0..12).map(|i| keyed(&format!("k{i}"), 0)).collect();
    let outcomes = task.write(&batch).await.expect("write");
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok)), "{outcomes:?}");
    let arrivals: Vec<Instant> = server.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 12);
    assert_eq!(
        most_at_once(&arrivals, Duration::from_millis(140)),
        4,
        "events of twelve keys go out four at a time with concurrency 4"
    );

    // Events without a key are one group: one at a time, in order.
    let before = server.requests().len();
    let batch: Vec<Event> = (0..4).map(|i| event(json!({ "i": i }))).collect();
    let outcomes = task.write(&batch).await.expect("write");
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ok)), "{outcomes:?}");
    let got = server.requests();
    let keyless = &got[before..];
    let order: Vec<u64> = keyless.iter().map(|r| r.json()["i"].as_u64().unwrap()).collect();
    assert_eq!(order, vec![0, 1, 2, 3]);
    let arrivals: Vec<Instant> = keyless.iter().map(|r| r.at).collect();
    assert_eq!(most_at_once(&arrivals, Duration::from_millis(140)), 1);
}

#[tokio::test]
async fn events_of_one_key_go_one_after_another_and_stop_at_a_failure() {
    // k1's third event fails once; everything else is accepted after 100 ms.
    let server = TestServer::start(|r| {
        let body = r.json();
        if body["key"] == "k1" && body["seq"] == 2 {
            Reply::status(503)
        } else {
            Reply::status(200).delayed(Duration::from_millis(100))
        }
    })
    .await;
    let mut task = sink(json!({ "url": server.url("/") }), server.grant()).await;
    // Four keys, interleaved, five events each.
    let batch: Vec<Event> = (0..5)
        .flat_map(|seq| ["k0", "k1", "k2", "k3"].map(|k| keyed(k, seq)))
        .collect();
    let outcomes = task.write(&batch).await.expect("write");
    for (event, outcome) in batch.iter().zip(&outcomes) {
        let seq: usize = event.id.rsplit('-').next().unwrap().parse().unwrap();
        match (event.key.as_deref(), seq) {
            (Some(b"k1"), 2) => assert!(retryable(outcome).contains("503"), "{outcome:?}"),
            (Some(b"k1"), 3..) => assert!(
                retryable(outcome).contains("same key"),
                "{}: {outcome:?}",
                event.id
            ),
            _ => assert!(matches!(outcome, Outcome::Ok), "{}: {outcome:?}", event.id),
        }
    }
    let got = server.requests();
    // Nothing after k1's failure was sent; 5 + 5 + 5 + 3 requests.
    assert_eq!(got.len(), 18);
    for key in ["k0", "k1", "k2", "k3"] {
        let seen: Vec<&Received> = got.iter().filter(|r| r.json()["key"] == key).collect();
        let seqs: Vec<u64> = seen.iter().map(|r| r.json()["seq"].as_u64().unwrap()).collect();
        let want: Vec<u64> = if key == "k1" { vec![0, 1, 2] } else { vec![0, 1, 2, 3, 4] };
        assert_eq!(seqs, want, "{key} arrives in order");
        for pair in seen.windows(2) {
            assert!(
                pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(90),
                "{key}: the next event left before the previous one was answered"
            );
        }
    }
    // Different keys overlap.
    let arrivals: Vec<Instant> = got.iter().map(|r| r.at).collect();
    assert!(most_at_once(&arrivals, Duration::from_millis(90)) >= 3);
}

#[tokio::test]
async fn bodies_larger_than_the_hosts_buffer_are_sent_whole() {
    let server = TestServer::start(|_| Reply::status(200)).await;
    let mut task = sink(json!({ "url": server.url("/big") }), server.grant()).await;
    let big = event(json!({ "blob": "b".repeat(200_000) }));
    let outcomes = task
        .write(std::slice::from_ref(&big))
        .await
        .expect("write");
    assert!(matches!(outcomes[..], [Outcome::Ok]), "{outcomes:?}");
    assert_eq!(server.requests()[0].body, big.payload);
}

#[tokio::test]
async fn headers_the_host_sets_and_oversized_answers_are_refused_with_the_reason() {
    // `Host` and hop-by-hop headers belong to the host's HTTP client: a config that sets one can never be sent.
    let server = TestServer::start(|_| Reply::status(200)).await;
    let mut task = sink(
        json!({ "url": server.url("/h"), "headers": { "Host": "elsewhere.example" } }),
        server.grant(),
    )
    .await;
    let outcomes = task.write(&[event(json!({}))]).await.expect("write");
    let message = fatal(&outcomes[0]);
    assert!(message.contains("\"host\"") && message.contains("set by the host"), "{message}");
    assert!(server.requests().is_empty(), "nothing was sent");

    // A response body past 16 MiB is not read into memory: the status is what counts.
    let huge = TestServer::start(|r| Reply {
        status: if r.target == "/ok" { 200 } else { 500 },
        headers: Vec::new(),
        body: vec![b'x'; (16 << 20) + 1],
        delay: Duration::ZERO,
    })
    .await;
    let mut task = sink(json!({ "url": huge.url("/{$.detail.path}") }), huge.grant()).await;
    let outcomes =
        task.write(&[event(json!({ "detail": { "path": "ok" } })), event(json!({ "detail": { "path": "no" } }))]).await.expect("write");
    assert!(matches!(outcomes[0], Outcome::Ok), "{outcomes:?}");
    assert!(retryable(&outcomes[1]).contains("answered 500: xxx"), "{outcomes:?}");
    assert_eq!(huge.requests().len(), 2);
}
