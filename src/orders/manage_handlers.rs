//! HTTP handlers for cancellation and refunds (buyers), and for the event manager's order
//! tools: cancel/refund, event cancellation, fulfilment, the order list, sales and CSV exports.

use axum::{body::Bytes, extract::State, http::StatusCode, response::Response};

use super::{
    cancel::{self, BuyerCancelBody, CancelQuote, ReasonBody},
    csv_export::{self, Export},
    event_cancel::{self, CancellationView},
    fulfillment::{self, FulfillmentBody},
    reports::{self, EventOrdersQuery, ManagedOrderPage, SalesReport},
    view::OrderView,
};
use crate::{
    app::AppState,
    auth::{AuthUser, RequireRole, extract::Organizer},
    catalog::access::Viewer,
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery, extract::ApiPath},
};

/// What cancelling the order would do now: the fee and the refund under the order's cancel
/// policy, or why it is not allowed.
#[utoipa::path(get, path = "/orders/{id}/cancel-quote", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The quote (`allowed: false` with `reason_if_not_allowed` `cancel_not_allowed`, `already_fulfilled` or `invalid_transition`)", body = CancelQuote),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 404, description = "`not_found`: no such order, or someone else's", body = Problem),
    ))]
pub async fn cancel_quote(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<CancelQuote>> {
    Ok(ApiJson(cancel::quote(&state, &user, &id).await?))
}

/// Cancels the buyer's own order. Whole orders only in this version: a pending order is
/// canceled for free (`CANCELED`), a confirmed one is refunded under the cancel policy
/// snapshotted on the order (`REFUNDED`; the fee is a percentage of the total without shipping,
/// rounded down to the currency unit, by hours left before the start). Stock goes back on sale,
/// tickets become void, the refund goes to the payment provider at once and is retried in the
/// background if the provider fails. The body (`{"reason": …}`) is optional.
#[utoipa::path(put, path = "/orders/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "Order id")),
    request_body(content = Option<BuyerCancelBody>, description = "Optional"),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Canceled or refunded", body = OrderView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 404, description = "`not_found`: no such order, or someone else's", body = Problem),
        (status = 409, description = "`cancel_not_allowed` (no policy tier left), `already_fulfilled` (merchandise shipped or picked up), `invalid_transition` (already canceled or refunded)", body = Problem),
        (status = 422, description = "`validation_failed`: `reason` longer than 500 characters", body = Problem),
    ))]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> AppResult<ApiJson<OrderView>> {
    let body: BuyerCancelBody = optional_json(&body)?;
    Ok(ApiJson(
        cancel::buyer_cancel(&state, &user, &id, body).await?,
    ))
}

/// An empty body is the default; anything else must be the JSON object.
fn optional_json<T: Default + serde::de::DeserializeOwned>(raw: &[u8]) -> AppResult<T> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            AppError::invalid_field("body", "invalid_body", e.to_string())
        }
        _ => AppError::malformed("The body is not valid JSON."),
    })
}

/// Cancels (pending) or fully refunds (confirmed, no fee) an order of the event, bypassing the
/// cancel policy (organizer of the event or admin). The reason is audit-logged and mailed to
/// the buyer. Whole orders only.
#[utoipa::path(post, path = "/events/{id}/orders/{order_id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "Event id"), ("order_id" = String, Path, description = "Order id")),
    request_body = ReasonBody, security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Canceled or refunded", body = OrderView),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`: no such order of this event, or another organizer's event", body = Problem),
        (status = 409, description = "`invalid_transition`: already canceled or refunded", body = Problem),
        (status = 422, description = "`validation_failed`: `reason` is required (1..=500 characters)", body = Problem),
    ))]
pub async fn organizer_cancel(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath((id, order_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> AppResult<ApiJson<OrderView>> {
    Ok(ApiJson(
        cancel::organizer_cancel(&state, &Viewer::from(&user), &id, &order_id, body).await?,
    ))
}

/// Cancels the event at once (no more sales) and starts a background job that cancels every
/// pending order and fully refunds every confirmed one, mailing each buyer. The job resumes
/// after a restart; follow it at `GET /events/{id}/cancellation`.
#[utoipa::path(post, path = "/events/{id}/cancel", tag = "orders",
    params(("id" = String, Path, description = "Event id")),
    request_body = ReasonBody, security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 202, description = "Canceled; orders are being canceled and refunded", body = CancellationView),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 409, description = "`event_canceled`: already canceled; `invalid_transition`: the event has ended", body = Problem),
        (status = 422, description = "`validation_failed`: `reason` is required (1..=500 characters)", body = Problem),
    ))]
