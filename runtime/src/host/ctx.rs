//! The data each connector instance's `Store` carries: its WASI context (no files, no environment, no sockets),
//! its outgoing-HTTP hooks, its grants, its limits, and handles to the shared SQL pools and state store.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::grants::Grants;
use super::http::GrantedHttp;
use super::http_batch::Batch;
use super::sql::SqlPools;
use super::state::StateStore;

/// How much of a guest's stderr is kept for failure reports (Rust panics print their message there).
const STDERR_CAPACITY: usize = 16 * 1024;

pub struct HostState {
    /// The instance's name, used in logs and as the state store's namespace.
    pub name: Arc<str>,
    pub grants: Arc<Grants>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub http_ctx: WasiHttpCtx,
    pub http: GrantedHttp,
    /// Requests started through `http-batch` and not yet collected.
    pub batch: Batch,
    pub limits: MeteredLimits,
    pub sql: Arc<SqlPools>,
    pub state: Arc<dyn StateStore>,
    pub stderr: MemoryOutputPipe,
    /// When the current call must end; checked on every epoch tick.
    pub deadline: Option<Instant>,
}

impl HostState {
    pub fn new(
        name: Arc<str>,
        grants: Arc<Grants>,
        limits: StoreLimits,
        sql: Arc<SqlPools>,
        state: Arc<dyn StateStore>,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // Deny by default: no preopened directories, no environment, no arguments, no network sockets.
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            http: GrantedHttp { name: name.clone(), grants: grants.clone(), pool: Default::default() },
            batch: Batch::default(),
            name,
            grants,
            wasi,
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            limits: MeteredLimits { inner: limits, memory_bytes: 0 },
            sql,
            state,
            stderr,
            deadline: None,
        }
    }

    /// The last lines the guest wrote to stderr (a Rust panic message, for instance).
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        text.trim().lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// The store's limits, remembering how large the linear memories have grown (for status and benchmarks).
pub struct MeteredLimits {
    inner: StoreLimits,
    pub memory_bytes: usize,
}

impl ResourceLimiter for MeteredLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = self.memory_bytes + desired - current;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { hooks: &mut self.http, table: &mut self.table, ctx: &mut self.http_ctx }
    }
}
