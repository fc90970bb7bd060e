//! The organizer's pages (`/manage`) and the administrator's (`/manage/admin`). Pages read through
//! the domain functions the JSON API uses; every change goes through the JSON API from the page.

pub mod admin;
pub mod events;
pub mod ops;
pub mod products;
pub mod texts;

use axum::{Router, routing::get};

use super::context::{Ctx, PageError};
use crate::{
    app::AppState,
    auth::model::Role,
    catalog::{access::Viewer, events::EventView},
};

/// Organizer and admin page routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/manage", get(events::home))
        .route("/manage/events/new", get(events::new))
        .route("/manage/events/{id}", get(events::edit))
        .route(
            "/manage/events/{id}/performances/{pid}/seats",
            get(events::seats),
        )
        .route("/manage/events/{id}/products", get(products::page))
        .route("/manage/events/{id}/sales", get(ops::sales))
        .route("/manage/events/{id}/orders", get(ops::orders))
        .route("/manage/events/{id}/queue", get(ops::queue))
        .route("/manage/events/{id}/check-in", get(ops::check_in))
        .route("/manage/admin", get(admin::users))
        .route("/manage/admin/security", get(admin::security))
        .route("/manage/admin/ip-blocks", get(admin::ip_blocks))
        .route("/manage/admin/mail", get(admin::mail))
        .route("/manage/admin/audit", get(admin::audit))
        .route("/manage/admin/queues", get(admin::queues))
}

/// The organizer (or admin) looking at a page, as the catalog sees them.
pub fn organizer(ctx: &Ctx) -> Result<Viewer, PageError> {
    Ok(Viewer::from(ctx.require_role(Role::Organizer)?))
}

/// An event the viewer manages (another organizer's event is a 404 page).
pub async fn managed(state: &AppState, viewer: &Viewer, id: &str) -> Result<EventView, PageError> {
    crate::catalog::access::manageable_event(state, viewer, id).await?;
    Ok(crate::catalog::events::get(state, Some(viewer), id).await?)
}

/// The tabs of an event's management pages.
pub struct Tab {
    /// Link.
    pub href: String,
    /// Label.
    pub label: &'static str,
    /// Whether it is this page.
    pub current: bool,
}

/// Tabs for event `id`, `current` being the path suffix of this page (`""` for the event form).
pub fn tabs(t: &texts::ManageTexts, id: &str, current: &str) -> Vec<Tab> {
    [
        ("", t.tab_event),
        ("/products", t.tab_products),
        ("/sales", t.tab_sales),
        ("/orders", t.tab_orders),
        ("/queue", t.tab_queue),
        ("/check-in", t.tab_check_in),
    ]
    .into_iter()
    .map(|(suffix, label)| Tab {
        href: format!("/manage/events/{id}{suffix}"),
        label,
        current: suffix == current,
    })
    .collect()
}
