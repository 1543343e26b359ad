//! `builtin:http`: a sink that sends each event to an HTTP endpoint, like an EventBridge API destination.
//!
//! Module map:
//! - `config`: the config and its JSON Schema.
//! - `template`: `{<JSONPath>}` templates for the URL, method and header values.
//! - `client`: `wasi:http` requests with timeouts, several in flight at once.
//! - `auth`: basic, API key, and OAuth client credentials with a cached token.
//!
//! Up to `concurrency` requests are in flight at once, for events of different keys; events with the same key (and
//! events without a key, as one group) are sent one after another, in batch order, and once one of them fails the
//! group's later events in the batch are not sent (answered `not attempted`), so a retry keeps their order.
//!
//! Outcome per record: 2xx ok; 408, 429, 5xx and connection failures retryable (with `retry-after=<n>s` when
//! the endpoint sent Retry-After, so the host can wait that long); other statuses fatal.

mod auth;
mod client;
mod config;
mod template;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use busbar_connector_sdk::bindings::wasi::io::poll::poll;
use busbar_connector_sdk::{
    Capability, Description, Error, Event, Kind, Outcome, Sink, export_sink,
};

use config::Config;
use template::{Context, Record, Template};

struct HttpSink {
    url: Template,
    method: Template,
    headers: Vec<(String, Template)>,
    content_type: Option<String>,
    auth: Option<auth::Authenticator>,
    /// Smallest gap between the starts of two requests, from `rate-limit`.
    pace: Option<Duration>,
    last_start: Option<Instant>,
    timeout_ms: u64,
    budget: Duration,
    /// Requests in flight at once (`concurrency`).
    concurrency: usize,
    /// Whether the URL, method or a header has placeholders.
    templated: bool,
}

