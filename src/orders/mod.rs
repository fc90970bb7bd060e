//! Orders: checkout, payment, expiry, cancellation and refunds, tickets and check-in,
//! fulfilment and the organizer's reports. See DESIGN.md "How concurrency is made correct".

pub mod audit;
pub mod batches;
pub mod cancel;
pub mod check_in;
pub mod checkout;
pub mod csv_export;
pub mod effects;
pub mod event_cancel;
pub mod expiry;
pub mod fulfillment;
pub mod handlers;
pub mod history;
pub mod hooks;
pub mod idempotency;
pub mod live;
pub mod manage_handlers;
pub mod model;
pub mod payment;
pub mod refunds;
pub mod reports;
pub mod tickets;
pub mod view;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

/// The `/orders`, `/payments` and per-event order routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_order, handlers::list_orders))
        .routes(routes!(handlers::get_order))
        // Payments, tickets and check-in.
        .routes(routes!(payment::handlers::pay))
        .routes(routes!(payment::handlers::confirm))
        .routes(routes!(payment::handlers::webhook))
        .routes(routes!(tickets::handlers::list))
        .routes(routes!(check_in::handlers::check_in))
        .routes(routes!(
            check_in::handlers::staff,
            check_in::handlers::replace_staff
        ))
        .routes(routes!(manage_handlers::cancel_quote))
        .routes(routes!(manage_handlers::cancel_order))
        .routes(routes!(manage_handlers::organizer_cancel))
        .routes(routes!(manage_handlers::cancel_event))
        .routes(routes!(manage_handlers::cancellation))
        .routes(routes!(manage_handlers::update_fulfillment))
        .routes(routes!(manage_handlers::event_orders))
        .routes(routes!(manage_handlers::sales))
        .routes(routes!(manage_handlers::orders_csv))
        .routes(routes!(manage_handlers::attendees_csv))
        .routes(routes!(manage_handlers::fulfillment_csv))
}
