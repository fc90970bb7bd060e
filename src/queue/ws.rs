//! `GET /queue/ws`: a single-use ticket and the `Origin` are checked before the upgrade, then
//! the socket is registered in this instance's hub and pushed what the hub decides. Small
//! buffers: a socket costs a few KiB, so one instance holds tens of thousands.

use axum::{
    extract::{
        State,
        ws::{
            CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
        },
    },
    http::{HeaderMap, header},
    response::Response,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::{
    buyer::{self, room_error},
    hub::{Command, NewSocket},
    instance,
    messages::{Push, eta},
    room::Standing,
    settings::{EventQueue, ms},
    tokens::{self, Kind},
};
use crate::{
    app::AppState,
    error::{AppError, AppResult, Problem},
    http::ApiQuery,
};

/// Read buffer and largest accepted message (clients only send pings and close).
const SOCKET_BUFFER: usize = 4 * 1024;
/// Commands queued per socket before new ones are dropped (positions are resent anyway).
const SOCKET_QUEUE: usize = 8;
/// A socket whose client takes longer than this to accept a message is dropped: a stalled
/// reader must not hold its task (or, over HTTP/2, its connection's window) or the shutdown.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `GET /queue/ws` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocketQuery {
    /// The event.
    pub event_id: String,
    /// From `POST /queue/ws-ticket`.
    pub ticket: String,
}

/// Live position over WebSocket. Messages: `{type: "position", position, ahead, eta_seconds}`
/// (when it changes, at most once a second), `{type: "admitted", admission_token,
/// admission_expires_at}`, `{type: "paused"}`, `{type: "expired"}`, `{type: "closed", reason}`.
/// An open socket keeps the place (it is a heartbeat). Over HTTP/2 the same socket opens with an
/// extended `CONNECT` (RFC 8441), so a proxy can carry many sockets on one connection.
#[utoipa::path(get, path = "/queue/ws", tag = "queue", params(SocketQuery),
    responses(
        (status = 101, description = "Switching to WebSocket"),
        (status = 400, description = "`websocket_required`: not a WebSocket handshake (405 for a GET over HTTP/2 or a CONNECT over HTTP/1.1; 426 when the version header is missing)", body = Problem),
        (status = 401, description = "`unauthenticated`: the ticket is invalid, expired or used", body = Problem),
        (status = 403, description = "`forbidden`: foreign `Origin`", body = Problem),
        (status = 404, description = "`not_in_queue`", body = Problem),
        (status = 409, description = "`queue_not_enabled`", body = Problem),
        (status = 503, description = "`queue_unavailable`: Redis is unreachable, or this instance is shutting down", body = Problem),
    ))]
pub async fn socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<SocketQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> AppResult<Response> {
    // Before the ticket is spent: a request that cannot become a socket keeps its ticket.
    let upgrade = upgrade.map_err(not_a_socket)?;
    check_origin(&state, &headers)?;
    if state.queue.is_shutting_down() {
        // A socket opened now would miss the shutdown message and keep the instance alive.
        return Err(AppError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "This instance is shutting down; connect again.",
        ));
    }
    let now_ms = ms(state.clock.now());
    let claims = tokens::verify(
        &state.secrets.queue_token,
        Kind::Socket,
        &query.ticket,
        now_ms,
    )
    .ok()
    .filter(|c| c.event_id == query.event_id)
    .ok_or_else(|| {
        AppError::unauthorized(
            "unauthenticated",
            "The socket ticket is invalid or expired.",
        )
    })?;
    let (nonce, joined) = claims.extra.split_once(':').unwrap_or((&claims.extra, ""));
    if !state
        .queue
        .consume_ticket(nonce, claims.expires_at_ms - now_ms)
        .await
        .map_err(room_error)?
    {
        return Err(AppError::unauthorized(
            "unauthenticated",
            "This socket ticket was already used; get a new one.",
        ));
    }
    let queue = buyer::enabled_queue(&state, &query.event_id).await?;
    let standing = state
        .queue
        .room
        .status(&queue.event_id, &claims.user_id, &queue.rules, now_ms)
        .await
        .map_err(room_error)?
        .ok_or_else(|| {
            AppError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_in_queue",
                "You have no place in this queue; join again.",
            )
        })?;
    let user_id = claims.user_id;
    let joined_at_ms = joined.parse().ok();
    Ok(upgrade
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(SOCKET_BUFFER * 4)
        .max_message_size(SOCKET_BUFFER)
        .max_frame_size(SOCKET_BUFFER)
        .on_upgrade(move |ws| async move {
            serve(state, queue, user_id, standing, joined_at_ms, ws).await;
        }))
}

/// A plain request to the socket's address: a problem like every other error, not axum's text.
fn not_a_socket(rejection: WebSocketUpgradeRejection) -> AppError {
    AppError::new(
        rejection.status(),
        "websocket_required",
        "Open this address as a WebSocket: an HTTP/1.1 GET with `Upgrade: websocket`, or an \
         HTTP/2 extended CONNECT with `:protocol: websocket`.",
    )
}

