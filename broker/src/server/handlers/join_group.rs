//! JoinGroup: answered once the group's join phase completes, so the reply is deferred.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, ResponseKind};

use super::str_bytes;
use crate::group::types::JoinRequest;
use crate::server::Ctx;
use crate::server::dispatch::Reply;

pub fn handle(ctx: &Ctx, req: JoinGroupRequest, version: i16, client_id: &str) -> Reply {
    let request = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: String::new(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout stands in for it.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            -1
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        // KIP-394: from v4 a new member first gets MEMBER_ID_REQUIRED and its id.
        require_known_member_id: version >= 4,
        reason: req.reason.map(|s| s.to_string()),
    };
    let groups = ctx.groups.clone();
    Reply::Later(Box::pin(async move {
        let r = groups.join_group(request).await;
        let members = r
            .members
            .into_iter()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(str_bytes(m.member_id))
                    .with_group_instance_id(if version >= 5 {
                        m.group_instance_id.map(str_bytes)
                    } else {
                        None
                    })
                    .with_metadata(m.metadata)
            })
            .collect();
        let resp = JoinGroupResponse::default()
            .with_error_code(r.error)
            .with_generation_id(r.generation_id)
            .with_protocol_type(if version >= 7 {
                r.protocol_type.map(str_bytes)
            } else {
                None
            })
            .with_protocol_name(if version >= 7 {
                r.protocol_name.map(str_bytes)
            } else {
                Some(str_bytes(r.protocol_name.unwrap_or_default()))
            })
            .with_leader(str_bytes(r.leader))
            .with_skip_assignment(version >= 9 && r.skip_assignment)
            .with_member_id(str_bytes(r.member_id))
            .with_members(members);
        ResponseKind::from(resp)
    }))
}
