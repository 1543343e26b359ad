//! Blocking outgoing HTTP over `wasi:http` (granted per host as `http`).

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, String> {
    request("GET", url, &[], &[])
}

/// Sends one request and reads the whole response. Errors are strings meant for a log line or an outcome:
/// a host that is not granted comes back as `HTTP request denied`.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Response, String> {
    let (scheme, authority, path) = split_url(url)?;
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value)
            .map_err(|e| format!("bad header {name:?}: {e:?}"))?;
    }
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
    req.set_method(&method)
        .map_err(|_| "invalid method".to_owned())?;
    req.set_scheme(Some(&scheme))
        .map_err(|_| "invalid scheme".to_owned())?;
    req.set_authority(Some(authority))
        .map_err(|_| format!("invalid authority {authority:?}"))?;
    req.set_path_with_query(Some(path))
        .map_err(|_| format!("invalid path {path:?}"))?;
    let out_body = req
        .body()
        .map_err(|_| "request body already taken".to_owned())?;
    // The request starts before its body is written: the host buffers only two chunks of an outgoing body.
    let future = outgoing_handler::handle(req, None).map_err(describe_error)?;
    {
        let stream = out_body
            .write()
            .map_err(|_| "request body stream already taken".to_owned())?;
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                // The host closes the body when the request failed (e.g. denied): report why it failed.
                future.subscribe().block();
                return Err(match future.get() {
                    Some(Ok(Err(code))) => describe_error(code),
                    _ => format!("writing request body: {e:?}"),
                });
            }
        }
    }
    OutgoingBody::finish(out_body, None).map_err(describe_error)?;
    let response = loop {
        if let Some(result) = future.get() {
            break result
                .map_err(|_| "response already taken".to_owned())?
                .map_err(describe_error)?;
        }
        future.subscribe().block();
    };
    let status = response.status();
    let headers = response.headers().entries().into_iter().collect();
    let incoming = response
        .consume()
        .map_err(|_| "response body already taken".to_owned())?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| "response body stream already taken".to_owned())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!("reading response body: {}", e.to_debug_string()));
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

fn describe_error(e: ErrorCode) -> String {
    match e {
        ErrorCode::HttpRequestDenied => {
            "HTTP request denied: the host is not granted to this connector".into()
        }
        other => format!("HTTP request failed: {other:?}"),
    }
}

fn split_url(url: &str) -> Result<(Scheme, &str, &str), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!(
            "unsupported URL {url:?}: expected http://… or https://…"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    Ok((scheme, authority, path))
}
