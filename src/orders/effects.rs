//! What a status change does to stock: the one transition statement, selling held stock on
//! confirmation, and returning it (with seats and per-user counters) on expiry, cancellation
//! and refund. Everything here runs inside the caller's write transaction.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement,
    Value, sea_query::Expr,
};
use time::OffsetDateTime;

use super::model::{CancelReason, LineKind, OrderStatus, movement};
use crate::{
    app::AppState,
    catalog::model::EventStatus,
    catalog::products::{notify, notify_back_in_stock, stock},
    db::entities::{order_items, orders, package_components, products},
    error::AppResult,
    infra::clock::to_db,
};

/// Columns a transition sets besides `status` and `updated_at`.
#[derive(Clone, Debug, Default)]
pub struct Stamp {
    /// Why it was canceled or refunded.
    pub reason: Option<CancelReason>,
    /// A note from whoever canceled it.
    pub note: Option<String>,
    /// Payment provider, its reference and the captured amount (on confirmation).
    pub payment: Option<(String, String, i64)>,
    /// The cancellation fee kept and the amount refunded (on refund).
    pub refund: Option<(i64, i64)>,
    /// Only move the order if its hold has run out at `now` (the expiry sweeper).
    pub only_if_expired: bool,
    /// Only move the order if its hold still runs at `now` (a payment confirmation).
    pub only_if_unexpired: bool,
    /// Only move the order if its event is not canceled (a payment confirmation).
    pub unless_event_canceled: bool,
}

/// Moves one order from `from` to `to` with one conditional statement; returns whether this
/// call moved it (another instance, request or sweeper may have been first). An illegal pair is
/// 409 `invalid_transition`: the one place the state machine is enforced.
pub async fn transition<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    from: OrderStatus,
    to: OrderStatus,
    stamp: Stamp,
    now: OffsetDateTime,
) -> AppResult<bool> {
    from.check(to)?;
    let at = to_db(now);
    let mut update = orders::Entity::update_many()
        .col_expr(orders::Column::Status, Expr::value(to.as_str()))
        .col_expr(orders::Column::UpdatedAt, Expr::value(at))
        .filter(orders::Column::Id.eq(order_id))
        .filter(orders::Column::Status.eq(from.as_str()));
    match to {
        OrderStatus::Confirmed => {
            update = update.col_expr(orders::Column::ConfirmedAt, Expr::value(at));
        }
        OrderStatus::Canceled => {
            update = update.col_expr(orders::Column::CanceledAt, Expr::value(at));
        }
        OrderStatus::Refunded => {
            update = update.col_expr(orders::Column::RefundedAt, Expr::value(at));
        }
        OrderStatus::Pending => {}
    }
    if let Some(reason) = stamp.reason {
        update = update.col_expr(orders::Column::CancelReason, Expr::value(reason.as_str()));
    }
    if let Some(note) = stamp.note {
        update = update.col_expr(orders::Column::CancelNote, Expr::value(note));
    }
    if let Some((provider, reference, amount)) = stamp.payment {
        update = update
            .col_expr(orders::Column::PaymentProvider, Expr::value(provider))
            .col_expr(orders::Column::PaymentRef, Expr::value(reference))
            .col_expr(orders::Column::PaidAmount, Expr::value(amount));
    }
    if let Some((fee, refund)) = stamp.refund {
        update = update
            .col_expr(orders::Column::CancelFee, Expr::value(fee))
            .col_expr(orders::Column::RefundAmount, Expr::value(refund));
    }
    if stamp.only_if_expired {
        update = update.filter(orders::Column::ExpiresAt.lte(at));
    }
    if stamp.only_if_unexpired {
        update = update.filter(orders::Column::ExpiresAt.gt(at));
    }
    if stamp.unless_event_canceled {
        update = update.filter(Expr::cust_with_values(
            "NOT EXISTS (SELECT 1 FROM events WHERE events.id = orders.event_id \
             AND events.status = ?)",
            [EventStatus::Canceled.as_str()],
        ));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// A capture for [`confirm_paid`].
pub struct Paid<'a> {
    /// The order.
    pub order_id: &'a str,
    /// The gateway.
    pub provider: &'a str,
    /// The gateway's reference of the capture.
    pub reference: &'a str,
    /// The amount captured.
    pub amount: i64,
    /// When it was captured (the order's `confirmed_at`).
    pub at: OffsetDateTime,
}

/// Moves many `PENDING` orders to `CONFIRMED` with one conditional statement, under the same
/// conditions as a confirming [`transition`] (still held at `now`, event not canceled), stamping
/// each with its own capture. Returns whether every one of them moved; the caller must have
/// locked the rows and must roll back otherwise.
pub async fn confirm_paid<C: ConnectionTrait>(
    conn: &C,
    paid: &[Paid<'_>],
    now: OffsetDateTime,
) -> AppResult<bool> {
    OrderStatus::Pending.check(OrderStatus::Confirmed)?;
    if paid.is_empty() {
        return Ok(true);
    }
    let expected = paid.len();
    let paid = crate::db::padded(paid.iter().collect::<Vec<_>>());
    let arms = "WHEN ? THEN ? ".repeat(paid.len());
    let columns = [
        "updated_at",
        "confirmed_at",
        "payment_provider",
        "payment_ref",
        "paid_amount",
    ]
    .map(|column| format!("{column} = CASE id {arms}END"))
    .join(", ");
    let mut params: Vec<Value> = vec![OrderStatus::Confirmed.as_str().into()];
    for value in [
        |p: &Paid| Value::from(to_db(p.at)),
        |p: &Paid| Value::from(to_db(p.at)),
        |p: &Paid| Value::from(p.provider),
        |p: &Paid| Value::from(p.reference),
        |p: &Paid| Value::from(p.amount),
    ] {
        for p in &paid {
            params.extend([p.order_id.into(), value(p)]);
        }
    }
    params.extend(values(paid.iter().map(|p| p.order_id)));
    params.extend([
        OrderStatus::Pending.as_str().into(),
        to_db(now).into(),
        EventStatus::Canceled.as_str().into(),
    ]);
    let sql = format!(
        "UPDATE orders SET status = ?, {columns} \
         WHERE id IN ({}) AND status = ? AND expires_at > ? \
         AND NOT EXISTS (SELECT 1 FROM events WHERE events.id = orders.event_id AND events.status = ?)",
        vec!["?"; paid.len()].join(", ")
    );
    let moved = conn
        .execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            params,
        ))
        .await?
        .rows_affected();
    Ok(usize::try_from(moved).ok() == Some(expected))
}

