//! `builtin:http-webhook`: a push source that turns inbound HTTP requests (webhooks) into events.
//!
//! Module map:
//! - `config`: the config and its JSON Schema.
//! - `verify`: signature checks (GitHub, Stripe, Slack, generic HMAC), constant-time.
//! - `body`: request bodies (JSON, form, CloudEvents binary/structured/batch) to events.
//!
//! A request that fails verification is answered 401, a body that cannot be read 400 or 415, each with
//! `{"error": "<reason>"}` and no events: the host dead-letters such requests with that reason. Otherwise the
//! answer is `{"accepted": N}` with the configured status, sent by the host once the events are durable.

mod body;
mod config;
mod verify;

use busbar_connector_sdk::{
    Description, Error, Handled, Header, HttpRequest, HttpResponse, Kind, PushSource,
    export_push_source,
};
use serde_json::json;

use config::{Config, Verify};

struct Webhook {
    config: Config,
    /// What of a plain JSON body is built, from the config.
    reads: body::Reads,
}

impl PushSource for Webhook {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "http-webhook".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::PushSource,
            summary: "receives webhooks (JSON, form, CloudEvents) with GitHub/Stripe/Slack/HMAC signature checks".into(),
            config_schema: config::SCHEMA.into(),
            needs: vec![],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        if !(200..=299).contains(&config.status) {
            return Err(Error::fatal(format!(
                "status {}: expected a 2xx status",
                config.status
            )));
        }
        if let Some(key) = &config.key
            && !key.is_empty()
            && !key.starts_with('/')
        {
            return Err(Error::fatal(format!(
                "key {key:?}: expected a JSON Pointer such as /repository/id"
            )));
        }
        Ok(Webhook {
            reads: body::reads(&config),
            config,
        })
    }

    fn handle(&mut self, request: HttpRequest) -> Result<Handled, Error> {
        Ok(self.answer(&request))
    }
}

impl Webhook {
    fn answer(&self, request: &HttpRequest) -> Handled {
        let header = |name: &str| -> Option<String> {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(&h.value).into_owned())
        };
        let method = request.method.to_ascii_uppercase();
        if method != "POST" && method != "PUT" {
            return reject(
                405,
                format!("method {method} is not accepted: send the webhook with POST"),
            );
        }
        if let Some(verify) = &self.config.verify
            && let Err(reason) = verify::check(verify, &header, &request.body, now_unix())
        {
            return reject(401, reason);
        }
        let parsed = match body::parse(&request.headers, &request.body, &self.reads) {
            Ok(parsed) => parsed,
            Err(body::Rejected { status, reason }) => return reject(status, reason),
        };
        if let (Some(Verify::Slack { .. }), body::Parsed::Plain(value, _)) =
            (&self.config.verify, &parsed)
        {
            // Slack checks a new endpoint by asking it to echo a challenge; that is not an event.
            if value.get("type").and_then(|t| t.as_str()) == Some("url_verification") {
                let challenge = value.get("challenge").cloned().unwrap_or_default();
                return respond(200, &json!({ "challenge": challenge }), Vec::new());
            }
        }
        let events = match body::to_events(parsed, &request.body, &self.config, &header) {
            Ok(events) => events,
            Err(reason) => return reject(400, reason),
        };
        respond(
            self.config.status,
            &json!({ "accepted": events.len() }),
            events,
        )
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn respond(
    status: u16,
    body: &serde_json::Value,
    events: Vec<busbar_connector_sdk::Event>,
) -> Handled {
    Handled {
        response: HttpResponse {
            status,
            headers: vec![Header {
                name: "content-type".into(),
                value: b"application/json".to_vec(),
            }],
            body: serde_json::to_vec(body).unwrap_or_default(),
        },
        events,
    }
}

fn reject(status: u16, reason: String) -> Handled {
    busbar_connector_sdk::log::warn(&format!("webhook rejected with {status}: {reason}"));
    respond(status, &json!({ "error": reason }), Vec::new())
}

export_push_source!(Webhook);
