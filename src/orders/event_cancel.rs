//! Canceling an event: the event is `CANCELED` at once (no new orders), then a job cancels
//! every pending order and fully refunds every confirmed one, mailing each buyer.
//!
//! The job's progress lives in `event_cancellations`, not in memory: any instance may claim it
//! with one conditional update (`PENDING`, or `RUNNING` with a heartbeat older than the lease),
//! so it resumes after a restart and never runs twice at once. Each order is ended in its own
//! transaction by the one conditional transition, so even two runners would end it once, and
//! `ux_refunds_order` keeps one refund per order.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, sea_query::Expr,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use super::{
    cancel::{self, Ending, ReasonBody},
    model::{CancelReason, OrderStatus},
    refunds,
};
use crate::{
    app::AppState,
    auth::flows,
    catalog::{
        access::{self, Viewer},
        model::EventStatus,
    },
    db::{
        self,
        entities::{event_cancellations, events, orders},
    },
    error::{AppError, AppResult},
    infra::clock::{from_db, to_db},
};

/// Job states.
pub mod status {
    /// Waiting for a runner.
    pub const PENDING: &str = "PENDING";
    /// A runner holds it (its heartbeat is `updated_at`).
    pub const RUNNING: &str = "RUNNING";
    /// Every order was ended.
    pub const DONE: &str = "DONE";
}

/// A runner that has not beaten its heart for this long is presumed dead.
const LEASE: Duration = Duration::seconds(60);

/// Orders read per batch.
const BATCH: u64 = 50;

/// `GET /events/{id}/cancellation`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "RUNNING", "reason": "공연장 사정으로 취소되었습니다", "orders_total": 1200, "orders_done": 450, "refunds_pending": 12, "refunds_failed": 0, "created_at": "2026-11-01T09:00:00Z"}))]
pub struct CancellationView {
    /// `PENDING`, `RUNNING` or `DONE`.
    pub status: String,
    /// Why the event was canceled.
    pub reason: String,
    /// Orders to end (pending and confirmed when the event was canceled).
    pub orders_total: i32,
    /// Orders ended so far.
    pub orders_done: i32,
    /// Refunds of this cancellation still waiting for the provider.
    pub refunds_pending: i64,
    /// Refunds of this cancellation given up (an administrator must look).
    pub refunds_failed: i64,
    /// When the event was canceled.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

fn already_canceled() -> AppError {
    AppError::conflict("event_canceled", "The event is already canceled.")
}

/// Cancels an event (its organizer or an admin) and starts the job.
pub async fn cancel_event(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    body: ReasonBody,
) -> AppResult<CancellationView> {
    let reason = cancel::reason(Some(&body.reason), true)?.unwrap_or_default();
    let event = access::manageable_event(state, viewer, event_id).await?;
    let current = EventStatus::from_db(&event.status);
    if current == EventStatus::Canceled {
        return Err(already_canceled());
    }
    if !current.can_become(EventStatus::Canceled, false) {
        return Err(AppError::conflict(
            "invalid_transition",
            format!("An event that is {} cannot be canceled.", current.as_str()),
        ));
    }
    let actor = viewer.user_id.clone();
    db::write_tx(&state.db, |tx| {
        let (state, event, reason, actor) =
            (state.clone(), event.clone(), reason.clone(), actor.clone());
        Box::pin(async move {
            let now = state.clock.now();
            let moved = events::Entity::update_many()
                .col_expr(
                    events::Column::Status,
                    Expr::value(EventStatus::Canceled.as_str()),
                )
                .col_expr(events::Column::UpdatedAt, Expr::value(to_db(now)))
                .filter(events::Column::Id.eq(event.id.clone()))
                .filter(events::Column::Status.eq(event.status.clone()))
                .exec(tx)
                .await?
                .rows_affected
                == 1;
            if !moved {
                return Err(AppError::conflict(
                    "event_canceled",
                    "The event changed meanwhile (canceled or ended).",
                ));
            }
            let live = live_orders(&event.id).count(tx).await?;
            event_cancellations::ActiveModel {
                event_id: Set(event.id.clone()),
                reason: Set(reason.clone()),
                requested_by: Set(actor.clone()),
                status: Set(status::PENDING.to_owned()),
                orders_total: Set(i32::try_from(live).unwrap_or(i32::MAX)),
                orders_done: Set(0),
                created_at: Set(to_db(now)),
                updated_at: Set(to_db(now)),
            }
            .insert(tx)
            .await?;
            flows::audit_with_detail(
                tx,
                now,
                Some(&actor),
                "event.canceled",
                "event",
                Some(&event.id),
                None,
                Some(serde_json::json!({"reason": reason, "from": event.status, "orders": live})),
            )
            .await?;
            Ok(())
        })
    })
    .await?;
    state.catalog_changed(event_id).await;
    let runner = state.clone();
    let id = event_id.to_owned();
    tokio::spawn(async move {
        if let Err(e) = step(&runner, &id).await {
            tracing::warn!(error = %e, event = %id, "event cancellation pass failed; the worker resumes it");
        }
    });
    progress(state, viewer, event_id).await
}

/// The job's progress (its organizer or an admin).
pub async fn progress(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
) -> AppResult<CancellationView> {
    access::manageable_event(state, viewer, event_id).await?;
    let row = event_cancellations::Entity::find_by_id(event_id.to_owned())
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let counts = refunds::counts(&state.db, event_id, Some(CancelReason::EventCanceled)).await?;
    Ok(CancellationView {
        status: row.status,
        reason: row.reason,
        orders_total: row.orders_total,
        orders_done: row.orders_done,
        refunds_pending: counts.get(refunds::status::PENDING).copied().unwrap_or(0),
        refunds_failed: counts.get(refunds::status::FAILED).copied().unwrap_or(0),
        created_at: from_db(row.created_at),
    })
}

fn live_orders(event_id: &str) -> sea_orm::Select<orders::Entity> {
    orders::Entity::find()
        .filter(orders::Column::EventId.eq(event_id))
        .filter(orders::Column::Status.is_in([
            OrderStatus::Pending.as_str(),
            OrderStatus::Confirmed.as_str(),
        ]))
}

/// What one [`step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Another runner holds the job, or it is done.
    NotClaimed,
    /// This runner ended these many orders and finished the job.
    Finished(u64),
    /// This runner ended these many orders and gave the job back (no progress possible now).
    Released(u64),
}

