//! SyncGroup: the leader hands out assignments; followers wait for theirs, so the reply is deferred.

use kafka_protocol::messages::{ResponseKind, SyncGroupRequest, SyncGroupResponse};

use super::str_bytes;
use crate::group::types::SyncRequest;
use crate::server::Ctx;
use crate::server::dispatch::Reply;

pub fn handle(ctx: &Ctx, req: SyncGroupRequest, version: i16) -> Reply {
    let request = SyncRequest {
        group_id: req.group_id.0.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let groups = ctx.groups.clone();
    Reply::Later(Box::pin(async move {
        let r = groups.sync_group(request).await;
        let resp = SyncGroupResponse::default()
            .with_error_code(r.error)
            .with_assignment(r.assignment);
        let resp = if version >= 5 {
            resp.with_protocol_type(r.protocol_type.map(str_bytes))
                .with_protocol_name(r.protocol_name.map(str_bytes))
        } else {
            resp
        };
        ResponseKind::from(resp)
    }))
}
