//! ListGroups, with the state filter (v4+) and the type filter (v5+).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    let groups = ctx
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .map(|l| {
            let g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(l.group_id)))
                .with_protocol_type(str_bytes(l.protocol_type));
            let g = if version >= 4 {
                g.with_group_state(str_bytes(l.state))
            } else {
                g
            };
            if version >= 5 {
                g.with_group_type(str_bytes(l.group_type))
            } else {
                g
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
