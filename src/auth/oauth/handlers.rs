//! HTTP handlers for `/auth/oauth/*` and `/auth/identities`: extract, call a flow, map.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    flow::{self, AppExchange, CallbackParams, Outcome},
    providers::{ProviderId, errors},
    redirect::{self, STATE_COOKIE, STATE_TTL},
};
use crate::{
    app::AppState,
    auth::{
        extract::{AuthUser, cookie},
        flows::Delivery,
        handlers::{client_meta, deliver, session_cookie},
        identities::{self, IdentityView},
        model::UserView,
        sessions::SESSION_TTL,
    },
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery, ClientIp, extract::ApiPath},
};

/// A provider offered for sign-in.
#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    /// `google`, `naver` or `kakao`.
    name: &'static str,
    /// Where a browser starts (add `?return_to=/path`).
    start_url: String,
}

/// The configured providers (one without a client id is not offered).
#[utoipa::path(get, path = "/auth/oauth/providers", tag = "auth",
    responses((status = 200, body = Vec<ProviderView>)))]
pub async fn providers(State(state): State<AppState>) -> ApiJson<Vec<ProviderView>> {
    ApiJson(
        state
            .oauth
            .configured()
            .map(|p| ProviderView {
                name: p.id.as_str(),
                start_url: format!("/auth/oauth/{}/start", p.id.as_str()),
            })
            .collect(),
    )
}

/// Where to come back to.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// A path on this site (default `/`); other origins are refused.
    return_to: Option<String>,
}

fn state_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.https() { "; Secure" } else { "" };
    // Lax: the provider's redirect back is a top-level navigation from another site.
    let cookie = format!(
        "{STATE_COOKIE}={value}; Path=/auth/oauth; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("bo_oauth=; Max-Age=0"))
}

fn clear_state_cookie(state: &AppState) -> HeaderValue {
    state_cookie(state, "", 0)
}

/// Sends the browser to the provider (authorization code flow with PKCE and a nonce); the
/// `state` is bound to this browser by a signed cookie for ten minutes.
#[utoipa::path(get, path = "/auth/oauth/{provider}/start", tag = "auth", params(("provider" = String, Path, description = "`google`, `naver` or `kakao`"), StartQuery),
    responses(
        (status = 302, description = "To the provider"),
        (status = 404, description = "Provider unknown or not configured", body = Problem),
        (status = 422, description = "`validation_failed`: `return_to` leaves this site", body = Problem),
    ))]
