//! Bad input over a raw socket: the broker answers with Kafka's error code or closes the connection, never
//! crashes, and keeps serving other clients.

mod common;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
    create_topics_request::CreatableTopic,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send_raw(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).await.unwrap();
}

/// Reads one response frame; None if the broker closed the connection.
async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut size))
        .await
        .expect("no reply in 5s")
        .ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

async fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

async fn roundtrip<Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    raw: &[u8],
) -> Resp {
    send_raw(stream, raw).await;
    let mut body = read_frame(stream).await.expect("a response");
    let header = ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    Resp::decode(&mut body, version).unwrap()
}

fn batch(value_len: usize) -> BytesMut {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from(vec![b'v'; value_len])),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf
}

fn produce(topic: &str, records: Bytes) -> Bytes {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    frame(ApiKey::Produce, 9, &request)
}

async fn produce_error(stream: &mut TcpStream, topic: &str, records: Bytes) -> i16 {
    let response: ProduceResponse =
        roundtrip(stream, ApiKey::Produce, 9, &produce(topic, records)).await;
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_the_connection_and_the_broker_keeps_serving() {
    let dir = common::TempDir::new("bad-frames");
    let broker = common::start(dir.path()).await;
    let addr = broker.local_addr();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative size", vec![0xff, 0xff, 0xff, 0xf0, 1, 2]),
        (
            "over max request size",
            (200 * 1024 * 1024i32).to_be_bytes().to_vec(),
        ),
        ("shorter than a header", vec![0, 0, 0, 3, 0, 18, 0]),
        (
            "unknown api key 999",
            [
                &[0, 0, 0, 8][..],
                &999i16.to_be_bytes(),
                &[0, 0],
                &[0, 0, 0, 1],
            ]
            .concat(),
        ),
        (
            "api not implemented (WriteTxnMarkers)",
            [
                &[0, 0, 0, 8][..],
                &27i16.to_be_bytes(),
                &[0, 1],
                &[0, 0, 0, 1],
            ]
            .concat(),
        ),
        (
            "Produce v99",
            [
                &[0, 0, 0, 8][..],
                &0i16.to_be_bytes(),
                &99i16.to_be_bytes(),
                &[0, 0, 0, 1],
            ]
            .concat(),
        ),
        (
            "garbage Metadata body",
            [
                &[0, 0, 0, 14][..],
                &3i16.to_be_bytes(),
                &9i16.to_be_bytes(),
                &[0, 0, 0, 1],
                &[0xff; 6],
            ]
            .concat(),
        ),
        (
            // Found by the decode_request fuzz target: a 16-byte DescribeConfigs v4 whose resource array
            // claims billions of entries. Decoding must refuse it, not allocate for it (which aborted).
            "DescribeConfigs with an array longer than the frame",
            vec![
                0x00, 0x00, 0x00, 0x10, 0x00, 0x20, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
    ];
    for (name, bytes) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        send_raw(&mut stream, &bytes).await;
        assert!(
            closed(&mut stream).await,
            "{name}: connection should be closed"
        );
    }
    // A truncated frame followed by a hang-up leaves the broker healthy.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    send_raw(&mut stream, &[0, 0, 0, 100, 0, 18]).await;
    drop(stream);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let ok: ApiVersionsResponse = roundtrip(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        &frame(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()),
    )
    .await;
    assert_eq!(ok.error_code, 0);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_versions_version_falls_back_to_v0_with_the_supported_list() {
    let dir = common::TempDir::new("apiversions");
    let broker = common::start(dir.path()).await;
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    // Version 77 of ApiVersions: the body is unknown, so the broker answers in v0 with UNSUPPORTED_VERSION.
    let raw = [
        &[0, 0, 0, 8][..],
        &18i16.to_be_bytes(),
        &77i16.to_be_bytes(),
        &7i32.to_be_bytes(),
    ]
    .concat();
    send_raw(&mut stream, &raw).await;
    let mut body = read_frame(&mut stream).await.unwrap();
    assert_eq!(body.get_i32(), 7, "correlation id (response header v0)");
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("Produce listed");
    assert_eq!((produce.min_version, produce.max_version), (3, 11));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_get_kafka_error_codes_and_nothing_is_written() {
    let dir = common::TempDir::new("bad-batches");
    let broker = common::start(dir.path()).await;
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    assert_eq!(
        produce_error(&mut stream, "good", batch(10).freeze()).await,
        0
    );

    let mut bad_crc = batch(10);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x55;
    assert_eq!(
        produce_error(&mut stream, "good", bad_crc.freeze()).await,
        2,
        "CORRUPT_MESSAGE"
    );

    let mut bad_magic = batch(10);
    bad_magic[16] = 1;
    assert_eq!(
        produce_error(&mut stream, "good", bad_magic.freeze()).await,
        87,
        "INVALID_RECORD"
    );

    let truncated = batch(10).freeze().slice(..40);
    assert_eq!(
        produce_error(&mut stream, "good", truncated).await,
        2,
        "CORRUPT_MESSAGE"
    );

    let too_large = batch(2 * 1024 * 1024).freeze();
    assert_eq!(
        produce_error(&mut stream, "good", too_large).await,
        10,
        "MESSAGE_TOO_LARGE"
    );

    assert_eq!(
        produce_error(&mut stream, "bad/name", batch(10).freeze()).await,
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    assert_eq!(
        produce_error(&mut stream, &"x".repeat(250), batch(10).freeze()).await,
        17
    );

    let mut two = batch(10);
    two.extend_from_slice(&batch(10));
    assert_eq!(
        produce_error(&mut stream, "good", two.freeze()).await,
        87,
        "INVALID_RECORD: Produce v3+ allows one batch per partition"
    );

    let offsets = broker.store().offsets("good", 0).unwrap();
    assert_eq!(
        offsets.high_watermark, 1,
        "only the good batch was appended"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_rejects_invalid_names_partitions_and_configs() {
    let dir = common::TempDir::new("bad-create");
    let broker = common::start(dir.path()).await;
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    let topic = |name: &str, partitions: i32, config: Option<(&str, &str)>| {
        let mut t = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(1);
        if let Some((k, v)) = config {
            t = t.with_configs(vec![
                kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.to_owned()))
                    .with_value(Some(StrBytes::from_string(v.to_owned()))),
            ]);
        }
        t
    };
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(1000)
        .with_topics(vec![
            topic("ok-topic", 2, Some(("retention.ms", "60000"))),
            topic("has space", 1, None),
            topic("zero-partitions", 0, None),
            topic("bad-config", 1, Some(("retention.ms", "soon"))),
            topic("unknown-config", 1, Some(("no.such.key", "1"))),
            topic("ok-topic", 1, None),
        ]);
    let response: CreateTopicsResponse = roundtrip(
        &mut stream,
        ApiKey::CreateTopics,
        5,
        &frame(ApiKey::CreateTopics, 5, &request),
    )
    .await;
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 17, 37, 40, 40, 36]);
    let message = response.topics[3]
        .error_message
        .as_ref()
        .unwrap()
        .to_string();
    assert!(
        message.contains("retention.ms") && message.contains("integer"),
        "{message}"
    );
    broker.shutdown().await;
}
