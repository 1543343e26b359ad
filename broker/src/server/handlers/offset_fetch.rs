//! OffsetFetch: one group (v0-7) or several (v8+); a null topic list means every committed offset.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use super::{str_bytes, topic_name};
use crate::group::types::FetchedOffset;
use crate::server::Ctx;

/// Rows grouped by topic, in the order they came.
fn by_topic(rows: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some((t, v)) if *t == r.topic => v.push(r),
            _ => out.push((r.topic.clone(), vec![r])),
        }
    }
    out
}

pub fn handle(ctx: &Ctx, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes))
                        .collect()
                });
                let member = g.member_id.as_ref().map(|m| (m.as_str(), g.member_epoch));
                let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match ctx
                    .groups
                    .fetch_offsets(&g.group_id.0, member, topics.as_deref())
                {
                    Err(code) => out.with_error_code(code),
                    Ok(rows) => out.with_topics(
                        by_topic(rows)
                            .into_iter()
                            .map(|(t, rows)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(topic_name(t))
                                    .with_partitions(
                                        rows.into_iter()
                                            .map(|r| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(r.partition)
                                                    .with_committed_offset(r.offset)
                                                    .with_committed_leader_epoch(r.leader_epoch)
                                                    .with_metadata(Some(str_bytes(r.metadata)))
                                                    .with_error_code(r.error)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let partition = |r: FetchedOffset| {
        let p = OffsetFetchResponsePartition::default()
            .with_partition_index(r.partition)
            .with_committed_offset(r.offset)
            .with_metadata(Some(str_bytes(r.metadata)))
            .with_error_code(r.error);
        if version >= 5 {
            p.with_committed_leader_epoch(r.leader_epoch)
        } else {
            p
        }
    };
    match ctx
        .groups
        .fetch_offsets(&req.group_id.0, None, topics.as_deref())
    {
        Ok(rows) => OffsetFetchResponse::default().with_topics(
            by_topic(rows)
                .into_iter()
                .map(|(t, rows)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(rows.into_iter().map(partition).collect())
                })
                .collect(),
        ),
        // v0-1 have no top-level error: it goes on every requested partition.
        Err(code) if version < 2 => OffsetFetchResponse::default().with_topics(
            topics
                .unwrap_or_default()
                .into_iter()
                .map(|(t, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(t.clone()))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|p| {
                                    partition(FetchedOffset {
                                        topic: t.clone(),
                                        partition: p,
                                        offset: -1,
                                        leader_epoch: -1,
                                        metadata: String::new(),
                                        error: code,
                                    })
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(code) => OffsetFetchResponse::default().with_error_code(code),
    }
}
