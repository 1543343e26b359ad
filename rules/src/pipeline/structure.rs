//! From text to [`PipelineSpec`], reporting every shape error rather than only the first.
//!
//! serde stops at the first error, so a file that does not deserialize whole is deserialized again piece by
//! piece: the top level with its collections emptied, then each connection, source, rule (with its targets
//! emptied) and target on its own. Every piece reports its first error, and the pieces that are fine are kept,
//! so that the semantic checks can still look at them.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::diagnostic::Problem;
use super::path::JsonPath;
use super::spec::{PipelineSpec, RuleSpec};

/// The result of reading one file's structure.
pub(crate) struct Parsed {
    /// The spec assembled from every piece that deserialized.
    pub spec: Option<PipelineSpec>,
    /// Whether some connection failed to deserialize (so "undeclared connection" cannot be judged).
    pub connections_incomplete: bool,
    /// Where each rule of `spec` (and each of its targets) is in the file: rules or targets that failed to
    /// deserialize are missing from `spec`, so positions in `spec` and in the file can differ.
    pub rules: Vec<RuleLayout>,
}

/// The file position of one rule of a (possibly partial) spec.
#[derive(Clone, Debug)]
pub(crate) struct RuleLayout {
    /// Index of the rule in the file's `rules` array.
    pub index: usize,
    /// Index in the file's `targets` array of each target the spec kept.
    pub targets: Vec<usize>,
    /// Whether every target of the rule deserialized.
    pub complete: bool,
}

impl Parsed {
    fn whole(spec: PipelineSpec) -> Self {
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| RuleLayout {
                index,
                targets: (0..rule.targets.len()).collect(),
                complete: true,
            })
            .collect();
        Self {
            spec: Some(spec),
            connections_incomplete: false,
            rules,
        }
    }

    fn failed() -> Self {
        Self {
            spec: None,
            connections_incomplete: true,
            rules: Vec::new(),
        }
    }
}

/// Deserializes `value`, collecting `(path, problem, at_key)` for each piece that fails.
pub(crate) fn parse(value: &Value, problems: &mut Vec<(JsonPath, Problem, bool)>) -> Parsed {
    let root = JsonPath::root();
    // serde reads a struct from an array too (fields by position); a pipeline file must use objects.
    let mut value = value.clone();
    let mut arrays = Vec::new();
    objects_only(&mut value, &root, Shape::Pipeline, &mut arrays);
    let before = problems.len();
    problems.extend(arrays.iter().map(|path| {
        (
            path.clone(),
            Problem::Shape {
                message: ARRAY_REPORT.to_owned(),
            },
            false,
        )
    }));
    if arrays.iter().any(|path| path == &root) {
        return Parsed::failed();
    }
    if problems.len() == before {
        if let Some(spec) = piece::<PipelineSpec>(&value, &root, problems) {
            return Parsed::whole(spec);
        }
        problems.truncate(before);
    }
    let Value::Object(top) = &value else {
        piece::<PipelineSpec>(&value, &root, problems);
        return Parsed::failed();
    };

    let mut hollow = top.clone();
    for (key, empty) in [
        ("bus", Value::Object(Default::default())),
        ("connections", Value::Object(Default::default())),
        ("sources", Value::Object(Default::default())),
        ("rules", Value::Array(Vec::new())),
    ] {
        if let Some(slot) = hollow.get_mut(key)
            && same_kind(slot, &empty)
        {
            *slot = empty;
        }
    }
    let mut spec = piece::<PipelineSpec>(&Value::Object(hollow), &root, problems);
    if let Some(bus @ Value::Object(_)) = top.get("bus")
        && let (Some(bus), Some(spec)) = (piece(bus, &root.key("bus"), problems), spec.as_mut())
    {
        spec.bus = bus;
    }

    let mut connections_incomplete = false;
    if let Some(Value::Object(connections)) = top.get("connections") {
        let path = root.key("connections");
        for (name, value) in connections {
            match piece(value, &path.key(name.as_str()), problems) {
                Some(connection) => {
                    if let Some(spec) = spec.as_mut() {
                        spec.connections.insert(name.clone(), connection);
                    }
                }
                None => connections_incomplete = true,
            }
        }
    }
    if let Some(Value::Object(sources)) = top.get("sources") {
        let path = root.key("sources");
        for (name, value) in sources {
            if let (Some(source), Some(spec)) = (
                piece(value, &path.key(name.as_str()), problems),
                spec.as_mut(),
            ) {
                spec.sources.insert(name.clone(), source);
            }
        }
    }
    let mut layout = Vec::new();
    if let Some(Value::Array(rules)) = top.get("rules") {
        for (index, value) in rules.iter().enumerate() {
            let parsed = parse_rule(value, &root.key("rules").index(index), problems);
            if let (Some((rule, targets, complete)), Some(spec)) = (parsed, spec.as_mut()) {
                spec.rules.push(rule);
                layout.push(RuleLayout {
                    index,
                    targets,
                    complete,
                });
            }
        }
    }
    // Arrays already reported (and emptied into nulls) must not be reported again by serde.
    problems.retain(|(path, problem, _)| is_array_report(problem) || !arrays.contains(path));
    Parsed {
        spec,
        connections_incomplete,
        rules: layout,
    }
}

