//! Idempotent producers: InitProducerId, duplicates answered with the original offset, out-of-order sequences
//! and stale epochs refused with Kafka's codes, producer state rebuilt from the log after a restart; and a real
//! librdkafka producer with `enable.idempotence=true` that writes no duplicate while the broker restarts.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use busbar_broker::Broker;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, ProducerId, RequestHeader, ResponseHeader, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_REQUEST: i16 = 42;

/// A raw Kafka connection: one request at a time, correlation ids checked.
struct Conn {
    stream: TcpStream,
    correlation: i32,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            correlation: 0,
        }
    }

    async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        self.correlation += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("idempotence-test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.unwrap();
        let mut size = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut size))
            .await
            .expect("a reply within 10 s")
            .expect("the broker keeps the connection open");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).await.unwrap();
        let mut body = Bytes::from(body);
        let header =
            ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        Resp::decode(&mut body, version).unwrap()
    }

    async fn init_producer_id(&mut self) -> (i64, i16) {
        let r: InitProducerIdResponse = self
            .call(
                ApiKey::InitProducerId,
                4,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
            .await;
        assert_eq!(r.error_code, 0);
        (r.producer_id.0, r.producer_epoch)
    }

    /// Produces one batch; returns (error code, base offset).
    async fn produce(&mut self, topic: &str, batch: Bytes) -> (i16, i64) {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch)),
                    ]),
            ]);
        let r: ProduceResponse = self.call(ApiKey::Produce, 9, &request).await;
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }
}

/// A batch of `n` records from producer `pid`/`epoch`, first sequence `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            // Now, not a fixed date: retention (7 days by record time) would otherwise delete the segments.
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
            key: Some(Bytes::from(format!("k{seq}-{i}"))),
            value: Some(Bytes::from(format!("v{seq}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_protocol_duplicates_sequences_epochs_and_restart() {
    let dir = common::TempDir::new("idem-raw");
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addr();
    let mut c = Conn::open(addr).await;

    let versions: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    let init = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::InitProducerId as i16)
        .expect("InitProducerId advertised");
    assert_eq!((init.min_version, init.max_version), (0, 4));

    let (pid, epoch) = c.init_producer_id().await;
    assert_eq!(epoch, 0);
    let (pid2, _) = c.init_producer_id().await;
    assert_ne!(pid, pid2, "every InitProducerId gets a fresh id");

    // First write, then the exact same batch again: same offset, nothing appended.
    assert_eq!(c.produce("idem", batch(pid, 0, 0, 3)).await, (0, 0));
    assert_eq!(c.produce("idem", batch(pid, 0, 0, 3)).await, (0, 0));
    assert_eq!(c.produce("idem", batch(pid, 0, 3, 2)).await, (0, 3));
    assert_eq!(c.produce("idem", batch(pid, 0, 0, 3)).await, (0, 0));
    // Another producer's batch goes after them: the duplicates took no offsets.
    assert_eq!(c.produce("idem", batch(pid2, 0, 0, 1)).await, (0, 5));

    // A gap, and an overlap that is not an exact retry: OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(
        c.produce("idem", batch(pid, 0, 7, 1)).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        c.produce("idem", batch(pid, 0, 1, 2)).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    // A new epoch must start at sequence 0; after it, the old epoch is fenced.
    assert_eq!(
        c.produce("idem", batch(pid, 1, 5, 1)).await.0,
        OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(c.produce("idem", batch(pid, 1, 0, 1)).await, (0, 6));
    assert_eq!(
        c.produce("idem", batch(pid, 0, 5, 1)).await.0,
        INVALID_PRODUCER_EPOCH
    );

    // Transactions are not implemented: a transactional id is refused, not silently ignored.
    let r: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(r.error_code, INVALID_REQUEST);

    // Restart: the state comes back from the log, so a retry of the last batch is still recognised.
    drop(c);
    broker.shutdown().await;
    let broker = Broker::start(common::config(dir.path()))
        .await
        .expect("restart");
    let mut c = Conn::open(broker.local_addr()).await;
    assert_eq!(c.produce("idem", batch(pid, 1, 0, 1)).await, (0, 6));
    assert_eq!(c.produce("idem", batch(pid2, 0, 0, 1)).await, (0, 5));
    assert_eq!(
        c.produce("idem", batch(pid, 0, 5, 1)).await.0,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(c.produce("idem", batch(pid, 1, 1, 1)).await, (0, 7));
    // Producer ids are never reused after a restart.
    let (pid3, _) = c.init_producer_id().await;
    assert!(pid3 > pid2, "{pid3} after {pid2}");
    broker.shutdown().await;
}

/// librdkafka with idempotence on, while the broker is shut down and started again mid-stream: every record
/// is delivered, none twice, each partition in send order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_idempotent_producer_across_a_broker_restart_writes_no_duplicates() {
    const N: usize = 20_000;
    const PARTITIONS: i32 = 3;
    let dir = common::TempDir::new("idem-rdkafka");
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addr();
    let admin = common::admin(addr);
    admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                "idem-r",
                PARTITIONS,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer = common::producer(
        addr,
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "120000"),
            ("retry.backoff.ms", "50"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "200"),
        ],
    );
    let mut deliveries = Vec::with_capacity(N);
    let mut broker = Some(broker);
    for i in 0..N {
        let value = i.to_string();
        let record = FutureRecord::to("idem-r")
            .partition((i % PARTITIONS as usize) as i32)
            .key("k")
            .payload(&value);
        deliveries.push(producer.send_result(record).expect("queued"));
        if i == N / 2 {
            // Mid-stream, with batches in flight: stop the broker and start it again on the same address.
            tokio::time::sleep(Duration::from_millis(20)).await;
            broker.take().unwrap().shutdown().await;
            let mut cfg = common::config(dir.path());
            cfg.listen = addr.to_string();
            broker = Some(Broker::start(cfg).await.expect("restart"));
        }
    }
    for d in deliveries {
        d.await.expect("delivery").expect("acknowledged");
    }
    let consumer = common::consumer(addr);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("idem-r", p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut total = 0;
    while total < N && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("fetch");
            let v: usize = std::str::from_utf8(m.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            seen.entry(m.partition()).or_default().push(v);
            total += 1;
        }
    }
    // Anything more than N would be a duplicate; give it a moment to show up.
    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
        panic!(
            "more than {N} records: offset {} in partition {}",
            m.offset(),
            m.partition()
        );
    }
    assert_eq!(total, N, "every record delivered");
    for (p, values) in &seen {
        let expected: Vec<usize> = (0..N)
            .filter(|i| (i % PARTITIONS as usize) as i32 == *p)
            .collect();
        assert_eq!(
            values, &expected,
            "partition {p}: each record once, in send order"
        );
    }
    broker.unwrap().shutdown().await;
}

