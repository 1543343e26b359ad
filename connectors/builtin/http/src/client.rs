//! Outgoing HTTP over `wasi:http` with timeouts (the SDK's `http::request` sets none), one request at a time
//! (`send`). Shared with `builtin:http-poll`, which includes this file.

use busbar_connector_sdk::bindings::wasi::http::outgoing_handler;
use busbar_connector_sdk::bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use busbar_connector_sdk::bindings::wasi::io::poll::Pollable;
use busbar_connector_sdk::bindings::wasi::io::streams::StreamError;

/// A response read to the end.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Why a request got no response.
pub enum Failure {
    /// The request was malformed or is not allowed (not granted, bad URL): retrying cannot help.
    Fatal(String),
    /// The connection failed or timed out: retrying later may work.
    Transient(String),
}

/// Sends one request and reads the whole response; `timeout_ms` bounds connecting, the first byte and the gap
/// between body chunks.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<Response, Failure> {
    start(method, url, headers, body, timeout_ms)?.finish()
}

/// A request that has been sent and whose response has not been read yet.
struct InFlight {
    /// Dropped before `future`, whose child it is.
    ready: Pollable,
    future: FutureIncomingResponse,
}

impl InFlight {
    /// Waits for the response and reads it to the end.
    fn finish(self) -> Result<Response, Failure> {
        let fatal = |m: String| Failure::Fatal(m);
        let InFlight { ready, future } = self;
        let result = loop {
            if let Some(result) = future.get() {
                break result;
            }
            ready.block();
        };
        // Before any return: the host refuses to drop a future whose pollable is still alive.
        drop(ready);
        let response = result
            .map_err(|_| fatal("response already taken".into()))?
            .map_err(classify)?;
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|_| fatal("response body already taken".into()))?;
        let mut body = Vec::new();
        {
            let stream = incoming
                .stream()
                .map_err(|_| fatal("response body stream already taken".into()))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(Failure::Transient(format!(
                            "reading the response body: {}",
                            e.to_debug_string()
                        )));
                    }
                }
            }
        }
        let _ = IncomingBody::finish(incoming);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Sends one request (the body written in full) without waiting for its response.
fn start(
    method: &str,
    url: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<InFlight, Failure> {
    let (scheme, authority, path) = split_url(url).map_err(Failure::Fatal)?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len() + 1);
    if !body.is_empty() || !matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD") {
        // A known length rather than a chunked body: some endpoints refuse chunked requests.
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    entries.extend_from_slice(headers);
    // All headers in one call; only when that fails are they added one by one, to say which one is not valid.
    let fields = match Fields::from_list(&entries) {
        Ok(fields) => fields,
        Err(_) => {
            let fields = Fields::new();
            for (name, value) in &entries {
                fields
                    .append(name, value)
                    .map_err(|e| Failure::Fatal(format!("header {name:?} is not valid: {e:?}")))?;
            }
            fields
        }
    };
    let req = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_owned()),
    };
    let fatal = |m: String| Failure::Fatal(m);
    req.set_method(&method)
        .map_err(|_| fatal("invalid method".into()))?;
    req.set_scheme(Some(&scheme))
        .map_err(|_| fatal("invalid scheme".into()))?;
    req.set_authority(Some(authority))
        .map_err(|_| fatal(format!("invalid host {authority:?} in {url:?}")))?;
    req.set_path_with_query(Some(&path))
        .map_err(|_| fatal(format!("invalid path {path:?} in {url:?}")))?;
    let options = RequestOptions::new();
    let timeout_ns = timeout_ms.saturating_mul(1_000_000);
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));
    let out_body = req
        .body()
        .map_err(|_| fatal("request body already taken".into()))?;
    // Handed to the host before the body is written: the host buffers only two chunks of an outgoing body, so a
    // body larger than that, written first, would wait forever for a request that has not started.
    let future = outgoing_handler::handle(req, Some(options)).map_err(classify)?;
    {
        let stream = out_body
            .write()
            .map_err(|_| fatal("request body stream already taken".into()))?;
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                // The host closes the body when the request failed (e.g. denied): report why it failed.
                future.subscribe().block();
                return Err(match future.get() {
                    Some(Ok(Err(code))) => classify(code),
                    _ => Failure::Transient(format!("writing the request body: {e:?}")),
                });
            }
        }
    }
    OutgoingBody::finish(out_body, None).map_err(classify)?;
    Ok(InFlight {
        ready: future.subscribe(),
        future,
    })
}

fn classify(e: ErrorCode) -> Failure {
    match e {
        ErrorCode::HttpRequestDenied => Failure::Fatal(
            "HTTP request denied: the host is not granted to this connector (grants.http)".into(),
        ),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            Failure::Fatal(format!("the request is not valid: {e:?}"))
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout => Failure::Transient(format!("timed out: {e:?}")),
        ErrorCode::HttpResponseTimeout => {
            Failure::Transient("timed out waiting for the response".into())
        }
        other => Failure::Transient(format!("HTTP request failed: {other:?}")),
    }
}

/// `(scheme, authority, path-with-query)` of an absolute http(s) URL.
pub fn split_url(url: &str) -> Result<(Scheme, &str, String), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!(
            "URL {url:?} is not supported: expected http://… or https://…"
        ));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok((scheme, authority, path))
}
