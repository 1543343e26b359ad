//! The HTTP target's config and its JSON Schema.

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
    #[serde(default = "default_content_type")]
    pub content_type: String,
    pub auth: Option<Auth>,
    pub rate_limit: Option<f64>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_budget")]
    pub call_budget_ms: u64,
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Auth {
    Basic {
        username: String,
        password: String,
    },
    ApiKey {
        header: String,
        value: String,
    },
    #[serde(rename_all = "kebab-case")]
    OauthClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        #[serde(default)]
        params: BTreeMap<String, String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    Basic,
    Body,
}

fn default_method() -> String {
    "POST".into()
}
fn default_content_type() -> String {
    "application/json".into()
}
fn default_timeout() -> u64 {
    5_000
}
fn default_budget() -> u64 {
    8_000
}
fn default_concurrency() -> u32 {
    32
}

pub const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "builtin:http",
  "description": "Sends each event to an HTTP endpoint (an EventBridge-style API destination). The body is the event (or the input transformer's output).",
  "type": "object",
  "additionalProperties": false,
  "required": ["url"],
  "properties": {
    "url": { "type": "string", "pattern": "^https?://", "description": "Endpoint URL template, e.g. `https://api.example.com/orders/{$.detail.id}`: `{<JSONPath>}` is filled from the event and percent-encoded; `{{`/`}}` are literal braces. Its host must be granted in grants.http." },
    "method": { "type": "string", "pattern": "^([A-Za-z]+|.*\\{.*\\}.*)$", "description": "HTTP method, or a template giving one (default POST)." },
    "headers": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Header name -> value template, e.g. `{\"X-Order\": \"{$.detail.id}\"}`." },
    "content-type": { "type": "string", "minLength": 1, "description": "Content-Type of the body unless `headers` sets one (default application/json)." },
    "auth": {
      "description": "How to authenticate to the endpoint.",
      "oneOf": [
        { "type": "object", "additionalProperties": false, "required": ["type", "username", "password"],
          "description": "HTTP Basic authentication.",
          "properties": {
            "type": { "const": "basic", "description": "HTTP Basic." },
            "username": { "type": "string", "description": "User name." },
            "password": { "type": "string", "description": "Password (use ${env:NAME})." } } },
        { "type": "object", "additionalProperties": false, "required": ["type", "header", "value"],
          "description": "An API key sent in a header.",
          "properties": {
            "type": { "const": "api-key", "description": "API key header." },
            "header": { "type": "string", "minLength": 1, "description": "Header name, e.g. `X-Api-Key`." },
            "value": { "type": "string", "description": "The key (use ${env:NAME})." } } },
        { "type": "object", "additionalProperties": false, "required": ["type", "token-url", "client-id", "client-secret"],
          "description": "OAuth 2.0 client credentials: a bearer token from the token endpoint, cached until it expires and fetched again on expiry or a 401.",
          "properties": {
            "type": { "const": "oauth-client-credentials", "description": "OAuth 2.0 client credentials grant." },
            "token-url": { "type": "string", "pattern": "^https?://", "description": "Token endpoint (POST); its host must be granted too." },
            "client-id": { "type": "string", "minLength": 1, "description": "Client id." },
            "client-secret": { "type": "string", "description": "Client secret (use ${env:NAME})." },
            "scope": { "type": "string", "description": "Space-separated scopes to ask for." },
            "params": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Extra form fields for the token request, e.g. `audience`." },
            "client-auth": { "enum": ["basic", "body"], "description": "Send the client credentials as HTTP Basic (default) or in the form body." } } }
      ]
    },
    "rate-limit": { "type": "number", "exclusiveMinimum": 0, "description": "Largest number of requests per second; requests are paced evenly." },
    "timeout-ms": { "type": "integer", "minimum": 1, "description": "Timeout for connecting, the first response byte and each gap in the response, in milliseconds (default 5000)." },
    "concurrency": { "type": "integer", "minimum": 1, "maximum": 256, "description": "Requests in flight at once per instance, for events of different keys (default 32). Events with the same key, and events without a key, are sent one after another, in order." },
    "call-budget-ms": { "type": "integer", "minimum": 1, "description": "Stop starting requests once one batch has taken this long, in milliseconds (default 8000, under the host's per-call deadline); the rest of the batch is answered retryable." }
  }
}"##;
