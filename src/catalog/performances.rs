//! Performances: an event's schedule. Each lies within the event, their capacities never sum
//! above `total_tickets`, and tickets on sale never exceed a performance's capacity.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    access::Viewer,
    model::{EventStatus, SaleState, present, sale_state},
};
use crate::{
    app::AppState,
    auth::flows::audit_with_detail,
    db::{
        self,
        entities::{events, performances, products, seat_layouts, seats},
    },
    error::{AppError, AppResult, FieldError},
    infra::clock::{from_db, to_db},
};

/// A performance as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PerformanceView {
    /// Id.
    pub id: String,
    /// Event.
    pub event_id: String,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start_at: OffsetDateTime,
    /// Doors open.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub doors_open_at: Option<OffsetDateTime>,
    /// Seats or places.
    pub capacity: i32,
    /// Tickets one buyer may hold for this performance (all grades and packages together).
    pub per_user_limit: Option<i32>,
    /// Seat-map version (0: no map).
    pub layout_version: i32,
    /// Derived from the event's sale window, its status and the tickets left.
    pub sale_state: SaleState,
    /// Tickets left, when the performance sells tickets (for the event's own state).
    #[serde(skip)]
    pub tickets_left: Option<i64>,
}

fn view(
    row: &performances::Model,
    event: &events::Model,
    now: OffsetDateTime,
    left: &HashMap<String, i64>,
) -> PerformanceView {
    let tickets_left = left.get(&row.id).copied();
    PerformanceView {
        tickets_left,
        id: row.id.clone(),
        event_id: row.event_id.clone(),
        start_at: from_db(row.start_at),
        doors_open_at: row.doors_open_at.map(from_db),
        capacity: row.capacity,
        per_user_limit: row.per_user_limit,
        layout_version: row.layout_version,
        sale_state: sale_state(
            now,
            EventStatus::from_db(&event.status),
            from_db(event.sale_open_at),
            from_db(event.sale_close_at),
            tickets_left.map(|n| n > 0),
        ),
    }
}

/// The performances of one event.
pub async fn list_views<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    now: OffsetDateTime,
) -> AppResult<Vec<PerformanceView>> {
    let rows = super::events::performance_rows(conn, &event.id).await?;
    let left = super::availability::tickets_left(conn, std::slice::from_ref(&event.id)).await?;
    Ok(rows.iter().map(|r| view(r, event, now, &left)).collect())
}

/// The performances of several events in one query.
pub async fn views_for<C: ConnectionTrait>(
    conn: &C,
    events: &[events::Model],
    now: OffsetDateTime,
) -> AppResult<Vec<PerformanceView>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows = performances::Entity::find()
        .filter(performances::Column::EventId.is_in(events.iter().map(|e| e.id.clone())))
        .order_by_asc(performances::Column::StartAt)
        .all(conn)
        .await?;
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let left = super::availability::tickets_left(conn, &ids).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            events
                .iter()
                .find(|e| e.id == r.event_id)
                .map(|e| view(r, e, now, &left))
        })
        .collect())
}

/// The performance a new event starts with: at its start, with all its tickets.
pub async fn insert_default<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    now: OffsetDateTime,
) -> AppResult<performances::Model> {
    Ok(performances::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        event_id: Set(event.id.clone()),
        start_at: Set(event.start_at),
        doors_open_at: Set(None),
        capacity: Set(event.total_tickets),
        per_user_limit: Set(None),
        layout_version: Set(0),
        created_at: Set(to_db(now)),
        updated_at: Set(to_db(now)),
    }
    .insert(conn)
    .await?)
}

/// Checks that the existing performances still fit an event's new window and total.
pub async fn check_fit<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    start: OffsetDateTime,
    end: OffsetDateTime,
    total: i32,
) -> AppResult<()> {
    let rows = super::events::performance_rows(conn, event_id).await?;
    if rows
        .iter()
        .any(|p| from_db(p.start_at) < start || from_db(p.start_at) > end)
    {
        return Err(AppError::conflict(
            "performances_outside_event",
            "A performance would fall outside the event's start_at..end_at; move it first.",
        ));
    }
    let sum: i64 = rows.iter().map(|p| i64::from(p.capacity)).sum();
    if sum > i64::from(total) {
        return Err(AppError::conflict(
            "capacity_exceeds_total",
            format!("The performances already hold {sum} places, more than total_tickets {total}."),
        ));
    }
    Ok(())
}

/// A new performance.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"start_at": "2026-12-25T19:00:00+09:00", "doors_open_at": "2026-12-25T18:00:00+09:00", "capacity": 1000}))]
pub struct PerformanceBody {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    start_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    doors_open_at: Option<OffsetDateTime>,
    capacity: i64,
    per_user_limit: Option<i64>,
}

