//! Errors of the crate. Patterns, events and transformers fail at different moments (rule load, record
//! arrival, delivery) and callers react differently, so each gets its own enum; all carry a message that says
//! what was wrong, where, and what would be right.

use std::fmt;

/// A pattern that EventBridge (or busbar) would refuse, with the JSON path inside the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern at {path}: {message}")]
pub struct PatternError {
    path: String,
    message: String,
}

impl PatternError {
    pub(crate) fn new(path: &JsonPath, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// JSON path inside the pattern, e.g. `$.detail.state[0].prefix`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong and what would be right, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// An event that cannot be matched: the bytes are not one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("event is not valid JSON at byte {offset}: {message}")]
    Syntax {
        offset: usize,
        message: &'static str,
    },
    #[error("event is not valid UTF-8 at byte {offset}")]
    Utf8 { offset: usize },
    #[error("event must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("event nests deeper than {limit} levels at byte {offset}")]
    TooDeep { offset: usize, limit: usize },
}

/// An input transformer that is invalid (rejected when the target is created) or whose output for one event
/// is unusable (an error at delivery).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("input_paths_map: {message}")]
    PathsMap { message: String },
    #[error("input_template: {message}")]
    Template { message: String },
    #[error("transformed output is not valid JSON ({message}); output was: {output}")]
    InvalidJsonOutput { message: String, output: String },
}

impl TransformError {
    /// True when the transformer itself is invalid (EventBridge rejects it at PutTargets); false when only
    /// this event's output is bad.
    pub fn is_load_time(&self) -> bool {
        !matches!(self, TransformError::InvalidJsonOutput { .. })
    }
}

/// A JSON path under construction while walking a pattern, printed as `$.a.b[2]` (keys that are not simple
/// identifiers are quoted: `$["detail-type"]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonPath(Vec<Step>);

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub(crate) fn key(&self, k: &str) -> JsonPath {
        let mut p = self.clone();
        p.0.push(Step::Key(k.to_owned()));
        p
    }

    pub(crate) fn index(&self, i: usize) -> JsonPath {
        let mut p = self.clone();
        p.0.push(Step::Index(i));
        p
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for step in &self.0 {
            match step {
                Step::Key(k) if is_plain_key(k) => write!(f, ".{k}")?,
                Step::Key(k) => write!(f, "[{}]", serde_json::Value::String(k.clone()))?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
