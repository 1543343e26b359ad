//! The HTTP listener of `busbar serve`: webhooks under `/hooks/…` and the health check.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use busbar_runtime::bus::Bus;
use busbar_runtime::host::{Header, HttpRequest};

use super::sources::Webhook;

/// Largest webhook body accepted.
const MAX_BODY: usize = 10 << 20;

/// Webhooks by mount path (`/hooks/github`), swapped whole on reload.
pub type Webhooks<B> = Arc<RwLock<HashMap<String, Arc<Webhook<B>>>>>;

pub fn router<B: Bus>(webhooks: Webhooks<B>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/hooks/{*rest}", any(hook::<B>))
        .with_state(webhooks)
}

/// Finds the webhook mounted at the longest prefix of `path`; returns it and the rest of the path.
fn find<B>(webhooks: &HashMap<String, Arc<Webhook<B>>>, path: &str) -> Option<(Arc<Webhook<B>>, String)> {
    let mut prefix = path.trim_end_matches('/');
    loop {
        if let Some(hook) = webhooks.get(prefix) {
            let rest = &path[prefix.len()..];
            let rest = if rest.is_empty() { "/".to_owned() } else { rest.to_owned() };
            return Some((hook.clone(), rest));
        }
        prefix = &prefix[..prefix.rfind('/')?];
        if prefix.is_empty() {
            return None;
        }
    }
}

async fn hook<B: Bus>(State(webhooks): State<Webhooks<B>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let found = find(&webhooks.read().expect("webhooks lock"), &path);
    let Some((hook, rest)) = found else {
        let body = serde_json::json!({ "error": format!("no webhook source is mounted at {path}") });
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            let body = serde_json::json!({ "error": format!("the body is larger than {MAX_BODY} bytes") });
            return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response();
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| Header { name: name.as_str().to_owned(), value: value.as_bytes().to_vec() })
        .collect();
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: rest,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
    };
    let answer = hook.handle(request).await;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for Header { name, value } in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_bytes(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}
