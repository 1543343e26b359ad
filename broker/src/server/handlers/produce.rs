//! Produce: validate each partition's record batches, stamp offsets, append; reply after the write reached the
//! OS or, with `--fsync always`, after the group commit that covers it. acks=0 gets no reply at all.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use tracing::warn;

use super::str_bytes;
use crate::error::{BatchError, Error};
use crate::log::batch::BatchHeader;
use crate::log::{Appended, LogStore};
use crate::server::Ctx;
use crate::server::dispatch::Reply;

pub fn handle(ctx: &Ctx, req: ProduceRequest, _version: i16) -> Reply {
    let acks = req.acks;
    let mut pending: Vec<(usize, usize, Appended)> = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (t, topic) in req.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            let result = if !matches!(acks, -1..=1) {
                Err(None)
            } else {
                append(ctx, &name, data.index, data.records).map_err(Some)
            };
            let response = PartitionProduceResponse::default().with_index(data.index);
            partitions.push(match result {
                Ok(appended) => {
                    pending.push((t, p, appended));
                    response
                        .with_base_offset(appended.base_offset)
                        .with_log_start_offset(appended.log_start_offset)
                }
                Err(None) => response
                    .with_error_code(ResponseError::InvalidRequiredAcks.code())
                    .with_error_message(Some(str_bytes(format!(
                        "acks={acks}; expected -1, 0 or 1"
                    )))),
                Err(Some(err)) => {
                    warn!(topic = %name, partition = data.index, error = %err, "produce rejected");
                    response
                        .with_error_code(err.code())
                        .with_error_message(Some(str_bytes(err.to_string())))
                }
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return Reply::Nothing;
    }
    let response = ProduceResponse::default().with_responses(responses);
    if pending.iter().all(|(_, _, a)| a.durable_ticket.is_none()) {
        return Reply::Now(response.into());
    }
    let store = ctx.store.clone();
    Reply::Later(Box::pin(wait_durable(store, response, pending)))
}

fn append(
    ctx: &Ctx,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
) -> Result<Appended, Error> {
    let records = records.unwrap_or_default();
    // Kafka's ProduceRequest.validateRecords: v3+ (all we accept) carries exactly one batch per partition, which
    // is also what makes an idempotent retry a single unit.
    let count = batch_count(&records);
    if count > 1 {
        return Err(Error::Batch {
            topic: topic.to_owned(),
            partition,
            source: BatchError::MultipleBatches { count },
        });
    }
    match ctx.store.append(topic, partition, records.clone()) {
        Err(Error::UnknownTopic { .. }) if ctx.config.auto_create_topics => {
            ctx.store
                .ensure_topic(topic, ctx.config.default_partitions)?;
            ctx.store.append(topic, partition, records)
        }
        other => other,
    }
}

/// How many batches the payload holds, judging by the headers' lengths (validation comes later).
fn batch_count(mut records: &[u8]) -> usize {
    let mut count = 0;
    while let Ok(h) = BatchHeader::parse(records) {
        count += 1;
        let len = h.total_len();
        if h.batch_length < 0 || len >= records.len() {
            break;
        }
        records = &records[len..];
    }
    count
}

async fn wait_durable(
    store: LogStore,
    mut response: ProduceResponse,
    pending: Vec<(usize, usize, Appended)>,
) -> ResponseKind {
    for (t, p, appended) in pending {
        if let Err(err) = store.wait_durable(&appended).await {
            let partition = &mut response.responses[t].partition_responses[p];
            partition.error_code = err.code();
            partition.error_message = Some(str_bytes(err.to_string()));
            partition.base_offset = -1;
        }
    }
    response.into()
}
