//! `builtin:http-poll` against real HTTP servers on 127.0.0.1: ETag, last-id and timestamp cursors across
//! several polls, and how API failures are reported.

#[path = "common/builtins.rs"]
mod builtins;
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use builtins::{Reply, TestServer, open_builtin};
use busbar_runtime::Error;
use busbar_runtime::host::{ConnectorTask, Event};
use serde_json::{Value, json};

fn details(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).expect("JSON detail"))
        .collect()
}

async fn poll(task: &mut ConnectorTask, cursor: &mut Option<String>, max: u32) -> Vec<Event> {
    let r = task.poll(cursor.as_deref(), max).await.expect("poll");
    *cursor = r.cursor;
    r.events
}

#[tokio::test]
async fn etag_cursor_sends_if_none_match_and_304_means_nothing_new() {
    let version = Arc::new(Mutex::new(1));
    let v = version.clone();
    let server = TestServer::start(move |r| {
        let current = *v.lock().unwrap();
        let etag = format!("\"v{current}\"");
        if r.header("if-none-match") == Some(etag.as_str()) {
            return Reply::status(304).header("ETag", &etag);
        }
        let items: Vec<Value> = (1..=current * 2)
            .map(|i| json!({ "id": i, "sku": format!("s-{i}") }))
            .collect();
        Reply::json(200, json!({ "data": { "items": items } })).header("ETag", &etag)
    })
    .await;
    let mut task = open_builtin(
        &builtins::runtime(),
        "http-poll",
        json!({ "url": server.url("/stock"), "items": "/data/items", "key": "/sku", "source": "warehouse",
                "detail-type": "stock.level", "headers": { "Authorization": "Bearer t0k" } }),
        server.grant(),
    )
    .await;
    let mut cursor = None;
    let events = poll(&mut task, &mut cursor, 100).await;
    assert_eq!(
        details(&events),
        vec![
            json!({ "id": 1, "sku": "s-1" }),
            json!({ "id": 2, "sku": "s-2" })
        ]
    );
    assert_eq!(
        (events[0].source.as_str(), events[0].detail_type.as_str()),
        ("warehouse", "stock.level")
    );
    assert_eq!(events[1].key.as_deref(), Some(&b"s-2"[..]));
    assert_eq!(cursor.as_deref(), Some("\"v1\""));
    assert!(
        poll(&mut task, &mut cursor, 100).await.is_empty(),
        "304: nothing new"
    );
    assert_eq!(cursor.as_deref(), Some("\"v1\""));
    *version.lock().unwrap() = 2;
    assert_eq!(poll(&mut task, &mut cursor, 100).await.len(), 4);
    assert_eq!(cursor.as_deref(), Some("\"v2\""));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[0].header("if-none-match"), None);
    assert_eq!(reqs[1].header("if-none-match"), Some("\"v1\""));
    assert!(
        reqs.iter()
            .all(|r| r.header("authorization") == Some("Bearer t0k"))
    );
}

