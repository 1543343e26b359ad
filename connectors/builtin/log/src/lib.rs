//! `builtin:log`: a sink that writes every event into busbar's log, for debugging pipelines.

use busbar_connector_sdk::{Description, Error, Event, Kind, Outcome, Sink, export_sink, log};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Log level of the lines: trace, debug, info (default), warn or error.
    #[serde(default)]
    level: Option<String>,
    /// Include the payload in the line (default true).
    #[serde(default = "yes")]
    payload: bool,
}

fn yes() -> bool {
    true
}

struct LogSink {
    level: log::Level,
    payload: bool,
}

impl Sink for LogSink {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "log".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::Sink,
            summary: "writes each event to busbar's log".into(),
            config_schema: r#"{"type":"object","properties":{"level":{"enum":["trace","debug","info","warn","error"]},"payload":{"type":"boolean"}},"additionalProperties":false}"#.into(),
            needs: vec![],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        let level = match config.level.as_deref().unwrap_or("info") {
            "trace" => log::Level::Trace,
            "debug" => log::Level::Debug,
            "info" => log::Level::Info,
            "warn" => log::Level::Warn,
            "error" => log::Level::Error,
            other => {
                return Err(Error::fatal(format!(
                    "level {other:?}: expected trace, debug, info, warn or error"
                )));
            }
        };
        Ok(LogSink {
            level,
            payload: config.payload,
        })
    }

    fn write(&mut self, batch: Vec<Event>) -> Vec<Outcome> {
        batch
            .iter()
            .map(|e| {
                let line = if self.payload {
                    format!(
                        "{} {} {} {}",
                        e.source,
                        e.detail_type,
                        e.id,
                        String::from_utf8_lossy(&e.payload)
                    )
                } else {
                    format!("{} {} {}", e.source, e.detail_type, e.id)
                };
                busbar_connector_sdk::bindings::busbar::connector::log::log(self.level, &line);
                Outcome::Ok
            })
            .collect()
    }
}

export_sink!(LogSink);
