//! Pipeline files: their types, parsing, checking with located errors, and JSON Schema.
//!
//! A pipeline file is JSON (one pipeline per file; a process runs several). [`check`] takes the files' text and
//! names (the caller reads them) and a [`LoadContext`] through which it learns the built-in connectors and
//! looks up environment variables and files (this crate does no I/O), and returns every problem, each with
//! `file:line:column`, the JSON path and what was expected, or the checked [`Pipeline`]s.
//!
//! - `spec.rs`: the file as written ([`PipelineSpec`] and its parts), serde + JSON Schema, defaults.
//! - `structure.rs`: text -> spec, collecting every shape error (piece by piece when the whole fails).
//! - `check.rs`: semantic checks of one file (`values.rs`: of single values); `model.rs`: the checked result
//!   ([`Pipeline`]).
//! - `span.rs`: JSON path -> line and column in the source; `path.rs`: [`JsonPath`].
//! - `secret.rs`: `${env:NAME}` / `${file:PATH}` resolution into [`Resolved`] values that keep a redacted form.
//! - `duration.rs`: [`Duration`] (`"500ms"`, `"7d"`) and [`Retention`]; `diagnostic.rs`: [`Diagnostic`],
//!   [`Problem`], [`LoadError`].

mod check;
mod diagnostic;
mod duration;
mod model;
mod path;
mod secret;
mod span;
mod spec;
mod structure;
mod values;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

pub use diagnostic::{Diagnostic, LoadError, Location, Problem};
pub use duration::{Duration, Retention};
pub use model::{Bus, Connection, ConnectorRef, Input, Pipeline, Rule, Source, Target};
pub use path::{JsonPath, Segment};
pub use secret::Resolved;
pub use span::Position;
pub use spec::{
    BackoffSpec, BatchSpec, BusSpec, ConnectionSpec, Grants, InputTransformerSpec, NAME_PATTERN,
    Ordering, PipelineSpec, RetrySpec, RuleSpec, SourceSpec, TargetSpec,
};

use crate::PatternOptions;
use check::{FileCheck, Webhook};
use span::SpanIndex;

/// What checking needs from its caller: facts the runtime owns and the lookups this crate may not do itself.
pub struct LoadContext<'a> {
    /// Names of the connectors built into busbar, without `builtin:` (`http-webhook`, `http`, `log`…).
    pub builtin_connectors: &'a [&'a str],
    /// How strictly rule patterns are read.
    pub pattern_options: PatternOptions,
    /// Looks up an environment variable, for `${env:NAME}`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a file, for `${file:PATH}`; the error says why it cannot be read.
    pub read_file: &'a dyn Fn(&Path) -> Result<String, String>,
    /// Checks that a user's `.wasm` component exists and is readable; the error says why not.
    pub check_connector_file: &'a dyn Fn(&Path) -> Result<(), String>,
}

/// One pipeline file's text and the name to report it by. Relative paths in the file (`.wasm` components,
/// `${file:…}` secrets) are resolved against the folder of `name`.
#[derive(Clone, Copy, Debug)]
pub struct SourceFile<'a> {
    /// The file's path as the user gave it.
    pub name: &'a str,
    /// Its content.
    pub text: &'a str,
}

/// The outcome of [`check`]: the pipelines of the files that have no problem, and every problem found.
#[derive(Debug)]
pub struct Checked {
    /// One pipeline per problem-free file, in file order.
    pub pipelines: Vec<Pipeline>,
    /// Every problem, in file order, then by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// All the pipelines, or all the problems.
    pub fn into_result(self) -> Result<Vec<Pipeline>, LoadError> {
        if self.diagnostics.is_empty() {
            Ok(self.pipelines)
        } else {
            Err(LoadError {
                diagnostics: self.diagnostics,
            })
        }
    }
}

