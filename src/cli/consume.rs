//! `busbar consume`: prints a topic's records, from the earliest, the latest, an offset, the last N, or a point
//! in time; alone (all partitions assigned, nothing committed) or as a member of a consumer group (offsets of
//! printed records committed, so a restart resumes after them). Output: the value, a `--format` template, or
//! JSON lines (`--output json`).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;

use super::{CliContext, ConnectArgs, Output, base64, time};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Topic to read.
    topic: String,
    /// Where to start: `earliest`, `latest`, an offset `N`, the last N records of each partition `-N`, a time
    /// (RFC 3339 like 2026-11-21T10:00:00Z, or `@<epoch-ms>`), or a time ago like `-15m`. With --group it only
    /// applies to partitions the group has no committed offset for (`earliest` or `latest`).
    #[arg(long, default_value = "latest", value_parser = StartFrom::parse, allow_hyphen_values = true)]
    from: StartFrom,
    /// Same as --from earliest.
    #[arg(long, conflicts_with = "from")]
    from_beginning: bool,
    /// Only these partitions (comma-separated or repeated); not with --group.
    #[arg(long, short = 'p', value_delimiter = ',', conflicts_with = "group")]
    partition: Vec<i32>,
    /// Consume as a member of this consumer group and commit the offsets of the printed records.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    max_messages: Option<u64>,
    /// Stop once every partition is read to its end.
    #[arg(long, short = 'e')]
    exit_at_end: bool,
    /// Stop when no record arrived for this long, e.g. `10s`.
    #[arg(long, value_parser = time::parse_duration)]
    idle_timeout: Option<Duration>,
    /// Line template instead of the bare value: {key} {value} {headers} {header.NAME} {topic} {partition}
    /// {offset} {timestamp} (epoch ms) {time} (RFC 3339); `\t`, `\n`, `{{`, `}}` escape.
    #[arg(long, short = 'f', conflicts_with = "output")]
    format: Option<String>,
    /// Never show a progress bar (it only appears when stderr is a terminal and stdout is not).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum StartFrom {
    Earliest,
    Latest,
    Offset(i64),
    Tail(i64),
    Time(i64),
    Ago(Duration),
}

impl StartFrom {
    fn parse(s: &str) -> Result<StartFrom, String> {
        match s {
            "earliest" | "beginning" => return Ok(StartFrom::Earliest),
            "latest" | "end" => return Ok(StartFrom::Latest),
            _ => {}
        }
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if digits(s) {
            return s
                .parse()
                .map(StartFrom::Offset)
                .map_err(|_| format!("offset {s:?} is too large"));
        }
        if let Some(rest) = s.strip_prefix('-') {
            if digits(rest) {
                return rest
                    .parse()
                    .map(StartFrom::Tail)
                    .map_err(|_| format!("{s:?} is too large"));
            }
            return time::parse_duration(rest).map(StartFrom::Ago).map_err(|e| {
                format!(
                    "{e} (in --from {s:?}: -N is the last N records, -15m is fifteen minutes ago)"
                )
            });
        }
        if let Some(ms) = s.strip_prefix('@') {
            return ms
                .parse()
                .map(StartFrom::Time)
                .map_err(|_| format!("{s:?}: expected @<epoch milliseconds>"));
        }
        time::parse_timestamp(s).map(StartFrom::Time).map_err(|e| {
            format!("{e}; --from also takes earliest, latest, an offset N, -N (last N records) or -15m (time ago)")
        })
    }
}

/// One piece of a `--format` template.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Key,
    Value,
    Headers,
    Header(String),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Time,
}