impl Sink for HttpSink {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "http".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::Sink,
            summary:
                "sends each event to an HTTP endpoint (URL/header templates, auth, rate limit)"
                    .into(),
            config_schema: config::SCHEMA.into(),
            needs: vec![Capability::Http],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        let parse = |what: &str, text: &str| {
            Template::parse(text)
                .map_err(|e| Error::fatal(format!("{what} template {text:?}: {e}")))
        };
        let url = parse("url", &config.url)?;
        client::split_url(&config.url).map_err(Error::fatal)?;
        let method = parse("method", &config.method)?;
        let mut headers = Vec::new();
        for (name, value) in &config.headers {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(Error::fatal(format!(
                    "headers: {name:?} is not a valid header name"
                )));
            }
            headers.push((name.clone(), parse(&format!("headers.{name}"), value)?));
        }
        let has_content_type = config
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        let pace = match config.rate_limit {
            Some(r) if r > 0.0 && r.is_finite() => Some(Duration::from_secs_f64(1.0 / r)),
            Some(r) => {
                return Err(Error::fatal(format!(
                    "rate-limit {r}: expected a positive number of requests per second"
                )));
            }
            None => None,
        };
        if !(1..=256).contains(&config.concurrency) {
            return Err(Error::fatal(format!(
                "concurrency {}: expected 1 to 256 requests in flight",
                config.concurrency
            )));
        }
        let templated = url.has_placeholders()
            || method.has_placeholders()
            || headers.iter().any(|(_, t)| t.has_placeholders());
        Ok(HttpSink {
            templated,
            url,
            method,
            headers,
            content_type: (!has_content_type).then_some(config.content_type),
            auth: config.auth.map(auth::Authenticator::new),
            pace,
            last_start: None,
            timeout_ms: config.timeout_ms,
            budget: Duration::from_millis(config.call_budget_ms),
            concurrency: config.concurrency as usize,
        })
    }

    fn write(&mut self, batch: Vec<Event>) -> Vec<Outcome> {
        let started = Instant::now();
        let mut outcomes: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
        // Batch order; an event leaves this queue when it is started or answered without a request.
        let mut waiting: VecDeque<usize> = (0..batch.len()).collect();
        let mut in_flight: Vec<Sent> = Vec::new();
        // Keys with a request in flight (their later events wait for it) and keys whose earlier event in this
        // batch was not delivered (their later events are not sent, so the key's order holds on retry).
        // Events without a key are one group: they too go out one after another, in order.
        let mut busy: HashSet<Option<&[u8]>> = HashSet::new();
        let mut failed: HashSet<Option<&[u8]>> = HashSet::new();
        loop {
            let mut position = 0;
            while in_flight.len() < self.concurrency && position < waiting.len() {
                let index = waiting[position];
                let key = batch[index].key.as_deref();
                if busy.contains(&key) {
                    position += 1;
                    continue;
                }
                if failed.contains(&key) {
                    waiting.remove(position);
                    outcomes[index] = Some(Outcome::Retryable(
                        "not attempted: an earlier event with the same key in this batch was not delivered, \
                         and this one must follow it; retry-after=0s"
                            .into(),
                    ));
                    continue;
                }
                waiting.remove(position);
                let start_at = self.next_start();
                if start_at.duration_since(started) >= self.budget {
                    outcomes[index] = Some(Outcome::Retryable(format!(
                        "not attempted: the batch would pass its time budget of {} ms (call-budget-ms) because of \
                         the rate limit or a slow endpoint; retry-after=0s",
                        self.budget.as_millis()
                    )));
                    continue;
                }
                let now = Instant::now();
                if start_at > now {
                    std::thread::sleep(start_at - now);
                }
                self.last_start = Some(Instant::now());
                match self.start(index, &batch[index]) {
                    Ok(sent) => {
                        busy.insert(key);
                        in_flight.push(sent);
                    }
                    Err(outcome) => {
                        failed.insert(key);
                        outcomes[index] = Some(outcome);
                    }
                }
            }
            if in_flight.is_empty() {
                break;
            }
            let mut ready = poll(&in_flight.iter().map(|s| s.request.pollable()).collect::<Vec<_>>());
            ready.sort_unstable_by(|a, b| b.cmp(a));
            for at in ready {
                let sent = in_flight.remove(at as usize);
                let index = sent.index;
                let outcome = self.finish(&batch[index], sent);
                let key = batch[index].key.as_deref();
                busy.remove(&key);
                if !matches!(outcome, Outcome::Ok) {
                    failed.insert(key);
                }
                outcomes[index] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Retryable("not attempted; retry-after=0s".into())))
            .collect()
    }
}

/// A request on its way, with what is needed to read its answer (and to send it again after a 401).
struct Sent {
    index: usize,
    method: String,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    fresh_token: bool,
    request: client::InFlight,
}

impl HttpSink {
    /// When the next request may start under the rate limit (now, without one).
    fn next_start(&self) -> Instant {
        let now = Instant::now();
        match (self.pace, self.last_start) {
            (Some(pace), Some(last)) => (last + pace).max(now),
            _ => now,
        }
    }

    /// Fills the templates for `event` and sends its request.
    fn start(&mut self, index: usize, event: &Event) -> Result<Sent, Outcome> {
        // The payload is parsed only when some template reads from it.
        let payload: Option<serde_json::Value> = if self.templated {
            serde_json::from_slice(&event.payload).ok()
        } else {
            None
        };
        let record = Record {
            payload: payload.as_ref(),
            id: &event.id,
            source: &event.source,
            detail_type: &event.detail_type,
            time: &event.time,
        };
        let filled = (|| {
            let url = self
                .url
                .fill(&record, Context::Url)
                .map_err(|e| format!("url: {e}"))?;
            let method = self
                .method
                .fill(&record, Context::Header)
                .map_err(|e| format!("method: {e}"))?;
            let mut headers = Vec::with_capacity(self.headers.len() + 2);
            for (name, t) in &self.headers {
                headers.push((
                    name.clone(),
                    t.fill(&record, Context::Header)
                        .map_err(|e| format!("headers.{name}: {e}"))?
                        .into_bytes(),
                ));
            }
            if let Some(ct) = &self.content_type {
                headers.push(("content-type".to_owned(), ct.clone().into_bytes()));
            }
            Ok::<_, String>((url, method, headers))
        })();
        let (url, method, headers) = filled.map_err(Outcome::Fatal)?;
        self.send(index, method, url, headers, &event.payload)
    }

