//! Passkey ceremonies without HTTP: registration for a signed-in user, and sign-in either
//! identified (the user's credentials in `allowCredentials`) or discoverable (empty, for
//! conditional UI). State lives server-side ([`ceremonies`]), so any instance finishes it, once.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::Duration;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use super::store::{self, CredentialView};
use crate::{
    app::AppState,
    auth::{
        attempts::{method, result},
        ceremonies::{self, Kind},
        flows::{self, Delivery, SignedIn},
        identities,
        model::{Email, parse_name},
        sessions::ClientMeta,
        signin, users,
    },
    db::{self, entities::webauthn_credentials},
    error::{AppError, AppResult},
    security::events::{self, EventKind, Severity},
};

/// How long the user has for the authenticator's prompt.
pub const CEREMONY_TTL: Duration = Duration::minutes(5);

/// 400 `webauthn_challenge_invalid`: unknown, used, expired or someone else's ceremony.
pub fn challenge_invalid() -> AppError {
    AppError::bad_request(
        "webauthn_challenge_invalid",
        "This passkey prompt is unknown, was already answered or has expired; start again.",
    )
}

/// 401 `passkey_invalid`.
fn passkey_invalid(detail: &str) -> AppError {
    AppError::unauthorized("passkey_invalid", detail.to_owned())
}

/// 503 `passkeys_unavailable`: `PUBLIC_URL` is not a host name passkeys can be bound to.
pub fn unavailable() -> AppError {
    AppError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "passkeys_unavailable",
        "Passkeys need PUBLIC_URL to be a host name; sign in another way.",
    )
}

/// Registration options (for `navigator.credentials.create`) and the ceremony to finish.
pub struct Options {
    /// Pass back to `…/finish`.
    pub ceremony_id: String,
    /// `{publicKey: …}`.
    pub options: serde_json::Value,
}

fn json<T: Serialize>(value: &T) -> AppResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| AppError::internal(anyhow::Error::from(e)))
}

fn user_uuid(user_id: &str) -> AppResult<Uuid> {
    Uuid::parse_str(user_id).map_err(|e| AppError::internal(anyhow::Error::from(e)))
}

/// Starts registering a passkey for the signed-in user; their existing ones are excluded.
pub async fn start_registration(state: &AppState, user_id: &str) -> AppResult<Options> {
    let webauthn = state.passkeys.get()?;
    let user = users::find_by_id(&state.db, user_id)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    let existing = store::of_user(&state.db, user_id)
        .await?
        .iter()
        .map(|row| store::decode(row).map(|p| p.cred_id().clone()))
        .collect::<AppResult<Vec<_>>>()?;
    let display = user.name.clone().unwrap_or_else(|| user.email.clone());
    let (ccr, registration) = webauthn
        .start_passkey_registration(user_uuid(user_id)?, &user.email, &display, Some(existing))
        .map_err(|e| AppError::internal(anyhow::anyhow!("passkey registration start: {e}")))?;
    let mut options = json(&ccr)?;
    // A discoverable credential where the authenticator can keep one (usernameless sign-in),
    // without refusing those that cannot.
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(|v| v.as_object_mut())
    {
        selection.insert("residentKey".into(), "preferred".into());
    }
    let ceremony_id = ceremonies::put(
        state,
        Kind::PasskeyRegister,
        Some(user_id),
        CEREMONY_TTL,
        &registration,
    )
    .await?;
    Ok(Options {
        ceremony_id,
        options,
    })
}

