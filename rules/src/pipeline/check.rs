//! Semantic checks of one pipeline file: what its shape cannot say (names, connectors, grants, secrets,
//! patterns, transformers, limits). Each problem is located by its JSON path; all of them are collected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::LoadContext;
use super::diagnostic::{Diagnostic, Location, Problem};
use super::model::{Bus, Connection, ConnectorRef, Input, Pipeline, Rule, Source, Target};
use super::path::JsonPath;
use super::secret::{self, Lookups, Resolved};
use super::span::{Position, SpanIndex};
use super::spec::{Grants, PipelineSpec, RuleSpec, TargetSpec};
use crate::{InputTransformer, Pattern};

const MAX_NAME: usize = 64;
const MAX_TOPIC: usize = 249;
const SQL_SCHEMES: [&str; 5] = [
    "postgres://",
    "postgresql://",
    "mysql://",
    "mariadb://",
    "sqlite:",
];
/// Built-in connectors whose `config.connection` names a granted SQL connection.
const SQL_BUILTINS: [&str; 2] = ["sql-poll", "sql"];

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
    for (index, rule) in spec.rules.iter().enumerate() {
        let path = root.key("rules").index(index);
        let declared_names = declared.map(|d| d.keys().map(String::as_str).collect::<Vec<_>>());
        check_unique(fc, &mut rule_names, "rule", &rule.name, &path.key("name"));
        if let Some(rule) = check_rule(
            fc,
            ctx,
            &lookups,
            &bus.topic,
            rule,
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
    rule: &RuleSpec,
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
    if rule.targets.is_empty() {
        fc.at_value(
            &path.key("targets"),
            invalid("a rule needs at least one target"),
        );
    }
    let mut targets = Vec::new();
    let mut target_names: HashMap<&str, Position> = HashMap::new();
    for (index, target) in rule.targets.iter().enumerate() {
        let target_path = path.key("targets").index(index);
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

/// Records a name, reporting it if already taken in the same scope.
fn check_unique<'s>(
    fc: &mut FileCheck<'_>,
    seen: &mut HashMap<&'s str, Position>,
    kind: &'static str,
    name: &'s str,
    path: &JsonPath,
) {
    let position = fc.spans.value(path);
    if let Some(first) = seen.get(name) {
        let first = fc.location(*first);
        fc.at_value(
            path,
            Problem::DuplicateName {
                kind,
                name: name.to_owned(),
                first,
            },
        );
    } else {
        seen.insert(name, position);
    }
}

/// Checks a name; `at_key` for names that are object keys (connections, sources).
pub(crate) fn check_name(
    fc: &mut FileCheck<'_>,
    kind: &'static str,
    name: &str,
    path: &JsonPath,
    at_key: bool,
) {
    if is_name(name, MAX_NAME) {
        return;
    }
    let problem = Problem::InvalidName {
        kind,
        name: name.to_owned(),
        max: MAX_NAME,
    };
    if at_key {
        fc.at_key(path, problem)
    } else {
        fc.at_value(path, problem)
    }
}

fn check_topic(fc: &mut FileCheck<'_>, topic: &str, path: &JsonPath) {
    if !is_name(topic, MAX_TOPIC) || topic == "." || topic == ".." {
        fc.at_value(
            path,
            Problem::InvalidName {
                kind: "topic",
                name: topic.to_owned(),
                max: MAX_TOPIC,
            },
        );
    }
}

fn is_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_connector(
    fc: &mut FileCheck<'_>,
    ctx: &LoadContext<'_>,
    base_dir: &Path,
    written: &str,
    path: &JsonPath,
) -> Option<ConnectorRef> {
    if let Some(name) = written.strip_prefix("builtin:") {
        if ctx.builtin_connectors.contains(&name) {
            return Some(ConnectorRef::Builtin(name.to_owned()));
        }
    } else if written.ends_with(".wasm") {
        let file = base_dir.join(written);
        return match (ctx.check_connector_file)(&file) {
            Ok(()) => Some(ConnectorRef::Wasm(file)),
            Err(reason) => {
                fc.at_value(
                    path,
                    Problem::ConnectorFile {
                        path: file.display().to_string(),
                        reason,
                    },
                );
                None
            }
        };
    }
    let builtins = ctx
        .builtin_connectors
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    fc.at_value(
        path,
        Problem::UnknownConnector {
            connector: written.to_owned(),
            builtins,
        },
    );
    None
}

fn check_grants(
    fc: &mut FileCheck<'_>,
    grants: &Grants,
    path: &JsonPath,
    declared: Option<&[&str]>,
) {
    for (index, host) in grants.http.iter().enumerate() {
        if let Err(message) = check_host(host) {
            fc.at_value(&path.key("http").index(index), invalid(&message));
        }
    }
    if let Some(declared) = declared {
        for (index, name) in grants.sql.iter().enumerate() {
            if !declared.contains(&name.as_str()) {
                let declared = if declared.is_empty() {
                    "none (add it under `connections`)".to_owned()
                } else {
                    declared
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                fc.at_value(
                    &path.key("sql").index(index),
                    Problem::UndeclaredConnection {
                        name: name.clone(),
                        declared,
                    },
                );
            }
        }
    }
    for (index, name) in grants.env.iter().enumerate() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let message = format!(
                "`{name}` is not an environment variable name: expected letters, digits and `_`, not starting with a digit"
            );
            fc.at_value(&path.key("env").index(index), invalid(&message));
        }
    }
}

/// A granted HTTP host: `host`, `host:port`, `*.domain`, or an IP address (IPv6 in brackets when a port follows).
fn check_host(host: &str) -> Result<(), String> {
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "`{host}` is not a host: grant a host such as `api.example.com` or `api.example.com:8443`, without scheme or path"
        ));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!(
            "`{host}` has an invalid port `{port}`: expected a number from 0 to 65535"
        ));
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    let valid = !labels.is_empty()
        && labels.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a host name: expected something like `api.example.com`, `*.example.com` or `10.0.0.5:8080`"
        ))
    }
}

