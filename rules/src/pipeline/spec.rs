//! The pipeline file as written: serde types whose doc comments become the JSON Schema's descriptions.
//!
//! These types describe shape and defaults only. What needs the whole file or the host to check (connector
//! names, patterns, grants, secrets, duplicate names) is checked by `check`, which locates each problem.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::duration::{Duration, Retention};

/// The pattern every name (pipeline, connection, source, rule, target) must match.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// One pipeline: a bus topic, the sources that publish events to it, and the rules that route its events to
/// targets. Each pipeline file holds exactly one pipeline; one process can run several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "busbar pipeline")]
pub struct PipelineSpec {
    /// The JSON Schema this file follows, for editors (for example the output of `busbar schema pipeline`).
    /// busbar ignores it.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The pipeline's name: unique among the pipelines of one process; letters, digits, `.`, `_` and `-`, at
    /// most 64 characters.
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,64}$"))]
    pub name: String,
    /// What the pipeline is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The bus: the topic that every source writes to and every rule reads from.
    #[serde(default)]
    pub bus: BusSpec,
    /// Named database connections that connectors may be granted (`grants.sql`). Connectors never see the URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": NAME_PATTERN }))]
    pub connections: BTreeMap<String, ConnectionSpec>,
    /// Source connectors by name: each turns something outside (a webhook, a table, an API) into events on the
    /// bus.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": NAME_PATTERN }))]
    pub sources: BTreeMap<String, SourceSpec>,
    /// Rules, each matching bus events with an event pattern and delivering the matches to its targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
}

/// The pipeline's bus topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusSpec {
    /// The topic's name; defaults to the pipeline's name. Kafka topic rules apply: letters, digits, `.`, `_` and
    /// `-`, at most 249 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,249}$"))]
    pub topic: Option<String>,
    /// Number of partitions: events with the same key go to the same partition and stay in order.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1))]
    pub partitions: u32,
    /// How long the bus keeps events, which is also how far back a replay can go.
    #[serde(default = "default_retention")]
    pub retention: Retention,
    /// Replicas of each partition on an external Kafka cluster; the embedded broker keeps one copy and ignores
    /// this. Defaults to the cluster's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replication_factor: Option<u16>,
}

impl Default for BusSpec {
    fn default() -> Self {
        Self {
            topic: None,
            partitions: default_partitions(),
            retention: default_retention(),
            replication_factor: None,
        }
    }
}

fn default_partitions() -> u32 {
    1
}

fn default_retention() -> Retention {
    Retention::For(Duration::from_secs(7 * 86_400))
}

/// A database connection that connectors can be granted by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// Connection URL: `postgres://…`, `mysql://…` (also for MariaDB) or `sqlite:…`. Write the credentials as
    /// `${env:NAME}` or `${file:PATH}`, never inline.
    pub url: String,
    /// Most connections open at once in this connection's pool.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1))]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    5
}

/// What a connector may reach; everything else is denied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts the connector may call over HTTP(S): `host`, `host:port` or `*.domain` (any subdomain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Names of `connections` the connector may query.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
    /// Whether the connector gets its own durable key-value state store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub state: bool,
    /// Environment variables the connector may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// A source connector: a WebAssembly component that produces events onto the bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The component: `builtin:<name>` for one shipped in busbar (`http-webhook`, `http-poll`, `sql-poll`…), or
    /// the path to a `.wasm` component, relative to this file.
    #[schemars(pattern(r"^builtin:[a-z0-9-]+$|\.wasm$"))]
    pub connector: String,
    /// The connector's own settings, passed to it when it opens. String values may contain `${env:NAME}` and
    /// `${file:PATH}` secret references (`$${` stands for a literal `${`). An `http-webhook` source takes its
    /// URL path from `path` (default `/hooks/<pipeline>/<source>`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub config: Map<String, Value>,
    /// What the connector may reach.
    #[serde(default)]
    pub grants: Grants,
}

/// A rule: an event pattern and the targets its matches go to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The rule's name, unique within the pipeline.
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,64}$"))]
    pub name: String,
    /// What the rule is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An EventBridge event pattern, matched against each event envelope on the bus.
    #[schemars(with = "Map<String, Value>")]
    pub pattern: Value,
    /// A disabled rule is checked but matches nothing.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where matching events go; at least one.
    #[schemars(length(min = 1))]
    pub targets: Vec<TargetSpec>,
}

fn default_true() -> bool {
    true
}

