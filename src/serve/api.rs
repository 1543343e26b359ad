//! The control API of `busbar serve`, on the same HTTP listener as the webhooks. Errors are JSON objects with a
//! `code` and a `message`.
//!
//! - `GET /pipelines`, `GET /pipelines/{name}` (the file as written: secret references, never their values),
//!   `PUT /pipelines/{name}` (a new version, applied as a reload applies a changed file: checked first, and a
//!   rejected one leaves the running version alone), `POST /pipelines/validate` (a pipeline document; the same
//!   checks as `busbar validate`);
//! - `GET /topics`, `GET /topics/{name}` (partitions with their offsets, configs);
//! - `GET /groups`, `GET /groups/{id}` (committed offsets and lag per partition);
//! - `POST /rules/test` `{pattern, event}`: does the pattern match; `{pipeline, event}`: which of that pipeline's
//!   rules match and what each of their targets would receive;
//! - `GET /stats`: the counters behind `/metrics` as one JSON document (topics, rules, targets, latency);
//! - `POST /replay` `{pipeline, rule, target?, from, to?}` starts a replay (times: RFC 3339 or Unix ms) and
//!   answers `202` with its id; `GET /replay/{id}` reports its progress; `GET /replay` lists them;
//! - `GET /connectors`, `GET /connectors/{name}` (config as written), `GET /connectors/{name}/status`,
//!   `PUT /connectors/{name}/pause|resume|stop`, `POST /connectors/{name}/restart`; a name is
//!   `<pipeline>/<source>` or `<pipeline>/<rule>/<target>`;
//! - `GET /connector-plugins`, `PUT /connector-plugins/{name}/config/validate`;
//! - `GET /dlq/{topic}?offset=&limit=` browses a dead-letter topic; `POST /dlq/{topic}/redrive` sends one record
//!   (`{"offset": n}`) or all of them back to the target they failed at;
//! - `GET /metrics`: Prometheus text format; `GET /openapi.json`: this API described;
//! - `/ui`: the web console (`ui/`), static files that call the routes above.
//!
//! With a token (`--api-token`), every route here needs `Authorization: Bearer <token>`; webhooks, `/healthz`
//! and the console's static files never do (webhooks check their own signatures; the console asks for the token
//! and sends it with each API call).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use busbar_runtime::router::Router as BusRouter;
use busbar_runtime::router::lane::LATENCY_BUCKETS_MS;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use busbar_rules::pipeline::{self, Pipeline, SourceFile};
use busbar_rules::{Pattern, PatternOptions};

use busbar_runtime::bus::Bus as _;
use busbar_runtime::host::{Runtime, RuntimeConfig};
use busbar_runtime::envelope::Envelope;
use busbar_runtime::router::lane::Work;

use super::actor::{CALL_BUCKETS_MS, RunState, TaskHandle};
use super::bus::EmbeddedBus;
use super::replay;

/// What the API can see of the process. Pipelines are registered as they start and removed as they stop.
pub struct Api {
    bus: Arc<EmbeddedBus>,
    pipelines: RwLock<BTreeMap<String, Registered>>,
    replays: Mutex<Vec<Arc<ReplayJob>>>,
    token: Option<String>,
    strict: bool,
    /// Where compiled components are cached; the built-ins are loaded from there on the first plugins request.
    cache_dir: std::path::PathBuf,
    plugins: tokio::sync::OnceCell<Vec<Arc<busbar_runtime::host::Connector>>>,
    /// New pipeline versions from `PUT /pipelines/{name}`, to the serve loop that owns the running pipelines.
    applies: mpsc::Sender<Apply>,
}

/// A new version of a running pipeline, for the serve loop to apply exactly as it applies a reloaded file.
pub struct Apply {
    pub name: String,
    /// The pipeline document as sent.
    pub text: String,
    pub reply: oneshot::Sender<Applied>,
}

/// What became of an [`Apply`].
pub enum Applied {
    /// The new version runs.
    Updated,
    /// The document is the running version already; nothing was restarted.
    Unchanged,
    /// No pipeline of that name runs (it stopped since the request was checked).
    NotFound,
    /// The document was rejected by the checks; the running version is unchanged. One problem per entry.
    Invalid(Vec<String>),
    /// The document is valid but could not be started; the running version is kept.
    Failed(String),
}

/// A running pipeline as the API sees it.
#[derive(Clone)]
struct Registered {
    pipeline: Arc<Pipeline>,
    router: Arc<BusRouter<EmbeddedBus>>,
    tasks: Vec<TaskHandle>,
}

struct ReplayJob {
    id: usize,
    pipeline: String,
    request: replay::Request,
    progress: Arc<replay::Progress>,
}

impl ReplayJob {
    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "pipeline": self.pipeline,
            "rule": self.request.rule,
            "target": self.request.target,
            "from_ms": self.request.from_ms,
            "to_ms": self.request.to_ms,
            "progress": self.progress.snapshot(),
        })
    }
}

impl Api {
    pub fn new(
        bus: Arc<EmbeddedBus>,
        token: Option<String>,
        strict: bool,
        cache_dir: std::path::PathBuf,
        applies: mpsc::Sender<Apply>,
    ) -> Arc<Self> {
        let plugins = tokio::sync::OnceCell::new();
        Arc::new(Self {
            bus,
            pipelines: RwLock::default(),
            replays: Mutex::default(),
            token,
            strict,
            cache_dir,
            plugins,
            applies,
        })
    }

