//! One running instance of a connector: its `Store` (with memory cap and call deadline) and typed exports.
//! Every call either returns what the guest returned or a [`Failure`] saying why the instance is unusable.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

use super::bindings::sink::Sink;
use super::bindings::source::Source;
use super::bindings::types::{Description, Error as GuestError, Event, Handled, HttpRequest, Outcome, PollResult};
use super::connector::{Connector, Pre};
use super::ctx::HostState;
use super::grants::Grants;
use super::limits::Limits;
use super::Runtime;

/// Why an instance stopped being usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The guest trapped (a Rust panic, `unreachable`, an out-of-bounds access…).
    Trap,
    /// A call ran past its deadline.
    Timeout,
    /// The guest tried to grow its memory past the cap.
    MemoryLimit,
    /// `open` returned an error.
    Open,
    /// The guest broke the contract (e.g. wrong number of outcomes).
    Protocol,
}

/// A failure with its reason: the trap message with the guest backtrace, the deadline, or the memory cap.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    #[serde(skip)]
    pub at: SystemTime,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory limit",
            FailureKind::Open => "open failed",
            FailureKind::Protocol => "protocol error",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into(), at: SystemTime::now() }
    }
}

/// The error the epoch callback raises when a call passes its deadline.
#[derive(Debug)]
struct DeadlineExceeded(Duration);

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call exceeded its deadline of {} ms", self.0.as_millis())
    }
}

impl std::error::Error for DeadlineExceeded {}

enum Exports {
    Sink(Sink),
    Source(Source),
}

pub(crate) struct Instance {
    store: Store<HostState>,
    exports: Exports,
    limits: Limits,
}

impl Instance {
    pub(crate) async fn new(
        runtime: &Runtime,
        connector: &Connector,
        name: Arc<str>,
        grants: Arc<Grants>,
        limits: &Limits,
    ) -> Result<Self, Failure> {
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .instances(64)
            .tables(64)
            .memories(8)
            .build();
        let data = HostState::new(name, grants, store_limits, runtime.sql_pools(), runtime.state_store());
        let mut store = Store::new(runtime.engine(), data);
        store.limiter(|s| &mut s.limits);
        let timeout = limits.call_timeout();
        store.epoch_deadline_callback(move |ctx| match ctx.data().deadline {
            Some(deadline) if Instant::now() >= deadline => Err(wasmtime::Error::new(DeadlineExceeded(timeout))),
            // Yield to the executor on every tick so a busy guest never starves the connectors beside it.
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        store.data_mut().deadline = Some(Instant::now() + timeout);
        store.set_epoch_deadline(1);
        let exports = match &connector.pre {
            Pre::Sink(pre) => pre.instantiate_async(&mut store).await.map(Exports::Sink),
            Pre::Source(pre) => pre.instantiate_async(&mut store).await.map(Exports::Source),
        };
        store.data_mut().deadline = None;
        match exports {
            Ok(exports) => Ok(Instance { store, exports, limits: limits.clone() }),
            Err(e) => Err(classify(&store, limits, e)),
        }
    }

    /// Starts the deadline of one call.
    fn arm(&mut self) {
        let timeout = self.limits.call_timeout();
        self.store.data_mut().deadline = Some(Instant::now() + timeout);
        self.store.set_epoch_deadline(1);
    }

    /// Bytes of linear memory the instance's memories have grown to.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.store.data().limits.memory_bytes
    }
}

/// Turns a wasmtime error into the reason the instance failed.
fn classify(store: &Store<HostState>, limits: &Limits, e: wasmtime::Error) -> Failure {
        let stderr = store.data().stderr_tail();
        let with_stderr = |m: String| if stderr.is_empty() { m } else { format!("{m}\nguest stderr: {stderr}") };
        if let Some(d) = e.downcast_ref::<DeadlineExceeded>() {
            return Failure::new(FailureKind::Timeout, d.to_string());
        }
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return Failure::new(FailureKind::Timeout, "call interrupted at its deadline");
        }
        let text = format!("{e:?}");
        if text.contains("forcing trap when growing memory") || stderr.contains("memory allocation of") {
            return Failure::new(
                FailureKind::MemoryLimit,
                with_stderr(format!(
                    "memory cap of {} bytes reached: {}",
                    limits.memory_bytes,
                    first_line(&text)
                )),
            );
        }
        Failure::new(FailureKind::Trap, with_stderr(text))
}

/// Runs one export call under the instance's deadline: `guarded!(self, |exports, store| body)`.
macro_rules! guarded {
    ($self:ident, |$exports:ident, $store:ident| $body:expr) => {{
        $self.arm();
        let timeout = $self.limits.call_timeout();
        let $exports = &$self.exports;
        let $store = &mut $self.store;
        // The epoch deadline stops a guest that computes; this stops one blocked in a host call (HTTP, SQL).
        let result = tokio::time::timeout(timeout, async move { $body }).await;
        $self.finish(result, timeout)
    }};
}

impl Instance {
    fn finish<T>(
        &mut self,
        result: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<T, Failure> {
        self.store.data_mut().deadline = None;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(classify(&self.store, &self.limits, e)),
            Err(_) => Err(Failure::new(
                FailureKind::Timeout,
                format!("call exceeded its deadline of {} ms (waiting on a host call)", timeout.as_millis()),
            )),
        }
    }

    pub(crate) async fn describe(&mut self) -> Result<Description, Failure> {
        guarded!(self, |exports, store| match exports {
            Exports::Sink(s) => s.busbar_connector_sink_connector().call_describe(store).await,
            Exports::Source(s) => s.busbar_connector_source_connector().call_describe(store).await,
        })
    }

    pub(crate) async fn open(&mut self, config: &str) -> Result<Result<(), GuestError>, Failure> {
        guarded!(self, |exports, store| match exports {
            Exports::Sink(s) => s.busbar_connector_sink_connector().call_open(store, config).await,
            Exports::Source(s) => s.busbar_connector_source_connector().call_open(store, config).await,
        })
    }

    pub(crate) async fn write(&mut self, batch: &[Event]) -> Result<Vec<Outcome>, Failure> {
        guarded!(self, |exports, store| match exports {
            Exports::Sink(s) => s.busbar_connector_sink_connector().call_write(store, batch).await,
            Exports::Source(_) => unreachable_world("write"),
        })
    }

    pub(crate) async fn poll(
        &mut self,
        cursor: Option<&str>,
        max: u32,
    ) -> Result<Result<PollResult, GuestError>, Failure> {
        guarded!(self, |exports, store| match exports {
            Exports::Source(s) => s.busbar_connector_source_connector().call_poll(store, cursor, max).await,
            Exports::Sink(_) => unreachable_world("poll"),
        })
    }

    pub(crate) async fn handle(&mut self, request: &HttpRequest) -> Result<Result<Handled, GuestError>, Failure> {
        guarded!(self, |exports, store| match exports {
            Exports::Source(s) => s.busbar_connector_source_connector().call_handle(store, request).await,
            Exports::Sink(_) => unreachable_world("handle"),
        })
    }

    pub(crate) async fn close(&mut self) -> Result<(), Failure> {
        guarded!(self, |exports, store| match exports {
            Exports::Sink(s) => s.busbar_connector_sink_connector().call_close(store).await,
            Exports::Source(s) => s.busbar_connector_source_connector().call_close(store).await,
        })
    }

}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn unreachable_world<T>(op: &str) -> wasmtime::Result<T> {
    Err(wasmtime::Error::msg(format!("`{op}` called on a connector of the other world")))
}
