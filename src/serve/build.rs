//! From a checked pipeline to running parts: connector tasks, delivery lanes and the compiled routes.

use std::sync::Arc;

use anyhow::Context as _;
use busbar_rules::pipeline::{self, ConnectorRef, Input, Pipeline};
use busbar_rules::{MatcherBuilder, TransformContext};
use busbar_runtime::bus::Bus;
use busbar_runtime::envelope::Envelope;
use busbar_runtime::host::{self, Grants, Limits, OpenOptions, Runtime};
use busbar_runtime::router::lane::Lane;
use busbar_runtime::router::{LaneConfig, Prepare, Progress, RetryPolicy, RouteRule, Routes, Target};
use bytes::Bytes;
use jsonpath_rust::JsonPath as _;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::actor::TaskHandle;
use super::targets::{TopicTarget, WasmTarget};

/// Routes of one pipeline plus the lane workers and connector tasks behind them.
pub struct BuiltRoutes<B> {
    pub routes: Routes<B>,
    pub workers: Vec<JoinHandle<()>>,
    pub tasks: Vec<TaskHandle>,
}

pub fn runtime_ref(connector: &ConnectorRef) -> host::ConnectorRef {
    match connector {
        ConnectorRef::Builtin(name) => host::ConnectorRef::Builtin(name.clone()),
        ConnectorRef::Wasm(path) => host::ConnectorRef::Path(path.clone()),
    }
}

pub fn runtime_grants(grants: &pipeline::Grants) -> Grants {
    Grants { http: grants.http.clone(), sql: grants.sql.clone(), state: grants.state }
}

/// Loads and opens a connector under supervision.
pub async fn open_task(
    runtime: &Runtime,
    name: &str,
    connector: &ConnectorRef,
    config: &Value,
    grants: &pipeline::Grants,
) -> anyhow::Result<TaskHandle> {
    let loaded = runtime.load(&runtime_ref(connector)).await.with_context(|| format!("loading {name}"))?;
    let options = OpenOptions {
        name: name.to_owned(),
        config: config.clone(),
        grants: runtime_grants(grants),
        limits: Limits::default(),
    };
    TaskHandle::open(runtime.clone(), loaded, options).await
}

/// What a target receives for an event.
pub(super) fn prepare(input: &Input, pipeline: &str, rule: &str) -> Prepare {
    match input {
        Input::Event => Arc::new(|_: &Envelope| Ok(None)),
        Input::Constant(value) => {
            let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
            Arc::new(move |_: &Envelope| Ok(Some(bytes.clone())))
        }
        Input::Path(path) => {
            let path = path.clone();
            Arc::new(move |event: &Envelope| {
                let found = event.value().query(&path).map_err(|e| format!("input_path {path}: {e}"))?;
                let value = found.first().copied().cloned().unwrap_or(Value::Null);
                Ok(Some(Bytes::from(serde_json::to_vec(&value).map_err(|e| e.to_string())?)))
            })
        }
        Input::Transformer(transformer) => {
            let transformer = transformer.clone();
            let rule_name = rule.to_owned();
            let rule_arn = format!("arn:busbar:events:::rule/{pipeline}/{rule}");
            Arc::new(move |event: &Envelope| {
                let event = event.value();
                let ingestion_time = event.get("time").and_then(Value::as_str).unwrap_or_default();
                let context = TransformContext { rule_name: &rule_name, rule_arn: &rule_arn, ingestion_time };
                transformer.transform(event, &context).map(|out| Some(Bytes::from(out))).map_err(|e| e.to_string())
            })
        }
    }
}

fn retry_policy(spec: &pipeline::RetrySpec) -> RetryPolicy {
    RetryPolicy {
        max_attempts: spec.max_attempts.saturating_add(1),
        max_age: spec.max_age.get(),
        initial_backoff: spec.backoff.initial.get(),
        max_backoff: spec.backoff.max.get(),
        multiplier: spec.backoff.multiplier.max(1.0),
        jitter: spec.backoff.jitter,
    }
}

/// Opens every target of `pipeline`, starts a lane for each and compiles the rules into one matcher.
pub async fn build_routes<B: Bus>(
    pipeline: &Pipeline,
    runtime: &Runtime,
    bus: &Arc<B>,
    progress: &Progress,
    buffer: usize,
) -> anyhow::Result<BuiltRoutes<B>> {
    let mut matcher = MatcherBuilder::new();
    let mut rules = Vec::with_capacity(pipeline.rules.len());
    let mut workers = Vec::new();
    let mut tasks = Vec::new();
    for (id, rule) in pipeline.rules.iter().enumerate() {
        if rule.enabled {
            matcher.add(id, &rule.pattern);
        }
        let mut lanes = Vec::with_capacity(rule.targets.len());
        for target in &rule.targets {
            let name = format!("{}/{}/{}", pipeline.name, rule.name, target.name);
            let config = LaneConfig {
                pipeline: pipeline.name.clone(),
                rule: rule.name.clone(),
                target: target.name.clone(),
                retry: retry_policy(&target.retry),
                dead_letter_topic: target.dead_letter.clone(),
                retry_topic: format!("{}.{}.{}.retry", pipeline.bus.topic, rule.name, target.name),
                max_batch: target.batch.max_records as usize,
                max_wait: target.batch.max_wait.get(),
                max_batch_bytes: target.batch.max_bytes as usize,
                buffer,
            };
            let prepare = prepare(&target.input, &pipeline.name, &rule.name);
            let settle = progress.settler();
            let (lane, worker) = match &target.connector {
                ConnectorRef::Builtin(builtin) if builtin == "topic" => {
                    let topic = target
                        .config
                        .expose()
                        .get("topic")
                        .and_then(Value::as_str)
                        .with_context(|| format!("{name}: builtin:topic needs config.topic"))?
                        .to_owned();
                    let spec = busbar_runtime::bus::TopicSpec { partitions: 1, configs: Vec::new() };
                    bus.ensure_topic(&topic, &spec).await?;
                    let target = Arc::new(TopicTarget { bus: bus.clone(), topic });
                    spawn_lane(config, bus, target, prepare, settle).await?
                }
                connector => {
                    let mut instances = Vec::new();
                    for instance in 0..target.tasks {
                        let name = if target.tasks == 1 { name.clone() } else { format!("{name}#{instance}") };
                        let task = open_task(runtime, &name, connector, target.config.expose(), &target.grants).await?;
                        tasks.push(task.clone());
                        instances.push(task);
                    }
                    let by_key = target.ordering == pipeline::Ordering::Key;
                    spawn_lane(config, bus, Arc::new(WasmTarget::new(instances, by_key)), prepare, settle).await?
                }
            };
            lanes.push(Arc::new(lane));
            workers.push(worker);
        }
        rules.push(RouteRule { name: rule.name.clone(), lanes });
    }
    Ok(BuiltRoutes { routes: Routes { matcher: matcher.build(), rules }, workers, tasks })
}

async fn spawn_lane<B: Bus, T: Target>(
    config: LaneConfig,
    bus: &Arc<B>,
    target: Arc<T>,
    prepare: Prepare,
    settle: busbar_runtime::router::lane::Settle,
) -> anyhow::Result<(Lane<B>, JoinHandle<()>)> {
    Ok(Lane::spawn(config, bus.clone(), target, prepare, settle).await?)
}
