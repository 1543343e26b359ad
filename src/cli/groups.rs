//! `busbar groups list|describe|reset`: the kafka-consumer-groups operations. Describe shows per partition the
//! committed offset, the log end and the lag; reset moves a group's committed offsets and, like
//! kafka-consumer-groups, only prints the plan unless `--execute` is given.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::groups::GroupInfo;
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::{CliContext, ConnectArgs, Output, print_json, print_table, time};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// List consumer groups with their state and member count.
    List,
    /// Show a group's members and, per partition, its committed offset, the log end offset and the lag.
    Describe {
        group: String,
        /// Only these topics (repeatable; default: every topic the group has offsets or members on).
        #[arg(long, short = 't')]
        topic: Vec<String>,
    },
    /// Move a group's committed offsets. Prints the plan only, unless --execute. The group must have no
    /// active members.
    Reset(ResetArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])))]
struct ResetArgs {
    group: String,
    /// Topic to reset, `TOPIC` (all partitions) or `TOPIC:0,2` (repeatable).
    #[arg(long, short = 't', value_parser = parse_topic_partitions, value_name = "TOPIC[:P,P…]")]
    topic: Vec<(String, Vec<i32>)>,
    /// Every topic the group has committed offsets on.
    #[arg(long)]
    all_topics: bool,
    /// To each partition's first retained record.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's end (skip everything not consumed yet).
    #[arg(long)]
    to_latest: bool,
    /// To the first record at or after this time (RFC 3339 like 2026-11-21T10:00:00Z, or epoch ms).
    #[arg(long, value_parser = time::parse_timestamp, value_name = "TIME")]
    to_datetime: Option<i64>,
    /// To this offset (clamped to each partition's retained range).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// By this many records from the committed offset, backwards if negative (clamped).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Commit the new offsets (without it, only the plan is printed).
    #[arg(long, conflicts_with = "dry_run")]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long)]
    dry_run: bool,
}

fn parse_topic_partitions(s: &str) -> Result<(String, Vec<i32>), String> {
    let (topic, partitions) = match s.split_once(':') {
        Some((topic, list)) => {
            let partitions: Result<Vec<i32>, _> =
                list.split(',').map(|p| p.trim().parse::<i32>()).collect();
            (
                topic,
                partitions.map_err(|_| format!("expected TOPIC or TOPIC:0,1,2, got {s:?}"))?,
            )
        }
        None => (s, Vec::new()),
    };
    if topic.is_empty() {
        return Err(format!("expected TOPIC or TOPIC:0,1,2, got {s:?}"));
    }
    Ok((topic.to_owned(), partitions))
}

/// One partition of a group: what it committed and where the log ends.
struct PartitionLag {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: i64,
    member: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let conn = &args.conn;
    match args.command {
        Command::List => list(conn),
        Command::Describe { group, topic } => describe(conn, &group, &topic),
        Command::Reset(reset_args) => reset(conn, reset_args),
    }
}

fn consumer(
    conn: &ConnectArgs,
    group: Option<&str>,
) -> anyhow::Result<(BaseConsumer<CliContext>, Metadata)> {
    conn.probe(group)
}

