//! `/admin/users`: find accounts, change role, VIP flag and status. Every change is audited;
//! disabling (or demoting) ends the account's sessions on every instance at once.

use std::net::IpAddr;

use axum::extract::State;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{Cursor, PageRequest};
use crate::{
    app::AppState,
    auth::{
        RequireRole,
        extract::Admin,
        flows::audit_with_detail,
        model::{Role, status},
    },
    db::{
        self,
        entities::users::{self, Column, Entity as Users},
    },
    error::{AppError, AppResult, FieldError, Problem},
    http::{ApiJson, ApiQuery, ClientIp, extract::ApiPath},
    infra::clock::{from_db, to_db},
};

/// Why sessions were ended by an administrator's change (`user_authorization.revoke_reason`).
pub const REVOKE_DISABLED: &str = "DISABLED";
/// Sessions of a demoted user end so no token keeps the higher role.
pub const REVOKE_DEMOTED: &str = "DEMOTED";
/// Longest accepted search text.
pub const QUERY_MAX: usize = 100;

/// Account status as administrators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserStatus {
    /// Can sign in.
    Active,
    /// Disabled by an administrator: cannot sign in or refresh.
    Disabled,
    /// Deleted (listed for the record; cannot be changed back).
    Deleted,
}

impl UserStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => status::ACTIVE,
            Self::Disabled => status::DISABLED,
            Self::Deleted => status::DELETED,
        }
    }

    /// The status of a stored row (a `deleted_at` wins over the status column).
    pub fn of(row: &users::Model) -> Self {
        if row.deleted_at.is_some() {
            return Self::Deleted;
        }
        match row.status.as_str() {
            status::DISABLED => Self::Disabled,
            status::DELETED => Self::Deleted,
            _ => Self::Active,
        }
    }
}

/// An account as administrators see it (never the password hash).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a", "email": "minji@example.com", "name": "김민지",
    "nickname": "minji", "role": "USER", "vip": false, "status": "ACTIVE", "locale": "ko",
    "email_verified": true, "last_login_at": "2025-05-01T09:30:00Z", "locked_until": null,
    "created_at": "2025-04-01T12:00:00Z", "updated_at": "2025-05-01T09:30:00Z", "deleted_at": null
}))]
pub struct AdminUser {
    /// Id.
    pub id: String,
    /// Address as given.
    pub email: String,
    /// Full name.
    pub name: Option<String>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Role.
    pub role: Role,
    /// VIP lane in waiting rooms.
    pub vip: bool,
    /// `ACTIVE`, `DISABLED` or `DELETED`.
    pub status: UserStatus,
    /// Language tag.
    pub locale: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Last successful sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<OffsetDateTime>,
    /// End of a sign-in lockout, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<OffsetDateTime>,
    /// Sign-up time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Deletion time.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<OffsetDateTime>,
}

impl From<&users::Model> for AdminUser {
    fn from(u: &users::Model) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            nickname: u.nickname.clone(),
            role: u.role.parse().unwrap_or(Role::User),
            vip: u.vip,
            status: UserStatus::of(u),
            locale: u.locale.clone(),
            email_verified: u.email_verified_at.is_some(),
            last_login_at: u.last_login_at.map(from_db),
            locked_until: u.locked_until.map(from_db),
            created_at: from_db(u.created_at),
            updated_at: from_db(u.updated_at),
            deleted_at: u.deleted_at.map(from_db),
        }
    }
}

