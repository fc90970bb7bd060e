//! `GET /admin/audit-log`: who did what to which object, newest first.

use axum::extract::State;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{Cursor, PageRequest};
use crate::{
    app::AppState,
    auth::{RequireRole, extract::Admin},
    db::entities::audit_log::{self, Column, Entity as AuditLog},
    error::{AppResult, Problem},
    http::{ApiJson, ApiQuery},
    infra::clock::from_db,
};

/// One audit record.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190c0e1-1111-7000-8000-000000000001",
    "actor_user_id": "0190c0de-aaaa-7000-8000-000000000001",
    "action": "admin.user.update", "target_type": "user",
    "target_id": "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a", "ip": "198.51.100.7",
    "detail": {"before": {"role": "USER", "vip": false, "status": "ACTIVE"},
               "after": {"role": "USER", "vip": false, "status": "DISABLED"}, "sessions_revoked": 2},
    "created_at": "2025-05-01T09:30:00Z"
}))]
pub struct AuditEntry {
    /// Id.
    pub id: String,
    /// Who acted (`null` for the system).
    pub actor_user_id: Option<String>,
    /// What was done, e.g. `admin.user.update`, `admin.ip_block.create`, `user.signup`.
    pub action: String,
    /// Kind of object acted on, e.g. `user`, `ip_block`.
    pub target_type: String,
    /// Id of the object.
    pub target_id: Option<String>,
    /// Address the action came from.
    pub ip: Option<String>,
    /// Details (before/after for changes).
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(row: audit_log::Model) -> Self {
        Self {
            detail: row.detail.as_deref().map(json_or_text),
            id: row.id,
            actor_user_id: row.actor_user_id,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            ip: row.ip,
            created_at: from_db(row.created_at),
        }
    }
}

/// Stored details are JSON; anything else (written by hand) is shown as a string.
pub(crate) fn json_or_text(raw: &str) -> serde_json::Value {
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()))
}

/// A page of audit records, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Records.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Filters for `GET /admin/audit-log` (exact matches).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only actions by this account.
    #[param(example = "0190c0de-aaaa-7000-8000-000000000001")]
    actor_user_id: Option<String>,
    /// Only actions on this object.
    #[param(example = "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a")]
    target_id: Option<String>,
    /// Only this action.
    #[param(example = "admin.user.update")]
    action: Option<String>,
    /// Page size, 1..=200 (default 50).
    #[param(example = 50)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists audit records, newest first.
#[utoipa::path(get, path = "/admin/audit-log", tag = "admin", params(AuditQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of audit records", body = AuditPage),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 422, description = "`validation_failed`: bad limit or cursor", body = Problem),
    ))]
pub async fn list_audit_log(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> AppResult<ApiJson<AuditPage>> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = AuditFilter {
        actor_user_id: query.actor_user_id,
        target_id: query.target_id,
        action: query.action,
    };
    let (items, next_cursor) = list(&state, &filter, &page).await?;
    Ok(ApiJson(AuditPage { items, next_cursor }))
}

/// Exact-match filters.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Actor.
    pub actor_user_id: Option<String>,
    /// Target object id.
    pub target_id: Option<String>,
    /// Action name.
    pub action: Option<String>,
}

/// One page of audit records matching `filter`, newest first, and the next cursor.
pub async fn list(
    state: &AppState,
    filter: &AuditFilter,
    page: &PageRequest,
) -> AppResult<(Vec<AuditEntry>, Option<String>)> {
    let mut cond = Condition::all();
    if let Some(actor) = &filter.actor_user_id {
        cond = cond.add(Column::ActorUserId.eq(actor.trim()));
    }
    if let Some(target) = &filter.target_id {
        cond = cond.add(Column::TargetId.eq(target.trim()));
    }
    if let Some(action) = &filter.action {
        cond = cond.add(Column::Action.eq(action.trim()));
    }
    if let Some(after) = &page.after {
        cond = cond.add(after.after_descending(Column::CreatedAt, Column::Id));
    }
    let rows = AuditLog::find()
        .filter(cond)
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    let (rows, next) = page.finish(rows, |r| Cursor::new(from_db(r.created_at), &r.id));
    Ok((rows.into_iter().map(AuditEntry::from).collect(), next))
}
