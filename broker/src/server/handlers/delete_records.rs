//! DeleteRecords: move a partition's log start offset forward; whole segments below it are removed.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tracing::warn;

use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let entry = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match ctx.store.delete_records(name, p.partition_index, p.offset) {
                        Ok(low_watermark) => entry.with_low_watermark(low_watermark),
                        Err(err) => {
                            warn!(topic = %name, partition = p.partition_index, offset = p.offset, error = %err, "delete records failed");
                            entry.with_low_watermark(-1).with_error_code(err.code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
