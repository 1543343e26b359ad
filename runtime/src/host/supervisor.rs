//! A supervised connector task: one instance reused across calls, restarted with exponential backoff after a
//! failure, with the reason kept for status reports.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::Runtime;
use super::bindings::types::{Event, Handled, HttpRequest, Kind, Outcome, PollResult};
use super::connector::{Connector, kind_name};
use super::grants::Grants;
use super::instance::{Failure, FailureKind, Instance};
use super::limits::Limits;
use crate::Error;

/// What the pipeline passes to open a connector.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Instance name: used in logs, status and as the state store's namespace.
    pub name: String,
    pub config: serde_json::Value,
    pub grants: Grants,
    pub limits: Limits,
}

/// Where a task stands.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    Running,
    /// The last call failed; the next call after `retry_in_ms` restarts the instance.
    BackingOff { retry_in_ms: u64 },
    Closed,
}

/// [`State`] without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Running,
    Failed,
    Closed,
}

/// A task's status, as the admin API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub connector: String,
    #[serde(flatten)]
    pub state: State,
    /// Restarts since the task was opened.
    pub restarts: u32,
    /// Failures since the last successful call.
    pub consecutive_failures: u32,
    pub last_failure: Option<Failure>,
    /// Linear memory of the running instance, in bytes.
    pub memory_bytes: usize,
}

/// One connector task under supervision.
pub struct ConnectorTask {
    runtime: Runtime,
    connector: Arc<Connector>,
    name: Arc<str>,
    config: String,
    grants: Arc<Grants>,
    limits: Limits,
    instance: Option<Instance>,
    closed: bool,
    restarts: u32,
    consecutive_failures: u32,
    last_failure: Option<Failure>,
    retry_at: Option<Instant>,
}

