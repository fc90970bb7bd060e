//! The buyer's side: join, status, leave and WebSocket tickets, as plain functions over the
//! state (the handlers only extract and map).

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    messages::{self, Gone, GoneReason, eta},
    room::{Lane, RoomError, Standing},
    settings::{self, EventQueue, Lookup, from_ms, ms},
    tokens::{self, Claims, Kind},
};
use crate::{
    app::AppState,
    auth::AuthUser,
    catalog::model::EventStatus,
    error::{AppError, AppResult},
};

/// How long a `queue_token` is accepted.
const QUEUE_TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;
/// How long a WebSocket ticket is accepted.
pub const SOCKET_TICKET_TTL_SECONDS: i64 = 30;

/// Where a buyer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum QueueStatus {
    /// In a lane.
    Waiting,
    /// Holding an admission slot.
    Admitted,
}

/// A buyer's place, as join and status answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "WAITING", "lane": "NORMAL", "position": 1532, "ahead": 1531, "eta_seconds": 31, "opens_at": "2026-12-01T20:00:00Z", "queue_token": "q1.dTF8ZTF8MTcwMDAwMDAwMDAwMHw.sig"}))]
pub struct PlaceView {
    /// `WAITING` or `ADMITTED`.
    pub status: QueueStatus,
    /// `NORMAL` or `VIP`.
    #[schema(value_type = String)]
    pub lane: Lane,
    /// 1-based place in the lane; `null` before the sale opens (the pre-queue order is random
    /// and secret) and once admitted.
    pub position: Option<u64>,
    /// People ahead in the lane; `null` before the sale opens.
    pub ahead: Option<u64>,
    /// Estimated seconds until admission; `null` before the sale opens.
    pub eta_seconds: Option<u64>,
    /// When admission starts (the sale opening).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub opens_at: OffsetDateTime,
    /// Send as `X-Queue-Token` to status, leave and ws-ticket instead of signing in.
    pub queue_token: String,
    /// Once admitted: send as `X-Admission-Token` on `POST /orders`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_token: Option<String>,
    /// Once admitted: the end of the slot.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub admission_expires_at: Option<OffsetDateTime>,
}

/// A WebSocket ticket.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"ticket": "w1.dTF8ZTF8MTcwMDAwMDAwMDAwMHxub25jZQ.sig", "expires_in": 30}))]
pub struct SocketTicket {
    /// Pass as `ticket` to `GET /queue/ws`; single use.
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
}

/// Who is asking: from `X-Queue-Token`, or a signed-in user.
#[derive(Clone, Debug)]
pub struct Asker {
    /// The user.
    pub user_id: String,
    /// When they joined (only known from a queue token).
    pub joined_at_ms: Option<i64>,
}

/// Maps a backend failure to 503 `queue_unavailable` (or 429 for the join limit).
pub fn room_error(err: RoomError) -> AppError {
    match err {
        RoomError::TooManyJoins => AppError::too_many(
            "too_many_joins",
            "Too many accounts joined this queue from your address.",
            60,
        ),
        RoomError::Unavailable(cause) => {
            tracing::warn!(%cause, "waiting room backend unavailable");
            metrics::counter!("boxoffice_queue_backend_errors_total").increment(1);
            let mut err = AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "The waiting room is briefly unavailable; keep this page open and retry.",
            );
            err = err.with_header(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
            err
        }
    }
}

fn not_enabled() -> AppError {
    AppError::conflict(
        "queue_not_enabled",
        "This event has no waiting room; buy directly.",
    )
}

/// The event's queue if it is on and public, else 404 / 409 `queue_not_enabled`.
pub async fn enabled_queue(state: &AppState, event_id: &str) -> AppResult<Arc<EventQueue>> {
    let queue = match settings::lookup(state, event_id).await? {
        Lookup::NoEvent | Lookup::NoQueue { draft: true } => return Err(AppError::not_found()),
        Lookup::NoQueue { draft: false } => return Err(not_enabled()),
        Lookup::Queue(queue) => queue,
    };
    if queue.status == EventStatus::Draft {
        return Err(AppError::not_found());
    }
    if !queue.enabled {
        return Err(not_enabled());
    }
    Ok(queue)
}

/// Which lane a user stands in.
pub fn lane_of(user: &AuthUser, queue: &EventQueue) -> Lane {
    if user.vip || queue.vips.contains(&user.user_id) {
        Lane::Vip
    } else {
        Lane::Normal
    }
}

