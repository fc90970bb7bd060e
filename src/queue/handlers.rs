//! HTTP handlers of the waiting room: organizer settings, the buyer API, the operator's view.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    admin::{self, QueueStats},
    buyer::{self, PlaceView, SocketTicket},
    settings::{self, QueueBody, QueueView, VipBody},
};
use crate::{
    app::AppState,
    auth::{AuthUser, RequireRole, extract::Organizer},
    catalog::access::Viewer,
    error::{AppResult, Problem},
    http::{ApiJson, ApiQuery, ClientIp, extract::ApiPath},
};

/// Header carrying the queue token on status, leave and ws-ticket.
pub const QUEUE_TOKEN_HEADER: &str = "x-queue-token";

fn queue_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(QUEUE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// `{event_id}` in a body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_id": "0193f0a4-7c1e-7d2a-9b61-3f2a1c0d9e11"}))]
pub struct EventRef {
    /// The event.
    pub event_id: String,
}

/// `?event_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// The event.
    pub event_id: String,
}

/// Creates or replaces an event's queue settings (its organizer or an admin).
#[utoipa::path(put, path = "/events/{id}/queue", tag = "queue", params(("id" = String, Path)),
    request_body = QueueBody, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = QueueView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, description = "`validation_failed`", body = Problem)))]
pub async fn put_queue(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<QueueBody>,
) -> AppResult<ApiJson<QueueView>> {
    Ok(ApiJson(
        settings::put(&state, &Viewer::from(&user), &id, body).await?,
    ))
}

/// An event's queue settings and VIP list.
#[utoipa::path(get, path = "/events/{id}/queue", tag = "queue", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = QueueView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_queue(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<QueueView>> {
    Ok(ApiJson(
        settings::get(&state, &Viewer::from(&user), &id).await?,
    ))
}

/// Stops admitting (joins and status keep working; sockets are told `paused`).
#[utoipa::path(post, path = "/events/{id}/queue/pause", tag = "queue", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = QueueView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn pause(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<QueueView>> {
    Ok(ApiJson(
        settings::set_paused(&state, &Viewer::from(&user), &id, true).await?,
    ))
}

/// Admits again.
#[utoipa::path(post, path = "/events/{id}/queue/resume", tag = "queue", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = QueueView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn resume(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
) -> AppResult<ApiJson<QueueView>> {
    Ok(ApiJson(
        settings::set_paused(&state, &Viewer::from(&user), &id, false).await?,
    ))
}

/// Replaces the event's VIP list (in addition to accounts with the vip flag).
#[utoipa::path(put, path = "/events/{id}/queue/vip", tag = "queue", params(("id" = String, Path)),
    request_body = VipBody, security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = QueueView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_vips(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VipBody>,
) -> AppResult<ApiJson<QueueView>> {
    Ok(ApiJson(
        settings::put_vips(&state, &Viewer::from(&user), &id, body).await?,
    ))
}

/// Takes a place in the event's queue (joining again returns the same place).
#[utoipa::path(post, path = "/queue/join", tag = "queue", request_body = EventRef,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PlaceView),
        (status = 401, body = Problem),
        (status = 403, description = "`challenge_required` (when proof of work is on)", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "`queue_not_enabled`, `queue_not_open`", body = Problem),
        (status = 429, description = "`too_many_joins` from one address", body = Problem),
        (status = 503, description = "`queue_unavailable`", body = Problem),
    ))]
pub async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EventRef>,
) -> AppResult<ApiJson<PlaceView>> {
    Ok(ApiJson(
        buyer::join(&state, &headers, &user, ip, &body.event_id).await?,
    ))
}

/// The exact place (and the admission token once admitted). Accepts `X-Queue-Token` instead of
/// signing in. Each call is a heartbeat.
#[utoipa::path(get, path = "/queue/status", tag = "queue", params(EventQuery,
        ("X-Queue-Token" = Option<String>, Header, description = "The `queue_token` from join")),
    security((), ("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = PlaceView),
        (status = 401, body = Problem),
        (status = 404, description = "`not_in_queue`", body = Problem),
        (status = 409, description = "`queue_not_enabled`", body = Problem),
        (status = 503, description = "`queue_unavailable`", body = Problem),
    ))]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<AuthUser>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> AppResult<ApiJson<PlaceView>> {
    let asker = buyer::asker(
        &state,
        queue_token(&headers),
        user.as_ref(),
        &query.event_id,
    )?;
    Ok(ApiJson(
        buyer::status(&state, &asker, &query.event_id).await?,
    ))
}

/// Gives up the place or the admission slot at once.
#[utoipa::path(delete, path = "/queue/leave", tag = "queue", params(EventQuery,
        ("X-Queue-Token" = Option<String>, Header, description = "The `queue_token` from join")),
    security((), ("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Left"), (status = 401, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn leave(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<AuthUser>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> AppResult<StatusCode> {
    let asker = buyer::asker(
        &state,
        queue_token(&headers),
        user.as_ref(),
        &query.event_id,
    )?;
    buyer::leave(&state, &asker, &query.event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use ticket (30 s) for `GET /queue/ws`.
#[utoipa::path(post, path = "/queue/ws-ticket", tag = "queue", request_body = EventRef,
    params(("X-Queue-Token" = Option<String>, Header, description = "The `queue_token` from join")),
    security((), ("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = SocketTicket), (status = 401, body = Problem), (status = 409, body = Problem)))]
pub async fn socket_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Option<AuthUser>,
    ApiJson(body): ApiJson<EventRef>,
) -> AppResult<ApiJson<SocketTicket>> {
    let asker = buyer::asker(&state, queue_token(&headers), user.as_ref(), &body.event_id)?;
    Ok(ApiJson(
        buyer::socket_ticket(&state, &asker, &body.event_id).await?,
    ))
}

/// The operator's view of one event's queue (its organizer or an admin).
#[utoipa::path(get, path = "/admin/queues/{event_id}", tag = "queue", params(("event_id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = QueueStats), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)))]
pub async fn stats(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiPath(event_id): ApiPath<String>,
) -> AppResult<ApiJson<QueueStats>> {
    Ok(ApiJson(
        admin::stats(&state, &Viewer::from(&user), &event_id).await?,
    ))
}
