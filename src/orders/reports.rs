//! The organizer's views of an event's orders: the order list (with buyers' addresses) and the
//! sales report. Both read orders and their lines; only `remaining` comes from the catalog.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    model::OrderStatus,
    view::{OrderView, present_all},
};
use crate::{
    app::AppState,
    catalog::{
        access::{self, Viewer},
        money::Money,
        products::{model::ProductType, store as products_store},
    },
    db::entities::{orders, products, users},
    error::{AppError, AppResult},
    http::page::{Cursor, limit, split_page},
    infra::clock::from_db,
};

/// `GET /events/{id}/orders` filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventOrdersQuery {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// 1..=100, default 20.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An order as the event's manager sees it: the buyer's view plus who bought it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ManagedOrder {
    /// The order.
    #[serde(flatten)]
    pub order: OrderView,
    /// The buyer's address (absent for deleted accounts).
    pub buyer_email: Option<String>,
    /// The buyer's name.
    pub buyer_name: Option<String>,
}

/// A page of an event's orders, newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ManagedOrderPage {
    /// Newest first.
    pub items: Vec<ManagedOrder>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Buyers of some orders by user id: (email, name); deleted accounts are absent.
pub async fn buyers<C: ConnectionTrait>(
    conn: &C,
    user_ids: impl IntoIterator<Item = String>,
) -> AppResult<HashMap<String, (String, Option<String>)>> {
    let mut ids: Vec<String> = user_ids.into_iter().collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(ids))
        .filter(users::Column::DeletedAt.is_null())
        .all(conn)
        .await?
        .into_iter()
        .map(|u| (u.id, (u.email, u.name)))
        .collect())
}

/// The event's orders, newest first, with keyset pagination.
pub async fn list(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    query: EventOrdersQuery,
) -> AppResult<ManagedOrderPage> {
    access::manageable_event(state, viewer, event_id).await?;
    let limit = limit(query.limit, 20, 100).map_err(|e| AppError::validation(vec![e]))?;
    let mut select = orders::Entity::find().filter(orders::Column::EventId.eq(event_id));
    if let Some(status) = query.status {
        select = select.filter(orders::Column::Status.eq(status.as_str()));
    }
    if let Some(cursor) = &query.cursor {
        let cursor = Cursor::decode(cursor).map_err(|e| AppError::validation(vec![e]))?;
        select =
            select.filter(cursor.after_descending(orders::Column::CreatedAt, orders::Column::Id));
    }
    let rows = select
        .order_by_desc(orders::Column::CreatedAt)
        .order_by_desc(orders::Column::Id)
        .limit(limit + 1)
        .all(&state.read_db)
        .await?;
    let (rows, next_cursor) =
        split_page(rows, limit, |o| Cursor::new(from_db(o.created_at), &o.id));
    let people = buyers(&state.read_db, rows.iter().map(|o| o.user_id.clone())).await?;
    let items = present_all(&state.read_db, rows)
        .await?
        .into_iter()
        .map(|order| {
            let buyer = people.get(&order.user_id).cloned();
            ManagedOrder {
                buyer_email: buyer.as_ref().map(|b| b.0.clone()),
                buyer_name: buyer.and_then(|b| b.1),
                order,
            }
        })
        .collect();
    Ok(ManagedOrderPage { items, next_cursor })
}

/// Sales of one product.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProductSales {
    /// The product.
    pub product_id: String,
    /// Its name.
    pub name: String,
    /// `TICKET`, `MERCH` or `PACKAGE`.
    pub product_type: String,
    /// The performance of a ticket.
    pub performance_id: Option<String>,
    /// The seat grade of a reserved ticket.
    pub grade: Option<String>,
    /// Units in confirmed orders.
    pub sold: i64,
    /// Units held by pending orders.
    pub held: i64,
    /// What the catalog still sells.
    pub remaining: i64,
    /// Line totals of confirmed orders.
    #[schema(value_type = String, example = "1100000.00")]
    pub revenue: Money,
}

/// Ticket sales of one performance and grade.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GradeSales {
    /// The performance.
    pub performance_id: Option<String>,
    /// The grade (absent for general admission).
    pub grade: Option<String>,
    /// Units in confirmed orders.
    pub sold: i64,
    /// Units held by pending orders.
    pub held: i64,
    /// What the catalog still sells.
    pub remaining: i64,
    /// Line totals of confirmed orders.
    #[schema(value_type = String)]
    pub revenue: Money,
}

/// Event-wide numbers.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct SalesTotals {
    /// Units in confirmed orders.
    pub sold: i64,
    /// Units held by pending orders.
    pub held: i64,
    /// Orders by status.
    pub orders_pending: i64,
    /// Confirmed orders.
    pub orders_confirmed: i64,
    /// Canceled orders.
    pub orders_canceled: i64,
    /// Refunded orders.
    pub orders_refunded: i64,
    /// Everything paid (confirmed and refunded orders' totals).
    #[schema(value_type = String)]
    pub gross: Money,
    /// Paid back on refunds.
    #[schema(value_type = String)]
    pub refunded: Money,
    /// Cancellation fees kept on refunds.
    #[schema(value_type = String)]
    pub fees_kept: Money,
    /// Shipping fees of confirmed orders.
    #[schema(value_type = String)]
    pub shipping: Money,
    /// `gross − refunded`.
    #[schema(value_type = String, example = "1203000.00")]
    pub revenue: Money,
}