/// Draws a uniform 52-bit score for the pre-queue from the injected rng.
fn random_52(state: &AppState) -> u64 {
    let mut buf = [0u8; 8];
    state.rng.fill(&mut buf);
    u64::from_le_bytes(buf) & (super::room::OPEN_SCORE_BASE - 1)
}

/// `POST /queue/join`.
pub async fn join(
    state: &AppState,
    headers: &HeaderMap,
    user: &AuthUser,
    ip: std::net::IpAddr,
    event_id: &str,
) -> AppResult<PlaceView> {
    let queue = enabled_queue(state, event_id).await?;
    let now = state.clock.now();
    if now < queue.opens_at {
        return Err(AppError::conflict(
            "queue_not_open",
            format!(
                "The waiting room opens at {}.",
                queue
                    .opens_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
        ));
    }
    state
        .queue
        .challenge
        .check(headers, &user.user_id, &queue.event_id)?;
    let lane = lane_of(user, &queue);
    let now_ms = ms(now);
    let joined = state
        .queue
        .room
        .join(
            &queue.event_id,
            &user.user_id,
            lane,
            &ip.to_string(),
            &queue.rules,
            now_ms,
            random_52(state),
        )
        .await
        .map_err(room_error)?;
    if joined.new {
        metrics::counter!("boxoffice_queue_joins_total", "event" => queue.event_id.clone())
            .increment(1);
        metrics::counter!("boxoffice_funnel_total", "event" => queue.event_id.clone(), "stage" => "joined")
            .increment(1);
    }
    let token = tokens::sign(
        &state.secrets.queue_token,
        Kind::Queue,
        &Claims {
            user_id: user.user_id.clone(),
            event_id: queue.event_id.clone(),
            expires_at_ms: now_ms + QUEUE_TOKEN_TTL_MS,
            extra: now_ms.to_string(),
        },
    );
    Ok(present(
        state,
        &queue,
        &user.user_id,
        joined.standing,
        token,
        now_ms,
    ))
}

/// Who a status, leave or ws-ticket call is for: `X-Queue-Token` (no JWT work) or the user.
pub fn asker(
    state: &AppState,
    queue_token: Option<&str>,
    user: Option<&AuthUser>,
    event_id: &str,
) -> AppResult<Asker> {
    if let Some(token) = queue_token {
        let now_ms = ms(state.clock.now());
        let claims = tokens::verify(&state.secrets.queue_token, Kind::Queue, token, now_ms)
            .map_err(|_| {
                AppError::unauthorized(
                    "unauthenticated",
                    "The queue token is invalid or expired; join again.",
                )
            })?;
        // A token for another event says nothing about this one.
        if claims.event_id != event_id {
            return Err(AppError::unauthorized(
                "unauthenticated",
                "This queue token belongs to another event.",
            ));
        }
        return Ok(Asker {
            user_id: claims.user_id,
            joined_at_ms: claims.extra.parse().ok(),
        });
    }
    user.map(|u| Asker {
        user_id: u.user_id.clone(),
        joined_at_ms: None,
    })
    .ok_or_else(AppError::unauthenticated)
}

fn not_in_queue() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_in_queue",
        "You have no place in this queue (left, dropped after going silent, or your slot ended); join again.",
    )
}

/// `GET /queue/status`: the exact place (a heartbeat too).
pub async fn status(state: &AppState, asker: &Asker, event_id: &str) -> AppResult<PlaceView> {
    let queue = enabled_queue(state, event_id).await?;
    let now_ms = ms(state.clock.now());
    let standing = state
        .queue
        .room
        .status(&queue.event_id, &asker.user_id, &queue.rules, now_ms)
        .await
        .map_err(room_error)?
        .ok_or_else(not_in_queue)?;
    if let (Standing::Admitted { expires_at_ms, .. }, Some(joined)) =
        (&standing, asker.joined_at_ms)
    {
        observe_admission_wait(state, &queue, &asker.user_id, joined, *expires_at_ms);
    }
    let token = tokens::sign(
        &state.secrets.queue_token,
        Kind::Queue,
        &Claims {
            user_id: asker.user_id.clone(),
            event_id: queue.event_id.clone(),
            expires_at_ms: now_ms + QUEUE_TOKEN_TTL_MS,
            extra: asker.joined_at_ms.unwrap_or(now_ms).to_string(),
        },
    );
    Ok(present(
        state,
        &queue,
        &asker.user_id,
        standing,
        token,
        now_ms,
    ))
}

