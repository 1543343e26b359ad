//! Helpers shared by the runtime's integration tests: a runtime, the test guests (built from source by
//! busbar-connectors' build script during this test run), events, and service discovery.

#![allow(dead_code)]

use std::sync::Arc;

use busbar_runtime::host::{
    Connector, ConnectorRef, ConnectorTask, Event, Grants, Limits, OpenOptions, Runtime, RuntimeConfig,
};

pub fn runtime() -> Runtime {
    runtime_with(RuntimeConfig::default())
}

pub fn runtime_with(config: RuntimeConfig) -> Runtime {
    Runtime::new(config).expect("runtime")
}

pub fn guest(name: &str) -> ConnectorRef {
    let path = busbar_connectors::test_guest(name).unwrap_or_else(|| panic!("no test guest named {name}"));
    ConnectorRef::Path(path.into())
}

pub async fn load(rt: &Runtime, name: &str) -> Arc<Connector> {
    rt.load(&guest(name)).await.unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub async fn open(
    rt: &Runtime,
    connector: &Arc<Connector>,
    name: &str,
    config: serde_json::Value,
    grants: Grants,
    limits: Limits,
) -> ConnectorTask {
    rt.open(connector.clone(), OpenOptions { name: name.into(), config, grants, limits })
        .await
        .unwrap_or_else(|e| panic!("opening {name}: {e}"))
}

pub fn event(payload: &[u8]) -> Event {
    Event {
        id: String::new(),
        source: "test".into(),
        detail_type: "test".into(),
        time: String::new(),
        key: None,
        headers: Vec::new(),
        payload: payload.to_vec(),
    }
}

/// Limits with short deadlines and backoff so the sandbox tests run fast.
pub fn fast_limits() -> Limits {
    Limits { memory_bytes: 32 << 20, call_timeout_ms: 500, backoff_initial_ms: 300, backoff_max_ms: 5_000 }
}

/// Whether a TCP service answers at `addr`. When it does not, the test is skipped with a message, unless
/// BUSBAR_REQUIRE_SERVICES=1, in which case it fails.
pub fn service_available(what: &str, addr: &str) -> bool {
    let ok = std::net::TcpStream::connect_timeout(&addr.parse().expect("address"), std::time::Duration::from_secs(2))
        .is_ok();
    if !ok {
        if std::env::var("BUSBAR_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{what} is required (BUSBAR_REQUIRE_SERVICES=1) but nothing answers at {addr}");
        }
        eprintln!("skipping: {what} is not reachable at {addr} (set BUSBAR_REQUIRE_SERVICES=1 to make this fail)");
    }
    ok
}
