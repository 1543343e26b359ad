//! The connector host: runs connectors as WebAssembly components under wasmtime.
//!
//! Module map (one host module per WIT interface, each with a public `add_to_linker`):
//! - `bindings`: generated from `wit/` (kept private; the data types are re-exported below).
//! - [`log`], [`state`], [`sql`], [`http`] (`wasi:http`), [`http_batch`]: the host side of each import. WASI
//!   clocks and random come from wasmtime-wasi, with no files, environment or sockets.
//! - [`grants`], [`limits`]: what an instance may reach and how much it may use.
//! - [`cache`]: compiled components on disk; [`compliance`]: the checks every connector must pass.
//! - [`connector`]: a loaded, described connector; [`instance`]: one store with its deadline and memory cap;
//!   [`supervisor`]: a task that restarts its instance with backoff and reports why it failed.

mod bindings;
pub mod cache;
pub mod compliance;
pub mod connector;
mod ctx;
pub mod grants;
pub mod http;
pub mod http_batch;
pub mod instance;
pub mod limits;
pub mod log;
pub mod sql;
pub mod state;
pub mod supervisor;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Engine, OptLevel};

pub use bindings::sql::Value as SqlValue;
pub use bindings::types::{
    Capability, Description, Error as ConnectorError, Event, Handled, Header, HttpRequest, HttpResponse, Kind,
    Outcome, PollResult,
};
pub use cache::CacheOutcome;
pub use connector::{Connector, ConnectorRef};
pub use grants::Grants;
pub use instance::{Failure, FailureKind};
pub use limits::Limits;
pub use state::{MemoryStateStore, SqliteStateStore, StateStore};
pub use supervisor::{ConnectorTask, Health, OpenOptions, State, Status};

use crate::Error;
use bindings::sink::SinkPre;
use bindings::source::SourcePre;
use connector::Pre;
use ctx::HostState;
use instance::Instance;
use sql::SqlPools;

/// How often the engine's epoch advances; call deadlines are checked (and busy guests yield) at this grain.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How the host is set up.
#[derive(Default)]
pub struct RuntimeConfig {
    /// Directory for compiled components; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// SQL connections by name (the pipeline's `connections`): name -> URL.
    pub connections: HashMap<String, String>,
    /// Backing store for connectors' `state`; in memory when `None`.
    pub state: Option<Arc<dyn StateStore>>,
}

