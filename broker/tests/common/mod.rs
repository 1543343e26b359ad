//! Shared helpers for the broker's integration tests: temporary data directories, an in-process broker on
//! 127.0.0.1:0, and librdkafka clients pointed at it.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use busbar_broker::{Broker, BrokerConfig, BrokerHandle};
use rdkafka::ClientConfig;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "busbar-test-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn config(dir: &Path) -> BrokerConfig {
    BrokerConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_owned(),
        housekeeping_interval: Duration::from_millis(200),
        ..BrokerConfig::default()
    }
}

pub async fn start(dir: &Path) -> BrokerHandle {
    Broker::start(config(dir)).await.expect("start broker")
}

pub fn client_config(addr: std::net::SocketAddr) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr.to_string())
        .set("broker.address.family", "v4");
    config
}

pub fn producer(addr: std::net::SocketAddr, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = client_config(addr);
    config.set("linger.ms", "5").set("acks", "all");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("producer")
}

pub fn consumer(addr: std::net::SocketAddr) -> BaseConsumer {
    let mut config = client_config(addr);
    config
        .set("enable.auto.commit", "false")
        .set("group.id", "busbar-test")
        .set("auto.offset.reset", "earliest");
    config.create().expect("consumer")
}

pub fn admin(addr: std::net::SocketAddr) -> AdminClient<DefaultClientContext> {
    client_config(addr).create().expect("admin client")
}
