//! Metadata: the single broker, and the requested (or all) topics with their partitions, all led by this node.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use tracing::warn;

use super::{str_bytes, topic_name};
use crate::error::Error;
use crate::log::TopicInfo;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: MetadataRequest, version: i16) -> MetadataResponse {
    let node = BrokerId(ctx.config.node_id);
    // v0 has no null: an empty list means "all topics". From v1 on, null means all and empty means none.
    let all =
        req.topics.is_none() || (version == 0 && req.topics.as_ref().is_some_and(Vec::is_empty));
    let allow_create =
        ctx.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let topics = if all {
        ctx.store
            .topics()
            .into_iter()
            .map(|t| topic_entry(node, Ok(t)))
            .collect()
    } else {
        req.topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let Some(name) = t.name else {
                    // Lookup by topic id (v10+).
                    let found = ctx.store.topics().into_iter().find(|i| i.id == t.topic_id);
                    return match found {
                        Some(info) => topic_entry(node, Ok(info)),
                        None => MetadataResponseTopic::default()
                            .with_topic_id(t.topic_id)
                            .with_error_code(ResponseError::UnknownTopicId.code()),
                    };
                };
                let name = name.0.to_string();
                let info = match ctx.store.topic_info(&name) {
                    Err(Error::UnknownTopic { .. }) if allow_create => ctx
                        .store
                        .ensure_topic(&name, ctx.config.default_partitions)
                        .inspect_err(|err| {
                            warn!(topic = %name, error = %err, "auto-creating topic failed");
                        }),
                    other => other,
                };
                match info {
                    Ok(info) => topic_entry(node, Ok(info)),
                    Err(err) => topic_entry(node, Err((name, err))),
                }
            })
            .collect()
    };
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(node)
                .with_host(str_bytes(ctx.host.clone()))
                .with_port(ctx.port),
        ])
        .with_cluster_id(Some(str_bytes(ctx.config.cluster_id.clone())))
        .with_controller_id(node)
        .with_topics(topics)
}

fn topic_entry(node: BrokerId, info: Result<TopicInfo, (String, Error)>) -> MetadataResponseTopic {
    match info {
        Ok(info) => MetadataResponseTopic::default()
            .with_name(Some(topic_name(info.name)))
            .with_topic_id(info.id)
            .with_partitions(
                (0..info.partitions)
                    .map(|i| {
                        MetadataResponsePartition::default()
                            .with_partition_index(i)
                            .with_leader_id(node)
                            .with_leader_epoch(0)
                            .with_replica_nodes(vec![node])
                            .with_isr_nodes(vec![node])
                    })
                    .collect(),
            ),
        Err((name, err)) => MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_error_code(err.code()),
    }
}
