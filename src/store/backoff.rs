//! Bounded retries with exponential backoff and full jitter.
//!
//! After the `n`-th failed attempt (n ≥ 1) a writer sleeps a uniformly random time in
//! `[0, min(cap, base · 2^(n-1)))` — "full jitter" (Brooker, *Exponential Backoff and Jitter*,
//! AWS Architecture Blog, 2015): colliding writers spread out instead of colliding again in
//! lock-step, and the expected wait stays half the exponential bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How often and how patiently the fold loop retries a shard after a conflict or a store
/// error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Read-fold-write attempts per shard before giving up with [`Error::Contended`] (or the
    /// last store error). At least 1.
    pub max_attempts: u32,
    /// Upper bound of the first sleep.
    pub base_delay: Duration,
    /// Upper bound of any sleep.
    pub max_delay: Duration,
    /// How long one fold may take, retries and the compactions it runs included: past it, the
    /// events not yet applied come back `Failed` with [`Error::DeadlineExceeded`] (redeliver
    /// them). Default 10 s — well under a Lambda function's usual timeout; a handler passes its
    /// own remaining time with `Metric::fold_by` / `Series::fold_by`.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 16 attempts, 2 ms first bound, 500 ms cap, a 10 s deadline per fold.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 16,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(500),
            deadline: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Checks the policy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `max_attempts` is 0, `deadline` is zero or
    /// `base_delay > max_delay`.
    pub fn validate(&self) -> Result<()> {
        if self.max_attempts == 0 {
            return Err(Error::InvalidParameter {
                name: "max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        if self.deadline.is_zero() {
            return Err(Error::InvalidParameter {
                name: "deadline",
                reason: "must be more than zero".into(),
            });
        }
        if self.base_delay > self.max_delay {
            return Err(Error::InvalidParameter {
                name: "base_delay",
                reason: "must not exceed max_delay".into(),
            });
        }
        Ok(())
    }

    /// The (random) sleep after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        let bound = self
            .base_delay
            .saturating_mul(1 << shift)
            .min(self.max_delay);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(jitter() % nanos)
    }

    /// Sleeps [`delay`](Self::delay)`(attempt)`.
    pub async fn sleep(&self, attempt: u32) {
        let d = self.delay(attempt);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// A cheap random number for jitter: SplitMix64 over a process-wide counter seeded from the
/// clock and the process id (not cryptographic; it only has to differ between writers).
fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    if s == 0 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        s = now ^ (u64::from(std::process::id()) << 32);
        STATE.store(s, Ordering::Relaxed);
    }
    let mut z = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_exponential_bound_and_the_cap() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            let bound = p.base_delay.saturating_mul(1 << (attempt - 1).min(30));
            let d = p.delay(attempt);
            assert!(d < bound.min(p.max_delay), "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn delays_are_spread_not_constant() {
        let p = RetryPolicy::default();
        let mut seen: Vec<Duration> = (0..64).map(|_| p.delay(6)).collect();
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 32, "only {} distinct delays", seen.len());
    }

    #[test]
    fn zero_attempts_and_inverted_delays_are_refused() {
        let mut p = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(matches!(p.validate(), Err(Error::InvalidParameter { .. })));
        p.max_attempts = 1;
        p.base_delay = p.max_delay * 2;
        assert!(matches!(p.validate(), Err(Error::InvalidParameter { .. })));
    }
}
