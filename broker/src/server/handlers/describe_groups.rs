//! DescribeGroups: state, protocol and members (with metadata and assignment when Stable) of each group.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

use super::str_bytes;
use crate::group::codes::GROUP_ID_NOT_FOUND;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let ids: Vec<String> = req.groups.iter().map(|g| g.0.to_string()).collect();
    let groups = ctx
        .groups
        .describe_groups(&ids, &ctx.store)
        .into_iter()
        .map(|d| {
            let unknown = d.state == "Dead";
            let mut g = DescribedGroup::default()
                .with_group_id(GroupId(str_bytes(d.group_id.clone())))
                .with_error_code(d.error)
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_group_instance_id(if version >= 4 {
                                    m.group_instance_id.map(str_bytes)
                                } else {
                                    None
                                })
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                );
            // v6 (KIP-1043) reports unknown groups as an error instead of a Dead group.
            if version >= 6 && unknown {
                g = g
                    .with_error_code(GROUP_ID_NOT_FOUND)
                    .with_error_message(Some(str_bytes(format!("group {} not found", d.group_id))));
            }
            g
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