/// Claims the job of one event if free (or its runner's lease ran out).
async fn claim(state: &AppState, event_id: &str, now: OffsetDateTime) -> AppResult<bool> {
    let backend = state.db.get_database_backend();
    db::exec_one(
        &state.db,
        Statement::from_sql_and_values(
            backend,
            "UPDATE event_cancellations SET status = ?, updated_at = ? WHERE event_id = ? \
             AND (status = ? OR (status = ? AND updated_at <= ?))",
            [
                status::RUNNING.into(),
                to_db(now).into(),
                event_id.into(),
                status::PENDING.into(),
                status::RUNNING.into(),
                to_db(now - LEASE).into(),
            ],
        ),
    )
    .await
}

/// Runs the job of one event as far as it goes: claims it, ends its live orders batch by
/// batch, and marks it `DONE` when none are left. Safe to call anywhere, any number of times.
pub async fn step(state: &AppState, event_id: &str) -> AppResult<Step> {
    if !claim(state, event_id, state.clock.now()).await? {
        return Ok(Step::NotClaimed);
    }
    let reason = event_cancellations::Entity::find_by_id(event_id.to_owned())
        .one(&state.db)
        .await?
        .map(|r| r.reason);
    let mut ended_here = 0_u64;
    loop {
        let batch = live_orders(event_id)
            .order_by_asc(orders::Column::CreatedAt)
            .order_by_asc(orders::Column::Id)
            .limit(BATCH)
            .all(&state.db)
            .await?;
        if batch.is_empty() {
            finish(state, event_id).await?;
            return Ok(Step::Finished(ended_here));
        }
        let mut progressed = false;
        for order in batch {
            if let Some(ended) = end_one(state, event_id, reason.clone(), order).await? {
                cancel::after_commit(state, &ended).await;
                ended_here += 1;
                progressed = true;
            }
        }
        // Every order of the batch changed under us (paid meanwhile): let the next pass retry.
        if !progressed {
            release(state, event_id).await?;
            return Ok(Step::Released(ended_here));
        }
    }
}

