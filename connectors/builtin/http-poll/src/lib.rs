//! `builtin:http-poll`: a pull source that polls an HTTP API and turns each item of the JSON response into an
//! event, remembering where it got to with a cursor (ETag, last id, or timestamp).
//!
//! Module map:
//! - `config`: the config and its JSON Schema.
//! - `client`: blocking `wasi:http` requests with timeouts (shared with `builtin:http`).
//!
//! Errors: 429, 5xx and connection failures or timeouts are retryable; other 4xx are fatal; both say what the API
//! answered.

// Shared with the `http` sink.
#[path = "../../http/src/client.rs"]
mod client;
mod config;

use std::cmp::Ordering;

use busbar_connector_sdk::{
    Capability, Description, Error, Event, Kind, PollResult, PullSource, export_pull_source,
};
use serde_json::Value;

use config::{Config, CursorMode};

struct HttpPoll {
    config: Config,
}

impl PullSource for HttpPoll {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "http-poll".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::PullSource,
            summary: "polls an HTTP API; each item of the response becomes an event (ETag, last-id or timestamp cursor)".into(),
            config_schema: config::SCHEMA.into(),
            needs: vec![Capability::Http],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        client::split_url(&config.url).map_err(Error::fatal)?;
        if config.cursor != CursorMode::Etag && config.cursor_field.is_none() {
            return Err(Error::fatal(format!(
                "cursor {:?} needs `cursor-field`, a JSON Pointer into each item such as /id",
                config.cursor
            )));
        }
        Ok(HttpPoll { config })
    }

    fn poll(&mut self, cursor: Option<String>, max: u32) -> Result<PollResult, Error> {
        let c = &self.config;
        let fill = |text: &str, encode: bool| {
            let value = match c.cursor {
                CursorMode::Etag => String::new(),
                _ => cursor.clone().unwrap_or_else(|| c.initial_cursor.clone()),
            };
            let value = if encode {
                form_urlencoded::byte_serialize(value.as_bytes()).collect()
            } else {
                value
            };
            text.replace("{cursor}", &value)
        };
        let url = fill(&c.url, true);
        let mut headers: Vec<(String, Vec<u8>)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        headers.push(("accept".into(), b"application/json".to_vec()));
        if let (CursorMode::Etag, Some(etag)) = (c.cursor, &cursor) {
            headers.push(("if-none-match".into(), etag.clone().into_bytes()));
        }
        let body = c
            .body
            .as_deref()
            .map(|b| fill(b, false))
            .unwrap_or_default();
        let what = format!("{} {url}", c.method.to_ascii_uppercase());
        let response = client::send(&c.method, &url, &headers, body.as_bytes(), c.timeout_ms)
            .map_err(|f| match f {
                client::Failure::Transient(m) => Error::retryable(format!("{what}: {m}")),
                client::Failure::Fatal(m) => Error::fatal(format!("{what}: {m}")),
            })?;
        let status = response.status;
        if status == 304 && c.cursor == CursorMode::Etag {
            return Ok(PollResult {
                events: Vec::new(),
                cursor,
            });
        }
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect();
            let message = format!("{what} answered {status}: {text}");
            return Err(if status == 429 || status == 408 || status >= 500 {
                Error::retryable(message)
            } else {
                Error::fatal(message)
            });
        }
        let json: Value = serde_json::from_slice(&response.body)
            .map_err(|e| Error::fatal(format!("{what}: the response is not JSON: {e}")))?;
        let items = match json.pointer(&c.items) {
            Some(Value::Array(items)) => items.clone(),
            Some(obj @ Value::Object(_)) if c.items.is_empty() => vec![obj.clone()],
            Some(other) => {
                return Err(Error::fatal(format!(
                    "{what}: `items` {:?} points at {}, not an array",
                    c.items,
                    kind(other)
                )));
            }
            None => {
                return Err(Error::fatal(format!(
                    "{what}: `items` {:?} finds nothing in the response",
                    c.items
                )));
            }
        };
        match c.cursor {
            CursorMode::Etag => {
                let events = items
                    .iter()
                    .map(|item| self.event(item))
                    .collect::<Result<_, _>>()?;
                Ok(PollResult {
                    events,
                    cursor: response.header("etag").or(cursor),
                })
            }
            CursorMode::LastId | CursorMode::Timestamp => self.after_cursor(items, cursor, max),
        }
    }
}

impl HttpPoll {
    /// The items past the cursor, in increasing cursor order, at most `max`; the cursor moves to the last one.
    fn after_cursor(
        &self,
        items: Vec<Value>,
        cursor: Option<String>,
        max: u32,
    ) -> Result<PollResult, Error> {
        let field = self.config.cursor_field.as_deref().unwrap_or_default();
        let floor = cursor
            .clone()
            .unwrap_or_else(|| self.config.initial_cursor.clone());
        let mut fresh = Vec::new();
        for item in items {
            let position = match item.pointer(field) {
                Some(Value::String(s)) => Position::Text(s.clone()),
                Some(Value::Number(n)) => {
                    Position::Number(n.as_f64().unwrap_or_default(), n.to_string())
                }
                other => {
                    return Err(Error::fatal(format!(
                        "cursor-field {field:?} must be a string or number in every item, found {} in {item}",
                        other.map_or("nothing", kind)
                    )));
                }
            };
            if floor.is_empty() || position.cmp_to(&floor) == Ordering::Greater {
                fresh.push((position, item));
            }
        }
        fresh.sort_by(|a, b| a.0.cmp(&b.0));
        fresh.truncate(max.max(1) as usize);
        let next = fresh.last().map(|(p, _)| p.text().to_owned()).or(cursor);
        let events = fresh
            .iter()
            .map(|(_, item)| self.event(item))
            .collect::<Result<_, _>>()?;
        Ok(PollResult {
            events,
            cursor: next,
        })
    }

    fn event(&self, item: &Value) -> Result<Event, Error> {
        let mut event = Event::json(&self.config.source, &self.config.detail_type, item);
        if let Some(pointer) = &self.config.key {
            event.key = match item.pointer(pointer) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone().into_bytes()),
                Some(v) => Some(v.to_string().into_bytes()),
            };
        }
        Ok(event)
    }
}

/// An item's place in the cursor order: numbers compare as numbers, text as text (ISO 8601 sorts as text).
enum Position {
    Number(f64, String),
    Text(String),
}

impl Position {
    fn text(&self) -> &str {
        match self {
            Position::Number(_, t) | Position::Text(t) => t,
        }
    }
    fn cmp_to(&self, cursor: &str) -> Ordering {
        match (self, cursor.parse::<f64>()) {
            (Position::Number(n, _), Ok(c)) => n.partial_cmp(&c).unwrap_or(Ordering::Equal),
            _ => self.text().cmp(cursor),
        }
    }
    fn cmp(&self, other: &Position) -> Ordering {
        match (self, other) {
            (Position::Number(a, _), Position::Number(b, _)) => {
                a.partial_cmp(b).unwrap_or(Ordering::Equal)
            }
            _ => self.text().cmp(other.text()),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

export_pull_source!(HttpPoll);
