//! DeleteTopics: by name (v1-5) or by name or topic id (v6).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use tracing::warn;

use super::{code_and_message, topic_name};
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let name = name.or_else(|| {
                ctx.store
                    .topics()
                    .into_iter()
                    .find(|t| t.id == id)
                    .map(|t| t.name)
            });
            let Some(name) = name else {
                return DeletableTopicResult::default()
                    .with_topic_id(id)
                    .with_error_code(ResponseError::UnknownTopicId.code());
            };
            let topic_id = ctx.store.topic_info(&name).map(|t| t.id).unwrap_or(id);
            let result = ctx.store.delete_topic(&name);
            if let Err(err) = &result {
                warn!(topic = %name, error = %err, "delete topic failed");
            }
            let (code, message) = code_and_message(&result);
            let mut entry = DeletableTopicResult::default()
                .with_name(Some(topic_name(name)))
                .with_error_code(code);
            if version >= 5 {
                entry = entry.with_error_message(message);
            }
            if version >= 6 {
                entry = entry.with_topic_id(topic_id);
            }
            entry
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
