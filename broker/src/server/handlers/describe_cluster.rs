//! DescribeCluster: this single node is the whole cluster and its controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::server::Ctx;

pub fn handle(ctx: &Ctx, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = BrokerId(ctx.config.node_id);
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(str_bytes(ctx.config.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(str_bytes(ctx.host.clone()))
                .with_port(ctx.port),
        ])
}