pub async fn start(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> AppResult<Response> {
    let id = ProviderId::parse(&provider)?;
    let return_to = redirect::return_to(query.return_to.as_deref(), &state.config.public_url)?;
    let started = flow::start(&state, id, return_to, None).await?;
    Ok(to_provider(&state, &started))
}

fn to_provider(state: &AppState, started: &flow::Started) -> Response {
    let signed = redirect::sign(&state.secrets.cookie, &started.state, state.clock.now());
    let location = HeaderValue::from_str(started.authorize_url.as_str())
        .unwrap_or_else(|_| HeaderValue::from_static("/"));
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                state_cookie(state, &signed, STATE_TTL.whole_seconds()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// What the provider sends back (other parameters it adds are ignored).
#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    /// Authorization code.
    code: Option<String>,
    /// Our `state`.
    state: Option<String>,
    /// Set when the user or the provider refused.
    error: Option<String>,
}

/// Finishes the redirect: signs in (sets `bo_session`) and goes back to `return_to`. When an
/// account with the same verified address exists, goes back with `?oauth=link_required&link_token=…`
/// (sign in to that account, then `POST /auth/oauth/link`); without a verified address, with
/// `?oauth=email_required&signup_token=…` (`POST /auth/oauth/signup`).
#[utoipa::path(get, path = "/auth/oauth/{provider}/callback", tag = "auth", params(("provider" = String, Path, description = "`google`, `naver` or `kakao`"), CallbackQuery),
    responses(
        (status = 302, description = "Back to `return_to`"),
        (status = 400, description = "`oauth_state_invalid`, `oauth_denied` or `oauth_code_invalid`", body = Problem),
        (status = 401, description = "`oauth_token_invalid`: bad ID token (signature, issuer, audience, expiry, nonce)", body = Problem),
        (status = 403, description = "`account_disabled` or `email_not_verified`", body = Problem),
        (status = 502, description = "`oauth_provider_error`", body = Problem),
        (status = 503, description = "`oauth_provider_unavailable`", body = Problem),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> AppResult<Response> {
    let id = ProviderId::parse(&provider)?;
    let meta = client_meta(ip, &headers);
    let params = CallbackParams {
        code: query.code,
        state: query.state,
        error: query.error,
        cookie: cookie(&headers, STATE_COOKIE),
    };
    let (return_to, outcome) = flow::callback(&state, id, params, &meta, ip)
        .await
        .map_err(|e| e.with_header(header::SET_COOKIE, clear_state_cookie(&state)))?;
    let (location, session) = match outcome {
        Outcome::SignedIn(signed_in) => (return_to, Some(signed_in.secret)),
        Outcome::Linked(_) => (with_query(&return_to, "oauth=linked"), None),
        Outcome::LinkRequired { link_token } => (
            with_query(
                &return_to,
                &format!("oauth=link_required&link_token={link_token}"),
            ),
            None,
        ),
        Outcome::EmailRequired { signup_token } => (
            with_query(
                &return_to,
                &format!("oauth=email_required&signup_token={signup_token}"),
            ),
            None,
        ),
    };
    let mut response = (
        StatusCode::FOUND,
        [
            (
                header::LOCATION,
                HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("/")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response();
    let cookies = response.headers_mut();
    cookies.append(header::SET_COOKIE, clear_state_cookie(&state));
    if let Some(secret) = session {
        cookies.append(
            header::SET_COOKIE,
            session_cookie(&state, &secret, SESSION_TTL.whole_seconds()),
        );
    }
    Ok(response)
}

fn with_query(path: &str, extra: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{extra}")
}

/// An app's authorization result (it ran the redirect with its own PKCE and state).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "4/0AbC…", "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "redirect_uri": "com.example.boxoffice:/oauth", "nonce": "n-0S6_WzA2Mj"}))]
pub struct CodeRequest {
    code: String,
    code_verifier: String,
    redirect_uri: String,
    /// The nonce sent in the authorization request (Google's ID token must carry it).
    nonce: Option<String>,
}

impl CodeRequest {
    fn parse(self) -> AppResult<AppExchange> {
        let mut errors = Vec::new();
        if self.code.is_empty() || self.code.len() > 2048 {
            errors.push(crate::error::FieldError::new(
                "code",
                "invalid",
                "must be 1..2048 characters",
            ));
        }
        let verifier_ok = (43..=128).contains(&self.code_verifier.len())
            && self
                .code_verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !verifier_ok {
            errors.push(crate::error::FieldError::new(
                "code_verifier",
                "invalid",
                "must be 43..128 characters of [A-Za-z0-9-._~] (RFC 7636)",
            ));
        }
        if url::Url::parse(&self.redirect_uri).is_err() || self.redirect_uri.len() > 1000 {
            errors.push(crate::error::FieldError::new(
                "redirect_uri",
                "invalid",
                "must be an absolute URL",
            ));
        }
        if self
            .nonce
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > 255)
        {
            errors.push(crate::error::FieldError::new(
                "nonce",
                "invalid",
                "must be 1..255 characters",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        Ok(AppExchange {
            code: self.code,
            code_verifier: self.code_verifier,
            redirect_uri: self.redirect_uri,
            nonce: self.nonce,
        })
    }
}

/// Trades an app's authorization code for our token pair.
#[utoipa::path(post, path = "/auth/oauth/{provider}/token", tag = "auth", request_body = CodeRequest,
    params(("provider" = String, Path, description = "`google`, `naver` or `kakao`")),
    responses(
        (status = 200, description = "Token pair", body = crate::auth::handlers::TokenPair),
        (status = 400, description = "`oauth_code_invalid`", body = Problem),
        (status = 401, description = "`oauth_token_invalid`", body = Problem),
        (status = 409, description = "`oauth_link_required` (with `link_token`) or `oauth_email_required` (with `signup_token`)", body = Problem),
        (status = 502, description = "`oauth_provider_error`", body = Problem),
        (status = 503, description = "`oauth_provider_unavailable`", body = Problem),
    ))]
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiPath(provider): ApiPath<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> AppResult<Response> {
    let id = ProviderId::parse(&provider)?;
    let input = req.parse()?;
    let meta = client_meta(ip, &headers);
    match flow::exchange(&state, id, input, None, &meta, ip).await? {
        Outcome::SignedIn(signed_in) => deliver(&state, *signed_in, Delivery::Tokens),
        Outcome::Linked(view) => Ok(ApiJson(view).into_response()),
        Outcome::LinkRequired { link_token } => Err(link_required(link_token)),
        Outcome::EmailRequired { signup_token } => Err(email_required(signup_token)),
    }
}

fn link_required(link_token: String) -> AppError {
    AppError::conflict(
        "oauth_link_required",
        "An account with this e-mail address exists. Sign in to it (password, passkey or e-mail code), then link this provider with `link_token` within 15 minutes.",
    )
    .with_extension("link_token", link_token)
}

fn email_required(signup_token: String) -> AppError {
    AppError::conflict(
        "oauth_email_required",
        "The provider gave no verified e-mail address. Send one with `signup_token` to POST /auth/oauth/signup within 30 minutes.",
    )
    .with_extension("signup_token", signup_token)
}

/// Where the provider should send the browser back to.
#[derive(Serialize, ToSchema)]
pub struct LinkStarted {
    /// Navigate the browser here.
    authorize_url: String,
}

/// Starts linking a provider to the signed-in account (a `POST`, so a cross-site page cannot
/// start it); navigate to `authorize_url`. The callback links and returns with `?oauth=linked`.
#[utoipa::path(post, path = "/auth/oauth/{provider}/link", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    params(("provider" = String, Path, description = "`google`, `naver` or `kakao`"), StartQuery),
    responses((status = 200, body = LinkStarted), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn start_link(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> AppResult<Response> {
    let id = ProviderId::parse(&provider)?;
    let return_to = redirect::return_to(query.return_to.as_deref(), &state.config.public_url)?;
    let started = flow::start(&state, id, return_to, Some(&user.user_id)).await?;
    let signed = redirect::sign(&state.secrets.cookie, &started.state, state.clock.now());
    Ok((
        [(
            header::SET_COOKIE,
            state_cookie(&state, &signed, STATE_TTL.whole_seconds()),
        )],
        ApiJson(LinkStarted {
            authorize_url: started.authorize_url.to_string(),
        }),
    )
        .into_response())
}

/// Links a provider to the signed-in account with an app's authorization code.
#[utoipa::path(post, path = "/auth/oauth/{provider}/link/token", tag = "auth", request_body = CodeRequest,
    security(("bearer" = []), ("cookie" = [])),
    params(("provider" = String, Path, description = "`google`, `naver` or `kakao`")),
    responses(
        (status = 201, body = IdentityView),
        (status = 409, description = "`identity_in_use`", body = Problem),
    ))]
pub async fn link_with_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiPath(provider): ApiPath<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> AppResult<(StatusCode, ApiJson<IdentityView>)> {
    let id = ProviderId::parse(&provider)?;
    let input = req.parse()?;
    let meta = client_meta(ip, &headers);
    match flow::exchange(&state, id, input, Some(&user.user_id), &meta, ip).await? {
        Outcome::Linked(view) => Ok((StatusCode::CREATED, ApiJson(view))),
        _ => Err(errors::provider_error()),
    }
}

/// A pending link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimLinkRequest {
    /// From `oauth_link_required`.
    link_token: String,
}

/// Links the provider identity that matched this account's address, now that its owner has
/// signed in (with a password, a passkey or an e-mail code).
#[utoipa::path(post, path = "/auth/oauth/link", tag = "auth", request_body = ClaimLinkRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, body = IdentityView),
        (status = 404, description = "Unknown, used, expired, or for another account", body = Problem),
    ))]
pub async fn claim_link(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<ClaimLinkRequest>,
) -> AppResult<(StatusCode, ApiJson<IdentityView>)> {
    let view = flow::claim_link(&state, &user.user_id, &req.link_token).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// A pending provider sign-up and the address to use.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"signup_token": "…", "email": "minji@example.com"}))]
pub struct OAuthSignupRequest {
    /// From `oauth_email_required`.
    signup_token: String,
    /// The address to confirm.
    email: String,
}

/// Creates the account of a provider identity that came without a verified address; the
/// mailed 6-digit code (`POST /auth/verify-email`) makes it usable.
#[utoipa::path(post, path = "/auth/oauth/signup", tag = "auth", request_body = OAuthSignupRequest,
    responses(
        (status = 201, body = UserView),
        (status = 400, description = "`oauth_state_invalid`: unknown, used or expired token", body = Problem),
        (status = 409, description = "`email_taken`: sign in to that account and link instead", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OAuthSignupRequest>,
) -> AppResult<(StatusCode, ApiJson<UserView>)> {
    let user = flow::finish_signup(&state, &req.signup_token, &req.email, ip).await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
}

/// The signed-in user's linked provider accounts.
#[utoipa::path(get, path = "/auth/identities", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<IdentityView>), (status = 401, body = Problem)))]
pub async fn list_identities(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<ApiJson<Vec<IdentityView>>> {
    Ok(ApiJson(identities::list(&state.db, &user.user_id).await?))
}

/// Unlinks a provider account and revokes our grant there; the last way to sign in stays.
#[utoipa::path(delete, path = "/auth/identities/{id}", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Identity id")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 404, description = "Not one of yours", body = Problem),
        (status = 409, description = "`last_sign_in_method`", body = Problem),
    ))]
pub async fn delete_identity(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<StatusCode> {
    identities::unlink(&state, &user.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
