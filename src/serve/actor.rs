//! A connector task on its own thread. A wasmtime store is not shareable between threads, so each connector
//! instance lives on a dedicated single-threaded executor and the rest of the process talks to it through a
//! channel. Calls to one instance are serialised, as the WIT contract expects.
//!
//! An instance can be paused (calls wait; webhooks answer 503), stopped (paused, and the instance is closed to
//! free its memory) and resumed. That state is kept per instance name for the whole process, so it survives a
//! reload of the pipeline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::Context as _;
use busbar_runtime::host::{
    Connector, ConnectorTask, Event, Handled, Health, HttpRequest, Kind, OpenOptions, Outcome, PollResult, Runtime,
    Status,
};
use tokio::sync::{Notify, mpsc, oneshot, watch};

/// Whether an instance takes calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Paused,
    Stopped,
}

/// The run state of one instance name, shared by every handle of that name.
pub struct Control {
    state: AtomicU8,
    resumed: Notify,
}

impl Control {
    pub fn get(&self) -> RunState {
        match self.state.load(Ordering::Acquire) {
            0 => RunState::Running,
            1 => RunState::Paused,
            _ => RunState::Stopped,
        }
    }

    fn set(&self, state: RunState) {
        let value = match state {
            RunState::Running => 0,
            RunState::Paused => 1,
            RunState::Stopped => 2,
        };
        self.state.store(value, Ordering::Release);
        if state == RunState::Running {
            self.resumed.notify_waiters();
        }
    }

    /// Waits until the instance runs again.
    async fn wait_running(&self) {
        loop {
            let resumed = self.resumed.notified();
            if self.get() == RunState::Running {
                return;
            }
            resumed.await;
        }
    }
}

static CONTROLS: LazyLock<Mutex<HashMap<String, Arc<Control>>>> = LazyLock::new(Mutex::default);

fn control(name: &str) -> Arc<Control> {
    CONTROLS
        .lock()
        .expect("controls lock")
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Control { state: AtomicU8::new(0), resumed: Notify::new() }))
        .clone()
}

/// Upper bounds of the call-duration histogram, milliseconds.
pub const CALL_BUCKETS_MS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 50.0, 250.0, 1000.0, 10000.0];

/// What an instance's thread records after every call, for metrics: call durations (write, poll, handle), its
/// health and restarts, without a round trip to the thread.
#[derive(Debug, Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub call_us_sum: AtomicU64,
    /// Calls per duration bucket: `buckets[i]` counts calls up to [`CALL_BUCKETS_MS`]`[i]` (not cumulative; the
    /// last slot is everything slower).
    pub buckets: [AtomicU64; CALL_BUCKETS_MS.len() + 1],
    pub restarts: AtomicU64,
    /// 0 running, 1 failed (restarting after a backoff), 2 closed.
    health: AtomicU8,
}

impl CallStats {
    fn observe(&self, took: Duration, task: &ConnectorTask) {
        let us = took.as_micros() as u64;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_us_sum.fetch_add(us, Ordering::Relaxed);
        let ms = us as f64 / 1000.0;
        let slot = CALL_BUCKETS_MS.iter().position(|&bound| ms <= bound).unwrap_or(CALL_BUCKETS_MS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.refresh(task);
    }

    fn refresh(&self, task: &ConnectorTask) {
        let (health, restarts) = task.health();
        self.restarts.store(u64::from(restarts), Ordering::Relaxed);
        let code = match health {
            Health::Running => 0,
            Health::Failed => 1,
            Health::Closed => 2,
        };
        self.health.store(code, Ordering::Relaxed);
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            0 => Health::Running,
            1 => Health::Failed,
            _ => Health::Closed,
        }
    }
}

/// Why a write did not run: the message, and how long to wait when the connector is restarting.
pub struct WriteError {
    pub message: String,
    pub retry_after: Option<std::time::Duration>,
}

