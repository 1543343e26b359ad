//! Per-instance limits and the supervisor's restart policy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits every instance of a connector runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest linear memory an instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Longest one call (`open`, `write`, `poll`, `handle`, `close`) may take, in milliseconds.
    pub call_timeout_ms: u64,
    /// First restart delay after a failure, in milliseconds; doubled after each further failure.
    pub backoff_initial_ms: u64,
    /// Largest restart delay, in milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 64 << 20, call_timeout_ms: 10_000, backoff_initial_ms: 200, backoff_max_ms: 60_000 }
    }
}

impl Limits {
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// Delay before restart number `failures` (1 = first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let ms = self.backoff_initial_ms.saturating_mul(1u64 << exp).min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let l = Limits { backoff_initial_ms: 100, backoff_max_ms: 1000, ..Limits::default() };
        let got: Vec<u64> = (1..=6).map(|n| l.backoff(n).as_millis() as u64).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
    }
}
