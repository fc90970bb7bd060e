//! Rate limiting: one GCRA `RateLimiter` trait, in process (governor) or in Redis (one Lua
//! script), a fallback from Redis to in process, and the `Limits` service the HTTP layer and
//! the auth flows call.

mod fallback;
pub mod limits;
pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use fallback::FallbackLimiter;
pub use limits::{Limits, account_action};
pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

/// A limit: at most `limit` requests in a burst, replenished evenly over `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests allowed in a burst (and per `period` on average).
    pub limit: u32,
    /// Window in which `limit` requests are allowed.
    pub period: Duration,
}

impl Quota {
    /// `limit` requests per `period`.
    pub const fn new(limit: u32, period: Duration) -> Self {
        Self { limit, period }
    }

    /// `limit` requests per minute.
    pub const fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    /// The burst size, never zero (config validation refuses 0; this keeps maths panic-free).
    pub fn burst(&self) -> u32 {
        self.limit.max(1)
    }

    /// GCRA's emission interval `T`: one request is replenished every `period / limit`.
    pub fn emission_interval(&self) -> Duration {
        (self.period / self.burst()).max(Duration::from_micros(1))
    }
}

/// The outcome of one check, with what the `RateLimit-*` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The quota's burst size (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests still allowed right now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Time until the quota is fully replenished (`RateLimit-Reset`).
    pub reset_after: Duration,
    /// For a refusal: time until the next request would be allowed (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// Which of two decisions the headers should describe: a refusal, else the one with the
    /// fewest requests left (ties: the one that takes longer to reset).
    pub fn tighter(self, other: Decision) -> Decision {
        let key = |d: &Decision| (d.allowed, d.remaining, std::cmp::Reverse(d.reset_after));
        if key(&other) < key(&self) {
            other
        } else {
            self
        }
    }
}

/// Why a limiter could not decide (only remote limiters fail).
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The backend answered with an error or not at all.
    #[error("rate limiter backend unavailable: {0}")]
    Unavailable(String),
}

/// A GCRA rate limiter over string keys. Time comes from the application's injected clock,
/// which each implementation holds (governor reads a clock object, not a per-call time).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request against `key` under `quota` and says whether it is allowed.
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, LimitError>;
}

/// Rounds a duration up to whole seconds, as the headers carry seconds.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, remaining: u32, reset: u64) -> Decision {
        Decision {
            allowed,
            limit: 10,
            remaining,
            reset_after: Duration::from_secs(reset),
            retry_after: None,
        }
    }

    #[test]
    fn the_tighter_decision_is_a_refusal_then_the_one_with_fewer_requests_left() {
        let open = decision(true, 9, 1);
        let low = decision(true, 2, 1);
        let refused = decision(false, 0, 5);
        assert_eq!(open.tighter(low), low);
        assert_eq!(low.tighter(open), low);
        assert_eq!(low.tighter(refused), refused);
        assert_eq!(
            decision(true, 2, 1).tighter(decision(true, 2, 30)),
            decision(true, 2, 30)
        );
    }

    #[test]
    fn seconds_are_rounded_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::from_millis(2001)), 3);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }

    #[test]
    fn the_emission_interval_spreads_the_limit_over_the_period() {
        assert_eq!(
            Quota::per_minute(600).emission_interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            Quota::new(0, Duration::from_secs(1)).emission_interval(),
            Duration::from_secs(1)
        );
    }
}
