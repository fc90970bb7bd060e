//! Sessions (`user_authorization`): one family per sign-in, refresh tokens stored only
//! as hashes and rotated on every use; reuse of a spent token revokes the family.

use std::time::Duration as StdDuration;

use moka::sync::Cache;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use time::{Duration, OffsetDateTime};

use super::model::Role;
use crate::{
    db::entities::{
        user_authorization::{self, Column, Entity as Sessions},
        users,
    },
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        rng::{self, Rng},
        secrets::hash_token,
    },
};

/// Refresh tokens and browser sessions live this long after their last rotation.
pub const SESSION_TTL: Duration = Duration::days(30);

/// How a session is held by the client.
pub mod kind {
    /// JSON API: rotating refresh tokens.
    pub const REFRESH: &str = "REFRESH";
    /// Browser: the `bo_session` cookie.
    pub const COOKIE: &str = "COOKIE";
}

/// Why a family was revoked.
pub mod reason {
    /// The user signed out.
    pub const LOGOUT: &str = "LOGOUT";
    /// A spent refresh token was presented again.
    pub const REUSE: &str = "REUSE";
}

/// Where a sign-in came from.
#[derive(Clone, Debug, Default)]
pub struct ClientMeta {
    /// Client address.
    pub ip: Option<String>,
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
}

/// Starts a session family; returns `(family_id, secret)` where the secret is the
/// refresh token or the cookie value, shown to the client once.
pub async fn start<C: ConnectionTrait>(
    conn: &C,
    rng: &dyn Rng,
    now: OffsetDateTime,
    user_id: &str,
    session_kind: &str,
    method: &str,
    meta: &ClientMeta,
) -> AppResult<(String, String)> {
    let family_id = uuid::Uuid::now_v7().to_string();
    let secret = rng::token(rng, 32);
    insert_token(
        conn,
        now,
        user_id,
        &family_id,
        session_kind,
        method,
        &secret,
        meta,
    )
    .await?;
    Ok((family_id, secret))
}

#[allow(clippy::too_many_arguments)]
async fn insert_token<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    user_id: &str,
    family_id: &str,
    session_kind: &str,
    method: &str,
    secret: &str,
    meta: &ClientMeta,
) -> AppResult<()> {
    user_authorization::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        family_id: Set(family_id.to_owned()),
        kind: Set(session_kind.to_owned()),
        refresh_token_hash: Set(hash_token(secret)),
        auth_method: Set(method.to_owned()),
        created_at: Set(to_db(now)),
        expires_at: Set(to_db(now + SESSION_TTL)),
        used_at: Set(None),
        last_used_at: Set(Some(to_db(now))),
        revoked_at: Set(None),
        revoke_reason: Set(None),
        ip: Set(meta.ip.clone()),
        user_agent: Set(meta.user_agent.clone()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The result of presenting a refresh token.
pub enum Rotation {
    /// A new refresh token for the same family.
    Rotated {
        /// The account.
        user: Box<users::Model>,
        /// Session family.
        family_id: String,
        /// The new refresh token.
        refresh_token: String,
    },
    /// A spent token came back: the family is now revoked.
    Reused {
        /// The revoked family.
        family_id: String,
    },
}

/// Rotates a refresh token inside the caller's write transaction.
pub async fn rotate<C: ConnectionTrait>(
    conn: &C,
    rng: &dyn Rng,
    now: OffsetDateTime,
    presented: &str,
    meta: &ClientMeta,
) -> AppResult<Rotation> {
    let invalid = || AppError::unauthorized("unauthenticated", "The refresh token is not valid.");
    let row = Sessions::find()
        .filter(Column::RefreshTokenHash.eq(hash_token(presented)))
        .filter(Column::Kind.eq(kind::REFRESH))
        .one(conn)
        .await?
        .ok_or_else(invalid)?;
    if row.revoked_at.is_some() {
        return Err(invalid());
    }
    if row.used_at.is_some() {
        revoke_family(conn, now, &row.family_id, reason::REUSE).await?;
        return Ok(Rotation::Reused {
            family_id: row.family_id,
        });
    }
    if from_db(row.expires_at) <= now {
        return Err(AppError::unauthorized(
            "token_expired",
            "The refresh token has expired; sign in again.",
        ));
    }
    // The affected-row count decides: of two concurrent uses, only one rotates.
    let spent = Sessions::update_many()
        .col_expr(Column::UsedAt, Expr::value(Some(to_db(now))))
        .filter(Column::Id.eq(&row.id))
        .filter(Column::UsedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    if spent.rows_affected != 1 {
        revoke_family(conn, now, &row.family_id, reason::REUSE).await?;
        return Ok(Rotation::Reused {
            family_id: row.family_id,
        });
    }
    let user = users::Entity::find_by_id(row.user_id.clone())
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none() && u.status != super::model::status::DISABLED)
        .ok_or_else(invalid)?;
    let refresh_token = rng::token(rng, 32);
    insert_token(
        conn,
        now,
        &row.user_id,
        &row.family_id,
        kind::REFRESH,
        &row.auth_method,
        &refresh_token,
        meta,
    )
    .await?;
    Ok(Rotation::Rotated {
        user: Box::new(user),
        family_id: row.family_id,
        refresh_token,
    })
}

/// Revokes every token of a family; returns how many were still live.
pub async fn revoke_family<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    family_id: &str,
    why: &str,
) -> AppResult<u64> {
    let res = Sessions::update_many()
        .col_expr(Column::RevokedAt, Expr::value(Some(to_db(now))))
        .col_expr(Column::RevokeReason, Expr::value(Some(why)))
        .filter(Column::FamilyId.eq(family_id))
        .filter(Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// Revokes every live session family of a user except `keep`; returns the families revoked, to
/// be announced after commit.
pub async fn revoke_user<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    user_id: &str,
    keep: Option<&str>,
    why: &str,
) -> AppResult<Vec<String>> {
    let mut live = Sessions::find()
        .select_only()
        .column(Column::FamilyId)
        .distinct()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        live = live.filter(Column::FamilyId.ne(keep));
    }
    let families: Vec<String> = live.into_tuple().all(conn).await?;
    if !families.is_empty() {
        Sessions::update_many()
            .col_expr(Column::RevokedAt, Expr::value(Some(to_db(now))))
            .col_expr(Column::RevokeReason, Expr::value(Some(why)))
            .filter(Column::FamilyId.is_in(families.clone()))
            .filter(Column::RevokedAt.is_null())
            .exec(conn)
            .await?;
    }
    Ok(families)
}

/// Families revoked recently enough that their access tokens may still be alive.
pub async fn recently_revoked(
    db: &DatabaseConnection,
    since: OffsetDateTime,
) -> AppResult<Vec<String>> {
    let rows: Vec<String> = Sessions::find()
        .select_only()
        .column(Column::FamilyId)
        .distinct()
        .filter(Column::RevokedAt.gte(to_db(since)))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows)
}

