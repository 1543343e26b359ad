//! Input transformers, as EventBridge applies them: `input_paths_map` names values picked from the event by
//! JSONPath, `input_template` places them with `<name>`.
//!
//! Quoting rules (EventBridge's): a template whose text starts with `{` is a JSON template, anything else is
//! text sent as is (a quoted string template keeps its quotes). In a JSON template a placeholder used as a bare
//! value becomes JSON (strings are quoted and escaped, a missing path becomes `null`); inside a quoted JSON
//! string, or anywhere in a text template, strings are inserted raw and unescaped, numbers and booleans as
//! written, objects and arrays as compact JSON (in text templates with every `"` removed), a missing path as
//! nothing. A JSON template whose result is not valid JSON is an error at delivery, never a silent string.
//! `<aws.events.event>` (the event without `detail`) and `<aws.events.event.json>` (the whole event) may only
//! be bare values in a JSON template.

use std::collections::BTreeMap;

use jsonpath_rust::JsonPath as _;
use serde_json::Value;

use crate::error::TransformError;

/// Values for the reserved variables.
#[derive(Debug, Clone, Copy)]
pub struct TransformContext<'a> {
    /// `<aws.events.rule-name>`
    pub rule_name: &'a str,
    /// `<aws.events.rule-arn>`
    pub rule_arn: &'a str,
    /// `<aws.events.event.ingestion-time>`, an ISO 8601 timestamp.
    pub ingestion_time: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
enum Var {
    Path(usize),
    RuleName,
    RuleArn,
    IngestionTime,
    /// The event without `detail`.
    Event,
    /// The whole event.
    EventJson,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Var { var: Var, quoted: bool },
}

/// A validated input transformer.
#[derive(Debug, Clone)]
pub struct InputTransformer {
    /// (JSONPath, whether it can select several values and so yields an array).
    paths: Vec<(String, bool)>,
    segments: Vec<Segment>,
    json: bool,
}

const RESERVED: &[(&str, Var)] = &[
    ("aws.events.rule-name", Var::RuleName),
    ("aws.events.rule-arn", Var::RuleArn),
    ("aws.events.event.ingestion-time", Var::IngestionTime),
    ("aws.events.event.json", Var::EventJson),
    ("aws.events.event", Var::Event),
];

impl InputTransformer {
    /// Validate a paths map and a template; errors here are what EventBridge rejects when the target is created.
    pub fn new<'m, M>(
        input_paths_map: M,
        input_template: &str,
    ) -> Result<InputTransformer, TransformError>
    where
        M: IntoIterator<Item = (&'m String, &'m Value)>,
    {
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut paths = Vec::new();
        for (name, path) in input_paths_map {
            let bad = |message: String| TransformError::PathsMap { message };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(format!(
                    "variable name {name:?} must be letters, digits, '_' or '-'"
                )));
            }
            if name.starts_with("aws.") {
                return Err(bad(format!("variable name {name:?} is reserved")));
            }
            let Some(path) = path.as_str() else {
                return Err(bad(format!(
                    "variable {name:?}: the JSONPath must be a string, found {path}"
                )));
            };
            if !path.starts_with('$') {
                return Err(bad(format!(
                    "variable {name:?}: JSONPath {path:?} must start with '$', e.g. \"$.detail.id\""
                )));
            }
            let rfc = to_rfc9535(path);
            jsonpath_rust::parser::parse_json_path(&rfc).map_err(|e| {
                bad(format!(
                    "variable {name:?}: JSONPath {path:?} is invalid: {e}"
                ))
            })?;
            let multi = path.contains('*')
                || path.contains("..")
                || path.contains('?')
                || path.contains(':');
            names.insert(name.clone(), paths.len());
            paths.push((rfc, multi));
        }
        let json = input_template.trim_start().starts_with('{');
        let segments = parse_template(input_template, &names, json)?;
        let t = InputTransformer {
            paths,
            segments,
            json,
        };
        if json {
            // A JSON template must be valid JSON whatever the values: check with stand-ins now.
            let probe = t.render(|var, quoted| match (var, quoted) {
                (_, true) => String::new(),
                (_, false) => "null".to_owned(),
            });
            serde_json::from_str::<Value>(&probe).map_err(|e| TransformError::Template {
                message: format!("a template starting with '{{' must be JSON (placeholders only as values or inside strings): {e}"),
            })?;
        }
        Ok(t)
    }

    /// Whether the template is a JSON template (its output is checked to be JSON).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Apply the transformer to one event.
    pub fn transform(
        &self,
        event: &Value,
        ctx: &TransformContext<'_>,
    ) -> Result<String, TransformError> {
        let values: Vec<Option<Value>> = self
            .paths
            .iter()
            .map(|(p, multi)| select(event, p, *multi))
            .collect();
        let json = self.json;
        let out = self.render(|var, quoted| {
            let text = |s: &str| {
                if !quoted && json {
                    Value::String(s.to_owned()).to_string()
                } else {
                    s.to_owned()
                }
            };
            match var {
                Var::RuleName => text(ctx.rule_name),
                Var::RuleArn => text(ctx.rule_arn),
                Var::IngestionTime => text(ctx.ingestion_time),
                Var::EventJson => event.to_string(),
                Var::Event => {
                    let mut e = event.clone();
                    if let Value::Object(m) = &mut e {
                        m.remove("detail");
                    }
                    e.to_string()
                }
                Var::Path(i) => render_value(values[*i].as_ref(), json, quoted),
            }
        });
        if json && let Err(e) = serde_json::from_str::<Value>(&out) {
            return Err(TransformError::InvalidJsonOutput {
                message: e.to_string(),
                output: out,
            });
        }
        Ok(out)
    }

    fn render(&self, mut value: impl FnMut(&Var, bool) -> String) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Var { var, quoted } => out.push_str(&value(var, *quoted)),
            }
        }
        out
    }
}

