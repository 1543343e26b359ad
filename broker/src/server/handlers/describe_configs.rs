//! DescribeConfigs: a topic's effective settings (overrides marked as dynamic topic configs), or the broker's
//! topic defaults under their broker-level names.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::log::config::{self, KEYS, TopicConfig};
use crate::server::Ctx;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// Kafka's config type codes (v3+): STRING 2, INT 3, LONG 5, LIST 7.
fn config_type(key: &str) -> i8 {
    match key {
        config::CLEANUP_POLICY => 7,
        config::MAX_MESSAGE_BYTES | config::SEGMENT_BYTES => 3,
        _ => 5,
    }
}

/// The broker-level name of a topic default, as Kafka spells it.
fn broker_key(key: &str) -> &'static str {
    match key {
        config::CLEANUP_POLICY => "log.cleanup.policy",
        config::MAX_MESSAGE_BYTES => "message.max.bytes",
        config::RETENTION_BYTES => "log.retention.bytes",
        config::RETENTION_MS => "log.retention.ms",
        config::DELETE_RETENTION_MS => "log.cleaner.delete.retention.ms",
        config::SEGMENT_BYTES => "log.segment.bytes",
        _ => "log.roll.ms",
    }
}

pub fn handle(ctx: &Ctx, req: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|resource| {
            let wanted = |key: &str| {
                resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            let entry = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TOPIC => match ctx.store.topic_config(resource.resource_name.as_str()) {
                    Ok((effective, overrides)) => entry.with_configs(
                        KEYS.iter()
                            .filter(|k| wanted(k))
                            .map(|key| {
                                let source = if overrides.contains_key(*key) { SOURCE_DYNAMIC_TOPIC } else { SOURCE_DEFAULT };
                                describe(key, key, &effective, source, false, version)
                            })
                            .collect(),
                    ),
                    Err(err) => entry.with_error_code(err.code()).with_error_message(Some(str_bytes(err.to_string()))),
                },
                RESOURCE_BROKER if resource.resource_name.as_str() == ctx.config.node_id.to_string() || resource.resource_name.is_empty() => {
                    let defaults = ctx.config.topic_defaults;
                    entry.with_configs(
                        KEYS.iter()
                            .filter(|k| wanted(broker_key(k)))
                            .map(|key| describe(broker_key(key), key, &defaults, SOURCE_STATIC_BROKER, true, version))
                            .collect(),
                    )
                }
                other => entry.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(str_bytes(
                    format!("resource type {other} named {:?} is not described by this broker (topics: 2, broker {}: 4)", resource.resource_name.as_str(), ctx.config.node_id),
                ))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(
    name: &'static str,
    key: &str,
    config: &TopicConfig,
    source: i8,
    read_only: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(config.get(key).map(str_bytes))
        .with_read_only(read_only)
        .with_config_source(source);
    if version >= 3 {
        result = result.with_config_type(config_type(key));
    }
    result
}
