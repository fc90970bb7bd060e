//! GCRA in Redis: one Lua script, one round trip per check, shared by every instance.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use redis::Script;

use super::{Decision, LimitError, Quota, RateLimiter};
use crate::infra::{clock::Clock, redis::RedisHandle};

/// A check that takes longer than this counts as a failure (the caller falls back).
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(200);

/// Limits shared through Redis. Keys live under the deployment prefix as `rl:<key>`.
pub struct RedisLimiter {
    redis: RedisHandle,
    clock: Arc<dyn Clock>,
    script: Script,
    timeout: Duration,
}

impl RedisLimiter {
    /// A limiter on `redis`, reading time from `clock`.
    pub fn new(redis: RedisHandle, clock: Arc<dyn Clock>) -> Self {
        Self {
            redis,
            clock,
            // EVALSHA, loading the script on NOSCRIPT (after a Redis restart or failover).
            script: Script::new(include_str!("gcra.lua")),
            timeout: CHECK_TIMEOUT,
        }
    }

    /// The Redis key of a limiter key.
    pub fn redis_key(&self, key: &str) -> String {
        self.redis.key(&format!("rl:{key}"))
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Result<Decision, LimitError> {
        let now_us = i64::try_from(self.clock.now().unix_timestamp_nanos() / 1000)
            .map_err(|_| LimitError::Unavailable("clock out of range".into()))?;
        let interval_us = i64::try_from(quota.emission_interval().as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut conn = self.redis.conn.clone();
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(self.redis_key(key))
            .arg(now_us)
            .arg(interval_us)
            .arg(quota.burst());
        let call = invocation.invoke_async::<(i64, i64, i64, i64)>(&mut conn);
        let (allowed, remaining, retry_us, reset_us) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| LimitError::Unavailable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| LimitError::Unavailable(e.to_string()))?;
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(Decision {
            allowed: allowed == 1,
            limit: quota.burst(),
            remaining: u32::try_from(remaining).unwrap_or(0).min(quota.burst()),
            reset_after: micros(reset_us),
            retry_after: (allowed != 1).then(|| micros(retry_us)),
        })
    }
}
