//! Products: tickets (one price grade of one performance), merchandise (stock on variants,
//! pre-orders, shipping options) and packages/bundles, with stock counters and a ledger.

pub mod handlers;
pub mod model;
pub mod notify;
pub mod stock;
pub mod store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

pub use notify::notify_back_in_stock;

/// The `/products` routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_product, handlers::list_products))
        .routes(routes!(
            handlers::get_product,
            handlers::replace_product,
            handlers::patch_product,
            handlers::delete_product
        ))
        .routes(routes!(handlers::subscribe, handlers::unsubscribe))
}
