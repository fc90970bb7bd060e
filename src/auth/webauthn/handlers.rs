//! HTTP handlers for `/auth/webauthn/*`: extract, call a ceremony, map.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::{
    ceremony::{self, Options},
    store::CredentialView,
};
use crate::{
    app::AppState,
    auth::{
        extract::AuthUser,
        handlers::{LoginQuery, client_meta, deliver, delivery},
    },
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery, ClientIp, extract::ApiPath},
};

/// Options for the browser's WebAuthn call and the ceremony to finish.
#[derive(Serialize, ToSchema)]
pub struct CeremonyStarted {
    /// Send back with the authenticator's answer.
    ceremony_id: String,
    /// Pass to `navigator.credentials.create()` / `.get()` (after decoding the base64url fields).
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

impl From<Options> for CeremonyStarted {
    fn from(o: Options) -> Self {
        Self {
            ceremony_id: o.ceremony_id,
            options: o.options,
        }
    }
}

/// Starts registering a passkey for the signed-in user (resident key preferred; user
/// verification is required, as a passkey signs in alone).
#[utoipa::path(post, path = "/auth/webauthn/register", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = CeremonyStarted), (status = 401, body = Problem), (status = 503, description = "`passkeys_unavailable`", body = Problem)))]
pub async fn start_registration(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<ApiJson<CeremonyStarted>> {
    Ok(ApiJson(
        ceremony::start_registration(&state, &user.user_id)
            .await?
            .into(),
    ))
}

/// The authenticator's answer to a registration.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRegistration {
    /// From the start.
    ceremony_id: String,
    /// A name for it ("iPhone", "YubiKey"); default `Passkey`.
    name: Option<String>,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, base64url fields.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

/// Verifies the registration and stores the passkey.
#[utoipa::path(post, path = "/auth/webauthn/register/finish", tag = "auth", request_body = FinishRegistration,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = CredentialView),
        (status = 400, description = "`webauthn_challenge_invalid`", body = Problem),
        (status = 401, description = "`passkey_invalid`", body = Problem),
        (status = 409, description = "`passkey_exists`", body = Problem),
    ))]
pub async fn finish_registration(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<FinishRegistration>,
) -> AppResult<(StatusCode, ApiJson<CredentialView>)> {
    let view = ceremony::finish_registration(
        &state,
        &user.user_id,
        &req.ceremony_id,
        req.name.as_deref(),
        &req.credential,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Whom to sign in (optional).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com"}))]
pub struct StartAuthentication {
    /// With an address, that account's passkeys are offered; without a body, any
    /// discoverable passkey may answer (conditional UI).
    email: Option<String>,
}

/// Starts a passkey sign-in: identified (`{email}`) or discoverable (no body).
#[utoipa::path(post, path = "/auth/webauthn/authenticate", tag = "auth", request_body(content = Option<StartAuthentication>),
    responses((status = 200, body = CeremonyStarted), (status = 503, description = "`passkeys_unavailable`", body = Problem)))]
pub async fn start_authentication(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiJson<CeremonyStarted>> {
    let email = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if !json {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as application/json.",
            ));
        }
        let req: StartAuthentication = serde_json::from_slice(&body)
            .map_err(|e| AppError::malformed(crate::error::truncate(&e.to_string(), 200)))?;
        req.email
    };
    Ok(ApiJson(
        ceremony::start_authentication(&state, email.as_deref())
            .await?
            .into(),
    ))
}

/// The authenticator's answer to a sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishAuthentication {
    /// From the start.
    ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, base64url fields.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

/// Verifies the sign-in: a token pair, or with `?session=cookie` a browser session.
#[utoipa::path(post, path = "/auth/webauthn/authenticate/finish", tag = "auth", request_body = FinishAuthentication, params(LoginQuery),
    responses(
        (status = 200, description = "Token pair (or a browser session)", body = crate::auth::handlers::TokenPair),
        (status = 400, description = "`webauthn_challenge_invalid`", body = Problem),
        (status = 401, description = "`passkey_invalid` (also a counter that went backwards)", body = Problem),
        (status = 403, description = "`account_disabled` or `email_not_verified`", body = Problem),
    ))]
pub async fn finish_authentication(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<LoginQuery>,
    ApiJson(req): ApiJson<FinishAuthentication>,
) -> AppResult<Response> {
    let delivery = delivery(query.session.as_deref())?;
    let meta = client_meta(ip, &headers);
    let signed_in = ceremony::finish_authentication(
        &state,
        &req.ceremony_id,
        &req.credential,
        delivery,
        &meta,
        ip,
    )
    .await?;
    deliver(&state, signed_in, delivery)
}

/// The signed-in user's passkeys.
#[utoipa::path(get, path = "/auth/webauthn/credentials", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<CredentialView>), (status = 401, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<ApiJson<Vec<CredentialView>>> {
    Ok(ApiJson(ceremony::list(&state, &user.user_id).await?))
}

/// A new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "업무용 YubiKey"}))]
pub struct Rename {
    name: String,
}

/// Renames a passkey.
#[utoipa::path(patch, path = "/auth/webauthn/credentials/{id}", tag = "auth", request_body = Rename,
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Passkey id")),
    responses((status = 200, body = CredentialView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn rename(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Rename>,
) -> AppResult<ApiJson<CredentialView>> {
    Ok(ApiJson(
        ceremony::rename(&state, &user.user_id, &id, &req.name).await?,
    ))
}

/// Removes a passkey; the last way to sign in stays until another exists.
#[utoipa::path(delete, path = "/auth/webauthn/credentials/{id}", tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Passkey id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = Problem),
        (status = 409, description = "`last_sign_in_method`", body = Problem),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    ceremony::remove(&state, &user.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
