//! The buyer's order pages: `/checkout/{id}` (the test gateway's payment page), `/account/orders`
//! (history) and `/account/orders/{id}` (status, lines, fulfilment, tickets with QR codes, and
//! cancellation with its fee shown first). Someone else's order is a 404 page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use base64::{Engine, engine::general_purpose::STANDARD};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;

use super::{
    context::{Ctx, PageResult, encode, render},
    format,
    i18n::Lang,
};
use crate::{
    app::AppState,
    db::entities::events as event_rows,
    orders::{
        cancel, history,
        model::{CancelReason, LineKind, OrderStatus},
        tickets::{self, TicketStatus},
        view::OrderView,
    },
};

crate::texts! {
    /// Texts of the order pages.
    pub struct OrderTexts {
        checkout: "결제", "Checkout";
        summary: "주문 내역", "Order summary";
        pay_until: "결제 마감까지", "Time left to pay";
        gateway: "테스트 결제창", "Test payment gateway";
        gateway_help: "실제 카드 정보는 받지 않습니다. 결과를 골라 결제를 시험해 보세요.", "No card details are taken here. Choose an outcome to try the payment.";
        success: "결제 성공", "Payment succeeds";
        decline: "카드 거절", "Card declined";
        pay: "결제하기", "Pay";
        paid: "결제가 완료되었습니다. 티켓이 발급되었습니다.", "Paid. Your tickets are issued.";
        not_pending: "이 주문은 결제할 수 있는 상태가 아닙니다.", "This order cannot be paid now.";
        my_orders: "내 주문", "My orders";
        none: "아직 주문이 없습니다.", "No orders yet.";
        status: "상태", "Status";
        all: "전체", "All";
        filter: "보기", "Show";
        ordered_at: "주문일", "Ordered";
        total: "합계", "Total";
        shipping_fee: "배송비", "Shipping";
        more: "더 보기", "More";
        details: "자세히", "Details";
        order: "주문", "Order";
        items: "주문 상품", "Items";
        seats: "좌석", "Seats";
        preorder: "예약 판매", "Pre-order";
        fulfillment: "배송 상태", "Fulfilment";
        carrier: "택배사", "Carrier";
        tracking: "운송장", "Tracking";
        ship_to: "배송지", "Ship to";
        tickets: "티켓", "Tickets";
        ticket_help: "입장할 때 이 QR 코드를 보여 주세요.", "Show this QR code at the entrance.";
        used: "사용됨", "Used";
        void: "무효", "Void";
        valid: "사용 가능", "Valid";
        cancel: "주문 취소", "Cancel order";
        refund: "환불 요청", "Request a refund";
        fee: "취소 수수료", "Cancellation fee";
        refund_amount: "환불 금액", "Refund";
        cancel_confirm: "정말 취소하시겠습니까?", "Cancel this order?";
        cancel_not_allowed: "취소할 수 없습니다", "Cannot be canceled";
        whole_order: "주문 전체가 취소됩니다.", "The whole order is canceled.";
        reason: "취소 사유", "Reason";
        pay_now: "결제하러 가기", "Go to payment";
        back_to_event: "공연 페이지로", "Back to the event";
        pending: "결제 대기", "Awaiting payment";
        confirmed: "결제 완료", "Confirmed";
        canceled: "취소됨", "Canceled";
        refunded: "환불됨", "Refunded";
        reason_expired: "결제 시간이 지나 자동 취소", "Expired before payment";
        reason_buyer: "구매자 취소", "Canceled by you";
        reason_organizer: "판매자 취소", "Canceled by the organizer";
        reason_event: "공연 취소", "Event canceled";
        reason_late: "결제가 늦게 도착해 환불됨", "Payment arrived late and was refunded";
        ship_pending: "배송 준비 중", "Preparing";
        ship_shipped: "발송됨", "Shipped";
        ship_picked_up: "수령함", "Picked up";
    }
}

impl OrderTexts {
    fn status(&self, s: OrderStatus) -> (&'static str, &'static str) {
        match s {
            OrderStatus::Pending => (self.pending, "pending"),
            OrderStatus::Confirmed => (self.confirmed, "confirmed"),
            OrderStatus::Canceled => (self.canceled, "canceled"),
            OrderStatus::Refunded => (self.refunded, "refunded"),
        }
    }

