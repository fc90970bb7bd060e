//! What every instance runs for the waiting room besides the ticker: the bus listener that
//! feeds the socket hub and drops cached rules, and the loop that turns open sockets into
//! batched heartbeats and shares wait samples.

use std::{sync::atomic::Ordering, time::Duration};

use tokio::sync::broadcast::error::RecvError;

use super::{
    buyer::{admission_token, publish},
    messages::{self, Admitted, Gone, Progress, Push, Waits},
    settings::{self, RULES_CHANGED, from_ms, ms},
};
use crate::app::AppState;

/// Users per heartbeat call.
const HEARTBEAT_BATCH: usize = 1_000;

/// Feeds bus messages to the hub and the rules cache until the queue shuts down.
pub async fn listen(state: AppState) {
    let mut rx = state.bus.subscribe();
    let mut shutdown = state.queue.shutdown_signal();
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = shutdown.changed() => return,
        };
        match msg {
            Ok(msg) => handle(&state, &msg.channel, &msg.payload).await,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "queue listener lagged; positions catch up next second"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn handle(state: &AppState, channel: &str, payload: &str) {
    let queue = &state.queue;
    match channel {
        messages::PROGRESS => {
            if let Ok(p) = serde_json::from_str::<Progress>(payload) {
                queue.hub.on_progress(p);
            }
        }
        messages::ADMITTED => {
            if let Ok(a) = serde_json::from_str::<Admitted>(payload) {
                let now_ms = ms(state.clock.now());
                let event = a.event_id.clone();
                queue.hub.on_admitted(
                    &a,
                    |user, expires| Push::Admitted {
                        admission_token: admission_token(state, user, &event, expires),
                        admission_expires_at: from_ms(expires)
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    },
                    now_ms,
                );
            }
        }
        messages::GONE => {
            if let Ok(g) = serde_json::from_str::<Gone>(payload) {
                queue.hub.on_gone(&g);
            }
        }
        messages::WAITS => {
            if let Ok(w) = serde_json::from_str::<Waits>(payload) {
                queue.hub.add_waits(&w.event_id, &w.samples);
            }
        }
        RULES_CHANGED => {
            queue.rules.invalidate(payload);
            queue.events_dirty.store(true, Ordering::Relaxed);
            if let Ok(Some(q)) = settings::load(state, payload).await
                && !q.enabled
            {
                queue.hub.close_all(Some(payload), "queue_disabled");
            }
        }
        crate::catalog::CHANGED => queue.rules.invalidate(payload),
        _ => {}
    }
}

/// Every second: heartbeats for waiting members with an open socket (each event at a third of
/// its timeout, in batches), wait samples to the other instances, the connections gauge.
pub async fn maintain(state: AppState) {
    let mut shutdown = state.queue.shutdown_signal();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat: std::collections::HashMap<String, i64> = Default::default();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now_ms = ms(state.clock.now());
        for (event_id, users) in state.queue.hub.waiting_users() {
            let timeout = match settings::load(&state, &event_id).await {
                Ok(Some(q)) => q.rules.heartbeat_timeout_ms,
                _ => continue,
            };
            if last_beat
                .get(&event_id)
                .is_some_and(|t| now_ms - t < timeout / 3)
            {
                continue;
            }
            last_beat.insert(event_id.clone(), now_ms);
            for batch in users.chunks(HEARTBEAT_BATCH) {
                if let Err(e) = state.queue.room.heartbeat(&event_id, batch, now_ms).await {
                    tracing::warn!(error = %e, "socket heartbeats failed; retrying next second");
                    last_beat.remove(&event_id);
                    break;
                }
            }
        }
        for (event_id, samples) in state.queue.hub.take_pending_waits() {
            publish(&state, messages::WAITS, &Waits { event_id, samples }).await;
        }
        for (event_id, open) in state.queue.hub.sockets_per_event() {
            metrics::gauge!("boxoffice_queue_websockets", "event" => event_id).set(open as f64);
        }
    }
}

/// Beats for the given users now (a socket that just opened).
pub async fn beat_now(state: &AppState, event_id: &str, user_id: &str) {
    let now_ms = ms(state.clock.now());
    let _ = state
        .queue
        .room
        .heartbeat(event_id, &[user_id.to_owned()], now_ms)
        .await;
}
