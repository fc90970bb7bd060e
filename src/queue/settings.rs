//! Per-event queue settings and VIP list: validation, storage, and the per-instance cache of
//! the rules every hot call needs (dropped on every instance through the bus when they change).

use std::{collections::HashSet, sync::Arc, time::Duration};

use moka::sync::Cache;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::room::RoomRules;
use crate::{
    app::AppState,
    catalog::{access::Viewer, model::EventStatus},
    db::entities::{event_queue_vips, event_queues, events},
    error::{AppError, AppResult, FieldError},
    infra::clock::{from_db, to_db},
};

/// Bus channel announcing that an event's queue settings changed (payload: event id).
pub const RULES_CHANGED: &str = "queue.rules";

/// Most VIP ids one event may list.
pub const MAX_VIPS: usize = 10_000;

/// Queue settings as sent by the organizer (`PUT /events/{id}/queue`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "capacity": 500, "admit_per_second": 50, "admission_ttl_seconds": 600, "pre_queue_opens_at": "2026-12-01T19:30:00+09:00", "vip_share": 0.2, "heartbeat_timeout_seconds": 30, "max_joins_per_ip": 20}))]
pub struct QueueBody {
    /// Whether the queue guards this event's checkout.
    pub enabled: bool,
    /// Shoppers admitted at once (1..=1000000).
    pub capacity: i64,
    /// Highest admissions per second (1..=100000).
    pub admit_per_second: i64,
    /// Lifetime of an admission slot (60..=7200, default 600).
    pub admission_ttl_seconds: Option<i64>,
    /// When joining opens (random order until the sale opens); at most `sale_open_at`.
    /// Unset: the queue opens with the sale.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub pre_queue_opens_at: Option<OffsetDateTime>,
    /// Fraction of admissions for the VIP lane while it has waiters (0.0..=1.0, default 0).
    pub vip_share: Option<f64>,
    /// A waiter silent this long is dropped (10..=3600, default 30).
    pub heartbeat_timeout_seconds: Option<i64>,
    /// Joins allowed from one client address for this event (unset: unlimited).
    pub max_joins_per_ip: Option<i64>,
}

/// An event's queue settings as shown to its organizer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// The event.
    pub event_id: String,
    /// Whether the queue guards checkout.
    pub enabled: bool,
    /// Shoppers admitted at once.
    pub capacity: i64,
    /// Highest admissions per second.
    pub admit_per_second: i64,
    /// Lifetime of an admission slot.
    pub admission_ttl_seconds: i64,
    /// When joining opens.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub pre_queue_opens_at: Option<OffsetDateTime>,
    /// When the sale (and admission) opens.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sale_open_at: OffsetDateTime,
    /// VIP lane share.
    pub vip_share: f64,
    /// Heartbeat timeout.
    pub heartbeat_timeout_seconds: i64,
    /// Joins per client address.
    pub max_joins_per_ip: Option<i64>,
    /// Nobody is admitted while paused.
    pub paused: bool,
    /// Users on the event's VIP list (in addition to accounts with the vip flag).
    pub vip_user_ids: Vec<String>,
}

/// `PUT /events/{id}/queue/vip`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_ids": ["0193f0a4-7c1e-7d2a-9b61-3f2a1c0d9e11"]}))]
pub struct VipBody {
    /// The whole list (replaces the previous one; at most 10000).
    pub user_ids: Vec<String>,
}

/// Everything a hot call needs about one event's queue, cached per instance.
#[derive(Clone, Debug)]
pub struct EventQueue {
    /// The event.
    pub event_id: String,
    /// Its organizer.
    pub organizer_id: String,
    /// Its status (drafts have no public queue).
    pub status: EventStatus,
    /// Whether the queue guards checkout.
    pub enabled: bool,
    /// When joining opens.
    pub opens_at: OffsetDateTime,
    /// When the sale opens.
    pub sale_open_at: OffsetDateTime,
    /// The rules passed to the backend.
    pub rules: RoomRules,
    /// The event's VIP list.
    pub vips: HashSet<String>,
}

