//! `busbar topics list|create|describe|alter|delete`: the kafka-topics / kafka-configs operations through the
//! Kafka admin API, against any Kafka-compatible broker.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;

use super::{CliContext, ConnectArgs, Output, parse_key_value, print_json, print_table};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List topics with their partition counts.
    List,
    /// Create a topic.
    Create {
        topic: String,
        /// Number of partitions (default: the broker's default).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default).
        #[arg(long, short = 'r')]
        replication_factor: Option<i32>,
        /// Topic setting `key=value` (repeatable), e.g. `--config retention.ms=86400000`.
        #[arg(long, short = 'c', value_parser = parse_key_value, value_name = "KEY=VALUE")]
        config: Vec<(String, String)>,
        /// Succeed without changes if the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Show a topic's partitions (leader, replicas, offsets) and settings.
    Describe { topic: String },
    /// Change a topic's settings or add partitions.
    Alter {
        topic: String,
        /// Setting to set, `key=value` (repeatable); other overrides are kept.
        #[arg(long, short = 'c', value_parser = parse_key_value, value_name = "KEY=VALUE")]
        config: Vec<(String, String)>,
        /// Override to remove, so the broker default applies again (repeatable).
        #[arg(long, value_name = "KEY")]
        delete_config: Vec<String>,
        /// New total number of partitions (can only grow).
        #[arg(long, short = 'p')]
        partitions: Option<usize>,
    },
    /// Delete topics and all their records.
    Delete {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Succeed for topics that do not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let conn = &args.conn;
    let admin: AdminClient<CliContext> = conn
        .client_config()
        .create_with_context(CliContext::default())
        .context("creating the Kafka admin client")?;
    let (probe, metadata) = conn.probe(None)?;
    let options = AdminOptions::new()
        .request_timeout(Some(conn.timeout))
        .operation_timeout(Some(conn.timeout));
    let runtime = super::runtime()?;
    match args.command {
        Command::List => list(conn, &metadata),
        Command::Create {
            topic,
            partitions,
            replication_factor,
            config,
            if_not_exists,
        } => {
            if let Some(p) = partitions.filter(|p| *p < 1) {
                bail!("--partitions must be at least 1, got {p}");
            }
            if let Some(r) = replication_factor.filter(|r| *r < 1) {
                bail!("--replication-factor must be at least 1, got {r}");
            }
            let mut new = NewTopic::new(
                &topic,
                partitions.unwrap_or(-1),
                TopicReplication::Fixed(replication_factor.unwrap_or(-1)),
            );
            for (key, value) in &config {
                new = new.set(key, value);
            }
            let results = runtime
                .block_on(admin.create_topics([&new], &options))
                .context("creating the topic")?;
            match results.into_iter().next() {
                Some(Ok(_)) => {}
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) if if_not_exists => {
                    eprintln!("topic {topic:?} already exists");
                    return Ok(ExitCode::SUCCESS);
                }
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                    bail!(
                        "topic {topic:?} already exists on {} (add --if-not-exists to ignore)",
                        conn.bootstrap_server
                    )
                }
                Some(Err((_, code))) => bail!("creating topic {topic:?} failed: {code} ({code:?})"),
                None => bail!("the broker returned no result for topic {topic:?}"),
            }
            let partitions = partitions.map_or_else(
                || "the broker's default number of".to_owned(),
                |p| p.to_string(),
            );
            match conn.output {
                Output::Table => eprintln!("created topic {topic:?} with {partitions} partitions"),
                Output::Json => print_json(&json!({ "created": topic }))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { topic } => {
            let found = find_topic(conn, &metadata, &topic)?;
            describe(conn, &admin, &probe, &runtime, &options, found)
        }
        Command::Alter {
            topic,
            config,
            delete_config,
            partitions,
        } => {
            if config.is_empty() && delete_config.is_empty() && partitions.is_none() {
                bail!(
                    "nothing to alter: give --config KEY=VALUE, --delete-config KEY or --partitions N"
                );
            }
            let found = find_topic(conn, &metadata, &topic)?;
            let current = found.partitions().len();
            if let Some(p) = partitions.filter(|p| *p <= current) {
                bail!(
                    "topic {topic:?} has {current} partitions; --partitions can only grow it, got {p}"
                );
            }
            let mut report = serde_json::Map::new();
            if !config.is_empty() || !delete_config.is_empty() {
                let overrides =
                    alter_config(&admin, &runtime, &options, &topic, &config, &delete_config)?;
                report.insert("overrides".into(), json!(overrides));
            }
            if let Some(p) = partitions {
                let results = runtime
                    .block_on(admin.create_partitions([&NewPartitions::new(&topic, p)], &options))
                    .context("adding partitions")?;
                if let Some(Err((_, code))) = results.into_iter().next() {
                    bail!("growing topic {topic:?} to {p} partitions failed: {code} ({code:?})");
                }
                report.insert("partitions".into(), json!(p));
            }
            match conn.output {
                Output::Table => {
                    if let Some(overrides) = report.get("overrides").and_then(|o| o.as_object()) {
                        let list: Vec<String> = overrides
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect();
                        eprintln!(
                            "topic {topic:?} overrides now: {}",
                            if list.is_empty() {
                                "none".into()
                            } else {
                                list.join(", ")
                            }
                        );
                    }
                    if let Some(p) = partitions {
                        eprintln!("topic {topic:?} now has {p} partitions (was {current})");
                    }
                }
                Output::Json => {
                    report.insert("topic".into(), json!(topic));
                    print_json(&serde_json::Value::Object(report))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { topics, if_exists } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let missing: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !metadata.topics().iter().any(|t| t.name() == *n))
                .collect();
            if !missing.is_empty() && !if_exists {
                return Err(conn.unknown_topic(missing[0]));
            }
            let present: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !missing.contains(n))
                .collect();
            let mut deleted = Vec::new();
            if !present.is_empty() {
                let results = runtime
                    .block_on(admin.delete_topics(&present, &options))
                    .context("deleting topics")?;
                for result in results {
                    match result {
                        Ok(name) => deleted.push(name),
                        Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) if if_exists => {
                            eprintln!("topic {name:?} does not exist")
                        }
                        Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                            return Err(conn.unknown_topic(&name));
                        }
                        Err((name, code)) => {
                            bail!("deleting topic {name:?} failed: {code} ({code:?})")
                        }
                    }
                }
            }
            match conn.output {
                Output::Table => {
                    for name in &deleted {
                        eprintln!("deleted topic {name:?}");
                    }
                }
                Output::Json => print_json(&json!({ "deleted": deleted }))?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn find_topic<'m>(
    conn: &ConnectArgs,
    metadata: &'m Metadata,
    topic: &str,
) -> anyhow::Result<&'m MetadataTopic> {
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| conn.unknown_topic(topic))
}