fn parse_template(template: &str) -> anyhow::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('\\') => text.push('\\'),
                Some(other) => {
                    text.push('\\');
                    text.push(other);
                }
                None => text.push('\\'),
            },
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let piece = match name.as_str() {
                    "key" => Piece::Key,
                    "value" => Piece::Value,
                    "headers" => Piece::Headers,
                    "topic" => Piece::Topic,
                    "partition" => Piece::Partition,
                    "offset" => Piece::Offset,
                    "timestamp" => Piece::Timestamp,
                    "time" => Piece::Time,
                    _ => match name.strip_prefix("header.") {
                        Some(header) if !header.is_empty() => Piece::Header(header.to_owned()),
                        _ => bail!(
                            "--format: unknown placeholder {{{name}}}; use {{key}} {{value}} {{headers}} \
                             {{header.NAME}} {{topic}} {{partition}} {{offset}} {{timestamp}} {{time}} \
                             (write {{{{ for a literal brace)"
                        ),
                    },
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
            }
            '}' => bail!("--format: unmatched '}}' (write }}}} for a literal brace)"),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn render(pieces: &[Piece], msg: &BorrowedMessage<'_>, out: &mut Vec<u8>) {
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
            Piece::Key => out.extend_from_slice(msg.key().unwrap_or_default()),
            Piece::Value => out.extend_from_slice(msg.payload().unwrap_or_default()),
            Piece::Headers => {
                if let Some(headers) = msg.headers() {
                    for (i, h) in headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(h.key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(h.value.unwrap_or_default());
                    }
                }
            }
            Piece::Header(name) => {
                if let Some(h) = msg
                    .headers()
                    .and_then(|hs| hs.iter().find(|h| h.key == name))
                {
                    out.extend_from_slice(h.value.unwrap_or_default());
                }
            }
            Piece::Topic => out.extend_from_slice(msg.topic().as_bytes()),
            Piece::Partition => out.extend_from_slice(msg.partition().to_string().as_bytes()),
            Piece::Offset => out.extend_from_slice(msg.offset().to_string().as_bytes()),
            Piece::Timestamp => {
                if let Some(ms) = msg.timestamp().to_millis() {
                    out.extend_from_slice(ms.to_string().as_bytes());
                }
            }
            Piece::Time => {
                if let Some(ms) = msg.timestamp().to_millis() {
                    out.extend_from_slice(time::format_timestamp(ms).as_bytes());
                }
            }
        }
    }
    out.push(b'\n');
}

/// Puts `name` (UTF-8 text or null) or, for other bytes, `name_base64` into a JSON object.
fn bytes_field(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: Option<&[u8]>,
) {
    match bytes.map(std::str::from_utf8) {
        None => {
            object.insert(name.to_owned(), serde_json::Value::Null);
        }
        Some(Ok(text)) => {
            object.insert(name.to_owned(), json!(text));
        }
        Some(Err(_)) => {
            object.insert(
                format!("{name}_base64"),
                json!(base64(bytes.unwrap_or_default())),
            );
        }
    }
}