impl EventQueue {
    /// Admissions per second a lane can expect (for `eta_seconds`).
    pub fn lane_rate(&self, lane: super::room::Lane) -> f64 {
        let share = match lane {
            super::room::Lane::Vip => self.rules.vip_share,
            super::room::Lane::Normal => 1.0 - self.rules.vip_share,
        };
        // A lane with no share still moves when the other lane is empty; estimate a small rate
        // rather than none so the estimate stays finite.
        (self.rules.admit_per_second as f64 * share).max(self.rules.admit_per_second as f64 * 0.05)
    }
}

/// What an event id names, as far as the queue is concerned.
#[derive(Clone, Debug)]
pub enum Lookup {
    /// No such event (or not an id at all).
    NoEvent,
    /// An event without queue settings.
    NoQueue {
        /// Drafts are visible to their organizer only.
        draft: bool,
    },
    /// The event's queue.
    Queue(Arc<EventQueue>),
}

impl Lookup {
    /// The queue, if the event has one.
    pub fn queue(self) -> Option<Arc<EventQueue>> {
        match self {
            Lookup::Queue(q) => Some(q),
            _ => None,
        }
    }
}

/// The per-instance rules cache: misses are cached too (no such event, no queue), so unknown or
/// hostile ids cost one lookup per few seconds, not one per request.
#[derive(Clone)]
pub struct RulesCache(Cache<String, Lookup>);

impl Default for RulesCache {
    fn default() -> Self {
        Self(
            Cache::builder()
                .max_capacity(10_000)
                // The bus drops entries at once; the expiry only bounds a missed message.
                .time_to_live(Duration::from_secs(10))
                .build(),
        )
    }
}

impl RulesCache {
    /// Drops one event's rules (`*`: all).
    pub fn invalidate(&self, event_id: &str) {
        if event_id == "*" {
            self.0.invalidate_all();
        } else {
            self.0.invalidate(event_id);
        }
    }
}

/// The event's queue, from the cache or the database. `None`: no such event or no settings.
pub async fn load(state: &AppState, event_id: &str) -> AppResult<Option<Arc<EventQueue>>> {
    Ok(lookup(state, event_id).await?.queue())
}

/// What the id names, from the cache or the database.
pub async fn lookup(state: &AppState, event_id: &str) -> AppResult<Lookup> {
    let cache = &state.queue.rules;
    if let Some(hit) = cache.0.get(event_id) {
        return Ok(hit);
    }
    let found = read(state, event_id).await?;
    cache.0.insert(event_id.to_owned(), found.clone());
    Ok(found)
}