/// Checks pipeline files that will run together, and returns every problem: JSON syntax, shape (types, unknown
/// or missing fields), names, connectors, patterns, input transformers, grants, secrets, and what must be
/// unique across files (pipeline names, bus topics, webhook paths).
pub fn check(files: &[SourceFile<'_>], ctx: &LoadContext<'_>) -> Checked {
    let mut pipelines = Vec::new();
    let mut diagnostics = Vec::new();
    let mut across = Across::default();
    for file in files {
        let (pipeline, mut found) = check_file(file, ctx, &mut across);
        found.sort_by_key(|d| d.location.position);
        if found.is_empty() {
            pipelines.extend(pipeline);
        }
        diagnostics.extend(found);
    }
    Checked {
        pipelines,
        diagnostics,
    }
}

/// [`check`], as a `Result`.
pub fn load(files: &[SourceFile<'_>], ctx: &LoadContext<'_>) -> Result<Vec<Pipeline>, LoadError> {
    check(files, ctx).into_result()
}

/// The JSON Schema (draft 2020-12) of a pipeline file, as printed by `busbar schema pipeline`.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(PipelineSpec).to_value();
    unwrap_descriptions(&mut schema);
    schema
}

/// Doc comments are wrapped at the source's line width; editors show descriptions as flowing text.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(text) if key == "description" => *text = text.replace('\n', " "),
                    _ => unwrap_descriptions(item),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// What must be unique across the files of one process, with where each was first seen.
#[derive(Default)]
struct Across {
    names: HashMap<String, Location>,
    topics: HashMap<String, (String, Location)>,
    webhooks: HashMap<String, (String, String, Location)>,
}

fn check_file(
    file: &SourceFile<'_>,
    ctx: &LoadContext<'_>,
    across: &mut Across,
) -> (Option<Pipeline>, Vec<Diagnostic>) {
    // Some editors start UTF-8 files with a byte-order mark, which is not JSON and not a column either.
    let file = &SourceFile {
        name: file.name,
        text: file.text.strip_prefix('\u{feff}').unwrap_or(file.text),
    };
    let value: Value = match serde_json::from_str(file.text) {
        Ok(value) => value,
        Err(err) => {
            let message = err.to_string();
            let suffix = format!(" at line {} column {}", err.line(), err.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
            let position = Position {
                line: err.line(),
                column: span::char_column(file.text, err.line(), err.column()),
            };
            let location = Location {
                file: file.name.to_owned(),
                position,
            };
            return (
                None,
                vec![Diagnostic {
                    location,
                    path: None,
                    problem: Problem::Syntax { message },
                }],
            );
        }
    };
    let spans = SpanIndex::build(file.text);
    let mut fc = FileCheck {
        file: file.name,
        spans: &spans,
        diagnostics: Vec::new(),
        webhooks: Vec::new(),
    };

    for duplicate in spans.duplicates() {
        let key = duplicate.path.last_key().unwrap_or_default().to_owned();
        let kind = match duplicate
            .path
            .parent()
            .as_ref()
            .and_then(JsonPath::last_key)
        {
            Some("sources") if duplicate.path.segments().len() == 2 => Some("source"),
            Some("connections") if duplicate.path.segments().len() == 2 => Some("connection"),
            _ => None,
        };
        let problem = match kind {
            Some(kind) => Problem::DuplicateName {
                kind,
                name: key,
                first: fc.location(duplicate.first),
            },
            None => Problem::DuplicateKey {
                key,
                first: duplicate.first,
            },
        };
        fc.at_key(&duplicate.path, problem);
    }

    let mut problems = Vec::new();
    let parsed = structure::parse(&value, &mut problems);
    for (path, problem, at_key) in problems {
        if at_key {
            fc.at_key(&path, problem)
        } else {
            fc.at_value(&path, problem)
        }
    }
    let Some(spec) = parsed.spec else {
        return (None, fc.diagnostics);
    };
    let pipeline = check::check_pipeline(
        &spec,
        parsed.connections_incomplete,
        &parsed.rules,
        ctx,
        &mut fc,
    );
    check_across(&spec, &mut fc, across);
    let pipeline = if fc.diagnostics.is_empty() {
        pipeline
    } else {
        None
    };
    (pipeline, fc.diagnostics)
}

/// Pipeline names, bus topics and webhook paths must be unique in the process.
fn check_across(spec: &PipelineSpec, fc: &mut FileCheck<'_>, across: &mut Across) {
    let root = JsonPath::root();
    let name_path = root.key("name");
    let here = fc.location(fc.spans.value(&name_path));
    if let Some(first) = across.names.get(&spec.name) {
        let first = first.clone();
        fc.at_value(
            &name_path,
            Problem::DuplicateName {
                kind: "pipeline",
                name: spec.name.clone(),
                first,
            },
        );
    } else {
        across.names.insert(spec.name.clone(), here.clone());
    }

    let topic = spec.bus.topic.clone().unwrap_or_else(|| spec.name.clone());
    let topic_path = if spec.bus.topic.is_some() {
        root.key("bus").key("topic")
    } else {
        name_path
    };
    if let Some((owner, first)) = across.topics.get(&topic) {
        let message = format!(
            "bus topic `{topic}` is already the bus of pipeline `{owner}` at {first}: give each pipeline its own \
             `bus.topic` (a `topic` target can forward events between them)"
        );
        fc.at_value(&topic_path, Problem::Invalid { message });
    } else {
        across.topics.insert(
            topic,
            (spec.name.clone(), fc.location(fc.spans.value(&topic_path))),
        );
    }

    let webhooks = std::mem::take(&mut fc.webhooks);
    for webhook in webhooks {
        let Webhook {
            url_path,
            source,
            path,
            explicit,
        } = webhook;
        if let Some((owner, source_name, first)) = across.webhooks.get(&url_path) {
            let problem = Problem::DuplicateWebhookPath {
                path: url_path.clone(),
                pipeline: owner.clone(),
                source_name: source_name.clone(),
                first: first.clone(),
            };
            // An explicit `config.path` is reported at its value; a default one at the source's name.
            if explicit {
                fc.at_value(&path, problem)
            } else {
                fc.at_key(&path, problem)
            }
        } else {
            let position = if explicit {
                fc.spans.value(&path)
            } else {
                fc.spans.key(&path)
            };
            across
                .webhooks
                .insert(url_path, (spec.name.clone(), source, fc.location(position)));
        }
    }
}
