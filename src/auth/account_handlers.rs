//! HTTP handlers for account self-service: password reset and change, sessions, login history,
//! account deletion.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    attempts::{self, HistoryEntry},
    deletion,
    extract::AuthUser,
    flows, recovery,
    sessions::{self, SessionView},
};
use crate::{
    app::AppState,
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery},
};

/// An address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com"}))]
pub struct ForgotRequest {
    email: String,
}

/// Mails a 6-digit reset code (valid 30 minutes). Always 202: nobody learns whether the address exists.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "auth", request_body = ForgotRequest,
    responses((status = 202, description = "Accepted")))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ForgotRequest>,
) -> StatusCode {
    recovery::forgot(&state, &req.email);
    StatusCode::ACCEPTED
}

/// Code and new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com", "code": "042917", "new_password": "another long passphrase"}))]
pub struct ResetRequest {
    email: String,
    code: String,
    new_password: String,
}

/// Sets a new password with the mailed code; every session of the account ends.
#[utoipa::path(post, path = "/auth/password/reset", tag = "auth", request_body = ResetRequest,
    responses(
        (status = 204, description = "Password changed; sign in again"),
        (status = 400, description = "`invalid_code` or `code_expired`", body = Problem),
        (status = 422, description = "`validation_failed` (weak password, malformed code)", body = Problem),
        (status = 429, description = "`too_many_attempts`", body = Problem),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> AppResult<StatusCode> {
    recovery::reset(&state, &req.email, &req.code, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Current and new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "a long passphrase", "new_password": "another long passphrase"}))]
pub struct ChangeRequest {
    current_password: String,
    new_password: String,
}

/// Changes the password; the other sessions end, this one stays.
#[utoipa::path(post, path = "/auth/password/change", tag = "auth", request_body = ChangeRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "`invalid_credentials`: the current password is wrong", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<ChangeRequest>,
) -> AppResult<StatusCode> {
    recovery::change(
        &state,
        &user.user_id,
        &user.session_id,
        req.current_password,
        req.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's live sessions.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = Problem)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<ApiJson<Vec<SessionView>>> {
    let views = sessions::list(
        &state.db,
        state.clock.now(),
        &user.user_id,
        &user.session_id,
    )
    .await?;
    Ok(ApiJson(views))
}

/// Ends one of the user's sessions on every instance.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Ended"), (status = 404, description = "Not one of yours", body = Problem)))]
pub async fn delete_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    if sessions::started_at(&state.db, &user.user_id, &id)
        .await?
        .is_none()
    {
        return Err(AppError::not_found());
    }
    flows::logout(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions ended.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Count.
    revoked: usize,
}

/// Ends every session of the user except this one.
#[utoipa::path(post, path = "/auth/sessions/revoke-others", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Revoked), (status = 401, body = Problem)))]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<ApiJson<Revoked>> {
    let now = state.clock.now();
    let families =
        recovery::revoke_all(&state.db, now, &user.user_id, Some(&user.session_id)).await?;
    for family in &families {
        flows::announce_revocation(&state, family).await;
    }
    Ok(ApiJson(Revoked {
        revoked: families.len(),
    }))
}

/// Page parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1..=100, default 20.
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of login history.
#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    /// Newest first.
    items: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<String>,
}

/// The user's own sign-in attempts, newest first.
#[utoipa::path(get, path = "/auth/login-history", tag = "auth", params(PageQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = HistoryPage), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn login_history(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<HistoryPage>> {
    let limit = crate::http::page::limit(query.limit, 20, 100)
        .map_err(|e| AppError::validation(vec![e]))?;
    let (items, next_cursor) =
        attempts::history(&state, &user.user_id, limit, query.cursor.as_deref()).await?;
    Ok(ApiJson(HistoryPage { items, next_cursor }))
}

/// Optional proof for deletion.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"password": "a long passphrase"}))]
pub struct DeleteRequest {
    password: Option<String>,
}

/// Deletes the account (with the password, or within five minutes of signing in). Orders are kept
/// anonymously; the address can sign up again.
#[utoipa::path(delete, path = "/auth/me", tag = "auth", request_body(content = Option<DeleteRequest>),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`invalid_credentials`", body = Problem),
        (status = 403, description = "`reauthentication_required`", body = Problem),
        (status = 409, description = "`live_orders_exist`", body = Problem),
    ))]
pub async fn delete_me(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<StatusCode> {
    let password = if body.iter().all(u8::is_ascii_whitespace) {
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
        let req: DeleteRequest = serde_json::from_slice(&body).map_err(|e| {
            AppError::invalid_field(
                "body",
                "invalid",
                crate::error::truncate(&e.to_string(), 200),
            )
        })?;
        req.password
    };
    deletion::delete_account(&state, &user.user_id, &user.session_id, password).await?;
    Ok(StatusCode::NO_CONTENT)
}