/// A page of accounts, newest first.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    /// Accounts.
    pub items: Vec<AdminUser>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// Search and filters for `GET /admin/users`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of the e-mail address, name or nickname (case-insensitive).
    #[param(example = "minji")]
    q: Option<String>,
    /// Only this role.
    #[param(inline)]
    role: Option<Role>,
    /// Only this status.
    #[param(inline)]
    status: Option<UserStatus>,
    /// Page size, 1..=200 (default 50).
    #[param(example = 50)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists accounts, newest first, with search and filters.
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(UserQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "One page of accounts", body = UserPage),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`: not an administrator", body = Problem),
        (status = 422, description = "`validation_failed`: bad filter, limit or cursor", body = Problem),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> AppResult<ApiJson<UserPage>> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let filter = UserFilter::parse(query.q.as_deref(), query.role, query.status)?;
    let (rows, next_cursor) = list(&state, &filter, &page).await?;
    Ok(ApiJson(UserPage {
        items: rows.iter().map(AdminUser::from).collect(),
        next_cursor,
    }))
}

/// One account by id (deleted ones included).
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "Account id", example = "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The account", body = AdminUser),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    _admin: RequireRole<Admin>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<AdminUser>> {
    let row = Users::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(ApiJson(AdminUser::from(&row)))
}

/// Fields to change; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "ORGANIZER", "vip": true, "status": "ACTIVE"}))]
pub struct UserPatch {
    /// New role.
    role: Option<Role>,
    /// New VIP flag.
    vip: Option<bool>,
    /// `ACTIVE` or `DISABLED` (disabling ends every session of the account at once).
    status: Option<UserStatus>,
}

/// Changes an account's role, VIP flag or status; audited with before and after.
///
/// Disabling ends all the account's sessions on every instance, and so does lowering its role
/// (access tokens carry the role). Raising a role or the VIP flag takes effect at the next token
/// refresh. The last active administrator can be neither demoted nor disabled.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", request_body = UserPatch,
    params(("id" = String, Path, description = "Account id", example = "0190c0de-7b1a-7000-8000-3f1e2d4c5b6a")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The account after the change", body = AdminUser),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`forbidden` (or `csrf_failed` with a cookie)", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 409, description = "`last_admin`: would leave no active administrator; `user_deleted`: deleted accounts cannot be changed", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    ))]
pub async fn patch_user(
    State(state): State<AppState>,
    admin: RequireRole<Admin>,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> AppResult<ApiJson<AdminUser>> {
    let change = UserChange::parse(patch.role, patch.vip, patch.status)?;
    let row = update(&state, &admin.0.user_id, Some(ip), &id, change).await?;
    Ok(ApiJson(AdminUser::from(&row)))
}

/// Validated search and filters.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Search text, trimmed, non-empty.
    pub q: Option<String>,
    /// Role.
    pub role: Option<Role>,
    /// Status.
    pub status: Option<UserStatus>,
}

impl UserFilter {
    /// Validates the search text (an empty one means no search).
    pub fn parse(
        q: Option<&str>,
        role: Option<Role>,
        status: Option<UserStatus>,
    ) -> AppResult<Self> {
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        if q.is_some_and(|q| q.chars().count() > QUERY_MAX) {
            return Err(AppError::invalid_field(
                "q",
                "too_long",
                format!("must be at most {QUERY_MAX} characters"),
            ));
        }
        Ok(Self {
            q: q.map(str::to_owned),
            role,
            status,
        })
    }

    fn condition(&self) -> Condition {
        let mut cond = Condition::all();
        if let Some(q) = &self.q {
            // `!` escapes LIKE wildcards the same way on SQLite and MariaDB (backslash does
            // not: SQLite has no default escape character).
            let escaped = q.replace('!', "!!").replace('%', "!%").replace('_', "!_");
            let contains = format!("%{escaped}%");
            let lowered = format!("%{}%", escaped.to_lowercase());
            cond = cond.add(
                Condition::any()
                    // email_normalized is lower case and compared byte-wise on MariaDB.
                    .add(
                        Expr::col(Column::EmailNormalized).like(LikeExpr::new(lowered).escape('!')),
                    )
                    .add(Expr::col(Column::Name).like(LikeExpr::new(contains.clone()).escape('!')))
                    .add(Expr::col(Column::Nickname).like(LikeExpr::new(contains).escape('!'))),
            );
        }
        if let Some(role) = self.role {
            cond = cond.add(Column::Role.eq(role.as_str()));
        }
        match self.status {
            None => {}
            Some(UserStatus::Deleted) => {
                cond = cond.add(
                    Condition::any()
                        .add(Column::DeletedAt.is_not_null())
                        .add(Column::Status.eq(status::DELETED)),
                )
            }
            Some(s) => {
                cond = cond
                    .add(Column::Status.eq(s.as_str()))
                    .add(Column::DeletedAt.is_null())
            }
        }
        cond
    }
}

/// One page of accounts matching `filter`, newest first, and the next cursor.
pub async fn list(
    state: &AppState,
    filter: &UserFilter,
    page: &PageRequest,
) -> AppResult<(Vec<users::Model>, Option<String>)> {
    let mut query = Users::find().filter(filter.condition());
    if let Some(after) = &page.after {
        query = query.filter(after.after_descending(Column::CreatedAt, Column::Id));
    }
    let rows = query
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(page.limit + 1)
        .all(&state.db)
        .await?;
    Ok(page.finish(rows, |u| Cursor::new(from_db(u.created_at), &u.id)))
}

/// A validated change: at least one field, status only `ACTIVE` or `DISABLED`.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserChange {
    /// New role.
    pub role: Option<Role>,
    /// New VIP flag.
    pub vip: Option<bool>,
    /// New status.
    pub status: Option<UserStatus>,
}

impl UserChange {
    /// Validates a patch.
    pub fn parse(
        role: Option<Role>,
        vip: Option<bool>,
        status: Option<UserStatus>,
    ) -> AppResult<Self> {
        let mut errors = Vec::new();
        if status == Some(UserStatus::Deleted) {
            errors.push(FieldError::new(
                "status",
                "invalid_status",
                "must be ACTIVE or DISABLED (accounts are deleted by their owner)",
            ));
        }
        if role.is_none() && vip.is_none() && status.is_none() {
            errors.push(FieldError::new(
                "role",
                "required",
                "give at least one of role, vip, status",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        Ok(Self { role, vip, status })
    }
}

/// What an administrator can change, before or after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
struct Settings {
    role: Role,
    vip: bool,
    status: UserStatus,
}

impl Settings {
    fn of(row: &users::Model) -> Self {
        Self {
            role: row.role.parse().unwrap_or(Role::User),
            vip: row.vip,
            status: UserStatus::of(row),
        }
    }

    fn with(self, change: UserChange) -> Self {
        Self {
            role: change.role.unwrap_or(self.role),
            vip: change.vip.unwrap_or(self.vip),
            status: change.status.unwrap_or(self.status),
        }
    }

    fn is_active_admin(self) -> bool {
        self.role == Role::Admin && self.status == UserStatus::Active
    }
}

/// Applies a change as administrator `actor` and returns the account after it.
///
/// Race-free "never leave no active administrator": when the change could remove an active
/// admin, the transaction first locks every active admin row (`FOR UPDATE` on MariaDB, where a
/// plain read at READ COMMITTED would let two admins demoting each other both see the other one;
/// SQLite's `BEGIN IMMEDIATE` already admits one writer at a time), then counts the others.
pub async fn update(
    state: &AppState,
    actor: &str,
    actor_ip: Option<IpAddr>,
    id: &str,
    change: UserChange,
) -> AppResult<users::Model> {
    let now = state.clock.now();
    let (row, families) = db::write_tx(&state.db, |tx| {
        let (actor, id) = (actor.to_owned(), id.to_owned());
        Box::pin(async move { apply_change(tx, now, &actor, actor_ip, &id, change).await })
    })
    .await?;
    for family in &families {
        crate::auth::flows::announce_revocation(state, family).await;
    }
    Ok(row)
}

/// The ids of the active administrators, row-locked (FOR UPDATE on MariaDB; SQLite's IMMEDIATE
/// transaction already serialises writers) and always in index order, so two changes that could
/// each remove an admin queue rather than deadlock or both succeed.
pub async fn lock_active_admins<C: ConnectionTrait>(tx: &C) -> AppResult<Vec<String>> {
    Ok(Users::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::Role.eq(Role::Admin.as_str()))
        .filter(Column::Status.eq(status::ACTIVE))
        .filter(Column::DeletedAt.is_null())
        .lock_exclusive()
        .into_tuple()
        .all(tx)
        .await?)
}

async fn apply_change<C: ConnectionTrait>(
    tx: &C,
    now: OffsetDateTime,
    actor: &str,
    actor_ip: Option<IpAddr>,
    id: &str,
    change: UserChange,
) -> AppResult<(users::Model, Vec<String>)> {
    let may_remove_admin = change.role.is_some_and(|r| r != Role::Admin)
        || change.status == Some(UserStatus::Disabled);
    // Locked first and always in the same (index) order, so two such changes queue, not deadlock.
    let active_admins: Vec<String> = if may_remove_admin {
        lock_active_admins(tx).await?
    } else {
        Vec::new()
    };
    let user = Users::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(AppError::not_found)?;
    let before = Settings::of(&user);
    if before.status == UserStatus::Deleted {
        return Err(AppError::conflict(
            "user_deleted",
            "This account has been deleted and cannot be changed.",
        ));
    }
    let after = before.with(change);
    if after == before {
        return Ok((user, Vec::new()));
    }
    if before.is_active_admin()
        && !after.is_active_admin()
        && !active_admins.iter().any(|a| a != &user.id)
    {
        return Err(AppError::conflict(
            "last_admin",
            "This is the last active administrator; promote another one first.",
        ));
    }
    let row = users::ActiveModel {
        id: Set(user.id.clone()),
        role: Set(after.role.as_str().to_owned()),
        vip: Set(after.vip),
        status: Set(after.status.as_str().to_owned()),
        updated_at: Set(to_db(now)),
        ..Default::default()
    }
    .update(tx)
    .await?;
    let revoke_reason = if after.status == UserStatus::Disabled && before.status != after.status {
        Some(REVOKE_DISABLED)
    } else if after.role < before.role {
        Some(REVOKE_DEMOTED)
    } else {
        None
    };
    let families = match revoke_reason {
        Some(why) => crate::auth::sessions::revoke_user(tx, now, &user.id, None, why).await?,
        None => Vec::new(),
    };
    audit_with_detail(
        tx,
        now,
        Some(actor),
        "admin.user.update",
        "user",
        Some(&user.id),
        actor_ip,
        Some(serde_json::json!({
            "before": before,
            "after": after,
            "sessions_revoked": families.len(),
        })),
    )
    .await?;
    Ok((row, families))
}
