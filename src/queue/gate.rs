//! The waiting room at checkout: `POST /orders` for a queue-enabled event needs the
//! `X-Admission-Token` of an active slot; an order that is paid, canceled or expires ends it.

use std::sync::Arc;

use axum::http::HeaderMap;

use super::{
    buyer::{publish, room_error},
    messages::{self, Gone, GoneReason},
    settings::{self, ms},
    tokens::{self, Kind},
};
use crate::{
    app::AppState,
    auth::AuthUser,
    db::entities::events,
    error::{AppError, AppResult},
    orders::hooks::{CheckoutGate, Hooks, Lifecycle, OrderChange, OrderLifecycle},
};

/// Header carrying the admission token on `POST /orders`.
pub const ADMISSION_HEADER: &str = "x-admission-token";

/// The hooks the application runs with by default.
pub fn hooks() -> Hooks {
    Hooks {
        gate: Arc::new(AdmissionGate),
        lifecycle: Arc::new(ReleaseSlot),
    }
}

fn refused(detail: &str) -> AppError {
    AppError::forbidden("admission_required", detail.to_owned())
}

/// Requires an active admission slot for queue-enabled events.
pub struct AdmissionGate;

#[async_trait::async_trait]
impl CheckoutGate for AdmissionGate {
    async fn admit(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        user: &AuthUser,
        event: &events::Model,
    ) -> AppResult<()> {
        let Some(queue) = settings::load(state, &event.id).await? else {
            return Ok(());
        };
        if !queue.enabled {
            return Ok(());
        }
        let now_ms = ms(state.clock.now());
        let token = headers
            .get(ADMISSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                refused("This event has a waiting room: join it and send X-Admission-Token once admitted.")
            })?;
        let claims = tokens::verify(&state.secrets.queue_token, Kind::Admission, token, now_ms)
            .map_err(|r| match r {
                tokens::Refusal::Expired => {
                    refused("Your admission has expired; join the queue again.")
                }
                tokens::Refusal::Invalid => refused("The admission token is not valid."),
            })?;
        if claims.user_id != user.user_id || claims.event_id != event.id {
            return Err(refused(
                "This admission token is not yours or not for this event.",
            ));
        }
        let active = state
            .queue
            .room
            .admission(&event.id, &user.user_id, now_ms)
            .await
            .map_err(room_error)?;
        match active {
            Some(_) => Ok(()),
            None => Err(refused(
                "Your admission slot has ended; join the queue again.",
            )),
        }
    }
}

/// Ends the buyer's slot when an order of a queue-enabled event is paid, canceled or expires.
pub struct ReleaseSlot;

#[async_trait::async_trait]
impl OrderLifecycle for ReleaseSlot {
    async fn after(&self, state: &AppState, change: &OrderChange) {
        if change.what == Lifecycle::Refunded {
            return;
        }
        let queue = match settings::load(state, &change.event_id).await {
            Ok(Some(q)) if q.enabled => q,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "queue settings unreadable; slot left to expire");
                return;
            }
        };
        let room = &state.queue.room;
        let now_ms = ms(state.clock.now());
        if change.what == Lifecycle::Paid
            && let Ok(Some(expires)) = room
                .admission(&queue.event_id, &change.user_id, now_ms)
                .await
        {
            let admitted_at = expires - queue.rules.admission_ttl_ms;
            metrics::histogram!(
                "boxoffice_queue_admission_to_paid_seconds",
                "event" => queue.event_id.clone()
            )
            .record((now_ms - admitted_at).max(0) as f64 / 1000.0);
        }
        match room.release(&queue.event_id, &change.user_id).await {
            Ok(true) => {
                let gone = Gone {
                    event_id: queue.event_id.clone(),
                    users: vec![change.user_id.clone()],
                    reason: GoneReason::Released,
                };
                publish(state, messages::GONE, &gone).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not release an admission slot; it expires on its own")
            }
        }
    }
}