    /// The built-in connectors, loaded once.
    async fn plugins(&self) -> Result<&[Arc<busbar_runtime::host::Connector>], ApiError> {
        let load = || async {
            let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(self.cache_dir.clone()), ..RuntimeConfig::default() })?;
            runtime.builtins().await
        };
        self.plugins
            .get_or_try_init(load)
            .await
            .map(Vec::as_slice)
            .map_err(|e: busbar_runtime::Error| ApiError::bad_request(format!("cannot load the built-in connectors: {e}")))
    }

    /// Registers a pipeline that started, or its new version after a reload.
    pub fn register(&self, pipeline: &Pipeline, router: Arc<BusRouter<EmbeddedBus>>, tasks: &[TaskHandle]) {
        let registered = Registered { pipeline: Arc::new(pipeline.clone()), router, tasks: tasks.to_vec() };
        self.pipelines.write().expect("api lock").insert(pipeline.name.clone(), registered);
    }

    pub fn unregister(&self, pipeline: &str) {
        self.pipelines.write().expect("api lock").remove(pipeline);
    }

    fn router(&self, pipeline: &str) -> Result<Arc<BusRouter<EmbeddedBus>>, ApiError> {
        self.registered(pipeline).map(|r| r.router)
    }

    fn registered(&self, pipeline: &str) -> Result<Registered, ApiError> {
        let pipelines = self.pipelines.read().expect("api lock");
        pipelines.get(pipeline).cloned().ok_or_else(|| {
            let known: Vec<&str> = pipelines.keys().map(String::as_str).collect();
            ApiError::not_found(format!("no pipeline named {pipeline:?} is running; running: {}", known.join(", ")))
        })
    }
}

pub fn routes(api: Arc<Api>) -> Router {
    Router::new()
        .route("/pipelines", get(list_pipelines))
        .route("/pipelines/validate", post(validate_pipeline))
        .route("/pipelines/{name}", get(get_pipeline).put(put_pipeline))
        .route("/topics", get(list_topics))
        .route("/topics/{name}", get(get_topic))
        .route("/groups", get(list_groups))
        .route("/groups/{id}", get(get_group))
        .route("/rules/test", post(test_rule))
        .route("/replay", post(start_replay).get(list_replays))
        .route("/replay/{id}", get(get_replay))
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
        .route("/connectors", get(list_connectors))
        .route("/connectors/{*rest}", axum::routing::any(connector_route))
        .route("/connector-plugins", get(list_plugins))
        .route("/connector-plugins/{name}/config/validate", axum::routing::put(validate_plugin_config))
        .route("/dlq/{topic}", get(browse_dlq))
        .route("/dlq/{topic}/redrive", post(redrive_dlq))
        .route("/openapi.json", get(openapi))
        .route_layer(axum::middleware::from_fn_with_state(api.clone(), authorize))
        .with_state(api)
}

/// Requires the bearer token when one is set. Compared in constant time.
async fn authorize(
    State(api): State<Arc<Api>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = &api.token {
        let given = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let same = given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            let mut response = ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: "this API needs `Authorization: Bearer <token>` with the token busbar serve was started with (--api-token)".into(),
            }
            .into_response();
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// An API error: HTTP status, a stable code and a message for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn conflict(message: String) -> Self {
        Self { status: StatusCode::CONFLICT, code: "conflict", message }
    }

    fn not_found(message: String) -> Self {
        Self { status: StatusCode::NOT_FOUND, code: "not_found", message }
    }

    fn bad_request(message: String) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "bad_request", message }
    }

    fn unavailable(message: String) -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, code: "unavailable", message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "code": self.code, "message": self.message }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::bad_request(format!("invalid request body: {}", rejection.body_text()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    pipeline: String,
    rule: String,
    #[serde(default)]
    target: Option<String>,
    from: Value,
    #[serde(default)]
    to: Option<Value>,
}

/// A time in a request: Unix milliseconds or an RFC 3339 timestamp.
fn parse_time(field: &str, value: &Value) -> Result<i64, ApiError> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| ApiError::bad_request(format!("{field}: {n} is not a whole number of Unix milliseconds"))),
        Value::String(text) => {
            crate::cli::time::parse_timestamp(text).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
        }
        other => Err(ApiError::bad_request(format!("{field}: expected Unix milliseconds or an RFC 3339 string, got {other}"))),
    }
}

async fn start_replay(
    State(api): State<Arc<Api>>,
    body: Result<Json<ReplayBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let request = replay::Request {
        rule: body.rule,
        target: body.target,
        from_ms: parse_time("from", &body.from)?,
        to_ms: body.to.as_ref().map(|to| parse_time("to", to)).transpose()?,
    };
    let router = api.router(&body.pipeline)?;
    replay::check(&body.pipeline, &router, &request).map_err(|e| match e {
        replay::Invalid::EmptyWindow { .. } => ApiError::bad_request(e.to_string()),
        _ => ApiError::not_found(e.to_string()),
    })?;
    let bus = api.bus.clone();
    let progress = Arc::new(replay::Progress::default());
    let job = {
        let mut replays = api.replays.lock().expect("api lock");
        let job = Arc::new(ReplayJob { id: replays.len() + 1, pipeline: body.pipeline, request: request.clone(), progress: progress.clone() });
        replays.push(job.clone());
        job
    };
    tracing::info!(id = job.id, pipeline = %job.pipeline, rule = %request.rule, target = ?request.target,
        from_ms = request.from_ms, to_ms = ?request.to_ms, "replay started");
    tokio::spawn(replay::run(bus, router, request, progress));
    Ok((StatusCode::ACCEPTED, Json(job.view())))
}

async fn get_replay(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let replays = api.replays.lock().expect("api lock");
    id.parse::<usize>()
        .ok()
        .and_then(|id| id.checked_sub(1))
        .and_then(|index| replays.get(index))
        .map(|job| Json(job.view()))
        .ok_or_else(|| ApiError::not_found(format!("no replay with id {id:?}")))
}

async fn list_replays(State(api): State<Arc<Api>>) -> Json<Value> {
    let replays = api.replays.lock().expect("api lock");
    Json(Value::Array(replays.iter().map(|job| job.view()).collect()))
}

