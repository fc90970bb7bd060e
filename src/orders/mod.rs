//! Orders: checkout, payment, expiry, cancellation and refunds, tickets and check-in,
//! fulfilment and the organizer's reports. See DESIGN.md "How concurrency is made correct".

pub mod audit;
pub mod checkout;
pub mod effects;
pub mod expiry;
pub mod handlers;
pub mod history;
pub mod hooks;
pub mod idempotency;
pub mod live;
pub mod model;
pub mod payment;
pub mod view;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

/// The `/orders`, `/payments` and per-event order routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_order, handlers::list_orders))
        .routes(routes!(handlers::get_order))
}
