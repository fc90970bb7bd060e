//! HTTP handlers for events and performances.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};

use super::{
    access::Viewer,
    events::{self, Change, EventBody, EventPage, EventPatch, EventView, ListQuery},
    performances::{self, PerformanceBody, PerformancePatch, PerformanceView},
};
use crate::{
    app::AppState,
    auth::{AuthUser, RequireRole, extract::Organizer},
    error::{AppResult, Problem},
    http::{ApiJson, ApiQuery},
};

/// Creates an event (organizers and admins). Only `title`, `start_at` and `total_tickets` are required.
#[utoipa::path(post, path = "/events", tag = "catalog", request_body = EventBody,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "Created, with its default performance", body = EventView),
        (status = 403, description = "`forbidden`: buyers cannot create events", body = Problem),
        (status = 422, description = "`validation_failed`", body = Problem),
    ))]
pub async fn create_event(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiJson(body): ApiJson<EventBody>,
) -> AppResult<(StatusCode, ApiJson<EventView>)> {
    let event = events::create(&state, &Viewer::from(&user), body).await?;
    Ok((StatusCode::CREATED, ApiJson(event)))
}

/// One event (drafts only for their organizer and admins).
#[utoipa::path(get, path = "/events/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = EventView), (status = 404, body = Problem)))]
pub async fn get_event(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path(id): Path<String>,
) -> AppResult<ApiJson<EventView>> {
    let viewer = user.as_ref().map(Viewer::from);
    Ok(ApiJson(events::get(&state, viewer.as_ref(), &id).await?))
}

/// Replaces an event (owner or admin).
#[utoipa::path(put, path = "/events/{id}", tag = "catalog", params(("id" = String, Path)), request_body = EventBody,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = EventView), (status = 404, body = Problem), (status = 409, description = "`invalid_transition`", body = Problem), (status = 422, body = Problem)))]
pub async fn replace_event(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> AppResult<ApiJson<EventView>> {
    Ok(ApiJson(
        events::update(&state, &Viewer::from(&user), &id, Change::Replace(body)).await?,
    ))
}

/// Changes some fields of an event, including its status (`DRAFT` → `PUBLISHED` → …).
#[utoipa::path(patch, path = "/events/{id}", tag = "catalog", params(("id" = String, Path)), request_body = EventPatch,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = EventView), (status = 404, body = Problem), (status = 409, description = "`invalid_transition`", body = Problem), (status = 422, body = Problem)))]
pub async fn patch_event(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<EventPatch>,
) -> AppResult<ApiJson<EventView>> {
    Ok(ApiJson(
        events::update(&state, &Viewer::from(&user), &id, Change::Patch(patch)).await?,
    ))
}

/// Published events (and, for organizers, their drafts) by start time.
#[utoipa::path(get, path = "/events", tag = "catalog", params(ListQuery),
    responses((status = 200, body = EventPage), (status = 422, body = Problem)))]
pub async fn list_events(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<EventPage>> {
    let viewer = user.as_ref().map(Viewer::from);
    Ok(ApiJson(events::list(&state, viewer.as_ref(), query).await?))
}

/// An event's performances.
#[utoipa::path(get, path = "/events/{id}/performances", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = Vec<PerformanceView>), (status = 404, body = Problem)))]
pub async fn list_performances(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Vec<PerformanceView>>> {
    let viewer = user.as_ref().map(Viewer::from);
    Ok(ApiJson(
        events::get(&state, viewer.as_ref(), &id)
            .await?
            .performances,
    ))
}

/// Adds a performance within the event's time and ticket total.
#[utoipa::path(post, path = "/events/{id}/performances", tag = "catalog", params(("id" = String, Path)),
    request_body = PerformanceBody, security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = PerformanceView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_performance(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PerformanceBody>,
) -> AppResult<(StatusCode, ApiJson<PerformanceView>)> {
    let view = performances::create(&state, &Viewer::from(&user), &id, body).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Changes a performance.
#[utoipa::path(patch, path = "/events/{id}/performances/{pid}", tag = "catalog",
    params(("id" = String, Path), ("pid" = String, Path)), request_body = PerformancePatch,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = PerformanceView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_performance(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path((id, pid)): Path<(String, String)>,
    ApiJson(patch): ApiJson<PerformancePatch>,
) -> AppResult<ApiJson<PerformanceView>> {
    Ok(ApiJson(
        performances::update(&state, &Viewer::from(&user), &id, &pid, patch).await?,
    ))
}

/// Deletes a performance without products or orders.
#[utoipa::path(delete, path = "/events/{id}/performances/{pid}", tag = "catalog",
    params(("id" = String, Path), ("pid" = String, Path)), security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem), (status = 409, description = "`orders_exist` or `products_exist`", body = Problem)))]
pub async fn delete_performance(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path((id, pid)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    performances::delete(&state, &Viewer::from(&user), &id, &pid).await?;
    Ok(StatusCode::NO_CONTENT)
}
