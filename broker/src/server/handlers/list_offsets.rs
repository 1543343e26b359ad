//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4, the same as earliest here)
//! and first offset at or after a timestamp.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::log::OffsetSpec;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    // The leader epoch exists from v4 on; the encoder refuses a non-default value in older versions.
    let epoch = if version >= 4 { 0 } else { -1 };
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let spec = match p.timestamp {
                        -1 => OffsetSpec::Latest,
                        -2 | -4 => OffsetSpec::Earliest,
                        -3 => OffsetSpec::MaxTimestamp,
                        ts if ts >= 0 => OffsetSpec::Timestamp(ts),
                        other => {
                            tracing::warn!(topic = %name, timestamp = other, "unsupported ListOffsets timestamp");
                            return response.with_error_code(ResponseError::InvalidRequest.code());
                        }
                    };
                    match ctx.store.list_offsets(name, p.partition_index, spec) {
                        Ok(Some((offset, timestamp))) => {
                            response.with_offset(offset).with_timestamp(timestamp).with_leader_epoch(epoch)
                        }
                        Ok(None) => response.with_offset(-1).with_timestamp(-1),
                        Err(err) => response.with_error_code(err.code()).with_offset(-1).with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
