//! The web console at `/ui`: hand-written HTML, CSS and JavaScript, embedded in the binary and served as they
//! are (no front-end build). The page calls the JSON API with the bearer token the user gives it, so the files
//! themselves need no token.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// One embedded file: its bytes, content type and a validator for conditional requests.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset { body: include_str!("index.html"), content_type: "text/html; charset=utf-8" };
const SCRIPT: Asset = Asset { body: include_str!("app.js"), content_type: "text/javascript; charset=utf-8" };
const STYLE: Asset = Asset { body: include_str!("app.css"), content_type: "text/css; charset=utf-8" };

pub fn routes() -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }))
        .route("/ui/app.js", get(|headers: HeaderMap| async move { serve(&SCRIPT, &headers) }))
        .route("/ui/app.css", get(|headers: HeaderMap| async move { serve(&STYLE, &headers) }))
}

/// The asset, or `304` when the browser's copy is current. The tag is a hash of the content, so a new binary
/// with a changed console is fetched again at once.
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let tag = etag(asset.body);
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == tag);
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        out.insert(header::ETAG, value);
    }
    response
}

/// FNV-1a over the content: stable across builds and processes, unlike `DefaultHasher`.
fn etag(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_embedded_files() {
        for asset in ["app.js", "app.css"] {
            assert!(INDEX.body.contains(&format!("/ui/{asset}")), "index.html links {asset}");
        }
        for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!INDEX.body.contains(external), "no external resources ({external})");
        }
        assert_ne!(etag(SCRIPT.body), etag(STYLE.body));
    }
}