enum Call {
    Write(Vec<Event>, oneshot::Sender<Result<Vec<Outcome>, WriteError>>),
    Poll(Option<String>, u32, oneshot::Sender<Result<PollResult, String>>),
    /// The request comes back with the answer, for the caller to dead-letter a refused one without a copy.
    Handle(HttpRequest, oneshot::Sender<Result<(Handled, HttpRequest), String>>),
    Status(oneshot::Sender<Status>),
    Restart(oneshot::Sender<Result<(), String>>),
    /// Closes the instance but keeps the task: the next call or restart opens a new one.
    Shutdown(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// A handle on a connector task running on its own thread. Cheap to clone.
#[derive(Clone)]
pub struct TaskHandle {
    tx: mpsc::Sender<Call>,
    pub kind: Kind,
    /// Instance name: `<pipeline>/<source>` or `<pipeline>/<rule>/<target>` (`#n` for extra instances).
    pub name: Arc<str>,
    control: Arc<Control>,
    pub stats: Arc<CallStats>,
}

const GONE: &str = "the connector's thread has stopped";

impl TaskHandle {
    /// Opens `connector` on a new thread and returns once `open` succeeded (or with why it failed).
    pub async fn open(runtime: Runtime, connector: Arc<Connector>, options: OpenOptions) -> anyhow::Result<Self> {
        let kind = connector.description().kind;
        let name = options.name.clone();
        let (tx, mut rx) = mpsc::channel::<Call>(64);
        let (opened_tx, opened_rx) = oneshot::channel::<Result<(), String>>();
        let stats = Arc::new(CallStats::default());
        let recorded = stats.clone();
        std::thread::Builder::new()
            .name(format!("connector {name}"))
            .spawn(move || {
                let executor = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(executor) => executor,
                    Err(err) => {
                        let _ = opened_tx.send(Err(err.to_string()));
                        return;
                    }
                };
                executor.block_on(async move {
                    let mut task: ConnectorTask = match runtime.open(connector, options).await {
                        Ok(task) => {
                            let _ = opened_tx.send(Ok(()));
                            task
                        }
                        Err(err) => {
                            let _ = opened_tx.send(Err(err.to_string()));
                            return;
                        }
                    };
                    let stats = recorded;
                    while let Some(call) = rx.recv().await {
                        let started = Instant::now();
                        match call {
                            Call::Write(batch, reply) => {
                                let result = task.write(&batch).await;
                                stats.observe(started.elapsed(), &task);
                                let _ = reply.send(result.map_err(|e| WriteError {
                                    retry_after: match &e {
                                        busbar_runtime::Error::BackingOff { retry_in_ms, .. } => {
                                            Some(std::time::Duration::from_millis(*retry_in_ms))
                                        }
                                        _ => None,
                                    },
                                    message: e.to_string(),
                                }));
                            }
                            Call::Poll(cursor, max, reply) => {
                                let result = task.poll(cursor.as_deref(), max).await;
                                stats.observe(started.elapsed(), &task);
                                let _ = reply.send(result.map_err(|e| e.to_string()));
                            }
                            Call::Handle(request, reply) => {
                                let result = task.handle(&request).await;
                                stats.observe(started.elapsed(), &task);
                                let _ = reply.send(result.map(|handled| (handled, request)).map_err(|e| e.to_string()));
                            }
                            Call::Status(reply) => {
                                let _ = reply.send(task.status());
                            }
                            Call::Restart(reply) => {
                                let result = task.restart().await;
                                stats.refresh(&task);
                                let _ = reply.send(result.map_err(|e| e.to_string()));
                            }
                            Call::Shutdown(reply) => {
                                let _ = task.close().await;
                                stats.refresh(&task);
                                let _ = reply.send(());
                            }
                            Call::Close(reply) => {
                                let _ = task.close().await;
                                let _ = reply.send(());
                                return;
                            }
                        }
                    }
                    let _ = task.close().await;
                });
            })
            .context("starting the connector's thread")?;
        opened_rx
            .await
            .map_err(|_| anyhow::anyhow!(GONE))?
            .map_err(|message| anyhow::anyhow!(message))
            .with_context(|| format!("opening {name}"))?;
        let control = control(&name);
        Ok(Self { tx, kind, name: name.into(), control, stats })
    }

    pub fn run_state(&self) -> RunState {
        self.control.get()
    }

    /// Waits while the instance is paused or stopped; false if `shutdown` came first.
    pub async fn wait_running(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            _ = self.control.wait_running() => true,
            _ = shutdown.wait_for(|stop| *stop) => false,
        }
    }

    pub async fn status(&self) -> Option<Status> {
        self.call(Call::Status).await
    }

    pub fn pause(&self) {
        self.control.set(RunState::Paused);
    }

    /// Pauses and closes the instance, freeing its memory.
    pub async fn stop(&self) {
        self.control.set(RunState::Stopped);
        let _ = self.call(Call::Shutdown).await;
    }

    /// Runs again; a stopped instance is re-opened.
    pub async fn resume(&self) -> Result<(), String> {
        let was = self.control.get();
        if was == RunState::Stopped {
            self.call(Call::Restart).await.unwrap_or_else(|| Err(GONE.into()))?;
        }
        self.control.set(RunState::Running);
        Ok(())
    }

    /// Restarts the instance now, whatever its backoff says.
    pub async fn restart(&self) -> Result<(), String> {
        self.call(Call::Restart).await.unwrap_or_else(|| Err(GONE.into()))
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Call) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Delivers a batch; waits first while the instance is paused or stopped (the lane holds, events park).
    pub async fn write(&self, batch: Vec<Event>) -> Result<Vec<Outcome>, WriteError> {
        self.control.wait_running().await;
        self.call(|r| Call::Write(batch, r))
            .await
            .unwrap_or_else(|| Err(WriteError { message: GONE.into(), retry_after: None }))
    }

    pub async fn poll(&self, cursor: Option<String>, max: u32) -> Result<PollResult, String> {
        self.call(|r| Call::Poll(cursor, max, r)).await.unwrap_or_else(|| Err(GONE.into()))
    }

    /// Push sources: one request; on success the request is handed back with the connector's answer.
    pub async fn handle(&self, request: HttpRequest) -> Result<(Handled, HttpRequest), String> {
        self.call(|r| Call::Handle(request, r)).await.unwrap_or_else(|| Err(GONE.into()))
    }

    pub async fn close(&self) {
        let _ = self.call(Call::Close).await;
    }
}
