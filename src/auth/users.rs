//! User storage.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use time::OffsetDateTime;

use super::model::{Email, Locale, Role, status};
use crate::{
    db::entities::users::{self, Column, Entity as Users},
    error::AppResult,
    infra::clock::to_db,
};

/// What a new account needs.
pub struct NewUser<'a> {
    /// Address.
    pub email: &'a Email,
    /// Argon2id hash, if the account has a password.
    pub password_hash: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Language.
    pub locale: Locale,
    /// Role.
    pub role: Role,
    /// VIP flag.
    pub vip: bool,
    /// Whether the address counts as verified already (admin-created accounts).
    pub verified: bool,
}

/// Inserts a user; a duplicate address fails on `ux_users_email_normalized`.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    new: NewUser<'_>,
) -> AppResult<users::Model> {
    let model = users::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        email: Set(new.email.as_str().to_owned()),
        email_normalized: Set(new.email.normalized().to_owned()),
        password: Set(new.password_hash),
        name: Set(new.name),
        nickname: Set(new.nickname),
        role: Set(new.role.as_str().to_owned()),
        vip: Set(new.vip),
        status: Set(status::ACTIVE.to_owned()),
        locale: Set(new.locale.as_str().to_owned()),
        email_verified_at: Set(new.verified.then(|| to_db(now))),
        failed_login_count: Set(0),
        failed_login_window_start: Set(None),
        locked_until: Set(None),
        last_login_at: Set(None),
        created_at: Set(to_db(now)),
        updated_at: Set(to_db(now)),
        deleted_at: Set(None),
    };
    Ok(model.insert(conn).await?)
}

/// A live (not deleted) user by address.
pub async fn find_by_email<C: ConnectionTrait>(
    conn: &C,
    email: &Email,
) -> AppResult<Option<users::Model>> {
    Ok(Users::find()
        .filter(Column::EmailNormalized.eq(email.normalized()))
        .filter(Column::DeletedAt.is_null())
        .one(conn)
        .await?)
}

/// A live (not deleted) user by id.
pub async fn find_by_id<C: ConnectionTrait>(conn: &C, id: &str) -> AppResult<Option<users::Model>> {
    Ok(Users::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none()))
}