/// Changes to a performance; `null` clears optional fields.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerformancePatch {
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    start_at: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "present_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    doors_open_at: Option<Option<OffsetDateTime>>,
    capacity: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    per_user_limit: Option<Option<i64>>,
}

/// Like [`present`] for RFC 3339 times: `null` (clear) differs from an absent field (keep).
pub fn present_time<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

#[derive(Clone)]
struct Checked {
    start_at: OffsetDateTime,
    doors_open_at: Option<OffsetDateTime>,
    capacity: i32,
    per_user_limit: Option<i32>,
}

fn check(
    event: &events::Model,
    start_at: OffsetDateTime,
    doors: Option<OffsetDateTime>,
    capacity: i64,
    limit: Option<i64>,
) -> AppResult<Checked> {
    let mut errors = Vec::new();
    if start_at < from_db(event.start_at) || start_at > from_db(event.end_at) {
        errors.push(FieldError::new(
            "start_at",
            "outside_event",
            "must lie within the event's start_at..end_at",
        ));
    }
    if doors.is_some_and(|d| d > start_at) {
        errors.push(FieldError::new(
            "doors_open_at",
            "after_start",
            "must not be after start_at",
        ));
    }
    let capacity = i32::try_from(capacity).ok().filter(|c| *c >= 1);
    if capacity.is_none() {
        errors.push(FieldError::new(
            "capacity",
            "out_of_range",
            "must be at least 1",
        ));
    }
    let per_user_limit = match limit {
        None => Some(None),
        Some(n) => i32::try_from(n)
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .map(Some),
    };
    if per_user_limit.is_none() {
        errors.push(FieldError::new(
            "per_user_limit",
            "out_of_range",
            "must be 1..=1000",
        ));
    }
    match (capacity, per_user_limit) {
        (Some(capacity), Some(per_user_limit)) if errors.is_empty() => Ok(Checked {
            start_at,
            doors_open_at: doors,
            capacity,
            per_user_limit,
        }),
        _ => Err(AppError::validation(errors)),
    }
}

/// Capacity used by the other performances of the event.
async fn other_capacity<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    except: Option<&str>,
) -> AppResult<i64> {
    let rows = super::events::performance_rows(conn, event_id).await?;
    Ok(rows
        .iter()
        .filter(|p| Some(p.id.as_str()) != except)
        .map(|p| i64::from(p.capacity))
        .sum())
}

/// Tickets on sale for a performance: general-admission quantities plus reserved seats.
/// Reserved-seat products store quantity 0, so the seats (all but `BLOCKED`) count once.
pub async fn tickets_on_sale<C: ConnectionTrait>(conn: &C, performance_id: &str) -> AppResult<i64> {
    let quantities: Vec<i32> = products::Entity::find()
        .select_only()
        .column(products::Column::Quantity)
        .filter(products::Column::PerformanceId.eq(performance_id))
        .filter(products::Column::ProductType.eq("TICKET"))
        .filter(products::Column::Status.ne("ARCHIVED"))
        .into_tuple()
        .all(conn)
        .await?;
    let seats = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(performance_id))
        .filter(seats::Column::State.ne("BLOCKED"))
        .count(conn)
        .await?;
    Ok(quantities.into_iter().map(i64::from).sum::<i64>() + seats as i64)
}

