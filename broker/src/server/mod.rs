//! The Kafka wire server.
//!
//! - `frame`: size-prefixed frames, with a maximum request size
//! - `connection`: one task reads and dispatches requests in order, one writes the replies in the same order
//! - `dispatch`: header decode, version checks, `match` on the API key, response framing
//! - `handlers/<api>.rs`: one file per Kafka API, each talking to the [`LogStore`]
//!
//! The group coordinator (consumer groups, committed offsets) will sit beside the log store in [`Ctx`] and get
//! its own handlers; nothing here needs to change shape for it.

mod connection;
pub mod dispatch;
pub mod frame;
mod handlers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::group::{GroupConfig, GroupCoordinator};
use crate::log::{FsyncPolicy, LogStore, StoreOptions, TopicConfig};

/// Everything the broker process is configured with.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address to listen on; port 0 picks a free port (see [`BrokerHandle::local_addr`]).
    pub listen: String,
    /// Host name clients are told to connect to; defaults to the IP the listener is bound to.
    pub advertised_host: Option<String>,
    pub data_dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Create unknown topics on produce and on metadata requests that allow it.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics and of CreateTopics requests that leave the count to the broker.
    pub default_partitions: i32,
    /// Largest request frame accepted; larger ones close the connection.
    pub max_request_bytes: usize,
    /// Connections silent for this long are closed.
    pub idle_timeout: Duration,
    /// How often retention and time-based segment rolls run.
    pub housekeeping_interval: Duration,
    /// Settings of topics that do not override them.
    pub topic_defaults: TopicConfig,
    pub node_id: i32,
    pub cluster_id: String,
    /// Group coordinator settings (session and rebalance limits, offset retention).
    pub groups: GroupConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9092".into(),
            advertised_host: None,
            data_dir: PathBuf::from("busbar-data"),
            fsync: FsyncPolicy::Os,
            auto_create_topics: true,
            default_partitions: 1,
            max_request_bytes: 100 * 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
            housekeeping_interval: Duration::from_secs(30),
            topic_defaults: TopicConfig::default(),
            node_id: 1,
            cluster_id: "busbar".into(),
            groups: GroupConfig::default(),
        }
    }
}

/// State shared by every connection.
pub struct Ctx {
    pub store: LogStore,
    pub groups: GroupCoordinator,
    pub config: BrokerConfig,
    /// The host and port advertised in Metadata and DescribeCluster.
    pub host: String,
    pub port: i32,
}

/// The running broker.
pub struct Broker;

/// Handle to a started broker: its address, its store, and its shutdown.
pub struct BrokerHandle {
    addr: SocketAddr,
    store: LogStore,
    groups: GroupCoordinator,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Broker {
    /// Opens the log store, binds the listener and starts serving. Must be called inside a tokio runtime.
    pub async fn start(config: BrokerConfig) -> Result<BrokerHandle> {
        let store = LogStore::open(StoreOptions {
            data_dir: config.data_dir.clone(),
            fsync: config.fsync,
            defaults: config.topic_defaults,
        })?;
        let groups =
            GroupCoordinator::open(&config.data_dir.join("groups"), config.groups.clone())?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let host = config
            .advertised_host
            .clone()
            .unwrap_or_else(|| addr.ip().to_string());
        let housekeeping = store.spawn_housekeeping(config.housekeeping_interval);
        let ctx = Arc::new(Ctx {
            store: store.clone(),
            groups: groups.clone(),
            config,
            host,
            port: i32::from(addr.port()),
        });
        let (shutdown, stop) = watch::channel(false);
        info!(%addr, data_dir = %ctx.config.data_dir.display(), fsync = ?ctx.config.fsync, "broker listening");
        let task = tokio::spawn(accept_loop(listener, ctx, stop, housekeeping));
        Ok(BrokerHandle {
            addr,
            store,
            groups,
            shutdown,
            task,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
    housekeeping: tokio::task::JoinHandle<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::serve(stream, peer, Arc::clone(&ctx), stop.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(err) => {
                    warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    info!(
        connections = connections.len(),
        "shutting down: finishing in-flight requests"
    );
    // Connections stop reading new requests and finish writing what they accepted.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        warn!("connections did not finish within 10s; closing them");
        connections.abort_all();
    }
    housekeeping.abort();
    let store = ctx.store.clone();
    match tokio::task::spawn_blocking(move || store.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            warn!(error = %err, "closing the log store failed; the next start will check every batch")
        }
        Err(err) => warn!(error = %err, "closing the log store panicked"),
    }
}

impl BrokerHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The log store, for in-process produce/fetch/admin.
    pub fn store(&self) -> &LogStore {
        &self.store
    }

    /// The group coordinator, for in-process commits and offset lookups (`busbar serve`'s router).
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    /// Stops accepting, finishes in-flight requests, flushes and closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}