/// Ends one order of the canceled event and counts it, in one transaction; beats the heart.
async fn end_one(
    state: &AppState,
    event_id: &str,
    reason: Option<String>,
    order: orders::Model,
) -> AppResult<Option<cancel::Ended>> {
    db::write_tx(&state.db, |tx| {
        let (state, order, event_id, reason) = (
            state.clone(),
            order.clone(),
            event_id.to_owned(),
            reason.clone(),
        );
        Box::pin(async move {
            let now = state.clock.now();
            let Ok(plan) = cancel::full_refund_plan(&order) else {
                return Ok(None);
            };
            let ending = Ending {
                reason: CancelReason::EventCanceled,
                note: reason,
                plan,
            };
            let ended = cancel::end_order(tx, &state, &order, ending, now).await?;
            // The order may have been paid meanwhile: the next batch reads it again.
            let counted = if ended.is_some() { 1 } else { 0 };
            // MySQL applies SET assignments left to right with new values, SQLite with old ones:
            // `orders_total` comes first so both read the old `orders_done`.
            tx.execute_raw(Statement::from_sql_and_values(
                tx.get_database_backend(),
                "UPDATE event_cancellations SET \
                 orders_total = CASE WHEN orders_done + ? > orders_total THEN orders_done + ? \
                 ELSE orders_total END, orders_done = orders_done + ?, updated_at = ? \
                 WHERE event_id = ?",
                [
                    counted.into(),
                    counted.into(),
                    counted.into(),
                    to_db(now).into(),
                    event_id.into(),
                ],
            ))
            .await?;
            Ok(ended)
        })
    })
    .await
}

/// Marks the job done; orders that ended otherwise meanwhile (expired) leave the total.
async fn finish(state: &AppState, event_id: &str) -> AppResult<()> {
    state
        .db
        .execute_raw(Statement::from_sql_and_values(
            state.db.get_database_backend(),
            "UPDATE event_cancellations SET status = ?, orders_total = orders_done, updated_at = ? \
             WHERE event_id = ? AND status = ?",
            [
                status::DONE.into(),
                to_db(state.clock.now()).into(),
                event_id.into(),
                status::RUNNING.into(),
            ],
        ))
        .await?;
    Ok(())
}

/// Gives the job back for the next pass.
async fn release(state: &AppState, event_id: &str) -> AppResult<()> {
    event_cancellations::Entity::update_many()
        .col_expr(
            event_cancellations::Column::Status,
            Expr::value(status::PENDING),
        )
        .col_expr(
            event_cancellations::Column::UpdatedAt,
            Expr::value(to_db(state.clock.now())),
        )
        .filter(event_cancellations::Column::EventId.eq(event_id))
        .filter(event_cancellations::Column::Status.eq(status::RUNNING))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// One worker pass: runs every job that is waiting or whose runner went quiet.
pub async fn run_due(state: &AppState) -> AppResult<usize> {
    let stale = to_db(state.clock.now() - LEASE);
    let due: Vec<String> = event_cancellations::Entity::find()
        .select_only()
        .column(event_cancellations::Column::EventId)
        .filter(
            sea_orm::Condition::any()
                .add(event_cancellations::Column::Status.eq(status::PENDING))
                .add(
                    sea_orm::Condition::all()
                        .add(event_cancellations::Column::Status.eq(status::RUNNING))
                        .add(event_cancellations::Column::UpdatedAt.lte(stale)),
                ),
        )
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut ran = 0;
    for event_id in due {
        if step(state, &event_id).await? != Step::NotClaimed {
            ran += 1;
        }
    }
    Ok(ran)
}

/// Runs [`run_due`] every five seconds.
pub async fn work_forever(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Err(e) = run_due(&state).await {
            tracing::warn!(error = %e, "event cancellation worker pass failed");
        }
    }
}