async fn list_pipelines(State(api): State<Arc<Api>>) -> Json<Value> {
    let pipelines = api.pipelines.read().expect("api lock");
    Json(Value::Array(
        pipelines
            .values()
            .map(|r| {
                let p = &r.pipeline;
                json!({
                    "name": p.name,
                    "file": p.file,
                    "topic": p.bus.topic,
                    "sources": p.sources.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                    "rules": p.rules.iter().map(|rule| json!({
                        "name": rule.name,
                        "targets": rule.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    ))
}

async fn get_pipeline(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let registered = api.registered(&name)?;
    let spec = serde_json::to_value(&registered.pipeline.spec).unwrap_or(Value::Null);
    Ok(Json(json!({ "name": name, "file": registered.pipeline.file, "spec": spec })))
}

/// Applies a new version of a running pipeline. The serve loop checks and applies it as it would a changed file
/// on SIGHUP, so a rejected version leaves the running one untouched. The next reload from the files puts the
/// file's version back: the files stay the source of truth.
async fn put_pipeline(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    api.registered(&name)?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 text; send the pipeline as JSON".into()))?;
    // PUT replaces the pipeline its path names; it neither renames one nor creates another.
    if let Some(named) = serde_json::from_str::<Value>(&text).ok().as_ref().and_then(|doc| doc.get("name")).and_then(Value::as_str)
        && named != name
    {
        return Err(ApiError::bad_request(format!(
            "the body is pipeline {named:?} but the path names {name:?}; PUT /pipelines/{{name}} replaces the pipeline of \
             that name and cannot rename it"
        )));
    }
    let (reply, answer) = oneshot::channel();
    let apply = Apply { name: name.clone(), text, reply };
    let shutting_down = || ApiError::unavailable("busbar is shutting down; the pipeline was not changed".into());
    api.applies.send(apply).await.map_err(|_| shutting_down())?;
    let changed = match answer.await.map_err(|_| shutting_down())? {
        Applied::Updated => true,
        Applied::Unchanged => false,
        Applied::NotFound => return Err(ApiError::not_found(format!("pipeline {name:?} stopped before the new version could be applied"))),
        Applied::Invalid(problems) => {
            let message = format!(
                "the new version of {name} was rejected; the running version is unchanged:\n{}",
                problems.join("\n")
            );
            let body = json!({ "code": "invalid_pipeline", "message": message, "problems": problems });
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
        Applied::Failed(reason) => {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "not_applied",
                message: format!("the new version of {name} could not be started; the running version is kept: {reason}"),
            });
        }
    };
    let registered = api.registered(&name)?;
    let spec = serde_json::to_value(&registered.pipeline.spec).unwrap_or(Value::Null);
    Ok(Json(json!({ "name": name, "file": registered.pipeline.file, "changed": changed, "spec": spec })).into_response())
}

/// Checks a pipeline document as `busbar validate` does; answers `200` with `valid` and the problems.
async fn validate_pipeline(State(api): State<Arc<Api>>, body: axum::body::Bytes) -> Json<Value> {
    let text = String::from_utf8_lossy(&body);
    let sources = [SourceFile { name: "request", text: &text }];
    let checked = pipeline::check(&sources, &crate::validate::context(PatternOptions { strict_eventbridge: api.strict }));
    let problems: Vec<String> = checked.diagnostics.iter().map(ToString::to_string).collect();
    Json(json!({ "valid": problems.is_empty(), "problems": problems }))
}

fn topic_view(api: &Api, name: &str) -> Result<Value, ApiError> {
    let store = api.bus.store();
    let info = store.topic_info(name).map_err(|_| ApiError::not_found(format!("no topic named {name:?}")))?;
    let (_, overrides) = store.topic_config(name).map_err(|e| ApiError::not_found(e.to_string()))?;
    let partitions: Vec<Value> = (0..info.partitions)
        .map(|p| match store.offsets(name, p) {
            Ok(o) => json!({ "partition": p, "log_start_offset": o.log_start, "high_watermark": o.high_watermark,
                             "records": o.high_watermark - o.log_start }),
            Err(e) => json!({ "partition": p, "error": e.to_string() }),
        })
        .collect();
    Ok(json!({ "name": name, "id": info.id.to_string(), "partitions": partitions, "configs": overrides }))
}

async fn list_topics(State(api): State<Arc<Api>>) -> Json<Value> {
    let mut topics = api.bus.store().topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Json(Value::Array(topics.iter().filter_map(|t| topic_view(&api, &t.name).ok()).collect()))
}

async fn get_topic(State(api): State<Arc<Api>>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    topic_view(&api, &name).map(Json)
}

async fn list_groups(State(api): State<Arc<Api>>) -> Json<Value> {
    let groups = api.bus.groups().list_groups(&[], &[]);
    Json(Value::Array(
        groups
            .iter()
            .map(|g| json!({ "group": g.group_id, "state": g.state, "type": g.group_type, "protocol_type": g.protocol_type }))
            .collect(),
    ))
}

/// A group's committed offsets with the lag of each partition (high watermark minus committed offset).
async fn get_group(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let groups = api.bus.groups();
    let listing = groups.list_groups(&[], &[]);
    let Some(group) = listing.iter().find(|g| g.group_id == id) else {
        return Err(ApiError::not_found(format!("no consumer group named {id:?}")));
    };
    let offsets = groups
        .fetch_offsets(&id, None, None)
        .map_err(|code| ApiError::bad_request(format!("cannot read the offsets of {id:?} (Kafka error {code})")))?;
    let mut total = 0i64;
    let partitions: Vec<Value> = offsets
        .iter()
        .map(|o| {
            let end = api.bus.store().offsets(&o.topic, o.partition).map(|x| x.high_watermark).ok();
            let lag = end.map(|end| (end - o.offset.max(0)).max(0));
            total += lag.unwrap_or(0);
            json!({ "topic": o.topic, "partition": o.partition, "committed": o.offset, "high_watermark": end, "lag": lag })
        })
        .collect();
    Ok(Json(json!({ "group": id, "state": group.state, "type": group.group_type, "lag": total, "partitions": partitions })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTest {
    #[serde(default)]
    pattern: Option<Value>,
    #[serde(default)]
    pipeline: Option<String>,
    event: Value,
}

/// `{pattern, event}`: does the pattern match. `{pipeline, event}`: every rule of that running pipeline, whether
/// it matches, and for a match what each target would be given (its input transformer, input path or constant
/// applied), computed by the same code the router runs.
async fn test_rule(State(api): State<Arc<Api>>, body: Result<Json<RuleTest>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    match (body.pattern, body.pipeline) {
        (Some(pattern), None) => {
            let options = PatternOptions { strict_eventbridge: api.strict };
            let pattern =
                Pattern::parse(&pattern, &options).map_err(|e| ApiError::bad_request(format!("invalid pattern: {e}")))?;
            Ok(Json(json!({ "match": pattern.matches(&body.event) })))
        }
        (None, Some(name)) => {
            let registered = api.registered(&name)?;
            let pipeline = &registered.pipeline;
            let rules: Vec<Value> = pipeline
                .rules
                .iter()
                .map(|rule| {
                    let matched = rule.enabled && rule.pattern.matches(&body.event);
                    let targets: Vec<Value> = rule
                        .targets
                        .iter()
                        .map(|target| {
                            let mut view = json!({ "target": target.name, "connector": connector_text(&target.connector) });
                            if matched {
                                let prepare = super::build::prepare(&target.input, &pipeline.name, &rule.name);
                                let event = Envelope::from_value(body.event.clone());
                                match prepare(&event) {
                                    Ok(bytes) => {
                                        let bytes = bytes.unwrap_or_else(|| event.json());
                                        view["input"] = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                                        view["json"] = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                                    }
                                    Err(error) => view["error"] = Value::String(error),
                                }
                            }
                            view
                        })
                        .collect();
                    json!({ "rule": rule.name, "enabled": rule.enabled, "match": matched, "targets": targets })
                })
                .collect();
            let any = rules.iter().any(|r| r["match"] == true);
            Ok(Json(json!({ "pipeline": name, "match": any, "rules": rules })))
        }
        _ => Err(ApiError::bad_request(
            "send `event` with either `pattern` (test one pattern) or `pipeline` (test every rule of a running \
             pipeline)"
                .into(),
        )),
    }
}

fn connector_text(connector: &pipeline::ConnectorRef) -> String {
    match connector {
        pipeline::ConnectorRef::Builtin(name) => format!("builtin:{name}"),
        pipeline::ConnectorRef::Wasm(path) => path.display().to_string(),
    }
}

/// The counters `/metrics` exposes, as one JSON document for the console: it polls this and draws rates and
/// latencies from the differences between two polls.
async fn stats(State(api): State<Arc<Api>>) -> Json<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let time_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut topics = api.bus.store().topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let topics: Vec<Value> = topics.iter().filter_map(|t| topic_view(&api, &t.name).ok()).collect();
    let mut groups = Vec::new();
    for group in store_groups(&api) {
        let Ok(offsets) = api.bus.groups().fetch_offsets(&group, None, None) else { continue };
        let lag: i64 = offsets
            .iter()
            .filter_map(|o| api.bus.store().offsets(&o.topic, o.partition).ok().map(|end| (end.high_watermark - o.offset.max(0)).max(0)))
            .sum();
        groups.push(json!({ "group": group, "lag": lag }));
    }
    let registered: Vec<Registered> = api.pipelines.read().expect("api lock").values().cloned().collect();
    let pipelines: Vec<Value> = registered
        .iter()
        .map(|r| {
            let stats = r.router.stats();
            let per_rule = stats.rule_matches.lock().expect("stats lock").clone();
            let routes = r.router.routes();
            let rules: Vec<Value> = r
                .pipeline
                .rules
                .iter()
                .map(|rule| {
                    let lanes: Vec<_> = routes.rules.iter().filter(|x| x.name == rule.name).flat_map(|x| x.lanes.iter()).collect();
                    let targets: Vec<Value> = rule
                        .targets
                        .iter()
                        .map(|target| {
                            let mut view = json!({ "name": target.name, "connector": connector_text(&target.connector),
                                                   "dead_letter_topic": target.dead_letter });
                            if let Some(lane) = lanes.iter().find(|lane| lane.config().target == target.name) {
                                let s = lane.stats();
                                let mut buckets: Vec<Value> = LATENCY_BUCKETS_MS
                                    .iter()
                                    .enumerate()
                                    .map(|(i, bound)| json!([bound, s.latency_buckets[i].load(Relaxed)]))
                                    .collect();
                                buckets.push(json!([null, s.latency_buckets[LATENCY_BUCKETS_MS.len()].load(Relaxed)]));
                                for (key, value) in [
                                    ("delivered", &s.delivered),
                                    ("failed_attempts", &s.failed_attempts),
                                    ("retries", &s.retries),
                                    ("dead_lettered", &s.dead_lettered),
                                    ("parked", &s.parked),
                                    ("batches", &s.batches),
                                ] {
                                    view[key] = json!(value.load(Relaxed));
                                }
                                view["latency"] =
                                    json!({ "sum_ms": s.latency_us_sum.load(Relaxed) as f64 / 1000.0, "buckets": buckets });
                            }
                            view
                        })
                        .collect();
                    json!({ "name": rule.name, "enabled": rule.enabled, "matches": per_rule.get(&rule.name).copied().unwrap_or(0),
                            "targets": targets })
                })
                .collect();
            json!({
                "name": r.pipeline.name,
                "topic": r.pipeline.bus.topic,
                "sources": r.pipeline.sources.iter().map(|s| json!({ "name": s.name, "connector": connector_text(&s.connector),
                                                                      "path": s.webhook_path })).collect::<Vec<_>>(),
                "records_read": stats.records_read.load(Relaxed),
                "records_matched": stats.records_matched.load(Relaxed),
                "rules": rules,
            })
        })
        .collect();
    Json(json!({ "time_ms": time_ms, "topics": topics, "groups": groups, "pipelines": pipelines }))
}

/// Prometheus text exposition, gathered at scrape time from the counters the parts keep anyway.
async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let mut out = String::with_capacity(8192);
    let store = api.bus.store();
    let mut topics = store.topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut high = String::new();
    let mut start = String::new();
    for topic in &topics {
        for p in 0..topic.partitions {
            if let Ok(o) = store.offsets(&topic.name, p) {
                let labels = [("topic", topic.name.as_str()), ("partition", &p.to_string())];
                sample(&mut high, "busbar_topic_partition_high_watermark", &labels, o.high_watermark as f64);
                sample(&mut start, "busbar_topic_partition_log_start_offset", &labels, o.log_start as f64);
            }
        }
    }
    metric_header(&mut out, "busbar_topic_partition_high_watermark", "gauge", "Next offset to be written, per partition.");
    out.push_str(&high);
    metric_header(&mut out, "busbar_topic_partition_log_start_offset", "gauge", "First offset still stored, per partition.");
    out.push_str(&start);
    type Io = fn(&busbar_broker::log::PartitionIo) -> &std::sync::atomic::AtomicU64;
    let io_metrics: [(&str, &str, Io); 4] = [
        ("busbar_topic_partition_bytes_in_total", "Bytes appended by producers (sources, Kafka clients), per partition.", |io| &io.bytes_in),
        ("busbar_topic_partition_records_in_total", "Records appended by producers, per partition.", |io| &io.records_in),
        ("busbar_topic_partition_bytes_out_total", "Bytes read by fetches (Kafka consumers and busbar's routers), per partition.", |io| &io.bytes_out),
        ("busbar_topic_partition_records_out_total", "Records read by fetches, per partition.", |io| &io.records_out),
    ];
    let partition_io: Vec<(&str, String, Arc<busbar_broker::log::PartitionIo>)> = topics
        .iter()
        .flat_map(|topic| (0..topic.partitions).map(move |p| (topic.name.as_str(), p)))
        .filter_map(|(topic, p)| store.io(topic, p).ok().map(|io| (topic, p.to_string(), io)))
        .collect();
    for (name, help, read) in io_metrics {
        metric_header(&mut out, name, "counter", help);
        for (topic, partition, io) in &partition_io {
            let value = read(io).load(std::sync::atomic::Ordering::Relaxed);
            sample(&mut out, name, &[("topic", topic), ("partition", partition)], value as f64);
        }
    }
    metric_header(&mut out, "busbar_consumer_group_lag", "gauge", "High watermark minus committed offset, per group and partition.");
    for group in store_groups(&api) {
        if let Ok(offsets) = api.bus.groups().fetch_offsets(&group, None, None) {
            for o in offsets {
                if let Ok(end) = store.offsets(&o.topic, o.partition) {
                    let lag = (end.high_watermark - o.offset.max(0)).max(0);
                    sample(&mut out, "busbar_consumer_group_lag", &[("group", &group), ("topic", &o.topic), ("partition", &o.partition.to_string())], lag as f64);
                }
            }
        }
    }
    let pipelines: Vec<Registered> = api.pipelines.read().expect("api lock").values().cloned().collect();
    let counters: [(&str, &str); 2] = [
        ("busbar_router_records_read_total", "Bus records read by a pipeline's router."),
        ("busbar_router_records_matched_total", "Bus records that matched at least one rule."),
    ];
    for (i, (name, help)) in counters.iter().enumerate() {
        metric_header(&mut out, name, "counter", help);
        for r in &pipelines {
            let stats = r.router.stats();
            let value = if i == 0 { &stats.records_read } else { &stats.records_matched };
            sample(&mut out, name, &[("pipeline", &r.pipeline.name)], value.load(std::sync::atomic::Ordering::Relaxed) as f64);
        }
    }
    metric_header(&mut out, "busbar_rule_matches_total", "counter", "Records matched, per rule.");
    for r in &pipelines {
        let per_rule = r.router.stats().rule_matches.lock().expect("stats lock").clone();
        for rule in &r.pipeline.rules {
            let n = per_rule.get(&rule.name).copied().unwrap_or(0);
            sample(&mut out, "busbar_rule_matches_total", &[("pipeline", &r.pipeline.name), ("rule", &rule.name)], n as f64);
        }
    }
    type Read = fn(&busbar_runtime::router::LaneStats) -> u64;
    let lane_metrics: [(&str, &str, &str, Read); 6] = [
        ("busbar_target_deliveries_total", "counter", "Events delivered to the target.", |s| s.delivered.load(std::sync::atomic::Ordering::Relaxed)),
        ("busbar_target_failures_total", "counter", "Failed delivery attempts.", |s| s.failed_attempts.load(std::sync::atomic::Ordering::Relaxed)),
        ("busbar_target_retries_total", "counter", "Delivery retries.", |s| s.retries.load(std::sync::atomic::Ordering::Relaxed)),
        ("busbar_target_dead_letters_total", "counter", "Events sent to the dead-letter topic.", |s| s.dead_lettered.load(std::sync::atomic::Ordering::Relaxed)),
        ("busbar_target_parked_total", "counter", "Events parked in the retry topic while the target was behind.", |s| s.parked.load(std::sync::atomic::Ordering::Relaxed)),
        ("busbar_target_batches_total", "counter", "Batches handed to the target.", |s| s.batches.load(std::sync::atomic::Ordering::Relaxed)),
    ];
    for (name, kind, help, read) in lane_metrics {
        metric_header(&mut out, name, kind, help);
        for r in &pipelines {
            let routes = r.router.routes();
            for rule in &routes.rules {
                for lane in &rule.lanes {
                    let stats = lane.stats();
                    let value = read(&stats) as f64;
                    let config = lane.config();
                    sample(&mut out, name, &[("pipeline", &r.pipeline.name), ("rule", &config.rule), ("target", &config.target)], value);
                }
            }
        }
    }
    let name = "busbar_target_delivery_seconds";
    metric_header(&mut out, name, "histogram", "Delivery latency of delivered events, first attempt to outcome.");
    for r in &pipelines {
        for rule in &r.router.routes().rules {
            for lane in &rule.lanes {
                let stats = lane.stats();
                let config = lane.config();
                let base = [("pipeline", r.pipeline.name.as_str()), ("rule", config.rule.as_str()), ("target", config.target.as_str())];
                let mut cumulative = 0u64;
                for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
                    cumulative += stats.latency_buckets[i].load(std::sync::atomic::Ordering::Relaxed);
                    let le = (bound / 1000.0).to_string();
                    let mut labels = base.to_vec();
                    labels.push(("le", &le));
                    sample(&mut out, &format!("{name}_bucket"), &labels, cumulative as f64);
                }
                let count = stats.delivered.load(std::sync::atomic::Ordering::Relaxed);
                let mut labels = base.to_vec();
                labels.push(("le", "+Inf"));
                sample(&mut out, &format!("{name}_bucket"), &labels, count as f64);
                let sum = stats.latency_us_sum.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
                sample(&mut out, &format!("{name}_sum"), &base, sum);
                sample(&mut out, &format!("{name}_count"), &base, count as f64);
            }
        }
    }
    connector_metrics(&api, &mut out);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// Per connector instance: its state, restarts and the duration of its calls (write, poll, handle).
fn connector_metrics(api: &Api, out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    let found = connectors(api);
    let instances = || found.iter().flat_map(|f| f.tasks.iter().map(move |t| (f, t)));
    metric_header(out, "busbar_connector_state", "gauge", "1 for the state each connector instance is in: running, paused, stopped, failed (restarting after a backoff) or closed.");
    for (found, task) in instances() {
        let state = match (task.run_state(), task.stats.health()) {
            (RunState::Stopped, _) => "stopped",
            (_, busbar_runtime::host::Health::Closed) => "closed",
            (_, busbar_runtime::host::Health::Failed) => "failed",
            (RunState::Paused, _) => "paused",
            (RunState::Running, _) => "running",
        };
        for s in ["running", "paused", "stopped", "failed", "closed"] {
            let labels = [("pipeline", found.pipeline.name.as_str()), ("connector", &found.name), ("instance", &task.name), ("state", s)];
            sample(out, "busbar_connector_state", &labels, f64::from(u8::from(s == state)));
        }
    }
    metric_header(out, "busbar_connector_restarts_total", "counter", "Restarts of a connector instance after failures (or asked for through the API).");
    for (found, task) in instances() {
        let labels = [("pipeline", found.pipeline.name.as_str()), ("connector", &found.name), ("instance", &task.name)];
        sample(out, "busbar_connector_restarts_total", &labels, task.stats.restarts.load(Relaxed) as f64);
    }
    let name = "busbar_connector_call_seconds";
    metric_header(out, name, "histogram", "Duration of calls into a connector instance's WebAssembly (write, poll, handle).");
    for (found, task) in instances() {
        let base = [("pipeline", found.pipeline.name.as_str()), ("connector", found.name.as_str()), ("instance", &*task.name)];
        let mut cumulative = 0u64;
        for (i, bound) in CALL_BUCKETS_MS.iter().enumerate() {
            cumulative += task.stats.buckets[i].load(Relaxed);
            let le = (bound / 1000.0).to_string();
            let mut labels = base.to_vec();
            labels.push(("le", &le));
            sample(out, &format!("{name}_bucket"), &labels, cumulative as f64);
        }
        let count = task.stats.calls.load(Relaxed);
        let mut labels = base.to_vec();
        labels.push(("le", "+Inf"));
        sample(out, &format!("{name}_bucket"), &labels, count as f64);
        sample(out, &format!("{name}_sum"), &base, task.stats.call_us_sum.load(Relaxed) as f64 / 1e6);
        sample(out, &format!("{name}_count"), &base, count as f64);
    }
}

fn store_groups(api: &Api) -> Vec<String> {
    api.bus.groups().list_groups(&[], &[]).into_iter().map(|g| g.group_id).collect()
}

fn metric_header(out: &mut String, name: &str, kind: &str, help: &str) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    use std::fmt::Write as _;
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
}

/// The instances of one connector: a source, or a target with its `tasks`.
struct Found {
    name: String,
    pipeline: Arc<Pipeline>,
    kind: &'static str,
    /// The connector's section of the pipeline file, as written (secret references, not values).
    spec: Value,
    tasks: Vec<TaskHandle>,
}

fn base_name(task: &TaskHandle) -> &str {
    task.name.split_once('#').map_or(&task.name, |(base, _)| base)
}

/// Every connector of every running pipeline, in name order.
fn connectors(api: &Api) -> Vec<Found> {
    let pipelines: Vec<Registered> = api.pipelines.read().expect("api lock").values().cloned().collect();
    let mut out = Vec::new();
    for r in pipelines {
        let spec = serde_json::to_value(&r.pipeline.spec).unwrap_or(Value::Null);
        let mut names: Vec<String> = Vec::new();
        for task in &r.tasks {
            let name = base_name(task).to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for name in names {
            let tasks: Vec<TaskHandle> = r.tasks.iter().filter(|t| base_name(t) == name).cloned().collect();
            let parts: Vec<&str> = name.split('/').collect();
            let (kind, section) = match parts.as_slice() {
                [_, source] => ("source", spec["sources"][*source].clone()),
                [_, rule, target] => {
                    let section = spec["rules"]
                        .as_array()
                        .and_then(|rules| rules.iter().find(|x| x["name"] == *rule))
                        .and_then(|x| x["targets"].as_array())
                        .and_then(|targets| targets.iter().find(|t| t["name"] == *target))
                        .cloned()
                        .unwrap_or(Value::Null);
                    ("target", section)
                }
                _ => ("connector", Value::Null),
            };
            out.push(Found { name, pipeline: r.pipeline.clone(), kind, spec: section, tasks });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn run_state(found: &Found) -> RunState {
    found.tasks.first().map_or(RunState::Running, TaskHandle::run_state)
}

async fn connector_status(found: &Found) -> Value {
    let mut instances = Vec::new();
    for task in &found.tasks {
        let status = task.status().await;
        instances.push(match status {
            Some(status) => serde_json::to_value(&status).unwrap_or(Value::Null),
            None => json!({ "name": &*task.name, "state": "gone" }),
        });
    }
    let run = run_state(found);
    // Kafka Connect's vocabulary: RUNNING, PAUSED, STOPPED, FAILED (restarting after a failure).
    let state = match run {
        RunState::Paused => "PAUSED",
        RunState::Stopped => "STOPPED",
        RunState::Running if instances.iter().any(|i| i["state"] == "backing-off") => "FAILED",
        RunState::Running => "RUNNING",
    };
    json!({ "name": found.name, "pipeline": found.pipeline.name, "type": found.kind, "state": state, "tasks": instances })
}

async fn list_connectors(State(api): State<Arc<Api>>) -> Json<Value> {
    let mut out = Vec::new();
    for found in connectors(&api) {
        let status = connector_status(&found).await;
        out.push(json!({
            "name": found.name,
            "pipeline": found.pipeline.name,
            "type": found.kind,
            "connector": found.spec["connector"],
            "state": status["state"],
        }));
    }
    Json(Value::Array(out))
}

/// `/connectors/<name>[/<action>]`: the name holds slashes, so the action is recognised by its last segment.
async fn connector_route(
    State(api): State<Arc<Api>>,
    method: axum::http::Method,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let rest = rest.trim_matches('/');
    let all = connectors(&api);
    let find = |name: &str| all.iter().find(|f| f.name == name);
    let split = rest.rsplit_once('/').and_then(|(name, action)| Some((find(name)?, action)));
    let (found, action) = match find(rest) {
        Some(found) => (found, ""),
        None => match split {
            Some(found) => found,
            None => {
                let known: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
                return Err(ApiError::not_found(format!("no connector named {rest:?}; connectors: {}", known.join(", "))));
            }
        },
    };
    use axum::http::Method;
    let state = run_state(found);
    match (action, method) {
        ("", Method::GET) | ("config", Method::GET) => Ok(Json(json!({
            "name": found.name, "pipeline": found.pipeline.name, "type": found.kind, "config": found.spec,
        }))
        .into_response()),
        ("status", Method::GET) => Ok(Json(connector_status(found).await).into_response()),
        ("pause", Method::PUT) => {
            if state == RunState::Stopped {
                return Err(ApiError::conflict(format!("{} is stopped; resume it before pausing", found.name)));
            }
            found.tasks.iter().for_each(TaskHandle::pause);
            tracing::info!(connector = %found.name, "paused");
            Ok((StatusCode::ACCEPTED, Json(connector_status(found).await)).into_response())
        }
        ("stop", Method::PUT) => {
            for task in &found.tasks {
                task.stop().await;
            }
            tracing::info!(connector = %found.name, "stopped");
            Ok((StatusCode::ACCEPTED, Json(connector_status(found).await)).into_response())
        }
        ("resume", Method::PUT) => {
            for task in &found.tasks {
                task.resume().await.map_err(|e| ApiError::conflict(format!("{} cannot resume: {e}", found.name)))?;
            }
            tracing::info!(connector = %found.name, "resumed");
            Ok((StatusCode::ACCEPTED, Json(connector_status(found).await)).into_response())
        }
        ("restart", Method::POST) => {
            if state != RunState::Running {
                return Err(ApiError::conflict(format!("{} is {:?}; resume it instead of restarting", found.name, state).to_lowercase()));
            }
            for task in &found.tasks {
                task.restart().await.map_err(|e| ApiError::conflict(format!("{} did not restart: {e}", found.name)))?;
            }
            tracing::info!(connector = %found.name, "restarted");
            Ok((StatusCode::ACCEPTED, Json(connector_status(found).await)).into_response())
        }
        ("" | "config" | "status", _) | ("pause" | "stop" | "resume", _) | ("restart", _) => Err(ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: format!(
                "{}: use GET for the connector, /config and /status, PUT for /pause, /resume and /stop, POST for /restart",
                found.name
            ),
        }),
        (other, _) => Err(ApiError::not_found(format!(
            "{}: no action {other:?}; actions: status, config, pause, resume, stop, restart",
            found.name
        ))),
    }
}

async fn list_plugins(State(api): State<Arc<Api>>) -> Result<Json<Value>, ApiError> {
    let builtins = api.plugins().await?;
    let mut out: Vec<Value> = builtins
        .iter()
        .map(|c| {
            let d = c.description();
            json!({ "name": format!("builtin:{}", d.name), "type": format!("{:?}", d.kind).to_lowercase(),
                    "version": d.version, "summary": d.summary, "config_schema": c.config_schema() })
        })
        .collect();
    out.push(json!({ "name": "builtin:topic", "type": "sink", "version": env!("CARGO_PKG_VERSION"),
                     "summary": "appends the (transformed) event to another bus topic; runs natively",
                     "config_schema": { "type": "object", "required": ["topic"], "properties": { "topic": { "type": "string" } } } }));
    Ok(Json(Value::Array(out)))
}

async fn validate_plugin_config(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(config) = body?;
    let short = name.strip_prefix("builtin:").unwrap_or(&name);
    let builtins = api.plugins().await?;
    let Some(connector) = builtins.iter().find(|c| c.description().name == short) else {
        let known: Vec<String> = builtins.iter().map(|c| format!("builtin:{}", c.description().name)).collect();
        return Err(ApiError::not_found(format!("no connector plugin named {name:?}; plugins: {}", known.join(", "))));
    };
    Ok(Json(match connector.validate_config(&config) {
        Ok(()) => json!({ "name": format!("builtin:{short}"), "error_count": 0, "errors": [] }),
        Err(busbar_runtime::Error::ConfigRejected { message, .. }) => {
            let errors: Vec<&str> = message.split("; ").collect();
            json!({ "name": format!("builtin:{short}"), "error_count": errors.len(), "errors": errors })
        }
        Err(other) => json!({ "name": format!("builtin:{short}"), "error_count": 1, "errors": [other.to_string()] }),
    }))
}

#[derive(Deserialize)]
struct Page {
    offset: Option<i64>,
    limit: Option<usize>,
}

fn header_text(record: &busbar_runtime::bus::Record, name: &str) -> Option<String> {
    record.header(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Reads records of a one-partition topic from `offset`, at most `limit`.
async fn read_topic(api: &Api, topic: &str, offset: i64, limit: usize) -> Result<Vec<busbar_runtime::bus::Fetched>, ApiError> {
    let bus = &api.bus;
    let (start, end) = bus.offsets(topic, 0).await.map_err(|_| ApiError::not_found(format!("no topic named {topic:?}")))?;
    let mut position = offset.max(start);
    let mut out = Vec::new();
    while position < end && out.len() < limit {
        let fetched = bus
            .fetch(topic, 0, position, 1 << 20, std::time::Duration::ZERO)
            .await
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if fetched.is_empty() {
            break;
        }
        for record in fetched {
            if record.offset >= position && out.len() < limit {
                position = record.offset + 1;
                out.push(record);
            }
        }
    }
    Ok(out)
}

fn dead_letter_topic(api: &Api, topic: &str) -> Result<(), ApiError> {
    if !topic.ends_with(".dlq") {
        return Err(ApiError::bad_request(format!("{topic:?} is not a dead-letter topic (their names end in .dlq)")));
    }
    api.bus.store().topic_info(topic).map(|_| ()).map_err(|_| ApiError::not_found(format!("no topic named {topic:?}")))
}

async fn browse_dlq(
    State(api): State<Arc<Api>>,
    Path(topic): Path<String>,
    axum::extract::Query(page): axum::extract::Query<Page>,
) -> Result<Json<Value>, ApiError> {
    dead_letter_topic(&api, &topic)?;
    let records = read_topic(&api, &topic, page.offset.unwrap_or(0), page.limit.unwrap_or(100).min(1000)).await?;
    let (start, end) = api.bus.offsets(&topic, 0).await.map_err(|e| ApiError::bad_request(e.to_string()))?;
    let rows: Vec<Value> = records
        .iter()
        .map(|f| {
            let value = f.record.value.as_deref().unwrap_or_default();
            let event = serde_json::from_slice::<Value>(value).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(value).into_owned()));
            let headers: BTreeMap<String, String> = f
                .record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_deref().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()))
                .collect();
            json!({ "offset": f.offset, "timestamp_ms": f.record.timestamp_ms, "event": event, "headers": headers })
        })
        .collect();
    Ok(Json(json!({ "topic": topic, "log_start_offset": start, "high_watermark": end, "records": rows })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Redrive {
    offset: Option<i64>,
}

/// Sends dead-lettered events back to the lane of the target they failed at (named by their headers), as new
/// deliveries with a fresh retry budget. The DLQ itself is not changed: it is an audit log.
async fn redrive_dlq(
    State(api): State<Arc<Api>>,
    Path(topic): Path<String>,
    body: Option<Json<Redrive>>,
) -> Result<Json<Value>, ApiError> {
    dead_letter_topic(&api, &topic)?;
    let request = body.map(|Json(b)| b).unwrap_or_default();
    let records = match request.offset {
        Some(offset) => {
            let one = read_topic(&api, &topic, offset, 1).await?;
            if one.first().map(|f| f.offset) != Some(offset) {
                return Err(ApiError::not_found(format!("{topic} has no record at offset {offset}")));
            }
            one
        }
        None => read_topic(&api, &topic, 0, usize::MAX).await?,
    };
    let mut sent = 0u64;
    let mut skipped = Vec::new();
    for f in &records {
        let (Some(pipeline), Some(rule), Some(target)) = (
            header_text(&f.record, "busbar.pipeline"),
            header_text(&f.record, "busbar.rule"),
            header_text(&f.record, "busbar.target"),
        ) else {
            skipped.push(json!({ "offset": f.offset, "reason": "not a target's dead letter (no busbar.pipeline/rule/target headers)" }));
            continue;
        };
        let Ok(registered) = api.registered(&pipeline) else {
            skipped.push(json!({ "offset": f.offset, "reason": format!("pipeline {pipeline} is not running") }));
            continue;
        };
        let routes = registered.router.routes();
        let lane = routes
            .rules
            .iter()
            .filter(|r| r.name == rule)
            .flat_map(|r| r.lanes.iter())
            .find(|l| l.config().target == target);
        let Some(lane) = lane else {
            skipped.push(json!({ "offset": f.offset, "reason": format!("{pipeline}/{rule}/{target} no longer exists") }));
            continue;
        };
        let Some(event) = f.record.value.clone().and_then(Envelope::from_json) else {
            skipped.push(json!({ "offset": f.offset, "reason": "the record is not a JSON event" }));
            continue;
        };
        lane.offer(Work { origin: None, key: f.record.key.clone(), event: Arc::new(event) }).await;
        sent += 1;
    }
    tracing::info!(%topic, sent, skipped = skipped.len(), "dead letters re-driven");
    Ok(Json(json!({ "topic": topic, "redriven": sent, "skipped": skipped })))
}

/// The API described as OpenAPI 3.1 (kept next to the routes; a test checks the two agree).
async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("openapi.json")).into_response()
}