/// Adds a performance.
pub async fn create(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    body: PerformanceBody,
) -> AppResult<PerformanceView> {
    let event = super::access::manageable_event(state, viewer, event_id).await?;
    let checked = check(
        &event,
        body.start_at,
        body.doors_open_at,
        body.capacity,
        body.per_user_limit,
    )?;
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    let row = db::write_tx(&state.db, |tx| {
        let (event, actor) = (event.clone(), actor.clone());
        let checked = checked.clone();
        Box::pin(async move {
            let used = other_capacity(tx, &event.id, None).await?;
            if used + i64::from(checked.capacity) > i64::from(event.total_tickets) {
                return Err(capacity_exceeded(used, event.total_tickets));
            }
            let row = performances::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                event_id: Set(event.id.clone()),
                start_at: Set(to_db(checked.start_at)),
                doors_open_at: Set(checked.doors_open_at.map(to_db)),
                capacity: Set(checked.capacity),
                per_user_limit: Set(checked.per_user_limit),
                layout_version: Set(0),
                created_at: Set(to_db(now)),
                updated_at: Set(to_db(now)),
            }
            .insert(tx)
            .await?;
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "performance.created",
                "performance",
                Some(&row.id),
                None,
                Some(serde_json::json!({"event_id": event.id, "capacity": row.capacity})),
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    state.catalog_changed(&event.id).await;
    let left =
        super::availability::tickets_left(&state.db, std::slice::from_ref(&event.id)).await?;
    Ok(view(&row, &event, now, &left))
}

fn capacity_exceeded(used: i64, total: i32) -> AppError {
    AppError::invalid_field(
        "capacity",
        "capacity_exceeds_total",
        format!("the other performances already hold {used} of total_tickets {total}"),
    )
}

/// Changes a performance.
pub async fn update(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    id: &str,
    patch: PerformancePatch,
) -> AppResult<PerformanceView> {
    let event = super::access::manageable_event(state, viewer, event_id).await?;
    let current = performances::Entity::find_by_id(id.to_owned())
        .one(&state.db)
        .await?
        .filter(|p| p.event_id == event.id)
        .ok_or_else(AppError::not_found)?;
    let checked = check(
        &event,
        patch.start_at.unwrap_or(from_db(current.start_at)),
        patch
            .doors_open_at
            .unwrap_or(current.doors_open_at.map(from_db)),
        patch.capacity.unwrap_or(i64::from(current.capacity)),
        patch
            .per_user_limit
            .unwrap_or(current.per_user_limit.map(i64::from)),
    )?;
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    let row = db::write_tx(&state.db, |tx| {
        let (event, current, actor) = (event.clone(), current.clone(), actor.clone());
        let checked = checked.clone();
        Box::pin(async move {
            let used = other_capacity(tx, &event.id, Some(&current.id)).await?;
            if used + i64::from(checked.capacity) > i64::from(event.total_tickets) {
                return Err(capacity_exceeded(used, event.total_tickets));
            }
            // The seat map is the more specific reason (and its count locks the row), so first.
            let seated = super::seats::store::seat_count_locked(tx, &current.id).await?;
            if i64::from(checked.capacity) < seated {
                return Err(AppError::conflict(
                    "capacity_below_seats",
                    format!("The seat map has {seated} seats; upload a smaller one first."),
                ));
            }
            let on_sale = tickets_on_sale(tx, &current.id).await?;
            if i64::from(checked.capacity) < on_sale {
                return Err(AppError::conflict(
                    "capacity_below_tickets",
                    format!("{on_sale} tickets are on sale for this performance; lower them first."),
                ));
            }
            let mut model: performances::ActiveModel = current.clone().into();
            model.start_at = Set(to_db(checked.start_at));
            model.doors_open_at = Set(checked.doors_open_at.map(to_db));
            model.capacity = Set(checked.capacity);
            model.per_user_limit = Set(checked.per_user_limit);
            model.updated_at = Set(to_db(now));
            let row = model.update(tx).await?;
            audit_with_detail(tx, now, Some(&actor), "performance.updated", "performance", Some(&row.id), None,
                Some(serde_json::json!({"before": {"capacity": current.capacity, "start_at": from_db(current.start_at).unix_timestamp()},
                                        "after": {"capacity": row.capacity, "start_at": from_db(row.start_at).unix_timestamp()}}))).await?;
            Ok(row)
        })
    })
    .await?;
    state.catalog_changed(&event.id).await;
    let left =
        super::availability::tickets_left(&state.db, std::slice::from_ref(&event.id)).await?;
    Ok(view(&row, &event, now, &left))
}

/// Deletes a performance that has no products and no held or sold seats.
pub async fn delete(state: &AppState, viewer: &Viewer, event_id: &str, id: &str) -> AppResult<()> {
    let event = super::access::manageable_event(state, viewer, event_id).await?;
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    db::write_tx(&state.db, |tx| {
        let (event, id, actor) = (event.clone(), id.to_owned(), actor.clone());
        Box::pin(async move {
            let row = performances::Entity::find_by_id(id.clone())
                .one(tx)
                .await?
                .filter(|p| p.event_id == event.id)
                .ok_or_else(AppError::not_found)?;
            let taken = seats::Entity::find()
                .filter(seats::Column::PerformanceId.eq(id.as_str()))
                .filter(seats::Column::State.is_in(["HELD", "SOLD"]))
                .one(tx)
                .await?;
            if taken.is_some() {
                return Err(AppError::conflict(
                    "orders_exist",
                    "This performance has orders; cancel them first.",
                ));
            }
            let product = products::Entity::find()
                .filter(products::Column::PerformanceId.eq(id.as_str()))
                .one(tx)
                .await?;
            if product.is_some() {
                return Err(AppError::conflict(
                    "products_exist",
                    "Tickets are defined for this performance; archive or move them first.",
                ));
            }
            seats::Entity::delete_many()
                .filter(seats::Column::PerformanceId.eq(id.as_str()))
                .exec(tx)
                .await?;
            seat_layouts::Entity::delete_by_id(id.clone())
                .exec(tx)
                .await?;
            performances::Entity::delete_by_id(id.clone())
                .exec(tx)
                .await?;
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "performance.deleted",
                "performance",
                Some(&id),
                None,
                Some(serde_json::json!({"event_id": event.id, "capacity": row.capacity})),
            )
            .await?;
            Ok(())
        })
    })
    .await?;
    state.seat_maps.forget(id);
    state.catalog_changed(&event.id).await;
    Ok(())
}
