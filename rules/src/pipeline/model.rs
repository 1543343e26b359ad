//! A checked pipeline, ready to run: names and defaults settled, secrets resolved (with their redacted form
//! kept), patterns parsed, connector references resolved. Built only by [`check`](super::check).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::duration::Retention;
use super::secret::Resolved;
use super::spec::{BatchSpec, Grants, Ordering, PipelineSpec, RetrySpec};
use crate::Pattern;

/// One pipeline file, checked.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The file's name as given to [`check`](super::check).
    pub file: String,
    /// The pipeline's name, unique in the process.
    pub name: String,
    /// The file as written, with defaults filled in and secret references unresolved: safe to display.
    pub spec: PipelineSpec,
    /// The bus topic.
    pub bus: Bus,
    /// Database connections by name.
    pub connections: BTreeMap<String, Connection>,
    /// Source connectors, in name order.
    pub sources: Vec<Source>,
    /// Rules, in file order.
    pub rules: Vec<Rule>,
}

impl Pipeline {
    /// Number of targets over all rules.
    pub fn target_count(&self) -> usize {
        self.rules.iter().map(|rule| rule.targets.len()).sum()
    }
}

/// The pipeline's bus topic, with defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Bus {
    /// Topic name (the pipeline's name unless set).
    pub topic: String,
    /// Number of partitions.
    pub partitions: u32,
    /// How long records are kept.
    pub retention: Retention,
    /// Replication factor on an external cluster; `None` for the cluster's default.
    pub replication_factor: Option<u16>,
}

/// A database connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// The connection's name.
    pub name: String,
    /// Its URL, secrets resolved.
    pub url: Resolved<String>,
    /// Pool size.
    pub max_connections: u32,
}

/// Which component a connector runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectorRef {
    /// A component shipped in busbar, by name (without `builtin:`).
    Builtin(String),
    /// A user's component file, resolved against the pipeline file's folder.
    Wasm(PathBuf),
}

/// A source connector.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The source's name, unique in its pipeline.
    pub name: String,
    /// Its component.
    pub connector: ConnectorRef,
    /// Its settings, secrets resolved.
    pub config: Resolved<Value>,
    /// What it may reach.
    pub grants: Grants,
    /// For `builtin:http-webhook`: the URL path it answers on, unique in the process.
    pub webhook_path: Option<String>,
}

/// A rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule's name, unique in its pipeline.
    pub name: String,
    /// Whether it matches at all.
    pub enabled: bool,
    /// The parsed event pattern.
    pub pattern: Pattern,
    /// Its targets, in file order.
    pub targets: Vec<Target>,
}

/// A target of a rule.
#[derive(Clone, Debug)]
pub struct Target {
    /// The target's name, unique in its rule.
    pub name: String,
    /// Its component.
    pub connector: ConnectorRef,
    /// Its settings, secrets resolved.
    pub config: Resolved<Value>,
    /// What it may reach.
    pub grants: Grants,
    /// What it is given for each matching event.
    pub input: Input,
    /// Retry policy.
    pub retry: RetrySpec,
    /// Dead-letter topic (the default filled in).
    pub dead_letter: String,
    /// Batching.
    pub batch: BatchSpec,
    /// Delivery order.
    pub ordering: Ordering,
    /// Connector instances delivering at once (1 to 64).
    pub tasks: u32,
}

/// What a target receives for each matching event.
#[derive(Clone, Debug)]
pub enum Input {
    /// The whole event envelope.
    Event,
    /// A constant JSON value (EventBridge `Input`).
    Constant(Value),
    /// The part of the event a JSONPath selects (EventBridge `InputPath`).
    Path(String),
    /// The output of an input transformer.
    Transformer(crate::InputTransformer),
}
