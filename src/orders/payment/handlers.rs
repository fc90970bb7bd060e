//! HTTP handlers for paying: start, confirm, gateway callbacks. Thin: extract, call
//! [`super::flow`], answer.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::flow::{self, ConfirmBody, PayBody, PayView, WebhookAck};
use crate::{
    app::AppState,
    auth::AuthUser,
    error::{AppError, AppResult, Problem},
    http::{ApiJson, extract::ApiPath},
    orders::{idempotency, view::OrderView},
};

/// The optional body of `POST /orders/{id}/pay`: empty means the default gateway.
fn pay_body(raw: &[u8]) -> AppResult<PayBody> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(PayBody::default());
    }
    serde_json::from_slice(raw).map_err(|e| {
        if e.is_data() {
            AppError::invalid_field("provider", "invalid", "must be a provider name")
        } else {
            AppError::malformed("The body is not valid JSON.")
        }
    })
}

/// Starts paying a pending order: returns what the buyer's page needs to open the gateway.
/// The body is optional (`{}` or none: the default `test` gateway). Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/orders/{id}/pay", tag = "orders",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; kept 24 h per user")),
    request_body(content = Option<PayBody>, description = "Optional: the gateway"),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Prepared; the buyer continues with the gateway", body = PayView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 404, description = "`not_found`: no such order, or someone else's", body = Problem),
        (status = 409, description = "`order_expired` (hold ended or canceled), `invalid_transition` (already paid or refunded), `idempotency_key_in_use`", body = Problem),
        (status = 422, description = "`validation_failed`: unknown `provider`; `idempotency_key_reused`", body = Problem),
        (status = 502, description = "`payment_unavailable`: the gateway did not answer", body = Problem),
    ))]
pub async fn pay(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match pay_body(&body) {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    idempotency::run(
        &state,
        &user.user_id,
        &format!("POST /orders/{id}/pay"),
        &headers,
        &body,
        StatusCode::OK,
        || flow::pay(&state, &user, &id, body.clone()),
    )
    .await
}

/// Confirms (captures) the payment the buyer completed with the gateway, then confirms the
/// order: stock sold, tickets issued, mail sent. Idempotent by order: confirming a paid order
/// again answers it again without a second capture. If the order ended before the capture
/// could count, the money is refunded automatically (`order_expired`). Accepts
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/orders/{id}/pay/confirm", tag = "orders",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; kept 24 h per user")),
    request_body = ConfirmBody, security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Paid: the order, `CONFIRMED`", body = OrderView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 404, description = "`not_found`: no such order, or someone else's", body = Problem),
        (status = 409, description = "`order_expired` (a capture that came too late is refunded), `payment_declined` (the order stays pending: retry until it expires), `invalid_transition`, `idempotency_key_in_use`", body = Problem),
        (status = 422, description = "`validation_failed` on `provider_payload`; `idempotency_key_reused`", body = Problem),
        (status = 502, description = "`payment_unavailable`: the gateway failed or timed out; the order stays pending", body = Problem),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Response {
    idempotency::run(
        &state,
        &user.user_id,
        &format!("POST /orders/{id}/pay/confirm"),
        &headers,
        &body,
        StatusCode::OK,
        || flow::confirm(&state, &user, &id, body.clone()),
    )
    .await
}

/// A gateway's callback (signed; the `test` gateway signs with header `x-test-signature`).
/// A capture confirms a pending order exactly as `/pay/confirm` does, or is refunded if the
/// order ended; a cancellation made at the gateway is recorded for people to check. Replays
/// change nothing.
#[utoipa::path(post, path = "/payments/{provider}/webhook", tag = "orders",
    params(("provider" = String, Path, description = "Gateway name, e.g. `test`")),
    request_body(content = String, description = "The gateway's signed JSON document"),
    responses(
        (status = 200, description = "Handled (also for replays)", body = WebhookAck),
        (status = 400, description = "`invalid_signature`", body = Problem),
        (status = 404, description = "`not_found`: no such gateway", body = Problem),
    ))]
pub async fn webhook(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<ApiJson<WebhookAck>> {
    Ok(ApiJson(
        flow::webhook(&state, &provider, &headers, &body).await?,
    ))
}
