//! The webhook's config and its JSON Schema (the schema is what the host validates and the docs show).

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// URL path the host mounts the webhook on (read by the host).
    #[allow(dead_code)]
    pub path: Option<String>,
    #[serde(default = "default_source")]
    pub source: String,
    #[serde(default = "default_detail_type")]
    pub detail_type: String,
    pub detail_type_header: Option<String>,
    pub id_header: Option<String>,
    pub key: Option<String>,
    #[serde(default = "default_status")]
    pub status: u16,
    pub verify: Option<Verify>,
}

#[derive(Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Verify {
    Github {
        secret: String,
    },
    Stripe {
        secret: String,
        #[serde(default = "default_tolerance")]
        tolerance: u64,
    },
    Slack {
        secret: String,
        #[serde(default = "default_tolerance")]
        tolerance: u64,
    },
    Hmac {
        secret: String,
        header: String,
        #[serde(default)]
        algorithm: Algorithm,
        #[serde(default)]
        encoding: Encoding,
        prefix: Option<String>,
    },
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha1,
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

fn default_source() -> String {
    "webhook".into()
}
fn default_detail_type() -> String {
    "webhook".into()
}
fn default_status() -> u16 {
    202
}
fn default_tolerance() -> u64 {
    300
}

pub const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "builtin:http-webhook",
  "description": "Receives webhooks (JSON, form-encoded or CloudEvents) and puts one event per request on the bus.",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "path": { "type": "string", "pattern": "^/", "description": "URL path below /hooks the webhook answers on, e.g. /github; defaults to the source's name." },
    "source": { "type": "string", "minLength": 1, "description": "Envelope `source` of the events (default `webhook`); CloudEvents use their own `source`." },
    "detail-type": { "type": "string", "minLength": 1, "description": "Envelope `detail-type` of the events (default `webhook`); CloudEvents use their own `type`." },
    "detail-type-header": { "type": "string", "minLength": 1, "description": "Take `detail-type` from this request header when present, e.g. `X-GitHub-Event`." },
    "id-header": { "type": "string", "minLength": 1, "description": "Take the event `id` from this request header when present, e.g. `X-GitHub-Delivery`, so redeliveries keep their id." },
    "key": { "type": "string", "pattern": "^(/.*)?$", "description": "JSON Pointer (RFC 6901) into the event's detail whose value becomes the partition key, e.g. `/repository/id`." },
    "status": { "type": "integer", "minimum": 200, "maximum": 299, "description": "HTTP status answered once the events are durable on the bus (default 202)." },
    "verify": {
      "description": "Signature check on the raw body; a request that fails it is answered 401 and dead-lettered with the reason.",
      "oneOf": [
        { "type": "object", "additionalProperties": false, "required": ["scheme", "secret"],
          "description": "GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.",
          "properties": {
            "scheme": { "const": "github", "description": "GitHub webhook signatures." },
            "secret": { "type": "string", "minLength": 1, "description": "The webhook secret (use ${env:NAME})." } } },
        { "type": "object", "additionalProperties": false, "required": ["scheme", "secret"],
          "description": "Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`.",
          "properties": {
            "scheme": { "const": "stripe", "description": "Stripe webhook signatures." },
            "secret": { "type": "string", "minLength": 1, "description": "The endpoint's signing secret (whsec_…)." },
            "tolerance": { "type": "integer", "minimum": 1, "description": "Largest accepted difference between the signed timestamp and now, in seconds (default 300)." } } },
        { "type": "object", "additionalProperties": false, "required": ["scheme", "secret"],
          "description": "Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of \"v0:<X-Slack-Request-Timestamp>:<body>\">`.",
          "properties": {
            "scheme": { "const": "slack", "description": "Slack request signatures." },
            "secret": { "type": "string", "minLength": 1, "description": "The app's signing secret." },
            "tolerance": { "type": "integer", "minimum": 1, "description": "Largest accepted difference between X-Slack-Request-Timestamp and now, in seconds (default 300)." } } },
        { "type": "object", "additionalProperties": false, "required": ["scheme", "secret", "header"],
          "description": "Generic HMAC of the body in one header.",
          "properties": {
            "scheme": { "const": "hmac", "description": "A generic HMAC signature header." },
            "secret": { "type": "string", "minLength": 1, "description": "The shared secret." },
            "header": { "type": "string", "minLength": 1, "description": "Header carrying the signature, e.g. `X-Signature`." },
            "algorithm": { "enum": ["sha256", "sha1"], "description": "HMAC hash (default sha256)." },
            "encoding": { "enum": ["hex", "base64"], "description": "How the signature is encoded (default hex)." },
            "prefix": { "type": "string", "description": "Text before the encoded signature, e.g. `sha256=`." } } }
      ]
    }
  }
}"##;
