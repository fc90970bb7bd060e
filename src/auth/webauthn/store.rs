//! Passkey storage: one row per credential, the credential id stored hashed for lookup.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use webauthn_rs::prelude::Passkey;

use crate::{
    db::entities::webauthn_credentials::{self, Column, Entity as Credentials},
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        secrets::{hash_token, hex},
    },
};

/// A passkey as its owner sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// Id (for rename and delete).
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// `MULTI_DEVICE` (synced, e.g. a phone's passkey manager) or `SINGLE_DEVICE` (a security key).
    pub authenticator_type: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last sign-in with it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<webauthn_credentials::Model> for CredentialView {
    fn from(r: webauthn_credentials::Model) -> Self {
        Self {
            id: r.id,
            name: r.name,
            authenticator_type: r.authenticator_type,
            created_at: from_db(r.created_at),
            last_used_at: r.last_used_at.map(from_db),
        }
    }
}

/// The lookup key of a raw credential id.
pub fn credential_hash(raw_id: &[u8]) -> String {
    hash_token(&hex(raw_id))
}

/// What the stored passkey says about itself: `(counter, backup_eligible)`.
fn facts(passkey: &Passkey) -> AppResult<(i64, bool)> {
    let value =
        serde_json::to_value(passkey).map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
    let cred = &value["cred"];
    Ok((
        cred["counter"].as_i64().unwrap_or(0),
        cred["backup_eligible"].as_bool().unwrap_or(false),
    ))
}

fn encode(passkey: &Passkey) -> AppResult<String> {
    serde_json::to_string(passkey).map_err(|e| AppError::internal(anyhow::Error::from(e)))
}

/// The stored passkey of a row.
pub fn decode(row: &webauthn_credentials::Model) -> AppResult<Passkey> {
    serde_json::from_str(&row.passkey).map_err(|e| AppError::internal(anyhow::Error::from(e)))
}

/// Stores a newly registered passkey; an id registered before is 409 `passkey_exists`.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    user_id: &str,
    name: &str,
    passkey: &Passkey,
) -> AppResult<webauthn_credentials::Model> {
    let raw = passkey.cred_id().as_slice();
    let (counter, synced) = facts(passkey)?;
    let row = webauthn_credentials::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        credential_id_hash: Set(credential_hash(raw)),
        credential_id: Set(URL_SAFE_NO_PAD.encode(raw)),
        name: Set(name.to_owned()),
        passkey: Set(encode(passkey)?),
        sign_count: Set(counter),
        authenticator_type: Set(if synced {
            "MULTI_DEVICE"
        } else {
            "SINGLE_DEVICE"
        }
        .to_owned()),
        created_at: Set(to_db(now)),
        last_used_at: Set(None),
    };
    match row.insert(conn).await {
        Ok(row) => Ok(row),
        Err(e) if crate::db::unique_violation(&e) == Some("ux_webauthn_credentials_credential") => {
            Err(AppError::conflict(
                "passkey_exists",
                "This passkey is already registered.",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// A credential by its raw id.
pub async fn by_credential_id<C: ConnectionTrait>(
    conn: &C,
    raw_id: &[u8],
) -> AppResult<Option<webauthn_credentials::Model>> {
    Ok(Credentials::find()
        .filter(Column::CredentialIdHash.eq(credential_hash(raw_id)))
        .one(conn)
        .await?)
}

/// The user's passkeys, oldest first.
pub async fn of_user<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> AppResult<Vec<webauthn_credentials::Model>> {
    Ok(Credentials::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await?)
}

/// Records a sign-in: the new counter and flags, only forward (a concurrent sign-in that
/// already stored a higher counter wins).
pub async fn used<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    id: &str,
    passkey: &Passkey,
) -> AppResult<()> {
    let (counter, _) = facts(passkey)?;
    Credentials::update_many()
        .col_expr(Column::Passkey, Expr::value(encode(passkey)?))
        .col_expr(Column::SignCount, Expr::value(counter))
        .col_expr(Column::LastUsedAt, Expr::value(Some(to_db(now))))
        .filter(Column::Id.eq(id))
        .filter(Column::SignCount.lte(counter))
        .exec(conn)
        .await?;
    Ok(())
}
