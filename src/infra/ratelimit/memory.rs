//! In-process GCRA: governor's keyed limiters, one per quota, driven by the injected clock.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    ops::Add,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
};

use async_trait::async_trait;
use governor::{
    clock::Reference, middleware::StateInformationMiddleware, nanos::Nanos,
    state::keyed::DashMapStateStore,
};

use super::{Decision, LimitError, Quota, RateLimiter};
use crate::infra::clock::Clock;

/// How often idle keys are evicted (by the injected clock), at the latest.
const SWEEP_EVERY_SECONDS: i64 = 30;

/// A point in time for governor: nanoseconds since the Unix epoch of the injected clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tick(u64);

impl Add<Nanos> for Tick {
    type Output = Tick;
    fn add(self, other: Nanos) -> Tick {
        Tick(self.0.saturating_add(other.as_u64()))
    }
}

impl Reference for Tick {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::from(self.0.saturating_sub(earlier.0))
    }
    fn saturating_sub(&self, duration: Nanos) -> Self {
        Tick(self.0.saturating_sub(duration.as_u64()))
    }
}

/// Governor's clock over ours, so tests that advance a `ManualClock` move limits too.
#[derive(Clone)]
pub struct InjectedClock(Arc<dyn Clock>);

impl governor::clock::Clock for InjectedClock {
    type Instant = Tick;
    fn now(&self) -> Tick {
        // Before 1970 or after 2554 cannot happen with a sane clock; clamp rather than panic.
        let nanos = self
            .0
            .now()
            .unix_timestamp_nanos()
            .clamp(0, i128::from(u64::MAX));
        Tick(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

type Keyed = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    InjectedClock,
    StateInformationMiddleware,
>;

/// Keyed GCRA limits held in this process. Memory stays bounded: a key is forgotten once its
/// bucket is full again (at most one `period` after its last request), swept periodically.
pub struct MemoryLimiter {
    clock: InjectedClock,
    by_quota: RwLock<HashMap<Quota, Arc<Keyed>>>,
    last_sweep: AtomicI64,
}

impl MemoryLimiter {
    /// A limiter reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let now = clock.now().unix_timestamp();
        Self {
            clock: InjectedClock(clock),
            by_quota: RwLock::default(),
            last_sweep: AtomicI64::new(now),
        }
    }

    /// Counts one request synchronously (no I/O happens here).
    pub fn check_now(&self, key: &str, quota: Quota) -> Decision {
        use governor::clock::Clock as _;
        self.sweep_if_due();
        let limiter = self.limiter(quota);
        let burst = quota.burst();
        let interval = quota.emission_interval();
        match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(burst);
                Decision {
                    allowed: true,
                    limit: burst,
                    remaining,
                    // governor does not expose the TAT; `(burst - remaining) * T` bounds it from
                    // above by less than one interval, so "full again by then" stays true.
                    reset_after: interval * (burst - remaining),
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Decision {
                    allowed: false,
                    limit: burst,
                    remaining: 0,
                    // The bucket is full `tau = (burst - 1) * T` after the next conforming time.
                    reset_after: wait + interval * (burst - 1),
                    retry_after: Some(wait),
                }
            }
        }
    }

    /// Keys currently held (all quotas).
    pub fn tracked_keys(&self) -> usize {
        self.by_quota
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|l| l.len())
            .sum()
    }

    /// Drops every key whose bucket is full again.
    pub fn evict_idle(&self) {
        let limiters: Vec<Arc<Keyed>> = self
            .by_quota
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn sweep_if_due(&self) {
        let now = self.clock.0.now().unix_timestamp();
        let last = self.last_sweep.load(Ordering::Relaxed);
        // One caller wins the exchange and sweeps; the others go on without waiting.
        if now - last >= SWEEP_EVERY_SECONDS
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.evict_idle();
        }
    }

