//! The compliance harness every connector must pass, whatever language it is written in
//! (`busbar connector test`): describe is valid, a config that breaks the schema is rejected before `open`,
//! `open` accepts the given config, writes/polls/handles behave, `close` is clean, and the connector works
//! again after a restart, all within its limits.

use std::sync::Arc;

use serde::Serialize;

use super::bindings::types::{Event, Header, HttpRequest, Kind, Outcome};
use super::connector::Connector;
use super::supervisor::OpenOptions;
use super::{Grants, Limits, Runtime};
use crate::Error;

/// What the harness is given.
pub struct Harness {
    pub config: serde_json::Value,
    pub grants: Grants,
    pub limits: Limits,
    /// Events to write (sinks) or the body of the request to handle (push sources); samples when empty.
    pub input: Vec<Event>,
}

/// One check and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// The checks, in order; the connector passes when all passed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub connector: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
    fn check(&mut self, name: &'static str, result: Result<String, String>) -> bool {
        let passed = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        self.checks.push(Check { name, passed, detail });
        passed
    }
}

/// Sample events used when no input is given: an envelope event, a non-JSON payload, and one with a key and
/// headers.
pub fn sample_events() -> Vec<Event> {
    let event = |detail_type: &str, payload: &[u8], key: Option<&[u8]>| Event {
        id: format!("sample-{detail_type}"),
        source: "busbar.compliance".into(),
        detail_type: detail_type.into(),
        time: "2026-01-01T00:00:00Z".into(),
        key: key.map(<[u8]>::to_vec),
        headers: vec![Header { name: "trace".into(), value: b"abc".to_vec() }],
        payload: payload.to_vec(),
    };
    vec![
        event("order.created", br#"{"id":1,"total":12.5,"customer":"ada"}"#, None),
        event("raw.bytes", b"not json at all", None),
        event("order.updated", br#"{"id":2,"status":"paid"}"#, Some(b"customer-7")),
    ]
}

/// Runs every check on `connector`.
pub async fn run(runtime: &Runtime, connector: Arc<Connector>, harness: Harness) -> Report {
    let d = connector.description().clone();
    let mut report = Report { connector: format!("{} {}", d.name, d.version), checks: Vec::new() };

    report.check("describe is valid", describe_ok(&connector));

    let bad = bad_config(&connector);
    report.check(
        "a config that breaks the schema is rejected before open",
        match bad {
            None => Ok("the schema accepts every config; nothing to reject".into()),
            Some(bad) => match connector.validate_config(&bad) {
                Err(Error::ConfigRejected { path, message, .. }) if !message.is_empty() => {
                    Ok(format!("{bad} rejected at {path}: {message}"))
                }
                Err(other) => Err(format!("{bad} rejected without a path: {other}")),
                Ok(()) => Err(format!("{bad} was accepted")),
            },
        },
    );

    let options = || OpenOptions {
        name: format!("compliance-{}", d.name),
        config: harness.config.clone(),
        grants: harness.grants.clone(),
        limits: harness.limits.clone(),
    };
    let mut task = match runtime.open(connector.clone(), options()).await {
        Ok(task) => {
            report.check("open accepts the config", Ok(harness.config.to_string()));
            task
        }
        Err(e) => {
            report.check("open accepts the config", Err(e.to_string()));
            return report;
        }
    };

    let input = if harness.input.is_empty() { sample_events() } else { harness.input.clone() };
    for round in ["first instance", "after restart"] {
        let name = match (d.kind, round) {
            (Kind::Sink, "first instance") => "write returns one outcome per event",
            (Kind::Sink, _) => "write works after a restart",
            (Kind::PullSource, "first instance") => "poll returns at most max events and a cursor",
            (Kind::PullSource, _) => "poll works after a restart",
            (Kind::PushSource, "first instance") => "handle answers an HTTP request",
            (Kind::PushSource, _) => "handle works after a restart",
        };
        let result = match d.kind {
            Kind::Sink => exercise_sink(&mut task, &input).await,
            Kind::PullSource => exercise_pull(&mut task).await,
            Kind::PushSource => exercise_push(&mut task, &input).await,
        };
        if !report.check(name, result) {
            break;
        }
        if round == "first instance" {
            let restarted = task.restart().await.map(|()| "restarted".to_owned()).map_err(|e| e.to_string());
            if !report.check("restart opens a fresh instance", restarted) {
                break;
            }
        }
    }

    report.check("close is clean", task.close().await.map(|()| "closed".into()).map_err(|e| e.to_string()));
    let status = task.status();
    report.check(
        "no failure within the limits",
        match status.last_failure {
            None => Ok(format!(
                "memory cap {} bytes, call deadline {} ms",
                harness.limits.memory_bytes, harness.limits.call_timeout_ms
            )),
            Some(f) => Err(f.to_string()),
        },
    );
    report
}

fn describe_ok(connector: &Connector) -> Result<String, String> {
    let d = connector.description();
    let mut problems = Vec::new();
    if d.name.is_empty() || !d.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(format!("name {:?} must be non-empty letters, digits, '-' or '_'", d.name));
    }
    let parts: Vec<&str> = d.version.split(['.', '-', '+']).collect();
    if parts.len() < 3 || parts[..3].iter().any(|p| p.parse::<u64>().is_err()) {
        problems.push(format!("version {:?} must be semantic (e.g. 1.2.3)", d.version));
    }
    if d.summary.trim().is_empty() {
        problems.push("summary is empty".into());
    }
    if !connector.config_schema().is_object() {
        problems.push("config schema must be a JSON object".into());
    }
    if problems.is_empty() {
        Ok(format!("{} {} ({}, world {})", d.name, d.version, super::connector::kind_name(d.kind), connector.world()))
    } else {
        Err(problems.join("; "))
    }
}

/// A config the connector's schema should reject, if its schema rejects anything at all.
fn bad_config(connector: &Connector) -> Option<serde_json::Value> {
    let candidates = [
        serde_json::json!("not an object"),
        serde_json::json!(42),
        serde_json::json!({ "__busbar_unknown_field__": true }),
        serde_json::json!(null),
    ];
    candidates.into_iter().find(|c| connector.validate_config(c).is_err())
}

async fn exercise_sink(task: &mut super::ConnectorTask, input: &[Event]) -> Result<String, String> {
    let outcomes = task.write(input).await.map_err(|e| e.to_string())?;
    if outcomes.len() != input.len() {
        return Err(format!("{} outcomes for {} events", outcomes.len(), input.len()));
    }
    let empty = task.write(&[]).await.map_err(|e| format!("empty batch: {e}"))?;
    if !empty.is_empty() {
        return Err(format!("{} outcomes for an empty batch", empty.len()));
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    Ok(format!(
        "{} events: {} ok, {} retryable, {} fatal",
        input.len(),
        count(|o| matches!(o, Outcome::Ok)),
        count(|o| matches!(o, Outcome::Retryable(_))),
        count(|o| matches!(o, Outcome::Fatal(_)))
    ))
}

async fn exercise_pull(task: &mut super::ConnectorTask) -> Result<String, String> {
    let max = 5;
    let first = task.poll(None, max).await.map_err(|e| e.to_string())?;
    if first.events.len() > max as usize {
        return Err(format!("{} events for max {max}", first.events.len()));
    }
    let second = task.poll(first.cursor.as_deref(), max).await.map_err(|e| format!("second poll: {e}"))?;
    if second.events.len() > max as usize {
        return Err(format!("{} events for max {max} on the second poll", second.events.len()));
    }
    Ok(format!(
        "{} then {} events; cursor {:?}",
        first.events.len(),
        second.events.len(),
        second.cursor.or(first.cursor)
    ))
}

async fn exercise_push(task: &mut super::ConnectorTask, input: &[Event]) -> Result<String, String> {
    let body = input.first().map(|e| e.payload.clone()).unwrap_or_default();
    let request = HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![Header { name: "content-type".into(), value: b"application/json".to_vec() }],
        body,
    };
    let handled = task.handle(&request).await.map_err(|e| e.to_string())?;
    if !(100..600).contains(&handled.response.status) {
        return Err(format!("status {} is not an HTTP status", handled.response.status));
    }
    Ok(format!("status {}, {} events", handled.response.status, handled.events.len()))
}
