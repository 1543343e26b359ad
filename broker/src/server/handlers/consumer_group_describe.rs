//! ConsumerGroupDescribe (KIP-848): epochs, members, current and target assignments.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId,
};

use super::{str_bytes, topic_name};
use crate::group::TopicCatalog;
use crate::group::types;
use crate::server::Ctx;

fn assignment(a: types::Assignment, catalog: &dyn TopicCatalog) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.into_iter()
            .map(|(id, parts)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(topic_name(catalog.topic_name(id).unwrap_or_default()))
                    .with_partitions(parts.into_iter().collect())
            })
            .collect(),
    )
}

pub fn handle(
    ctx: &Ctx,
    req: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let ids: Vec<String> = req.group_ids.iter().map(|g| g.0.to_string()).collect();
    let groups = ctx
        .groups
        .consumer_describe(&ids, &ctx.store)
        .into_iter()
        .map(|d| {
            DescribedGroup::default()
                .with_group_id(GroupId(str_bytes(d.group_id)))
                .with_error_code(d.error)
                .with_error_message(d.error_message.map(str_bytes))
                .with_group_state(str_bytes(d.state))
                .with_group_epoch(d.group_epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(str_bytes(d.assignor))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            let member = Member::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_instance_id(m.instance_id.map(str_bytes))
                                .with_rack_id(m.rack_id.map(str_bytes))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_topic_names
                                        .into_iter()
                                        .map(topic_name)
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(
                                    m.subscribed_topic_regex.map(str_bytes),
                                )
                                .with_assignment(assignment(m.assignment, &ctx.store))
                                .with_target_assignment(assignment(
                                    m.target_assignment,
                                    &ctx.store,
                                ));
                            // v1 tells consumer-protocol members (1) from classic ones (0).
                            if version >= 1 {
                                member.with_member_type(1)
                            } else {
                                member
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
