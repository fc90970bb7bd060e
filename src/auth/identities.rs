//! Linked provider identities and the "last way to sign in" rule shared with passkeys.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, sea_query::Expr,
};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::oauth::ProviderIdentity;
use crate::{
    app::AppState,
    db::entities::{
        user_identities::{self, Column, Entity as Identities},
        users, webauthn_credentials,
    },
    error::{AppError, AppResult},
    infra::clock::{from_db, to_db},
};

/// A linked identity as its owner sees it (never the tokens).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IdentityView {
    /// Id (for `DELETE /auth/identities/{id}`).
    pub id: String,
    /// `google`, `naver` or `kakao`.
    pub provider: String,
    /// The address the provider gave, if any.
    pub email: Option<String>,
    /// When it was linked.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last sign-in with it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<user_identities::Model> for IdentityView {
    fn from(r: user_identities::Model) -> Self {
        Self {
            id: r.id,
            provider: r.provider,
            email: r.email,
            created_at: from_db(r.created_at),
            last_used_at: r.last_used_at.map(from_db),
        }
    }
}

/// The identity with this provider subject, if linked.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    provider: &str,
    subject: &str,
) -> AppResult<Option<user_identities::Model>> {
    Ok(Identities::find()
        .filter(Column::Provider.eq(provider))
        .filter(Column::Subject.eq(subject))
        .one(conn)
        .await?)
}

/// Links an identity to a user; a subject linked elsewhere fails on
/// `ux_user_identities_subject`.
pub async fn insert<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    now: OffsetDateTime,
    user_id: &str,
    identity: &ProviderIdentity,
) -> AppResult<user_identities::Model> {
    let row = user_identities::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        provider: Set(identity.provider.as_str().to_owned()),
        subject: Set(identity.subject.clone()),
        email: Set(identity
            .email
            .as_deref()
            .map(|e| crate::error::truncate(e, 200))),
        email_verified: Set(identity.email_verified),
        refresh_token_enc: Set(encrypt_token(state, identity.refresh_token.as_deref())),
        created_at: Set(to_db(now)),
        last_used_at: Set(Some(to_db(now))),
    };
    match row.insert(conn).await {
        Ok(row) => Ok(row),
        Err(e) if crate::db::unique_violation(&e) == Some("ux_user_identities_subject") => {
            Err(identity_in_use())
        }
        Err(e) => Err(e.into()),
    }
}

/// 409 `identity_in_use`.
pub fn identity_in_use() -> AppError {
    AppError::conflict(
        "identity_in_use",
        "This provider account is already linked to another account.",
    )
}

fn encrypt_token(state: &AppState, token: Option<&str>) -> Option<String> {
    token.map(|t| state.secrets.encrypt(state.rng.as_ref(), t.as_bytes()))
}

/// Notes a sign-in with an identity; a new refresh token replaces the stored one.
pub async fn touch<C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    now: OffsetDateTime,
    id: &str,
    refresh_token: Option<&str>,
) -> AppResult<()> {
    let mut row = user_identities::ActiveModel {
        id: Set(id.to_owned()),
        last_used_at: Set(Some(to_db(now))),
        ..Default::default()
    };
    if refresh_token.is_some() {
        row.refresh_token_enc = Set(encrypt_token(state, refresh_token));
    }
    row.update(conn).await?;
    Ok(())
}

/// The decrypted refresh token of an identity, if one is kept.
pub fn refresh_token(state: &AppState, row: &user_identities::Model) -> Option<String> {
    let stored = row.refresh_token_enc.as_deref()?;
    match state.secrets.decrypt(stored) {
        Ok(bytes) => String::from_utf8(bytes).ok(),
        Err(e) => {
            tracing::warn!(error = %e, "a stored provider token cannot be decrypted");
            None
        }
    }
}

/// The user's identities, oldest first.
pub async fn list<C: ConnectionTrait>(conn: &C, user_id: &str) -> AppResult<Vec<IdentityView>> {
    Ok(Identities::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(IdentityView::from)
        .collect())
}

/// Serialises changes to a user's ways of signing in: on MariaDB the row lock is held to
/// commit, so two removals cannot both see "one other method left"; SQLite writers take turns.
pub async fn lock_user<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    user_id: &str,
) -> AppResult<()> {
    users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(to_db(now)))
        .filter(users::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// How many ways the user has to sign in: a password, each passkey, each identity. (The
/// e-mail code is a fallback, not a way of its own: it only proves the mailbox.)
pub async fn sign_in_methods<C: ConnectionTrait>(conn: &C, user_id: &str) -> AppResult<u64> {
    let password = users::Entity::find_by_id(user_id.to_owned())
        .one(conn)
        .await?
        .is_some_and(|u| u.password.is_some());
    let passkeys = webauthn_credentials::Entity::find()
        .filter(webauthn_credentials::Column::UserId.eq(user_id))
        .count(conn)
        .await?;
    let identities = Identities::find()
        .filter(Column::UserId.eq(user_id))
        .count(conn)
        .await?;
    Ok(u64::from(password) + passkeys + identities)
}

/// 409 `last_sign_in_method`.
pub fn last_method() -> AppError {
    AppError::conflict(
        "last_sign_in_method",
        "This is your last way to sign in; add a password, a passkey or another provider first.",
    )
}

/// Unlinks one of the user's identities (not the last way to sign in), then revokes our grant
/// at the provider. A provider that cannot be reached does not keep the link alive.
pub async fn unlink(state: &AppState, user_id: &str, id: &str) -> AppResult<()> {
    let now = state.clock.now();
    let removed = crate::db::write_tx(&state.db, |tx| {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        Box::pin(async move {
            lock_user(tx, now, &user_id).await?;
            let row = Identities::find_by_id(id.clone())
                .filter(Column::UserId.eq(&user_id))
                .one(tx)
                .await?
                .ok_or_else(AppError::not_found)?;
            if sign_in_methods(tx, &user_id).await? <= 1 {
                return Err(last_method());
            }
            Identities::delete_by_id(id.clone()).exec(tx).await?;
            super::flows::audit(
                tx,
                now,
                Some(&user_id),
                "identity.unlinked",
                "identity",
                Some(&id),
                None,
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    if let (Some(token), Ok(provider_id)) = (
        refresh_token(state, &removed),
        super::oauth::ProviderId::parse(&removed.provider),
    ) && let Ok(provider) = state.oauth.get(provider_id)
        && state.oauth.revoke(provider, &token).await.is_err()
    {
        tracing::warn!(
            provider = provider_id.as_str(),
            "could not revoke the grant at the provider after unlinking"
        );
    }
    Ok(())
}