/// A TCP proxy in front of the broker that can drop the next response frame of every open connection and cut
/// those connections, as a network failure between a write and its acknowledgement would. It listens on
/// 127.0.0.2 with the broker's port, and the broker advertises 127.0.0.2, so clients reach the broker only
/// through it.
struct CuttingProxy {
    /// How many connections still have to be cut (each cut drops one response).
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    async fn start(broker: std::net::SocketAddr) -> CuttingProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.2", broker.port()))
            .await
            .expect("bind 127.0.0.2 with the broker's port");
        let cuts = Arc::new(AtomicUsize::new(0));
        let cuts2 = cuts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let cuts = cuts2.clone();
                tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(broker).await else {
                        return;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut up_rx, mut up_tx) = upstream.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_rx, &mut up_tx).await;
                    });
                    loop {
                        let mut size = [0u8; 4];
                        if up_rx.read_exact(&mut size).await.is_err() {
                            break;
                        }
                        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
                        if up_rx.read_exact(&mut body).await.is_err() {
                            break;
                        }
                        let cut = cuts
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                        if cut {
                            break; // the request was handled, its response is lost with the connection
                        }
                        if client_tx.write_all(&size).await.is_err()
                            || client_tx.write_all(&body).await.is_err()
                        {
                            break;
                        }
                    }
                    requests.abort();
                });
            }
        });
        CuttingProxy { cuts }
    }

    fn cut(&self, connections: usize) {
        self.cuts.fetch_add(connections, Ordering::SeqCst);
    }
}

/// librdkafka with idempotence on while connections are cut after the broker wrote a batch but before the
/// producer heard back: the producer retries those batches, and the log holds each record once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_idempotent_producer_retrying_after_lost_acknowledgements_writes_no_duplicates() {
    const N: usize = 20_000;
    const PARTITIONS: i32 = 3;
    let dir = common::TempDir::new("idem-cut");
    let mut cfg = common::config(dir.path());
    cfg.advertised_host = Some("127.0.0.2".into());
    let broker = Broker::start(cfg).await.expect("start");
    let proxy = CuttingProxy::start(broker.local_addr()).await;
    let addr: std::net::SocketAddr = format!("127.0.0.2:{}", broker.local_addr().port())
        .parse()
        .unwrap();
    let admin = common::admin(addr);
    admin
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                "idem-c",
                PARTITIONS,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer = common::producer(
        addr,
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "120000"),
            ("retry.backoff.ms", "20"),
            ("reconnect.backoff.ms", "20"),
            ("reconnect.backoff.max.ms", "100"),
        ],
    );
    let mut deliveries = Vec::with_capacity(N);
    for i in 0..N {
        let value = i.to_string();
        let record = FutureRecord::to("idem-c")
            .partition((i % PARTITIONS as usize) as i32)
            .key("k")
            .payload(&value);
        deliveries.push(producer.send_result(record).expect("queued"));
        if i % 2_000 == 1_000 {
            // Let batches get in flight, then lose the next response on a connection.
            tokio::time::sleep(Duration::from_millis(10)).await;
            proxy.cut(1);
        }
    }
    for d in deliveries {
        d.await.expect("delivery").expect("acknowledged");
    }
    let consumer = common::consumer(addr);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("idem-c", p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks("idem-c", p, Duration::from_secs(10))
            .unwrap();
        total += high as usize;
    }
    assert_eq!(
        total, N,
        "the log holds every record once (duplicates would add offsets)"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut read = 0;
    while read < N && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("fetch");
            let v: usize = std::str::from_utf8(m.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            seen.entry(m.partition()).or_default().push(v);
            read += 1;
        }
    }
    for (p, values) in &seen {
        let expected: Vec<usize> = (0..N)
            .filter(|i| (i % PARTITIONS as usize) as i32 == *p)
            .collect();
        assert_eq!(
            values, &expected,
            "partition {p}: each record once, in send order"
        );
    }
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        0,
        "every planned cut happened"
    );
    broker.shutdown().await;
}
