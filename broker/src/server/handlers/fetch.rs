//! Fetch: whole record batches from each requested partition, waiting up to `max_wait_ms` until `min_bytes`
//! are available. Incremental fetch sessions are not kept: a client asking for one gets session id 0, which
//! tells it to keep sending full fetch requests (KIP-227 allows this).

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind};
use tracing::debug;

use crate::log::LogStore;
use crate::server::Ctx;
use crate::server::dispatch::Reply;

/// Longest wait honoured, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub fn handle(ctx: &Ctx, req: FetchRequest, _version: i16) -> Reply {
    if req.session_id != 0 || req.session_epoch > 0 {
        // An incremental fetch in a session we never created.
        let response =
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        return Reply::Now(response.into());
    }
    let store = ctx.store.clone();
    Reply::Later(Box::pin(long_poll(store, req)))
}

async fn long_poll(store: LogStore, req: FetchRequest) -> ResponseKind {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = store.subscribe();
    loop {
        changes.borrow_and_update();
        let (response, bytes, errors) = read_once(&store, &req);
        if bytes >= req.min_bytes.max(1) as usize || errors {
            return response.into();
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            return response.into();
        }
    }
}

/// One pass over the requested partitions. Returns the response, the record bytes in it and whether any
/// partition reported an error (errors are answered at once).
fn read_once(store: &LogStore, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let mut remaining = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        usize::MAX
    };
    let mut total = 0;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = topic.topic.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let response = PartitionData::default().with_partition_index(p.partition);
            // Past the response limit a partition is listed with its offsets but no records.
            let max = (p.partition_max_bytes.max(0) as usize).min(remaining);
            let result = if max == 0 && total > 0 {
                store
                    .offsets(name, p.partition)
                    .map(|o| (bytes::Bytes::new(), o.high_watermark, o.log_start))
            } else {
                store
                    .fetch(name, p.partition, p.fetch_offset, max)
                    .map(|f| (f.records, f.high_watermark, f.log_start_offset))
            };
            partitions.push(match result {
                Ok((records, high_watermark, log_start)) => {
                    total += records.len();
                    remaining = remaining.saturating_sub(records.len());
                    response
                        .with_high_watermark(high_watermark)
                        .with_last_stable_offset(high_watermark)
                        .with_log_start_offset(log_start)
                        .with_records(Some(records))
                }
                Err(err) => {
                    debug!(topic = %name, partition = p.partition, offset = p.fetch_offset, error = %err, "fetch error");
                    errors = true;
                    let offsets = store.offsets(name, p.partition).ok();
                    response
                        .with_error_code(err.code())
                        .with_high_watermark(offsets.map_or(-1, |o| o.high_watermark))
                        .with_last_stable_offset(offsets.map_or(-1, |o| o.high_watermark))
                        .with_log_start_offset(offsets.map_or(-1, |o| o.log_start))
                        .with_records(Some(bytes::Bytes::new()))
                }
            });
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}
