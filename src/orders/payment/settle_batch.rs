//! Settling ordinary captures by group commit: the confirmations that arrive while the previous
//! batch is in the database are settled together — their orders moved to `CONFIRMED` by one
//! conditional statement (if it cannot move them all, the batch is decided again with the orders
//! locked and checked first), and their sales, tickets, payment rows and
//! mails written with multi-row statements. Whatever the batch cannot confirm (the order ended
//! or moved meanwhile, a second capture of one order, a payment row that changed) goes back to
//! [`super::flow::settle`]'s one-order transaction, which knows every other ending.

use std::{collections::HashSet, sync::Arc};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Set, Statement, Value};
use time::OffsetDateTime;

use super::{
    flow::{Paying, confirmation_mail, payment_status},
    provider::Captured,
};
use crate::{
    app::AppState,
    db::{self, entities::payments},
    error::{AppError, AppResult},
    infra::{
        batch::{FlushFuture, all_unavailable},
        clock::{from_db, to_db},
    },
    orders::{
        effects::{self, Paid, values},
        hooks::{Lifecycle, OrderChange},
        model::OrderStatus,
        tickets,
    },
};

/// A capture of the right amount for an order not yet paid by it.
pub struct Job {
    /// The application (database, randomness, configuration).
    pub state: AppState,
    /// The order as read before the gateway was called.
    pub paying: Paying,
    /// The gateway.
    pub provider: String,
    /// What it captured.
    pub capture: Captured,
    /// When the gateway answered.
    pub now: OffsetDateTime,
}

/// The change when the batch confirmed the order; `None`: settle it alone.
pub fn flush(jobs: Vec<Job>) -> FlushFuture<Option<OrderChange>> {
    Box::pin(async move {
        let Some(first) = jobs.first() else {
            return Vec::new();
        };
        let state = first.state.clone();
        let jobs = Arc::new(jobs);
        // Optimistic first: the conditional UPDATE alone decides, and when it moves every
        // order (an ordinary crowd) nothing else was needed; when it does not, the batch is
        // rolled back and decided again with the orders locked and read first.
        let mut batch = attempt(&state, &jobs, false).await;
        if matches!(&batch, Err(e) if e.code() == ORDER_MOVED) {
            batch = attempt(&state, &jobs, true).await;
        }
        match batch {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(e) => {
                if let Some(answers) = all_unavailable(&e, jobs.len()) {
                    return answers;
                }
                tracing::info!(error = %e, captures = jobs.len(), "settling batch rolled back; settling its captures one by one");
                jobs.iter().map(|_| Ok(None)).collect()
            }
        }
    })
}

/// One transaction of [`confirm_all`] over the whole batch.
async fn attempt(
    state: &AppState,
    jobs: &Arc<Vec<Job>>,
    locked: bool,
) -> AppResult<Vec<Option<OrderChange>>> {
    db::write_tx(&state.db, |tx| {
        let jobs = jobs.clone();
        Box::pin(async move { confirm_all(tx, &jobs, locked).await })
    })
    .await
}

/// The error that rolls an optimistic batch back to be decided again with the orders locked.
const ORDER_MOVED: &str = "batch_order_moved";

/// The batch's transaction. Not `locked`, every candidate is assumed still open and it fails
/// with [`ORDER_MOVED`] (rolling everything back) when the conditional UPDATE says otherwise.
async fn confirm_all(
    tx: &DatabaseTransaction,
    jobs: &[Job],
    locked: bool,
) -> AppResult<Vec<Option<OrderChange>>> {
    let mut answers: Vec<Option<OrderChange>> = jobs.iter().map(|_| None).collect();
    let Some(now) = jobs.iter().map(|j| j.now).max() else {
        return Ok(answers);
    };
    // A second capture of an order in the same batch is settled alone, after this one.
    let mut seen = HashSet::new();
    let candidates: Vec<&Job> = jobs
        .iter()
        .filter(|j| seen.insert(j.paying.order.id.as_str()))
        .collect();
    let winners: Vec<&Job> = if locked {
        let open = lock_open_orders(tx, &candidates, now).await?;
        candidates
            .into_iter()
            .filter(|j| open.contains(&j.paying.order.id))
            .collect()
    } else {
        candidates
    };
    if winners.is_empty() {
        return Ok(answers);
    }
    let paid: Vec<Paid> = winners
        .iter()
        .map(|j| Paid {
            order_id: &j.paying.order.id,
            provider: &j.provider,
            reference: &j.capture.provider_ref,
            amount: j.capture.amount.minor(),
            at: j.now,
        })
        .collect();
    if !effects::confirm_paid(tx, &paid, now).await? {
        if !locked {
            return Err(AppError::conflict(
                ORDER_MOVED,
                "An order of the batch ended or moved before it was settled.",
            ));
        }
        // Its event was canceled meanwhile (the rows themselves are locked): roll back.
        return Err(AppError::internal(anyhow::anyhow!(
            "an order of the settling batch could not be confirmed"
        )));
    }
    let ids: Vec<&str> = winners.iter().map(|j| j.paying.order.id.as_str()).collect();
    let has_seats = winners
        .iter()
        .any(|j| j.paying.lines.iter().any(|l| l.seats.is_some()));
    effects::sell(tx, &ids, has_seats, now).await?;
    let sold: Vec<_> = winners
        .iter()
        .map(|j| (&j.paying.order, j.paying.lines.as_slice()))
        .collect();
    let state = &winners[0].state;
    tickets::issue(tx, state.rng.as_ref(), &sold, now).await?;
    record_captures(tx, &winners).await?;
    crate::infra::mail::enqueue_all(
        tx,
        now,
        winners
            .iter()
            .filter_map(|j| confirmation_mail(&j.state, &j.paying))
            .collect::<Vec<_>>()
            .iter()
            .map(|(to, locale, mail)| (*to, *locale, mail)),
    )
    .await?;
    let won: HashSet<&str> = ids.into_iter().collect();
    let mut first_of_order = HashSet::new();
    for (answer, job) in answers.iter_mut().zip(jobs) {
        let order = &job.paying.order;
        if won.contains(order.id.as_str()) && first_of_order.insert(order.id.as_str()) {
            *answer = Some(OrderChange {
                what: Lifecycle::Paid,
                order_id: order.id.clone(),
                event_id: order.event_id.clone(),
                user_id: order.user_id.clone(),
                status: OrderStatus::Confirmed,
            });
        }
    }
    Ok(answers)
}

