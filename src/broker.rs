//! `busbar broker`: the Kafka-compatible broker on its own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use busbar_broker::{Broker, BrokerConfig, FsyncPolicy, TopicConfig};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Fsync {
    /// Acknowledge once the write reached the operating system (survives a crash of busbar, as Kafka does).
    Os,
    /// Acknowledge after fsync; concurrent producers share one fsync (group commit).
    Always,
}

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on start).
    #[arg(long, env = "BUSBAR_LISTEN", default_value = "127.0.0.1:9092")]
    listen: String,
    /// Host name advertised to clients in metadata (default: the IP the listener is bound to).
    #[arg(long, env = "BUSBAR_ADVERTISED_HOST")]
    advertised_host: Option<String>,
    /// Directory holding the topics.
    #[arg(long, env = "BUSBAR_DATA_DIR", default_value = "./busbar-data")]
    data_dir: PathBuf,
    /// When a produce is acknowledged.
    #[arg(long, env = "BUSBAR_FSYNC", value_enum, default_value_t = Fsync::Os)]
    fsync: Fsync,
    /// Create unknown topics on produce and metadata requests.
    #[arg(long, env = "BUSBAR_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics (and of CreateTopics requests that leave the count to the broker).
    #[arg(long, env = "BUSBAR_DEFAULT_PARTITIONS", default_value_t = 1)]
    default_partitions: i32,
    /// Largest request accepted, in bytes; larger requests close the connection.
    #[arg(long, env = "BUSBAR_MAX_REQUEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Close connections idle for this many seconds.
    #[arg(long, env = "BUSBAR_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    idle_timeout_secs: u64,
    /// How often retention and time-based segment rolls run, in milliseconds.
    #[arg(long, env = "BUSBAR_RETENTION_CHECK_MS", default_value_t = 30_000)]
    retention_check_ms: u64,
    /// Default retention.ms of topics (-1: keep forever).
    #[arg(long, env = "BUSBAR_RETENTION_MS", default_value_t = TopicConfig::default().retention_ms)]
    retention_ms: i64,
    /// Default retention.bytes per partition (-1: no limit).
    #[arg(long, env = "BUSBAR_RETENTION_BYTES", default_value_t = -1)]
    retention_bytes: i64,
    /// Default segment.bytes: roll to a new segment file at this size.
    #[arg(long, env = "BUSBAR_SEGMENT_BYTES", default_value_t = TopicConfig::default().segment_bytes)]
    segment_bytes: u64,
    /// Default max.message.bytes: the largest record batch accepted.
    #[arg(long, env = "BUSBAR_MAX_MESSAGE_BYTES", default_value_t = TopicConfig::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Node id reported in metadata.
    #[arg(long, env = "BUSBAR_NODE_ID", default_value_t = 1)]
    node_id: i32,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.default_partitions >= 1,
        "--default-partitions must be at least 1, got {}",
        args.default_partitions
    );
    let config = BrokerConfig {
        listen: args.listen,
        advertised_host: args.advertised_host,
        data_dir: args.data_dir,
        fsync: match args.fsync {
            Fsync::Os => FsyncPolicy::Os,
            Fsync::Always => FsyncPolicy::Always,
        },
        auto_create_topics: args.auto_create_topics,
        default_partitions: args.default_partitions,
        max_request_bytes: args.max_request_bytes,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        housekeeping_interval: Duration::from_millis(args.retention_check_ms.max(10)),
        topic_defaults: TopicConfig {
            retention_ms: args.retention_ms,
            retention_bytes: args.retention_bytes,
            segment_bytes: args.segment_bytes,
            max_message_bytes: args.max_message_bytes,
            ..TopicConfig::default()
        },
        node_id: args.node_id,
        ..BrokerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let handle = Broker::start(config).await?;
        // Scripts and tests read this line to learn the port when --listen ends in :0.
        println!("busbar broker listening on {}", handle.local_addr());
        wait_for_signal().await?;
        tracing::info!("signal received: shutting down");
        handle.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
