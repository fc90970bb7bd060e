//! Stock counters and the movement ledger.
//!
//! Every sellable stock is one `stock_counters` row holding only `remaining` (the hot row), and
//! every change of it is one `stock_movements` row in the same transaction, so `remaining` always
//! equals the sum of the ledger's deltas. A decrease is one conditional statement whose
//! affected-row count decides; nothing reads and then writes.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
    Statement,
};
use time::OffsetDateTime;

use crate::{
    db::{
        self,
        entities::{stock_counters, stock_movements},
    },
    error::AppResult,
    infra::clock::to_db,
};

/// Ledger kinds written by the catalog; orders add their own (`HOLD`, `RELEASE`, `CANCEL`, ...).
pub mod kind {
    /// The configured quantity when the stock is created.
    pub const INITIAL: &str = "INITIAL";
    /// An organizer changed the quantity.
    pub const ADJUST: &str = "ADJUST";
}

/// Creates a counter holding `quantity` and its `INITIAL` ledger row; returns the stock id.
pub async fn create_counter<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    quantity: i64,
    now: OffsetDateTime,
) -> AppResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    stock_counters::ActiveModel {
        id: Set(id.clone()),
        event_id: Set(event_id.to_owned()),
        remaining: Set(quantity),
    }
    .insert(conn)
    .await?;
    record(conn, event_id, &id, quantity, kind::INITIAL, None, now).await?;
    Ok(id)
}

/// Moves a counter by `delta` with one conditional statement that never takes it below zero,
/// and writes the ledger row only when the counter moved. Returns whether it moved; on `false`
/// nothing was written, so a caller may try another stock (a pre-order allowance) in the same
/// transaction.
pub async fn apply<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    stock_id: &str,
    delta: i64,
    kind: &str,
    order_id: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<bool> {
    if delta == 0 {
        return Ok(true);
    }
    let moved = move_counter(conn, stock_id, delta).await?;
    if moved {
        record(conn, event_id, stock_id, delta, kind, order_id, now).await?;
    }
    Ok(moved)
}

/// Moves a counter by `delta` with the one conditional statement that never takes it below zero;
/// whether it moved. No ledger row: callers write theirs ([`apply`] one, checkout its order's or
/// batch's).
pub async fn move_counter<C: ConnectionTrait>(
    conn: &C,
    stock_id: &str,
    delta: i64,
) -> AppResult<bool> {
    db::exec_one(
        conn,
        Statement::from_sql_and_values(
            conn.get_database_backend(),
            "UPDATE stock_counters SET remaining = remaining + ? WHERE id = ? AND remaining + ? >= 0",
            [delta.into(), stock_id.into(), delta.into()],
        ),
    )
    .await
}

/// Returns units an order held to their counters (`held`: quantity per stock id, in id order):
/// the ledger rows first, then each counter, so that the counters — the hottest rows of a sale —
/// are the caller's last statements and their row locks last only until its commit. An increase
/// cannot fail its condition; a counter that does not move is missing, an internal error.
pub async fn put_back<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    order_id: &str,
    held: &std::collections::BTreeMap<String, i64>,
    kind: &str,
    now: OffsetDateTime,
) -> AppResult<()> {
    let ledger = held
        .iter()
        .map(|(stock_id, quantity)| {
            ledger_row(event_id, stock_id, *quantity, kind, Some(order_id), now)
        })
        .collect();
    db::insert_all::<stock_movements::Entity, _>(conn, ledger).await?;
    for (stock_id, quantity) in held {
        if !move_counter(conn, stock_id, *quantity).await? {
            return Err(crate::error::AppError::internal(anyhow::anyhow!(
                "stock counter {stock_id} of order {order_id} is missing"
            )));
        }
    }
    Ok(())
}

/// An organizer's quantity change: [`apply`] with kind `ADJUST` and no order.
pub async fn adjust<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    stock_id: &str,
    delta: i64,
    now: OffsetDateTime,
) -> AppResult<bool> {
    apply(conn, event_id, stock_id, delta, kind::ADJUST, None, now).await
}

/// Writes one ledger row (no counter change: callers that move a counter use [`apply`]).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    stock_id: &str,
    delta: i64,
    kind: &str,
    order_id: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<()> {
    db::insert_all::<stock_movements::Entity, _>(
        conn,
        vec![ledger_row(event_id, stock_id, delta, kind, order_id, now)],
    )
    .await
}

/// One ledger row, not yet written (for callers that write several in one statement).
pub fn ledger_row(
    event_id: &str,
    stock_id: &str,
    delta: i64,
    kind: &str,
    order_id: Option<&str>,
    now: OffsetDateTime,
) -> stock_movements::Model {
    stock_movements::Model {
        id: uuid::Uuid::now_v7().to_string(),
        event_id: event_id.to_owned(),
        stock_id: stock_id.to_owned(),
        order_id: order_id.map(str::to_owned),
        kind: kind.to_owned(),
        delta,
        created_at: to_db(now),
    }
}

/// The remaining stock of several counters in one query (unknown ids are absent).
pub async fn remaining_of<C: ConnectionTrait>(
    conn: &C,
    ids: Vec<String>,
) -> AppResult<HashMap<String, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, i64)> = stock_counters::Entity::find()
        .select_only()
        .column(stock_counters::Column::Id)
        .column(stock_counters::Column::Remaining)
        .filter(stock_counters::Column::Id.is_in(ids))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Whether any order ever moved one of these stocks (then the stock must stay).
pub async fn has_order_movements<C: ConnectionTrait>(
    conn: &C,
    stock_ids: &[String],
) -> AppResult<bool> {
    if stock_ids.is_empty() {
        return Ok(false);
    }
    Ok(stock_movements::Entity::find()
        .select_only()
        .column(stock_movements::Column::Id)
        .filter(stock_movements::Column::StockId.is_in(stock_ids.iter().cloned()))
        .filter(stock_movements::Column::OrderId.is_not_null())
        .into_tuple::<String>()
        .one(conn)
        .await?
        .is_some())
}

/// Removes counters that no order ever touched, with their ledger rows.
pub async fn remove<C: ConnectionTrait>(conn: &C, stock_ids: &[String]) -> AppResult<()> {
    if stock_ids.is_empty() {
        return Ok(());
    }
    stock_movements::Entity::delete_many()
        .filter(stock_movements::Column::StockId.is_in(stock_ids.iter().cloned()))
        .exec(conn)
        .await?;
    stock_counters::Entity::delete_many()
        .filter(stock_counters::Column::Id.is_in(stock_ids.iter().cloned()))
        .exec(conn)
        .await?;
    Ok(())
}

/// A package's remaining: its own counter, limited by every component
/// (`floor(component remaining / units per package)`), never below zero.
/// `components` holds `(component remaining, units per package)`.
pub fn package_remaining(own: i64, components: &[(i64, i64)]) -> i64 {
    components
        .iter()
        .map(
            |&(remaining, per)| {
                if per <= 0 { 0 } else { remaining.max(0) / per }
            },
        )
        .fold(own, i64::min)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::package_remaining;

    #[test]
    fn a_package_is_limited_by_its_scarcest_component() {
        assert_eq!(package_remaining(50, &[]), 50);
        assert_eq!(package_remaining(50, &[(100, 1), (30, 2)]), 15);
        assert_eq!(package_remaining(10, &[(100, 1), (30, 2)]), 10);
        assert_eq!(package_remaining(10, &[(1, 2)]), 0);
        assert_eq!(package_remaining(-3, &[(5, 1)]), 0);
        assert_eq!(
            package_remaining(10, &[(5, 0)]),
            0,
            "a broken component sells nothing"
        );
    }
}