    fn reason(&self, r: CancelReason) -> &'static str {
        match r {
            CancelReason::Expired => self.reason_expired,
            CancelReason::Buyer => self.reason_buyer,
            CancelReason::Organizer => self.reason_organizer,
            CancelReason::EventCanceled => self.reason_event,
            CancelReason::LatePayment => self.reason_late,
        }
    }

    fn fulfillment(&self, status: &str) -> &'static str {
        match status {
            "SHIPPED" => self.ship_shipped,
            "PICKED_UP" => self.ship_picked_up,
            _ => self.ship_pending,
        }
    }
}

/// An order as a page shows it.
pub struct OrderRow {
    id: String,
    event_id: String,
    title: String,
    status: &'static str,
    status_class: &'static str,
    reason: Option<&'static str>,
    pending: bool,
    total: String,
    shipping_fee: Option<String>,
    ordered_at: String,
    expires_iso: String,
    lines: Vec<LineRow>,
    address: Option<String>,
}

/// A line of an order.
pub struct LineRow {
    name: String,
    quantity: i32,
    price: String,
    seats: Vec<String>,
    preorder: bool,
    fulfillment: Option<String>,
}

fn row(lang: Lang, o: &OrderTexts, order: &OrderView, title: String) -> OrderRow {
    let (status, status_class) = o.status(order.status);
    let money = |m| format::money(lang, m, &order.currency);
    OrderRow {
        id: order.id.clone(),
        event_id: order.event_id.clone(),
        title,
        status,
        status_class,
        reason: order.cancel_reason.map(|r| o.reason(r)),
        pending: order.status == OrderStatus::Pending,
        total: money(order.total),
        shipping_fee: (order.shipping_fee.minor() > 0).then(|| money(order.shipping_fee)),
        ordered_at: format::datetime(lang, order.created_at, "Asia/Seoul"),
        expires_iso: format::iso(order.expires_at),
        lines: order
            .items
            .iter()
            .filter(|i| i.kind != LineKind::Shipping)
            .map(|i| LineRow {
                name: i.name.clone(),
                quantity: i.quantity,
                price: money(i.price),
                seats: i.seats.iter().map(|s| s.label.clone()).collect(),
                preorder: i.preorder,
                fulfillment: i.fulfillment.as_ref().map(|f| {
                    let mut text = o.fulfillment(&f.status).to_owned();
                    if let Some(c) = &f.carrier {
                        text.push_str(&format!(" · {}: {c}", o.carrier));
                    }
                    if let Some(n) = &f.tracking_number {
                        text.push_str(&format!(" · {}: {n}", o.tracking));
                    }
                    text
                }),
            })
            .collect(),
        address: order.shipping_address.as_ref().map(|a| {
            format!(
                "{} · {} · ({}) {}",
                a.recipient,
                a.phone,
                a.postcode,
                a.address_lines.join(" ")
            )
        }),
    }
}

/// The titles of the events of some orders, in one read of the events table (a buyer's orders
/// name their event even once it is a draft again or canceled).
async fn titles(
    state: &AppState,
    event_ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, String>, crate::error::AppError> {
    let ids: Vec<String> = event_ids.into_iter().collect();
    Ok(event_rows::Entity::find()
        .filter(event_rows::Column::Id.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.title))
        .collect())
}

async fn title_of(state: &AppState, event_id: &str) -> Result<String, crate::error::AppError> {
    Ok(titles(state, [event_id.to_owned()])
        .await?
        .remove(event_id)
        .unwrap_or_default())
}

#[derive(Template)]
#[template(path = "web/checkout.html")]
struct CheckoutPage {
    ctx: Ctx,
    o: &'static OrderTexts,
    order: OrderRow,
}

