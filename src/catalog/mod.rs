//! The catalog: events, performances, seat maps and products.

pub mod access;
pub mod availability;
pub mod events;
pub mod handlers;
pub mod model;
pub mod money;
pub mod performances;
pub mod products;
pub mod seats;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

/// Bus channel announcing that public catalog data changed (payload: event id or `*`).
pub const CHANGED: &str = "catalog.changed";

/// The `/events` routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_event, handlers::list_events))
        .routes(routes!(
            handlers::get_event,
            handlers::replace_event,
            handlers::patch_event
        ))
        .routes(routes!(
            handlers::list_performances,
            handlers::create_performance
        ))
        .routes(routes!(
            handlers::patch_performance,
            handlers::delete_performance
        ))
        .merge(products::router())
        .merge(seats::router())
}
