//! Tickets of an order. Minimal stand-in until the payments branch lands its full module
//! (codes, QR payloads, check-in): refunds only need to void an order's tickets.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use time::OffsetDateTime;

use crate::{db::entities::tickets, error::AppResult};

/// Marks every valid ticket of an order `VOID` (refund); returns how many changed.
pub async fn void_for_order<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    _now: OffsetDateTime,
) -> AppResult<u64> {
    Ok(tickets::Entity::update_many()
        .col_expr(tickets::Column::Status, Expr::value("VOID"))
        .filter(tickets::Column::OrderId.eq(order_id))
        .filter(tickets::Column::Status.eq("VALID"))
        .exec(conn)
        .await?
        .rows_affected)
}
