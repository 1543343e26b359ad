//! `busbar:connector/http-batch`: whole requests in, whole responses out, many at once. A sink that posts every
//! event would otherwise make some thirty `wasi:http` resource calls per request (fields, request, options,
//! body stream, future, pollable, response, body…), which cost more CPU than the request itself. Requests go
//! through the same grants, forbidden-header rule and pooled connections as `wasi:http` ([`super::http`]).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::task::{JoinError, JoinSet};
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi_http::{DEFAULT_FORBIDDEN_HEADERS, RequestOptions};

use super::bindings::http_batch::{Host, HttpError, Request, Response, add_to_linker as add};
use super::bindings::types::Header;
use super::ctx::HostState;
use super::http::{DEFAULT_TIMEOUT, Pool, send};

/// Most bytes of a response body returned to the guest; the rest is not read.
const MAX_BODY: usize = 16 << 20;

/// Most requests an instance may have started and not collected: a guest that never calls `wait` cannot make the
/// host hold answers without bound.
const MAX_OUTSTANDING: usize = 1024;

type Answer = (u64, Result<Response, HttpError>);

/// The requests an instance has started and not yet collected with `wait`. Dropped with the instance's store,
/// which aborts whatever is still running.
#[derive(Default)]
pub struct Batch {
    next_id: u64,
    running: JoinSet<Answer>,
    /// Request ids by task, so that a task that panicked is still answered under its id.
    ids: HashMap<tokio::task::Id, u64>,
}

impl Host for HostState {
    async fn start(&mut self, requests: Vec<Request>) -> wasmtime::Result<Vec<Result<u64, HttpError>>> {
        let mut started = Vec::with_capacity(requests.len());
        for request in requests {
            started.push(self.start_one(request));
        }
        Ok(started)
    }

    async fn wait(&mut self) -> wasmtime::Result<Vec<(u64, Result<Response, HttpError>)>> {
        let batch = &mut self.batch;
        let mut answers = Vec::new();
        let Some(first) = batch.running.join_next_with_id().await else { return Ok(answers) };
        answers.push(answer(&mut batch.ids, first));
        while let Some(next) = batch.running.try_join_next_with_id() {
            answers.push(answer(&mut batch.ids, next));
        }
        Ok(answers)
    }
}

fn answer(ids: &mut HashMap<tokio::task::Id, u64>, joined: Result<(tokio::task::Id, Answer), JoinError>) -> Answer {
    match joined {
        Ok((task, answer)) => {
            ids.remove(&task);
            answer
        }
        Err(err) => {
            let id = ids.remove(&err.id()).unwrap_or(u64::MAX);
            (id, Err(HttpError::Failed(format!("the request's task failed: {err}"))))
        }
    }
}

impl HostState {
    fn start_one(&mut self, request: Request) -> Result<u64, HttpError> {
        let (request, timeout) = build(request).map_err(HttpError::Invalid)?;
        if self.batch.running.len() >= MAX_OUTSTANDING {
            return Err(HttpError::Failed(format!(
                "{MAX_OUTSTANDING} requests are already outstanding; collect answers with `wait` first"
            )));
        }
        if !self.http.admits(&request) {
            return Err(HttpError::Denied(format!(
                "{} is not granted to this connector (grants.http: {:?})",
                request.uri().host().unwrap_or_default(),
                self.grants.http
            )));
        }
        let id = self.batch.next_id;
        self.batch.next_id += 1;
        let pool = self.http.pool.clone();
        let task = self.batch.running.spawn(async move { (id, fetch(pool, request, timeout).await) });
        self.batch.ids.insert(task.id(), id);
        Ok(id)
    }
}

/// The request as hyper sends it, or why it cannot be sent.
fn build(request: Request) -> Result<(http::Request<wasmtime_wasi_http::WasiBody>, Duration), String> {
    // Zero would fail every request; it means the host's default, as an unset timeout does in `wasi:http`.
    let timeout = match request.timeout_ms {
        0 => DEFAULT_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)),
    };
    let uri: http::Uri = request.url.parse().map_err(|e| format!("url {:?}: {e}", request.url))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("url {:?}: expected an absolute http:// or https:// URL", request.url)),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("url {:?}: no host", request.url));
    }
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("method {:?} is not a valid HTTP method", request.method))?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    let headers = builder.headers_mut().expect("a fresh builder has headers");
    headers.reserve(request.headers.len());
    for Header { name, value } in request.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header {name:?} is not a valid header name"))?;
        if DEFAULT_FORBIDDEN_HEADERS.contains(&name) {
            return Err(format!("header {name:?} is set by the host and may not be sent"));
        }
        let value = http::HeaderValue::from_bytes(&value).map_err(|_| format!("header {name:?} has a value that is not valid"))?;
        headers.append(name, value);
    }
    let body = Full::new(Bytes::from(request.body)).map_err(|never| match never {}).boxed_unsync();
    Ok((builder.body(body).map_err(|e| e.to_string())?, timeout))
}

/// Sends one request and reads its whole response.
async fn fetch(pool: Pool, request: http::Request<wasmtime_wasi_http::WasiBody>, timeout: Duration) -> Result<Response, HttpError> {
    let options = RequestOptions {
        connect_timeout: Some(timeout),
        first_byte_timeout: Some(timeout),
        between_bytes_timeout: Some(timeout),
    };
    let (response, io) = send(pool, request, Some(options)).await.map_err(|e| HttpError::Failed(describe(&e)))?;
    if let Some(io) = io {
        // The connection's I/O runs beside the body read; it ends with the connection.
        tokio::spawn(Box::into_pin(io));
    }
    let (parts, mut body) = response.into_parts();
    let mut read = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| HttpError::Failed(format!("reading the response body: {}", describe(&e))))?;
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > MAX_BODY {
                read.extend_from_slice(&data[..MAX_BODY - read.len()]);
                truncated = true;
                break;
            }
            read.extend_from_slice(&data);
        }
    }
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| Header { name: name.as_str().to_owned(), value: value.as_bytes().to_vec() })
        .collect();
    Ok(Response { status: parts.status.as_u16(), headers, body: read, body_truncated: truncated })
}

/// What went wrong, with timeouts named as such (a retry policy and a reader of the log care which it was).
fn describe(e: &wasmtime_wasi_http::Error) -> String {
    use wasmtime_wasi_http::Error;
    match e {
        Error::ConnectionTimeout => "timed out connecting".into(),
        Error::ConnectionReadTimeout | Error::HttpResponseTimeout => "timed out waiting for the response".into(),
        Error::ConnectionWriteTimeout => "timed out sending the request".into(),
        other => format!("HTTP request failed: {other}"),
    }
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add::<HostState, HasSelf<HostState>>(linker, |s| s)
}