/// A target: a sink connector that receives a rule's matching events, shaped by at most one of `input`,
/// `input_path` and `input_transformer` (the whole event when none is set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The target's name, unique within its rule.
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,64}$"))]
    pub name: String,
    /// The component: `builtin:<name>` for one shipped in busbar (`http`, `sql`, `topic`, `log`…), or the path
    /// to a `.wasm` component, relative to this file.
    #[schemars(pattern(r"^builtin:[a-z0-9-]+$|\.wasm$"))]
    pub connector: String,
    /// The connector's own settings, passed to it when it opens. String values may contain `${env:NAME}` and
    /// `${file:PATH}` secret references (`$${` stands for a literal `${`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub config: Map<String, Value>,
    /// What the connector may reach.
    #[serde(default)]
    pub grants: Grants,
    /// Deliver this constant JSON value instead of the event (EventBridge `Input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Deliver only the part of the event this JSONPath selects, such as `$.detail` (EventBridge `InputPath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_path: Option<String>,
    /// Build what is delivered from parts of the event (EventBridge `InputTransformer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_transformer: Option<InputTransformerSpec>,
    /// How failed deliveries are retried before the event is dead-lettered.
    #[serde(default)]
    pub retry: RetrySpec,
    /// The dead-letter topic for events this target gives up on; defaults to
    /// `<bus topic>.<rule>.<target>.dlq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,249}$"))]
    pub dead_letter: Option<String>,
    /// How events are grouped into one call of the connector.
    #[serde(default)]
    pub batch: BatchSpec,
    /// Whether events with the same key are delivered in order.
    #[serde(default)]
    pub ordering: Ordering,
    /// How many instances of the connector deliver at once (Kafka Connect's `tasks.max`). Events with the same
    /// key always go to the same instance, so per-key order holds; with `ordering: none` a batch is spread evenly.
    #[serde(default = "default_tasks", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1, max = 64))]
    pub tasks: u32,
}

fn default_tasks() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// EventBridge's input transformer: variables taken from the event by JSONPath, then a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputTransformerSpec {
    /// Variable name -> JSONPath into the event, such as `{"id": "$.detail.id"}`.
    #[serde(default)]
    pub input_paths_map: BTreeMap<String, String>,
    /// The output, with `<variable>` placeholders: a JSON text, or a plain string.
    pub input_template: String,
}

/// Retry policy: exponential backoff with full jitter, until either limit is reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Retries after the first attempt; `0` dead-letters on the first failure.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Give up on an event this long after its first attempt.
    #[serde(default = "default_max_age")]
    pub max_age: Duration,
    /// The wait between attempts.
    #[serde(default)]
    pub backoff: BackoffSpec,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            max_age: default_max_age(),
            backoff: BackoffSpec::default(),
        }
    }
}

// EventBridge's defaults: 185 attempts within 24 hours.
fn default_max_attempts() -> u32 {
    185
}

fn default_max_age() -> Duration {
    Duration::from_secs(86_400)
}

/// Exponential backoff: `initial`, then multiplied by `multiplier` after each failure, capped at `max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    /// The wait before the first retry.
    #[serde(default = "default_initial_backoff")]
    pub initial: Duration,
    /// The longest wait between two attempts.
    #[serde(default = "default_max_backoff")]
    pub max: Duration,
    /// Factor applied to the wait after each failed retry; at least 1.
    #[serde(default = "default_multiplier")]
    #[schemars(range(min = 1.0))]
    pub multiplier: f64,
    /// Wait a random time between zero and the computed wait ("full jitter"), so that retries of many events
    /// do not arrive together.
    #[serde(default = "default_true")]
    pub jitter: bool,
}

impl Default for BackoffSpec {
    fn default() -> Self {
        Self {
            initial: default_initial_backoff(),
            max: default_max_backoff(),
            multiplier: default_multiplier(),
            jitter: true,
        }
    }
}

fn default_initial_backoff() -> Duration {
    Duration::from_secs(1)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(300)
}

fn default_multiplier() -> f64 {
    2.0
}

/// Batching: a batch is delivered when it holds `max_records` events or `max_bytes` of them, or its first event has
/// waited `max_wait`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// Most events in one batch; `1` delivers events one by one.
    #[serde(default = "default_max_records")]
    #[schemars(range(min = 1))]
    pub max_records: u32,
    /// How long a batch may wait for more events; `0s` delivers whatever is ready at once.
    #[serde(default = "default_max_wait")]
    pub max_wait: Duration,
    /// A batch takes no more events once its events add up to this many bytes of JSON (it always takes one, however
    /// large), so a batch of large events stays well inside a connector's memory.
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1))]
    pub max_bytes: u32,
}

impl Default for BatchSpec {
    fn default() -> Self {
        Self {
            max_records: default_max_records(),
            max_wait: default_max_wait(),
            max_bytes: default_max_bytes(),
        }
    }
}

/// As Kafka Connect's `max.poll.records`: under load, batches fill and each connector call carries more events;
/// at low rates `max_wait` (0s) sends whatever is ready, so this adds no latency.
fn default_max_records() -> u32 {
    500
}

/// 8 MiB: an eighth of a connector instance's default memory (64 MiB), which leaves room for the copies a
/// connector makes of its batch (the requests or rows it builds from it).
fn default_max_bytes() -> u32 {
    8 << 20
}

fn default_max_wait() -> Duration {
    Duration::from_millis(0)
}

/// Delivery order for one target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// Events with the same key are delivered in bus order; a failing event holds back later ones of its key.
    #[default]
    Key,
    /// No order: events are delivered concurrently, for throughput.
    None,
}