impl ConnectorTask {
    /// Validates the config, checks the grants, instantiates the connector and calls `open`. A bad config or a
    /// failing first `open` is returned as an error: nothing is left running.
    pub(crate) async fn open(runtime: Runtime, connector: Arc<Connector>, options: OpenOptions) -> Result<Self, Error> {
        connector.validate_config(&options.config)?;
        runtime.sql_pools().check_granted(&options.grants.sql)?;
        let mut task = ConnectorTask {
            runtime,
            name: Arc::from(options.name.as_str()),
            config: options.config.to_string(),
            grants: Arc::new(options.grants),
            limits: options.limits,
            connector,
            instance: None,
            closed: false,
            restarts: 0,
            consecutive_failures: 0,
            last_failure: None,
            retry_at: None,
        };
        let instance = task.start().await.map_err(|failure| match failure.kind {
            FailureKind::Open => Error::OpenFailed {
                connector: task.name.to_string(),
                message: failure.message.clone(),
                retryable: false,
            },
            _ => Error::Failed { connector: task.name.to_string(), failure },
        })?;
        task.instance = Some(instance);
        Ok(task)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn connector(&self) -> &Arc<Connector> {
        &self.connector
    }

    async fn start(&self) -> Result<Instance, Failure> {
        let mut instance =
            Instance::new(&self.runtime, &self.connector, self.name.clone(), self.grants.clone(), &self.limits).await?;
        match instance.open(&self.config).await? {
            Ok(()) => {
                tracing::info!(connector = %self.name, reference = %self.connector.reference(), "connector opened");
                Ok(instance)
            }
            Err(e) => Err(Failure::new(FailureKind::Open, e.message)),
        }
    }

    /// The running instance, restarting it if its backoff has elapsed.
    async fn ensure_running(&mut self) -> Result<&mut Instance, Error> {
        if self.closed {
            return Err(Error::Failed {
                connector: self.name.to_string(),
                failure: Failure::new(FailureKind::Protocol, "the task is closed"),
            });
        }
        if self.instance.is_none() {
            if let Some(at) = self.retry_at {
                let now = Instant::now();
                if now < at {
                    return Err(Error::BackingOff {
                        connector: self.name.to_string(),
                        retry_in_ms: (at - now).as_millis() as u64,
                        failure: self.last_failure.clone().unwrap_or_else(|| Failure::new(FailureKind::Trap, "")),
                    });
                }
            }
            self.restarts += 1;
            tracing::info!(connector = %self.name, restarts = self.restarts, "restarting connector");
            match self.start().await {
                Ok(instance) => self.instance = Some(instance),
                Err(failure) => return Err(self.failed(failure)),
            }
        }
        Ok(self.instance.as_mut().expect("instance present"))
    }

    /// Records a failure, drops the instance and schedules the restart.
    fn failed(&mut self, failure: Failure) -> Error {
        self.instance = None;
        self.consecutive_failures += 1;
        let delay = self.limits.backoff(self.consecutive_failures);
        self.retry_at = Some(Instant::now() + delay);
        tracing::error!(
            connector = %self.name,
            kind = ?failure.kind,
            failures = self.consecutive_failures,
            retry_in_ms = delay.as_millis() as u64,
            reason = %failure.message,
            "connector failed; restarting after backoff"
        );
        self.last_failure = Some(failure.clone());
        Error::Failed { connector: self.name.to_string(), failure }
    }

    fn succeeded(&mut self) {
        self.consecutive_failures = 0;
        self.retry_at = None;
    }

    fn require(&self, want: Kind, operation: &'static str) -> Result<(), Error> {
        if self.connector.kind() == want {
            Ok(())
        } else {
            Err(Error::WrongKind {
                connector: self.name.to_string(),
                kind: kind_name(self.connector.kind()),
                operation,
            })
        }
    }

    /// Sinks: one outcome per event, in order.
    pub async fn write(&mut self, batch: &[Event]) -> Result<Vec<Outcome>, Error> {
        self.require(Kind::Sink, "write")?;
        let result = self.ensure_running().await?.write(batch).await;
        match result {
            Ok(outcomes) if outcomes.len() == batch.len() => {
                self.succeeded();
                Ok(outcomes)
            }
            Ok(outcomes) => Err(self.failed(Failure::new(
                FailureKind::Protocol,
                format!("write returned {} outcomes for a batch of {}", outcomes.len(), batch.len()),
            ))),
            Err(failure) => Err(self.failed(failure)),
        }
    }

    /// Pull sources: the next events after `cursor`. A connector error (e.g. the API answered 503) is returned
    /// as [`Error::Connector`] and does not restart the instance.
    pub async fn poll(&mut self, cursor: Option<&str>, max: u32) -> Result<PollResult, Error> {
        self.require(Kind::PullSource, "poll")?;
        let result = self.ensure_running().await?.poll(cursor, max).await;
        self.source_result(result)
    }

    /// Push sources: one inbound HTTP request.
    pub async fn handle(&mut self, request: &HttpRequest) -> Result<Handled, Error> {
        self.require(Kind::PushSource, "handle")?;
        let result = self.ensure_running().await?.handle(request).await;
        self.source_result(result)
    }

    fn source_result<T>(
        &mut self,
        result: Result<Result<T, super::bindings::types::Error>, Failure>,
    ) -> Result<T, Error> {
        match result {
            Ok(Ok(value)) => {
                self.succeeded();
                Ok(value)
            }
            Ok(Err(e)) => {
                self.succeeded();
                Err(Error::Connector { connector: self.name.to_string(), message: e.message, retryable: e.retryable })
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    /// Restarts now, whatever the backoff says (the admin API's `restart`).
    pub async fn restart(&mut self) -> Result<(), Error> {
        if let Some(mut instance) = self.instance.take() {
            let _ = instance.close().await;
        }
        self.retry_at = None;
        self.closed = false;
        self.ensure_running().await.map(|_| ())
    }

    /// Calls `close` and drops the instance.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.closed = true;
        match self.instance.take() {
            Some(mut instance) => instance
                .close()
                .await
                .map_err(|failure| Error::Failed { connector: self.name.to_string(), failure }),
            None => Ok(()),
        }
    }

    /// Whether the instance is running, failed (waiting to restart) or closed, and its restarts: what
    /// [`ConnectorTask::status`] says, without building one (for per-call metrics).
    pub fn health(&self) -> (Health, u32) {
        let health = if self.closed {
            Health::Closed
        } else if self.instance.is_some() {
            Health::Running
        } else {
            Health::Failed
        };
        (health, self.restarts)
    }

    pub fn status(&self) -> Status {
        let state = if self.closed {
            State::Closed
        } else if self.instance.is_some() {
            State::Running
        } else {
            let retry_in_ms =
                self.retry_at.map(|at| at.saturating_duration_since(Instant::now()).as_millis() as u64).unwrap_or(0);
            State::BackingOff { retry_in_ms }
        };
        Status {
            name: self.name.to_string(),
            connector: self.connector.reference().to_string(),
            state,
            restarts: self.restarts,
            consecutive_failures: self.consecutive_failures,
            last_failure: self.last_failure.clone(),
            memory_bytes: self.instance.as_ref().map_or(0, Instance::memory_bytes),
        }
    }
}