/// Stock an order holds, per counter, from its ledger rows (sorted by stock id).
pub async fn held_stock<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
) -> AppResult<BTreeMap<String, i64>> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            "SELECT stock_id, CAST(SUM(delta) AS SIGNED) AS held FROM stock_movements \
             WHERE order_id = ? GROUP BY stock_id",
            [order_id.into()],
        ))
        .await?;
    let mut held = BTreeMap::new();
    for row in rows {
        let stock_id: String = row.try_get("", "stock_id")?;
        let net: i64 = row.try_get("", "held")?;
        if net < 0 {
            held.insert(stock_id, -net);
        }
    }
    Ok(held)
}

/// Confirmed orders' holds become sales: seats `HELD` → `SOLD` (when one has seats), and one
/// `SALE` ledger row (delta 0) per counter each order holds, so reports can tell sold from held —
/// written by one `INSERT … SELECT` over the orders' own ledger rows, without a read.
pub async fn sell<C: ConnectionTrait>(
    conn: &C,
    order_ids: &[&str],
    has_seats: bool,
    now: OffsetDateTime,
) -> AppResult<()> {
    if order_ids.is_empty() {
        return Ok(());
    }
    let backend = conn.get_database_backend();
    let order_ids = crate::db::padded(order_ids.to_vec());
    let marks = vec!["?"; order_ids.len()].join(", ");
    if has_seats {
        let mut params = vec![to_db(now).into()];
        params.extend(values(order_ids.iter().copied()));
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE seats SET state = 'SOLD', updated_at = ? \
                 WHERE order_id IN ({marks}) AND state = 'HELD'"
            ),
            params,
        ))
        .await?;
    }
    // Ledger ids are opaque; the database makes them here because it alone knows how many
    // rows the statement writes.
    let new_id = match backend {
        DbBackend::MySql => "UUID()",
        _ => "lower(hex(randomblob(16)))",
    };
    let mut params: Vec<Value> = vec![movement::SALE.into(), to_db(now).into()];
    params.extend(values(order_ids.iter().copied()));
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO stock_movements (id, event_id, stock_id, order_id, kind, delta, created_at) \
             SELECT {new_id}, event_id, stock_id, order_id, ?, 0, ? FROM stock_movements \
             WHERE order_id IN ({marks}) GROUP BY event_id, stock_id, order_id HAVING SUM(delta) < 0"
        ),
        params,
    ))
    .await?;
    Ok(())
}

/// Returns everything an order took: seats, the buyer's per-user counters and stock counters
/// (ledger kind `kind`: `RELEASE`, `CANCEL` or `REFUND`); then queues "back in stock" mails.
/// Call it only right after a [`transition`] that moved the order, so it runs exactly once, and
/// as the last write of the transaction: the stock counters are the hottest rows of a sale, so
/// they are moved at the end (ledger rows first, counters in id order) and their row locks are
/// held only until the commit, not through the rest of a cancellation.
/// Returns how many mails were queued (wake the mail worker after the commit when above 0).
pub async fn release<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    order: &orders::Model,
    kind: &str,
    now: OffsetDateTime,
) -> AppResult<usize> {
    let backend = conn.get_database_backend();
    let held = held_stock(conn, &order.id).await?;
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE seats SET state = 'AVAILABLE', order_id = NULL, updated_at = ? \
         WHERE order_id = ? AND state IN ('HELD', 'SOLD')",
        [to_db(now).into(), order.id.clone().into()],
    ))
    .await?;
    let lines = order_items::Entity::find()
        .filter(order_items::Column::OrderId.eq(order.id.clone()))
        .all(conn)
        .await?;
    let parts = package_parts(conn, &lines).await?;
    for (scope, quantity) in counted_scopes(&lines, &parts) {
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE purchase_counts SET quantity = quantity - ? \
             WHERE scope_id = ? AND user_id = ? AND quantity >= ?",
            [
                quantity.into(),
                scope.into(),
                order.user_id.clone().into(),
                quantity.into(),
            ],
        ))
        .await?;
    }
    let products_touched: Vec<String> = lines.iter().filter_map(|l| l.product_id.clone()).collect();
    let watched = notify::awaited(conn, products_touched).await?;

    stock::put_back(conn, &order.event_id, &order.id, &held, kind, now).await?;

    let mut mails = 0;
    for product_id in watched {
        mails += notify_back_in_stock(conn, state, &product_id, now).await?;
    }
    Ok(mails)
}