fn json_line(msg: &BorrowedMessage<'_>, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut object = serde_json::Map::new();
    object.insert("topic".into(), json!(msg.topic()));
    object.insert("partition".into(), json!(msg.partition()));
    object.insert("offset".into(), json!(msg.offset()));
    object.insert("timestamp".into(), json!(msg.timestamp().to_millis()));
    bytes_field(&mut object, "key", msg.key());
    bytes_field(&mut object, "value", msg.payload());
    let headers: Vec<serde_json::Value> = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let mut header = serde_json::Map::new();
                    header.insert("key".into(), json!(h.key));
                    bytes_field(&mut header, "value", h.value);
                    serde_json::Value::Object(header)
                })
                .collect()
        })
        .unwrap_or_default();
    object.insert("headers".into(), json!(headers));
    serde_json::to_writer(&mut *out, &object).context("encoding a record as JSON")?;
    out.push(b'\n');
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let conn = &args.conn;
    let from = if args.from_beginning {
        StartFrom::Earliest
    } else {
        args.from.clone()
    };
    if args.group.is_some() && !matches!(from, StartFrom::Earliest | StartFrom::Latest) {
        bail!(
            "--from {from:?} cannot be combined with --group: a group resumes from its committed offsets; \
             move them with `busbar groups reset {} --topic {} …`, or use --from earliest|latest for partitions \
             without a committed offset",
            args.group.as_deref().unwrap_or_default(),
            args.topic
        );
    }
    if args.max_messages == Some(0) {
        bail!("--max-messages must be at least 1");
    }
    let template = args.format.as_deref().map(parse_template).transpose()?;
    let context = CliContext::default();
    let mut config = conn.client_config();
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            if from == StartFrom::Earliest {
                "earliest"
            } else {
                "latest"
            },
        )
        .set(
            "enable.partition.eof",
            if args.exit_at_end { "true" } else { "false" },
        );
    // librdkafka wants a group id even to assign partitions by hand; without --group nothing is ever
    // committed or joined under it.
    match &args.group {
        Some(group) => config.set("group.id", group),
        None => config.set("group.id", format!("busbar-cli-{}", std::process::id())),
    };
    let consumer: BaseConsumer<CliContext> = config
        .create_with_context(context.clone())
        .context("creating the Kafka consumer")?;
    let metadata = conn.metadata(consumer.client(), &context, || {
        let _ = consumer.poll(Duration::ZERO);
    })?;
    let topic = super::topics::find_topic(conn, &metadata, &args.topic)?;
    let all: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    if args.group.is_some() {
        consumer
            .subscribe(&[&args.topic])
            .context("subscribing to the topic")?;
    } else {
        let partitions = if args.partition.is_empty() {
            all.clone()
        } else {
            args.partition.clone()
        };
        if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
            bail!(
                "topic {:?} has partitions 0..{}; partition {p} does not exist",
                args.topic,
                all.len() - 1
            );
        }
        let tpl = start_positions(conn, &consumer, &args.topic, &partitions, &from)?;
        consumer.assign(&tpl).context("assigning the partitions")?;
    }

    let stop = super::stop_flag();
    let show = !args.no_progress && !std::io::stdout().is_terminal();
    let bar = super::progress(args.max_messages, "records", show);
    let mut stdout = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut line = Vec::with_capacity(1024);
    let mut count = 0u64;
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_record = Instant::now();
    let mut last_commit = Instant::now();
    let mut pipe_closed = false;
    while !stop.load(Ordering::SeqCst)
        && !pipe_closed
        && args.max_messages.is_none_or(|max| count < max)
    {
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if stdout.flush().is_err() {
                    pipe_closed = true;
                }
                if args
                    .idle_timeout
                    .is_some_and(|idle| last_record.elapsed() >= idle)
                {
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(err)) => match err.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ) => {
                    bail!(
                        "topic {:?} disappeared from {} while reading it",
                        args.topic,
                        conn.bootstrap_server
                    )
                }
                // Transport hiccups: librdkafka reconnects by itself.
                _ => tracing::warn!(error = %err, "consumer error"),
            },
            Some(Ok(msg)) => {
                at_end.remove(&msg.partition());
                line.clear();
                match &template {
                    _ if conn.output == Output::Json => json_line(&msg, &mut line)?,
                    Some(pieces) => render(pieces, &msg, &mut line),
                    None => {
                        line.extend_from_slice(msg.payload().unwrap_or_default());
                        line.push(b'\n');
                    }
                }
                if let Err(err) = stdout.write_all(&line) {
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        pipe_closed = true;
                        continue;
                    }
                    return Err(err).context("writing to stdout");
                }
                next.insert(msg.partition(), msg.offset() + 1);
                count += 1;
                last_record = Instant::now();
                bar.inc(1);
            }
        }
        if args.exit_at_end && !at_end.is_empty() {
            let assigned = consumer.assignment().context("reading the assignment")?;
            if assigned.count() > 0
                && assigned
                    .elements()
                    .iter()
                    .all(|e| at_end.contains(&e.partition()))
            {
                break;
            }
        }
        if args.group.is_some()
            && last_commit.elapsed() >= Duration::from_secs(1)
            && next != committed
        {
            // Periodic, asynchronous: a crash re-prints at most about a second of records.
            commit(&consumer, &args.topic, &next, CommitMode::Async)?;
            committed = next.clone();
            last_commit = Instant::now();
        }
    }
    bar.finish_and_clear();
    let _ = stdout.flush();
    if let Some(group) = &args.group
        && !next.is_empty()
    {
        commit(&consumer, &args.topic, &next, CommitMode::Sync)
            .with_context(|| format!("committing the offsets of group {group:?}"))?;
    }
    if count == 0 && args.max_messages.is_some() && args.idle_timeout.is_some() {
        tracing::info!("no records within the idle timeout");
    }
    Ok(ExitCode::SUCCESS)
}

