//! `builtin:sql` (the SQL target) on real PostgreSQL, MariaDB and SQLite: inserts in one transaction per batch,
//! the record-by-record fallback that still writes the good records, upserts that are idempotent.

#[path = "common/builtins.rs"]
mod builtins;
mod common;

use builtins::{Db, databases, open_builtin, runtime_with_db, sql_grant, table_name};
use busbar_runtime::host::{Event, Outcome};
use serde_json::{Value, json};

fn event(detail: Value) -> Event {
    Event {
        id: "e".into(),
        source: "test".into(),
        detail_type: "order".into(),
        time: String::new(),
        key: None,
        headers: Vec::new(),
        payload: json!({ "detail-type": "order", "detail": detail })
            .to_string()
            .into_bytes(),
    }
}

fn order(id: i64, name: Option<&str>, total: f64) -> Event {
    event(json!({ "id": id, "customer": { "name": name }, "total": total }))
}

async fn scenario(label: &str, dialect: &str, url: &str) {
    let db = Db::connect(url).await;
    let table = table_name(&format!("sql_sink_{label}"));
    db.exec(&format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, total DOUBLE PRECISION)"))
        .await;
    let rt = runtime_with_db(url);
    let columns =
        json!({ "id": "$.detail.id", "name": "/detail/customer/name", "total": "$.detail.total" });
    let mut insert = open_builtin(
        &rt,
        "sql",
        json!({ "connection": "db", "dialect": dialect, "table": table, "columns": columns }),
        sql_grant(),
    )
    .await;

    let outcomes = insert
        .write(&[
            order(1, Some("ada"), 10.5),
            order(2, Some("grace"), 20.0),
            order(3, Some("linus"), 1.0),
        ])
        .await
        .unwrap();
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Ok)),
        "{label}: {outcomes:?}"
    );
    assert_eq!(
        db.rows(&table).await,
        vec![
            (1, Some("ada".into()), Some(10.5)),
            (2, Some("grace".into()), Some(20.0)),
            (3, Some("linus".into()), Some(1.0))
        ]
    );

    // One duplicate key and one NOT NULL violation: the transaction rolls back, then record by record the good
    // ones land and only the bad ones are fatal.
    let outcomes = insert
        .write(&[
            order(4, Some("ken"), 4.0),
            order(1, Some("dup"), 0.0),
            order(5, None, 5.0),
            order(6, Some("barbara"), 6.0),
        ])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], Outcome::Ok), "{label}: {outcomes:?}");
    assert!(
        matches!(&outcomes[1], Outcome::Fatal(m) if m.contains("rejected")),
        "{label}: {outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Outcome::Fatal(_)),
        "{label}: {outcomes:?}"
    );
    assert!(matches!(outcomes[3], Outcome::Ok), "{label}: {outcomes:?}");
    let ids: Vec<i64> = db.rows(&table).await.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 6], "{label}");
    assert_eq!(
        db.rows(&table).await[0].1.as_deref(),
        Some("ada"),
        "{label}: the duplicate did not overwrite"
    );

    // Not JSON: fatal without touching the database.
    let mut raw = order(9, Some("x"), 0.0);
    raw.payload = b"not json".to_vec();
    let outcomes = insert.write(&[raw]).await.unwrap();
    assert!(
        matches!(&outcomes[0], Outcome::Fatal(m) if m.contains("not JSON")),
        "{label}: {outcomes:?}"
    );

    // Upsert: existing rows are updated, new ones inserted; writing the same batch again changes nothing.
    let mut upsert = open_builtin(
        &rt,
        "sql",
        json!({ "connection": "db", "dialect": dialect, "table": table, "columns": columns, "mode": "upsert", "key": ["id"] }),
        sql_grant(),
    )
    .await;
    let batch = [
        order(1, Some("ada lovelace"), 11.0),
        order(7, Some("margaret"), 7.0),
    ];
    for round in 0..2 {
        let outcomes = upsert.write(&batch).await.unwrap();
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Ok)),
            "{label} round {round}: {outcomes:?}"
        );
        let rows = db.rows(&table).await;
        assert_eq!(rows.len(), 6, "{label} round {round}");
        assert_eq!(
            rows[0],
            (1, Some("ada lovelace".into()), Some(11.0)),
            "{label} round {round}"
        );
        assert_eq!(
            rows[5],
            (7, Some("margaret".into()), Some(7.0)),
            "{label} round {round}"
        );
    }
    // An upsert that violates NOT NULL is still fatal for that record alone.
    let outcomes = upsert
        .write(&[order(2, None, 0.0), order(8, Some("edsger"), 8.0)])
        .await
        .unwrap();
    assert!(
        matches!(outcomes[..], [Outcome::Fatal(_), Outcome::Ok]),
        "{label}: {outcomes:?}"
    );
    assert_eq!(db.rows(&table).await.len(), 7, "{label}");

    db.exec(&format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn inserts_upserts_and_isolates_bad_records_on_every_database() {
    let dir = std::env::temp_dir().join(format!("busbar-builtin-sql-{}", std::process::id()));
    for (label, dialect, url) in databases(&dir) {
        scenario(label, dialect, &url).await;
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn config_errors_and_an_unreachable_database() {
    let rt = runtime_with_db("postgres://postgres@127.0.0.1:1/test");
    let connector = builtins::load_builtin(&rt, "sql").await;
    let err = connector
        .validate_config(&json!({ "connection": "db", "dialect": "oracle", "table": "t", "columns": { "a": "$.a" } }))
        .expect_err("bad dialect");
    assert!(err.to_string().contains("/dialect"), "{err}");
    let err = connector
        .validate_config(&json!({ "connection": "db", "dialect": "postgres", "table": "t; drop table x", "columns": { "a": "$.a" } }))
        .expect_err("bad table");
    assert!(err.to_string().contains("/table"), "{err}");
    let err = rt
        .open(
            connector.clone(),
            busbar_runtime::host::OpenOptions {
                name: "s".into(),
                config: json!({ "connection": "db", "dialect": "postgres", "table": "t", "columns": { "a": "$.a" }, "mode": "upsert" }),
                grants: sql_grant(),
                limits: Default::default(),
            },
        )
        .await
        .err()
        .expect("upsert without key");
    assert!(err.to_string().contains("needs `key`"), "{err}");

    let mut task = open_builtin(
        &rt,
        "sql",
        json!({ "connection": "db", "dialect": "postgres", "table": "t", "columns": { "a": "$.a" } }),
        sql_grant(),
    )
    .await;
    let outcomes = task
        .write(&[event(json!({ "a": 1 })), event(json!({ "a": 2 }))])
        .await
        .unwrap();
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::Retryable(m) if m.contains("unavailable")),
            "{outcomes:?}"
        );
    }
}
