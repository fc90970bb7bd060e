//! `GET /admin/security/events`: bursts of failures, one account tried from many addresses,
//! refresh-token reuse, lockouts, sign-ins from new address prefixes, automatic IP blocks.

use std::net::IpAddr;

use axum::extract::State;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{Cursor, PageRequest, audit::json_or_text};
use crate::{
    app::AppState,
    auth::{RequireRole, extract::Admin},
    db::entities::security_events::{self, Column, Entity as SecurityEvents},
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery},
    infra::clock::{from_db, to_db},
    security::events::{EventKind, Severity},
};

/// One security event.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190c0e1-2222-7000-8000-000000000002", "kind": "REFRESH_TOKEN_REUSE", "severity": "HIGH",
    "user_id": "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a", "ip": "203.0.113.9",
    "detail": {"session_id": "0190c0df-0000-7000-8000-000000000003"},
    "created_at": "2025-05-01T09:30:00Z"
}))]
pub struct SecurityEvent {
    /// Id.
    pub id: String,
    /// What happened (`FAILURE_BURST`, `ACCOUNT_MANY_IPS`, `REFRESH_TOKEN_REUSE`, `ACCOUNT_LOCKED`,
    /// `NEW_IP_PREFIX`, `IP_AUTO_BLOCKED`, …).
    pub kind: String,
    /// `LOW`, `MEDIUM` or `HIGH`.
    pub severity: String,
    /// The account concerned, if any.
    pub user_id: Option<String>,
    /// The address concerned, if any.
    pub ip: Option<String>,
    /// Details, by kind.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<security_events::Model> for SecurityEvent {
    fn from(row: security_events::Model) -> Self {
        Self {
            detail: row.detail.as_deref().map(json_or_text),
            id: row.id,
            kind: row.kind,
            severity: row.severity,
            user_id: row.user_id,
            ip: row.ip,
            created_at: from_db(row.created_at),
        }
    }
}

/// A page of security events, newest first.
#[derive(Serialize, ToSchema)]
pub struct SecurityEventPage {
    /// Events.
    pub items: Vec<SecurityEvent>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Filters for `GET /admin/security/events`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecurityEventQuery {
    /// Only this kind.
    #[param(inline)]
    kind: Option<EventKind>,
    /// At least this severity (`MEDIUM` gives `MEDIUM` and `HIGH`).
    #[param(inline)]
    severity: Option<Severity>,
    /// Only events about this account.
    #[param(example = "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a")]
    user_id: Option<String>,
    /// Only events about this address.
    #[param(example = "203.0.113.9")]
    ip: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime, example = "2025-05-01T00:00:00Z")]
    since: Option<OffsetDateTime>,
    /// Page size, 1..=200 (default 50).
    #[param(example = 50)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists security events, newest first.
#[utoipa::path(get, path = "/admin/security/events", tag = "admin", params(SecurityEventQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of security events", body = SecurityEventPage),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 422, description = "`validation_failed`: bad kind, severity, ip, since, limit or cursor", body = Problem),
    ))]
pub async fn list_security_events(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ApiQuery(query): ApiQuery<SecurityEventQuery>,
) -> AppResult<ApiJson<SecurityEventPage>> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let ip = query
        .ip
        .as_deref()
        .map(|raw| {
            raw.trim()
                .parse::<IpAddr>()
                .map_err(|_| AppError::invalid_field("ip", "invalid_ip", "is not an IP address"))
        })
        .transpose()?;
    let filter = EventFilter {
        kind: query.kind,
        min_severity: query.severity,
        user_id: query.user_id,
        ip,
        since: query.since,
    };
    let (items, next_cursor) = list(&state, &filter, &page).await?;
    Ok(ApiJson(SecurityEventPage { items, next_cursor }))
}

/// Validated filters.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Kind.
    pub kind: Option<EventKind>,
    /// Minimum severity.
    pub min_severity: Option<Severity>,
    /// Account.
    pub user_id: Option<String>,
    /// Address.
    pub ip: Option<IpAddr>,
    /// Earliest time.
    pub since: Option<OffsetDateTime>,
}

const SEVERITIES: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

/// One page of events matching `filter`, newest first, and the next cursor.
pub async fn list(
    state: &AppState,
    filter: &EventFilter,
    page: &PageRequest,
) -> AppResult<(Vec<SecurityEvent>, Option<String>)> {
    let mut cond = Condition::all();
    if let Some(kind) = filter.kind {
        cond = cond.add(Column::Kind.eq(kind.as_str()));
    }
    if let Some(min) = filter.min_severity {
        // Stored as names, so "at least" is the set of names at or above it.
        let names = SEVERITIES.iter().filter(|s| **s >= min).map(|s| s.as_str());
        cond = cond.add(Column::Severity.is_in(names));
    }
    if let Some(user_id) = &filter.user_id {
        cond = cond.add(Column::UserId.eq(user_id.trim()));
    }
    if let Some(ip) = filter.ip {
        // Either form of an IPv4 client seen through a dual-stack listener.
        let mut forms = vec![ip.to_string(), ip.to_canonical().to_string()];
        forms.dedup();
        cond = cond.add(Column::Ip.is_in(forms));
    }
    if let Some(since) = filter.since {
        cond = cond.add(Column::CreatedAt.gte(to_db(since)));
    }
    if let Some(after) = &page.after {
        cond = cond.add(after.after_descending(Column::CreatedAt, Column::Id));
    }
    let rows = SecurityEvents::find()
        .filter(cond)
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    let (rows, next) = page.finish(rows, |r| Cursor::new(from_db(r.created_at), &r.id));
    Ok((rows.into_iter().map(SecurityEvent::from).collect(), next))
}