/// `GET /events/{id}/sales`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SalesReport {
    /// The event.
    pub event_id: String,
    /// ISO 4217 of every amount.
    pub currency: String,
    /// Per product.
    pub products: Vec<ProductSales>,
    /// Tickets per performance and grade.
    pub tickets: Vec<GradeSales>,
    /// The whole event.
    pub totals: SalesTotals,
}

/// Units and amounts of lines by (product, status).
#[derive(Default, Clone, Copy)]
struct Tally {
    sold: i64,
    held: i64,
    revenue: i64,
}

/// The sales report of an event.
pub async fn sales(state: &AppState, viewer: &Viewer, event_id: &str) -> AppResult<SalesReport> {
    let event = access::manageable_event(state, viewer, event_id).await?;
    let backend = state.read_db.get_database_backend();
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for row in state
        .read_db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT i.product_id AS product_id, o.status AS status, \
             CAST(SUM(i.quantity) AS SIGNED) AS units, CAST(SUM(i.price) AS SIGNED) AS amount \
             FROM order_items i JOIN orders o ON o.id = i.order_id \
             WHERE i.event_id = ? AND i.product_id IS NOT NULL AND o.status IN (?, ?) \
             GROUP BY i.product_id, o.status",
            [
                event_id.into(),
                OrderStatus::Pending.as_str().into(),
                OrderStatus::Confirmed.as_str().into(),
            ],
        ))
        .await?
    {
        let product: String = row.try_get("", "product_id")?;
        let status: String = row.try_get("", "status")?;
        let units: i64 = row.try_get("", "units")?;
        let amount: i64 = row.try_get("", "amount")?;
        let tally = tallies.entry(product).or_default();
        if status == OrderStatus::Confirmed.as_str() {
            tally.sold += units;
            tally.revenue += amount;
        } else {
            tally.held += units;
        }
    }
    let mut totals = SalesTotals::default();
    for row in state
        .read_db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT status, CAST(COUNT(*) AS SIGNED) AS n, CAST(SUM(total) AS SIGNED) AS total, \
             CAST(SUM(shipping_fee) AS SIGNED) AS shipping, \
             CAST(SUM(COALESCE(refund_amount, 0)) AS SIGNED) AS refunded, \
             CAST(SUM(COALESCE(cancel_fee, 0)) AS SIGNED) AS fees \
             FROM orders WHERE event_id = ? GROUP BY status",
            [event_id.into()],
        ))
        .await?
    {
        let status = OrderStatus::from_db(&row.try_get::<String>("", "status")?);
        let n: i64 = row.try_get("", "n")?;
        let total: i64 = row.try_get("", "total")?;
        match status {
            OrderStatus::Pending => totals.orders_pending += n,
            OrderStatus::Canceled => totals.orders_canceled += n,
            OrderStatus::Confirmed => {
                totals.orders_confirmed += n;
                totals.gross = totals.gross.plus(Money::from_minor(total));
                totals.shipping = totals
                    .shipping
                    .plus(Money::from_minor(row.try_get("", "shipping")?));
            }
            OrderStatus::Refunded => {
                totals.orders_refunded += n;
                totals.gross = totals.gross.plus(Money::from_minor(total));
                totals.refunded = totals
                    .refunded
                    .plus(Money::from_minor(row.try_get("", "refunded")?));
                totals.fees_kept = totals
                    .fees_kept
                    .plus(Money::from_minor(row.try_get("", "fees")?));
            }
        }
    }
    totals.revenue = Money::from_minor(totals.gross.minor() - totals.refunded.minor());
    let rows = products::Entity::find()
        .filter(products::Column::EventId.eq(event_id))
        .order_by_asc(products::Column::CreatedAt)
        .order_by_asc(products::Column::Id)
        .all(&state.read_db)
        .await?;
    let views = products_store::views(&state.read_db, &event, rows, state.clock.now()).await?;
    let mut grades: BTreeMap<(Option<String>, Option<String>), GradeSales> = BTreeMap::new();
    let products = views
        .into_iter()
        .map(|p| {
            let tally = tallies.get(&p.id).copied().unwrap_or_default();
            totals.sold += tally.sold;
            totals.held += tally.held;
            let product_type = p.product_type.as_str().to_owned();
            if p.product_type == ProductType::Ticket {
                let g = grades
                    .entry((p.performance_id.clone(), p.grade.clone()))
                    .or_insert_with(|| GradeSales {
                        performance_id: p.performance_id.clone(),
                        grade: p.grade.clone(),
                        sold: 0,
                        held: 0,
                        remaining: 0,
                        revenue: Money::ZERO,
                    });
                g.sold += tally.sold;
                g.held += tally.held;
                g.remaining += p.remaining;
                g.revenue = g.revenue.plus(Money::from_minor(tally.revenue));
            }
            ProductSales {
                product_id: p.id,
                name: p.name,
                product_type,
                performance_id: p.performance_id,
                grade: p.grade,
                sold: tally.sold,
                held: tally.held,
                remaining: p.remaining,
                revenue: Money::from_minor(tally.revenue),
            }
        })
        .collect();
    Ok(SalesReport {
        event_id: event.id,
        currency: event.currency,
        products,
        tickets: grades.into_values().collect(),
        totals,
    })
}
