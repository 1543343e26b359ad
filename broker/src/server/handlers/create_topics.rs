//! CreateTopics: partitions (or the broker default), replication factor 1 (this is a single node), configs,
//! validate-only.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use super::str_bytes;
use crate::error::Error;
use crate::log::config::KEYS;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let result = if !matches!(topic.replication_factor, -1 | 1) {
                Err((
                    ResponseError::InvalidReplicationFactor.code(),
                    format!(
                        "replication factor {} requested; this single broker supports only 1",
                        topic.replication_factor
                    ),
                ))
            } else {
                let partitions = if !topic.assignments.is_empty() {
                    topic.assignments.len() as i32
                } else if topic.num_partitions == -1 {
                    ctx.config.default_partitions
                } else {
                    topic.num_partitions
                };
                let overrides: BTreeMap<String, String> = topic
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                ctx.store
                    .create_topic(&name, partitions, overrides, req.validate_only)
                    .map_err(|err: Error| (err.code(), err.to_string()))
            };
            let mut entry = CreatableTopicResult::default().with_name(topic.name);
            match result {
                Ok(info) => {
                    entry = entry
                        .with_num_partitions(info.partitions)
                        .with_replication_factor(1);
                    if version >= 7 {
                        entry = entry.with_topic_id(info.id);
                    }
                    if version >= 5 {
                        entry = entry.with_configs(Some(effective_configs(ctx, &name)));
                    }
                }
                Err((code, message)) => {
                    warn!(topic = %name, error = %message, "create topic failed");
                    entry = entry
                        .with_error_code(code)
                        .with_error_message(Some(str_bytes(message)));
                }
            }
            entry
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn effective_configs(ctx: &Ctx, name: &str) -> Vec<CreatableTopicConfigs> {
    // Under validate_only the topic does not exist: report the defaults.
    let (config, overrides) = ctx
        .store
        .topic_config(name)
        .unwrap_or((ctx.config.topic_defaults, BTreeMap::new()));
    KEYS.iter()
        .map(|key| {
            let source = if overrides.contains_key(*key) { 1 } else { 5 };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(key))
                .with_value(config.get(key).map(str_bytes))
                .with_config_source(source)
        })
        .collect()
}
