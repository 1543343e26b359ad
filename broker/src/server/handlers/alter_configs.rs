//! AlterConfigs (replace all overrides of a topic) and IncrementalAlterConfigs (set/delete single keys).
//! Changes apply online: the next append and the next housekeeping pass use them.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::error::Error;
use crate::log::ConfigOp;
use crate::server::Ctx;

/// Error for resources other than topics: broker settings are process flags.
fn not_a_topic(resource_type: i8) -> (i16, Option<StrBytes>) {
    let reason = if resource_type == RESOURCE_BROKER {
        "broker settings are command-line flags and cannot be altered at run time".to_owned()
    } else {
        format!("resource type {resource_type} cannot be altered; only topics (2) can")
    };
    (
        ResponseError::InvalidRequest.code(),
        Some(str_bytes(reason)),
    )
}

fn outcome(topic: &str, result: Result<(), Error>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(err) => {
            warn!(%topic, error = %err, "alter configs failed");
            (err.code(), Some(str_bytes(err.to_string())))
        }
    }
}

pub fn handle(ctx: &Ctx, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|resource| {
            let (code, message) = if resource.resource_type == RESOURCE_TOPIC {
                let name = resource.resource_name.as_str();
                let overrides: BTreeMap<String, String> = resource
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                outcome(
                    name,
                    ctx.store.replace_config(name, overrides, req.validate_only),
                )
            } else {
                not_a_topic(resource.resource_type)
            };
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub fn handle_incremental(
    ctx: &Ctx,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|resource| {
            let (code, message) = if resource.resource_type == RESOURCE_TOPIC {
                let name = resource.resource_name.as_str();
                let ops: Result<Vec<ConfigOp>, Error> = resource
                    .configs
                    .iter()
                    .map(|c| match (c.config_operation, &c.value) {
                        (0, Some(value)) => Ok(ConfigOp::Set(c.name.to_string(), value.to_string())),
                        (1, _) => Ok(ConfigOp::Delete(c.name.to_string())),
                        (op, value) => Err(Error::InvalidConfig {
                            key: c.name.to_string(),
                            value: value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                            reason: format!("operation {op} is not supported here; use SET (0) with a value or DELETE (1)"),
                        }),
                    })
                    .collect();
                outcome(name, ops.and_then(|ops| ctx.store.alter_config(name, &ops, req.validate_only)))
            } else {
                not_a_topic(resource.resource_type)
            };
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
