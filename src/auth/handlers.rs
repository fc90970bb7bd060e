//! HTTP handlers for `/auth/*`: extract, call a flow, map the result.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    extract::{AuthUser, SESSION_COOKIE, Via},
    flows::{self, Delivery, Signup},
    model::UserView,
    sessions::{ClientMeta, SESSION_TTL},
    tokens::ACCESS_TTL_SECONDS,
    users,
};
use crate::{
    app::AppState,
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery, ClientIp},
};

/// Sign-up form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com", "password": "a long passphrase", "name": "김민지", "nickname": "minji", "locale": "ko"}))]
pub struct SignupRequest {
    email: String,
    password: String,
    name: String,
    nickname: Option<String>,
    locale: Option<String>,
}

/// Creates an account and mails a 6-digit code valid for 5 minutes.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created; verify the address next", body = UserView),
        (status = 409, description = "`email_taken`", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<SignupRequest>,
) -> AppResult<(StatusCode, ApiJson<UserView>)> {
    let input = Signup::parse(
        &state,
        &req.email,
        req.password,
        &req.name,
        req.nickname.as_deref(),
        req.locale.as_deref(),
    )?;
    let user = flows::signup(&state, input, ip).await?;
    Ok((StatusCode::CREATED, ApiJson(UserView::from(&user))))
}

/// Address and code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com", "code": "042917"}))]
pub struct VerifyEmailRequest {
    email: String,
    code: String,
}

/// Confirms the address with the mailed code.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Address confirmed", body = UserView),
        (status = 400, description = "`invalid_code` or `code_expired`", body = Problem),
        (status = 429, description = "`too_many_attempts`: the code is dead", body = Problem),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> AppResult<ApiJson<UserView>> {
    let user = flows::verify_email(&state, &req.email, &req.code).await?;
    Ok(ApiJson(UserView::from(&user)))
}

/// An address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com"}))]
pub struct EmailRequest {
    email: String,
}

/// Sends a new code (at most one mail a minute); always 202 so addresses cannot be probed.
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "auth", request_body = EmailRequest,
    responses((status = 202, description = "Accepted")))]
pub async fn resend_verification(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EmailRequest>,
) -> AppResult<StatusCode> {
    flows::resend_verification(&state, &req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com", "password": "a long passphrase"}))]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// `?session=cookie` asks for a browser session instead of tokens.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// `cookie` for a browser session.
    pub session: Option<String>,
}

/// An access and refresh token pair.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...", "refresh_token": "q3J...", "token_type": "Bearer", "expires_in": 900}))]
pub struct TokenPair {
    /// EdDSA JWS, 15 minutes.
    access_token: String,
    /// Opaque, single use, 30 days.
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
}

/// A browser session was started (the cookie is set).
#[derive(Serialize, ToSchema)]
pub struct CookieSessionStarted {
    /// The account.
    user: UserView,
    /// Send as `X-CSRF-Token` on unsafe requests.
    csrf_token: String,
    /// Seconds until the session expires.
    expires_in: i64,
}

/// Signs in with e-mail and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, params(LoginQuery),
    responses(
        (status = 200, description = "Token pair (or, with `?session=cookie`, a browser session)", body = TokenPair),
        (status = 401, description = "`invalid_credentials`", body = Problem),
        (status = 403, description = "`email_not_verified` (only after the right password) or `account_disabled`", body = Problem),
        (status = 429, description = "`account_locked` (five failures in 15 minutes) or `rate_limited`, with `Retry-After`", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<LoginQuery>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Response> {
    let delivery = delivery(query.session.as_deref())?;
    let meta = client_meta(ip, &headers);
    let signed_in = flows::login(&state, &req.email, req.password, delivery, meta, ip).await?;
    deliver(&state, signed_in, delivery)
}

/// Parses `?session=`: absent for tokens, `cookie` for a browser session.
pub fn delivery(session: Option<&str>) -> AppResult<Delivery> {
    match session {
        None => Ok(Delivery::Tokens),
        Some("cookie") => Ok(Delivery::Cookie),
        Some(_) => Err(AppError::invalid_field(
            "session",
            "invalid",
            "must be `cookie`",
        )),
    }
}

/// Hands a sign-in to the client: the JSON token pair, or the `bo_session` cookie with the
/// CSRF token (every sign-in method ends here).
pub fn deliver(
    state: &AppState,
    signed_in: flows::SignedIn,
    delivery: Delivery,
) -> AppResult<Response> {
    Ok(match delivery {
        Delivery::Tokens => ApiJson(TokenPair {
            access_token: flows::access_token(state, &signed_in)?,
            refresh_token: signed_in.secret,
            token_type: "Bearer",
            expires_in: ACCESS_TTL_SECONDS,
        })
        .into_response(),
        Delivery::Cookie => {
            let cookie = session_cookie(state, &signed_in.secret, SESSION_TTL.whole_seconds());
            let body = CookieSessionStarted {
                user: UserView::from(&signed_in.user),
                csrf_token: state.secrets.csrf_token(&signed_in.family_id),
                expires_in: SESSION_TTL.whole_seconds(),
            };
            ([(header::SET_COOKIE, cookie)], ApiJson(body)).into_response()
        }
    })
}

/// A refresh token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Trades a refresh token for a new pair; the old one is spent. Reuse ends the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = TokenPair),
        (status = 401, description = "`unauthenticated`, `token_expired` or `refresh_token_reused`", body = Problem),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<ApiJson<TokenPair>> {
    let signed_in = flows::refresh(&state, &req.refresh_token, client_meta(ip, &headers)).await?;
    Ok(ApiJson(TokenPair {
        access_token: flows::access_token(&state, &signed_in)?,
        refresh_token: signed_in.secret,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECONDS,
    }))
}

/// Ends the current session (token or cookie) on every instance.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, body = Problem)))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> AppResult<Response> {
    flows::logout(&state, &user.session_id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if user.via == Via::Cookie {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    }
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> AppResult<ApiJson<UserView>> {
    let row = users::find_by_id(&state.db, &user.user_id)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    Ok(ApiJson(UserView::from(&row)))
}

/// Profile fields to change; absent fields stay, `nickname: null` clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"nickname": "민지", "locale": "en"}))]
pub struct ProfilePatch {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    nickname: Option<Option<String>>,
    locale: Option<String>,
}

/// Distinguishes an explicit `null` from an absent field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Changes name, nickname or language.
#[utoipa::path(patch, path = "/auth/me", tag = "auth", request_body = ProfilePatch, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = UserView), (status = 422, body = Problem)))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> AppResult<ApiJson<UserView>> {
    let change = flows::parse_profile(
        patch.name.as_deref(),
        patch.nickname.as_ref().map(|n| n.as_deref()),
        patch.locale.as_deref(),
    )?;
    let row = flows::update_profile(&state, &user.user_id, change).await?;
    Ok(ApiJson(UserView::from(&row)))
}

/// The public keys verifying our access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK Set (Ed25519)", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(state.tokens.keys().jwks()),
    )
        .into_response()
}

/// Client address and user agent of a sign-in.
pub fn client_meta(ip: std::net::IpAddr, headers: &HeaderMap) -> ClientMeta {
    ClientMeta {
        ip: Some(ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| crate::error::truncate(ua, 500)),
    }
}

/// The `bo_session` cookie (an empty value with `max_age` 0 clears it).
pub fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.https() { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("bo_session=; Max-Age=0"))
}
