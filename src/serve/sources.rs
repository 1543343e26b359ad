//! Source connectors feeding the bus: pull sources polled on an interval with a durable cursor, and push
//! sources (webhooks) answering HTTP requests only once their events are durable on the bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use busbar_runtime::bus::{Bus, BusError, Record, TopicSpec};
use busbar_runtime::envelope;
use busbar_runtime::host::{Event, Handled, Header, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{Mutex, Notify, watch};

use super::actor::TaskHandle;

/// The internal topic holding every pull source's cursor, keyed by `<pipeline>/<source>`. Compacted: the last
/// value per key is all that is read back, so the cleaner keeps it small.
pub const CURSOR_TOPIC: &str = "busbar.cursors";

/// Turns an event a source connector produced into a bus record carrying its envelope.
pub fn to_record(event: Event, default_source: &str) -> Record {
    let source = if event.source.is_empty() { default_source } else { &event.source };
    let detail_type = if event.detail_type.is_empty() { "event" } else { &event.detail_type };
    let id = (!event.id.is_empty()).then_some(event.id.as_str());
    let time = (!event.time.is_empty()).then_some(event.time.as_str());
    let value = envelope::new_event_json(source, detail_type, &event.payload, id, time);
    Record {
        key: event.key.map(Bytes::from),
        value: Some(Bytes::from(value)),
        headers: event.headers.into_iter().map(|h| (h.name, Some(Bytes::from(h.value)))).collect(),
        timestamp_ms: None,
    }
}

/// Durable cursors of pull sources, on the bus.
pub struct Cursors<B> {
    bus: Arc<B>,
    latest: Mutex<HashMap<String, String>>,
}

impl<B: Bus> Cursors<B> {
    /// Creates the cursor topic if needed and reads every cursor stored so far (the last value per key wins).
    pub async fn load(bus: Arc<B>) -> Result<Self, BusError> {
        let spec = TopicSpec {
            partitions: 1,
            configs: vec![("cleanup.policy".into(), "compact".into()), ("retention.ms".into(), "-1".into())],
        };
        bus.ensure_topic(CURSOR_TOPIC, &spec).await?;
        let (mut position, end) = bus.offsets(CURSOR_TOPIC, 0).await?;
        let mut latest = HashMap::new();
        while position < end {
            let records = bus.fetch(CURSOR_TOPIC, 0, position, 1 << 20, Duration::ZERO).await?;
            if records.is_empty() {
                break;
            }
            for fetched in records {
                position = fetched.offset + 1;
                let key = fetched.record.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned());
                match (key, fetched.record.value) {
                    (Some(key), Some(value)) => {
                        latest.insert(key, String::from_utf8_lossy(&value).into_owned());
                    }
                    (Some(key), None) => {
                        latest.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        Ok(Self { bus, latest: Mutex::new(latest) })
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        self.latest.lock().await.get(key).cloned()
    }

    /// Stores a cursor durably.
    pub async fn put(&self, key: &str, cursor: &str) -> Result<(), BusError> {
        let record = Record {
            key: Some(Bytes::copy_from_slice(key.as_bytes())),
            value: Some(Bytes::copy_from_slice(cursor.as_bytes())),
            headers: Vec::new(),
            timestamp_ms: None,
        };
        self.bus.produce(CURSOR_TOPIC, Some(0), record).await?;
        self.latest.lock().await.insert(key.to_owned(), cursor.to_owned());
        Ok(())
    }
}

/// A pull source: where it writes and how often it is polled.
pub struct PullSource<B> {
    pub pipeline: String,
    pub name: String,
    pub topic: String,
    pub task: TaskHandle,
    pub bus: Arc<B>,
    pub cursors: Arc<Cursors<B>>,
    pub interval: Duration,
    /// Polls at once when notified (PostgreSQL LISTEN/NOTIFY), instead of waiting for the interval.
    pub wake: Arc<Notify>,
}

/// Most events asked for in one poll.
const POLL_MAX: u32 = 500;

impl<B: Bus> PullSource<B> {
    /// Polls until `shutdown`. Events go to the bus first; the cursor is stored only after they are durable,
    /// so a crash re-reads (at-least-once) rather than skips.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let key = format!("{}/{}", self.pipeline, self.name);
        let default_source = format!("busbar.{}.{}", self.pipeline, self.name);
        let mut cursor = self.cursors.get(&key).await;
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !self.task.wait_running(&mut shutdown).await {
                return;
            }
            let result = self.task.poll(cursor.clone(), POLL_MAX).await;
            let wait = match result {
                Ok(polled) => {
                    failures = 0;
                    let full = polled.events.len() as u32 >= POLL_MAX;
                    let mut written = true;
                    for event in polled.events {
                        let record = to_record(event, &default_source);
                        if let Err(err) = self.produce_until_durable(record, &mut shutdown).await {
                            tracing::warn!(source = %self.name, error = %err, "stopping before the cursor moved");
                            written = false;
                            break;
                        }
                    }
                    if written && polled.cursor != cursor {
                        if let Some(next) = &polled.cursor
                            && let Err(err) = self.cursors.put(&key, next).await
                        {
                            tracing::error!(source = %self.name, error = %err, "cannot store the cursor");
                        }
                        cursor = polled.cursor;
                    }
                    if full { Duration::ZERO } else { self.interval }
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(pipeline = %self.pipeline, source = %self.name, error = %err, "poll failed");
                    (self.interval * failures.min(10)).min(Duration::from_secs(60))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn produce_until_durable(
        &self,
        record: Record,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), BusError> {
        loop {
            match self.bus.produce(&self.topic, None, record.clone()).await {
                Ok(_) => return Ok(()),
                Err(err) if err.retryable && !*shutdown.borrow() => {
                    tracing::warn!(topic = %self.topic, error = %err, "bus write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// A push source mounted under `/hooks/…`.
pub struct Webhook<B> {
    pub pipeline: String,
    pub name: String,
    pub topic: String,
    /// Where rejected requests go: `<bus topic>.<source>.dlq`.
    pub dead_letter: String,
    pub task: TaskHandle,
    pub bus: Arc<B>,
}

impl<B: Bus> Webhook<B> {
    /// Handles one request: the connector turns it into events and a response; the events are made durable
    /// before the response is returned. A request the connector rejects (4xx) is dead-lettered with the reason.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if self.task.run_state() != super::actor::RunState::Running {
            let mut response = json_response(
                503,
                &serde_json::json!({ "error": format!("the source {} is {:?}; try again later", self.name, self.task.run_state()).to_lowercase() }),
            );
            response.headers.push(Header { name: "retry-after".into(), value: b"5".to_vec() });
            return response;
        }
        let (Handled { response, events }, request) = match self.task.handle(request).await {
            Ok(answered) => answered,
            Err(err) => {
                tracing::warn!(pipeline = %self.pipeline, source = %self.name, error = %err, "webhook failed");
                return json_response(503, &serde_json::json!({ "error": err }));
            }
        };
        if (400..500).contains(&response.status) {
            self.dead_letter(&request, &response).await;
            return response;
        }
        let default_source = format!("busbar.{}.{}", self.pipeline, self.name);
        for event in events {
            let record = to_record(event, &default_source);
            if let Err(err) = self.bus.produce(&self.topic, None, record).await {
                tracing::error!(topic = %self.topic, error = %err, "webhook event not stored");
                return json_response(503, &serde_json::json!({ "error": format!("event not stored: {err}") }));
            }
        }
        response
    }

    async fn dead_letter(&self, request: &HttpRequest, response: &HttpResponse) {
        let reason = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
        let mut headers = vec![
            ("busbar.pipeline".to_owned(), Some(Bytes::from(self.pipeline.clone()))),
            ("busbar.source".to_owned(), Some(Bytes::from(self.name.clone()))),
            ("busbar.error".to_owned(), Some(Bytes::from(reason.clone()))),
            ("busbar.status".to_owned(), Some(Bytes::from(response.status.to_string()))),
            ("busbar.method".to_owned(), Some(Bytes::from(request.method.clone()))),
            ("busbar.path".to_owned(), Some(Bytes::from(request.path.clone()))),
        ];
        for Header { name, value } in &request.headers {
            headers.push((format!("http.{}", name.to_ascii_lowercase()), Some(Bytes::from(value.clone()))));
        }
        let record =
            Record { key: None, value: Some(Bytes::from(request.body.clone())), headers, timestamp_ms: None };
        let spec = TopicSpec { partitions: 1, configs: Vec::new() };
        let stored = match self.bus.ensure_topic(&self.dead_letter, &spec).await {
            Ok(()) => self.bus.produce(&self.dead_letter, Some(0), record).await.map(|_| ()),
            Err(err) => Err(err),
        };
        match stored {
            Ok(()) => tracing::warn!(source = %self.name, status = response.status, %reason,
                topic = %self.dead_letter, "webhook request rejected and dead-lettered"),
            Err(err) => tracing::error!(source = %self.name, error = %err, "rejected request not dead-lettered"),
        }
    }
}

pub fn json_response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![Header { name: "content-type".into(), value: b"application/json".to_vec() }],
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// PostgreSQL LISTEN/NOTIFY as the push mode of a pull source: each notification on `channel` wakes the poll at
/// once instead of at its next interval. The connection is re-opened when it drops, with one poll right after
/// (notifications sent while it was down are lost, the rows are not).
pub async fn listen_for_notifications(url: String, channel: String, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(%channel, error = %err, "cannot LISTEN; polling on the interval until it works");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(u64::from(failures.min(30)))) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            },
            _ = shutdown.changed() => return,
        };
        tracing::info!(%channel, "listening for PostgreSQL notifications");
        failures = 0;
        wake.notify_one();
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(_) => wake.notify_one(),
                    Err(err) => {
                        tracing::warn!(%channel, error = %err, "notification connection lost; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