/// Records how long an admitted user waited, once per user and instance.
fn observe_admission_wait(
    state: &AppState,
    queue: &EventQueue,
    user_id: &str,
    joined_at_ms: i64,
    expires_at_ms: i64,
) {
    let key = format!("{}:{user_id}", queue.event_id);
    if state.queue.waits_seen.contains_key(&key) {
        return;
    }
    state.queue.waits_seen.insert(key, ());
    let admitted_at = expires_at_ms - queue.rules.admission_ttl_ms;
    // The pre-queue waits from the opening, not from joining.
    let started = joined_at_ms.max(queue.rules.sale_opens_at_ms);
    state.queue.hub.observe_wait(
        &queue.event_id,
        admitted_at.saturating_sub(started).max(0) as u64,
    );
}

/// `DELETE /queue/leave`: frees the place or slot at once.
pub async fn leave(state: &AppState, asker: &Asker, event_id: &str) -> AppResult<()> {
    let queue = enabled_queue(state, event_id).await?;
    let had = state
        .queue
        .room
        .leave(&queue.event_id, &asker.user_id)
        .await
        .map_err(room_error)?;
    if had {
        let gone = Gone {
            event_id: queue.event_id.clone(),
            users: vec![asker.user_id.clone()],
            reason: GoneReason::Left,
        };
        publish(state, messages::GONE, &gone).await;
    }
    Ok(())
}

/// `POST /queue/ws-ticket`: a single-use ticket for `GET /queue/ws`.
pub async fn socket_ticket(
    state: &AppState,
    asker: &Asker,
    event_id: &str,
) -> AppResult<SocketTicket> {
    let queue = enabled_queue(state, event_id).await?;
    let now_ms = ms(state.clock.now());
    let nonce = crate::infra::rng::token(state.rng.as_ref(), 12);
    let ticket = tokens::sign(
        &state.secrets.queue_token,
        Kind::Socket,
        &Claims {
            user_id: asker.user_id.clone(),
            event_id: queue.event_id.clone(),
            expires_at_ms: now_ms + SOCKET_TICKET_TTL_SECONDS * 1000,
            extra: format!(
                "{nonce}:{}",
                asker
                    .joined_at_ms
                    .map(|j| j.to_string())
                    .unwrap_or_default()
            ),
        },
    );
    Ok(SocketTicket {
        ticket,
        expires_in: SOCKET_TICKET_TTL_SECONDS,
    })
}

/// The admission token of a slot.
pub fn admission_token(
    state: &AppState,
    user_id: &str,
    event_id: &str,
    expires_at_ms: i64,
) -> String {
    tokens::sign(
        &state.secrets.queue_token,
        Kind::Admission,
        &Claims {
            user_id: user_id.to_owned(),
            event_id: event_id.to_owned(),
            expires_at_ms,
            extra: String::new(),
        },
    )
}

fn present(
    state: &AppState,
    queue: &EventQueue,
    user_id: &str,
    standing: Standing,
    queue_token: String,
    now_ms: i64,
) -> PlaceView {
    let open = now_ms >= queue.rules.sale_opens_at_ms;
    match standing {
        Standing::Waiting { lane, position, .. } => {
            let position = position.filter(|_| open);
            let ahead = position.map(|p| p.saturating_sub(1));
            PlaceView {
                status: QueueStatus::Waiting,
                lane,
                position,
                ahead,
                eta_seconds: ahead.and_then(|a| eta(a, queue.lane_rate(lane))),
                opens_at: queue.sale_open_at,
                queue_token,
                admission_token: None,
                admission_expires_at: None,
            }
        }
        Standing::Admitted {
            lane,
            expires_at_ms,
        } => PlaceView {
            status: QueueStatus::Admitted,
            lane,
            position: None,
            ahead: Some(0),
            eta_seconds: Some(0),
            opens_at: queue.sale_open_at,
            queue_token,
            admission_token: Some(admission_token(
                state,
                user_id,
                &queue.event_id,
                expires_at_ms,
            )),
            admission_expires_at: Some(from_ms(expires_at_ms)),
        },
    }
}

/// Publishes a queue message to every instance; a failure is logged (the ticker and sockets
/// catch up with the next progress message).
pub async fn publish<T: Serialize>(state: &AppState, channel: &str, message: &T) {
    let Ok(payload) = serde_json::to_string(message) else {
        return;
    };
    if let Err(e) = state.bus.publish(channel, &payload).await {
        tracing::warn!(error = %e, channel, "could not publish a queue message");
    }
}