fn list(conn: &ConnectArgs, metadata: &Metadata) -> anyhow::Result<ExitCode> {
    let mut topics: Vec<&MetadataTopic> = metadata.topics().iter().collect();
    topics.sort_by_key(|t| t.name());
    match conn.output {
        Output::Table => {
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|t| {
                    vec![t.name().to_owned(), t.partitions().len().to_string(), replication(t).to_string()]
                })
                .collect();
            print_table(&["TOPIC", "PARTITIONS", "REPLICATION"], &rows)?;
        }
        Output::Json => print_json(&json!(
            topics
                .iter()
                .map(|t| json!({ "topic": t.name(), "partitions": t.partitions().len(), "replication": replication(t) }))
                .collect::<Vec<_>>()
        ))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn replication(topic: &MetadataTopic) -> usize {
    topic.partitions().first().map_or(0, |p| p.replicas().len())
}

fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker => "broker",
        ConfigSource::DynamicDefaultBroker => "cluster",
        ConfigSource::StaticBroker => "broker-static",
        ConfigSource::Default => "default",
        ConfigSource::Unknown => "unknown",
    }
}

fn describe(
    conn: &ConnectArgs,
    admin: &AdminClient<CliContext>,
    probe: &BaseConsumer<CliContext>,
    runtime: &tokio::runtime::Runtime,
    options: &AdminOptions,
    topic: &MetadataTopic,
) -> anyhow::Result<ExitCode> {
    let name = topic.name();
    let configs = runtime
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(name)], options))
        .context("describing the topic's settings")?;
    let resource = match configs.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
            return Err(conn.unknown_topic(name));
        }
        Some(Err(code)) => {
            bail!("describing the settings of topic {name:?} failed: {code} ({code:?})")
        }
        None => bail!("the broker returned no settings for topic {name:?}"),
    };
    let mut entries: Vec<_> = resource.entries.iter().collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut partitions = Vec::new();
    for p in topic.partitions() {
        let (low, high) = probe
            .fetch_watermarks(name, p.id(), conn.timeout)
            .with_context(|| format!("reading the offsets of {name}/{}", p.id()))?;
        partitions.push((p, low, high));
    }
    partitions.sort_by_key(|(p, ..)| p.id());
    match conn.output {
        Output::Table => {
            let mut head = format!(
                "Topic: {name}  Partitions: {}  Replication: {}  Records: {}\nSettings:\n",
                partitions.len(),
                replication(topic),
                partitions
                    .iter()
                    .map(|(_, low, high)| high - low)
                    .sum::<i64>()
            );
            for e in &entries {
                let value = if e.is_sensitive {
                    "(sensitive)"
                } else {
                    e.value.as_deref().unwrap_or("(null)")
                };
                head.push_str(&format!(
                    "  {}={}  ({})\n",
                    e.name,
                    value,
                    source_name(&e.source)
                ));
            }
            super::write_stdout(head.as_bytes())?;
            let ids = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            let rows: Vec<Vec<String>> = partitions
                .iter()
                .map(|(p, low, high)| {
                    vec![
                        p.id().to_string(),
                        p.leader().to_string(),
                        ids(p.replicas()),
                        ids(p.isr()),
                        low.to_string(),
                        high.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "PARTITION",
                    "LEADER",
                    "REPLICAS",
                    "ISR",
                    "LOG-START",
                    "LOG-END",
                ],
                &rows,
            )?;
        }
        Output::Json => {
            let settings: serde_json::Map<String, serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let value = if e.is_sensitive { None } else { e.value.clone() };
                    (e.name.clone(), json!({ "value": value, "source": source_name(&e.source), "read_only": e.is_read_only }))
                })
                .collect();
            print_json(&json!({
                "topic": name,
                "replication": replication(topic),
                "partitions": partitions.iter().map(|(p, low, high)| json!({
                    "partition": p.id(),
                    "leader": p.leader(),
                    "replicas": p.replicas(),
                    "isr": p.isr(),
                    "log_start_offset": low,
                    "log_end_offset": high,
                })).collect::<Vec<_>>(),
                "configs": settings,
            }))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sets and deletes overrides, keeping the others. The classic AlterConfigs request (all librdkafka's Rust
/// binding offers) replaces a topic's whole override set, so the current overrides are read first and sent back
/// with the changes, as kafka-configs did before incremental alter existed. Returns the overrides now in force.
fn alter_config(
    admin: &AdminClient<CliContext>,
    runtime: &tokio::runtime::Runtime,
    options: &AdminOptions,
    topic: &str,
    set: &[(String, String)],
    delete: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut overrides = topic_overrides(admin, runtime, options, topic)?;
    for key in delete {
        if overrides.remove(key).is_none() {
            let known: Vec<&str> = overrides.keys().map(String::as_str).collect();
            bail!(
                "topic {topic:?} has no override {key:?} to delete (its overrides: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    for (key, value) in set {
        overrides.insert(key.clone(), value.clone());
    }
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (key, value) in &overrides {
        alter = alter.set(key, value);
    }
    let results = runtime
        .block_on(admin.alter_configs([&alter], options))
        .context("altering the topic's settings")?;
    let rejected = |why: String| {
        let asked: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        anyhow::anyhow!(
            "the broker did not apply the settings of topic {topic:?} ({}): {why}; check the keys and values \
             (e.g. retention.ms is a number of milliseconds, -1 for forever)",
            asked.join(", ")
        )
    };
    if let Some(Err((_, code))) = results.into_iter().next() {
        return Err(rejected(format!("{code} ({code:?})")));
    }
    // rdkafka 0.39 reports every AlterConfigs resource as a success, even one the broker refused with an error
    // code, so read the overrides back and compare.
    let now = topic_overrides(admin, runtime, options, topic)?;
    for (key, value) in set {
        if now.get(key) != Some(value) {
            let found = now
                .get(key)
                .map_or_else(|| "unset".to_owned(), |v| format!("{v:?}"));
            return Err(rejected(format!("{key} is {found} after the change")));
        }
    }
    if let Some(key) = delete.iter().find(|k| now.contains_key(*k)) {
        return Err(rejected(format!(
            "the override {key} is still set after the change"
        )));
    }
    Ok(now)
}

/// A topic's overrides: the settings whose source is the topic itself.
fn topic_overrides(
    admin: &AdminClient<CliContext>,
    runtime: &tokio::runtime::Runtime,
    options: &AdminOptions,
    topic: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let described = runtime
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], options))
        .context("reading the topic's settings")?;
    let resource = match described.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(code)) => {
            bail!("reading the settings of topic {topic:?} failed: {code} ({code:?})")
        }
        None => bail!("the broker returned no settings for topic {topic:?}"),
    };
    Ok(resource
        .entries
        .iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect())
}
