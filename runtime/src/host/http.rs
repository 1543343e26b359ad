//! Outgoing `wasi:http`, restricted to the hosts granted to the instance. Standard `wasi:http` is what
//! JavaScript's `fetch` and Python HTTP code compile to, so no connector needs a busbar-specific HTTP API.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::ctx::HostState;
use super::grants::Grants;

/// The `wasi:http` hooks of one instance: every request is checked against the grants before it leaves.
pub struct GrantedHttp {
    pub name: Arc<str>,
    pub grants: Arc<Grants>,
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for GrantedHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16();
        if !self.grants.allows_http(&host, port) {
            tracing::warn!(
                connector = %self.name,
                %host,
                port,
                granted = ?self.grants.http,
                "outgoing HTTP denied: host not granted to this connector"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        tracing::debug!(connector = %self.name, method = %request.method(), %uri, "outgoing HTTP");
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
        })
    }
}

/// Adds `wasi:http/outgoing-handler` and `wasi:http/types`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}