fn list(conn: &ConnectArgs) -> anyhow::Result<ExitCode> {
    let (consumer, _) = consumer(conn, None)?;
    let groups = consumer
        .fetch_group_list(None, conn.timeout)
        .context("listing the consumer groups")?;
    let mut groups: Vec<&GroupInfo> = groups
        .groups()
        .iter()
        .filter(|g| g.state() != "Dead")
        .collect();
    groups.sort_by_key(|g| g.name());
    match conn.output {
        Output::Table => {
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| {
                    vec![
                        g.name().to_owned(),
                        g.state().to_owned(),
                        g.protocol_type().to_owned(),
                        g.members().len().to_string(),
                    ]
                })
                .collect();
            print_table(&["GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"], &rows)?;
        }
        Output::Json => print_json(&json!(
            groups
                .iter()
                .map(|g| json!({
                    "group": g.name(),
                    "state": g.state(),
                    "protocol_type": g.protocol_type(),
                    "members": g.members().len(),
                }))
                .collect::<Vec<_>>()
        ))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A group as DescribeGroups reports it.
#[derive(Default)]
struct Group {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

struct Member {
    id: String,
    client_id: String,
    host: String,
    /// Decoded from the consumer protocol's assignment bytes; empty for other protocols.
    assignment: Vec<(String, Vec<i32>)>,
}

/// A group's state and members; `None` when the broker does not know it.
fn group_info(
    consumer: &BaseConsumer<CliContext>,
    conn: &ConnectArgs,
    group: &str,
) -> anyhow::Result<Option<Group>> {
    let list = consumer
        .fetch_group_list(Some(group), conn.timeout)
        .with_context(|| format!("describing group {group:?}"))?;
    let found = list
        .groups()
        .iter()
        .find(|g| g.name() == group && g.state() != "Dead");
    Ok(found.map(|g| Group {
        state: g.state().to_owned(),
        protocol_type: g.protocol_type().to_owned(),
        protocol: g.protocol().to_owned(),
        members: g
            .members()
            .iter()
            .map(|m| Member {
                id: m.id().to_owned(),
                client_id: m.client_id().to_owned(),
                host: m.client_host().to_owned(),
                assignment: m
                    .assignment()
                    .filter(|_| g.protocol_type() == "consumer")
                    .and_then(busbar_broker::group::subscription::assigned_partitions)
                    .unwrap_or_default(),
            })
            .collect(),
    }))
}

/// The committed offset of every partition the group has one for, among `topics` (all when empty).
fn committed_offsets(
    consumer: &BaseConsumer<CliContext>,
    conn: &ConnectArgs,
    metadata: &Metadata,
    topics: &[String],
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        if topics.is_empty() || topics.iter().any(|name| name == t.name()) {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
    }
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let committed = consumer
        .committed_offsets(tpl, conn.timeout)
        .context("reading the committed offsets")?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(n) => Some(((e.topic().to_owned(), e.partition()), n)),
            _ => None,
        })
        .collect())
}

