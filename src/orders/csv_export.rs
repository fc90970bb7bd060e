//! CSV exports of an event for its organizer: orders, attendees (one row per ticket, never its
//! code) and merchandise fulfilment. UTF-8 with a byte-order mark so spreadsheets show Korean,
//! RFC 4180 quoting by the `csv` crate, cells that a spreadsheet would run as a formula are
//! defused with a leading `'`. Rows are read and sent in pages of [`PAGE`], so a large event
//! never becomes one allocation.

use std::{borrow::Cow, collections::HashMap};

use axum::{
    body::Body,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use time::format_description::well_known::Rfc3339;

use super::{
    fulfillment,
    model::{CancelReason, LineKind, OrderStatus},
    reports::buyers,
    view::ShippingAddress,
};
use crate::{
    app::AppState,
    catalog::{
        access::{self, Viewer},
        money::Money,
    },
    db::entities::{order_items, orders, product_variants, tickets},
    error::{AppError, AppResult},
    infra::clock::from_db,
};

/// Rows per page read from the database and sent as one chunk.
const PAGE: u64 = 500;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Which export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Export {
    /// `orders.csv`: one row per order.
    Orders,
    /// `attendees.csv`: one row per ticket.
    Attendees,
    /// `fulfillment.csv`: one row per merchandise line of a confirmed order.
    Fulfillment,
}

impl Export {
    fn name(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Attendees => "attendees",
            Self::Fulfillment => "fulfillment",
        }
    }

    fn header(self) -> &'static [&'static str] {
        match self {
            Self::Orders => &[
                "order_id",
                "created_at",
                "status",
                "buyer_name",
                "buyer_email",
                "items",
                "subtotal",
                "shipping_fee",
                "total",
                "currency",
                "cancel_reason",
                "cancel_fee",
                "refund_amount",
                "confirmed_at",
                "canceled_at",
                "refunded_at",
            ],
            Self::Attendees => &[
                "ticket_id",
                "order_id",
                "name",
                "email",
                "ticket",
                "seat",
                "status",
                "used_at",
            ],
            Self::Fulfillment => &[
                "order_id",
                "item_id",
                "buyer_name",
                "buyer_email",
                "product",
                "variant",
                "quantity",
                "status",
                "carrier",
                "tracking_number",
                "recipient",
                "phone",
                "postcode",
                "address",
            ],
        }
    }
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return
/// first) gets a leading `'`, which spreadsheets show as text.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Writes rows as CSV (CRLF line ends, quoting where needed, every cell defused).
pub fn write_rows<R: AsRef<[String]>>(rows: &[R]) -> AppResult<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(row.as_ref().iter().map(|c| defuse(c).into_owned()))
            .map_err(AppError::internal)?;
    }
    writer
        .into_inner()
        .map_err(|e| AppError::internal(anyhow::anyhow!("csv flush: {e}")))
}

