//! Sign-in attempts: every one is recorded (also those refused by limits or locks), shown to
//! the user as login history, and watched for patterns that become security events.

use std::net::IpAddr;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use crate::{
    app::AppState,
    db::entities::{
        login_attempts::{self, Column, Entity as Attempts},
        security_events,
    },
    error::AppResult,
    infra::clock::{from_db, to_db},
    security::events::{self, EventKind, Severity},
};

/// How the user tried to sign in.
pub mod method {
    /// E-mail and password.
    pub const PASSWORD: &str = "PASSWORD";
    /// A passkey (WebAuthn).
    pub const PASSKEY: &str = "PASSKEY";
    /// A one-time code mailed to the address.
    pub const EMAIL_CODE: &str = "EMAIL_CODE";
    // OAuth sign-ins are `OAUTH_GOOGLE`, `OAUTH_NAVER`, `OAUTH_KAKAO` (oauth::ProviderId::method).
}

/// How an attempt ended.
pub mod result {
    /// Signed in.
    pub const SUCCESS: &str = "SUCCESS";
    /// Unknown address or wrong password.
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    /// Right password, address not confirmed yet.
    pub const EMAIL_NOT_VERIFIED: &str = "EMAIL_NOT_VERIFIED";
    /// Refused because the account is locked.
    pub const ACCOUNT_LOCKED: &str = "ACCOUNT_LOCKED";
    /// Refused because the account is disabled.
    pub const ACCOUNT_DISABLED: &str = "ACCOUNT_DISABLED";
    /// Refused by a rate limit.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// OAuth `state` missing, mismatched, replayed or expired.
    pub const STATE_INVALID: &str = "STATE_INVALID";
    /// The provider refused, failed or sent an identity we cannot trust.
    pub const PROVIDER_FAILED: &str = "PROVIDER_FAILED";
    /// A provider identity matched an account that must first prove it is the same person.
    pub const LINK_REQUIRED: &str = "LINK_REQUIRED";
    /// A provider identity came without a verified address.
    pub const EMAIL_REQUIRED: &str = "EMAIL_REQUIRED";
    /// A passkey ceremony failed (challenge, origin, signature, unknown credential).
    pub const PASSKEY_INVALID: &str = "PASSKEY_INVALID";
    /// A passkey's signature counter went backwards (a cloned authenticator?).
    pub const COUNTER_REGRESSED: &str = "COUNTER_REGRESSED";
    /// A wrong or expired e-mail code.
    pub const INVALID_CODE: &str = "INVALID_CODE";
}

/// Failed sign-ins from one IP within [`WINDOW`] that make a burst.
pub const BURST_FAILURES: u64 = 20;
/// Distinct IPs failing on one account within [`WINDOW`] that look like a distributed guess.
pub const ACCOUNT_IPS: u64 = 5;
/// The window of the detectors.
pub const WINDOW: Duration = Duration::minutes(15);

/// One attempt to record.
pub struct Attempt<'a> {
    /// The account, when the address matched one.
    pub user_id: Option<&'a str>,
    /// The normalized address tried, when it parsed.
    pub email_normalized: Option<&'a str>,
    /// Client address.
    pub ip: IpAddr,
    /// `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// See [`method`].
    pub method: &'a str,
    /// See [`result`].
    pub result: &'a str,
}

