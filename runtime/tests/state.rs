//! The `state` capability: per-connector key-value storage, in memory and in a SQLite file that survives a
//! restart of the runtime; connectors never see each other's keys.

mod common;

use std::sync::Arc;

use busbar_runtime::host::{Grants, Limits, RuntimeConfig, SqliteStateStore, StateStore};
use serde_json::{Value, json};

async fn poll_json(task: &mut busbar_runtime::host::ConnectorTask, command: &str) -> Value {
    let r = task.poll(Some(command), 1).await.unwrap_or_else(|e| panic!("{command}: {e}"));
    serde_json::from_slice(&r.events[0].payload).unwrap()
}

#[tokio::test]
async fn state_is_private_per_connector_and_survives_a_restart_when_file_backed() {
    let dir = std::env::temp_dir().join(format!("busbar-state-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("state.db");
    let grants = Grants { state: true, ..Grants::default() };
    {
        let store: Arc<dyn StateStore> = Arc::new(SqliteStateStore::open(&db).await.unwrap());
        let rt = common::runtime_with(RuntimeConfig { state: Some(store), ..RuntimeConfig::default() });
        let source = common::load(&rt, "probe-source").await;
        let mut a = common::open(&rt, &source, "a", json!({}), grants.clone(), Limits::default()).await;
        let mut b = common::open(&rt, &source, "b", json!({}), grants.clone(), Limits::default()).await;
        assert_eq!(poll_json(&mut a, "state-set cursor 41").await, json!({ "ok": true }));
        assert_eq!(poll_json(&mut a, "state-get cursor").await, json!({ "value": "41" }));
        assert_eq!(poll_json(&mut b, "state-get cursor").await, json!({ "value": null }), "b cannot see a's keys");
    }
    // A new runtime (a restart of busbar) on the same file.
    let store: Arc<dyn StateStore> = Arc::new(SqliteStateStore::open(&db).await.unwrap());
    let rt = common::runtime_with(RuntimeConfig { state: Some(store), ..RuntimeConfig::default() });
    let source = common::load(&rt, "probe-source").await;
    let mut a = common::open(&rt, &source, "a", json!({}), grants, Limits::default()).await;
    assert_eq!(poll_json(&mut a, "state-get cursor").await, json!({ "value": "41" }));
    std::fs::remove_dir_all(&dir).ok();
}
