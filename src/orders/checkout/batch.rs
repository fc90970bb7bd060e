//! Checkout by group commit: the orders that arrive while the previous batch is in the database
//! are placed together in one transaction — the stock counters they need are locked once, the
//! orders are decided in arrival order against what is left, and the winners are written with
//! one multi-row `INSERT` per table and one conditional `UPDATE` per counter. A sell-out then
//! costs the database a handful of statements per batch instead of six per order.
//!
//! The hot rows are touched last, as DESIGN.md says: the batch decides on a plain read of the
//! counters, writes its rows, and only then moves each counter by the batch's total with one
//! conditional `UPDATE` — so a counter's row lock is held from that statement to the commit, and
//! cancellations and expiries returning stock to the same counter are not queued behind a whole
//! batch. If a counter no longer has the total (another batch or instance took some meanwhile),
//! the batch is rolled back and decided again with the counters locked first. Orders
//! with seats or a pre-order fallback take the one-order transaction, as before.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement, Value};
use time::OffsetDateTime;

use super::{Plan, execute, hold_rows, line_rows, lower_counters, order_row, raise_counters};
use crate::{
    app::AppState,
    catalog::products::stock,
    db::{
        self,
        entities::{events, order_items, orders, stock_movements},
    },
    error::{AppError, AppResult},
    infra::batch::{FlushFuture, all_unavailable},
    orders::effects::values,
};

/// An order to place: what [`super::place`] decided before touching stock.
pub struct Job {
    /// The application (for its database).
    pub state: AppState,
    /// What to take.
    pub plan: Plan,
    /// The event, from the checkout cache.
    pub event: events::Model,
    /// The buyer.
    pub user_id: String,
    /// The id the order gets (chosen before, so an idempotent retry can look it up).
    pub order_id: String,
    /// When the buyer asked.
    pub now: OffsetDateTime,
}

/// A placed order and its lines.
pub type Placed = (orders::Model, Vec<order_items::Model>);

/// Whether a batch can place this plan: plain stock counters and per-user limits only.
pub fn batchable(plan: &Plan) -> bool {
    plan.seats.is_empty() && plan.fallbacks.is_empty()
}

/// Places one order in a transaction of its own.
pub async fn single(job: &Job) -> AppResult<Placed> {
    db::write_tx(&job.state.db, |tx| {
        let (plan, event, user_id, order_id, now) = (
            job.plan.clone(),
            job.event.clone(),
            job.user_id.clone(),
            job.order_id.clone(),
            job.now,
        );
        Box::pin(async move { execute(tx, &plan, &event, &user_id, &order_id, now).await })
    })
    .await
}

/// Places a batch; if the batch transaction fails as a whole, each order is tried alone (so one
/// order's unexpected error is its own), unless the database is unreachable.
pub fn flush(jobs: Vec<Job>) -> FlushFuture<Placed> {
    Box::pin(async move {
        let Some(first) = jobs.first() else {
            return Vec::new();
        };
        let state = first.state.clone();
        let jobs = Arc::new(jobs);
        // Optimistic first (the counters are read, not locked, and only the final conditional
        // UPDATE takes their row locks); if a counter moved meanwhile so that the batch's total no
        // longer fits, the batch is decided again with the counters locked from the start.
        let mut batch = attempt(&state, &jobs, false).await;
        if matches!(&batch, Err(e) if e.code() == COUNTER_MOVED) {
            batch = attempt(&state, &jobs, true).await;
        }
        match batch {
            Ok(results) => results,
            Err(e) => {
                if let Some(answers) = all_unavailable(&e, jobs.len()) {
                    return answers;
                }
                tracing::warn!(error = %e, orders = jobs.len(), "checkout batch failed; placing its orders one by one");
                let mut results = Vec::with_capacity(jobs.len());
                for job in jobs.iter() {
                    results.push(single(job).await);
                }
                results
            }
        }
    })
}

/// One transaction of [`place_all`] over the whole batch.
async fn attempt(
    state: &AppState,
    jobs: &Arc<Vec<Job>>,
    locked: bool,
) -> AppResult<Vec<AppResult<Placed>>> {
    db::write_tx(&state.db, |tx| {
        let jobs = jobs.clone();
        Box::pin(async move { place_all(tx, &jobs, locked).await })
    })
    .await
}

/// The error that rolls an optimistic batch back to be decided again with the counters locked.
const COUNTER_MOVED: &str = "batch_counter_moved";