async fn read(state: &AppState, event_id: &str) -> AppResult<Lookup> {
    // Anything that is not one of our ids cannot name an event; skip the database.
    if uuid::Uuid::parse_str(event_id).is_err() {
        return Ok(Lookup::NoEvent);
    }
    let Some(event) = events::Entity::find_by_id(event_id.to_owned())
        .one(&state.db)
        .await?
    else {
        return Ok(Lookup::NoEvent);
    };
    let Some(row) = event_queues::Entity::find_by_id(event_id.to_owned())
        .one(&state.db)
        .await?
    else {
        return Ok(Lookup::NoQueue {
            draft: EventStatus::from_db(&event.status) == EventStatus::Draft,
        });
    };
    let vips = event_queue_vips::Entity::find()
        .filter(event_queue_vips::Column::EventId.eq(event_id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|v| v.user_id)
        .collect();
    Ok(Lookup::Queue(Arc::new(assemble(&event, &row, vips))))
}

fn assemble(event: &events::Model, row: &event_queues::Model, vips: HashSet<String>) -> EventQueue {
    let sale_open_at = from_db(event.sale_open_at);
    // The event's sale may have moved earlier since the queue was set: never open after it.
    let opens_at = row
        .pre_queue_opens_at
        .map(from_db)
        .map_or(sale_open_at, |p| p.min(sale_open_at));
    EventQueue {
        event_id: event.id.clone(),
        organizer_id: event.organizer_id.clone(),
        status: EventStatus::from_db(&event.status),
        enabled: row.enabled,
        opens_at,
        sale_open_at,
        rules: RoomRules {
            capacity: row.capacity.max(0) as u32,
            admit_per_second: row.admit_per_second.max(0) as u32,
            admission_ttl_ms: i64::from(row.admission_ttl_seconds) * 1000,
            sale_opens_at_ms: ms(sale_open_at),
            vip_share: f64::from(row.vip_share_bp) / 10_000.0,
            heartbeat_timeout_ms: i64::from(row.heartbeat_timeout_seconds) * 1000,
            max_joins_per_ip: row.max_joins_per_ip.map(|n| n.max(0) as u32),
            paused: row.paused,
        },
        vips,
    }
}

/// Milliseconds since the epoch.
pub fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A time from milliseconds since the epoch.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

struct Valid {
    capacity: i32,
    admit_per_second: i32,
    admission_ttl_seconds: i32,
    vip_share_bp: i32,
    heartbeat_timeout_seconds: i32,
    max_joins_per_ip: Option<i32>,
}

fn in_range(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: i64,
    range: std::ops::RangeInclusive<i64>,
) -> i32 {
    if range.contains(&value) {
        value as i32
    } else {
        errors.push(FieldError::new(
            field,
            "out_of_range",
            format!("must be {}..={}", range.start(), range.end()),
        ));
        0
    }
}

fn validate(body: &QueueBody, event: &events::Model) -> AppResult<Valid> {
    let mut errors = Vec::new();
    let capacity = in_range(&mut errors, "capacity", body.capacity, 1..=1_000_000);
    let admit_per_second = in_range(
        &mut errors,
        "admit_per_second",
        body.admit_per_second,
        1..=100_000,
    );
    let admission_ttl_seconds = in_range(
        &mut errors,
        "admission_ttl_seconds",
        body.admission_ttl_seconds.unwrap_or(600),
        60..=7200,
    );
    let heartbeat_timeout_seconds = in_range(
        &mut errors,
        "heartbeat_timeout_seconds",
        body.heartbeat_timeout_seconds.unwrap_or(30),
        10..=3600,
    );
    let max_joins_per_ip = body
        .max_joins_per_ip
        .map(|n| in_range(&mut errors, "max_joins_per_ip", n, 1..=1_000_000));
    let share = body.vip_share.unwrap_or(0.0);
    let vip_share_bp = if share.is_finite() && (0.0..=1.0).contains(&share) {
        (share * 10_000.0).round() as i32
    } else {
        errors.push(FieldError::new(
            "vip_share",
            "out_of_range",
            "must be 0.0..=1.0",
        ));
        0
    };
    if let Some(opens) = body.pre_queue_opens_at
        && opens > from_db(event.sale_open_at)
    {
        errors.push(FieldError::new(
            "pre_queue_opens_at",
            "after_sale_open",
            "must not be after the event's sale_open_at",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    Ok(Valid {
        capacity,
        admit_per_second,
        admission_ttl_seconds,
        vip_share_bp,
        heartbeat_timeout_seconds,
        max_joins_per_ip,
    })
}

/// Creates or replaces an event's queue settings (a pause survives a replace).
pub async fn put(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    body: QueueBody,
) -> AppResult<QueueView> {
    let event = crate::catalog::access::manageable_event(state, viewer, event_id).await?;
    let valid = validate(&body, &event)?;
    let now = to_db(state.clock.now());
    let row = event_queues::ActiveModel {
        event_id: Set(event.id.clone()),
        enabled: Set(body.enabled),
        capacity: Set(valid.capacity),
        admit_per_second: Set(valid.admit_per_second),
        admission_ttl_seconds: Set(valid.admission_ttl_seconds),
        pre_queue_opens_at: Set(body.pre_queue_opens_at.map(to_db)),
        vip_share_bp: Set(valid.vip_share_bp),
        heartbeat_timeout_seconds: Set(valid.heartbeat_timeout_seconds),
        max_joins_per_ip: Set(valid.max_joins_per_ip),
        paused: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    };
    event_queues::Entity::insert(row)
        .on_conflict(
            OnConflict::column(event_queues::Column::EventId)
                .update_columns([
                    event_queues::Column::Enabled,
                    event_queues::Column::Capacity,
                    event_queues::Column::AdmitPerSecond,
                    event_queues::Column::AdmissionTtlSeconds,
                    event_queues::Column::PreQueueOpensAt,
                    event_queues::Column::VipShareBp,
                    event_queues::Column::HeartbeatTimeoutSeconds,
                    event_queues::Column::MaxJoinsPerIp,
                    event_queues::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
    changed(state, &event.id).await;
    view(state, &event).await
}

/// An event's queue settings (404 when it has none).
pub async fn get(state: &AppState, viewer: &Viewer, event_id: &str) -> AppResult<QueueView> {
    let event = crate::catalog::access::manageable_event(state, viewer, event_id).await?;
    view(state, &event).await
}

/// Pauses or resumes admission.
pub async fn set_paused(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    paused: bool,
) -> AppResult<QueueView> {
    let event = crate::catalog::access::manageable_event(state, viewer, event_id).await?;
    let row = event_queues::Entity::find_by_id(event.id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(no_queue)?;
    let mut active: event_queues::ActiveModel = row.into();
    active.paused = Set(paused);
    active.updated_at = Set(to_db(state.clock.now()));
    active.update(&state.db).await?;
    changed(state, &event.id).await;
    view(state, &event).await
}

/// Replaces the event's VIP list.
pub async fn put_vips(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    body: VipBody,
) -> AppResult<QueueView> {
    let event = crate::catalog::access::manageable_event(state, viewer, event_id).await?;
    if body.user_ids.len() > MAX_VIPS {
        return Err(AppError::invalid_field(
            "user_ids",
            "too_many",
            format!("at most {MAX_VIPS} ids"),
        ));
    }
    let mut ids: Vec<String> = Vec::with_capacity(body.user_ids.len());
    let mut errors = Vec::new();
    for (i, id) in body.user_ids.iter().enumerate() {
        match uuid::Uuid::parse_str(id.trim()) {
            Ok(u) => ids.push(u.to_string()),
            Err(_) => errors.push(FieldError::new(
                &format!("user_ids[{i}]"),
                "invalid_id",
                "must be a user id",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    ids.sort();
    ids.dedup();
    let now = to_db(state.clock.now());
    let event_key = event.id.clone();
    crate::db::write_tx(&state.db, |tx| {
        let (event_key, ids) = (event_key.clone(), ids.clone());
        Box::pin(async move {
            event_queue_vips::Entity::delete_many()
                .filter(event_queue_vips::Column::EventId.eq(event_key.as_str()))
                .exec(tx)
                .await?;
            for chunk in ids.chunks(500) {
                let rows = chunk.iter().map(|user_id| event_queue_vips::ActiveModel {
                    event_id: Set(event_key.clone()),
                    user_id: Set(user_id.clone()),
                    created_at: Set(now),
                });
                event_queue_vips::Entity::insert_many(rows)
                    .exec_without_returning(tx)
                    .await?;
            }
            Ok(())
        })
    })
    .await?;
    changed(state, &event.id).await;
    view(state, &event).await
}

async fn view(state: &AppState, event: &events::Model) -> AppResult<QueueView> {
    let row = event_queues::Entity::find_by_id(event.id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(no_queue)?;
    let mut vip_user_ids: Vec<String> = event_queue_vips::Entity::find()
        .filter(event_queue_vips::Column::EventId.eq(event.id.as_str()))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|v| v.user_id)
        .collect();
    vip_user_ids.sort();
    Ok(QueueView {
        event_id: event.id.clone(),
        enabled: row.enabled,
        capacity: row.capacity.into(),
        admit_per_second: row.admit_per_second.into(),
        admission_ttl_seconds: row.admission_ttl_seconds.into(),
        pre_queue_opens_at: row.pre_queue_opens_at.map(from_db),
        sale_open_at: from_db(event.sale_open_at),
        vip_share: f64::from(row.vip_share_bp) / 10_000.0,
        heartbeat_timeout_seconds: row.heartbeat_timeout_seconds.into(),
        max_joins_per_ip: row.max_joins_per_ip.map(i64::from),
        paused: row.paused,
        vip_user_ids,
    })
}

fn no_queue() -> AppError {
    AppError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "This event has no queue settings; PUT them first.",
    )
}

/// Drops the cached rules here and on every other instance.
async fn changed(state: &AppState, event_id: &str) {
    state.queue.rules.invalidate(event_id);
    if let Err(e) = state.bus.publish(RULES_CHANGED, event_id).await {
        tracing::warn!(error = %e, "could not announce a queue change; caches expire within 10 s");
    }
}