fn describe(conn: &ConnectArgs, group: &str, topics: &[String]) -> anyhow::Result<ExitCode> {
    let (consumer, metadata) = consumer(conn, Some(group))?;
    for topic in topics {
        super::topics::find_topic(conn, &metadata, topic)?;
    }
    let info = group_info(&consumer, conn, group)?;
    let committed = committed_offsets(&consumer, conn, &metadata, topics)?;
    // A group with offsets but no coordinator record (some brokers drop empty groups) is still worth describing.
    let info = info.or_else(|| {
        (!committed.is_empty()).then(|| Group {
            state: "Empty".into(),
            ..Group::default()
        })
    });
    let Some(info) = info else {
        bail!(
            "consumer group {group:?} does not exist on {} (`busbar groups list` shows the groups)",
            conn.bootstrap_server
        );
    };
    // Partitions: those with a committed offset, plus those assigned to a member that has not committed yet.
    let mut owner: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (i, member) in info.members.iter().enumerate() {
        for (topic, partitions) in &member.assignment {
            for p in partitions {
                owner.insert((topic.clone(), *p), i);
            }
        }
    }
    let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
    keys.extend(
        owner
            .keys()
            .filter(|k| !committed.contains_key(*k))
            .cloned(),
    );
    keys.retain(|(t, _)| topics.is_empty() || topics.contains(t));
    keys.sort();
    let mut rows = Vec::new();
    for (topic, partition) in keys {
        let (_, log_end) = consumer
            .fetch_watermarks(&topic, partition, conn.timeout)
            .with_context(|| format!("reading the log end of {topic}/{partition}"))?;
        rows.push(PartitionLag {
            committed: committed.get(&(topic.clone(), partition)).copied(),
            member: owner.get(&(topic.clone(), partition)).copied(),
            topic,
            partition,
            log_end,
        });
    }
    let lag = |r: &PartitionLag| r.committed.map(|c| (r.log_end - c).max(0));
    let total: i64 = rows.iter().filter_map(lag).sum();
    match conn.output {
        Output::Table => {
            super::write_stdout(
                format!(
                    "Group: {group}  State: {}  Members: {}  Protocol: {}  Total lag: {total}\n",
                    info.state,
                    info.members.len(),
                    if info.protocol.is_empty() {
                        "-"
                    } else {
                        info.protocol.as_str()
                    }
                )
                .as_bytes(),
            )?;
            let dash = || "-".to_owned();
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let m = r.member.map(|i| &info.members[i]);
                    vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        r.committed.map_or_else(dash, |c| c.to_string()),
                        r.log_end.to_string(),
                        lag(r).map_or_else(dash, |l| l.to_string()),
                        m.map_or_else(dash, |m| m.id.clone()),
                        m.map_or_else(dash, |m| m.host.clone()),
                        m.map_or_else(dash, |m| m.client_id.clone()),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ],
                &table,
            )?;
        }
        Output::Json => print_json(&json!({
            "group": group,
            "state": info.state,
            "protocol_type": info.protocol_type,
            "protocol": info.protocol,
            "members": info.members.iter().map(|m| json!({
                "id": m.id,
                "client_id": m.client_id,
                "host": m.host,
                "assignment": m.assignment.iter().map(|(t, ps)| json!({ "topic": t, "partitions": ps })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "partitions": rows.iter().map(|r| json!({
                "topic": r.topic,
                "partition": r.partition,
                "committed_offset": r.committed,
                "log_end_offset": r.log_end,
                "lag": lag(r),
                "member": r.member.map(|i| &info.members[i].id),
            })).collect::<Vec<_>>(),
            "lag": total,
        }))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn reset(conn: &ConnectArgs, args: ResetArgs) -> anyhow::Result<ExitCode> {
    let group = args.group.as_str();
    let (consumer, metadata) = consumer(conn, Some(group))?;
    if let Some(info) = group_info(&consumer, conn, group)?
        && !info.members.is_empty()
    {
        let message = format!(
            "consumer group {group:?} is active (state {}, {} members): offsets can only be reset while it has no \
             members; stop its consumers first",
            info.state,
            info.members.len()
        );
        if args.execute {
            bail!(message);
        }
        eprintln!("warning: {message}");
    }
    // The partitions to move.
    let mut scope: Vec<(String, i32)> = Vec::new();
    let topic_names: Vec<String> = args.topic.iter().map(|(t, _)| t.clone()).collect();
    for (topic, partitions) in &args.topic {
        let found = super::topics::find_topic(conn, &metadata, topic)?;
        let all: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        if let Some(p) = partitions.iter().find(|p| !all.contains(p)) {
            bail!(
                "topic {topic:?} has partitions 0..{}; partition {p} does not exist",
                all.len() - 1
            );
        }
        let chosen = if partitions.is_empty() {
            &all
        } else {
            partitions
        };
        scope.extend(chosen.iter().map(|p| (topic.clone(), *p)));
    }
    let committed = committed_offsets(&consumer, conn, &metadata, &topic_names)?;
    if args.all_topics {
        scope = committed.keys().cloned().collect();
        if scope.is_empty() {
            bail!(
                "consumer group {group:?} has no committed offsets; name the topics with --topic TOPIC"
            );
        }
    }
    scope.sort();
    scope.dedup();
    // New offsets, clamped to what each partition retains.
    let mut by_time = BTreeMap::new();
    if let Some(ms) = args.to_datetime {
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in &scope {
            tpl.add_partition_offset(topic, *p, Offset::Offset(ms))?;
        }
        let found = consumer
            .offsets_for_times(tpl, conn.timeout)
            .with_context(|| format!("looking up offsets at {}", time::format_timestamp(ms)))?;
        for e in found.elements() {
            if let Offset::Offset(n) = e.offset()
                && n >= 0
            {
                by_time.insert((e.topic().to_owned(), e.partition()), n);
            }
        }
    }
    let mut plan = Vec::new();
    for key in &scope {
        let (topic, partition) = key;
        let (low, high) = consumer
            .fetch_watermarks(topic, *partition, conn.timeout)
            .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
        let current = committed.get(key).copied();
        let new = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if let Some(n) = args.to_offset {
            n.clamp(low, high)
        } else if let Some(shift) = args.shift_by {
            let Some(c) = current else {
                bail!(
                    "{topic}/{partition} has no committed offset for group {group:?} to shift from; use --to-offset"
                );
            };
            c.saturating_add(shift).clamp(low, high)
        } else {
            // --to-datetime: no record at or after that time means the end.
            by_time.get(key).copied().unwrap_or(high)
        };
        plan.push((topic.clone(), *partition, current, new));
    }
    if args.execute {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, _, new) in &plan {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*new))?;
        }
        consumer.commit(&tpl, CommitMode::Sync).with_context(|| {
            format!("committing the new offsets of group {group:?} (is it still active? stop its consumers first)")
        })?;
    }
    match conn.output {
        Output::Table => {
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|(t, p, current, new)| {
                    vec![
                        group.to_owned(),
                        t.clone(),
                        p.to_string(),
                        current.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                        new.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "NEW-OFFSET",
                ],
                &rows,
            )?;
            if args.execute {
                eprintln!("committed the new offsets of group {group:?}");
            } else {
                eprintln!("dry run: nothing changed; add --execute to commit these offsets");
            }
        }
        Output::Json => print_json(&json!({
            "group": group,
            "executed": args.execute,
            "partitions": plan.iter().map(|(t, p, current, new)| json!({
                "topic": t, "partition": p, "current_offset": current, "new_offset": new,
            })).collect::<Vec<_>>(),
        }))?,
    }
    Ok(ExitCode::SUCCESS)
}
