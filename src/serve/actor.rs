//! A connector task on its own thread. A wasmtime store is not shareable between threads, so each connector
//! instance lives on a dedicated single-threaded executor and the rest of the process talks to it through a
//! channel. Calls to one instance are serialised, as the WIT contract expects.

use std::sync::Arc;

use anyhow::Context as _;
use busbar_runtime::host::{
    Connector, ConnectorTask, Event, Handled, HttpRequest, Kind, OpenOptions, Outcome, PollResult, Runtime,
};
use tokio::sync::{mpsc, oneshot};

/// Why a write did not run: the message, and how long to wait when the connector is restarting.
pub struct WriteError {
    pub message: String,
    pub retry_after: Option<std::time::Duration>,
}

enum Call {
    Write(Vec<Event>, oneshot::Sender<Result<Vec<Outcome>, WriteError>>),
    Poll(Option<String>, u32, oneshot::Sender<Result<PollResult, String>>),
    Handle(HttpRequest, oneshot::Sender<Result<Handled, String>>),
    Close(oneshot::Sender<()>),
}

/// A handle on a connector task running on its own thread. Cheap to clone.
#[derive(Clone)]
pub struct TaskHandle {
    tx: mpsc::Sender<Call>,
    pub kind: Kind,
}

const GONE: &str = "the connector's thread has stopped";

impl TaskHandle {
    /// Opens `connector` on a new thread and returns once `open` succeeded (or with why it failed).
    pub async fn open(runtime: Runtime, connector: Arc<Connector>, options: OpenOptions) -> anyhow::Result<Self> {
        let kind = connector.description().kind;
        let name = options.name.clone();
        let (tx, mut rx) = mpsc::channel::<Call>(64);
        let (opened_tx, opened_rx) = oneshot::channel::<Result<(), String>>();
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
                    while let Some(call) = rx.recv().await {
                        match call {
                            Call::Write(batch, reply) => {
                                let _ = reply.send(task.write(&batch).await.map_err(|e| WriteError {
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
                                let _ = reply.send(task.poll(cursor.as_deref(), max).await.map_err(|e| e.to_string()));
                            }
                            Call::Handle(request, reply) => {
                                let _ = reply.send(task.handle(&request).await.map_err(|e| e.to_string()));
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
        Ok(Self { tx, kind })
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Call) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    pub async fn write(&self, batch: Vec<Event>) -> Result<Vec<Outcome>, WriteError> {
        self.call(|r| Call::Write(batch, r))
            .await
            .unwrap_or_else(|| Err(WriteError { message: GONE.into(), retry_after: None }))
    }

    pub async fn poll(&self, cursor: Option<String>, max: u32) -> Result<PollResult, String> {
        self.call(|r| Call::Poll(cursor, max, r)).await.unwrap_or_else(|| Err(GONE.into()))
    }

    pub async fn handle(&self, request: HttpRequest) -> Result<Handled, String> {
        self.call(|r| Call::Handle(request, r)).await.unwrap_or_else(|| Err(GONE.into()))
    }

    pub async fn close(&self) {
        let _ = self.call(Call::Close).await;
    }
}
