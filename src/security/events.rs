//! Security events (bursts of failures, lockouts, token reuse, new IP prefixes) for admins.

use sea_orm::{ConnectionTrait, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{db::entities::security_events, error::AppResult, infra::clock::to_db};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    /// Many failed sign-ins from one IP.
    FailureBurst,
    /// One account tried from many IPs.
    AccountManyIps,
    /// A spent refresh token was presented again.
    RefreshTokenReuse,
    /// An account was locked after repeated failures.
    AccountLocked,
    /// A sign-in from an IP prefix never seen for that account.
    NewIpPrefix,
    /// An IP was blocked automatically.
    IpAutoBlocked,
    /// A passkey's signature counter went backwards (a cloned authenticator?).
    PasskeyCounterRegressed,
}

impl EventKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailureBurst => "FAILURE_BURST",
            Self::AccountManyIps => "ACCOUNT_MANY_IPS",
            Self::RefreshTokenReuse => "REFRESH_TOKEN_REUSE",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::NewIpPrefix => "NEW_IP_PREFIX",
            Self::IpAutoBlocked => "IP_AUTO_BLOCKED",
            Self::PasskeyCounterRegressed => "PASSKEY_COUNTER_REGRESSED",
        }
    }
}

/// How urgent it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Worth knowing.
    Low,
    /// Worth a look.
    Medium,
    /// Act now.
    High,
}

impl Severity {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
        }
    }
}

/// Records an event.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    kind: EventKind,
    severity: Severity,
    user_id: Option<&str>,
    ip: Option<&str>,
    detail: serde_json::Value,
) -> AppResult<()> {
    security_events::Entity::insert(security_events::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        kind: Set(kind.as_str().to_owned()),
        severity: Set(severity.as_str().to_owned()),
        user_id: Set(user_id.map(str::to_owned)),
        ip: Set(ip.map(str::to_owned)),
        detail: Set(Some(detail.to_string())),
        created_at: Set(to_db(now)),
    })
    .exec(conn)
    .await?;
    Ok(())
}
