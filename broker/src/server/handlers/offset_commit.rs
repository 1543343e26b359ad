//! OffsetCommit: partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION, the rest go to the coordinator.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::group::codes::UNKNOWN_TOPIC_OR_PARTITION;
use crate::group::types::{CommitPartition, CommitRequest};
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let mut commit = CommitRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        partitions: Vec::new(),
    };
    // (topic index, partition index, code) for every partition, filled in request order.
    let mut codes: Vec<Vec<i16>> = Vec::with_capacity(req.topics.len());
    let mut slots = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let partitions = ctx
            .store
            .topic_info(&t.name.0)
            .map(|i| i.partitions)
            .unwrap_or(-1);
        let mut topic_codes = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.iter().enumerate() {
            if p.partition_index < 0 || p.partition_index >= partitions {
                topic_codes.push(UNKNOWN_TOPIC_OR_PARTITION);
                continue;
            }
            topic_codes.push(0);
            slots.push((ti, pi));
            commit.partitions.push(CommitPartition {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
        codes.push(topic_codes);
    }
    if !commit.partitions.is_empty() {
        for ((ti, pi), code) in slots.into_iter().zip(ctx.groups.commit_offsets(&commit)) {
            codes[ti][pi] = code;
        }
    }
    let topics = req
        .topics
        .into_iter()
        .zip(codes)
        .map(|(t, codes)| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
