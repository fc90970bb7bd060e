//! What a buyer (or the event's manager) sees of an order, loaded in two queries.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::model::{CancelReason, LineKind, OrderStatus};
use crate::{
    catalog::money::Money,
    db::entities::{order_items, orders},
    error::AppResult,
    infra::clock::from_db,
};

/// Where merchandise goes when a delivery option is chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"recipient": "김민지", "phone": "010-1234-5678", "postcode": "06236", "address_lines": ["서울특별시 강남구 테헤란로 123", "4층"]}))]
pub struct ShippingAddress {
    /// Who receives it.
    pub recipient: String,
    /// A phone number for the carrier.
    pub phone: String,
    /// Postal code.
    pub postcode: String,
    /// One to three address lines.
    pub address_lines: Vec<String>,
}

/// A seat of an order line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeatRef {
    /// Seat id.
    pub id: String,
    /// Its label (`Floor-A-12`).
    pub label: String,
}

/// Where a merchandise line is in fulfilment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FulfillmentView {
    /// `PENDING`, `SHIPPED` or `PICKED_UP`.
    pub status: String,
    /// Carrier, once shipped.
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// When it was shipped or picked up.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<OffsetDateTime>,
}

/// One line of an order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ItemView {
    /// Line id.
    pub id: String,
    /// What the line is.
    pub kind: LineKind,
    /// The product (absent on a shipping line).
    pub product_id: Option<String>,
    /// The merchandise variant.
    pub variant_id: Option<String>,
    /// The performance of a ticket.
    pub performance_id: Option<String>,
    /// The shipping option (on merchandise, package and shipping lines).
    pub shipping_option_id: Option<String>,
    /// Name at the time of the order.
    pub name: String,
    /// Units.
    pub quantity: i32,
    /// Price of one unit at the time of the order.
    #[schema(value_type = String, example = "55000.00")]
    pub unit_price: Money,
    /// `unit_price × quantity`.
    #[schema(value_type = String, example = "110000.00")]
    pub price: Money,
    /// Reserved seats.
    pub seats: Vec<SeatRef>,
    /// Sold as a pre-order (ships later).
    pub preorder: bool,
    /// Merchandise fulfilment.
    pub fulfillment: Option<FulfillmentView>,
}

/// An order as its buyer sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderView {
    /// Order id.
    pub id: String,
    /// The event all lines belong to.
    pub event_id: String,
    /// The buyer.
    pub user_id: String,
    /// Status.
    pub status: OrderStatus,
    /// Lines, in the order they were asked for; shipping fees last.
    pub items: Vec<ItemView>,
    /// Sum of the lines without shipping.
    #[schema(value_type = String, example = "110000.00")]
    pub subtotal: Money,
    /// Sum of the shipping lines.
    #[schema(value_type = String, example = "3000.00")]
    pub shipping_fee: Money,
    /// What the buyer pays.
    #[schema(value_type = String, example = "113000.00")]
    pub total: Money,
    /// ISO 4217 currency of every amount.
    pub currency: String,
    /// A pending order holds its stock until then.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    /// Delivery address, when a delivery option was chosen.
    pub shipping_address: Option<ShippingAddress>,
    /// Why it was canceled or refunded.
    pub cancel_reason: Option<CancelReason>,
    /// Fee kept on a refund.
    #[schema(value_type = Option<String>)]
    pub cancel_fee: Option<Money>,
    /// Amount refunded.
    #[schema(value_type = Option<String>)]
    pub refund_amount: Option<Money>,
    /// The payment provider that captured the payment.
    pub payment_provider: Option<String>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Paid.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub confirmed_at: Option<OffsetDateTime>,
    /// Canceled.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub canceled_at: Option<OffsetDateTime>,
    /// Refunded.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub refunded_at: Option<OffsetDateTime>,
}

/// Builds the view of an order from its row and lines (lines in `position` order).
pub fn present(order: orders::Model, lines: Vec<order_items::Model>) -> OrderView {
    let status = OrderStatus::from_db(&order.status);
    let items = lines
        .into_iter()
        .map(|l| ItemView {
            kind: LineKind::from_db(&l.kind),
            seats: l
                .seats
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default(),
            fulfillment: super::fulfillment::effective(&l, status).map(|s| FulfillmentView {
                status: s.as_str().to_owned(),
                carrier: l.carrier.clone(),
                tracking_number: l.tracking_number.clone(),
                at: l.fulfilled_at.map(from_db),
            }),
            id: l.id,
            product_id: l.product_id,
            variant_id: l.variant_id,
            performance_id: l.performance_id,
            shipping_option_id: l.shipping_option_id,
            name: l.name,
            quantity: l.quantity,
            unit_price: Money::from_minor(l.unit_price),
            price: Money::from_minor(l.price),
            preorder: l.preorder,
        })
        .collect();
    OrderView {
        id: order.id,
        event_id: order.event_id,
        user_id: order.user_id,
        status,
        items,
        subtotal: Money::from_minor(order.subtotal),
        shipping_fee: Money::from_minor(order.shipping_fee),
        total: Money::from_minor(order.total),
        currency: order.currency,
        expires_at: from_db(order.expires_at),
        shipping_address: order
            .shipping_address
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        cancel_reason: order
            .cancel_reason
            .as_deref()
            .and_then(CancelReason::from_db),
        cancel_fee: order.cancel_fee.map(Money::from_minor),
        refund_amount: order.refund_amount.map(Money::from_minor),
        payment_provider: order.payment_provider,
        created_at: from_db(order.created_at),
        confirmed_at: order.confirmed_at.map(from_db),
        canceled_at: order.canceled_at.map(from_db),
        refunded_at: order.refunded_at.map(from_db),
    }
}

/// The lines of one order, in `position` order.
pub async fn lines_of<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
) -> AppResult<Vec<order_items::Model>> {
    Ok(order_items::Entity::find()
        .filter(order_items::Column::OrderId.eq(order_id))
        .order_by_asc(order_items::Column::Position)
        .all(conn)
        .await?)
}

/// The lines of several orders in one query, by order id, each in `position` order.
pub async fn lines_by_order<C: ConnectionTrait>(
    conn: &C,
    order_ids: Vec<String>,
) -> AppResult<HashMap<String, Vec<order_items::Model>>> {
    let mut lines: HashMap<String, Vec<order_items::Model>> = HashMap::new();
    if order_ids.is_empty() {
        return Ok(lines);
    }
    for line in order_items::Entity::find()
        .filter(order_items::Column::OrderId.is_in(crate::db::padded(order_ids)))
        .order_by_asc(order_items::Column::Position)
        .all(conn)
        .await?
    {
        lines.entry(line.order_id.clone()).or_default().push(line);
    }
    Ok(lines)
}

/// Views of several orders (in the given order), with their lines in one query.
pub async fn present_all<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<orders::Model>,
) -> AppResult<Vec<OrderView>> {
    let mut lines = lines_by_order(conn, rows.iter().map(|o| o.id.clone()).collect()).await?;
    Ok(rows
        .into_iter()
        .map(|o| {
            let l = lines.remove(&o.id).unwrap_or_default();
            present(o, l)
        })
        .collect())
}

/// One order's view, if it exists.
pub async fn load<C: ConnectionTrait>(conn: &C, order_id: &str) -> AppResult<Option<OrderView>> {
    let Some(order) = orders::Entity::find_by_id(order_id.to_owned())
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(present_all(conn, vec![order]).await?.pop())
}
