//! InitProducerId for idempotent producers (v0-v4).
//!
//! As in Kafka, a request without a transactional id always gets a fresh producer id with epoch 0, including a
//! KIP-360 request that names its current id and epoch (Kafka's `TransactionCoordinator.handleInitProducerId`
//! "blindly" allocates a new id for non-transactional producers). Producer ids come from journal-backed blocks
//! of the group coordinator, so none is reused after a restart. Transactions are not implemented: a
//! transactional id is refused, and a client asking for one learns it at once instead of failing later.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::{debug, warn};

use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(tid) = &req.transactional_id {
        if tid.0.is_empty() {
            // Kafka: an empty transactional id is invalid (null means "idempotent only").
            warn!(
                "InitProducerId with an empty transactional id: send null for an idempotent producer"
            );
            return resp.with_error_code(ResponseError::InvalidRequest.code());
        }
        warn!(transactional_id = %tid.0, "InitProducerId with a transactional id refused: this broker \
              implements idempotent producers, not transactions (unset transactional.id)");
        return resp.with_error_code(ResponseError::InvalidRequest.code());
    }
    match ctx.groups.allocate_producer_id() {
        Ok(id) => {
            debug!(
                producer_id = id,
                previous = req.producer_id.0,
                "producer id allocated"
            );
            resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)
        }
        Err(code) => resp.with_error_code(code),
    }
}
