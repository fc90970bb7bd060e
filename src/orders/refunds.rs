//! Refund records and the refund worker. A refund is recorded in the transaction that refunds
//! the order, tried at once after the commit, and retried with back-off by a worker that is
//! safe on every instance at once: each attempt first claims the row with one conditional
//! update (pushing `next_attempt_at` out by a lease), so one attempt runs per row at a time,
//! and an instance that dies mid-attempt leaves the row to be claimed again after the lease.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    sea_query::{Expr, ExprTrait},
};
use time::{Duration, OffsetDateTime};

use super::{effects::insert_ignore, model::CancelReason, payment::provider::ProviderError};
use crate::{
    app::AppState,
    auth::flows,
    catalog::money::Money,
    db::{self, entities::refunds},
    error::AppResult,
    infra::clock::to_db,
};

/// Stored refund states.
pub mod status {
    /// Waiting for (another) attempt at the provider.
    pub const PENDING: &str = "PENDING";
    /// The provider accepted it (or there was nothing to refund).
    pub const DONE: &str = "DONE";
    /// Gave up; an administrator must look at it (audit entry `refund.failed`).
    pub const FAILED: &str = "FAILED";
}

/// Attempts before a refund is given up.
pub const MAX_ATTEMPTS: i32 = 6;

/// How long one claimed attempt may take before another instance may try again.
const LEASE: Duration = Duration::minutes(5);

/// How many due refunds one worker pass takes.
const BATCH: u64 = 50;

/// The wait before attempt `attempts + 1`: 30 s, 2 min, 8 min, 32 min, then hourly.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    let seconds = 30_i64.saturating_mul(4_i64.pow(exponent));
    Duration::seconds(Ord::min(seconds, 3600))
}

/// A refund row to write.
pub struct NewRefund<'a> {
    /// The refunded order.
    pub order_id: &'a str,
    /// Its event.
    pub event_id: &'a str,
    /// The gateway that captured the money.
    pub provider: Option<&'a str>,
    /// The gateway's capture reference.
    pub provider_ref: Option<&'a str>,
    /// Paid back.
    pub amount: Money,
    /// Kept.
    pub fee: Money,
    /// Why.
    pub reason: CancelReason,
    /// `PENDING`, `DONE` or `FAILED`.
    pub status: &'static str,
    /// Why it failed at once, for `FAILED`.
    pub error: Option<&'a str>,
}

/// Inserts a refund unless the order already has one (`ux_refunds_order`); returns the new
/// row's id, or `None` when one existed. A `PENDING` row is due at once.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    new: NewRefund<'_>,
    now: OffsetDateTime,
) -> AppResult<Option<String>> {
    let id = uuid::Uuid::now_v7().to_string();
    let at = to_db(now);
    let backend = conn.get_database_backend();
    let sql = insert_ignore(
        backend,
        "refunds (id, order_id, event_id, provider, provider_ref, amount, fee, reason, status, \
         attempts, next_attempt_at, last_error, created_at, updated_at)",
        "?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?",
    );
    let inserted = db::exec_one(
        conn,
        Statement::from_sql_and_values(
            backend,
            sql,
            vec![
                id.clone().into(),
                new.order_id.into(),
                new.event_id.into(),
                new.provider.map(str::to_owned).into(),
                new.provider_ref.map(str::to_owned).into(),
                new.amount.minor().into(),
                new.fee.minor().into(),
                new.reason.as_str().into(),
                new.status.into(),
                at.into(),
                new.error.map(str::to_owned).into(),
                at.into(),
                at.into(),
            ],
        ),
    )
    .await?;
    Ok(inserted.then_some(id))
}

