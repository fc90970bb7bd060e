//! The fallback sign-in for everyone with a mailbox: a one-time 6-digit code by e-mail
//! (`POST /auth/login/email-code`, then `/finish`). Asking never says whether the address exists.

use std::net::IpAddr;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use sea_orm::{ActiveModelTrait, Set};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    attempts::{method, result},
    codes::{self, Check, Purpose},
    flows::{self, Delivery, SignedIn},
    handlers::{LoginQuery, client_meta, deliver, delivery},
    model::Email,
    sessions::ClientMeta,
    signin, users,
};
use crate::{
    app::AppState,
    db::{self, entities::users as user_rows},
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery, ClientIp},
    infra::{clock::to_db, mail::Mail, ratelimit::account_action},
};

/// Mails a sign-in code to an active account (at most one a minute); silent otherwise.
pub async fn request(state: &AppState, email: &str) -> AppResult<()> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    state
        .limits
        .check_account(account_action::LOGIN_CODE, email.normalized())
        .await?;
    flows::mail_code(state, &email, Purpose::LoginCode, |name, code, minutes| {
        Mail::LoginCode {
            name,
            code,
            minutes,
        }
    })
    .await
}

/// Signs in with a mailed code. The code proves the mailbox, so an unconfirmed address
/// becomes confirmed.
pub async fn finish(
    state: &AppState,
    email: &str,
    code: &str,
    delivery: Delivery,
    meta: &ClientMeta,
    ip: IpAddr,
) -> AppResult<SignedIn> {
    let invalid = || AppError::bad_request("invalid_code", "The code is not valid.");
    let email = Email::parse(email).map_err(|e| AppError::validation(vec![e]))?;
    let code = codes::parse(code)?;
    let Some(user) = users::find_by_email(&state.db, &email).await? else {
        signin::record_failure(
            state,
            None,
            Some(email.normalized()),
            method::EMAIL_CODE,
            result::INVALID_CODE,
            meta,
            ip,
        )
        .await;
        return Err(invalid());
    };
    let fail = |result: &'static str| {
        let user_id = user.id.clone();
        let email = email.normalized().to_owned();
        async move {
            signin::record_failure(
                state,
                Some(&user_id),
                Some(&email),
                method::EMAIL_CODE,
                result,
                meta,
                ip,
            )
            .await;
        }
    };
    if let Err(limited) = state
        .limits
        .check_account(account_action::CODE_ATTEMPT, &user.id)
        .await
    {
        fail(result::RATE_LIMITED).await;
        return Err(limited);
    }
    let now = state.clock.now();
    let outcome = db::write_tx(&state.db, |tx| {
        let (state, user, code) = (state.clone(), user.clone(), code.to_owned());
        Box::pin(async move {
            let check =
                codes::check(tx, &state.secrets, now, &user.id, Purpose::LoginCode, &code).await?;
            if check == Check::Accepted && user.email_verified_at.is_none() {
                user_rows::ActiveModel {
                    id: Set(user.id.clone()),
                    email_verified_at: Set(Some(to_db(now))),
                    updated_at: Set(to_db(now)),
                    ..Default::default()
                }
                .update(tx)
                .await?;
            }
            Ok(check)
        })
    })
    .await;
    match outcome {
        Ok(Check::Accepted) => {}
        Ok(Check::Wrong { exhausted }) => {
            fail(result::INVALID_CODE).await;
            return Err(if exhausted {
                AppError::too_many(
                    "too_many_attempts",
                    "Too many wrong codes; request a new one.",
                    codes::RESEND_INTERVAL.whole_seconds() as u64,
                )
            } else {
                invalid()
            });
        }
        Err(e) => {
            fail(result::INVALID_CODE).await;
            return Err(e);
        }
    }
    let account = users::find_by_id(&state.db, &user.id)
        .await?
        .ok_or_else(invalid)?;
    signin::complete(state, &account, method::EMAIL_CODE, delivery, meta, ip).await
}

/// An address.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com"}))]
pub struct CodeRequest {
    email: String,
}

/// Mails a one-time sign-in code (valid 10 minutes). Always 202: nobody learns whether the
/// address has an account.
#[utoipa::path(post, path = "/auth/login/email-code", tag = "auth", request_body = CodeRequest,
    responses((status = 202, description = "Accepted"), (status = 429, description = "`rate_limited`", body = Problem)))]
pub async fn request_code(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> AppResult<StatusCode> {
    request(&state, &req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Address and mailed code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "minji@example.com", "code": "042917"}))]
pub struct FinishRequest {
    email: String,
    code: String,
}

/// Signs in with the mailed code: a token pair, or with `?session=cookie` a browser session.
#[utoipa::path(post, path = "/auth/login/email-code/finish", tag = "auth", request_body = FinishRequest, params(LoginQuery),
    responses(
        (status = 200, description = "Token pair (or a browser session)", body = crate::auth::handlers::TokenPair),
        (status = 400, description = "`invalid_code` or `code_expired`", body = Problem),
        (status = 403, description = "`account_disabled`", body = Problem),
        (status = 429, description = "`too_many_attempts`", body = Problem),
    ))]
pub async fn finish_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<LoginQuery>,
    ApiJson(req): ApiJson<FinishRequest>,
) -> AppResult<Response> {
    let delivery = delivery(query.session.as_deref())?;
    let meta = client_meta(ip, &headers);
    let signed_in = finish(&state, &req.email, &req.code, delivery, &meta, ip).await?;
    deliver(&state, signed_in, delivery)
}