/// Browsers always send `Origin`; only ours may open a socket. Clients that send none are not
/// browsers (and could send anything), so they rely on the ticket alone.
fn check_origin(state: &AppState, headers: &HeaderMap) -> AppResult<()> {
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(origin)) if origin.trim_end_matches('/') == state.config.origin() => Ok(()),
        Some(_) => Err(AppError::forbidden(
            "forbidden",
            "WebSockets may be opened only from this site.",
        )),
    }
}

async fn serve(
    state: AppState,
    queue: std::sync::Arc<EventQueue>,
    user_id: String,
    standing: Standing,
    joined_at_ms: Option<i64>,
    mut ws: WebSocket,
) {
    let (tx, mut rx) = mpsc::channel(SOCKET_QUEUE);
    let now_ms = ms(state.clock.now());
    let open = now_ms >= queue.rules.sale_opens_at_ms;
    let (first, new) = match &standing {
        Standing::Waiting {
            lane,
            position,
            score,
        } => {
            let position = position.filter(|_| open);
            let first = position.map(|p| Push::Position {
                position: p,
                ahead: p - 1,
                eta_seconds: eta(p - 1, queue.lane_rate(*lane)),
            });
            let new = NewSocket {
                event_id: queue.event_id.clone(),
                user_id: user_id.clone(),
                lane: *lane,
                score: Some(*score),
                position,
                admitted: false,
                joined_at_ms,
            };
            (first, new)
        }
        Standing::Admitted {
            lane,
            expires_at_ms,
        } => (
            Some(Push::Admitted {
                admission_token: buyer::admission_token(
                    &state,
                    &user_id,
                    &queue.event_id,
                    *expires_at_ms,
                ),
                admission_expires_at: super::settings::from_ms(*expires_at_ms)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            }),
            NewSocket {
                event_id: queue.event_id.clone(),
                user_id: user_id.clone(),
                lane: *lane,
                score: None,
                position: None,
                admitted: true,
                joined_at_ms,
            },
        ),
    };
    let hub = &state.queue.hub;
    let id = hub.register(new, tx);
    metrics::gauge!("boxoffice_queue_websockets_open").increment(1.0);
    if matches!(standing, Standing::Waiting { .. }) {
        instance::beat_now(&state, &queue.event_id, &user_id).await;
    }
    let mut ok = match first {
        Some(push) => send(&mut ws, &push).await,
        None => true,
    };
    let mut shutdown = state.queue.shutdown_signal();
    while ok {
        tokio::select! {
            command = rx.recv() => match command {
                Some(Command::Send(push)) => ok = send(&mut ws, &push).await,
                Some(Command::Close(push)) => {
                    close(&mut ws, &push).await;
                    ok = false;
                }
                Some(Command::Refresh) => {
                    if let Some(push) = refresh(&state, &queue, &user_id, id).await {
                        ok = send(&mut ws, &push).await;
                    }
                }
                None => ok = false,
            },
            incoming = ws.recv() => match incoming {
                // Pings are answered by the library; anything else from the client is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => ok = false,
                Some(Ok(_)) => {}
            },
            () = stopping(&mut shutdown) => {
                close(&mut ws, &Push::Closed { reason: "shutdown".into() }).await;
                ok = false;
            }
        }
    }
    hub.unregister(&queue.event_id, &user_id, id);
    metrics::gauge!("boxoffice_queue_websockets_open").decrement(1.0);
}

/// Resolves once the instance is stopping, also when that began before this socket subscribed
/// (`changed` would wait for the next change).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}

/// Reads the exact position (pre-queue members once the sale opened) and tells the hub;
/// returns the position to push.
async fn refresh(state: &AppState, queue: &EventQueue, user_id: &str, id: u64) -> Option<Push> {
    let now_ms = ms(state.clock.now());
    match state
        .queue
        .room
        .status(&queue.event_id, user_id, &queue.rules, now_ms)
        .await
    {
        Ok(Some(Standing::Waiting {
            position: Some(p), ..
        })) => state
            .queue
            .hub
            .set_position(&queue.event_id, user_id, id, p),
        _ => None,
    }
}

async fn send(ws: &mut WebSocket, push: &Push) -> bool {
    send_within(ws, Message::Text(push.text().into())).await
}

async fn send_within(ws: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(message)).await,
        Ok(Ok(()))
    )
}

async fn close(ws: &mut WebSocket, push: &Push) {
    let _ = send(ws, push).await;
    let reason = match push {
        Push::Closed { reason } => reason.clone(),
        Push::Expired => "expired".into(),
        _ => String::new(),
    };
    send_within(
        ws,
        Message::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: reason.into(),
        })),
    )
    .await;
}