/// A browser session as the extractor needs it.
#[derive(Clone, Debug)]
pub struct CookieSession {
    /// Account.
    pub user_id: String,
    /// Session family.
    pub family_id: String,
    /// Role.
    pub role: Role,
    /// VIP flag.
    pub vip: bool,
    /// End of the session.
    pub expires_at: OffsetDateTime,
}

/// Looks up a live browser session by its cookie secret.
pub async fn find_cookie_session(
    db: &DatabaseConnection,
    now: OffsetDateTime,
    secret: &str,
) -> AppResult<Option<CookieSession>> {
    let row = Sessions::find()
        .filter(Column::RefreshTokenHash.eq(hash_token(secret)))
        .filter(Column::Kind.eq(kind::COOKIE))
        .filter(Column::RevokedAt.is_null())
        .one(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    if from_db(row.expires_at) <= now {
        return Ok(None);
    }
    let user = users::Entity::find_by_id(row.user_id.clone())
        .one(db)
        .await?
        .filter(|u| u.deleted_at.is_none() && u.status == super::model::status::ACTIVE);
    Ok(user.map(|u| CookieSession {
        user_id: u.id,
        family_id: row.family_id,
        role: u.role.parse().unwrap_or(Role::User),
        vip: u.vip,
        expires_at: from_db(row.expires_at),
    }))
}

/// Session families revoked on any instance, kept while their access tokens could live.
pub struct RevokedSessions(Cache<String, ()>);

impl Default for RevokedSessions {
    fn default() -> Self {
        Self(
            Cache::builder()
                .time_to_live(StdDuration::from_secs(
                    super::tokens::ACCESS_TTL_SECONDS as u64 + 60,
                ))
                .build(),
        )
    }
}

impl RevokedSessions {
    /// Marks a family revoked on this instance.
    pub fn insert(&self, family_id: &str) {
        self.0.insert(family_id.to_owned(), ());
    }
    /// Whether a family was revoked.
    pub fn contains(&self, family_id: &str) -> bool {
        self.0.contains_key(family_id)
    }
}

/// A live session as its owner sees it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Session id (the family id).
    pub id: String,
    /// Browser and system, from the user agent.
    pub device: String,
    /// Client address at the last sign-in or refresh.
    pub ip: Option<String>,
    /// `User-Agent` at the last sign-in or refresh.
    pub user_agent: Option<String>,
    /// `REFRESH` (API) or `COOKIE` (browser).
    pub kind: String,
    /// How the user signed in.
    pub method: String,
    /// Sign-in time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last sign-in or refresh.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_used_at: OffsetDateTime,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// The user's live sessions, most recently used first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    user_id: &str,
    current: &str,
) -> AppResult<Vec<SessionView>> {
    // One unspent, unrevoked row per live family: the current refresh token or the cookie.
    let live = Sessions::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(to_db(now)))
        .all(conn)
        .await?;
    let families: Vec<String> = live.iter().map(|r| r.family_id.clone()).collect();
    let started: Vec<(String, time::PrimitiveDateTime)> = if families.is_empty() {
        Vec::new()
    } else {
        Sessions::find()
            .select_only()
            .column(Column::FamilyId)
            .column_as(Column::CreatedAt.min(), "started")
            .filter(Column::FamilyId.is_in(families))
            .group_by(Column::FamilyId)
            .into_tuple()
            .all(conn)
            .await?
    };
    let mut views: Vec<SessionView> = live
        .into_iter()
        .map(|row| {
            let created = started
                .iter()
                .find(|(family, _)| *family == row.family_id)
                .map(|(_, t)| from_db(*t))
                .unwrap_or_else(|| from_db(row.created_at));
            SessionView {
                current: row.family_id == current,
                device: super::device::describe(row.user_agent.as_deref()),
                id: row.family_id,
                ip: row.ip,
                user_agent: row.user_agent,
                kind: row.kind,
                method: row.auth_method,
                created_at: created,
                last_used_at: from_db(row.last_used_at.unwrap_or(row.created_at)),
            }
        })
        .collect();
    views.sort_by_key(|v| std::cmp::Reverse(v.last_used_at));
    Ok(views)
}

/// When a user's session family started, if it is theirs and live.
pub async fn started_at<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    family_id: &str,
) -> AppResult<Option<OffsetDateTime>> {
    let first = Sessions::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::FamilyId.eq(family_id))
        .filter(Column::RevokedAt.is_null())
        .order_by_asc(Column::CreatedAt)
        .one(conn)
        .await?;
    Ok(first.map(|r| from_db(r.created_at)))
}
