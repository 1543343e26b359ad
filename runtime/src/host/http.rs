//! Outgoing `wasi:http`, restricted to the hosts granted to the instance. Standard `wasi:http` is what
//! JavaScript's `fetch` and Python HTTP code compile to, so no connector needs a busbar-specific HTTP API.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::ctx::HostState;
use super::grants::Grants;

/// The `wasi:http` hooks of one instance: every request is checked against the grants before it leaves.
/// Plain-HTTP connections are kept open and reused (per authority per instance, as many as the instance has had
/// requests in flight at once), so a sink posting to one endpoint does not pay a TCP handshake per event.
pub struct GrantedHttp {
    pub name: Arc<str>,
    pub grants: Arc<Grants>,
    pub pool: Pool,
}

/// Idle HTTP/1.1 connections by authority (`host:port`).
pub type Pool = Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<hyper::client::conn::http1::SendRequest<WasiBody>>>>>;

/// Most idle connections kept per authority per instance (the `builtin:http` sink has at most 256 in flight).
const MAX_IDLE: usize = 256;

fn give_back(pool: &Pool, authority: String, sender: hyper::client::conn::http1::SendRequest<WasiBody>) {
    let mut pool = pool.lock().expect("pool lock");
    let idle = pool.entry(authority).or_default();
    if idle.len() < MAX_IDLE {
        idle.push(sender);
    }
}

fn take_idle(pool: &Pool, authority: &str) -> Option<hyper::client::conn::http1::SendRequest<WasiBody>> {
    let mut pool = pool.lock().expect("pool lock");
    let idle = pool.get_mut(authority)?;
    while let Some(sender) = idle.pop() {
        if sender.is_ready() && !sender.is_closed() {
            return Some(sender);
        }
    }
    None
}

pub(crate) type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>> + Send>;

impl GrantedHttp {
    /// Whether `request` may leave: its host must be granted. A refusal is logged with what is granted.
    pub(crate) fn admits<B>(&self, request: &http::Request<B>) -> bool {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16();
        if !self.grants.allows_http(host, port) {
            tracing::warn!(
                connector = %self.name,
                %host,
                port,
                granted = ?self.grants.http,
                "outgoing HTTP denied: host not granted to this connector"
            );
            return false;
        }
        tracing::debug!(connector = %self.name, method = %request.method(), %uri, "outgoing HTTP");
        true
    }
}

impl WasiHttpHooks for GrantedHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        if !self.admits(&request) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let pool = self.pool.clone();
        Box::new(async move {
            let (response, io) = send(pool, request, options).await?;
            Ok((response, io.unwrap_or_else(|| Box::new(async { Ok(()) }))))
        })
    }
}

/// Sends an admitted request: plain HTTP on a pooled connection, HTTPS through wasmtime-wasi-http's client. With
/// the response comes, for HTTPS, the future that drives its connection, which the caller must run.
pub(crate) async fn send(
    pool: Pool,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<WasiBody>, Option<IoFuture>), wasmtime_wasi_http::Error> {
    if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) {
        return Ok((pooled_send(pool, request, options).await?, None));
    }
    let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
    Ok((response.map(BodyExt::boxed_unsync), Some(Box::new(io) as IoFuture)))
}

/// Adds `wasi:http/outgoing-handler` and `wasi:http/types`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends a plain-HTTP request on a pooled connection (a new one when none is idle), with the request's connect,
/// first-byte and between-bytes timeouts, as `default_send_request` applies them.
async fn pooled_send(
    pool: Pool,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error;
    let authority = {
        let uri = request.uri();
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
        format!("{host}:{}", uri.port_u16().unwrap_or(80))
    };
    let connect_timeout = options.and_then(|o| o.connect_timeout).unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout).unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes = options.and_then(|o| o.between_bytes_timeout).unwrap_or(DEFAULT_TIMEOUT).max(Duration::from_nanos(1));
    // On the wire the request line carries only the path: the authority goes in the Host header.
    if !request.headers().contains_key(http::header::HOST) {
        let host = http::HeaderValue::from_str(request.uri().authority().map(|a| a.as_str()).unwrap_or_default())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        request.headers_mut().insert(http::header::HOST, host);
    }
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut sender = match take_idle(&pool, &authority) {
        Some(sender) => sender,
        None => {
            let stream = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&authority)).await {
                Ok(stream) => stream.map_err(Error::Connect)?,
                Err(_) => return Err(Error::ConnectionTimeout),
            };
            let _ = stream.set_nodelay(true);
            let (sender, connection) = tokio::time::timeout(
                connect_timeout,
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
            )
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            sender
        }
    };
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    // The connection goes back to the pool only once this response's body has been read to its end; a body
    // dropped half-read takes its connection with it.
    let mut release = Some((pool, authority, sender));
    if http_body::Body::is_end_stream(response.body()) {
        // Nothing to read (an empty body): the connection is free already.
        if let Some((pool, authority, sender)) = release.take() {
            give_back(&pool, authority, sender);
        }
    }
    Ok(response.map(|incoming| TimedBody { incoming, between_bytes, deadline: None, release }.boxed_unsync()))
}

/// A response body whose frames must each arrive within `between_bytes`.
struct TimedBody {
    incoming: hyper::body::Incoming,
    between_bytes: Duration,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// The connection to give back to the pool at the end of the body.
    release: Option<(Pool, String, hyper::client::conn::http1::SendRequest<WasiBody>)>,
}

impl TimedBody {
    fn release(&mut self) {
        if let Some((pool, authority, sender)) = self.release.take() {
            give_back(&pool, authority, sender);
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.deadline = None;
                match &frame {
                    None => self.release(),
                    Some(Err(_)) => self.release = None,
                    Some(Ok(_)) if self.incoming.is_end_stream() => self.release(),
                    Some(Ok(_)) => {}
                }
                Poll::Ready(frame.map(|f| f.map_err(wasmtime_wasi_http::Error::from)))
            }
            Poll::Pending => {
                let between = self.between_bytes;
                let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(between)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.incoming)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.incoming)
    }
}
