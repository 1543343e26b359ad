//! The `sql` capability against real PostgreSQL, MariaDB and SQLite, through a guest built in this test run.

mod common;

use std::collections::HashMap;

use busbar_runtime::Error;
use busbar_runtime::host::{ConnectorTask, Grants, Limits, RuntimeConfig};
use serde_json::{Value, json};

async fn source_with(name: &str, url: String, granted: &[&str]) -> ConnectorTask {
    let mut connections = HashMap::new();
    connections.insert(name.to_owned(), url);
    connections.insert("other".to_owned(), "sqlite::memory:".to_owned());
    let rt = common::runtime_with(RuntimeConfig { connections, ..RuntimeConfig::default() });
    let source = common::load(&rt, "probe-source").await;
    let grants = Grants { sql: granted.iter().map(|s| s.to_string()).collect(), ..Grants::default() };
    common::open(&rt, &source, "sql-probe", json!({}), grants, Limits::default()).await
}

async fn run(task: &mut ConnectorTask, command: &str) -> Result<Value, Error> {
    let r = task.poll(Some(command), 10).await?;
    Ok(serde_json::from_slice(&r.events[0].payload).expect("probe returns JSON"))
}

/// The same scenario on every database: create, insert in a transaction, read typed rows, roll back a failing
/// transaction, bind parameters of every type, and refuse an ungranted connection.
async fn scenario(db: &str, url: String, param_sql: &str) {
    let mut task = source_with(db, url, &[db]).await;
    let table = format!("busbar_sql_test_{}_{}", db, std::process::id());
    run(&mut task, &format!("sql-tx {db} drop table if exists {table}")).await.expect("drop");
    let created = run(
        &mut task,
        &format!(
            "sql-tx {db} create table {table} (id integer primary key, name varchar(50), score double precision);\
             insert into {table} values (1, 'ada', 1.5);\
             insert into {table} values (2, 'grace', 2.25)"
        ),
    )
    .await
    .expect("create and insert");
    assert_eq!(created["affected"][1], json!(1));
    assert_eq!(created["affected"][2], json!(1));

    let rows = run(&mut task, &format!("sql {db} select id, name, score from {table} order by id")).await.expect("select");
    assert_eq!(rows["rows"], json!([[1, "ada", 1.5], [2, "grace", 2.25]]));

    // The second insert violates the primary key: the whole transaction rolls back.
    let err = run(
        &mut task,
        &format!("sql-tx {db} insert into {table} values (3, 'x', 0);insert into {table} values (1, 'dup', 0)"),
    )
    .await
    .expect_err("duplicate key");
    match err {
        Error::Connector { message, retryable, .. } => {
            assert!(message.contains("Query"), "{message}");
            assert!(!retryable);
        }
        other => panic!("expected a connector error, got {other}"),
    }
    let rows = run(&mut task, &format!("sql {db} select count(*) from {table}")).await.expect("count");
    assert_eq!(rows["rows"], json!([[2]]), "rolled back");

    let rows = run(&mut task, &format!("sql-param {db} {param_sql}")).await.expect("params");
    let row = &rows["rows"][0];
    assert_eq!(row[0], json!(42));
    assert_eq!(row[1], json!("hé"));
    assert_eq!(row[2], json!(1.5));
    assert!(row[3] == json!(true) || row[3] == json!(1), "{row}");
    assert_eq!(row[4], Value::Null);
    assert_eq!(row[5], json!({ "bytes": [0, 255] }));

    // A configured but ungranted connection, and an unknown one.
    let err = run(&mut task, "sql other select 1").await.expect_err("not granted");
    assert!(err.to_string().contains("was not granted the SQL connection \\\"other\\\""), "{err}");
    run(&mut task, &format!("sql-tx {db} drop table {table}")).await.expect("drop");
}

#[tokio::test]
async fn sql_on_postgres() {
    if !common::service_available("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let user = std::env::var("BUSBAR_PG_USER").unwrap_or_else(|_| "postgres".into());
    scenario(
        "pg",
        format!("postgres://{user}@127.0.0.1:5432/test"),
        "select $1::int8, $2::text, $3::float8, $4::bool, $5::text, $6::bytea",
    )
    .await;
}

#[tokio::test]
async fn sql_on_mariadb() {
    if !common::service_available("MariaDB", "127.0.0.1:3306") {
        return;
    }
    scenario("maria", "mysql://root@127.0.0.1:3306/test".into(), "select ?, ?, ?, ?, ?, ?").await;
}

#[tokio::test]
async fn sql_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("busbar-sql-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
    scenario("lite", url, "select ?, ?, ?, ?, ?, ?").await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_grant_for_an_unconfigured_connection_is_rejected_at_open() {
    let rt = common::runtime();
    let source = common::load(&rt, "probe-source").await;
    let grants = Grants { sql: vec!["nowhere".into()], ..Grants::default() };
    let err = rt
        .open(source, busbar_runtime::host::OpenOptions { name: "x".into(), config: json!({}), grants, limits: Limits::default() })
        .await
        .err()
        .expect("unknown connection");
    assert!(matches!(err, Error::UnknownConnection { .. }), "{err}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_retryable_error() {
    let mut task = source_with("down", "postgres://postgres@127.0.0.1:1/test".into(), &["down"]).await;
    match run(&mut task, "sql down select 1").await.expect_err("unreachable") {
        Error::Connector { retryable, message, .. } => {
            assert!(retryable, "{message}");
            assert!(message.contains("Unavailable"), "{message}");
        }
        other => panic!("expected a connector error, got {other}"),
    }
}