    /// Sends one request, with the auth header (fetching a token first when there is none cached).
    fn send(
        &mut self,
        index: usize,
        method: String,
        url: String,
        headers: Vec<(String, Vec<u8>)>,
        body: &[u8],
    ) -> Result<Sent, Outcome> {
        let mut with_auth = headers.clone();
        let mut fresh_token = false;
        if let Some(auth) = &mut self.auth {
            let (name, value, fresh) = auth.header(self.timeout_ms)?;
            fresh_token = fresh;
            with_auth.push((name, value));
        }
        match client::start(&method, &url, &with_auth, body, self.timeout_ms) {
            Ok(request) => Ok(Sent {
                index,
                method,
                url,
                headers,
                fresh_token,
                request,
            }),
            Err(failure) => Err(failure_outcome(&method, &url, failure)),
        }
    }

    /// Reads the answer to `sent`; a cached token the endpoint no longer accepts is replaced and the request sent
    /// once more.
    fn finish(&mut self, event: &Event, sent: Sent) -> Outcome {
        let Sent {
            index,
            method,
            url,
            headers,
            fresh_token,
            request,
        } = sent;
        let response = match request.finish(retryable_status) {
            Ok(r) => r,
            Err(failure) => return failure_outcome(&method, &url, failure),
        };
        if response.status == 401
            && !fresh_token
            && let Some(auth) = &mut self.auth
            && auth.invalidate()
        {
            let again = match self.send(index, method.clone(), url.clone(), headers, &event.payload) {
                Ok(again) => again,
                Err(outcome) => return outcome,
            };
            return match again.request.finish(retryable_status) {
                Ok(r) if r.status == 401 => Outcome::Fatal(format!(
                    "{method} {url}: 401 Unauthorized even with a freshly fetched token"
                )),
                Ok(r) => classify(&method, &url, &r),
                Err(failure) => failure_outcome(&method, &url, failure),
            };
        }
        classify(&method, &url, &response)
    }
}

fn failure_outcome(method: &str, url: &str, failure: client::Failure) -> Outcome {
    match failure {
        client::Failure::Transient(m) => Outcome::Retryable(format!("{method} {url}: {m}")),
        client::Failure::Fatal(m) => Outcome::Fatal(format!("{method} {url}: {m}")),
    }
}

/// Whether a response with this status may be retried, so that [`classify`] reads its Retry-After (the only
/// statuses whose headers are read).
fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// The outcome of one response.
fn classify(method: &str, url: &str, response: &client::Response) -> Outcome {
    let status = response.status;
    if (200..300).contains(&status) {
        return Outcome::Ok;
    }
    let body = String::from_utf8_lossy(&response.body);
    let snippet: String = body.chars().take(200).collect();
    let mut message = format!("{method} {url} answered {status}: {snippet}");
    if retryable_status(status) {
        if let Some(secs) = response
            .header("retry-after")
            .and_then(|v| retry_after_seconds(&v))
        {
            message.push_str(&format!("; retry-after={secs}s"));
        }
        Outcome::Retryable(message)
    } else {
        Outcome::Fatal(message)
    }
}

/// Retry-After as seconds from now: either delta-seconds or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn retry_after_seconds(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = parse_http_date(value)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some((at - now).max(0) as u64)
}

fn parse_http_date(s: &str) -> Option<i64> {
    // IMF-fixdate, the only form servers may send: `Sun, 06 Nov 1994 08:49:37 GMT`.
    let mut it = s.split_whitespace().skip(1);
    let day: i64 = it.next()?.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == it.next().unwrap_or_default())? as i64
        + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

export_sink!(HttpSink);