fn check_connection_url(fc: &mut FileCheck<'_>, url: &Resolved<String>, path: &JsonPath) {
    let resolved = url.expose();
    if SQL_SCHEMES
        .iter()
        .any(|scheme| resolved.starts_with(scheme))
    {
        return;
    }
    // Never print a resolved secret: show only what was written.
    let from = if url.has_secrets() {
        format!(" (`{}` resolves to a URL that does not)", url.redacted())
    } else {
        String::new()
    };
    let message = format!(
        "a connection URL must start with {}{from}",
        SQL_SCHEMES.map(|s| format!("`{s}`")).join(", ")
    );
    fc.at_value(path, invalid(&message));
}

/// For built-in SQL connectors, `config.connection` must be a granted connection.
fn check_config_connection(
    fc: &mut FileCheck<'_>,
    connector: Option<&ConnectorRef>,
    config: &Resolved<Value>,
    grants: &Grants,
    path: &JsonPath,
) {
    let Some(ConnectorRef::Builtin(name)) = connector else {
        return;
    };
    if !SQL_BUILTINS.contains(&name.as_str()) {
        return;
    }
    if let Some(Value::String(connection)) = config.expose().get("connection")
        && !grants.sql.contains(connection)
    {
        let problem = Problem::ConnectionNotGranted {
            name: connection.clone(),
        };
        fc.at_value(&path.key("connection"), problem);
    }
}

fn webhook_path(
    fc: &mut FileCheck<'_>,
    pipeline: &str,
    source: &str,
    config: &Resolved<Value>,
    path: &JsonPath,
) -> Option<String> {
    match config.expose().get("path") {
        None => Some(format!("/hooks/{pipeline}/{source}")),
        Some(Value::String(url_path))
            if url_path.starts_with("/hooks/") && url_path.len() > "/hooks/".len() =>
        {
            Some(url_path.trim_end_matches('/').to_owned())
        }
        Some(other) => {
            let message = format!(
                "webhook path {other} must be a string starting with `/hooks/`, such as `/hooks/github`"
            );
            fc.at_value(&path.key("path"), invalid(&message));
            None
        }
    }
}

fn resolve_config(
    fc: &mut FileCheck<'_>,
    config: &serde_json::Map<String, Value>,
    path: &JsonPath,
    lookups: &Lookups<'_>,
) -> Resolved<Value> {
    let mut problems = Vec::new();
    let resolved =
        secret::resolve_value(&Value::Object(config.clone()), path, lookups, &mut problems);
    for (path, problem) in problems {
        fc.at_value(&path, problem);
    }
    resolved
}

fn resolve_string(
    fc: &mut FileCheck<'_>,
    text: &str,
    path: &JsonPath,
    lookups: &Lookups<'_>,
) -> Resolved<String> {
    let mut problems = Vec::new();
    let resolved = secret::resolve_string(text, path, lookups, &mut problems);
    for (path, problem) in problems {
        fc.at_value(&path, problem);
    }
    resolved
}

fn invalid(message: &str) -> Problem {
    Problem::Invalid {
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_host;

    #[test]
    fn host_grants() {
        for ok in [
            "api.example.com",
            "api.example.com:8443",
            "*.example.com",
            "localhost",
            "127.0.0.1:8080",
            "[::1]:80",
            "::1",
        ] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://api.example.com",
            "api.example.com/x",
            "api..com",
            "*",
            "a.com:99999",
            "exa mple.com",
            "",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }
}
