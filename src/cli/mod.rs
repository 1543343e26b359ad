//! Kafka tooling subcommands: `topics`, `produce`, `consume`, `groups`, and `completions`.
//!
//! They talk to any Kafka-compatible broker (busbar's own, Apache Kafka, Redpanda…) through librdkafka, so they
//! know nothing of busbar's internals. Module map:
//!
//! - `mod.rs` (here): connection flags, the librdkafka client context that remembers the last transport error,
//!   the reachability probe every command starts with, `--output` rendering and small parsers;
//! - `topics.rs`: list / create / describe / alter / delete (AdminClient, metadata, watermarks);
//! - `produce.rs`: records from stdin, a file of lines, or one whole file (FutureProducer);
//! - `consume.rs`: from earliest / latest / an offset / a time, with or without a group (BaseConsumer);
//! - `groups.rs`: list / describe with lag / reset offsets (dry run unless `--execute`);
//! - `time.rs`: RFC 3339 parsing and formatting, durations.

pub mod consume;
pub mod groups;
pub mod produce;
pub mod time;
pub mod topics;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

/// Where the broker is and how to talk to it; shared by every Kafka subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Kafka bootstrap servers, `host:port[,host:port…]`: busbar's broker or any Kafka-compatible cluster.
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "BUSBAR_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    /// How long to wait for the broker to answer before giving up, e.g. `5s`, `500ms`, `1m`.
    #[arg(long, global = true, env = "BUSBAR_TIMEOUT", default_value = "5s", value_parser = time::parse_duration)]
    pub timeout: Duration,
    /// Extra librdkafka client property, `key=value` (repeatable), e.g. `-X security.protocol=ssl`.
    #[arg(long = "property", short = 'X', global = true, value_parser = parse_key_value, value_name = "KEY=VALUE")]
    pub properties: Vec<(String, String)>,
    /// Output format: aligned text for people, or JSON for scripts (JSON lines for `consume`).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

impl ConnectArgs {
    /// A librdkafka configuration with the bootstrap servers, timeouts and the user's `-X` properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_server)
            .set("client.id", "busbar-cli")
            // librdkafka's own log lines go through `CliContext::log` into tracing (visible with --log debug).
            .set_log_level(RDKafkaLogLevel::Warning);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Fetches the cluster metadata (all topics). This is the first call of every command, so a broker that
    /// cannot be reached fails here, within `--timeout`, with a message naming the address.
    pub fn metadata<C: ClientContext>(
        &self,
        client: &Client<C>,
        context: &CliContext,
        drain: impl Fn(),
    ) -> anyhow::Result<Metadata> {
        // Never ask for one topic by name: brokers with auto-creation would create it.
        match client.fetch_metadata(None, self.timeout) {
            Ok(metadata) => Ok(metadata),
            Err(err) => {
                // The failure can come back before librdkafka's error callback has told us why: give it a moment.
                let deadline = std::time::Instant::now() + Duration::from_secs(1);
                while context.last_error().is_none() && std::time::Instant::now() < deadline {
                    drain();
                    std::thread::sleep(Duration::from_millis(20));
                }
                bail!(self.unreachable(&err, context))
            }
        }
    }

    /// A consumer that never joins a group (it only reads metadata, watermarks and offsets, and commits
    /// resets), and the cluster metadata. Admin commands use it for the reachability check too, because it
    /// serves librdkafka's error events, which say why a broker cannot be reached.
    pub fn probe(
        &self,
        group: Option<&str>,
    ) -> anyhow::Result<(BaseConsumer<CliContext>, Metadata)> {
        let context = CliContext::default();
        let mut config = self.client_config();
        config
            .set("enable.auto.commit", "false")
            .set("group.id", group.unwrap_or("busbar-cli"));
        let consumer: BaseConsumer<CliContext> = config
            .create_with_context(context.clone())
            .context("creating the Kafka client")?;
        let metadata = self.metadata(consumer.client(), &context, || {
            let _ = consumer.poll(Duration::ZERO);
        })?;
        Ok((consumer, metadata))
    }