/// Locks the orders (MariaDB: `FOR UPDATE`; SQLite: the transaction holds the write lock) and
/// returns the ids of those still `PENDING` and held at `now`.
async fn lock_open_orders(
    tx: &DatabaseTransaction,
    jobs: &[&Job],
    now: OffsetDateTime,
) -> AppResult<HashSet<String>> {
    if jobs.is_empty() {
        return Ok(HashSet::new());
    }
    let backend = tx.get_database_backend();
    let lock = if backend == DbBackend::MySql {
        " FOR UPDATE"
    } else {
        ""
    };
    let ids = db::padded(values(jobs.iter().map(|j| j.paying.order.id.clone())));
    let marks = vec!["?"; ids.len()].join(", ");
    let rows = tx
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT id, status, expires_at FROM orders WHERE id IN ({marks}){lock}"),
            ids,
        ))
        .await?;
    let mut open = HashSet::new();
    for row in rows {
        let status: String = row.try_get("", "status")?;
        let expires_at: time::PrimitiveDateTime = row.try_get("", "expires_at")?;
        if OrderStatus::from_db(&status) == OrderStatus::Pending && from_db(expires_at) > now {
            open.insert(row.try_get("", "id")?);
        }
    }
    Ok(open)
}

/// The capture on each order's `PREPARED` payment row (one statement), or a new row for an
/// order paid without `POST /pay`. A prepared row that changed meanwhile rolls the batch back.
async fn record_captures(tx: &DatabaseTransaction, winners: &[&Job]) -> AppResult<()> {
    let (prepared, fresh): (Vec<&Job>, Vec<&Job>) = winners
        .iter()
        .partition(|j| j.paying.prepared_with(&j.provider).is_some());
    if !prepared.is_empty() {
        let unique: Vec<(&str, &Job)> = prepared
            .iter()
            .filter_map(|j| j.paying.prepared_with(&j.provider).map(|id| (id, *j)))
            .collect();
        let expected = unique.len();
        let rows = db::padded(unique);
        let arms = "WHEN ? THEN ? ".repeat(rows.len());
        let mut params: Vec<Value> = Vec::new();
        for (id, job) in &rows {
            params.extend([(*id).into(), job.capture.provider_ref.clone().into()]);
        }
        for (id, job) in &rows {
            params.extend([(*id).into(), job.capture.amount.minor().into()]);
        }
        for (id, job) in &rows {
            params.extend([(*id).into(), to_db(job.now).into()]);
        }
        params.push(payment_status::CAPTURED.into());
        params.extend(values(rows.iter().map(|(id, _)| *id)));
        params.push(payment_status::PREPARED.into());
        let updated = tx
            .execute_raw(Statement::from_sql_and_values(
                tx.get_database_backend(),
                format!(
                    "UPDATE payments SET provider_ref = CASE id {arms}END, \
                     amount = CASE id {arms}END, updated_at = CASE id {arms}END, \
                     status = ?, failure_code = NULL WHERE id IN ({}) AND status = ?",
                    vec!["?"; rows.len()].join(", ")
                ),
                params,
            ))
            .await?
            .rows_affected();
        if usize::try_from(updated).ok() != Some(expected) {
            return Err(AppError::internal(anyhow::anyhow!(
                "a prepared payment changed under the settling batch"
            )));
        }
    }
    let new_rows: Vec<payments::ActiveModel> = fresh
        .iter()
        .map(|j| payments::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            order_id: Set(j.paying.order.id.clone()),
            event_id: Set(j.paying.order.event_id.clone()),
            provider: Set(j.provider.clone()),
            amount: Set(j.capture.amount.minor()),
            status: Set(payment_status::CAPTURED.to_owned()),
            provider_ref: Set(Some(j.capture.provider_ref.clone())),
            failure_code: Set(None),
            created_at: Set(to_db(j.now)),
            updated_at: Set(to_db(j.now)),
        })
        .collect();
    db::insert_all::<payments::Entity, _>(tx, new_rows).await
}
