//! Templates for the URL, method and header values: literal text with `{<JSONPath>}` placeholders filled from
//! the record, e.g. `https://api.example.com/orders/{$.detail.id}`. `{{` and `}}` are literal braces.
//!
//! A path is `$` followed by `.name`, `['name']` or `[index]` steps. It is looked up in the record's payload
//! (the whole event, or the input transformer's output); `$.id`, `$.source`, `$.detail-type` and `$.time` fall
//! back to the record's envelope fields. Strings are inserted as they are, other values as JSON text; in a URL
//! the value is percent-encoded so it stays one path segment or query value.

use serde_json::Value;

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Path { raw: String, steps: Vec<Step> },
}

#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

/// Where a filled value goes, which decides how it is escaped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Url,
    Header,
}

/// The envelope fields of a record, for paths that are not in the payload.
pub struct Record<'a> {
    pub payload: Option<&'a Value>,
    pub id: &'a str,
    pub source: &'a str,
    pub detail_type: &'a str,
    pub time: &'a str,
}

impl Template {
    /// Parses `text`; the error says where the template is broken.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let end = text[i..]
                        .find('}')
                        .ok_or_else(|| format!("unclosed `{{` at byte {i}"))?
                        + i;
                    let raw = &text[i + 1..end];
                    let steps = parse_path(raw)
                        .map_err(|e| format!("placeholder {{{raw}}} at byte {i}: {e}"))?;
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Path {
                        raw: raw.to_owned(),
                        steps,
                    });
                    while chars.peek().is_some_and(|(j, _)| *j <= end) {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at byte {i} (write `}}}}` for a literal brace)"
                    ));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template { parts })
    }

    /// Whether the template has placeholders (otherwise it is the same text for every record).
    pub fn has_placeholders(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Path { .. }))
    }

    /// Fills the template from `record`; the error names the placeholder that found nothing.
    pub fn fill(&self, record: &Record<'_>, context: Context) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Path { raw, steps } => {
                    let value = lookup(record, steps)
                        .ok_or_else(|| format!("{raw} finds no value in the event"))?;
                    let text = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    match context {
                        Context::Url => {
                            out.extend(form_urlencoded::byte_serialize(text.as_bytes()).map(|s| {
                                // byte_serialize encodes spaces as `+`, which is only right in a query string.
                                if s == "+" { "%20" } else { s }
                            }))
                        }
                        Context::Header => {
                            if text.contains(['\r', '\n']) {
                                return Err(format!(
                                    "{raw} has a line break, which a header value cannot hold"
                                ));
                            }
                            out.push_str(&text);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn lookup(record: &Record<'_>, steps: &[Step]) -> Option<Value> {
    let found = record.payload.and_then(|payload| {
        steps.iter().try_fold(payload, |v, step| match step {
            Step::Key(k) => v.get(k.as_str()),
            Step::Index(i) => v.get(*i),
        })
    });
    match (found, steps) {
        (Some(v), _) if !v.is_null() => Some(v.clone()),
        (_, [Step::Key(k)]) => {
            let field = match k.as_str() {
                "id" => record.id,
                "source" => record.source,
                "detail-type" => record.detail_type,
                "time" => record.time,
                _ => return None,
            };
            (!field.is_empty()).then(|| Value::String(field.to_owned()))
        }
        _ => None,
    }
}

fn parse_path(raw: &str) -> Result<Vec<Step>, String> {
    let rest = raw
        .trim()
        .strip_prefix('$')
        .ok_or("a path starts with `$`, e.g. {$.detail.id}")?;
    let mut steps = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("empty name after `.`".into());
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unclosed `[`")?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match quoted {
                Some(name) => steps.push(Step::Key(name.to_owned())),
                None => {
                    steps.push(Step::Index(inner.parse().map_err(|_| {
                        format!("`[{inner}]`: expected an index or a quoted name")
                    })?))
                }
            }
            rest = &r[end + 1..];
        } else {
            return Err(format!(
                "unexpected {rest:?}: expected `.name`, `['name']` or `[index]`"
            ));
        }
    }
    Ok(steps)
}