/// Records the refund of an order inside the refunding transaction; returns its id. Nothing to
/// refund is `DONE` at once; a paid order without a provider reference is `FAILED` (audited).
/// At most one refund per order (`ux_refunds_order`): a second record is ignored.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    order: &crate::db::entities::orders::Model,
    amount: Money,
    fee: Money,
    reason: CancelReason,
    now: OffsetDateTime,
) -> AppResult<String> {
    let payable = order.payment_provider.is_some() && order.payment_ref.is_some();
    let (state, error) = if amount.minor() <= 0 {
        (status::DONE, None)
    } else if payable {
        (status::PENDING, None)
    } else {
        (status::FAILED, Some("no captured payment to refund"))
    };
    let inserted = insert(
        conn,
        NewRefund {
            order_id: &order.id,
            event_id: &order.event_id,
            provider: order.payment_provider.as_deref(),
            provider_ref: order.payment_ref.as_deref(),
            amount,
            fee,
            reason,
            status: state,
            error,
        },
        now,
    )
    .await?;
    let Some(id) = inserted else {
        let existing = refunds::Entity::find()
            .filter(refunds::Column::OrderId.eq(order.id.clone()))
            .one(conn)
            .await?;
        return Ok(existing.map_or_else(String::new, |r| r.id));
    };
    if state == status::FAILED {
        flows::audit_with_detail(
            conn,
            now,
            None,
            "refund.failed",
            "order",
            Some(&order.id),
            None,
            Some(
                serde_json::json!({"refund_id": id, "amount": amount.to_string(), "error": error}),
            ),
        )
        .await?;
    }
    Ok(id)
}

/// What one attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Not due, already done, or claimed by someone else.
    Skipped,
    /// The provider accepted it.
    Done,
    /// It failed; another attempt follows after the back-off.
    Retry,
    /// It failed for the last time (or for good).
    Failed,
}

/// Claims one refund if it is due and tries it at its provider.
pub async fn attempt(state: &AppState, refund_id: &str) -> AppResult<Attempt> {
    let outcome = claim_and_try(state, refund_id).await?;
    let label = match outcome {
        Attempt::Skipped => return Ok(outcome),
        Attempt::Done => "done",
        Attempt::Retry => "retry",
        Attempt::Failed => "failed",
    };
    metrics::counter!("boxoffice_refund_attempts_total", "result" => label).increment(1);
    Ok(outcome)
}

