//! Tickets left per performance, for the derived `SOLD_OUT` sale state: general-admission
//! counters plus available seats of the grades on sale, over active ticket products only.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, Statement, Value};

use crate::error::AppResult;

/// Tickets left per performance, for every performance of these events that sells tickets at
/// all (performances without active ticket products are absent: "sold out" would mislead).
pub async fn tickets_left<C: ConnectionTrait>(
    conn: &C,
    event_ids: &[String],
) -> AppResult<HashMap<String, i64>> {
    let mut left = HashMap::new();
    if event_ids.is_empty() {
        return Ok(left);
    }
    let marks = vec!["?"; event_ids.len()].join(", ");
    let ids = || {
        event_ids
            .iter()
            .map(|id| Value::from(id.clone()))
            .collect::<Vec<_>>()
    };
    let backend = conn.get_database_backend();
    let selling = format!(
        "SELECT DISTINCT performance_id AS pid FROM products \
         WHERE event_id IN ({marks}) AND type = 'TICKET' AND status = 'ACTIVE' AND performance_id IS NOT NULL"
    );
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, selling, ids()))
        .await?
    {
        left.insert(row.try_get::<String>("", "pid")?, 0);
    }
    let general = format!(
        "SELECT p.performance_id AS pid, CAST(SUM(c.remaining) AS SIGNED) AS n \
         FROM products p JOIN stock_counters c ON c.id = p.stock_id \
         WHERE p.event_id IN ({marks}) AND p.type = 'TICKET' AND p.status = 'ACTIVE' \
         GROUP BY p.performance_id"
    );
    let reserved = format!(
        "SELECT s.performance_id AS pid, COUNT(*) AS n FROM seats s \
         WHERE s.event_id IN ({marks}) AND s.state = 'AVAILABLE' AND EXISTS (\
           SELECT 1 FROM products p WHERE p.performance_id = s.performance_id AND p.grade = s.grade \
           AND p.type = 'TICKET' AND p.status = 'ACTIVE' AND p.seating = 'RESERVED') \
         GROUP BY s.performance_id"
    );
    for sql in [general, reserved] {
        for row in conn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, ids()))
            .await?
        {
            let pid: Option<String> = row.try_get("", "pid")?;
            let n: Option<i64> = row.try_get("", "n")?;
            if let (Some(pid), Some(n)) = (pid, n) {
                *left.entry(pid).or_insert(0) += n;
            }
        }
    }
    Ok(left)
}