/// The connector host. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<cache::ComponentCache>,
    sql: Arc<SqlPools>,
    state: Arc<dyn StateStore>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, Error> {
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true).epoch_interruption(true).cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&wasm)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        http::add_to_linker(&mut linker)?;
        http_batch::add_to_linker(&mut linker)?;
        log::add_to_linker(&mut linker)?;
        state::add_to_linker(&mut linker)?;
        sql::add_to_linker(&mut linker)?;
        let cache = config.cache_dir.map(|dir| cache::ComponentCache::new(dir, &engine)).transpose()?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("busbar-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Wasmtime(wasmtime::Error::msg(format!("starting the epoch thread: {e}"))))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                sql: Arc::new(SqlPools::new(config.connections)),
                state: config.state.unwrap_or_else(|| Arc::new(MemoryStateStore::default())),
                ticker_stop,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn sql_pools(&self) -> Arc<SqlPools> {
        self.inner.sql.clone()
    }

    pub(crate) fn state_store(&self) -> Arc<dyn StateStore> {
        self.inner.state.clone()
    }

    /// Names of the built-in connectors.
    pub fn builtin_names() -> Vec<&'static str> {
        busbar_connectors::BUILTINS.iter().map(|(name, _)| *name).collect()
    }

    /// Loads every built-in connector (compiling or loading from the cache) with its `describe()` output.
    pub async fn builtins(&self) -> Result<Vec<Arc<Connector>>, Error> {
        let mut out = Vec::new();
        for name in Self::builtin_names() {
            out.push(self.load(&ConnectorRef::Builtin(name.to_owned())).await?);
        }
        Ok(out)
    }

    /// Loads a connector by reference: compiles (or loads the cached compiled code), checks which world it
    /// implements, and calls `describe()`.
    pub async fn load(&self, reference: &ConnectorRef) -> Result<Arc<Connector>, Error> {
        let bytes = match reference {
            ConnectorRef::Builtin(name) => busbar_connectors::builtin(name)
                .ok_or_else(|| Error::UnknownBuiltin {
                    name: name.clone(),
                    known: Self::builtin_names().join(", "),
                })?
                .to_vec(),
            ConnectorRef::Path(path) => tokio::fs::read(path)
                .await
                .map_err(|error| Error::ReadComponent { path: path.clone(), error })?,
        };
        self.load_bytes(reference.clone(), bytes).await
    }

    /// Loads a connector from component bytes.
    pub async fn load_bytes(&self, reference: ConnectorRef, bytes: Vec<u8>) -> Result<Arc<Connector>, Error> {
        let what = reference.to_string();
        let runtime = self.clone();
        let invalid = |message: String| Error::InvalidComponent { what: what.clone(), message };
        check_header(&bytes).map_err(invalid)?;
        let (component, cache) = tokio::task::spawn_blocking(move || {
            let engine = runtime.engine();
            match &runtime.inner.cache {
                Some(cache) => cache.load(engine, &bytes),
                None => wasmtime::component::Component::new(engine, &bytes)
                    .map(|c| (c, CacheOutcome::Uncached))
                    .map_err(|e| Error::InvalidComponent { what: "component".into(), message: format!("{e:#}") }),
            }
        })
        .await
        .map_err(|e| invalid(format!("compiling panicked: {e}")))?
        .map_err(|e| match e {
            Error::InvalidComponent { message, .. } => invalid(message),
            other => other,
        })?;
        let instance_pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            invalid(format!("it imports something busbar does not provide: {e:#}"))
        })?;
        let pre = match SinkPre::new(instance_pre.clone()) {
            Ok(sink) => Pre::Sink(sink),
            Err(sink_err) => match SourcePre::new(instance_pre) {
                Ok(source) => Pre::Source(source),
                Err(source_err) => {
                    return Err(invalid(format!(
                        "it implements neither the `sink` world ({sink_err:#}) nor the `source` world ({source_err:#})"
                    )));
                }
            },
        };
        let description = self.describe(&component, &pre, &what).await?;
        let schema_json: serde_json::Value = serde_json::from_str(&description.config_schema).map_err(|e| {
            Error::InvalidSchema { connector: description.name.clone(), message: format!("not JSON: {e}") }
        })?;
        let schema = jsonschema::validator_for(&schema_json)
            .map_err(|e| Error::InvalidSchema { connector: description.name.clone(), message: e.to_string() })?;
        let world_ok = matches!(
            (&pre, description.kind),
            (Pre::Sink(_), Kind::Sink) | (Pre::Source(_), Kind::PullSource | Kind::PushSource)
        );
        if !world_ok {
            return Err(invalid(format!(
                "describe() says it is a {} but the component implements the {} world",
                connector::kind_name(description.kind),
                if matches!(pre, Pre::Sink(_)) { "sink" } else { "source" }
            )));
        }
        tracing::debug!(connector = %what, name = %description.name, ?cache, "connector loaded");
        Ok(Arc::new(Connector { reference, component, pre, description, schema: Arc::new(schema), cache }))
    }

    async fn describe(
        &self,
        component: &wasmtime::component::Component,
        pre: &Pre,
        what: &str,
    ) -> Result<Description, Error> {
        // A throwaway instance with no grants: describe() must not need any.
        let probe = Connector {
            reference: ConnectorRef::Path(what.into()),
            component: component.clone(),
            pre: pre.clone(),
            description: Description {
                name: what.to_owned(),
                version: String::new(),
                kind: Kind::Sink,
                summary: String::new(),
                config_schema: "{}".into(),
                needs: Vec::new(),
            },
            schema: Arc::new(jsonschema::validator_for(&serde_json::json!({})).expect("empty schema")),
            cache: CacheOutcome::Uncached,
        };
        let fail = |failure: Failure| Error::Failed { connector: what.to_owned(), failure };
        let mut instance =
            Instance::new(self, &probe, Arc::from(what), Arc::new(Grants::default()), &Limits::default())
                .await
                .map_err(fail)?;
        instance.describe().await.map_err(fail)
    }

    /// Opens a supervised task of `connector` with a config, grants and limits.
    pub async fn open(&self, connector: Arc<Connector>, options: OpenOptions) -> Result<ConnectorTask, Error> {
        ConnectorTask::open(self.clone(), connector, options).await
    }
}

/// Tells the common mistakes apart before wasmtime's parser does, with what to do instead.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if !bytes.starts_with(b"\0asm") {
        return Err("not a WebAssembly file (it does not start with the `\\0asm` magic bytes); \
                    expected a component built for wasm32-wasip2"
            .into());
    }
    // Bytes 4..8: version and layer; 1.0 with layer 0 is a core module, a component has layer 1.
    if bytes.get(4..8) == Some(&[1u8, 0, 0, 0][..]) {
        return Err("it is a core WebAssembly module, not a component: build it with \
                    `cargo build --target wasm32-wasip2` (or turn a wasip1 module into a component with \
                    `wasm-tools component new`)"
            .into());
    }
    Ok(())
}
