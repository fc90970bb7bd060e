//! `audit-stock`: re-derives every counter from its ledger and checks that seats and orders
//! agree. A difference is a bug; there must never be one.

use sea_orm::{ConnectionTrait, Statement, Value};
use serde::Serialize;

use crate::error::AppResult;

/// One disagreement found by the audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The event.
    pub event_id: String,
    /// What disagrees: `stock:<id>` or `seat:<id>`.
    pub subject: String,
    /// What is stored.
    pub stored: String,
    /// What the ledger or the order says it should be.
    pub expected: String,
}

/// Every difference, for one event or all.
pub async fn differences<C: ConnectionTrait>(
    conn: &C,
    event_id: Option<&str>,
) -> AppResult<Vec<Difference>> {
    let backend = conn.get_database_backend();
    let (filter_c, filter_s, params): (&str, &str, Vec<Value>) = match event_id {
        Some(id) => (
            " WHERE c.event_id = ?",
            " AND s.event_id = ?",
            vec![id.into()],
        ),
        None => ("", "", vec![]),
    };
    let mut found = Vec::new();
    let stock = format!(
        "SELECT c.id AS id, c.event_id AS event_id, c.remaining AS remaining, \
         CAST(COALESCE(SUM(m.delta), 0) AS SIGNED) AS ledger \
         FROM stock_counters c LEFT JOIN stock_movements m ON m.stock_id = c.id{filter_c} \
         GROUP BY c.id, c.event_id, c.remaining HAVING c.remaining <> COALESCE(SUM(m.delta), 0) \
         OR c.remaining < 0"
    );
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            stock,
            params.clone(),
        ))
        .await?
    {
        let remaining: i64 = row.try_get("", "remaining")?;
        let ledger: i64 = row.try_get("", "ledger")?;
        found.push(Difference {
            event_id: row.try_get("", "event_id")?,
            subject: format!("stock:{}", row.try_get::<String>("", "id")?),
            stored: remaining.to_string(),
            expected: ledger.to_string(),
        });
    }
    // A held seat belongs to a pending order, a sold one to a confirmed order; an available
    // seat belongs to nobody.
    let seats = format!(
        "SELECT s.id AS id, s.event_id AS event_id, s.state AS state, o.status AS status \
         FROM seats s LEFT JOIN orders o ON o.id = s.order_id \
         WHERE ((s.state = 'HELD' AND (o.status IS NULL OR o.status <> 'PENDING')) \
            OR (s.state = 'SOLD' AND (o.status IS NULL OR o.status <> 'CONFIRMED')) \
            OR (s.state IN ('AVAILABLE', 'BLOCKED') AND s.order_id IS NOT NULL)){filter_s}"
    );
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, seats, params))
        .await?
    {
        let status: Option<String> = row.try_get("", "status")?;
        found.push(Difference {
            event_id: row.try_get("", "event_id")?,
            subject: format!("seat:{}", row.try_get::<String>("", "id")?),
            stored: row.try_get("", "state")?,
            expected: format!("order {}", status.as_deref().unwrap_or("none")),
        });
    }
    Ok(found)
}
