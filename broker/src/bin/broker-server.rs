//! A lean launcher of the broker alone, without the rest of busbar: used by the crash test (which must SIGKILL
//! a real process) and the benchmark. The user-facing command is `busbar broker`, which has every flag.
//!
//! Usage: `broker-server --listen 127.0.0.1:0 --data-dir DIR [--fsync os|always] [--segment-bytes N]
//! [--retention-check-ms N]`.
//! Prints `listening on ADDR` on stdout once it accepts connections; stops cleanly on SIGINT/SIGTERM.

use std::process::ExitCode;

use busbar_broker::{Broker, BrokerConfig, FsyncPolicy, TopicConfig};

fn parse() -> Result<BrokerConfig, String> {
    let mut config = BrokerConfig {
        listen: "127.0.0.1:0".into(),
        ..BrokerConfig::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => config.listen = value,
            "--data-dir" => config.data_dir = value.into(),
            "--fsync" => {
                config.fsync = match value.as_str() {
                    "os" => FsyncPolicy::Os,
                    "always" => FsyncPolicy::Always,
                    other => return Err(format!("--fsync {other}: expected os or always")),
                }
            }
            "--segment-bytes" => {
                let bytes = value
                    .parse()
                    .map_err(|_| format!("--segment-bytes {value}: expected a byte count"))?;
                config.topic_defaults = TopicConfig {
                    segment_bytes: bytes,
                    ..config.topic_defaults
                };
            }
            "--retention-check-ms" => {
                let ms = value
                    .parse()
                    .map_err(|_| format!("--retention-check-ms {value}: expected milliseconds"))?;
                config.housekeeping_interval = std::time::Duration::from_millis(ms);
            }
            other => {
                return Err(format!(
                    "unknown flag {other}; expected --listen, --data-dir, --fsync, --segment-bytes, --retention-check-ms"
                ));
            }
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let handle = match Broker::start(config).await {
            Ok(handle) => handle,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        };
        println!("listening on {}", handle.local_addr());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}