async fn claim_and_try(state: &AppState, refund_id: &str) -> AppResult<Attempt> {
    let now = state.clock.now();
    let claimed = refunds::Entity::update_many()
        .col_expr(
            refunds::Column::Attempts,
            Expr::col(refunds::Column::Attempts).add(1),
        )
        .col_expr(
            refunds::Column::NextAttemptAt,
            Expr::value(to_db(now + LEASE)),
        )
        .col_expr(refunds::Column::UpdatedAt, Expr::value(to_db(now)))
        .filter(refunds::Column::Id.eq(refund_id))
        .filter(refunds::Column::Status.eq(status::PENDING))
        .filter(refunds::Column::NextAttemptAt.lte(to_db(now)))
        .exec(&state.db)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        return Ok(Attempt::Skipped);
    }
    let Some(row) = refunds::Entity::find_by_id(refund_id.to_owned())
        .one(&state.db)
        .await?
    else {
        return Ok(Attempt::Skipped);
    };
    let result = match (row.provider.as_deref(), row.provider_ref.as_deref()) {
        (Some(name), Some(reference)) => match state.payments.get(name) {
            Some(provider) => provider
                .refund(reference, Money::from_minor(row.amount), &row.id)
                .await
                .map(|_| ()),
            None => Err(ProviderError::Invalid(format!("unknown provider {name}"))),
        },
        _ => Err(ProviderError::Invalid("no captured payment".into())),
    };
    let now = state.clock.now();
    // Only the claim that is still current may write the outcome.
    let mine = |update: sea_orm::UpdateMany<refunds::Entity>| {
        update
            .col_expr(refunds::Column::UpdatedAt, Expr::value(to_db(now)))
            .filter(refunds::Column::Id.eq(row.id.clone()))
            .filter(refunds::Column::Status.eq(status::PENDING))
            .filter(refunds::Column::Attempts.eq(row.attempts))
    };
    match result {
        Ok(()) => {
            mine(refunds::Entity::update_many())
                .col_expr(refunds::Column::Status, Expr::value(status::DONE))
                .col_expr(refunds::Column::LastError, Expr::value(None::<String>))
                .exec(&state.db)
                .await?;
            Ok(Attempt::Done)
        }
        Err(e) => {
            let error: String = e.to_string().chars().take(255).collect();
            let final_error = !matches!(e, ProviderError::Unavailable(_));
            if final_error || row.attempts >= MAX_ATTEMPTS {
                let (row, error) = (row.clone(), error.clone());
                db::write_tx(&state.db, |tx| {
                    let (row, error) = (row.clone(), error.clone());
                    Box::pin(async move {
                        let failed = refunds::Entity::update_many()
                            .col_expr(refunds::Column::UpdatedAt, Expr::value(to_db(now)))
                            .col_expr(refunds::Column::Status, Expr::value(status::FAILED))
                            .col_expr(refunds::Column::LastError, Expr::value(error.clone()))
                            .filter(refunds::Column::Id.eq(row.id.clone()))
                            .filter(refunds::Column::Status.eq(status::PENDING))
                            .filter(refunds::Column::Attempts.eq(row.attempts))
                            .exec(tx)
                            .await?
                            .rows_affected
                            == 1;
                        if failed {
                            flows::audit_with_detail(
                                tx,
                                now,
                                None,
                                "refund.failed",
                                "order",
                                Some(&row.order_id),
                                None,
                                Some(serde_json::json!({
                                    "refund_id": row.id, "attempts": row.attempts,
                                    "amount": Money::from_minor(row.amount).to_string(),
                                    "error": error,
                                })),
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .await?;
                tracing::error!(refund = %row.id, order = %row.order_id, error = %error, "refund given up");
                Ok(Attempt::Failed)
            } else {
                mine(refunds::Entity::update_many())
                    .col_expr(
                        refunds::Column::NextAttemptAt,
                        Expr::value(to_db(now + backoff(row.attempts))),
                    )
                    .col_expr(refunds::Column::LastError, Expr::value(error.clone()))
                    .exec(&state.db)
                    .await?;
                tracing::warn!(refund = %row.id, attempts = row.attempts, error = %error, "refund failed; retrying later");
                Ok(Attempt::Retry)
            }
        }
    }
}

/// One worker pass: tries every due refund (up to a batch); returns how many were attempted.
pub async fn run_due(state: &AppState) -> AppResult<usize> {
    let now = to_db(state.clock.now());
    let due: Vec<String> = refunds::Entity::find()
        .select_only()
        .column(refunds::Column::Id)
        .filter(refunds::Column::Status.eq(status::PENDING))
        .filter(refunds::Column::NextAttemptAt.lte(now))
        .order_by_asc(refunds::Column::NextAttemptAt)
        .limit(BATCH)
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut attempted = 0;
    for id in due {
        if attempt(state, &id).await? != Attempt::Skipped {
            attempted += 1;
        }
    }
    Ok(attempted)
}

/// Runs [`run_due`] every five seconds (on every instance; claims keep attempts single).
pub async fn work_forever(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Err(e) = run_due(&state).await {
            tracing::warn!(error = %e, "refund worker pass failed");
        }
    }
}

/// Refund counts of an event by status (`PENDING`, `FAILED`), for progress views.
pub async fn counts<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    reason: Option<CancelReason>,
) -> AppResult<std::collections::HashMap<String, i64>> {
    let mut select = refunds::Entity::find()
        .select_only()
        .column(refunds::Column::Status)
        .column_as(refunds::Column::Id.count(), "n")
        .filter(refunds::Column::EventId.eq(event_id))
        .group_by(refunds::Column::Status);
    if let Some(reason) = reason {
        select = select.filter(refunds::Column::Reason.eq(reason.as_str()));
    }
    let rows: Vec<(String, i64)> = select.into_tuple().all(conn).await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::minutes(2));
        assert_eq!(backoff(3), Duration::minutes(8));
        assert_eq!(backoff(4), Duration::minutes(32));
        assert_eq!(backoff(5), Duration::hours(1));
        assert_eq!(backoff(50), Duration::hours(1));
        assert_eq!(backoff(0), Duration::seconds(30));
    }
}
