//! The loopback ceiling: a Kafka server in the bench process that does the least the protocol allows, so the
//! same librdkafka client measured against it shows what the client and the loopback reach on this machine.
//!
//! - Produce is answered from memory: the batch header's record count advances the partition's offset and the
//!   bytes are dropped. Idempotent producers work (InitProducerId hands out ids; sequences are not checked).
//! - Fetch re-serves one prebuilt v2 record batch with advancing base offsets (the base offset is outside the
//!   batch CRC, so each copy stays valid) up to `records_per_partition` records per partition, within the
//!   request's byte limits, as a log of same-sized batches would answer.
//! - ApiVersions, Metadata (one broker, every topic asked for with `partitions` partitions), ListOffsets and
//!   FindCoordinator (this server) answer what a producer and an assigned consumer send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The versions this server implements (a subset of busbar's, so clients speak the same versions to both).
const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::InitProducerId, 0, 4),
];

/// What the server serves to consumers.
#[derive(Clone)]
pub struct Serve {
    pub partitions: i32,
    /// Records per batch in fetch responses (the mean batch of the log being compared with).
    pub batch_records: usize,
    /// Records each partition holds for consumers (rounded up to whole batches).
    pub records_per_partition: usize,
    pub record_bytes: usize,
}

struct Fetchable {
    batch: Bytes,
    batch_records: i64,
    high_watermark: i64,
}

/// Starts the server on a loopback port.
pub async fn start(serve: Serve) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let batch_records = serve.batch_records.max(1);
    let fetchable = std::sync::Arc::new(Fetchable {
        batch: super::batch(batch_records, serve.record_bytes, None),
        batch_records: batch_records as i64,
        high_watermark: serve.records_per_partition.div_ceil(batch_records) as i64
            * batch_records as i64,
    });
    tokio::spawn(async move {
        let mut next_producer_id = 1000;
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            next_producer_id += 1;
            let conn = Conn {
                addr,
                partitions: serve.partitions,
                fetchable: fetchable.clone(),
                producer_id: next_producer_id,
                next_offset: BTreeMap::new(),
            };
            tokio::spawn(conn.run(stream));
        }
    });
    addr
}

struct Conn {
    addr: SocketAddr,
    partitions: i32,
    fetchable: std::sync::Arc<Fetchable>,
    producer_id: i64,
    next_offset: BTreeMap<(TopicName, i32), i64>,
}

