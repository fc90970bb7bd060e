//! `/admin/ip-blocks`: list, create and lift IP blocks. Enforcement lives in
//! [`crate::security::ip_blocks`].

use axum::{extract::State, http::StatusCode};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{Cursor, PageRequest};
use crate::{
    app::AppState,
    auth::{RequireRole, extract::Admin},
    db::entities::ip_blocks::{self, Column, Entity as IpBlocks},
    error::{AppResult, Problem},
    http::{ApiJson, ApiQuery, ClientIp, extract::ApiPath},
    infra::clock::{from_db, to_db},
    security::ip_blocks::{self as blocks, BlockRequest, BlockSource},
};

/// A blocked network.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190c0e1-3333-7000-8000-000000000004", "cidr": "203.0.113.0/24",
    "reason": "credential stuffing", "source": "MANUAL",
    "created_by": "0190c0de-aaaa-7000-8000-000000000001",
    "created_at": "2025-05-01T09:30:00Z", "expires_at": "2025-05-02T09:30:00Z",
    "deleted_at": null, "active": true
}))]
pub struct IpBlockView {
    /// Id.
    pub id: String,
    /// Blocked network (a single address is `/32` or `/128`).
    pub cidr: String,
    /// Why.
    pub reason: String,
    /// `MANUAL` or `AUTO`.
    pub source: String,
    /// The administrator who created it (`null` for automatic blocks).
    pub created_by: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// End of the block; `null` blocks until deleted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was lifted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<OffsetDateTime>,
    /// Whether it applies now.
    pub active: bool,
}

impl IpBlockView {
    /// The view of a row at `now`.
    pub fn of(row: &ip_blocks::Model, now: OffsetDateTime) -> Self {
        let expires_at = row.expires_at.map(from_db);
        Self {
            id: row.id.clone(),
            cidr: row.cidr.clone(),
            reason: row.reason.clone(),
            source: row.source.clone(),
            created_by: row.created_by.clone(),
            created_at: from_db(row.created_at),
            expires_at,
            deleted_at: row.deleted_at.map(from_db),
            active: row.deleted_at.is_none() && expires_at.is_none_or(|at| at > now),
        }
    }
}

/// A page of blocks, newest first.
#[derive(Serialize, ToSchema)]
pub struct IpBlockPage {
    /// Blocks.
    pub items: Vec<IpBlockView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Which blocks to list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum BlockState {
    /// Applying now (default).
    #[default]
    Active,
    /// Every block ever made, expired and lifted ones included.
    All,
}

/// Filters for `GET /admin/ip-blocks`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IpBlockQuery {
    /// `ACTIVE` (default) or `ALL`.
    #[param(inline)]
    state: Option<BlockState>,
    /// Page size, 1..=200 (default 50).
    #[param(example = 50)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists IP blocks, newest first.
#[utoipa::path(get, path = "/admin/ip-blocks", tag = "admin", params(IpBlockQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of blocks", body = IpBlockPage),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    ))]
pub async fn list_ip_blocks(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ApiQuery(query): ApiQuery<IpBlockQuery>,
) -> AppResult<ApiJson<IpBlockPage>> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let (items, next_cursor) = list(&state, query.state.unwrap_or_default(), &page).await?;
    Ok(ApiJson(IpBlockPage { items, next_cursor }))
}

/// A block to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"cidr": "203.0.113.0/24", "reason": "credential stuffing", "expires_at": "2025-05-02T09:30:00Z"}))]
pub struct NewIpBlock {
    /// Network (`203.0.113.0/24`, `2001:db8::/32`) or a single address.
    cidr: String,
    /// Why, 1..=255 characters.
    reason: String,
    /// End of the block (RFC 3339, in the future); absent blocks until deleted.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
}

/// Blocks a network on every instance at once: its requests get 403 `ip_blocked` (health checks
/// excepted).
#[utoipa::path(post, path = "/admin/ip-blocks", tag = "admin", request_body = NewIpBlock,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "Blocked", body = IpBlockView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 409, description = "`would_block_self`: the network contains your own address", body = Problem),
        (status = 422, description = "`validation_failed`: bad CIDR, the whole Internet (`/0`), bad reason, expiry in the past", body = Problem),
    ))]
pub async fn create_ip_block(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<NewIpBlock>,
) -> AppResult<(StatusCode, ApiJson<IpBlockView>)> {
    let row = blocks::block_with(
        &state,
        BlockRequest {
            cidr: &req.cidr,
            reason: &req.reason,
            source: BlockSource::Manual,
            created_by: Some(&admin.0.user_id),
            expires_at: req.expires_at,
            requester_ip: Some(ip),
        },
    )
    .await?;
    let view = IpBlockView::of(&row, state.clock.now());
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Lifts a block on every instance at once (kept in the list with `deleted_at`).
#[utoipa::path(delete, path = "/admin/ip-blocks/{id}", tag = "admin",
    params(("id" = String, Path, description = "Block id", example = "0190c0e1-3333-7000-8000-000000000004")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 404, description = "`not_found`: no such block, or already lifted", body = Problem),
    ))]
pub async fn delete_ip_block(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    blocks::unblock(&state, &id, Some(&admin.0.user_id), Some(ip)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One page of blocks in `which` state, newest first, and the next cursor.
pub async fn list(
    state: &AppState,
    which: BlockState,
    page: &PageRequest,
) -> AppResult<(Vec<IpBlockView>, Option<String>)> {
    let now = state.clock.now();
    let mut cond = Condition::all();
    if which == BlockState::Active {
        cond = cond.add(Column::DeletedAt.is_null()).add(
            Condition::any()
                .add(Column::ExpiresAt.is_null())
                .add(Column::ExpiresAt.gt(to_db(now))),
        );
    }
    if let Some(after) = &page.after {
        cond = cond.add(after.after_descending(Column::CreatedAt, Column::Id));
    }
    let rows = IpBlocks::find()
        .filter(cond)
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    let (rows, next) = page.finish(rows, |r| Cursor::new(from_db(r.created_at), &r.id));
    Ok((rows.iter().map(|r| IpBlockView::of(r, now)).collect(), next))
}