#[tokio::test]
async fn last_id_cursor_fills_the_url_and_returns_only_newer_items_in_order() {
    // The API answers newest first and ignores `after` past id 2, so the connector's own filter is exercised.
    let items = Arc::new(Mutex::new(
        (1..=5)
            .rev()
            .map(|i| json!({ "id": i, "n": i * 10 }))
            .collect::<Vec<_>>(),
    ));
    let list = items.clone();
    let server = TestServer::start(move |r| {
        let after: i64 = r
            .target
            .split("after=")
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = list
            .lock()
            .unwrap()
            .iter()
            .filter(|i| after < 2 || i["id"].as_i64().unwrap() > after)
            .cloned()
            .collect();
        Reply::json(200, Value::Array(page))
    })
    .await;
    let mut task = open_builtin(
        &builtins::runtime(),
        "http-poll",
        json!({ "url": server.url("/events?after={cursor}"), "cursor": "last-id", "cursor-field": "/id", "initial-cursor": "0" }),
        server.grant(),
    )
    .await;
    let mut cursor = None;
    let ns = |events: &[Event]| {
        details(events)
            .iter()
            .map(|d| d["n"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ns(&poll(&mut task, &mut cursor, 2).await), vec![10, 20]);
    assert_eq!(cursor.as_deref(), Some("2"));
    assert_eq!(ns(&poll(&mut task, &mut cursor, 2).await), vec![30, 40]);
    assert_eq!(ns(&poll(&mut task, &mut cursor, 2).await), vec![50]);
    assert!(poll(&mut task, &mut cursor, 2).await.is_empty());
    assert_eq!(cursor.as_deref(), Some("5"));
    items
        .lock()
        .unwrap()
        .insert(0, json!({ "id": 12, "n": 120 }));
    assert_eq!(
        ns(&poll(&mut task, &mut cursor, 2).await),
        vec![120],
        "12 > 5 numerically, not as text"
    );
    let targets: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets[..3],
        ["/events?after=0", "/events?after=2", "/events?after=4"]
    );
}

#[tokio::test]
async fn timestamp_cursor_with_items_pointer() {
    let server = TestServer::start(|_| {
        Reply::json(
            200,
            json!({ "results": [
                { "name": "b", "updated_at": "2026-01-02T00:00:00Z" },
                { "name": "a", "updated_at": "2026-01-01T00:00:00Z" },
                { "name": "c", "updated_at": "2026-01-03T00:00:00Z" } ] }),
        )
    })
    .await;
    let mut task = open_builtin(
        &builtins::runtime(),
        "http-poll",
        json!({ "url": server.url("/changes?since={cursor}"), "cursor": "timestamp", "cursor-field": "/updated_at",
                "items": "/results", "initial-cursor": "2026-01-01T00:00:00Z" }),
        server.grant(),
    )
    .await;
    let mut cursor = None;
    let names = |e: &[Event]| {
        details(e)
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&poll(&mut task, &mut cursor, 10).await),
        vec!["b", "c"],
        "a is not after the initial cursor"
    );
    assert_eq!(cursor.as_deref(), Some("2026-01-03T00:00:00Z"));
    assert!(poll(&mut task, &mut cursor, 10).await.is_empty());
    assert_eq!(
        server.requests()[1].target,
        "/changes?since=2026-01-03T00%3A00%3A00Z"
    );
}

#[tokio::test]
async fn api_failures_are_retryable_or_fatal() {
    let server = TestServer::start(|r| match r.target.as_str() {
        "/busy" => Reply::json(503, json!({ "error": "maintenance" })),
        "/limited" => Reply::status(429),
        "/missing" => Reply::json(404, json!({ "error": "no such feed" })),
        "/slow" => Reply::status(200).delayed(Duration::from_secs(3)),
        "/scalar" => Reply::json(200, json!({ "data": 5 })),
        _ => Reply::status(200),
    })
    .await;
    let rt = builtins::runtime();
    for (path, retryable, contains) in [
        ("/busy", true, "503"),
        ("/limited", true, "429"),
        ("/missing", false, "no such feed"),
        ("/slow", true, "timed out"),
        ("/scalar", false, "not an array"),
    ] {
        let items = if path == "/scalar" { "/data" } else { "" };
        let mut task = open_builtin(
            &rt,
            "http-poll",
            json!({ "url": server.url(path), "timeout-ms": 300, "items": items }),
            server.grant(),
        )
        .await;
        match task.poll(None, 10).await {
            Err(Error::Connector {
                message,
                retryable: r,
                ..
            }) => {
                assert_eq!(r, retryable, "{path}: {message}");
                assert!(message.contains(contains), "{path}: {message}");
            }
            other => panic!(
                "{path}: expected a connector error, got {:?}",
                other.map(|r| r.events.len())
            ),
        }
    }
    let connector = builtins::load_builtin(&rt, "http-poll").await;
    let err = rt
        .open(
            connector,
            busbar_runtime::host::OpenOptions {
                name: "p".into(),
                config: json!({ "url": server.url("/x"), "cursor": "last-id" }),
                grants: server.grant(),
                limits: Default::default(),
            },
        )
        .await
        .err()
        .expect("last-id without cursor-field");
    assert!(err.to_string().contains("cursor-field"), "{err}");
}
