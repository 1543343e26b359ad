//! LeaveGroup: one member (v0-2) or a batch of members, by member id or group.instance.id (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::str_bytes;
use crate::group::types::LeavingMember;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members = if version >= 3 {
        req.members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let r = ctx.groups.leave_group(&req.group_id.0, members);
    if version < 3 {
        // Before batching, the one member's outcome is the top-level error.
        let code = if r.error != 0 {
            r.error
        } else {
            r.members.first().map_or(0, |(_, c)| *c)
        };
        return LeaveGroupResponse::default().with_error_code(code);
    }
    LeaveGroupResponse::default()
        .with_error_code(r.error)
        .with_members(
            r.members
                .into_iter()
                .map(|(m, code)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(str_bytes))
                        .with_error_code(code)
                })
                .collect(),
        )
}