/// The batch's transaction: per-user limits, then stock in arrival order, then the rows, then
/// the counters. Not `locked`, it fails with [`COUNTER_MOVED`] (rolling everything back) when a
/// counter no longer has the batch's total.
async fn place_all(
    tx: &DatabaseTransaction,
    jobs: &[Job],
    locked: bool,
) -> AppResult<Vec<AppResult<Placed>>> {
    let mut answers: Vec<Option<AppResult<Placed>>> = jobs.iter().map(|_| None).collect();
    // Each buyer's own counters; a refusal lowers what that order raised and nothing else.
    let mut raised = HashSet::new();
    for (i, job) in jobs.iter().enumerate() {
        if job.plan.counters.is_empty() {
            continue;
        }
        match raise_counters(tx, &job.plan, &job.event.id, &job.user_id).await? {
            Ok(()) => {
                raised.insert(i);
            }
            Err(refused) => answers[i] = Some(Err(refused)),
        }
    }

    let wanted: BTreeSet<&String> = jobs
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| answer.is_none())
        .flat_map(|(job, _)| job.plan.stock.keys())
        .collect();
    let mut left = read_counters(tx, &wanted, locked).await?;
    let mut taken: BTreeMap<String, i64> = BTreeMap::new();
    let mut winners = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if answers[i].is_some() {
            continue;
        }
        let plan = &job.plan;
        let short = plan
            .stock
            .iter()
            .find(|(id, (quantity, _))| left.get(*id).copied().unwrap_or(0) < *quantity);
        if let Some((_, (_, items))) = short {
            if raised.contains(&i) {
                let counters = plan.counters.iter().map(|(s, t)| (s, t.quantity)).collect();
                lower_counters(tx, counters, &job.user_id).await?;
            }
            answers[i] = Some(Err(super::sold_out(
                items,
                plan,
                &plan.lines[items[0]].name,
            )));
            continue;
        }
        for (id, (quantity, _)) in &plan.stock {
            if let Some(l) = left.get_mut(id) {
                *l -= quantity;
            }
            *taken.entry(id.clone()).or_insert(0) += quantity;
        }
        winners.push(i);
    }

    let mut order_rows = Vec::with_capacity(winners.len());
    let mut item_rows = Vec::new();
    let mut ledger_rows = Vec::new();
    let no_preorder = HashSet::new();
    let no_seats = HashMap::new();
    for &i in &winners {
        let job = &jobs[i];
        let order_id = &job.order_id;
        let order = order_row(&job.plan, &job.event, &job.user_id, order_id, job.now);
        let lines = line_rows(&job.plan, order_id, &job.event.id, &no_preorder, &no_seats);
        ledger_rows.extend(hold_rows(&job.plan, &job.event.id, order_id, job.now));
        item_rows.extend(lines.iter().cloned());
        order_rows.push(order.clone());
        answers[i] = Some(Ok((order, lines)));
    }
    db::insert_all::<orders::Entity, _>(tx, order_rows).await?;
    db::insert_all::<order_items::Entity, _>(tx, item_rows).await?;
    db::insert_all::<stock_movements::Entity, _>(tx, ledger_rows).await?;
    // The database still decides: each counter moves by the batch's total only if it has it.
    for (id, quantity) in taken {
        if !stock::move_counter(tx, &id, -quantity).await? {
            if locked {
                return Err(AppError::internal(anyhow::anyhow!(
                    "stock counter {id} changed under its lock"
                )));
            }
            return Err(AppError::conflict(
                COUNTER_MOVED,
                "A stock counter moved during the batch.",
            ));
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(AppError::internal(anyhow::anyhow!("undecided order")))))
        .collect())
}

/// Reads the counters, `locked` or not (MariaDB: `FOR UPDATE`, in primary-key order like every
/// other writer; SQLite: the transaction already holds the file's write lock either way).
async fn read_counters(
    tx: &DatabaseTransaction,
    ids: &BTreeSet<&String>,
    locked: bool,
) -> AppResult<HashMap<String, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = tx.get_database_backend();
    let params: Vec<Value> = db::padded(values(ids.iter().map(|id| (*id).clone())));
    let marks = vec!["?"; params.len()].join(", ");
    let lock = if locked && backend == DbBackend::MySql {
        " FOR UPDATE"
    } else {
        ""
    };
    let rows = tx
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT id, remaining FROM stock_counters WHERE id IN ({marks}){lock}"),
            params,
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "remaining")?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(Into::into)
}
