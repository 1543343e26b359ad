//! CreatePartitions: grow a topic (never shrink it).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use tracing::warn;

use super::code_and_message;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let results = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let result = ctx
                .store
                .create_partitions(name, topic.count, req.validate_only);
            if let Err(err) = &result {
                warn!(topic = %name, count = topic.count, error = %err, "create partitions failed");
            }
            let (code, message) = code_and_message(&result);
            CreatePartitionsTopicResult::default()
                .with_name(topic.name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
