//! Request decoding and routing: header -> version check -> `kafka_protocol` decode -> `match` on the API key ->
//! `handlers/<api>.rs`. Adding an API means one row in [`SUPPORTED`] and one arm in [`route`].

use std::future::Future;
use std::pin::Pin;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::Ctx;
use super::handlers;

/// Every API the broker implements, with the versions it really implements (advertised by ApiVersions).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 4),
];

pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// A response to send later, in request order.
pub type Deferred = Pin<Box<dyn Future<Output = ResponseKind> + Send>>;

/// What a handler produces.
// A reply is built and moved once per request: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    Now(ResponseKind),
    /// Computed asynchronously (long-poll fetch, fsync wait); the connection still answers in order.
    Later(Deferred),
    /// No response at all (produce with acks=0).
    Nothing,
}

/// A reply with what is needed to frame it.
pub struct Outgoing {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub reply: Reply,
}

/// Why a request is refused and its connection closed (Kafka closes the connection in these cases).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request of {len} bytes is too short for a request header (needs at least 8)")]
    TooShort { len: usize },
    #[error("unknown API key {key}")]
    UnknownApiKey { key: i16 },
    #[error("API {api:?} is not implemented by this broker")]
    UnsupportedApi { api: ApiKey },
    #[error("{api:?} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("cannot decode {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub body: RequestKind,
}

/// The outcome of decoding: a request to handle, or an immediate ApiVersions v0 error reply.
#[derive(Debug)]
pub enum Decoded {
    Request(Box<Request>),
    /// An ApiVersions request at a version we do not know: answered with v0 and UNSUPPORTED_VERSION so the client
    /// can retry with a version we list (KIP-511).
    ApiVersionsFallback {
        correlation_id: i32,
    },
}

/// Decodes one frame. Pure and panic-free on any input (this is the fuzz target's entry point).
pub fn decode(frame: Bytes) -> Result<Decoded, RequestError> {
    if frame.len() < 8 {
        return Err(RequestError::TooShort { len: frame.len() });
    }
    let mut peek = &frame[..8];
    let key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let api = ApiKey::try_from(key).map_err(|()| RequestError::UnknownApiKey { key })?;
    let (min, max) = supported_versions(api).ok_or(RequestError::UnsupportedApi { api })?;
    if !(min..=max).contains(&version) {
        if api == ApiKey::ApiVersions && version > max {
            return Ok(Decoded::ApiVersionsFallback { correlation_id });
        }
        return Err(RequestError::UnsupportedVersion {
            api,
            version,
            min,
            max,
        });
    }
    // kafka-protocol reports decode failures as `anyhow::Error`; only their text is kept.
    let malformed = |reason: String| RequestError::Malformed {
        api,
        version,
        reason,
    };
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version))
        .map_err(|e| malformed(e.to_string()))?;
    let body = RequestKind::decode(api, &mut buf, version).map_err(|e| malformed(e.to_string()))?;
    Ok(Decoded::Request(Box::new(Request {
        header,
        api_key: api,
        body,
    })))
}

/// Routes a decoded request to its handler.
pub fn route(ctx: &Ctx, request: Request) -> Result<Outgoing, RequestError> {
    let version = request.header.request_api_version;
    let reply = match request.body {
        RequestKind::ApiVersions(req) => {
            Reply::Now(handlers::api_versions::handle(req, version).into())
        }
        RequestKind::Metadata(req) => {
            Reply::Now(handlers::metadata::handle(ctx, req, version).into())
        }
        RequestKind::Produce(req) => handlers::produce::handle(ctx, req, version),
        RequestKind::Fetch(req) => handlers::fetch::handle(ctx, req, version),
        RequestKind::ListOffsets(req) => {
            Reply::Now(handlers::list_offsets::handle(ctx, req, version).into())
        }
        RequestKind::CreateTopics(req) => {
            Reply::Now(handlers::create_topics::handle(ctx, req, version).into())
        }
        RequestKind::DeleteTopics(req) => {
            Reply::Now(handlers::delete_topics::handle(ctx, req, version).into())
        }
        RequestKind::CreatePartitions(req) => {
            Reply::Now(handlers::create_partitions::handle(ctx, req).into())
        }
        RequestKind::DeleteRecords(req) => {
            Reply::Now(handlers::delete_records::handle(ctx, req).into())
        }
        RequestKind::DescribeConfigs(req) => {
            Reply::Now(handlers::describe_configs::handle(ctx, req, version).into())
        }
        RequestKind::AlterConfigs(req) => {
            Reply::Now(handlers::alter_configs::handle(ctx, req).into())
        }
        RequestKind::IncrementalAlterConfigs(req) => {
            Reply::Now(handlers::alter_configs::handle_incremental(ctx, req).into())
        }
        RequestKind::DescribeCluster(req) => {
            Reply::Now(handlers::describe_cluster::handle(ctx, req).into())
        }
        RequestKind::FindCoordinator(req) => {
            Reply::Now(handlers::find_coordinator::handle(ctx, req, version).into())
        }
        RequestKind::JoinGroup(req) => {
            handlers::join_group::handle(ctx, req, version, &client_id(&request.header))
        }
        RequestKind::SyncGroup(req) => handlers::sync_group::handle(ctx, req, version),
        RequestKind::Heartbeat(req) => Reply::Now(handlers::heartbeat::handle(ctx, req).into()),
        RequestKind::LeaveGroup(req) => {
            Reply::Now(handlers::leave_group::handle(ctx, req, version).into())
        }
        RequestKind::DescribeGroups(req) => {
            Reply::Now(handlers::describe_groups::handle(ctx, req, version).into())
        }
        RequestKind::ListGroups(req) => {
            Reply::Now(handlers::list_groups::handle(ctx, req, version).into())
        }
        RequestKind::DeleteGroups(req) => {
            Reply::Now(handlers::delete_groups::handle(ctx, req).into())
        }
        RequestKind::OffsetCommit(req) => {
            Reply::Now(handlers::offset_commit::handle(ctx, req).into())
        }
        RequestKind::OffsetFetch(req) => {
            Reply::Now(handlers::offset_fetch::handle(ctx, req, version).into())
        }
        RequestKind::OffsetDelete(req) => {
            Reply::Now(handlers::offset_delete::handle(ctx, req).into())
        }
        RequestKind::ConsumerGroupHeartbeat(req) => Reply::Now(
            handlers::consumer_group_heartbeat::handle(ctx, req, &client_id(&request.header))
                .into(),
        ),
        RequestKind::ConsumerGroupDescribe(req) => {
            Reply::Now(handlers::consumer_group_describe::handle(ctx, req, version).into())
        }
        RequestKind::InitProducerId(req) => {
            Reply::Now(handlers::init_producer_id::handle(ctx, req).into())
        }
        // `decode` only lets through APIs listed in SUPPORTED, and each has an arm above.
        _ => {
            return Err(RequestError::UnsupportedApi {
                api: request.api_key,
            });
        }
    };
    Ok(Outgoing {
        api_key: request.api_key,
        version,
        correlation_id: request.header.correlation_id,
        reply,
    })
}

/// The client id of a request header ("" when absent).
fn client_id(header: &RequestHeader) -> String {
    header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// Frames a response: size, header (the version the API demands), body.
pub fn encode_response(
    out: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(out, api_key.response_header_version(version))
        .and_then(|()| body.encode(out, version));
    if let Err(err) = encoded {
        // Only reachable through a bug (a field set that the version cannot carry): answer nothing rather than
        // send a half-written frame.
        tracing::error!(?api_key, version, error = %err, "failed to encode response");
        out.truncate(start);
        return;
    }
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}
