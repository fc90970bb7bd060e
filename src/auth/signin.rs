//! The end every sign-in method shares (password, OAuth, passkey, e-mail code): account checks, a
//! session, login history, new-device alerts; and the record of a failed attempt.

use std::net::IpAddr;

use super::{
    attempts::{self, Attempt},
    flows::{self, Delivery, SignedIn},
    model::status,
    sessions::ClientMeta,
};
use crate::{
    app::AppState,
    db::entities::users as user_rows,
    error::{AppError, AppResult},
    infra::metrics,
    security::events::{self, EventKind, Severity},
};

/// Records a failed attempt of any method in login history (never fails the request).
pub async fn record_failure(
    state: &AppState,
    user_id: Option<&str>,
    email_normalized: Option<&str>,
    method: &str,
    result: &str,
    meta: &ClientMeta,
    ip: IpAddr,
) {
    let attempt = Attempt {
        user_id,
        email_normalized,
        ip,
        user_agent: meta.user_agent.as_deref(),
        method,
        result,
    };
    if let Err(e) = attempts::record(&state.db, state.clock.now(), &attempt).await {
        tracing::warn!(error = %e, "could not record a failed sign-in");
    }
    metrics::login(match result {
        attempts::result::RATE_LIMITED => "rate_limited",
        attempts::result::INVALID_CODE => "invalid_credentials",
        _ => "failed",
    });
}

/// Starts a session for an account that proved who it is with `method`.
pub async fn complete(
    state: &AppState,
    account: &user_rows::Model,
    method: &'static str,
    delivery: Delivery,
    meta: &ClientMeta,
    ip: IpAddr,
) -> AppResult<SignedIn> {
    let now = state.clock.now();
    let attempt = |result: &'static str| Attempt {
        user_id: Some(account.id.as_str()),
        email_normalized: Some(account.email_normalized.as_str()),
        ip,
        user_agent: meta.user_agent.as_deref(),
        method,
        result,
    };
    if account.status != status::ACTIVE || account.deleted_at.is_some() {
        attempts::record(&state.db, now, &attempt(attempts::result::ACCOUNT_DISABLED)).await?;
        metrics::login("account_disabled");
        return Err(AppError::forbidden(
            "account_disabled",
            "This account has been disabled.",
        ));
    }
    if account.email_verified_at.is_none() {
        attempts::record(
            &state.db,
            now,
            &attempt(attempts::result::EMAIL_NOT_VERIFIED),
        )
        .await?;
        metrics::login("email_not_verified");
        return Err(AppError::forbidden(
            "email_not_verified",
            "Confirm your e-mail address first; we sent you a code.",
        ));
    }
    let (new_network, new_device) =
        attempts::novelty(&state.db, &account.id, ip, meta.user_agent.as_deref()).await?;
    let signed_in = flows::start_session(
        state,
        account,
        delivery,
        method,
        meta,
        ip,
        new_network || new_device,
    )
    .await?;
    attempts::record(&state.db, now, &attempt(attempts::result::SUCCESS)).await?;
    if new_network {
        let ip_text = ip.to_string();
        events::record(
            &state.db,
            now,
            EventKind::NewIpPrefix,
            Severity::Low,
            Some(&account.id),
            Some(&ip_text),
            serde_json::json!({"prefix": attempts::ip_prefix(ip)}),
        )
        .await?;
    }
    metrics::login("success");
    Ok(signed_in)
}