/// The response: headers now, rows page by page as the client reads.
pub async fn export(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    which: Export,
) -> AppResult<Response> {
    access::manageable_event(state, viewer, event_id).await?;
    let mut first = BOM.to_vec();
    let header: Vec<String> = which.header().iter().map(|h| (*h).to_owned()).collect();
    first.extend(write_rows(&[header])?);
    let start = (
        state.clone(),
        event_id.to_owned(),
        None::<String>,
        Some(first),
    );
    let pages = futures::stream::try_unfold(Some(start), move |cursor| async move {
        let Some((state, event_id, after, prefix)) = cursor else {
            return Ok::<_, AppError>(None);
        };
        let (rows, last) = page(&state, &event_id, which, after.as_deref()).await?;
        let mut chunk = prefix.unwrap_or_default();
        chunk.extend(write_rows(&rows)?);
        let next = last.map(|id| (state, event_id, Some(id), None));
        Ok(Some((bytes::Bytes::from(chunk), next)))
    });
    let filename = format!("attachment; filename=\"{}-{event_id}.csv\"", which.name());
    let mut response = Body::from_stream(pages).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn at(t: Option<sea_orm::prelude::TimeDateTime>) -> String {
    t.and_then(|t| from_db(t).format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn money(minor: Option<i64>) -> String {
    minor
        .map(|m| Money::from_minor(m).to_string())
        .unwrap_or_default()
}

/// One page of rows after the id `after`; the last id read when more may follow.
async fn page(
    state: &AppState,
    event_id: &str,
    which: Export,
    after: Option<&str>,
) -> AppResult<(Vec<Vec<String>>, Option<String>)> {
    match which {
        Export::Orders => orders_page(state, event_id, after).await,
        Export::Attendees => attendees_page(state, event_id, after).await,
        Export::Fulfillment => fulfillment_page(state, event_id, after).await,
    }
}

fn more<T>(rows: &[T], id: impl Fn(&T) -> String) -> Option<String> {
    if rows.len() as u64 == PAGE {
        rows.last().map(id)
    } else {
        None
    }
}

async fn orders_page(
    state: &AppState,
    event_id: &str,
    after: Option<&str>,
) -> AppResult<(Vec<Vec<String>>, Option<String>)> {
    let mut select = orders::Entity::find().filter(orders::Column::EventId.eq(event_id));
    if let Some(after) = after {
        select = select.filter(orders::Column::Id.gt(after));
    }
    let rows = select
        .order_by_asc(orders::Column::Id)
        .limit(PAGE)
        .all(&state.read_db)
        .await?;
    let last = more(&rows, |o| o.id.clone());
    let people = buyers(&state.read_db, rows.iter().map(|o| o.user_id.clone())).await?;
    let lines = crate::orders::view::lines_by_order(
        &state.read_db,
        rows.iter().map(|o| o.id.clone()).collect(),
    )
    .await?;
    let out = rows
        .into_iter()
        .map(|o| {
            let buyer = people.get(&o.user_id);
            let items = lines
                .get(&o.id)
                .map(|ls| {
                    ls.iter()
                        .filter(|l| LineKind::from_db(&l.kind) != LineKind::Shipping)
                        .map(|l| format!("{} x{}", l.name, l.quantity))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            vec![
                o.id.clone(),
                at(Some(o.created_at)),
                OrderStatus::from_db(&o.status).as_str().to_owned(),
                buyer.and_then(|b| b.1.clone()).unwrap_or_default(),
                buyer.map(|b| b.0.clone()).unwrap_or_default(),
                items,
                money(Some(o.subtotal)),
                money(Some(o.shipping_fee)),
                money(Some(o.total)),
                o.currency.clone(),
                o.cancel_reason
                    .as_deref()
                    .and_then(CancelReason::from_db)
                    .map(|r| r.as_str().to_owned())
                    .unwrap_or_default(),
                money(o.cancel_fee),
                money(o.refund_amount),
                at(o.confirmed_at),
                at(o.canceled_at),
                at(o.refunded_at),
            ]
        })
        .collect();
    Ok((out, last))
}

async fn attendees_page(
    state: &AppState,
    event_id: &str,
    after: Option<&str>,
) -> AppResult<(Vec<Vec<String>>, Option<String>)> {
    let mut select = tickets::Entity::find().filter(tickets::Column::EventId.eq(event_id));
    if let Some(after) = after {
        select = select.filter(tickets::Column::Id.gt(after));
    }
    let rows = select
        .order_by_asc(tickets::Column::Id)
        .limit(PAGE)
        .all(&state.read_db)
        .await?;
    let last = more(&rows, |t| t.id.clone());
    let mut order_ids: Vec<String> = rows.iter().map(|t| t.order_id.clone()).collect();
    order_ids.sort();
    order_ids.dedup();
    let owners: HashMap<String, String> = if order_ids.is_empty() {
        HashMap::new()
    } else {
        orders::Entity::find()
            .select_only()
            .column(orders::Column::Id)
            .column(orders::Column::UserId)
            .filter(orders::Column::Id.is_in(order_ids.clone()))
            .into_tuple::<(String, String)>()
            .all(&state.read_db)
            .await?
            .into_iter()
            .collect()
    };
    let people = buyers(&state.read_db, owners.values().cloned()).await?;
    let lines: HashMap<String, String> =
        crate::orders::view::lines_by_order(&state.read_db, order_ids)
            .await?
            .into_values()
            .flatten()
            .map(|l| (l.id, l.name))
            .collect();
    let out = rows
        .into_iter()
        .map(|t| {
            let buyer = owners.get(&t.order_id).and_then(|u| people.get(u));
            vec![
                t.id.clone(),
                t.order_id.clone(),
                buyer.and_then(|b| b.1.clone()).unwrap_or_default(),
                buyer.map(|b| b.0.clone()).unwrap_or_default(),
                lines.get(&t.order_item_id).cloned().unwrap_or_default(),
                t.seat_label.clone().unwrap_or_default(),
                t.status.clone(),
                at(t.used_at),
            ]
        })
        .collect();
    Ok((out, last))
}

async fn fulfillment_page(
    state: &AppState,
    event_id: &str,
    after: Option<&str>,
) -> AppResult<(Vec<Vec<String>>, Option<String>)> {
    let mut select = order_items::Entity::find()
        .filter(order_items::Column::EventId.eq(event_id))
        .filter(
            Condition::any()
                .add(order_items::Column::Kind.eq(LineKind::Merch.as_str()))
                .add(
                    Condition::all()
                        .add(order_items::Column::Kind.eq(LineKind::Package.as_str()))
                        .add(order_items::Column::ShippingOptionId.is_not_null()),
                ),
        );
    if let Some(after) = after {
        select = select.filter(order_items::Column::Id.gt(after));
    }
    let rows = select
        .order_by_asc(order_items::Column::Id)
        .limit(PAGE)
        .all(&state.read_db)
        .await?;
    let last = more(&rows, |l| l.id.clone());
    let mut order_ids: Vec<String> = rows.iter().map(|l| l.order_id.clone()).collect();
    order_ids.sort();
    order_ids.dedup();
    let confirmed: HashMap<String, orders::Model> = if order_ids.is_empty() {
        HashMap::new()
    } else {
        orders::Entity::find()
            .filter(orders::Column::Id.is_in(order_ids))
            .filter(orders::Column::Status.eq(OrderStatus::Confirmed.as_str()))
            .all(&state.read_db)
            .await?
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect()
    };
    let people = buyers(
        &state.read_db,
        confirmed.values().map(|o| o.user_id.clone()),
    )
    .await?;
    let variant_ids: Vec<String> = rows.iter().filter_map(|l| l.variant_id.clone()).collect();
    let variants: HashMap<String, String> = if variant_ids.is_empty() {
        HashMap::new()
    } else {
        product_variants::Entity::find()
            .select_only()
            .column(product_variants::Column::Id)
            .column(product_variants::Column::Name)
            .filter(product_variants::Column::Id.is_in(variant_ids))
            .into_tuple::<(String, String)>()
            .all(&state.read_db)
            .await?
            .into_iter()
            .collect()
    };
    let out = rows
        .into_iter()
        .filter_map(|l| {
            let order = confirmed.get(&l.order_id)?;
            let buyer = people.get(&order.user_id);
            let address: Option<ShippingAddress> = order
                .shipping_address
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok());
            let status = fulfillment::effective(&l, OrderStatus::Confirmed)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            Some(vec![
                l.order_id.clone(),
                l.id.clone(),
                buyer.and_then(|b| b.1.clone()).unwrap_or_default(),
                buyer.map(|b| b.0.clone()).unwrap_or_default(),
                l.name.clone(),
                l.variant_id
                    .as_ref()
                    .and_then(|v| variants.get(v).cloned())
                    .unwrap_or_default(),
                l.quantity.to_string(),
                status,
                l.carrier.clone().unwrap_or_default(),
                l.tracking_number.clone().unwrap_or_default(),
                address
                    .as_ref()
                    .map(|a| a.recipient.clone())
                    .unwrap_or_default(),
                address
                    .as_ref()
                    .map(|a| a.phone.clone())
                    .unwrap_or_default(),
                address
                    .as_ref()
                    .map(|a| a.postcode.clone())
                    .unwrap_or_default(),
                address
                    .as_ref()
                    .map(|a| a.address_lines.join(" "))
                    .unwrap_or_default(),
            ])
        })
        .collect();
    Ok((out, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_quoting_is_standard() {
        assert_eq!(defuse("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        for risky in ["+1", "-2", "@SUM(A1)", "\tx"] {
            assert!(defuse(risky).starts_with('\''), "{risky}");
        }
        assert_eq!(defuse("김민지"), "김민지");
        assert_eq!(defuse(""), "");
        let rows = vec![vec![
            "=HYPERLINK(\"x\")".to_owned(),
            "a,b".to_owned(),
            "서울 \"강남\"".to_owned(),
        ]];
        let text = String::from_utf8(write_rows(&rows).expect("csv")).expect("utf-8");
        assert_eq!(
            text,
            "\"'=HYPERLINK(\"\"x\"\")\",\"a,b\",\"서울 \"\"강남\"\"\"\r\n"
        );
    }
}
