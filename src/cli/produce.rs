//! `busbar produce`: writes records to a topic, one per line of standard input or of `--file`, or one record made
//! of a whole `--value-file`. Lines may carry a key (`--key-separator`) and their own headers
//! (`--headers-separator`); `-H name=value` adds headers to every record. Records are pipelined (many in flight)
//! and every acknowledgement is checked, so exit code 0 means every record is stored.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;

use super::{CliContext, ConnectArgs, Output, parse_key_value, print_json, time};

/// Records awaiting acknowledgement before the oldest is waited for; bounds memory on huge inputs.
const MAX_IN_FLIGHT: usize = 50_000;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Topic to write to (it must exist: `busbar topics create`).
    topic: String,
    /// Read records from this file, one per line, instead of standard input.
    #[arg(long, short = 'f', conflicts_with = "value_file")]
    file: Option<PathBuf>,
    /// Send this whole file, as it is (binary is fine), as the value of one record.
    #[arg(long)]
    value_file: Option<PathBuf>,
    /// Key of every record.
    #[arg(long, short = 'k', conflicts_with = "key_separator")]
    key: Option<String>,
    /// Each line is KEY<SEP>VALUE, split at the first SEP (`\t` means a tab), like kafka-console-producer's
    /// parse.key / key.separator.
    #[arg(long, short = 'K', conflicts_with = "value_file", value_name = "SEP")]
    key_separator: Option<String>,
    /// Header on every record, `name=value` (repeatable).
    #[arg(long = "header", short = 'H', value_parser = parse_key_value, value_name = "NAME=VALUE")]
    headers: Vec<(String, String)>,
    /// Each line starts with its own headers, `name=value,name=value`, then SEP (`\t` means a tab).
    #[arg(long, conflicts_with = "value_file", value_name = "SEP")]
    headers_separator: Option<String>,
    /// Partition to write to (default: chosen from the key with murmur2 like Kafka's Java client, keyless records
    /// spread).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Acknowledgements to wait for: all in-sync replicas, the leader only, or none.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    acks: Acks,
    /// Compression of the record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Give up on a record the broker has not acknowledged within this time.
    #[arg(long, default_value = "30s", value_parser = time::parse_duration)]
    delivery_timeout: Duration,
    /// Never show a progress bar (it only appears when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Acks {
    All,
    Leader,
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// One record to send, with where it came from for error messages.
#[derive(Debug)]
struct Record {
    line: u64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

/// Turns input lines into records.
struct LineFormat {
    source: String,
    key: Option<Vec<u8>>,
    key_separator: Option<Vec<u8>>,
    headers_separator: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

impl LineFormat {
    fn parse(&self, number: u64, mut line: &[u8]) -> anyhow::Result<Record> {
        let mut headers = self.headers.clone();
        if let Some(sep) = &self.headers_separator {
            let Some(at) = find(line, sep) else {
                bail!(
                    "{}:{number}: no headers separator {:?}; with --headers-separator every line must be \
                     `name=value,name=value{1}…` (an empty header list is allowed)",
                    self.source,
                    String::from_utf8_lossy(sep)
                );
            };
            let text = std::str::from_utf8(&line[..at])
                .with_context(|| format!("{}:{number}: the headers are not UTF-8", self.source))?;
            for pair in text.split(',').filter(|p| !p.is_empty()) {
                let (name, value) = parse_key_value(pair).map_err(|e| {
                    anyhow::anyhow!("{}:{number}: bad header {pair:?}: {e}", self.source)
                })?;
                headers.push((name, value.into_bytes()));
            }
            line = &line[at + sep.len()..];
        }
        let (key, value) = match &self.key_separator {
            Some(sep) => match find(line, sep) {
                Some(at) => (Some(line[..at].to_vec()), line[at + sep.len()..].to_vec()),
                None => bail!(
                    "{}:{number}: no key separator {:?}; with --key-separator every line must be KEY{1}VALUE",
                    self.source,
                    String::from_utf8_lossy(sep)
                ),
            },
            None => (self.key.clone(), line.to_vec()),
        };
        Ok(Record {
            line: number,
            key,
            value,
            headers,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `\t` in a separator flag means a tab (shells make a literal tab awkward to type), `\\` a backslash.
fn unescape(flag: &str, s: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.replace("\\t", "\t").replace("\\\\", "\\");
    if s.is_empty() {
        bail!("{flag} cannot be empty");
    }
    Ok(s.into_bytes())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let conn = &args.conn;
    let context = CliContext::default();
    let mut config = conn.client_config();
    config
        .set(
            "acks",
            match args.acks {
                Acks::All => "all",
                Acks::Leader => "1",
                Acks::None => "0",
            },
        )
        .set(
            "compression.type",
            match args.compression {
                Compression::None => "none",
                Compression::Gzip => "gzip",
                Compression::Snappy => "snappy",
                Compression::Lz4 => "lz4",
                Compression::Zstd => "zstd",
            },
        )
        // The Java client's partitioner: the same key lands on the same partition whoever produces it.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set(
            "message.timeout.ms",
            args.delivery_timeout
                .as_millis()
                .clamp(1, i32::MAX as u128)
                .to_string(),
        );
    let producer: FutureProducer<CliContext> = config
        .create_with_context(context.clone())
        .context("creating the Kafka producer")?;
    let metadata = conn.metadata(producer.client(), &context, || {})?;
    let topic = super::topics::find_topic(conn, &metadata, &args.topic)?;
    if let Some(p) = args.partition {
        let count = topic.partitions().len() as i32;
        if !(0..count).contains(&p) {
            bail!(
                "topic {:?} has partitions 0..{}; --partition {p} does not exist",
                args.topic,
                count - 1
            );
        }
    }
    let format = LineFormat {
        source: args
            .file
            .as_ref()
            .map_or_else(|| "stdin".to_owned(), |f| f.display().to_string()),
        key: args.key.clone().map(String::into_bytes),
        key_separator: args
            .key_separator
            .as_deref()
            .map(|s| unescape("--key-separator", s))
            .transpose()?,
        headers_separator: args
            .headers_separator
            .as_deref()
            .map(|s| unescape("--headers-separator", s))
            .transpose()?,
        headers: args
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect(),
    };
    let mut sender = Sender {
        producer: &producer,
        topic: &args.topic,
        partition: args.partition,
        source: format.source.clone(),
        pending: VecDeque::new(),
        per_partition: BTreeMap::new(),
    };
    let runtime = super::runtime()?;
    let sent = runtime.block_on(async {
        if let Some(path) = &args.value_file {
            let value = std::fs::read(path)
                .with_context(|| format!("reading --value-file {}", path.display()))?;
            let record = Record {
                line: 1,
                key: format.key.clone(),
                value,
                headers: format.headers.clone(),
            };
            sender.send(record).await?;
        } else {
            let (reader, total): (Box<dyn Read>, Option<u64>) = match &args.file {
                Some(path) => {
                    let file = std::fs::File::open(path)
                        .with_context(|| format!("opening --file {}", path.display()))?;
                    let len = file.metadata().map(|m| m.len()).ok();
                    (Box::new(file), len)
                }
                None => (Box::new(std::io::stdin().lock()), None),
            };
            let bar = match total {
                Some(len) => super::progress(Some(len), "bytes", !args.no_progress),
                None => super::progress(None, "records", !args.no_progress),
            };
            let mut reader = BufReader::with_capacity(1 << 16, reader);
            let mut buf = Vec::new();
            let mut number = 0u64;
            loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .with_context(|| format!("reading {}", format.source))?;
                if n == 0 {
                    break;
                }
                number += 1;
                let mut line = buf.as_slice();
                line = line.strip_suffix(b"\n").unwrap_or(line);
                line = line.strip_suffix(b"\r").unwrap_or(line);
                sender.send(format.parse(number, line)?).await?;
                bar.inc(if total.is_some() { n as u64 } else { 1 });
            }
            bar.finish_and_clear();
        }
        sender.drain().await
    })?;
    match conn.output {
        Output::Table => {
            let parts: Vec<String> = sender
                .per_partition
                .iter()
                .map(|(p, n)| format!("{p}: {n}"))
                .collect();
            eprintln!(
                "produced {sent} records to {:?} (per partition: {})",
                args.topic,
                parts.join(", ")
            );
        }
        Output::Json => print_json(&json!({
            "topic": args.topic,
            "records": sent,
            "partitions": sender.per_partition.iter().map(|(p, n)| (p.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        }))?,
    }
    Ok(ExitCode::SUCCESS)
}

struct Sender<'a> {
    producer: &'a FutureProducer<CliContext>,
    topic: &'a str,
    partition: Option<i32>,
    source: String,
    pending: VecDeque<(u64, DeliveryFuture)>,
    per_partition: BTreeMap<i32, u64>,
}

impl Sender<'_> {
    async fn send(&mut self, record: Record) -> anyhow::Result<()> {
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (name, value) in &record.headers {
                headers = headers.insert(Header {
                    key: name.as_str(),
                    value: Some(value),
                });
            }
            let mut out = FutureRecord::to(self.topic)
                .payload(&record.value)
                .headers(headers);
            if let Some(key) = &record.key {
                out = out.key(key);
            }
            if let Some(p) = self.partition {
                out = out.partition(p);
            }
            match self.producer.send_result(out) {
                Ok(future) => {
                    self.pending.push_back((record.line, future));
                    break;
                }
                // librdkafka's queue is full: wait for the oldest acknowledgement, then retry.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if !self.settle_oldest().await? {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    bail!(
                        "{}:{}: the record ({} bytes) is larger than the producer's message.max.bytes; raise it with \
                     -X message.max.bytes=N (and the topic's max.message.bytes)",
                        self.source,
                        record.line,
                        record.value.len()
                    )
                }
                Err((err, _)) => bail!(
                    "{}:{}: the record could not be queued: {err}",
                    self.source,
                    record.line
                ),
            }
        }
        if self.pending.len() >= MAX_IN_FLIGHT {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    /// Waits for the oldest record in flight; false if none is.
    async fn settle_oldest(&mut self) -> anyhow::Result<bool> {
        let Some((line, future)) = self.pending.pop_front() else {
            return Ok(false);
        };
        match future.await {
            Ok(Ok(delivery)) => {
                *self.per_partition.entry(delivery.partition).or_default() += 1;
                Ok(true)
            }
            Ok(Err((err, _))) => bail!(
                "{}:{line}: the record was not stored on {:?}: {err}",
                self.source,
                self.topic
            ),
            Err(_) => bail!(
                "{}:{line}: the producer stopped before the record was acknowledged",
                self.source
            ),
        }
    }

    async fn drain(&mut self) -> anyhow::Result<u64> {
        while self.settle_oldest().await? {}
        Ok(self.per_partition.values().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(key_sep: Option<&str>, headers_sep: Option<&str>) -> LineFormat {
        LineFormat {
            source: "in.txt".into(),
            key: None,
            key_separator: key_sep.map(|s| s.as_bytes().to_vec()),
            headers_separator: headers_sep.map(|s| s.as_bytes().to_vec()),
            headers: vec![("static".into(), b"1".to_vec())],
        }
    }

    #[test]
    fn lines_split_into_headers_key_and_value() {
        let r = format(Some(":"), Some("|"))
            .parse(3, b"a=1,b=x=y|k1:v:1")
            .unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value, b"v:1");
        assert_eq!(
            r.headers,
            vec![
                ("static".into(), b"1".to_vec()),
                ("a".into(), b"1".to_vec()),
                ("b".into(), b"x=y".to_vec())
            ]
        );
        let r = format(Some(":"), Some("|")).parse(4, b"|k:").unwrap();
        assert_eq!(
            (r.key.as_deref(), r.value.as_slice(), r.headers.len()),
            (Some(&b"k"[..]), &b""[..], 1)
        );
        let r = format(None, None).parse(5, b"plain value").unwrap();
        assert_eq!((r.key, r.value.as_slice()), (None, &b"plain value"[..]));
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let err = format(Some(":"), None)
            .parse(7, b"no separator here")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in.txt:7") && err.contains("KEY:VALUE"),
            "{err}"
        );
        let err = format(None, Some("|"))
            .parse(8, b"a=1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in.txt:8") && err.contains("headers separator"),
            "{err}"
        );
        let err = format(None, Some("|"))
            .parse(9, b"novalue|x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in.txt:9") && err.contains("KEY=VALUE"),
            "{err}"
        );
    }

    #[test]
    fn tab_escape_in_separators() {
        assert_eq!(unescape("--key-separator", "\\t").unwrap(), b"\t");
        assert!(unescape("--key-separator", "").is_err());
    }
}