    fn unreachable(&self, err: &KafkaError, context: &CliContext) -> String {
        let cause = context.last_error().unwrap_or_else(|| err.to_string());
        format!(
            "could not reach a Kafka broker at {} within {}: {cause}\n  \
             (is the broker running? set the address with --bootstrap-server or BUSBAR_BOOTSTRAP)",
            self.bootstrap_server,
            time::format_duration(self.timeout),
        )
    }

    /// The error for a topic the cluster does not have.
    pub fn unknown_topic(&self, topic: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "topic {topic:?} does not exist on {} (`busbar topics list` shows the topics, \
             `busbar topics create {topic}` creates it)",
            self.bootstrap_server
        )
    }
}

/// librdkafka client context: logs go to tracing, and the last error librdkafka reports (connection refused,
/// name not resolved…) is kept so that a timeout can say why.
/// Clones share the same record, so a command keeps one while librdkafka owns another.
#[derive(Clone, Default)]
pub struct CliContext {
    last_error: Arc<Mutex<Option<String>>>,
}

impl CliContext {
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ClientContext for CliContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::debug!(target: "librdkafka", %fac, "{message}")
            }
            _ => tracing::trace!(target: "librdkafka", %fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, "{reason}");
        // "1/1 brokers are down" says less than the transport error before it: keep the more specific one.
        let all_down = matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown)
        );
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        if !(all_down && last.is_some()) {
            *last = Some(reason.to_owned());
        }
    }
}

impl ConsumerContext for CliContext {}

/// A single-threaded tokio runtime to drive the admin client's and the producer's futures.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Parses `key=value` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Prints rows under headers, columns padded to their widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    table_row(&widths, headers.iter().copied(), &mut out);
    for row in rows {
        table_row(&widths, row.iter().map(String::as_str), &mut out);
    }
    write_stdout(out.as_bytes())
}

fn table_row<'a>(widths: &[usize], cells: impl Iterator<Item = &'a str>, out: &mut String) {
    let mut text = String::new();
    for (i, cell) in cells.enumerate() {
        if i + 1 == widths.len() {
            text.push_str(cell);
        } else {
            let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
        }
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

/// Prints a JSON value on one line.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("encoding JSON output")?;
    text.push('\n');
    write_stdout(text.as_bytes())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("writing to stdout")
        }
        _ => Ok(()),
    }
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal (scripts, CI, pipes) or `--no-progress`.
pub fn progress(total: Option<u64>, unit: &str, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(total) if unit == "bytes" => (
            ProgressBar::new(total),
            "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}"
                .to_owned(),
        ),
        Some(total) => (
            ProgressBar::new(total),
            format!("{{spinner}} [{{elapsed_precise}}] [{{wide_bar}}] {{human_pos}}/{{human_len}} {unit} ({{rate}}, eta {{eta}})"),
        ),
        None => (ProgressBar::new_spinner(), format!("{{spinner}} [{{elapsed_precise}}] {{human_pos}} {unit} ({{rate}}) {{msg}}")),
    };
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            // Whole records per second: indicatif's {per_sec} prints four decimals.
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            ),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `busbar completions <shell>`: prints a completion script for the whole command tree.
pub fn completions(
    shell: clap_complete::Shell,
    mut command: clap::Command,
) -> anyhow::Result<std::process::ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "busbar", &mut script);
    write_stdout(&script)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Standard base64 (RFC 4648, padded), for keys, values and headers that are not UTF-8 in JSON output.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Ends the process quietly on Ctrl-C or SIGTERM by raising a flag the long-running loops check, so that a
/// consumer in a group commits what it printed and leaves the group cleanly.
pub fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        raised.store(true, Ordering::SeqCst);
    });
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn key_value_needs_a_key_and_an_equals_sign() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(parse_key_value("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }
}
