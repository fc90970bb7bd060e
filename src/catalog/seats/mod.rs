//! Seat maps: a performance's seats (sections → rows → seats, or generator blocks), organizer
//! holds, and two read documents: the layout (immutable per version) and the seat states
//! (2 bits per seat, about a second old at most).

pub mod handlers;
pub mod layout;
pub mod state_doc;
pub mod store;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

pub use state_doc::{SeatCache, SeatState};

use crate::app::AppState;

/// Body limit of a seat-map upload: a 50,000-seat stadium given seat by seat is about 5 MiB.
pub const UPLOAD_LIMIT: usize = 8 * 1024 * 1024;

/// The `/events/{id}/performances/{pid}/seats…` routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Only the upload gets the large limit; the innermost `DefaultBodyLimit` wins over the
        // global 64 KiB one set in `app::router`.
        .routes(routes!(handlers::replace_seats).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)))
        .routes(routes!(handlers::patch_seats))
        .routes(routes!(handlers::get_layout))
        .routes(routes!(handlers::get_state))
}
