//! `GET /admin/queues/{event_id}`: what an operator watches during an opening.

use serde::Serialize;
use utoipa::ToSchema;

use super::{
    buyer::room_error,
    room::Lane,
    settings::{self, ms},
};
use crate::{
    app::AppState,
    catalog::access::{Viewer, manageable_event},
    error::{AppError, AppResult},
};

/// One event's queue right now.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": "0193f0a4-7c1e-7d2a-9b61-3f2a1c0d9e11", "enabled": true, "paused": false, "waiting": {"NORMAL": 15320, "VIP": 12}, "admitted_total": 4200, "active": 480, "capacity": 500, "admit_per_second": 50, "admission_rate": 48.5, "abandoned_total": 310, "left_total": 95, "wait_avg_seconds": 84.2, "wait_p90_seconds": 151.0, "websockets_here": 2101}))]
pub struct QueueStats {
    /// The event.
    pub event_id: String,
    /// Whether the queue guards checkout.
    pub enabled: bool,
    /// Admission paused.
    pub paused: bool,
    /// Waiting per lane.
    pub waiting: std::collections::BTreeMap<String, u64>,
    /// Admissions since the queue was created.
    pub admitted_total: u64,
    /// Slots active now.
    pub active: u64,
    /// Configured capacity.
    pub capacity: u32,
    /// Configured highest admission rate.
    pub admit_per_second: u32,
    /// Measured admissions per second over the last 10 s (from the ticker's last progress).
    pub admission_rate: f64,
    /// Waiters dropped for missing heartbeats.
    pub abandoned_total: u64,
    /// Voluntary leaves.
    pub left_total: u64,
    /// Average wait from joining (or the opening, for the pre-queue) to admission, over recent
    /// admissions whose join time is known.
    pub wait_avg_seconds: Option<f64>,
    /// 90th percentile of the same.
    pub wait_p90_seconds: Option<f64>,
    /// WebSockets open on the instance that answered.
    pub websockets_here: usize,
}

/// The view for one event.
pub async fn stats(state: &AppState, viewer: &Viewer, event_id: &str) -> AppResult<QueueStats> {
    let event = manageable_event(state, viewer, event_id).await?;
    let queue = settings::load(state, &event.id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let room = state
        .queue
        .room
        .stats(&event.id, ms(state.clock.now()))
        .await
        .map_err(room_error)?;
    let progress = state.queue.hub.progress(&event.id);
    let (avg, p90) = state.queue.hub.wait_summary(&event.id);
    let secs = |v: Option<u64>| v.map(|ms| ms as f64 / 1000.0);
    Ok(QueueStats {
        event_id: event.id.clone(),
        enabled: queue.enabled,
        paused: queue.rules.paused,
        waiting: room
            .waiting
            .iter()
            .map(|(lane, n)| (super::ticker::lane_name(*lane).to_owned(), *n))
            .chain(
                Lane::ALL
                    .iter()
                    .filter(|l| !room.waiting.iter().any(|(w, _)| w == *l))
                    .map(|l| (super::ticker::lane_name(*l).to_owned(), 0)),
            )
            .collect(),
        admitted_total: room.admitted_total,
        active: room.active,
        capacity: queue.rules.capacity,
        admit_per_second: queue.rules.admit_per_second,
        admission_rate: progress.map_or(0.0, |p| p.rate),
        abandoned_total: room.abandoned_total,
        left_total: room.left_total,
        wait_avg_seconds: secs(avg),
        wait_p90_seconds: secs(p90),
        websockets_here: state.queue.hub.open_sockets(),
    })
}
