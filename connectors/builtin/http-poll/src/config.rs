//! The HTTP poll source's config and its JSON Schema.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    #[serde(default)]
    pub cursor: CursorMode,
    pub cursor_field: Option<String>,
    #[serde(default)]
    pub initial_cursor: String,
    #[serde(default)]
    pub items: String,
    pub key: Option<String>,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default = "default_detail_type")]
    pub detail_type: String,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Read by the host (how often it polls).
    #[allow(dead_code)]
    pub interval: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum CursorMode {
    #[default]
    Etag,
    LastId,
    Timestamp,
}

fn default_method() -> String {
    "GET".into()
}
fn default_source() -> String {
    "http-poll".into()
}
fn default_detail_type() -> String {
    "item".into()
}
fn default_timeout() -> u64 {
    5_000
}

pub const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "builtin:http-poll",
  "description": "Polls an HTTP API on an interval; each item of the JSON response becomes an event. A cursor (ETag, last id or timestamp) makes each poll return only what is new.",
  "type": "object",
  "additionalProperties": false,
  "required": ["url"],
  "properties": {
    "url": { "type": "string", "pattern": "^https?://", "description": "URL to poll; `{cursor}` is replaced by the current cursor (percent-encoded), e.g. `https://api.example.com/events?after={cursor}`. Its host must be granted in grants.http." },
    "method": { "type": "string", "pattern": "^[A-Za-z]+$", "description": "HTTP method (default GET)." },
    "headers": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Request headers, e.g. `{\"Authorization\": \"Bearer ${env:TOKEN}\"}`." },
    "body": { "type": "string", "description": "Request body (for APIs polled with POST); `{cursor}` is replaced as in the URL." },
    "cursor": { "enum": ["etag", "last-id", "timestamp"], "description": "etag (default): send If-None-Match with the last ETag, a 304 means nothing new; last-id: only items whose `cursor-field` is greater than the last one delivered, in increasing order; timestamp: the same with a timestamp field (ISO 8601 text or a number)." },
    "cursor-field": { "type": "string", "pattern": "^(/.*)?$", "description": "JSON Pointer into each item to its id (last-id) or timestamp (timestamp), e.g. `/id`; required for those modes." },
    "initial-cursor": { "type": "string", "description": "Cursor value for `{cursor}` on the very first poll (default empty); items at or below it are skipped." },
    "items": { "type": "string", "pattern": "^(/.*)?$", "description": "JSON Pointer to the array of items in the response, e.g. `/data` (default: the whole body; an object body is one item)." },
    "key": { "type": "string", "pattern": "^(/.*)?$", "description": "JSON Pointer into each item whose value becomes the partition key." },
    "source": { "type": "string", "minLength": 1, "description": "Envelope `source` of the events (default `http-poll`)." },
    "detail-type": { "type": "string", "minLength": 1, "description": "Envelope `detail-type` of the events (default `item`)." },
    "timeout-ms": { "type": "integer", "minimum": 1, "description": "Timeout for connecting, the first response byte and each gap in the response, in milliseconds (default 5000)." },
    "interval": { "type": "string", "pattern": "^[0-9]+(ms|s|m|h)$", "description": "How often the host polls, e.g. `30s` (read by the host)." }
  }
}"##;
