//! Heartbeat: a classic member keeps its session and learns whether a rebalance started.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::group::types;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = ctx.groups.heartbeat(&types::HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
    });
    HeartbeatResponse::default().with_error_code(code)
}
