//! The limits this service enforces, with their keys and quotas.

use std::{net::IpAddr, sync::Arc, time::Duration};

use axum::http::{HeaderName, HeaderValue};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::{
    Decision, FallbackLimiter, MemoryLimiter, Quota, RateLimiter, RedisLimiter, ceil_secs,
};
use crate::{
    config::{Config, Switch},
    error::{AppError, AppResult},
    infra::{clock::Clock, redis::RedisHandle},
};

/// Names of per-account actions for [`Limits::check_account`].
pub mod account_action {
    /// Sign-in attempts (`RATE_LIMIT_LOGIN_PER_ACCOUNT`).
    pub const LOGIN: &str = "login";
    /// Verification-code mails (`RATE_LIMIT_MAIL_PER_ACCOUNT`).
    pub const VERIFY_RESEND: &str = "verify_resend";
    /// Password-reset mails (`RATE_LIMIT_MAIL_PER_ACCOUNT`).
    pub const PASSWORD_FORGOT: &str = "password_forgot";
    /// Password checks of a signed-in user (change, deletion): as sign-ins.
    pub const PASSWORD_CHECK: &str = "password_check";
    /// Tries of e-mailed codes, across every code the account is sent (a day's cap).
    pub const CODE_ATTEMPT: &str = "code_attempt";
    /// Sign-in code mails (`RATE_LIMIT_MAIL_PER_ACCOUNT`).
    pub const LOGIN_CODE: &str = "login_code";
}

/// Code tries per account per day: every new code restarts its own five tries, so without a
/// cap across codes a patient attacker could keep guessing.
const CODE_ATTEMPTS_PER_DAY: u32 = 30;

/// `RateLimit-Limit`.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset` (seconds until the quota is full again).
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Every limit of the service: the general per-IP API limit in process (DESIGN.md "Hot-path
/// budget"), the `/auth/*` per-IP and per-account limits shared through Redis when configured.
pub struct Limits {
    enabled: bool,
    local: Arc<MemoryLimiter>,
    shared: Arc<dyn RateLimiter>,
    api_per_ip: Quota,
    auth_per_ip: Quota,
    login_per_account: Quota,
    mail_per_account: Quota,
    code_per_account: Quota,
}

impl Limits {
    /// Limits from the configuration; shared through `redis` when given, with an in-process
    /// fallback while Redis fails.
    pub fn new(config: &Config, clock: Arc<dyn Clock>, redis: Option<RedisHandle>) -> Self {
        let local = Arc::new(MemoryLimiter::new(clock.clone()));
        let shared: Arc<dyn RateLimiter> = match redis {
            Some(handle) => Arc::new(FallbackLimiter::new(
                Arc::new(RedisLimiter::new(handle, clock)),
                local.clone(),
            )),
            None => local.clone(),
        };
        Self {
            enabled: config.rate_limits == Switch::On,
            local,
            shared,
            api_per_ip: Quota::per_minute(config.rate_limit_api_per_ip),
            auth_per_ip: Quota::per_minute(config.rate_limit_auth_per_ip),
            login_per_account: Quota::new(
                config.rate_limit_login_per_account,
                Duration::from_secs(15 * 60),
            ),
            mail_per_account: Quota::new(
                config.rate_limit_mail_per_account,
                Duration::from_secs(60 * 60),
            ),
            code_per_account: Quota::new(CODE_ATTEMPTS_PER_DAY, Duration::from_secs(24 * 60 * 60)),
        }
    }

    /// Whether limits are enforced (`RATE_LIMITS=on`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The in-process limiter (general API limit and Redis fallback).
    pub fn local(&self) -> &MemoryLimiter {
        &self.local
    }

    /// Counts a request against the general per-IP API limit (in process); `None` when off.
    pub fn check_api(&self, ip: IpAddr) -> Option<Decision> {
        self.enabled.then(|| {
            self.local
                .check_now(&format!("api-ip:{}", ip_key(ip)), self.api_per_ip)
        })
    }

    /// Counts an unsafe `/auth/*` request against the per-IP auth limit (shared); `None` when off.
    pub async fn check_auth(&self, ip: IpAddr) -> Option<Decision> {
        if !self.enabled {
            return None;
        }
        Some(
            self.shared_check(&format!("auth-ip:{}", ip_key(ip)), self.auth_per_ip)
                .await,
        )
    }

    /// Counts one `action` (see [`account_action`]) for an account or address (normalized
    /// e-mail); `Err(rate_limited)` with `Retry-After` when over the limit. `login` uses
    /// `RATE_LIMIT_LOGIN_PER_ACCOUNT`; every other action sends mail and uses
    /// `RATE_LIMIT_MAIL_PER_ACCOUNT`, counted per action.
    pub async fn check_account(&self, action: &str, account_key: &str) -> AppResult<()> {
        if !self.enabled {
            return Ok(());
        }
        let quota = match action {
            account_action::LOGIN | account_action::PASSWORD_CHECK => self.login_per_account,
            account_action::CODE_ATTEMPT => self.code_per_account,
            _ => self.mail_per_account,
        };
        // Hashed: addresses do not appear in Redis keys or memory dumps.
        let digest = Sha256::digest(account_key.as_bytes());
        let key = format!("acct:{action}:{}", URL_SAFE_NO_PAD.encode(&digest[..16]));
        let decision = self.shared_check(&key, quota).await;
        if decision.allowed {
            Ok(())
        } else {
            metrics::counter!("boxoffice_rate_limited_total", "limit" => "account").increment(1);
            Err(refusal(&decision))
        }
    }

    async fn shared_check(&self, key: &str, quota: Quota) -> Decision {
        match self.shared.check(key, quota).await {
            Ok(decision) => decision,
            // The shared limiter falls back by itself; this only guards against a future one
            // that does not: limit in process rather than fail the request or let it through.
            Err(_) => self.local.check_now(key, quota),
        }
    }
}

/// The key of a client address: IPv4 as is; IPv6 by its /64, which one subscriber typically
/// holds whole (per-address keys would let one client rotate through 2^64 of them).
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The `RateLimit-*` headers describing a decision.
pub fn headers(decision: &Decision) -> [(HeaderName, HeaderValue); 3] {
    [
        (RATELIMIT_LIMIT, HeaderValue::from(decision.limit)),
        (RATELIMIT_REMAINING, HeaderValue::from(decision.remaining)),
        (
            RATELIMIT_RESET,
            HeaderValue::from(ceil_secs(decision.reset_after)),
        ),
    ]
}

/// 429 `rate_limited` with `Retry-After` and the `RateLimit-*` headers of a refusal.
pub fn refusal(decision: &Decision) -> AppError {
    let wait = ceil_secs(decision.retry_after.unwrap_or(decision.reset_after)).max(1);
    let mut error = AppError::too_many(
        "rate_limited",
        format!("Too many requests; try again in {wait} s."),
        wait,
    );
    for (name, value) in headers(decision) {
        error = error.with_header(name, value);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7");
    }
}