fn is_array_report(problem: &Problem) -> bool {
    matches!(problem, Problem::Shape { message } if message == ARRAY_REPORT)
}

const ARRAY_REPORT: &str = "invalid type: array, expected an object";

/// Where the pipeline file has objects (structs), by the type found there.
#[derive(Clone, Copy)]
enum Shape {
    Pipeline,
    Bus,
    Connection,
    Connector,
    Rule,
    Target,
    Grants,
    InputTransformer,
    Retry,
    Backoff,
    Batch,
}

/// Replaces every array found where a struct belongs with `null` (recording its path), so that serde reports
/// nothing more there than "invalid type: null" (which is then dropped).
fn objects_only(value: &mut Value, path: &JsonPath, shape: Shape, arrays: &mut Vec<JsonPath>) {
    if value.is_array() {
        arrays.push(path.clone());
        *value = Value::Null;
        return;
    }
    let Value::Object(map) = value else { return };
    let children: &[(&str, Shape)] = match shape {
        Shape::Pipeline => &[("bus", Shape::Bus)],
        Shape::Connector => &[("grants", Shape::Grants)],
        Shape::Rule => &[],
        Shape::Target => &[
            ("grants", Shape::Grants),
            ("input_transformer", Shape::InputTransformer),
            ("retry", Shape::Retry),
            ("batch", Shape::Batch),
        ],
        Shape::Retry => &[("backoff", Shape::Backoff)],
        Shape::Bus
        | Shape::Connection
        | Shape::Grants
        | Shape::InputTransformer
        | Shape::Backoff
        | Shape::Batch => &[],
    };
    for (key, child) in children {
        if let Some(value) = map.get_mut(*key) {
            objects_only(value, &path.key(*key), *child, arrays);
        }
    }
    let collections: &[(&str, Shape)] = match shape {
        Shape::Pipeline => &[
            ("connections", Shape::Connection),
            ("sources", Shape::Connector),
            ("rules", Shape::Rule),
        ],
        Shape::Rule => &[("targets", Shape::Target)],
        _ => &[],
    };
    for (key, child) in collections {
        match map.get_mut(*key) {
            Some(Value::Object(entries)) => {
                for (name, value) in entries.iter_mut() {
                    objects_only(value, &path.key(*key).key(name.as_str()), *child, arrays);
                }
            }
            Some(Value::Array(items)) if !matches!(child, Shape::Connection | Shape::Connector) => {
                for (index, value) in items.iter_mut().enumerate() {
                    objects_only(value, &path.key(*key).index(index), *child, arrays);
                }
            }
            _ => {}
        }
    }
}

fn parse_rule(
    value: &Value,
    path: &JsonPath,
    problems: &mut Vec<(JsonPath, Problem, bool)>,
) -> Option<(RuleSpec, Vec<usize>, bool)> {
    let mut probe = Vec::new();
    if let Some(rule) = piece::<RuleSpec>(value, path, &mut probe) {
        let targets = (0..rule.targets.len()).collect();
        return Some((rule, targets, true));
    }
    let Value::Object(fields) = value else {
        problems.extend(probe);
        return None;
    };
    let mut hollow = fields.clone();
    let targets = match hollow.get_mut("targets") {
        Some(slot @ Value::Array(_)) => std::mem::replace(slot, Value::Array(Vec::new())),
        _ => Value::Array(Vec::new()),
    };
    let mut rule = piece::<RuleSpec>(&Value::Object(hollow), path, problems)?;
    // A rule with a broken target is still checked (its pattern, its other targets).
    let mut kept = Vec::new();
    let mut complete = true;
    if let Value::Array(targets) = targets {
        for (index, value) in targets.iter().enumerate() {
            match piece(value, &path.key("targets").index(index), problems) {
                Some(target) => {
                    rule.targets.push(target);
                    kept.push(index);
                }
                None => complete = false,
            }
        }
    }
    Some((rule, kept, complete))
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Deserializes one piece; on failure records where (the path inside the piece) and what.
fn piece<T: DeserializeOwned>(
    value: &Value,
    at: &JsonPath,
    problems: &mut Vec<(JsonPath, Problem, bool)>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            let mut path = at.join(&JsonPath::from_serde(err.path()));
            let message = err.into_inner().to_string();
            // serde names an unknown field in its message; point at that key rather than at its object.
            let mut at_key = false;
            if let Some(field) = unknown_field(&message) {
                if path.last_key() != Some(field) {
                    path = path.key(field);
                }
                at_key = true;
            }
            problems.push((path, Problem::Shape { message }, at_key));
            None
        }
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}
