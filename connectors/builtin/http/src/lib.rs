//! `builtin:http`: a sink that sends each event to an HTTP endpoint, like an EventBridge API destination.
//!
//! Module map:
//! - `config`: the config and its JSON Schema.
//! - `template`: `{<JSONPath>}` templates for the URL, method and header values.
//! - `client`: `wasi:http` requests with timeouts (the OAuth token request).
//! - `auth`: basic, API key, and OAuth client credentials with a cached token.
//!
//! Up to `concurrency` requests are in flight at once, for events of different keys; events with the same key (and
//! events without a key, as one group) are sent one after another, in batch order, and once one of them fails the
//! group's later events in the batch are not sent (answered `not attempted`), so a retry keeps their order.
//! Requests go out through `busbar:connector/http-batch`: those that may start are started in one call, and
//! answers are collected as they arrive.
//!
//! Outcome per record: 2xx ok; 408, 429, 5xx and connection failures retryable (with `retry-after=<n>s` when
//! the endpoint sent Retry-After, so the host can wait that long); other statuses fatal.

mod auth;
// Shared with `builtin:http-poll`, which reads response headers; this sink's token requests do not.
#[allow(dead_code)]
mod client;
mod config;
mod template;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use busbar_connector_sdk::bindings::busbar::connector::http_batch::{self, HttpError};
use busbar_connector_sdk::bindings::busbar::connector::types::Header;
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
        let mut flight = Flight::default();
        loop {
            let mut position = 0;
            let mut starting: Vec<(Sent, http_batch::Request)> = Vec::new();
            while flight.sent.len() + starting.len() < self.concurrency && position < waiting.len()
            {
                let index = waiting[position];
                let key = batch[index].key.as_deref();
                if flight.busy.contains(&key) {
                    position += 1;
                    continue;
                }
                if flight.failed.contains(&key) {
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
                flight.busy.insert(key);
                match self.prepare(index, &batch[index]) {
                    Ok(request) => starting.push(request),
                    Err(outcome) => flight.settle(&batch, index, outcome, &mut outcomes),
                }
                if self.pace.is_some() {
                    // Under a rate limit each request leaves at its own time, not with the next ones.
                    flight.launch(&batch, std::mem::take(&mut starting), &mut outcomes);
                }
            }
            flight.launch(&batch, starting, &mut outcomes);
            if flight.sent.is_empty() {
                break;
            }
            let answers = http_batch::wait();
            if answers.is_empty() {
                // The host has nothing outstanding for this instance, so what is still listed will never be
                // answered: try those events again rather than wait for the call's deadline.
                for (_, sent) in std::mem::take(&mut flight.sent) {
                    let outcome = Outcome::Retryable(format!(
                        "{} {}: the host returned no answer for this request",
                        sent.method, sent.url
                    ));
                    flight.settle(&batch, sent.index, outcome, &mut outcomes);
                }
                continue;
            }
            for (id, answer) in answers {
                let Some(sent) = flight.sent.remove(&id) else {
                    continue;
                };
                let index = sent.index;
                match self.answer(&batch[index], sent, answer) {
                    Answered::Done(outcome) => flight.settle(&batch, index, outcome, &mut outcomes),
                    Answered::Again(request) => flight.launch(&batch, vec![request], &mut outcomes),
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| Outcome::Retryable("not attempted; retry-after=0s".into()))
            })
            .collect()
    }
}

/// The requests of one `write` call on their way, and the state of their keys.
#[derive(Default)]
struct Flight<'a> {
    /// Started requests by the host's id.
    sent: HashMap<u64, Sent>,
    /// Keys with a request in flight: their later events wait for it. Events without a key are one group: they
    /// too go out one after another, in order.
    busy: HashSet<Option<&'a [u8]>>,
    /// Keys whose earlier event in this batch was not delivered: their later events are not sent, so the key's
    /// order holds on retry.
    failed: HashSet<Option<&'a [u8]>>,
}

impl<'a> Flight<'a> {
    /// Starts `requests` in one call to the host.
    fn launch(
        &mut self,
        batch: &'a [Event],
        requests: Vec<(Sent, http_batch::Request)>,
        outcomes: &mut [Option<Outcome>],
    ) {
        if requests.is_empty() {
            return;
        }
        let (sent, requests): (Vec<Sent>, Vec<http_batch::Request>) = requests.into_iter().unzip();
        for (sent, started) in sent.into_iter().zip(http_batch::start(&requests)) {
            match started {
                Ok(id) => {
                    self.sent.insert(id, sent);
                }
                Err(error) => {
                    let outcome = error_outcome(&sent.method, &sent.url, error);
                    self.settle(batch, sent.index, outcome, outcomes);
                }
            }
        }
    }

    /// Records the outcome of `batch[index]` and frees its key (or marks it failed).
    fn settle(
        &mut self,
        batch: &'a [Event],
        index: usize,
        outcome: Outcome,
        outcomes: &mut [Option<Outcome>],
    ) {
        let key = batch[index].key.as_deref();
        self.busy.remove(&key);
        if !matches!(outcome, Outcome::Ok) {
            self.failed.insert(key);
        }
        outcomes[index] = Some(outcome);
    }
}

