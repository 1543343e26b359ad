//! What a lane delivers to: a target takes a batch and says, per record, whether it was delivered.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

/// One record handed to a target: the transformed payload plus what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub key: Option<Bytes>,
    /// The payload after the input transformer (or the whole event when there is none).
    pub payload: Bytes,
    /// The envelope's `id`, for targets that de-duplicate.
    pub event_id: String,
}

/// The result for one record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth trying again later (5xx, 429, timeouts, a connector that trapped). `retry_after` is the target's
    /// own hint, such as an HTTP `Retry-After`.
    Retryable { error: String, retry_after: Option<Duration> },
    /// Will never succeed (a 4xx, a constraint violation): dead-letter it now.
    Fatal { error: String },
    /// Not attempted: the target cannot take records for `retry_after` (its connector is restarting after a
    /// failure). Costs no attempt of the retry policy; the policy's `max_age` still applies.
    Deferred { reason: String, retry_after: Duration },
}

/// A delivery target: a sink connector instance, or another bus topic.
///
/// `deliver` returns exactly one outcome per record, in order. A failure of the whole call (a trap, a
/// timeout) is reported as the same `Retryable` outcome for every record; the lane then retries those records
/// one at a time, so one record that makes the connector fail (a poison pill) cannot take its batch with it.
pub trait Target: Send + Sync + 'static {
    fn deliver(&self, batch: &[Delivery]) -> impl Future<Output = Vec<Outcome>> + Send;
}
