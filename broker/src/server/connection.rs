//! One client connection. The reader decodes and dispatches requests strictly in arrival order (so appends
//! from one producer connection keep their order); replies travel through a bounded queue to the writer, which
//! awaits deferred replies in order, so pipelined requests are answered in order while a long poll or an fsync
//! wait does not stop the reader from accepting the next requests.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::Ctx;
use super::dispatch::{self, Decoded, Outgoing, Reply};
use super::frame;
use super::handlers;

/// Requests accepted but not yet answered, per connection (Kafka's clients default to 5 in flight).
const MAX_IN_FLIGHT: usize = 64;

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
) {
    debug!(%peer, "connection opened");
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Outgoing>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_loop(writer, rx, peer));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'conn: loop {
        loop {
            let frame = match frame::next_frame(&mut buf, ctx.config.max_request_bytes) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    warn!(%peer, error = %err, "closing connection: bad frame");
                    break 'conn;
                }
            };
            let outgoing = match dispatch::decode(frame) {
                Ok(Decoded::Request(request)) => {
                    let api = request.api_key;
                    match dispatch::route(&ctx, *request) {
                        Ok(out) => out,
                        Err(err) => {
                            warn!(%peer, ?api, error = %err, "closing connection: unsupported request");
                            break 'conn;
                        }
                    }
                }
                Ok(Decoded::ApiVersionsFallback { correlation_id }) => Outgoing {
                    api_key: kafka_protocol::messages::ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    reply: Reply::Now(handlers::api_versions::fallback()),
                },
                Err(err) => {
                    warn!(%peer, error = %err, "closing connection: bad request");
                    break 'conn;
                }
            };
            if tx.send(outgoing).await.is_err() {
                break 'conn; // the writer failed: the peer is gone
            }
        }
        let read = tokio::select! {
            read = tokio::time::timeout(ctx.config.idle_timeout, reader.read_buf(&mut buf)) => read,
            _ = stop.changed() => break,
        };
        match read {
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                debug!(%peer, error = %err, "read failed");
                break;
            }
            Err(_) => {
                info!(%peer, idle = ?ctx.config.idle_timeout, "closing idle connection");
                break;
            }
        }
    }
    drop(tx);
    // Whatever was accepted is answered before the socket closes.
    let _ = writer.await;
    debug!(%peer, "connection closed");
}

async fn write_loop(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
) {
    let mut out = BytesMut::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Batch every reply that is already queued into one write.
        while let Some(outgoing) = next.take() {
            let body = match outgoing.reply {
                Reply::Now(body) => Some(body),
                Reply::Later(deferred) => Some(deferred.await),
                Reply::Nothing => None,
            };
            if let Some(body) = body {
                dispatch::encode_response(
                    &mut out,
                    outgoing.api_key,
                    outgoing.version,
                    outgoing.correlation_id,
                    &body,
                );
            }
            if out.len() < 1 << 20 {
                next = rx.try_recv().ok();
            }
        }
        if out.is_empty() {
            continue;
        }
        if let Err(err) = writer.write_all(&out).await {
            debug!(%peer, error = %err, "write failed");
            return;
        }
        out.clear();
    }
    let _ = writer.shutdown().await;
}