fn commit(
    consumer: &BaseConsumer<CliContext>,
    topic: &str,
    next: &BTreeMap<i32, i64>,
    mode: CommitMode,
) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in next {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer.commit(&tpl, mode)?;
    Ok(())
}

/// The starting offset of every partition for `--from`; times are resolved with ListOffsets by timestamp.
fn start_positions(
    conn: &ConnectArgs,
    consumer: &BaseConsumer<CliContext>,
    topic: &str,
    partitions: &[i32],
    from: &StartFrom,
) -> anyhow::Result<TopicPartitionList> {
    let at = |offset: Offset| -> anyhow::Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition_offset(topic, *p, offset)?;
        }
        Ok(tpl)
    };
    let millis = match from {
        StartFrom::Earliest => return at(Offset::Beginning),
        StartFrom::Latest => return at(Offset::End),
        StartFrom::Offset(n) => return at(Offset::Offset(*n)),
        StartFrom::Tail(n) => return at(Offset::OffsetTail(*n)),
        StartFrom::Time(ms) => *ms,
        StartFrom::Ago(ago) => time::now_millis() - ago.as_millis() as i64,
    };
    let found = consumer
        .offsets_for_times(at(Offset::Offset(millis))?, conn.timeout)
        .with_context(|| {
            format!(
                "looking up the offsets of {topic} at {}",
                time::format_timestamp(millis)
            )
        })?;
    // No record at or after that time: start at the end, for records still to come.
    let mut tpl = TopicPartitionList::new();
    for e in found.elements() {
        let offset = match e.offset() {
            Offset::Offset(n) if n >= 0 => Offset::Offset(n),
            _ => Offset::End,
        };
        tpl.add_partition_offset(topic, e.partition(), offset)?;
    }
    Ok(tpl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(StartFrom::parse("earliest"), Ok(StartFrom::Earliest));
        assert_eq!(StartFrom::parse("latest"), Ok(StartFrom::Latest));
        assert_eq!(StartFrom::parse("42"), Ok(StartFrom::Offset(42)));
        assert_eq!(StartFrom::parse("-10"), Ok(StartFrom::Tail(10)));
        assert_eq!(
            StartFrom::parse("-15m"),
            Ok(StartFrom::Ago(Duration::from_secs(900)))
        );
        assert_eq!(
            StartFrom::parse("@1795255200000"),
            Ok(StartFrom::Time(1_795_255_200_000))
        );
        assert_eq!(
            StartFrom::parse("2026-11-21T10:00:00Z"),
            Ok(StartFrom::Time(1_795_255_200_000))
        );
        let err = StartFrom::parse("yesterday").unwrap_err();
        assert!(err.contains("earliest, latest"), "{err}");
        assert!(
            StartFrom::parse("-15x")
                .unwrap_err()
                .contains("unknown unit")
        );
    }

    #[test]
    fn templates_parse_placeholders_and_escapes() {
        let pieces =
            parse_template("{partition}:{offset}\\t{key}={value} {header.trace} {{x}}").unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Partition,
                Piece::Text(":".into()),
                Piece::Offset,
                Piece::Text("\t".into()),
                Piece::Key,
                Piece::Text("=".into()),
                Piece::Value,
                Piece::Text(" ".into()),
                Piece::Header("trace".into()),
                Piece::Text(" {x}".into()),
            ]
        );
        let err = parse_template("{vaule}").unwrap_err().to_string();
        assert!(
            err.contains("unknown placeholder {vaule}") && err.contains("{value}"),
            "{err}"
        );
        assert!(
            parse_template("a}b")
                .unwrap_err()
                .to_string()
                .contains("unmatched")
        );
    }
}
