//! The straightforward evaluator: flatten the whole event, then walk one pattern's tree. It is the reference
//! the compiled [`crate::Matcher`] is tested against, and the simplest way to test a single rule.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

use crate::number::Num;
use crate::pattern::{Child, Node, Pattern, Scalar, test_field};

/// A leaf value of an event, owned where the source does not hold it in the right form.
#[derive(Debug, Clone)]
pub(crate) enum Leaf<'a> {
    Str(Cow<'a, str>),
    Num(Num),
    Bool(bool),
    Null,
}

impl Leaf<'_> {
    pub(crate) fn scalar(&self) -> Scalar<'_> {
        match self {
            Leaf::Str(s) => Scalar::Str(s),
            Leaf::Num(n) => Scalar::Num(n),
            Leaf::Bool(b) => Scalar::Bool(*b),
            Leaf::Null => Scalar::Null,
        }
    }
}

/// Every leaf of an event keyed by its dotted path. Array elements share their array's path; empty arrays and
/// objects contribute nothing. Keys are joined with `.`, so an event key `"a.b"` and a nested `a` → `b` land on
/// the same path, as in EventBridge.
pub(crate) fn flatten(event: &Value) -> HashMap<String, Vec<Leaf<'_>>> {
    let mut out = HashMap::new();
    walk(event, &mut String::new(), &mut out);
    out
}

fn walk<'a>(v: &'a Value, path: &mut String, out: &mut HashMap<String, Vec<Leaf<'a>>>) {
    let leaf = match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(child, path, out);
                path.truncate(len);
            }
            return;
        }
        Value::Array(items) => {
            items.iter().for_each(|item| walk(item, path, out));
            return;
        }
        Value::String(s) => Leaf::Str(Cow::Borrowed(s)),
        Value::Number(n) => Leaf::Num(Num::from_json(n)),
        Value::Bool(b) => Leaf::Bool(*b),
        Value::Null => Leaf::Null,
    };
    out.entry(path.clone()).or_default().push(leaf);
}

impl Pattern {
    /// Whether this one pattern matches an event, evaluated directly (no compilation). For many rules use a
    /// [`crate::Matcher`].
    pub fn matches(&self, event: &Value) -> bool {
        let flat = flatten(event);
        node_matches(&self.root, "", &flat)
    }
}

fn node_matches(node: &Node, prefix: &str, flat: &HashMap<String, Vec<Leaf<'_>>>) -> bool {
    let fields_ok = node.fields.iter().all(|(key, child)| {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match child {
            Child::Node(inner) => node_matches(inner, &path, flat),
            Child::Leaf(conds) => {
                let values: &[Leaf<'_>] = flat.get(&path).map_or(&[], Vec::as_slice);
                test_field(conds, values.iter().map(Leaf::scalar))
            }
        }
    });
    fields_ok
        && node.ors.iter().all(|group| {
            group
                .iter()
                .any(|branch| node_matches(branch, prefix, flat))
        })
}