/// Verifies the authenticator's answer (challenge, origin, RP id hash, flags, signature and a
/// packed/self attestation when there is one; `none` is accepted) and stores the passkey.
pub async fn finish_registration(
    state: &AppState,
    user_id: &str,
    ceremony_id: &str,
    name: Option<&str>,
    credential: &RegisterPublicKeyCredential,
) -> AppResult<CredentialView> {
    let webauthn = state.passkeys.get()?;
    let name = match name {
        Some(n) => parse_name("name", n, 100).map_err(|e| AppError::validation(vec![e]))?,
        None => "Passkey".to_owned(),
    };
    let taken = ceremonies::take::<PasskeyRegistration, _>(
        state,
        &state.db,
        Kind::PasskeyRegister,
        ceremony_id,
    )
    .await?
    .filter(|t| t.user_id.as_deref() == Some(user_id))
    .ok_or_else(challenge_invalid)?;
    let passkey = webauthn
        .finish_passkey_registration(credential, &taken.data)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            passkey_invalid("The authenticator's answer could not be verified.")
        })?;
    let now = state.clock.now();
    let row = db::write_tx(&state.db, |tx| {
        let (passkey, name, user_id) = (passkey.clone(), name.clone(), user_id.to_owned());
        Box::pin(async move {
            let row = store::insert(tx, now, &user_id, &name, &passkey).await?;
            flows::audit(
                tx,
                now,
                Some(&user_id),
                "passkey.registered",
                "passkey",
                Some(&row.id),
                None,
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    Ok(CredentialView::from(row))
}

/// What a sign-in ceremony remembers.
#[derive(Serialize, Deserialize)]
enum Pending {
    /// Credentials of one account were offered.
    Identified {
        user_id: String,
        state: PasskeyAuthentication,
    },
    /// Any discoverable credential may answer.
    Discoverable { state: DiscoverableAuthentication },
}

/// Starts a sign-in: with an address, that account's passkeys are offered; without one (or for
/// an address without passkeys, so addresses cannot be probed) the list is empty.
pub async fn start_authentication(state: &AppState, email: Option<&str>) -> AppResult<Options> {
    let webauthn = state.passkeys.get()?;
    let mut identified = None;
    if let Some(email) = email {
        let email = Email::parse(email).map_err(|e| AppError::validation(vec![e]))?;
        if let Some(user) = users::find_by_email(&state.db, &email).await? {
            let passkeys = store::of_user(&state.db, &user.id)
                .await?
                .iter()
                .map(store::decode)
                .collect::<AppResult<Vec<_>>>()?;
            if !passkeys.is_empty() {
                identified = Some((user.id, passkeys));
            }
        }
    }
    let fail = |e: WebauthnError| AppError::internal(anyhow::anyhow!("passkey sign-in start: {e}"));
    let (rcr, pending) = match identified {
        Some((user_id, passkeys)) => {
            let (rcr, auth) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(fail)?;
            (
                rcr,
                Pending::Identified {
                    user_id,
                    state: auth,
                },
            )
        }
        None => {
            let (mut rcr, auth) = webauthn.start_discoverable_authentication().map_err(fail)?;
            if email.is_some() {
                // Looks like an identified prompt for an account without passkeys.
                rcr.mediation = None;
            }
            (rcr, Pending::Discoverable { state: auth })
        }
    };
    let ceremony_id = ceremonies::put(
        state,
        Kind::PasskeyAuthenticate,
        None,
        CEREMONY_TTL,
        &pending,
    )
    .await?;
    Ok(Options {
        ceremony_id,
        options: json(&rcr)?,
    })
}

/// Finishes a sign-in: the credential must be registered, belong to the account the ceremony
/// is for, and verify (challenge, origin, RP id hash, user verification, signature, counter).
pub async fn finish_authentication(
    state: &AppState,
    ceremony_id: &str,
    credential: &PublicKeyCredential,
    delivery: Delivery,
    meta: &ClientMeta,
    ip: IpAddr,
) -> AppResult<SignedIn> {
    let webauthn = state.passkeys.get()?;
    let fail = |user_id: Option<String>, why: &'static str, err: AppError| async move {
        signin::record_failure(
            state,
            user_id.as_deref(),
            None,
            method::PASSKEY,
            why,
            meta,
            ip,
        )
        .await;
        Err(err)
    };
    let Some(taken) =
        ceremonies::take::<Pending, _>(state, &state.db, Kind::PasskeyAuthenticate, ceremony_id)
            .await?
    else {
        return fail(None, result::PASSKEY_INVALID, challenge_invalid()).await;
    };
    let unknown = || passkey_invalid("This passkey is not registered here.");
    let Some(row) = store::by_credential_id(&state.db, credential.get_credential_id()).await?
    else {
        return fail(None, result::PASSKEY_INVALID, unknown()).await;
    };
    let mut passkey = store::decode(&row)?;
    let verified = match taken.data {
        Pending::Identified {
            user_id,
            state: auth,
        } => {
            if user_id != row.user_id {
                return fail(Some(user_id), result::PASSKEY_INVALID, unknown()).await;
            }
            webauthn.finish_passkey_authentication(credential, &auth)
        }
        Pending::Discoverable { state: auth } => {
            let handle = webauthn
                .identify_discoverable_authentication(credential)
                .map(|(uuid, _)| uuid);
            if handle.ok() != Uuid::parse_str(&row.user_id).ok() {
                return fail(
                    Some(row.user_id.clone()),
                    result::PASSKEY_INVALID,
                    unknown(),
                )
                .await;
            }
            webauthn.finish_discoverable_authentication_v2(credential, auth, &passkey)
        }
    };
    let outcome = match verified {
        Ok(outcome) => outcome,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            counter_regressed(state, &row, ip).await?;
            return fail(
                Some(row.user_id.clone()),
                result::COUNTER_REGRESSED,
                passkey_invalid("This passkey's signature counter went backwards, which can mean it was copied; it was refused. Sign in another way and check your passkeys."),
            )
            .await;
        }
        Err(e) => {
            tracing::info!(error = %e, "passkey sign-in refused");
            return fail(
                Some(row.user_id.clone()),
                result::PASSKEY_INVALID,
                passkey_invalid("The passkey's answer could not be verified."),
            )
            .await;
        }
    };
    passkey.update_credential(&outcome);
    let now = state.clock.now();
    store::used(&state.db, now, &row.id, &passkey).await?;
    let account = users::find_by_id(&state.db, &row.user_id)
        .await?
        .ok_or_else(unknown)?;
    signin::complete(state, &account, method::PASSKEY, delivery, meta, ip).await
}

async fn counter_regressed(
    state: &AppState,
    row: &webauthn_credentials::Model,
    ip: IpAddr,
) -> AppResult<()> {
    let ip_text = ip.to_string();
    events::record(
        &state.db,
        state.clock.now(),
        EventKind::PasskeyCounterRegressed,
        Severity::High,
        Some(&row.user_id),
        Some(&ip_text),
        serde_json::json!({"credential": row.id, "stored_counter": row.sign_count}),
    )
    .await
}

/// The user's passkeys.
pub async fn list(state: &AppState, user_id: &str) -> AppResult<Vec<CredentialView>> {
    Ok(store::of_user(&state.db, user_id)
        .await?
        .into_iter()
        .map(CredentialView::from)
        .collect())
}

/// Renames one of the user's passkeys.
pub async fn rename(
    state: &AppState,
    user_id: &str,
    id: &str,
    name: &str,
) -> AppResult<CredentialView> {
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let name = parse_name("name", name, 100).map_err(|e| AppError::validation(vec![e]))?;
    webauthn_credentials::Entity::find_by_id(id.to_owned())
        .filter(webauthn_credentials::Column::UserId.eq(user_id))
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let row = webauthn_credentials::ActiveModel {
        id: Set(id.to_owned()),
        name: Set(name),
        ..Default::default()
    }
    .update(&state.db)
    .await?;
    Ok(CredentialView::from(row))
}

/// Removes one of the user's passkeys, unless it is their last way to sign in.
pub async fn remove(state: &AppState, user_id: &str, id: &str) -> AppResult<()> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let now = state.clock.now();
    db::write_tx(&state.db, |tx| {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        Box::pin(async move {
            identities::lock_user(tx, now, &user_id).await?;
            webauthn_credentials::Entity::find_by_id(id.clone())
                .filter(webauthn_credentials::Column::UserId.eq(&user_id))
                .one(tx)
                .await?
                .ok_or_else(AppError::not_found)?;
            if identities::sign_in_methods(tx, &user_id).await? <= 1 {
                return Err(identities::last_method());
            }
            webauthn_credentials::Entity::delete_by_id(id.clone())
                .exec(tx)
                .await?;
            flows::audit(
                tx,
                now,
                Some(&user_id),
                "passkey.removed",
                "passkey",
                Some(&id),
                None,
            )
            .await
        })
    })
    .await
}