/// EventBridge paths allow member names RFC 9535's dot notation does not (`$.detail.instance-id`, `$.a.1b`);
/// such names are rewritten in bracket notation (`$.detail['instance-id']`) before jsonpath-rust sees them.
fn to_rfc9535(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    let mut rest = path;
    while let Some(c) = rest.chars().next() {
        match c {
            '.' if rest[1..].starts_with('.')
                || rest[1..].starts_with('[')
                || rest[1..].starts_with('*') =>
            {
                out.push('.');
                rest = &rest[1..];
            }
            '.' => {
                let end = rest[1..].find(['.', '[']).map_or(rest.len(), |i| i + 1);
                let name = &rest[1..end];
                let plain = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    out.push('.');
                    out.push_str(name);
                } else {
                    out.push_str(&format!("[{}]", Value::String(name.to_owned())));
                }
                rest = &rest[end..];
            }
            '[' => {
                let end = rest.find(']').map_or(rest.len(), |i| i + 1);
                out.push_str(&rest[..end]);
                rest = &rest[end..];
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

fn select(event: &Value, path: &str, multi: bool) -> Option<Value> {
    let found = event.query(path).ok()?;
    if multi {
        Some(Value::Array(found.into_iter().cloned().collect()))
    } else {
        found.first().map(|v| (*v).clone())
    }
}

fn render_value(v: Option<&Value>, json: bool, quoted: bool) -> String {
    match (v, json && !quoted) {
        (None, true) => "null".to_owned(),
        (None, false) => String::new(),
        (Some(v), true) => v.to_string(),
        (Some(Value::String(s)), false) => s.clone(),
        (Some(v @ (Value::Object(_) | Value::Array(_))), false) if !json => {
            v.to_string().replace('"', "")
        }
        (Some(v), false) => v.to_string(),
    }
}

/// Split the template into text and placeholders, noting which placeholders sit inside a JSON string.
fn parse_template(
    t: &str,
    names: &BTreeMap<String, usize>,
    json: bool,
) -> Result<Vec<Segment>, TransformError> {
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut in_string = false;
    let mut chars = t.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '<' {
            let rest = &t[i + 1..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .unwrap_or(rest.len());
            if len > 0 && rest[len..].starts_with('>') {
                let name = &rest[..len];
                let var = match RESERVED.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => v.clone(),
                    None => Var::Path(*names.get(name).ok_or_else(|| TransformError::Template {
                        message: format!("placeholder <{name}> is not defined in input_paths_map (nor a reserved aws.events.* variable)"),
                    })?),
                };
                let quoted = in_string || !json;
                if matches!(var, Var::Event | Var::EventJson) && quoted {
                    return Err(TransformError::Template {
                        message: format!(
                            "<{name}> can only be used as a bare value in a JSON template, not inside a string"
                        ),
                    });
                }
                segments.push(Segment::Text(std::mem::take(&mut text)));
                segments.push(Segment::Var { var, quoted });
                for _ in 0..=len {
                    chars.next();
                }
                continue;
            }
        }
        if json && c == '"' {
            in_string = !in_string;
        } else if json && in_string && c == '\\' {
            text.push(c);
            if let Some((_, next)) = chars.next() {
                text.push(next);
            }
            continue;
        }
        text.push(c);
    }
    segments.push(Segment::Text(text));
    segments.retain(|s| !matches!(s, Segment::Text(t) if t.is_empty()));
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(map: Value, template: &str) -> Result<InputTransformer, TransformError> {
        InputTransformer::new(map.as_object().unwrap(), template)
    }

    const CTX: TransformContext<'static> = TransformContext {
        rule_name: "r",
        rule_arn: "arn:r",
        ingestion_time: "2024-01-01T00:00:00Z",
    };

    #[test]
    fn table() {
        let event = json!({"source": "s", "detail": {"a": "x\"y", "n": 5, "o": {"k": "v"}, "l": [1, 2], "items": [{"id": 1}, {"id": 2}]}});
        let cases: &[(Value, &str, &str)] = &[
            (json!({"a": "$.detail.a"}), "plain <a>!", "plain x\"y!"),
            (
                json!({"n": "$.detail.n"}),
                "{\"n\": <n>, \"s\": \"n=<n>\"}",
                "{\"n\": 5, \"s\": \"n=5\"}",
            ),
            (json!({"l": "$.detail.l"}), "list <l>", "list [1,2]"),
            (
                json!({"ids": "$.detail.items[*].id"}),
                "{\"ids\": <ids>}",
                "{\"ids\": [1,2]}",
            ),
            (
                json!({"m": "$.detail.missing"}),
                "{\"m\": <m>}",
                "{\"m\": null}",
            ),
            (
                json!({"i": "$.detail.items[1].id", "d": "$.detail['a']"}),
                "<i> <d>",
                "2 x\"y",
            ),
            (
                json!({}),
                "{\"e\": <aws.events.event>}",
                "{\"e\": {\"source\":\"s\"}}",
            ),
            (
                json!({}),
                "{\"t\": <aws.events.event.ingestion-time>}",
                "{\"t\": \"2024-01-01T00:00:00Z\"}",
            ),
            (json!({}), "\"a < b\" <aws.events.rule-name>", "\"a < b\" r"),
        ];
        for (map, template, expected) in cases {
            let out = t(map.clone(), template)
                .unwrap()
                .transform(&event, &CTX)
                .unwrap();
            assert_eq!(&out, expected, "{template}");
        }
    }

    #[test]
    fn load_time_rejections() {
        for (map, template) in [
            (json!({"a b": "$.x"}), "<a b>"),
            (json!({"a": "detail.x"}), "<a>"),
            (json!({"a": 5}), "<a>"),
            (json!({"a": "$.x"}), "<b>"),
            (json!({"a": "$.x"}), "{<a>: 1}"),
            (json!({}), "{\"e\": \"<aws.events.event.json>\"}"),
            (json!({}), "text <aws.events.event>"),
            (json!({"a": "$[?"}), "<a>"),
            (json!({"a": "$.detail.a"}), "\"<a>\" and <undefined>"),
        ] {
            assert!(t(map.clone(), template).is_err(), "{map} {template}");
        }
    }

    #[test]
    fn json_output_checked_at_delivery() {
        let tr = t(json!({"a": "$.detail.a"}), "{\"a\": \"<a>\"}").unwrap();
        let err = tr
            .transform(&json!({"detail": {"a": "say \"hi\""}}), &CTX)
            .unwrap_err();
        assert!(!err.is_load_time());
    }
}
