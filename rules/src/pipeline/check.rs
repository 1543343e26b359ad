//! Semantic checks of one pipeline file: what its shape cannot say (names, connectors, grants, secrets,
//! patterns, transformers, limits). Each problem is located by its JSON path; all of them are collected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::LoadContext;
use super::diagnostic::{Diagnostic, Location, Problem};
use super::model::{Bus, Connection, ConnectorRef, Input, Pipeline, Rule, Source, Target};
use super::path::JsonPath;
use super::secret::Lookups;
use super::span::{Position, SpanIndex};
use super::spec::{PipelineSpec, RuleSpec, TargetSpec};
use super::structure::RuleLayout;
use super::values::{
    MAX_TOPIC, check_config_connection, check_connection_url, check_connector, check_grants,
    check_name, check_topic, check_unique, invalid, resolve_config, resolve_string, webhook_path,
};
use crate::{InputTransformer, Pattern};

/// Locates problems of one file.
pub(crate) struct FileCheck<'a> {
    pub file: &'a str,
    pub spans: &'a SpanIndex,
    pub diagnostics: Vec<Diagnostic>,
    /// Webhook URL paths of this file's sources, with the source's name and where the path is set.
    pub webhooks: Vec<Webhook>,
}

/// A webhook URL path and where it comes from, for the check that paths are unique in the process.
pub(crate) struct Webhook {
    pub url_path: String,
    pub source: String,
    /// `config.path` if written, else the source's key (the path is then the default).
    pub path: JsonPath,
    pub explicit: bool,
}

impl FileCheck<'_> {
    pub fn location(&self, position: Position) -> Location {
        Location {
            file: self.file.to_owned(),
            position,
        }
    }

    /// Reports a problem with the value at `path`.
    pub fn at_value(&mut self, path: &JsonPath, problem: Problem) {
        let location = self.location(self.spans.value(path));
        self.diagnostics.push(Diagnostic {
            location,
            path: Some(path.clone()),
            problem,
        });
    }

    /// Reports a problem with the key of the value at `path` (a name, or an unknown field).
    pub fn at_key(&mut self, path: &JsonPath, problem: Problem) {
        let location = self.location(self.spans.key(path));
        self.diagnostics.push(Diagnostic {
            location,
            path: Some(path.clone()),
            problem,
        });
    }
}

/// Checks one parsed pipeline. Returns the pipeline only if this file had no problem at all.
pub(crate) fn check_pipeline(
    spec: &PipelineSpec,
    connections_incomplete: bool,
    layout: &[RuleLayout],
    ctx: &LoadContext<'_>,
    fc: &mut FileCheck<'_>,
) -> Option<Pipeline> {
    let root = JsonPath::root();
    let base_dir = Path::new(fc.file).parent().unwrap_or(Path::new(""));
    let lookups = Lookups {
        env: ctx.env,
        read_file: ctx.read_file,
        base_dir,
    };
    check_name(fc, "pipeline", &spec.name, &root.key("name"), false);

    let bus = check_bus(spec, fc);

    let mut connections = BTreeMap::new();
    for (name, connection) in &spec.connections {
        let path = root.key("connections").key(name.as_str());
        check_name(fc, "connection", name, &path, true);
        let before = fc.diagnostics.len();
        let url = resolve_string(fc, &connection.url, &path.key("url"), &lookups);
        // A URL whose secrets did not resolve has been reported already; its scheme cannot be judged.
        if fc.diagnostics.len() == before {
            check_connection_url(fc, &url, &path.key("url"));
        }
        if connection.max_connections == 0 {
            fc.at_value(
                &path.key("max_connections"),
                invalid("max_connections must be at least 1"),
            );
        }
        let connection = Connection {
            name: name.clone(),
            url,
            max_connections: connection.max_connections,
        };
        connections.insert(name.clone(), connection);
    }
    let declared = (!connections_incomplete).then_some(&spec.connections);

    let mut sources = Vec::new();
    for (name, source) in &spec.sources {
        let path = root.key("sources").key(name.as_str());
        check_name(fc, "source", name, &path, true);
        let connector =
            check_connector(fc, ctx, base_dir, &source.connector, &path.key("connector"));
        let declared_names = declared.map(|d| d.keys().map(String::as_str).collect::<Vec<_>>());
        check_grants(
            fc,
            &source.grants,
            &path.key("grants"),
            declared_names.as_deref(),
        );
        let config = resolve_config(fc, &source.config, &path.key("config"), &lookups);
        check_config_connection(
            fc,
            connector.as_ref(),
            &config,
            &source.grants,
            &path.key("config"),
        );
        let webhook_path = match &connector {
            Some(ConnectorRef::Builtin(builtin)) if builtin == "http-webhook" => {
                webhook_path(fc, &spec.name, name, &config, &path.key("config"))
            }
            _ => None,
        };
        if let Some(url_path) = &webhook_path {
            let explicit = config.expose().get("path").is_some();
            let at = if explicit {
                path.key("config").key("path")
            } else {
                path.clone()
            };
            fc.webhooks.push(Webhook {
                url_path: url_path.clone(),
                source: name.clone(),
                path: at,
                explicit,
            });
        }
        if let Some(connector) = connector {
            sources.push(Source {
                name: name.clone(),
                connector,
                config,
                grants: source.grants.clone(),
                webhook_path,
            });
        }
    }

    let mut rules = Vec::new();
    let mut rule_names: HashMap<&str, Position> = HashMap::new();
    for (rule, layout) in spec.rules.iter().zip(layout) {
        let path = root.key("rules").index(layout.index);
        let declared_names = declared.map(|d| d.keys().map(String::as_str).collect::<Vec<_>>());
        check_unique(fc, &mut rule_names, "rule", &rule.name, &path.key("name"));
        if let Some(rule) = check_rule(
            fc,
            ctx,
            &lookups,
            &bus.topic,
            (rule, layout),
            &path,
            declared_names.as_deref(),
        ) {
            rules.push(rule);
        }
    }

    if !fc.diagnostics.is_empty() {
        return None;
    }
    Some(Pipeline {
        file: fc.file.to_owned(),
        name: spec.name.clone(),
        spec: spec.clone(),
        bus,
        connections,
        sources,
        rules,
    })
}

