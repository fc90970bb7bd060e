//! Sign-in ceremony state (OAuth `state`, pending links, passkey challenges): kept in the
//! database so any instance finishes what another started, encrypted, short-lived and usable once.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Serialize, de::DeserializeOwned};
use time::Duration;

use crate::{
    app::AppState,
    db::entities::auth_ceremonies::{self, Column, Entity as Ceremonies},
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        rng,
        secrets::hash_token,
    },
};

/// What a ceremony is for; a handle of one kind never opens another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OAuth redirect in flight (keyed by `state`).
    OAuthState,
    /// A provider identity waiting for the owner of the matching account to sign in.
    OAuthLink,
    /// A provider identity without a verified e-mail, waiting for one.
    OAuthSignup,
    /// A passkey registration.
    PasskeyRegister,
    /// A passkey sign-in.
    PasskeyAuthenticate,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::OAuthState => "OAUTH_STATE",
            Self::OAuthLink => "OAUTH_LINK",
            Self::OAuthSignup => "OAUTH_SIGNUP",
            Self::PasskeyRegister => "PASSKEY_REGISTER",
            Self::PasskeyAuthenticate => "PASSKEY_AUTHENTICATE",
        }
    }
}

/// A ceremony taken back: who started it and its data.
pub struct Taken<T> {
    /// The signed-in user who started it, if any.
    pub user_id: Option<String>,
    /// The stored data.
    pub data: T,
}

/// Stores ceremony data under a fresh random handle (returned; only its hash is stored).
pub async fn put<T: Serialize>(
    state: &AppState,
    kind: Kind,
    user_id: Option<&str>,
    ttl: Duration,
    data: &T,
) -> AppResult<String> {
    let handle = rng::token(state.rng.as_ref(), 32);
    let now = state.clock.now();
    let json = serde_json::to_vec(data).map_err(anyhow::Error::from)?;
    Ceremonies::insert(auth_ceremonies::ActiveModel {
        id: Set(hash_token(&handle)),
        kind: Set(kind.as_str().to_owned()),
        user_id: Set(user_id.map(str::to_owned)),
        data: Set(state.secrets.encrypt(state.rng.as_ref(), &json)),
        expires_at: Set(to_db(now + ttl)),
        created_at: Set(to_db(now)),
    })
    .exec(&state.db)
    .await?;
    // Expired ceremonies are never read again; clearing them here keeps the table small
    // without a sweeper. A failure only delays the cleanup.
    let _ = Ceremonies::delete_many()
        .filter(Column::ExpiresAt.lt(to_db(now - Duration::minutes(5))))
        .exec(&state.db)
        .await;
    Ok(handle)
}

/// Takes a ceremony: `None` when the handle is unknown, of another kind, expired or already
/// taken. Of two concurrent takes only one gets it (the delete's row count decides).
pub async fn take<T: DeserializeOwned, C: ConnectionTrait>(
    state: &AppState,
    conn: &C,
    kind: Kind,
    handle: &str,
) -> AppResult<Option<Taken<T>>> {
    let id = hash_token(handle);
    let Some(row) = Ceremonies::find_by_id(id.clone())
        .filter(Column::Kind.eq(kind.as_str()))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let deleted = Ceremonies::delete_many()
        .filter(Column::Id.eq(&id))
        .exec(conn)
        .await?;
    if deleted.rows_affected != 1 || from_db(row.expires_at) <= state.clock.now() {
        return Ok(None);
    }
    let plain = state
        .secrets
        .decrypt(&row.data)
        .map_err(AppError::internal)?;
    let data =
        serde_json::from_slice(&plain).map_err(|e| AppError::internal(anyhow::Error::from(e)))?;
    Ok(Some(Taken {
        user_id: row.user_id,
        data,
    }))
}
