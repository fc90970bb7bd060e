//! Password reset (by mailed code) and password change (signed in).

use sea_orm::{ActiveModelTrait, Set};

use crate::infra::ratelimit::account_action;

use super::{
    codes::{self, Check, Purpose},
    flows::{self, audit},
    lockout,
    model::{Email, status},
    sessions, users,
};
use crate::{
    app::AppState,
    db::{self, entities::users as user_rows},
    error::{AppError, AppResult},
    infra::{clock::to_db, mail::Mail},
};

/// Mails a reset code if the address belongs to a usable account. The answer is the same either
/// way and the work happens after the response, so neither content nor timing tells whether the
/// address exists.
pub fn forgot(state: &AppState, email: &str) {
    let Ok(email) = Email::parse(email) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = send_reset_code(&state, &email).await {
            tracing::warn!(error = %e, "password reset mail not queued");
        }
    });
}

async fn send_reset_code(state: &AppState, email: &Email) -> AppResult<()> {
    // Over the limit the request is dropped silently: the answer was 202 whatever happens.
    if state
        .limits
        .check_account(
            crate::infra::ratelimit::account_action::PASSWORD_FORGOT,
            email.normalized(),
        )
        .await
        .is_err()
    {
        return Ok(());
    }
    flows::mail_code(
        state,
        email,
        Purpose::PasswordReset,
        |name, code, minutes| Mail::PasswordReset {
            name,
            code,
            minutes,
        },
    )
    .await
}

/// Sets a new password with a mailed code; every session of the account ends.
pub async fn reset(
    state: &AppState,
    email: &str,
    code: &str,
    new_password: String,
) -> AppResult<()> {
    let invalid = || AppError::bad_request("invalid_code", "The code is not valid.");
    let email = Email::parse(email).map_err(|e| AppError::validation(vec![e]))?;
    let code = codes::parse(code)?.to_owned();
    state
        .passwords
        .check_policy(&new_password, email.normalized())
        .map_err(|e| AppError::validation(vec![rename(e, "new_password")]))?;
    let user = users::find_by_email(&state.db, &email)
        .await?
        .filter(|u| u.status == status::ACTIVE);
    // Hash in both cases, so the answer for an unknown address takes as long.
    let hash = state
        .passwords
        .hash(state.rng.clone(), new_password)
        .await?;
    let user = user.ok_or_else(invalid)?;
    state
        .limits
        .check_account(account_action::CODE_ATTEMPT, &user.id)
        .await?;
    let now = state.clock.now();
    let outcome = db::write_tx(&state.db, |tx| {
        let (state, user, hash, code) = (state.clone(), user.clone(), hash.clone(), code.clone());
        Box::pin(async move {
            let check = codes::check(
                tx,
                &state.secrets,
                now,
                &user.id,
                Purpose::PasswordReset,
                &code,
            )
            .await?;
            if check != Check::Accepted {
                return Ok((check, Vec::new()));
            }
            user_rows::ActiveModel {
                id: Set(user.id.clone()),
                password: Set(Some(hash)),
                // Receiving the code proves the address too.
                email_verified_at: Set(Some(user.email_verified_at.unwrap_or(to_db(now)))),
                updated_at: Set(to_db(now)),
                ..Default::default()
            }
            .update(tx)
            .await?;
            lockout::clear(tx, &user.id).await?;
            let families = revoke_all(tx, now, &user.id, None).await?;
            let mail = Mail::PasswordChanged {
                name: user.name.clone().unwrap_or_default(),
            };
            flows::mail_user(tx, now, &user, &mail).await?;
            audit(
                tx,
                now,
                Some(&user.id),
                "user.password_reset",
                "user",
                Some(&user.id),
                None,
            )
            .await?;
            Ok((check, families))
        })
    })
    .await?;
    match outcome {
        (Check::Accepted, families) => {
            flows::after_sessions_ended(state, &families).await;
            Ok(())
        }
        (Check::Wrong { exhausted: true }, _) => Err(AppError::too_many(
            "too_many_attempts",
            "Too many wrong codes; request a new one.",
            codes::RESEND_INTERVAL.whole_seconds() as u64,
        )),
        (Check::Wrong { exhausted: false }, _) => Err(invalid()),
    }
}

/// Changes the password of a signed-in user who knows the current one; other sessions end.
pub async fn change(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    current: String,
    new_password: String,
) -> AppResult<()> {
    let user = users::find_by_id(&state.db, user_id)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    state
        .passwords
        .check_policy(&new_password, &user.email_normalized)
        .map_err(|e| AppError::validation(vec![rename(e, "new_password")]))?;
    state
        .limits
        .check_account(account_action::PASSWORD_CHECK, &user.id)
        .await?;
    if !state
        .passwords
        .verify(current, user.password.clone())
        .await?
    {
        return Err(AppError::unauthorized(
            "invalid_credentials",
            "The current password is wrong.",
        ));
    }
    let hash = state
        .passwords
        .hash(state.rng.clone(), new_password)
        .await?;
    let now = state.clock.now();
    let families = db::write_tx(&state.db, |tx| {
        let (user, hash, keep) = (user.clone(), hash.clone(), session_id.to_owned());
        Box::pin(async move {
            user_rows::ActiveModel {
                id: Set(user.id.clone()),
                password: Set(Some(hash)),
                updated_at: Set(to_db(now)),
                ..Default::default()
            }
            .update(tx)
            .await?;
            let families = revoke_all(tx, now, &user.id, Some(&keep)).await?;
            let mail = Mail::PasswordChanged {
                name: user.name.clone().unwrap_or_default(),
            };
            flows::mail_user(tx, now, &user, &mail).await?;
            audit(
                tx,
                now,
                Some(&user.id),
                "user.password_changed",
                "user",
                Some(&user.id),
                None,
            )
            .await?;
            Ok(families)
        })
    })
    .await?;
    flows::after_sessions_ended(state, &families).await;
    Ok(())
}

/// Revokes every live session family of a user except `keep`; returns the families revoked.
pub async fn revoke_all<C: sea_orm::ConnectionTrait>(
    conn: &C,
    now: time::OffsetDateTime,
    user_id: &str,
    keep: Option<&str>,
) -> AppResult<Vec<String>> {
    sessions::revoke_user(conn, now, user_id, keep, sessions::reason::LOGOUT).await
}

fn rename(mut e: crate::error::FieldError, field: &str) -> crate::error::FieldError {
    e.field = field.to_owned();
    e
}
