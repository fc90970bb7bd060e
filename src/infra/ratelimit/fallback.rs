//! A shared limiter that falls back to in-process limits when its backend fails.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::{Decision, LimitError, Quota, RateLimiter};

/// After a failure, the primary is not asked again for this long (real time): an outage costs
/// one bounded wait per interval, not one per request.
const RETRY_PRIMARY_AFTER: Duration = Duration::from_secs(1);
/// At most one warning per this interval while the primary keeps failing.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Health {
    skip_until: Option<Instant>,
    last_warning: Option<Instant>,
}

/// Asks `primary` (Redis); when it errors or times out, decides with `fallback` (in process).
/// Never fails, so a Redis outage can never turn into a 500.
pub struct FallbackLimiter {
    primary: Arc<dyn RateLimiter>,
    fallback: Arc<dyn RateLimiter>,
    health: Mutex<Health>,
}

impl FallbackLimiter {
    /// `primary`, with `fallback` standing in while it is down.
    pub fn new(primary: Arc<dyn RateLimiter>, fallback: Arc<dyn RateLimiter>) -> Self {
        Self {
            primary,
            fallback,
            health: Mutex::default(),
        }
    }

    fn primary_skipped(&self) -> bool {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health
            .skip_until
            .is_some_and(|until| Instant::now() < until)
    }

    fn primary_failed(&self, error: &LimitError) {
        let now = Instant::now();
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        health.skip_until = Some(now + RETRY_PRIMARY_AFTER);
        if health
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY)
        {
            health.last_warning = Some(now);
            tracing::warn!(%error, "shared rate limits unavailable; limiting in process");
        }
    }
}

#[async_trait]
impl RateLimiter for FallbackLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, LimitError> {
        if !self.primary_skipped() {
            match self.primary.check(key, quota).await {
                Ok(decision) => return Ok(decision),
                Err(e) => self.primary_failed(&e),
            }
        }
        metrics::counter!("boxoffice_rate_limit_fallbacks_total").increment(1);
        self.fallback.check(key, quota).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    struct Broken(AtomicU32);

    #[async_trait]
    impl RateLimiter for Broken {
        async fn check(&self, _: &str, _: Quota) -> Result<Decision, LimitError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(LimitError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn a_failing_primary_is_replaced_and_not_asked_again_at_once() {
        let clock = Arc::new(crate::infra::clock::ManualClock::starting_now());
        let primary = Arc::new(Broken(AtomicU32::new(0)));
        let limiter = FallbackLimiter::new(
            primary.clone(),
            Arc::new(super::super::MemoryLimiter::new(clock)),
        );
        let quota = Quota::new(2, Duration::from_secs(60));
        let allowed: Vec<bool> = futures::future::join_all(
            (0..3).map(|_| async { limiter.check("k", quota).await.map(|d| d.allowed) }),
        )
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("the fallback never fails");
        assert_eq!(allowed.iter().filter(|a| **a).count(), 2, "{allowed:?}");
        // Sequential calls after the first failure skip the primary.
        let asked = primary.0.load(Ordering::Relaxed);
        limiter.check("k", quota).await.expect("decides");
        assert_eq!(primary.0.load(Ordering::Relaxed), asked);
    }
}
