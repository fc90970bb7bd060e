//! HTTP handlers for placing and reading one's own orders.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{
    checkout::{self, OrderRequest},
    history::{self, ListQuery, OrderPage},
    idempotency,
    view::OrderView,
};
use crate::{
    app::AppState,
    auth::AuthUser,
    error::{AppResult, Problem},
    http::{ApiJson, ApiQuery},
};

/// Places an order: every line of one event, all or nothing. Stock, seats and per-user limits
/// are taken in one transaction; the order is `PENDING` and holds them until `expires_at`
/// (the event's `order_hold_seconds`), then pay it with `POST /orders/{id}/pay`. Send an
/// `Idempotency-Key` header to make retries safe: a replay answers the stored response.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = OrderRequest,
    security(("bearer" = []), ("cookie" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; kept 24 h per user")),
    responses(
        (status = 201, description = "Placed", body = OrderView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 403, description = "`admission_required` (waiting room)", body = Problem),
        (status = 409, description = "`sold_out` (naming the lines), `seat_unavailable` (naming the seats), `limit_exceeded` (per order, per buyer and product, per buyer and performance), `sale_not_open`, `sale_closed`, `event_canceled`, `idempotency_key_in_use`", body = Problem),
        (status = 422, description = "`validation_failed` (unknown product, variant or shipping option, quantity, seats, address), `mixed_events`, `idempotency_key_reused`", body = Problem),
    ))]
pub async fn create_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(request): ApiJson<OrderRequest>,
) -> Response {
    idempotency::run_recoverable(
        &state,
        &user.user_id,
        "POST /orders",
        &headers,
        &request,
        StatusCode::CREATED,
        |order_id| checkout::place(&state, &headers, &user, request.clone(), order_id),
        |order_id| history::find(&state, &user.user_id, order_id),
    )
    .await
}

/// The signed-in buyer's orders, newest first, optionally of one status.
#[utoipa::path(get, path = "/orders", tag = "orders", params(ListQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = OrderPage),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 422, description = "`validation_failed`: status, limit or cursor", body = Problem),
    ))]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<OrderPage>> {
    Ok(ApiJson(history::list(&state, &user.user_id, query).await?))
}

/// One of the signed-in buyer's orders (someone else's is 404).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = OrderView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 404, description = "`not_found`: no such order, or someone else's", body = Problem),
    ))]
pub async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> AppResult<ApiJson<OrderView>> {
    Ok(ApiJson(history::get(&state, &user.user_id, &id).await?))
}
