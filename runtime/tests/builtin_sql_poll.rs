//! `builtin:sql-poll` on real PostgreSQL, MariaDB and SQLite: incrementing and timestamp+incrementing cursors
//! across several polls, batches capped by `max`, typed row values, keys, and query mode.

#[path = "common/builtins.rs"]
mod builtins;
mod common;

use builtins::{Db, databases, open_builtin, runtime_with_db, sql_grant, table_name};
use busbar_runtime::Error;
use busbar_runtime::host::{ConnectorTask, Event};
use serde_json::{Value, json};

fn details(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).expect("JSON detail"))
        .collect()
}

fn ids(events: &[Event]) -> Vec<i64> {
    details(events)
        .iter()
        .map(|d| d["id"].as_i64().expect("integer id"))
        .collect()
}

/// Polls once; returns the events and the new cursor.
async fn poll(task: &mut ConnectorTask, cursor: &mut Option<String>, max: u32) -> Vec<Event> {
    let r = task.poll(cursor.as_deref(), max).await.expect("poll");
    *cursor = r.cursor;
    r.events
}

async fn scenario(label: &str, dialect: &str, url: &str) {
    let db = Db::connect(url).await;
    let table = table_name(&format!("sql_poll_{label}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(100), total DOUBLE PRECISION, updated VARCHAR(40) NOT NULL)"
    ))
    .await;
    for (id, name, total) in [
        (1, "'ada'", "10.5"),
        (2, "'grace'", "NULL"),
        (3, "NULL", "3"),
        (4, "'ken'", "4"),
        (5, "'linus'", "5"),
    ] {
        db.exec(&format!(
            "INSERT INTO {table} VALUES ({id}, {name}, {total}, '2026-01-01T00:00:0{id}Z')"
        ))
        .await;
    }
    let rt = runtime_with_db(url);

    // Incrementing: batches of at most 2, in id order, each continuing after the last.
    let mut task = open_builtin(
        &rt,
        "sql-poll",
        json!({ "connection": "db", "dialect": dialect, "table": table, "mode": "incrementing",
                "incrementing-column": "id", "key-column": "name", "detail-type": "order.row", "notify-channel": "orders" }),
        sql_grant(),
    )
    .await;
    let mut cursor = None;
    let first = poll(&mut task, &mut cursor, 2).await;
    assert_eq!(ids(&first), vec![1, 2], "{label}");
    assert_eq!(
        details(&first)[0],
        json!({ "id": 1, "name": "ada", "total": 10.5, "updated": "2026-01-01T00:00:01Z" }),
        "{label}"
    );
    assert_eq!(details(&first)[1]["total"], Value::Null, "{label}");
    assert_eq!(
        (first[0].source.as_str(), first[0].detail_type.as_str()),
        (format!("sql:{table}").as_str(), "order.row")
    );
    assert_eq!(first[0].key.as_deref(), Some(&b"ada"[..]), "{label}");
    assert_eq!(cursor.as_deref(), Some(r#"{"id":2}"#), "{label}");
    assert_eq!(
        ids(&poll(&mut task, &mut cursor, 2).await),
        vec![3, 4],
        "{label}"
    );
    let last = poll(&mut task, &mut cursor, 2).await;
    assert_eq!(ids(&last), vec![5], "{label}");
    assert!(
        poll(&mut task, &mut cursor, 2).await.is_empty(),
        "{label}: nothing new"
    );
    assert_eq!(
        cursor.as_deref(),
        Some(r#"{"id":5}"#),
        "{label}: the cursor stays when nothing is new"
    );
    db.exec(&format!(
        "INSERT INTO {table} VALUES (6, 'new', 6, '2026-01-01T00:00:00Z')"
    ))
    .await;
    assert_eq!(
        ids(&poll(&mut task, &mut cursor, 10).await),
        vec![6],
        "{label}"
    );
    // A restarted connector continues from the stored cursor.
    task.close().await.unwrap();
    let mut task2 = open_builtin(
        &rt,
        "sql-poll",
        json!({ "connection": "db", "dialect": dialect, "table": table, "mode": "incrementing", "incrementing-column": "id" }),
        sql_grant(),
    )
    .await;
    db.exec(&format!(
        "INSERT INTO {table} VALUES (7, 'after restart', 7, '2026-01-01T00:00:09Z')"
    ))
    .await;
    assert_eq!(
        ids(&poll(&mut task2, &mut cursor, 10).await),
        vec![7],
        "{label}"
    );

    // timestamp+incrementing: rows sharing a timestamp are neither skipped nor repeated at a batch boundary, and
    // an updated row comes again.
    db.exec(&format!(
        "UPDATE {table} SET updated = '2026-02-01T00:00:00Z' WHERE id IN (2, 3, 4)"
    ))
    .await;
    let mut ts = open_builtin(
        &rt,
        "sql-poll",
        json!({ "connection": "db", "dialect": dialect, "table": table, "mode": "timestamp+incrementing",
                "timestamp-column": "updated", "incrementing-column": "id" }),
        sql_grant(),
    )
    .await;
    let mut cursor = Some(r#"{"ts":"2026-01-01T00:00:05Z","id":5}"#.to_owned());
    assert_eq!(
        ids(&poll(&mut ts, &mut cursor, 2).await),
        vec![7, 2],
        "{label}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(cursor.as_deref().expect("cursor")).unwrap(),
        json!({ "ts": "2026-02-01T00:00:00Z", "id": 2 }),
        "{label}"
    );
    assert_eq!(
        ids(&poll(&mut ts, &mut cursor, 2).await),
        vec![3, 4],
        "{label}"
    );
    assert!(poll(&mut ts, &mut cursor, 2).await.is_empty(), "{label}");
    db.exec(&format!(
        "UPDATE {table} SET updated = '2026-03-01T00:00:00Z', name = 'ada l.' WHERE id = 1"
    ))
    .await;
    let again = poll(&mut ts, &mut cursor, 2).await;
    assert_eq!(
        details(&again),
        vec![
            json!({ "id": 1, "name": "ada l.", "total": 10.5, "updated": "2026-03-01T00:00:00Z" })
        ]
    );

    // Query mode: the query is wrapped, so it may filter and rename freely.
    let query = format!("SELECT id, name AS customer FROM {table} WHERE total IS NOT NULL");
    let mut q = open_builtin(
        &rt,
        "sql-poll",
        json!({ "connection": "db", "dialect": dialect, "query": query, "mode": "incrementing", "incrementing-column": "id",
                "source": "shop" }),
        sql_grant(),
    )
    .await;
    let mut cursor = None;
    let got = poll(&mut q, &mut cursor, 100).await;
    assert_eq!(ids(&got), vec![1, 3, 4, 5, 6, 7], "{label}");
    assert_eq!(
        details(&got)[1],
        json!({ "id": 3, "customer": null }),
        "{label}"
    );
    assert_eq!(got[0].source, "shop");

    // A cursor column the result lacks is a clear error.
    let mut wrong = open_builtin(
        &rt,
        "sql-poll",
        json!({ "connection": "db", "dialect": dialect, "query": format!("SELECT name FROM {table}"), "mode": "timestamp",
                "timestamp-column": "name" }),
        sql_grant(),
    )
    .await;
    match wrong.poll(None, 10).await {
        Err(Error::Connector {
            message,
            retryable: false,
            ..
        }) => {
            assert!(
                message.contains("NULL") || message.contains("not in the result"),
                "{label}: {message}"
            )
        }
        other => panic!(
            "{label}: expected a fatal connector error, got {:?}",
            other.map(|r| r.events.len())
        ),
    }
    db.exec(&format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn cursors_across_polls_on_every_database() {
    let dir = std::env::temp_dir().join(format!("busbar-builtin-sql-poll-{}", std::process::id()));
    for (label, dialect, url) in databases(&dir) {
        scenario(label, dialect, &url).await;
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn config_is_checked_and_an_unreachable_database_is_retryable() {
    let rt = runtime_with_db("postgres://postgres@127.0.0.1:1/test");
    let connector = builtins::load_builtin(&rt, "sql-poll").await;
    let base = json!({ "connection": "db", "dialect": "postgres", "mode": "incrementing", "incrementing-column": "id" });
    let mut both = base.clone();
    both["table"] = json!("t");
    both["query"] = json!("select 1");
    assert!(
        connector.validate_config(&both).is_err(),
        "table and query together"
    );
    assert!(
        connector.validate_config(&base).is_err(),
        "neither table nor query"
    );
    let mut bad_mode = base.clone();
    bad_mode["table"] = json!("t");
    bad_mode["mode"] = json!("bulk");
    assert!(
        connector
            .validate_config(&bad_mode)
            .unwrap_err()
            .to_string()
            .contains("/mode")
    );

    let mut ok = base.clone();
    ok["table"] = json!("t");
    let mut task = open_builtin(&rt, "sql-poll", ok, sql_grant()).await;
    match task.poll(None, 10).await {
        Err(Error::Connector {
            retryable: true,
            message,
            ..
        }) => assert!(message.contains("unavailable"), "{message}"),
        other => panic!(
            "expected a retryable error, got {:?}",
            other.map(|r| r.events.len())
        ),
    }
}