fn check_bus(spec: &PipelineSpec, fc: &mut FileCheck<'_>) -> Bus {
    let path = JsonPath::root().key("bus");
    let topic = spec.bus.topic.clone().unwrap_or_else(|| spec.name.clone());
    if spec.bus.topic.is_some() {
        check_topic(fc, &topic, &path.key("topic"));
    }
    if spec.bus.partitions == 0 {
        fc.at_value(
            &path.key("partitions"),
            invalid("partitions must be at least 1"),
        );
    }
    if spec.bus.replication_factor == Some(0) {
        fc.at_value(
            &path.key("replication_factor"),
            invalid("replication_factor must be at least 1"),
        );
    }
    Bus {
        topic,
        partitions: spec.bus.partitions,
        retention: spec.bus.retention,
        replication_factor: spec.bus.replication_factor,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_rule(
    fc: &mut FileCheck<'_>,
    ctx: &LoadContext<'_>,
    lookups: &Lookups<'_>,
    bus_topic: &str,
    (rule, layout): (&RuleSpec, &RuleLayout),
    path: &JsonPath,
    declared: Option<&[&str]>,
) -> Option<Rule> {
    check_name(fc, "rule", &rule.name, &path.key("name"), false);
    let pattern = match Pattern::parse(&rule.pattern, &ctx.pattern_options) {
        Ok(pattern) => Some(pattern),
        Err(err) => {
            let inner = JsonPath::parse(err.path()).unwrap_or_default();
            fc.at_value(
                &path.key("pattern").join(&inner),
                Problem::Pattern {
                    message: err.message().to_owned(),
                },
            );
            None
        }
    };
    // Targets that failed to deserialize are reported already and missing here.
    if rule.targets.is_empty() && layout.complete {
        fc.at_value(
            &path.key("targets"),
            invalid("a rule needs at least one target"),
        );
    }
    let mut targets = Vec::new();
    let mut target_names: HashMap<&str, Position> = HashMap::new();
    for (target, index) in rule.targets.iter().zip(&layout.targets) {
        let target_path = path.key("targets").index(*index);
        check_unique(
            fc,
            &mut target_names,
            "target",
            &target.name,
            &target_path.key("name"),
        );
        let base_dir = lookups.base_dir;
        if let Some(target) = check_target(
            fc,
            ctx,
            lookups,
            base_dir,
            bus_topic,
            &rule.name,
            target,
            &target_path,
            declared,
        ) {
            targets.push(target);
        }
    }
    let pattern = pattern?;
    Some(Rule {
        name: rule.name.clone(),
        enabled: rule.enabled,
        pattern,
        targets,
    })
}

#[allow(clippy::too_many_arguments)]
fn check_target(
    fc: &mut FileCheck<'_>,
    ctx: &LoadContext<'_>,
    lookups: &Lookups<'_>,
    base_dir: &Path,
    bus_topic: &str,
    rule_name: &str,
    target: &TargetSpec,
    path: &JsonPath,
    declared: Option<&[&str]>,
) -> Option<Target> {
    check_name(fc, "target", &target.name, &path.key("name"), false);
    let connector = check_connector(fc, ctx, base_dir, &target.connector, &path.key("connector"));
    check_grants(fc, &target.grants, &path.key("grants"), declared);
    let config = resolve_config(fc, &target.config, &path.key("config"), lookups);
    check_config_connection(
        fc,
        connector.as_ref(),
        &config,
        &target.grants,
        &path.key("config"),
    );
    let input = check_input(fc, target, path);

    let retry = &target.retry;
    let backoff = path.key("retry").key("backoff");
    if !(retry.backoff.multiplier.is_finite() && retry.backoff.multiplier >= 1.0) {
        fc.at_value(
            &backoff.key("multiplier"),
            invalid("multiplier must be a number of at least 1"),
        );
    }
    if retry.backoff.initial > retry.backoff.max {
        let message = format!(
            "initial ({}) is longer than max ({}): expected initial <= max",
            retry.backoff.initial, retry.backoff.max
        );
        fc.at_value(&backoff.key("initial"), invalid(&message));
    }
    if retry.max_age.get().is_zero() {
        fc.at_value(
            &path.key("retry").key("max_age"),
            invalid("max_age must be longer than 0s"),
        );
    }
    if target.batch.max_records == 0 {
        fc.at_value(
            &path.key("batch").key("max_records"),
            invalid("max_records must be at least 1"),
        );
    }
    let tasks = target.tasks;
    if !(1..=64).contains(&tasks) {
        fc.at_value(
            &path.key("tasks"),
            invalid(&format!(
                "tasks is {tasks}: expected 1 to 64 connector instances"
            )),
        );
    }
    let builtin_topic = target.connector == "builtin:topic";
    if builtin_topic && tasks != 1 {
        fc.at_value(
            &path.key("tasks"),
            invalid("builtin:topic runs inside busbar and takes no `tasks`: remove it"),
        );
    }

    let dead_letter = match &target.dead_letter {
        Some(topic) => {
            check_topic(fc, topic, &path.key("dead_letter"));
            if topic == bus_topic {
                let message = format!(
                    "dead_letter `{topic}` is the bus topic itself: failed events would be routed again; use another topic"
                );
                fc.at_value(&path.key("dead_letter"), invalid(&message));
            }
            topic.clone()
        }
        None => {
            let topic = format!("{bus_topic}.{rule_name}.{}.dlq", target.name);
            if topic.len() > MAX_TOPIC {
                let message = format!(
                    "the default dead-letter topic `{topic}` is longer than {MAX_TOPIC} characters: set `dead_letter`"
                );
                fc.at_value(&path.key("name"), invalid(&message));
            }
            topic
        }
    };
    Some(Target {
        name: target.name.clone(),
        connector: connector?,
        config,
        grants: target.grants.clone(),
        input: input?,
        retry: target.retry.clone(),
        dead_letter,
        batch: target.batch.clone(),
        ordering: target.ordering,
        tasks,
    })
}

fn check_input(fc: &mut FileCheck<'_>, target: &TargetSpec, path: &JsonPath) -> Option<Input> {
    let set: Vec<&str> = [
        ("input", target.input.is_some()),
        ("input_path", target.input_path.is_some()),
        ("input_transformer", target.input_transformer.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if set.len() > 1 {
        let message = format!(
            "only one of `input`, `input_path` and `input_transformer` may be set; found {}",
            set.join(" and ")
        );
        fc.at_key(&path.key(set[1]), invalid(&message));
        return None;
    }
    if let Some(value) = &target.input {
        return Some(Input::Constant(value.clone()));
    }
    if let Some(input_path) = &target.input_path {
        if !input_path.starts_with('$') {
            let message = format!(
                "input_path `{input_path}` is not a JSONPath: expected one starting with `$`, such as `$.detail`"
            );
            fc.at_value(
                &path.key("input_path"),
                Problem::InputTransformer { message },
            );
            return None;
        }
        return Some(Input::Path(input_path.clone()));
    }
    let Some(spec) = &target.input_transformer else {
        return Some(Input::Event);
    };
    // The transformer takes the map as JSON values (it checks that each is a string itself).
    let paths_map: BTreeMap<String, Value> = spec
        .input_paths_map
        .iter()
        .map(|(name, path)| (name.clone(), Value::String(path.clone())))
        .collect();
    match InputTransformer::new(&paths_map, &spec.input_template) {
        Ok(transformer) => Some(Input::Transformer(transformer)),
        Err(err) => {
            let (field, message) = match err {
                crate::TransformError::PathsMap { message } => ("input_paths_map", message),
                crate::TransformError::Template { message } => ("input_template", message),
                other => ("input_template", other.to_string()),
            };
            fc.at_value(
                &path.key("input_transformer").key(field),
                Problem::InputTransformer { message },
            );
            None
        }
    }
}
