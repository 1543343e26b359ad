//! Targets the router delivers to: a WebAssembly sink connector, or another bus topic (`builtin:topic`, done
//! natively because it only needs the bus, which connectors cannot reach).

use std::sync::Arc;
use std::time::Duration;

use busbar_runtime::bus::{Bus, Record};
use busbar_runtime::host::{Event, Header, Outcome as WitOutcome};
use busbar_runtime::router::{Delivery, Outcome, Target};

use super::actor::TaskHandle;

/// A sink connector task. Calls are serialised: one instance handles one batch at a time.
pub struct WasmTarget {
    task: TaskHandle,
}

impl WasmTarget {
    pub fn new(task: TaskHandle) -> Self {
        Self { task }
    }
}

impl Target for WasmTarget {
    async fn deliver(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let events: Vec<Event> = batch
            .iter()
            .map(|d| Event {
                id: d.event_id.clone(),
                source: String::new(),
                detail_type: String::new(),
                time: String::new(),
                key: d.key.as_ref().map(|k| k.to_vec()),
                headers: Vec::<Header>::new(),
                payload: d.payload.to_vec(),
            })
            .collect();
        let result = self.task.write(events).await;
        match result {
            Ok(outcomes) => outcomes.into_iter().map(convert).collect(),
            Err(error) => {
                vec![Outcome::Retryable { error, retry_after: None }; batch.len()]
            }
        }
    }
}

fn convert(outcome: WitOutcome) -> Outcome {
    match outcome {
        WitOutcome::Ok => Outcome::Delivered,
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