/// The network an address belongs to for "never seen before" checks: /24 for IPv4, /48 for IPv6.
pub fn ip_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Writes the attempt.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    attempt: &Attempt<'_>,
) -> AppResult<()> {
    Attempts::insert(login_attempts::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(attempt.user_id.map(str::to_owned)),
        email_normalized: Set(attempt.email_normalized.map(str::to_owned)),
        ip: Set(Some(attempt.ip.to_string())),
        ip_prefix: Set(Some(ip_prefix(attempt.ip))),
        user_agent: Set(attempt.user_agent.map(|ua| crate::error::truncate(ua, 500))),
        method: Set(attempt.method.to_owned()),
        result: Set(attempt.result.to_owned()),
        created_at: Set(to_db(now)),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Whether this is the user's first successful sign-in from this network and from this device,
/// as `(new_network, new_device)`; both are false for the very first sign-in of an account.
pub async fn novelty<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> AppResult<(bool, bool)> {
    let successes = Attempts::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Result.eq(result::SUCCESS));
    if successes.clone().count(conn).await? == 0 {
        return Ok((false, false));
    }
    let seen_network = successes
        .clone()
        .filter(Column::IpPrefix.eq(ip_prefix(ip)))
        .count(conn)
        .await?
        > 0;
    let seen_device = match user_agent {
        Some(ua) => {
            successes
                .filter(Column::UserAgent.eq(crate::error::truncate(ua, 500)))
                .count(conn)
                .await?
                > 0
        }
        None => true,
    };
    Ok((!seen_network, !seen_device))
}

/// After a failure: raises a burst event for the IP and a many-IPs event for the account,
/// once per window each.
pub async fn detect_after_failure(
    state: &AppState,
    now: OffsetDateTime,
    ip: IpAddr,
    email_normalized: Option<&str>,
    user_id: Option<&str>,
) -> AppResult<()> {
    let since = to_db(now - WINDOW);
    let failures = Attempts::find()
        .filter(Column::Ip.eq(ip.to_string()))
        .filter(Column::Result.ne(result::SUCCESS))
        .filter(Column::CreatedAt.gte(since))
        .count(&state.db)
        .await?;
    let ip_text = ip.to_string();
    if failures >= BURST_FAILURES
        && !recently_raised(state, EventKind::FailureBurst, None, Some(&ip_text), now).await?
    {
        events::record(
            &state.db,
            now,
            EventKind::FailureBurst,
            Severity::High,
            None,
            Some(&ip_text),
            serde_json::json!({"failures": failures, "window_minutes": WINDOW.whole_minutes()}),
        )
        .await?;
    }
    if let Some(email) = email_normalized {
        let ips: Vec<Option<String>> = Attempts::find()
            .select_only()
            .column(Column::Ip)
            .distinct()
            .filter(Column::EmailNormalized.eq(email))
            .filter(Column::Result.ne(result::SUCCESS))
            .filter(Column::CreatedAt.gte(since))
            .into_tuple()
            .all(&state.db)
            .await?;
        let distinct = ips.len() as u64;
        if distinct >= ACCOUNT_IPS
            && user_id.is_some()
            && !recently_raised(state, EventKind::AccountManyIps, user_id, None, now).await?
        {
            events::record(
                &state.db,
                now,
                EventKind::AccountManyIps,
                Severity::High,
                user_id,
                Some(&ip_text),
                serde_json::json!({"distinct_ips": distinct, "window_minutes": WINDOW.whole_minutes()}),
            )
            .await?;
        }
    }
    Ok(())
}

async fn recently_raised(
    state: &AppState,
    kind: EventKind,
    user_id: Option<&str>,
    ip: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<bool> {
    let mut query = security_events::Entity::find()
        .filter(security_events::Column::Kind.eq(kind.as_str()))
        .filter(security_events::Column::CreatedAt.gte(to_db(now - WINDOW)));
    if let Some(user_id) = user_id {
        query = query.filter(security_events::Column::UserId.eq(user_id));
    }
    if let Some(ip) = ip {
        query = query.filter(security_events::Column::Ip.eq(ip));
    }
    Ok(query.count(&state.db).await? > 0)
}

/// One line of a user's login history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub time: OffsetDateTime,
    /// Client address.
    pub ip: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Browser and system, from the user agent.
    pub device: String,
    /// `PASSWORD`, `OAUTH_GOOGLE`, `OAUTH_NAVER`, `OAUTH_KAKAO`, `PASSKEY` or `EMAIL_CODE`.
    pub method: String,
    /// `SUCCESS`, `INVALID_CREDENTIALS`, `ACCOUNT_LOCKED`, …
    pub result: String,
}

/// A page of the user's own attempts, newest first; the cursor is the last id returned.
pub async fn history(
    state: &AppState,
    user_id: &str,
    limit: u64,
    cursor: Option<&str>,
) -> AppResult<(Vec<HistoryEntry>, Option<String>)> {
    let mut query = Attempts::find().filter(Column::UserId.eq(user_id));
    if let Some(cursor) = cursor {
        // Ids are UUID v7: ordering by id is ordering by creation.
        query = query.filter(Column::Id.lt(cursor));
    }
    let rows = query
        .order_by_desc(Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let more = rows.len() as u64 > limit;
    let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
    let next = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok((
        rows.into_iter()
            .map(|r| HistoryEntry {
                time: from_db(r.created_at),
                device: super::device::describe(r.user_agent.as_deref()),
                ip: r.ip,
                user_agent: r.user_agent,
                method: r.method,
                result: r.result,
            })
            .collect(),
        next,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_neighbouring_addresses() {
        assert_eq!(
            ip_prefix("203.0.113.77".parse().expect("ip")),
            "203.0.113.0/24"
        );
        assert_eq!(
            ip_prefix("2001:db8:1234:5678::1".parse().expect("ip")),
            "2001:db8:1234::/48"
        );
    }
}
