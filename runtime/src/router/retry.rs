//! Retry policy of a target: how often and how long a failing delivery is retried before it is dead-lettered.

use std::time::Duration;

/// Exponential backoff with jitter, bounded by attempts and by the age of the first failure.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retry.
    pub max_attempts: u32,
    /// Give up once the first failure is this old.
    pub max_age: Duration,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any delay.
    pub max_backoff: Duration,
    /// Growth factor between retries.
    pub multiplier: f64,
    /// Wait a random time between zero and the computed delay ("full jitter"), so that many failing records
    /// do not retry in lock-step.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// EventBridge's defaults: 185 attempts over at most 24 hours.
    fn default() -> Self {
        Self {
            max_attempts: 185,
            max_age: Duration::from_secs(24 * 3600),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (1 = the first retry): `initial * multiplier^(attempt-1)`, capped
    /// at `max_backoff`, then drawn uniformly from `[0, d]` when jittered. A target's `Retry-After` wins when it
    /// is longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.multiplier.powi(attempt.saturating_sub(1).min(64) as i32);
        let base = self.initial_backoff.as_secs_f64() * exp;
        let capped = base.min(self.max_backoff.as_secs_f64());
        let jittered = if self.jitter { capped * fastrand::f64() } else { capped };
        let delay = Duration::from_secs_f64(jittered);
        match retry_after {
            Some(after) => delay.max(after),
            None => delay,
        }
    }

    /// Whether to stop after `attempts` attempts when the first failure happened `age` ago.
    pub fn exhausted(&self, attempts: u32, age: Duration) -> bool {
        attempts >= self.max_attempts || age >= self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_age: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: true,
        }
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_bounds() {
        let p = policy();
        for (attempt, full_ms) in [(1, 100.0), (2, 200.0), (3, 400.0), (4, 800.0), (5, 1000.0), (30, 1000.0)] {
            for _ in 0..50 {
                let d = p.delay(attempt, None).as_secs_f64() * 1000.0;
                assert!((0.0..=full_ms + 1e-6).contains(&d), "attempt {attempt}: {d} ms");
            }
            let fixed = RetryPolicy { jitter: false, ..policy() };
            let d = fixed.delay(attempt, None).as_secs_f64() * 1000.0;
            assert!((d - full_ms).abs() < 1e-3, "attempt {attempt}: {d} ms without jitter");
        }
    }

    #[test]
    fn retry_after_is_honoured() {
        let p = policy();
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn gives_up_on_attempts_or_age() {
        let p = policy();
        assert!(!p.exhausted(4, Duration::from_secs(1)));
        assert!(p.exhausted(5, Duration::from_secs(1)));
        assert!(p.exhausted(1, Duration::from_secs(10)));
    }
}
