//! FindCoordinator: this single broker coordinates every group (and every transactional id).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::str_bytes;
use crate::group::codes::{INVALID_REQUEST, NONE};
use crate::server::Ctx;

/// Key types: 0 = group, 1 = transactional id (KIP-98). Anything else is a malformed request.
fn error_for(key_type: i8) -> i16 {
    if key_type == 0 || key_type == 1 {
        NONE
    } else {
        INVALID_REQUEST
    }
}

pub fn handle(ctx: &Ctx, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let node = BrokerId(ctx.config.node_id);
    let error = error_for(req.key_type);
    if version >= 4 {
        // v4+ batches keys (KIP-699): one coordinator entry per key.
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key).with_error_code(error);
                if error == NONE {
                    c.with_node_id(node)
                        .with_host(str_bytes(ctx.host.clone()))
                        .with_port(ctx.port)
                } else {
                    c.with_node_id(BrokerId(-1))
                        .with_error_message(Some(str_bytes(format!(
                            "unknown key type {}",
                            req.key_type
                        ))))
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let resp = FindCoordinatorResponse::default().with_error_code(error);
    if error != NONE {
        let resp = resp.with_node_id(BrokerId(-1));
        return if version >= 1 {
            resp.with_error_message(Some(str_bytes(format!(
                "unknown key type {}",
                req.key_type
            ))))
        } else {
            resp
        };
    }
    resp.with_node_id(node)
        .with_host(str_bytes(ctx.host.clone()))
        .with_port(ctx.port)
}