/// A request on its way, with what is needed to read its answer (and to send it again after a 401).
struct Sent {
    index: usize,
    method: String,
    url: String,
    /// The filled headers, without the auth header (a re-send gets a new one); kept only with auth, the one case
    /// that sends a request again.
    headers: Vec<Header>,
    /// The auth header carried a token fetched for this request (a 401 then is final).
    fresh_token: bool,
    /// Sent again with a new token after the cached one got a 401.
    after_401: bool,
}

enum Answered {
    Done(Outcome),
    /// Send again (with a fresh token).
    Again((Sent, http_batch::Request)),
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

    /// Fills the templates for `event` and builds its request.
    fn prepare(
        &mut self,
        index: usize,
        event: &Event,
    ) -> Result<(Sent, http_batch::Request), Outcome> {
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
                headers.push(Header {
                    name: name.clone(),
                    value: t
                        .fill(&record, Context::Header)
                        .map_err(|e| format!("headers.{name}: {e}"))?
                        .into_bytes(),
                });
            }
            if let Some(ct) = &self.content_type {
                headers.push(Header {
                    name: "content-type".to_owned(),
                    value: ct.clone().into_bytes(),
                });
            }
            Ok::<_, String>((url, method, headers))
        })();
        let (url, method, headers) = filled.map_err(Outcome::Fatal)?;
        let sent = Sent {
            index,
            method,
            url,
            headers,
            fresh_token: false,
            after_401: false,
        };
        self.request(sent, &event.payload)
    }

    /// The request for `sent`, with the auth header (fetching a token first when there is none cached).
    fn request(
        &mut self,
        mut sent: Sent,
        body: &[u8],
    ) -> Result<(Sent, http_batch::Request), Outcome> {
        let headers = match &mut self.auth {
            Some(auth) => {
                let (name, value, fresh) = auth.header(self.timeout_ms)?;
                sent.fresh_token = fresh;
                let mut headers = Vec::with_capacity(sent.headers.len() + 1);
                headers.extend_from_slice(&sent.headers);
                headers.push(Header { name, value });
                headers
            }
            // Only a request with auth is sent again (after a 401), so without auth the request takes them.
            None => std::mem::take(&mut sent.headers),
        };
        let request = http_batch::Request {
            method: sent.method.clone(),
            url: sent.url.clone(),
            headers,
            body: body.to_vec(),
            timeout_ms: self.timeout_ms.min(u64::from(u32::MAX)) as u32,
        };
        Ok((sent, request))
    }

    /// The outcome of `sent`'s answer; a cached token the endpoint no longer accepts is replaced and the request
    /// sent once more.
    fn answer(
        &mut self,
        event: &Event,
        sent: Sent,
        answer: Result<http_batch::Response, HttpError>,
    ) -> Answered {
        let response = match answer {
            Ok(response) => response,
            Err(error) => return Answered::Done(error_outcome(&sent.method, &sent.url, error)),
        };
        if response.status == 401 {
            if sent.after_401 {
                return Answered::Done(Outcome::Fatal(format!(
                    "{} {}: 401 Unauthorized even with a freshly fetched token",
                    sent.method, sent.url
                )));
            }
            if !sent.fresh_token
                && let Some(auth) = &mut self.auth
                && auth.invalidate()
            {
                let again = Sent {
                    after_401: true,
                    ..sent
                };
                return match self.request(again, &event.payload) {
                    Ok(request) => Answered::Again(request),
                    Err(outcome) => Answered::Done(outcome),
                };
            }
        }
        Answered::Done(classify(&sent.method, &sent.url, &response))
    }
}

/// The outcome of a request that got no response.
fn error_outcome(method: &str, url: &str, error: HttpError) -> Outcome {
    match error {
        HttpError::Denied(m) => Outcome::Fatal(format!("{method} {url}: HTTP request denied: {m}")),
        HttpError::Invalid(m) => Outcome::Fatal(format!("{method} {url}: {m}")),
        HttpError::Failed(m) => Outcome::Retryable(format!("{method} {url}: {m}")),
    }
}

/// Whether a response with this status may be retried, so that [`classify`] reads its Retry-After (the only
/// statuses whose headers are read).
fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// The outcome of one response.
fn classify(method: &str, url: &str, response: &http_batch::Response) -> Outcome {
    let status = response.status;
    if (200..300).contains(&status) {
        return Outcome::Ok;
    }
    let body = String::from_utf8_lossy(&response.body);
    let snippet: String = body.chars().take(200).collect();
    let mut message = format!("{method} {url} answered {status}: {snippet}");
    if retryable_status(status) {
        if let Some(secs) = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
            .and_then(|h| retry_after_seconds(&String::from_utf8_lossy(&h.value)))
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