impl Conn {
    async fn run(mut self, mut stream: tokio::net::TcpStream) {
        let mut buf = BytesMut::with_capacity(1 << 20);
        let mut out = BytesMut::new();
        loop {
            while buf.len() >= 4
                && buf.len() >= 4 + i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize
            {
                let size = buf.get_i32() as usize;
                let mut frame = buf.split_to(size).freeze();
                let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                let header =
                    RequestHeader::decode(&mut frame, key.request_header_version(version)).unwrap();
                let request = RequestKind::decode(key, &mut frame, version).unwrap();
                let body = self.answer(request, version).await;
                let start = out.len();
                out.put_i32(0);
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id)
                    .encode(&mut out, key.response_header_version(version))
                    .unwrap();
                body.encode(&mut out, version).unwrap();
                let len = (out.len() - start - 4) as i32;
                out[start..start + 4].copy_from_slice(&len.to_be_bytes());
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    async fn answer(&mut self, request: RequestKind, version: i16) -> ResponseKind {
        match request {
            RequestKind::ApiVersions(_) => ApiVersionsResponse::default()
                .with_api_keys(
                    VERSIONS
                        .iter()
                        .map(|&(k, min, max)| {
                            ApiVersion::default()
                                .with_api_key(k as i16)
                                .with_min_version(min)
                                .with_max_version(max)
                        })
                        .collect(),
                )
                .into(),
            RequestKind::Metadata(req) => self.metadata(req).into(),
            RequestKind::FindCoordinator(req) => {
                let me = |key: StrBytes| {
                    Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(self.addr.port()))
                };
                if version >= 4 {
                    FindCoordinatorResponse::default()
                        .with_coordinators(req.coordinator_keys.into_iter().map(me).collect())
                        .into()
                } else {
                    FindCoordinatorResponse::default()
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(self.addr.port()))
                        .into()
                }
            }
            RequestKind::InitProducerId(_) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(self.producer_id))
                .with_producer_epoch(0)
                .into(),
            RequestKind::ListOffsets(req) => ListOffsetsResponse::default()
                .with_topics(
                    req.topics
                        .into_iter()
                        .map(|t| {
                            ListOffsetsTopicResponse::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            // -1 asks for the end, anything else gets the start.
                                            let offset = if p.timestamp == -1 {
                                                self.fetchable.high_watermark
                                            } else {
                                                0
                                            };
                                            ListOffsetsPartitionResponse::default()
                                                .with_partition_index(p.partition_index)
                                                .with_timestamp(-1)
                                                .with_offset(offset)
                                                .with_leader_epoch(0)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
                .into(),
            RequestKind::Produce(req) => self.produce(req).into(),
            RequestKind::Fetch(req) => self.fetch(req).await.into(),
            other => panic!("the ceiling server does not answer {other:?}"),
        }
    }

    fn metadata(&self, req: MetadataRequest) -> MetadataResponse {
        let partition = |p: i32| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])
        };
        MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(self.addr.port())),
            ])
            .with_controller_id(BrokerId(1))
            .with_topics(
                req.topics
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| t.name)
                    .map(|name| {
                        MetadataResponseTopic::default()
                            .with_name(Some(name))
                            .with_partitions((0..self.partitions).map(partition).collect())
                    })
                    .collect(),
            )
    }

    fn produce(&mut self, req: ProduceRequest) -> ProduceResponse {
        let mut topics = Vec::with_capacity(req.topic_data.len());
        for t in req.topic_data {
            let mut partitions = Vec::with_capacity(t.partition_data.len());
            for p in &t.partition_data {
                // Read the batch header's record count (lastOffsetDelta + 1), then drop the bytes.
                let records = p.records.as_deref().unwrap_or_default();
                let count = if records.len() >= 27 {
                    i64::from(i32::from_be_bytes(records[23..27].try_into().unwrap())) + 1
                } else {
                    0
                };
                let offset = self
                    .next_offset
                    .entry((t.name.clone(), p.index))
                    .or_default();
                let base = *offset;
                *offset += count;
                partitions.push(
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(base),
                );
            }
            topics.push(
                TopicProduceResponse::default()
                    .with_name(t.name)
                    .with_partition_responses(partitions),
            );
        }
        ProduceResponse::default().with_responses(topics)
    }

    /// Whole batches from each partition's fetch offset, within the partition and response limits (but at
    /// least one batch, as Kafka answers); waits `max_wait_ms` when no partition has anything.
    async fn fetch(&self, req: FetchRequest) -> FetchResponse {
        let f = &*self.fetchable;
        let mut remaining = if req.max_bytes > 0 {
            req.max_bytes as usize
        } else {
            usize::MAX
        };
        let mut total = 0;
        let mut topics = Vec::with_capacity(req.topics.len());
        for topic in &req.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in &topic.partitions {
                // The batch holding the fetch offset, as a log answers.
                let base = p.fetch_offset - p.fetch_offset.rem_euclid(f.batch_records);
                let left = ((f.high_watermark - base).max(0) / f.batch_records) as usize;
                let fits = (p.partition_max_bytes.max(0) as usize).min(remaining) / f.batch.len();
                let count = left.min(fits.max(usize::from(total == 0)));
                let mut records = BytesMut::with_capacity(count * f.batch.len());
                for i in 0..count as i64 {
                    let at = records.len();
                    records.extend_from_slice(&f.batch);
                    records[at..at + 8]
                        .copy_from_slice(&(base + i * f.batch_records).to_be_bytes());
                }
                total += records.len();
                remaining = remaining.saturating_sub(records.len());
                partitions.push(
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_high_watermark(f.high_watermark)
                        .with_last_stable_offset(f.high_watermark)
                        .with_log_start_offset(0)
                        .with_records(Some(records.freeze())),
                );
            }
            topics.push(
                FetchableTopicResponse::default()
                    .with_topic(topic.topic.clone())
                    .with_partitions(partitions),
            );
        }
        if total == 0 {
            tokio::time::sleep(Duration::from_millis(req.max_wait_ms.max(0) as u64)).await;
        }
        FetchResponse::default().with_responses(topics)
    }
}
