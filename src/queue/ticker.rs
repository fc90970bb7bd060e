//! The admission ticker: runs on every instance, ticks only while it holds the cluster-wide
//! lease (`WaitingRoom::lead`, renewed every tick, short TTL so another instance takes over
//! when the leader dies), and publishes what each tick changed.

use std::{
    collections::{HashMap, VecDeque},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use super::{
    buyer::publish,
    messages::{self, Admitted, Gone, GoneReason, Progress},
    room::{Lane, Tick},
    settings::{self, ms},
};
use crate::{app::AppState, db::entities::event_queues};

/// How often the ticker runs.
pub const TICK_EVERY: Duration = Duration::from_millis(250);
/// Lease lifetime (by the injected clock): a dead leader is replaced after this long.
pub const LEASE_MS: i64 = 3_000;
/// How often progress is published per event.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How often the list of queue-enabled events is re-read.
const EVENTS_EVERY: Duration = Duration::from_secs(2);
/// Window of the measured admission rate.
const RATE_WINDOW_MS: i64 = 10_000;

#[derive(Default)]
struct EventTicker {
    last_progress: Option<Instant>,
    last_published: Option<Progress>,
    admissions: VecDeque<(i64, u64)>,
}

impl EventTicker {
    fn rate(&mut self, now_ms: i64, admitted: u64) -> f64 {
        if admitted > 0 {
            self.admissions.push_back((now_ms, admitted));
        }
        while self
            .admissions
            .front()
            .is_some_and(|(t, _)| *t <= now_ms - RATE_WINDOW_MS)
        {
            self.admissions.pop_front();
        }
        self.admissions.iter().map(|(_, n)| *n).sum::<u64>() as f64
            / (RATE_WINDOW_MS as f64 / 1000.0)
    }
}

/// Runs until the queue shuts down.
pub async fn run(state: AppState) {
    let mut shutdown = state.queue.shutdown_signal();
    let mut interval = tokio::time::interval(TICK_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events: Vec<String> = Vec::new();
    let mut events_read: Option<Instant> = None;
    let mut tickers: HashMap<String, EventTicker> = HashMap::new();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let now_ms = ms(state.clock.now());
        let leading = match state
            .queue
            .room
            .lead(&state.queue.holder, now_ms, LEASE_MS)
            .await
        {
            Ok(leading) => leading,
            Err(e) => {
                tracing::warn!(error = %e, "queue lease unavailable; not ticking");
                false
            }
        };
        let was = state.queue.leader.swap(leading, Ordering::Relaxed);
        if leading != was {
            tracing::info!(holder = %state.queue.holder, leading, "queue ticker lease changed");
        }
        if !leading {
            tickers.clear();
            continue;
        }
        let stale = events_read.is_none_or(|t| t.elapsed() >= EVENTS_EVERY)
            || state.queue.events_dirty.swap(false, Ordering::Relaxed);
        if stale {
            match enabled_events(&state).await {
                Ok(list) => {
                    events = list;
                    events_read = Some(Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "could not list queue-enabled events"),
            }
        }
        tickers.retain(|e, _| events.contains(e));
        for event_id in &events {
            let ticker = tickers.entry(event_id.clone()).or_default();
            tick_event(&state, event_id, ticker, now_ms).await;
        }
    }
}

async fn enabled_events(state: &AppState) -> Result<Vec<String>, sea_orm::DbErr> {
    event_queues::Entity::find()
        .select_only()
        .column(event_queues::Column::EventId)
        .filter(event_queues::Column::Enabled.eq(true))
        .into_tuple::<String>()
        .all(&state.db)
        .await
}

async fn tick_event(state: &AppState, event_id: &str, ticker: &mut EventTicker, now_ms: i64) {
    let queue = match settings::load(state, event_id).await {
        Ok(Some(q)) if q.enabled => q,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, event_id, "queue settings unreadable");
            return;
        }
    };
    let tick = match state.queue.room.tick(event_id, &queue.rules, now_ms).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, event_id, "admission tick failed");
            return;
        }
    };
    announce(state, event_id, &tick).await;
    let rate = ticker.rate(now_ms, tick.admitted.len() as u64);
    let due = ticker
        .last_progress
        .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
    if !due {
        return;
    }
    let progress = Progress {
        event_id: event_id.to_owned(),
        heads: tick.heads.clone(),
        admitted_total: tick.admitted_total,
        active: tick.active,
        paused: queue.rules.paused,
        open: now_ms >= queue.rules.sale_opens_at_ms,
        lane_rates: (queue.lane_rate(Lane::Vip), queue.lane_rate(Lane::Normal)),
        rate,
    };
    ticker.last_progress = Some(Instant::now());
    for (lane, _, waiting) in &progress.heads {
        metrics::gauge!("boxoffice_queue_waiting", "event" => event_id.to_owned(), "lane" => lane_name(*lane))
            .set(*waiting as f64);
    }
    metrics::gauge!("boxoffice_queue_active", "event" => event_id.to_owned())
        .set(tick.active as f64);
    if ticker.last_published.as_ref() != Some(&progress) {
        publish(state, messages::PROGRESS, &progress).await;
        ticker.last_published = Some(progress);
    }
}

/// Publishes admissions and departures of one tick (at once, not with the next progress).
async fn announce(state: &AppState, event_id: &str, tick: &Tick) {
    let event = event_id.to_owned();
    if !tick.admitted.is_empty() {
        metrics::counter!("boxoffice_queue_admissions_total", "event" => event.clone())
            .increment(tick.admitted.len() as u64);
        metrics::counter!("boxoffice_funnel_total", "event" => event.clone(), "stage" => "admitted")
            .increment(tick.admitted.len() as u64);
        let message = Admitted {
            event_id: event.clone(),
            users: tick.admitted.clone(),
        };
        publish(state, messages::ADMITTED, &message).await;
    }
    for (users, reason) in [
        (&tick.abandoned, GoneReason::Abandoned),
        (&tick.expired, GoneReason::Expired),
    ] {
        if users.is_empty() {
            continue;
        }
        if reason == GoneReason::Abandoned {
            metrics::counter!("boxoffice_queue_abandonments_total", "event" => event.clone())
                .increment(users.len() as u64);
        }
        let message = Gone {
            event_id: event.clone(),
            users: users.clone(),
            reason,
        };
        publish(state, messages::GONE, &message).await;
    }
}

/// Metric label of a lane.
pub fn lane_name(lane: Lane) -> &'static str {
    match lane {
        Lane::Vip => "VIP",
        Lane::Normal => "NORMAL",
    }
}
