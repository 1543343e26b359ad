//! Targets the router delivers to: a WebAssembly sink connector, or another bus topic (`builtin:topic`, done
//! natively because it only needs the bus, which connectors cannot reach).

use std::sync::Arc;
use std::time::Duration;

use busbar_runtime::bus::{Bus, Record, partition_for_key};
use busbar_runtime::host::{Event, Header, Outcome as WitOutcome};
use busbar_runtime::router::{Delivery, Outcome, Target};

use super::actor::TaskHandle;

/// A sink connector's instances (`tasks`). Calls to one instance are serialised; a batch is split over the
/// instances and the parts are delivered at once. With per-key ordering an event goes to the instance its key
/// hashes to (keyless events by their id), so events of one key stay in order on one instance.
pub struct WasmTarget {
    tasks: Vec<TaskHandle>,
    by_key: bool,
}

impl WasmTarget {
    pub fn new(tasks: Vec<TaskHandle>, by_key: bool) -> Self {
        assert!(!tasks.is_empty(), "a target has at least one instance");
        Self { tasks, by_key }
    }

    /// Which instance delivers `batch[index]`.
    fn instance(&self, index: usize, delivery: &Delivery, len: usize) -> usize {
        let n = self.tasks.len();
        if !self.by_key {
            return index * n / len.max(1);
        }
        let key = delivery.key.as_deref().unwrap_or(delivery.event_id.as_bytes());
        partition_for_key(key, n as i32) as usize
    }
}

fn to_event(d: &Delivery) -> Event {
    Event {
        id: d.event_id.clone(),
        source: String::new(),
        detail_type: String::new(),
        time: String::new(),
        key: d.key.as_ref().map(|k| k.to_vec()),
        headers: Vec::<Header>::new(),
        payload: d.payload.to_vec(),
    }
}

async fn write(task: &TaskHandle, events: Vec<Event>) -> Vec<Outcome> {
    let len = events.len();
    match task.write(events).await {
        Ok(outcomes) => outcomes.into_iter().map(convert).collect(),
        // A connector restarting after a failure: wait for it rather than spend the retry budget meanwhile.
        Err(error) => match error.retry_after {
            Some(retry_after) => vec![Outcome::Deferred { reason: error.message, retry_after }; len],
            None => vec![Outcome::Retryable { error: error.message, retry_after: None }; len],
        },
    }
}

impl Target for WasmTarget {
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Outcome> {
        if self.tasks.len() == 1 {
            return write(&self.tasks[0], batch.iter().map(to_event).collect()).await;
        }
        let mut parts: Vec<(Vec<usize>, Vec<Event>)> = vec![(Vec::new(), Vec::new()); self.tasks.len()];
        for (index, delivery) in batch.iter().enumerate() {
            let part = &mut parts[self.instance(index, delivery, batch.len())];
            part.0.push(index);
            part.1.push(to_event(delivery));
        }
        let mut calls = tokio::task::JoinSet::new();
        for ((indexes, events), task) in parts.into_iter().zip(&self.tasks) {
            if !indexes.is_empty() {
                let task = task.clone();
                calls.spawn(async move { (indexes, write(&task, events).await) });
            }
        }
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        while let Some(joined) = calls.join_next().await {
            let Ok((indexes, part)) = joined else { continue };
            let mut part = part.into_iter();
            for index in indexes {
                outcomes[index] = Some(part.next().unwrap_or(Outcome::Retryable {
                    error: "the connector returned fewer outcomes than records".into(),
                    retry_after: None,
                }));
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Retryable { error: "the delivery task failed".into(), retry_after: None }))
            .collect()
    }
}

fn convert(outcome: WitOutcome) -> Outcome {
    match outcome {
        WitOutcome::Ok => Outcome::Delivered,
        // A record the connector did not try (it must follow one that failed, or the call ran out of time)
        // costs no attempt.
        WitOutcome::Retryable(error) if error.starts_with("not attempted") => {
            let retry_after = retry_after(&error).unwrap_or_default();
            Outcome::Deferred { reason: error, retry_after }
        }
        WitOutcome::Retryable(error) => {
            let retry_after = retry_after(&error);
            Outcome::Retryable { error, retry_after }
        }
        WitOutcome::Fatal(error) => Outcome::Fatal { error },
    }
}

/// Connectors pass a target's back-off hint (an HTTP `Retry-After`) in the message as `retry-after=<n>s`.
fn retry_after(message: &str) -> Option<Duration> {
    let rest = &message[message.find("retry-after=")? + "retry-after=".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let seconds: f64 = digits.parse().ok()?;
    rest[digits.len()..].starts_with('s').then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// `builtin:topic`: appends each payload to another bus topic, keeping the key.
pub struct TopicTarget<B> {
    pub bus: Arc<B>,
    pub topic: String,
}

impl<B: Bus> Target for TopicTarget<B> {
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            let record = Record {
                key: delivery.key.clone(),
                value: Some(delivery.payload.clone()),
                headers: vec![("busbar.event-id".into(), Some(delivery.event_id.clone().into()))],
                timestamp_ms: None,
            };
            outcomes.push(match self.bus.produce(&self.topic, None, record).await {
                Ok(_) => Outcome::Delivered,
                Err(err) if err.retryable => Outcome::Retryable { error: err.to_string(), retry_after: None },
                Err(err) => Outcome::Fatal { error: err.to_string() },
            });
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_hint_is_read_from_the_message() {
        assert_eq!(retry_after("HTTP 429 Too Many Requests (retry-after=3s)"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("HTTP 503 retry-after=0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("HTTP 503"), None);
        assert_eq!(retry_after("retry-after=soon"), None);
    }
}