/// `GET /checkout/{id}`: pay a pending order with the test gateway.
pub async fn checkout(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> PageResult {
    let user = ctx.require_user()?.clone();
    let order = history::get(&state, &user.user_id, &id).await?;
    let o = OrderTexts::of(ctx.lang);
    let title = title_of(&state, &order.event_id).await?;
    render(&CheckoutPage {
        order: row(ctx.lang, o, &order, title),
        o,
        ctx,
    })
}

/// `?status=&cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "web/orders.html")]
struct OrdersPage {
    ctx: Ctx,
    o: &'static OrderTexts,
    orders: Vec<OrderRow>,
    filters: Vec<(&'static str, &'static str, bool)>,
    next: Option<String>,
}

/// `GET /account/orders`: the buyer's orders, newest first.
pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(params): Query<ListParams>,
) -> PageResult {
    let user = ctx.require_user()?.clone();
    let status = params
        .status
        .clone()
        .filter(|s| ["PENDING", "CONFIRMED", "CANCELED", "REFUNDED"].contains(&s.as_str()));
    let page = history::list(
        &state,
        &user.user_id,
        history::ListQuery {
            status: status.clone(),
            limit: Some(20),
            cursor: params.cursor.clone().filter(|c| !c.is_empty()),
        },
    )
    .await?;
    let o = OrderTexts::of(ctx.lang);
    let titles = titles(&state, page.items.iter().map(|o| o.event_id.clone())).await?;
    let orders = page
        .items
        .iter()
        .map(|order| {
            let title = titles.get(&order.event_id).cloned().unwrap_or_default();
            row(ctx.lang, o, order, title)
        })
        .collect();
    let current = status.as_deref().unwrap_or("");
    let filters = [
        ("", o.all),
        ("PENDING", o.pending),
        ("CONFIRMED", o.confirmed),
        ("CANCELED", o.canceled),
        ("REFUNDED", o.refunded),
    ]
    .into_iter()
    .map(|(value, label)| (value, label, value == current))
    .collect();
    let next = page.next_cursor.map(|c| {
        let mut url = format!("/account/orders?cursor={}", encode(&c));
        if !current.is_empty() {
            url.push_str(&format!("&status={current}"));
        }
        url
    });
    render(&OrdersPage {
        o,
        orders,
        filters,
        next,
        ctx,
    })
}

/// A ticket as the page shows it.
pub struct TicketRow {
    name: String,
    seat: Option<String>,
    code: String,
    qr: Option<String>,
    status: &'static str,
    status_class: &'static str,
}

/// The cancellation offer.
pub struct Quote {
    allowed: bool,
    fee: String,
    refund: String,
    why_not: Option<String>,
    refund_not_cancel: bool,
}

#[derive(Template)]
#[template(path = "web/order.html")]
struct OrderPage {
    ctx: Ctx,
    o: &'static OrderTexts,
    order: OrderRow,
    tickets: Vec<TicketRow>,
    quote: Option<Quote>,
    paid_now: bool,
}

/// `?paid=1` after the payment page.
#[derive(Debug, Default, Deserialize)]
pub struct OrderParams {
    paid: Option<String>,
}

/// `GET /account/orders/{id}`: one of the buyer's orders.
pub async fn detail(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(params): Query<OrderParams>,
) -> PageResult {
    let user = ctx.require_user()?.clone();
    let order = history::get(&state, &user.user_id, &id).await?;
    let o = OrderTexts::of(ctx.lang);
    let tickets = tickets::list_for_order(&state, &user, &id)
        .await?
        .into_iter()
        .map(|t| {
            let (status, status_class) = match t.status {
                TicketStatus::Valid => (o.valid, "ok"),
                TicketStatus::Used => (o.used, "pending"),
                TicketStatus::Void => (o.void, "bad"),
            };
            TicketRow {
                name: t.name,
                seat: t.seat_label,
                // An image, not inline markup: the QR is ours, but an <img> cannot run anything.
                qr: t
                    .qr_svg
                    .map(|svg| format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg))),
                code: t.code,
                status,
                status_class,
            }
        })
        .collect();
    let quote = match order.status {
        OrderStatus::Pending | OrderStatus::Confirmed => {
            let q = cancel::quote(&state, &user, &id).await?;
            Some(Quote {
                allowed: q.allowed,
                fee: format::money(ctx.lang, q.fee, &q.currency),
                refund: format::money(ctx.lang, q.refund_amount, &q.currency),
                why_not: q.reason_if_not_allowed,
                refund_not_cancel: order.status == OrderStatus::Confirmed,
            })
        }
        _ => None,
    };
    let title = title_of(&state, &order.event_id).await?;
    render(&OrderPage {
        order: row(ctx.lang, o, &order, title),
        o,
        tickets,
        quote,
        paid_now: params.paid.is_some() && order.status == OrderStatus::Confirmed,
        ctx,
    })
}