    fn limiter(&self, quota: Quota) -> Arc<Keyed> {
        if let Some(limiter) = self
            .by_quota
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&quota)
        {
            return limiter.clone();
        }
        let mut map = self.by_quota.write().unwrap_or_else(|p| p.into_inner());
        map.entry(quota)
            .or_insert_with(|| {
                let burst = NonZeroU32::new(quota.burst()).unwrap_or(NonZeroU32::MIN);
                // `emission_interval` is at least 1 µs, so `with_period` always succeeds.
                let gcra = governor::Quota::with_period(quota.emission_interval())
                    .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                Arc::new(
                    governor::RateLimiter::dashmap_with_clock(gcra, self.clock.clone())
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone()
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, LimitError> {
        Ok(self.check_now(key, quota))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::infra::clock::ManualClock;

    fn limiter() -> (Arc<ManualClock>, MemoryLimiter) {
        let clock = Arc::new(ManualClock::starting_now());
        let limiter = MemoryLimiter::new(clock.clone());
        (clock, limiter)
    }

    const THREE_PER_3S: Quota = Quota::new(3, Duration::from_secs(3));

    #[test]
    fn a_full_bucket_allows_the_burst_then_refuses() {
        let (_, limiter) = limiter();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check_now("k", THREE_PER_3S))
            .inspect(|d| assert!(d.allowed))
            .map(|d| d.remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limiter.check_now("k", THREE_PER_3S);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.limit, 3);
        // One request comes back after one emission interval (period / limit).
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        // And the whole burst after the full period.
        assert_eq!(refused.reset_after, Duration::from_secs(3));
    }

    #[test]
    fn reset_grows_by_one_interval_per_request() {
        let (_, limiter) = limiter();
        let resets: Vec<Duration> = (0..3)
            .map(|_| limiter.check_now("k", THREE_PER_3S).reset_after)
            .collect();
        assert_eq!(
            resets,
            [1, 2, 3].map(Duration::from_secs),
            "after n requests the bucket is full again n intervals later"
        );
    }

    #[test]
    fn one_request_is_replenished_per_emission_interval() {
        let (clock, limiter) = limiter();
        for _ in 0..3 {
            assert!(limiter.check_now("k", THREE_PER_3S).allowed);
        }
        clock.advance(time::Duration::milliseconds(999));
        assert!(!limiter.check_now("k", THREE_PER_3S).allowed);
        clock.advance(time::Duration::milliseconds(1));
        let again = limiter.check_now("k", THREE_PER_3S);
        assert!(again.allowed);
        assert_eq!(again.remaining, 0);
        assert!(!limiter.check_now("k", THREE_PER_3S).allowed);
    }

    #[test]
    fn a_refusal_does_not_push_the_next_allowed_time_back() {
        let (clock, limiter) = limiter();
        for _ in 0..3 {
            limiter.check_now("k", THREE_PER_3S);
        }
        for _ in 0..10 {
            assert!(!limiter.check_now("k", THREE_PER_3S).allowed);
        }
        clock.advance(time::Duration::seconds(1));
        assert!(limiter.check_now("k", THREE_PER_3S).allowed);
    }

    #[test]
    fn an_idle_period_refills_the_whole_burst_but_no_more() {
        let (clock, limiter) = limiter();
        for _ in 0..3 {
            limiter.check_now("k", THREE_PER_3S);
        }
        clock.advance(time::Duration::hours(1));
        let first = limiter.check_now("k", THREE_PER_3S);
        assert_eq!(first.remaining, 2, "capacity is capped at the burst");
        assert!(limiter.check_now("k", THREE_PER_3S).allowed);
        assert!(limiter.check_now("k", THREE_PER_3S).allowed);
        assert!(!limiter.check_now("k", THREE_PER_3S).allowed);
    }

    #[test]
    fn keys_and_quotas_are_counted_separately() {
        let (_, limiter) = limiter();
        let one = Quota::new(1, Duration::from_secs(60));
        assert!(limiter.check_now("a", one).allowed);
        assert!(!limiter.check_now("a", one).allowed);
        assert!(limiter.check_now("b", one).allowed);
        assert!(limiter.check_now("a", THREE_PER_3S).allowed);
    }

    #[test]
    fn idle_keys_are_evicted_once_their_bucket_is_full_again() {
        let (clock, limiter) = limiter();
        for i in 0..100 {
            for _ in 0..3 {
                limiter.check_now(&format!("ip-{i}"), THREE_PER_3S);
            }
        }
        assert_eq!(limiter.tracked_keys(), 100);
        clock.advance(time::Duration::seconds(2));
        limiter.evict_idle();
        assert_eq!(limiter.tracked_keys(), 100, "buckets are not full yet");
        clock.advance(time::Duration::seconds(SWEEP_EVERY_SECONDS));
        // The sweep runs by itself on a later check once it is due.
        limiter.check_now("fresh", THREE_PER_3S);
        assert_eq!(limiter.tracked_keys(), 1);
    }
}