pub async fn cancel_event(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> AppResult<(StatusCode, ApiJson<CancellationView>)> {
    let view = event_cancel::cancel_event(&state, &Viewer::from(&user), &id, body).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(view)))
}

/// Progress of an event's cancellation.
#[utoipa::path(get, path = "/events/{id}/cancellation", tag = "orders",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Progress", body = CancellationView),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`: not canceled, or not your event", body = Problem),
    ))]
pub async fn cancellation(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<CancellationView>> {
    Ok(ApiJson(
        event_cancel::progress(&state, &Viewer::from(&user), &id).await?,
    ))
}

/// Marks a merchandise line shipped (carrier and tracking number required; the buyer is
/// mailed) or picked up. Only forward, only on confirmed orders.
#[utoipa::path(put, path = "/events/{id}/orders/{order_id}/items/{item_id}/fulfillment", tag = "orders",
    params(("id" = String, Path, description = "Event id"), ("order_id" = String, Path, description = "Order id"), ("item_id" = String, Path, description = "Order line id")),
    request_body = FulfillmentBody, security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The order with the line's fulfilment", body = OrderView),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 409, description = "`invalid_transition`: not a merchandise line, not pending, or the order is not confirmed", body = Problem),
        (status = 422, description = "`validation_failed`: `carrier` and `tracking_number` are required with `SHIPPED`", body = Problem),
    ))]
pub async fn update_fulfillment(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath((id, order_id, item_id)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<FulfillmentBody>,
) -> AppResult<ApiJson<OrderView>> {
    Ok(ApiJson(
        fulfillment::update(&state, &Viewer::from(&user), &id, &order_id, &item_id, body).await?,
    ))
}

/// The event's orders, newest first, with the buyers' addresses.
#[utoipa::path(get, path = "/events/{id}/orders", tag = "orders",
    params(("id" = String, Path, description = "Event id"), EventOrdersQuery),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "A page", body = ManagedOrderPage),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 422, description = "`validation_failed`: bad `status`, `limit` or `cursor`", body = Problem),
    ))]
pub async fn event_orders(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventOrdersQuery>,
) -> AppResult<ApiJson<ManagedOrderPage>> {
    Ok(ApiJson(
        reports::list(&state, &Viewer::from(&user), &id, query).await?,
    ))
}

/// Sales per product, per performance and grade, and for the whole event: units sold
/// (confirmed), held (pending), remaining, and revenue net of refunds.
#[utoipa::path(get, path = "/events/{id}/sales", tag = "orders",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The report", body = SalesReport),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
    ))]
pub async fn sales(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<SalesReport>> {
    Ok(ApiJson(
        reports::sales(&state, &Viewer::from(&user), &id).await?,
    ))
}

/// Every order of the event as CSV (UTF-8 with BOM).
#[utoipa::path(get, path = "/events/{id}/orders.csv", tag = "orders",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "`text/csv; charset=utf-8`, with a byte-order mark", content_type = "text/csv", body = String),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
    ))]
pub async fn orders_csv(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    csv_export::export(&state, &Viewer::from(&user), &id, Export::Orders).await
}

/// One row per ticket: buyer's name and address, ticket, seat, status and check-in time
/// (never the ticket code), as CSV (UTF-8 with BOM).
#[utoipa::path(get, path = "/events/{id}/attendees.csv", tag = "orders",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "`text/csv; charset=utf-8`, with a byte-order mark", content_type = "text/csv", body = String),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
    ))]
pub async fn attendees_csv(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    csv_export::export(&state, &Viewer::from(&user), &id, Export::Attendees).await
}

/// Merchandise lines of confirmed orders with delivery address, variant, quantity and
/// fulfilment, as CSV (UTF-8 with BOM).
#[utoipa::path(get, path = "/events/{id}/fulfillment.csv", tag = "orders",
    params(("id" = String, Path, description = "Event id")),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "`text/csv; charset=utf-8`, with a byte-order mark", content_type = "text/csv", body = String),
        (status = 403, description = "`forbidden`: buyers", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
    ))]
pub async fn fulfillment_csv(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Response> {
    csv_export::export(&state, &Viewer::from(&user), &id, Export::Fulfillment).await
}