/// One part of a package, as the per-user limits see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The product inside the package.
    pub product_id: String,
    /// Its performance, when it is a ticket.
    pub performance_id: Option<String>,
    /// Units per package.
    pub units: i64,
}

/// The parts of the packages an order's lines name, by package id. A sold package's contents
/// cannot change, so these are the parts that checkout counted.
pub async fn package_parts<C: ConnectionTrait>(
    conn: &C,
    lines: &[order_items::Model],
) -> AppResult<HashMap<String, Vec<Part>>> {
    let packages: Vec<String> = lines
        .iter()
        .filter(|l| LineKind::from_db(&l.kind) == LineKind::Package)
        .filter_map(|l| l.product_id.clone())
        .collect();
    if packages.is_empty() {
        return Ok(HashMap::new());
    }
    let components = package_components::Entity::find()
        .filter(package_components::Column::PackageId.is_in(packages))
        .all(conn)
        .await?;
    let performances: HashMap<String, Option<String>> = products::Entity::find()
        .select_only()
        .column(products::Column::Id)
        .column(products::Column::PerformanceId)
        .filter(
            products::Column::Id.is_in(components.iter().map(|c| c.component_product_id.clone())),
        )
        .into_tuple::<(String, Option<String>)>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let mut parts: HashMap<String, Vec<Part>> = HashMap::new();
    for component in components {
        parts.entry(component.package_id).or_default().push(Part {
            performance_id: performances
                .get(&component.component_product_id)
                .cloned()
                .flatten(),
            product_id: component.component_product_id,
            units: i64::from(component.quantity),
        });
    }
    Ok(parts)
}

/// The per-user counter scopes an order's lines count against, with quantities: every product
/// (`p:` + id) and, for ticket lines, their performance (`f:` + id); a package line also counts
/// each of its `parts` that way. Sorted, so counters are always touched in the same order.
pub fn counted_scopes(
    lines: &[order_items::Model],
    parts: &HashMap<String, Vec<Part>>,
) -> BTreeMap<String, i64> {
    let mut scopes = BTreeMap::new();
    let mut count = |product_id: Option<&str>, performance_id: Option<&str>, quantity: i64| {
        if let Some(product_id) = product_id {
            *scopes.entry(product_scope(product_id)).or_insert(0) += quantity;
        }
        if let Some(performance_id) = performance_id {
            *scopes.entry(performance_scope(performance_id)).or_insert(0) += quantity;
        }
    };
    for line in lines {
        let kind = LineKind::from_db(&line.kind);
        if kind == LineKind::Shipping {
            continue;
        }
        let quantity = i64::from(line.quantity);
        let performance_id = line
            .performance_id
            .as_deref()
            .filter(|_| kind == LineKind::Ticket);
        count(line.product_id.as_deref(), performance_id, quantity);
        let contents = line
            .product_id
            .as_ref()
            .filter(|_| kind == LineKind::Package)
            .and_then(|id| parts.get(id))
            .map_or(&[][..], Vec::as_slice);
        for part in contents {
            count(
                Some(&part.product_id),
                part.performance_id.as_deref(),
                quantity * part.units,
            );
        }
    }
    scopes
}

/// The per-user counter of one product.
pub fn product_scope(product_id: &str) -> String {
    format!("p:{product_id}")
}

/// The per-user counter of one performance's tickets.
pub fn performance_scope(performance_id: &str) -> String {
    format!("f:{performance_id}")
}

/// `INSERT … ON CONFLICT DO NOTHING` in each backend's spelling.
pub fn insert_ignore(backend: DbBackend, table_and_columns: &str, marks: &str) -> String {
    match backend {
        DbBackend::MySql => format!("INSERT IGNORE INTO {table_and_columns} VALUES ({marks})"),
        _ => format!("INSERT INTO {table_and_columns} VALUES ({marks}) ON CONFLICT DO NOTHING"),
    }
}

/// Values as statement parameters.
pub fn values<I: IntoIterator<Item = V>, V: Into<Value>>(items: I) -> Vec<Value> {
    items.into_iter().map(Into::into).collect()
}
