//! The pay flow: start a payment, confirm (capture) it, and settle a capture — from the
//! buyer's confirmation or from a gateway callback, through the one function [`settle`].
//!
//! Gateways are called outside any database transaction (they may take seconds). Settling is
//! one write transaction whose conditional transition decides: the order becomes `CONFIRMED`
//! (stock sold, tickets issued, mail queued) or, if it ended meanwhile, the capture is recorded
//! as a `LATE_PAYMENT` refund and given back. Never a paid order left pending, never a
//! canceled order kept paid.

use axum::http::{HeaderMap, StatusCode};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::provider::{Captured, Charge, PaymentProvider, ProviderError, WebhookEvent};
use crate::{
    app::AppState,
    auth::{AuthUser, flows::audit_with_detail},
    catalog::model::EventStatus,
    catalog::money::Money,
    db::{
        self,
        entities::{audit_log, events, order_items, orders, payments, refunds, users},
    },
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        mail::Mail,
    },
    orders::{
        effects::{self, Stamp},
        hooks::{Lifecycle, OrderChange},
        model::{CancelReason, LineKind, OrderStatus},
        tickets,
        view::{self, OrderView},
    },
};

/// States of a `payments` row.
pub mod payment_status {
    /// `POST /orders/{id}/pay` was called; the buyer is with the gateway.
    pub const PREPARED: &str = "PREPARED";
    /// Captured, and the order was confirmed with it.
    pub const CAPTURED: &str = "CAPTURED";
    /// The gateway declined.
    pub const DECLINED: &str = "DECLINED";
    /// The gateway failed, timed out or refused the payload.
    pub const FAILED: &str = "FAILED";
    /// Captured after the order had ended (or twice): the money is being given back.
    pub const REFUNDED: &str = "REFUNDED";
}

/// `POST /orders/{id}/pay`: which gateway (the default when absent).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "test"}))]
pub struct PayBody {
    /// A configured provider (`test` by default).
    pub provider: Option<String>,
}

/// What the buyer's page needs to open the gateway.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"provider": "test", "client_params": {"order_id": "0190…", "amount": "55000.00", "currency": "KRW", "order_name": "스탠딩", "scenarios": ["SUCCESS", "DECLINE", "FAIL_AFTER_MS"]}, "amount": "55000.00", "currency": "KRW", "order_id": "0190…"}))]
pub struct PayView {
    /// The gateway.
    pub provider: String,
    /// Parameters for the gateway's client SDK (never secrets).
    pub client_params: Value,
    /// What will be captured.
    #[schema(value_type = String, example = "55000.00")]
    pub amount: Money,
    /// ISO 4217 currency.
    pub currency: String,
    /// The order.
    pub order_id: String,
}

/// `POST /orders/{id}/pay/confirm`: what the gateway handed back to the buyer's page.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider_payload": {"scenario": "SUCCESS"}}))]
pub struct ConfirmBody {
    /// The gateway's payload (Toss: `paymentKey`, `amount`; test: `scenario`).
    pub provider_payload: Value,
}

/// What a gateway callback did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookResult {
    /// The order was confirmed by this callback.
    Confirmed,
    /// The order had ended: the capture is being refunded.
    Refunded,
    /// A cancellation at the gateway of a paid order was recorded for people to look at.
    Noted,
    /// Nothing to do (a replay, an unknown order, an already settled capture).
    Unchanged,
}

/// The answer to a gateway callback.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// What happened.
    pub result: WebhookResult,
}

/// How settling a capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// This call confirmed the order.
    Paid,
    /// The order was already confirmed with this capture (a replay or a concurrent confirm).
    AlreadyPaid,
    /// The order had ended: this call recorded a `LATE_PAYMENT` refund of the capture.
    Refunded,
    /// The order had ended and this capture's refund was already recorded.
    AlreadyRefunded,
    /// A second capture of a paid order, or one of the wrong amount: given back at once.
    Stray,
}

/// 409 `order_expired`.
fn expired() -> AppError {
    AppError::conflict(
        "order_expired",
        "This order's hold has ended and its stock was released; place a new order.",
    )
}

/// A gateway failure as an API error; the gateway's own text is logged, never shown.
fn gateway_error(error: &ProviderError) -> AppError {
    match error {
        ProviderError::Declined(_) => AppError::conflict(
            "payment_declined",
            "The payment was declined. The order is still held: try again or use another method.",
        ),
        ProviderError::Invalid(_) => AppError::invalid_field(
            "provider_payload",
            "invalid",
            "was not accepted by the payment provider",
        ),
        ProviderError::Unavailable(_) => AppError::new(
            StatusCode::BAD_GATEWAY,
            "payment_unavailable",
            "The payment provider did not answer. Nothing was charged by us; try again shortly.",
        ),
    }
}

/// The gateway's short order name: the first line, then "외 N건" for the others.
pub fn order_name(lines: &[order_items::Model]) -> String {
    let goods: Vec<&order_items::Model> = lines
        .iter()
        .filter(|l| LineKind::from_db(&l.kind) != LineKind::Shipping)
        .collect();
    match goods.as_slice() {
        [] => "주문".to_owned(),
        [only] => only.name.clone(),
        [first, rest @ ..] => format!("{} 외 {}건", first.name, rest.len()),
    }
}

async fn charge_of<C: ConnectionTrait>(conn: &C, order: &orders::Model) -> AppResult<Charge> {
    let lines = view::lines_of(conn, &order.id).await?;
    Ok(Charge {
        order_id: order.id.clone(),
        amount: Money::from_minor(order.total),
        currency: order.currency.clone(),
        order_name: order_name(&lines),
    })
}

/// Whether a payment may start: pending and still held; a canceled or lapsed order is
/// `order_expired`; anything else is the state machine's `invalid_transition`.
fn payable(order: &orders::Model, now: OffsetDateTime) -> AppResult<()> {
    match OrderStatus::from_db(&order.status) {
        OrderStatus::Pending if from_db(order.expires_at) > now => Ok(()),
        OrderStatus::Pending | OrderStatus::Canceled => Err(expired()),
        status => status.check(OrderStatus::Confirmed),
    }
}

/// Starts a payment of the caller's pending order with a gateway and records it (`PREPARED`).
pub async fn pay(
    state: &AppState,
    user: &AuthUser,
    order_id: &str,
    body: PayBody,
) -> AppResult<PayView> {
    let provider = match body.provider.as_deref() {
        None => state.payments.default_provider(),
        Some(name) => state.payments.get(name).ok_or_else(|| {
            AppError::invalid_field("provider", "unknown_provider", "is not a payment provider")
        })?,
    };
    let order = crate::orders::history::own_order(state, &user.user_id, order_id).await?;
    payable(&order, state.clock.now())?;
    let charge = charge_of(&state.db, &order).await?;
    let prepared = provider.prepare(&charge).await.map_err(|e| {
        tracing::warn!(provider = provider.name(), order_id, error = %e, "payment prepare failed");
        gateway_error(&e)
    })?;
    let now = state.clock.now();
    payments::Entity::insert(payments::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        order_id: Set(order.id.clone()),
        event_id: Set(order.event_id.clone()),
        provider: Set(provider.name().to_owned()),
        amount: Set(order.total),
        status: Set(payment_status::PREPARED.to_owned()),
        provider_ref: Set(None),
        failure_code: Set(None),
        created_at: Set(to_db(now)),
        updated_at: Set(to_db(now)),
    })
    .exec_without_returning(&state.db)
    .await?;
    Ok(PayView {
        provider: provider.name().to_owned(),
        client_params: prepared.client_params,
        amount: charge.amount,
        currency: order.currency,
        order_id: order.id,
    })
}

/// The gateway of an order's latest payment attempt, or the default one.
async fn provider_of(
    state: &AppState,
    order_id: &str,
) -> AppResult<std::sync::Arc<dyn PaymentProvider>> {
    let latest = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .order_by_desc(payments::Column::CreatedAt)
        .order_by_desc(payments::Column::Id)
        .one(&state.db)
        .await?;
    Ok(latest
        .and_then(|p| state.payments.get(&p.provider))
        .unwrap_or_else(|| state.payments.default_provider()))
}

/// Confirms (captures) the payment of the caller's order and settles it. Idempotent by order:
/// an order already confirmed with this gateway is answered again, never captured twice.
pub async fn confirm(
    state: &AppState,
    user: &AuthUser,
    order_id: &str,
    body: ConfirmBody,
) -> AppResult<OrderView> {
    let order = crate::orders::history::own_order(state, &user.user_id, order_id).await?;
    let provider = provider_of(state, &order.id).await?;
    if OrderStatus::from_db(&order.status) == OrderStatus::Confirmed
        && order.payment_provider.as_deref() == Some(provider.name())
    {
        return current_view(state, &order.id).await;
    }
    // An order already known to be over is not captured at all (nothing to give back); one
    // that ends while the gateway works is settled as a late payment below.
    payable(&order, state.clock.now())?;
    if !body.provider_payload.is_object() {
        return Err(AppError::invalid_field(
            "provider_payload",
            "invalid",
            "must be an object",
        ));
    }
    let charge = charge_of(&state.db, &order).await?;
    // Outside any transaction: a gateway may take seconds.
    let capture = match provider.confirm(&charge, &body.provider_payload).await {
        Ok(capture) => capture,
        Err(e) => {
            tracing::warn!(provider = provider.name(), order_id, error = %e, "payment confirm failed");
            let result = match e {
                ProviderError::Declined(_) => "declined",
                ProviderError::Invalid(_) => "invalid",
                ProviderError::Unavailable(_) => "unavailable",
            };
            metrics::counter!("boxoffice_payments_total", "result" => result).increment(1);
            record_failure(state, &order, provider.name(), &e).await?;
            return Err(gateway_error(&e));
        }
    };
    match settle(
        state,
        &order.id,
        provider.name(),
        &capture,
        Some(&user.user_id),
    )
    .await?
    {
        Settlement::Paid | Settlement::AlreadyPaid => current_view(state, &order.id).await,
        Settlement::Refunded | Settlement::AlreadyRefunded => Err(expired()),
        Settlement::Stray => {
            let view = current_view(state, &order.id).await?;
            if view.status == OrderStatus::Confirmed {
                Ok(view)
            } else {
                Err(AppError::invalid_field(
                    "provider_payload",
                    "amount_mismatch",
                    "the captured amount does not match the order; it was refunded",
                ))
            }
        }
    }
}

async fn current_view(state: &AppState, order_id: &str) -> AppResult<OrderView> {
    view::load(&state.db, order_id)
        .await?
        .ok_or_else(AppError::not_found)
}

/// Records a failed attempt on the latest prepared payment row (or a new one).
async fn record_failure(
    state: &AppState,
    order: &orders::Model,
    provider: &str,
    error: &ProviderError,
) -> AppResult<()> {
    let (status, code) = match error {
        ProviderError::Declined(_) => (payment_status::DECLINED, "declined"),
        ProviderError::Invalid(_) => (payment_status::FAILED, "invalid_payload"),
        ProviderError::Unavailable(_) => (payment_status::FAILED, "unavailable"),
    };
    let now = state.clock.now();
    let (order, provider) = (order.clone(), provider.to_owned());
    db::write_tx(&state.db, |tx| {
        let (order, provider) = (order.clone(), provider.clone());
        Box::pin(async move {
            let attempt = Attempt {
                provider: &provider,
                status,
                provider_ref: None,
                amount: order.total,
                failure_code: Some(code),
            };
            mark_payment(tx, &order, &attempt, now).await
        })
    })
    .await
}

/// One outcome of a payment attempt, for the `payments` table.
struct Attempt<'a> {
    provider: &'a str,
    status: &'static str,
    provider_ref: Option<&'a str>,
    amount: i64,
    failure_code: Option<&'static str>,
}

/// Updates the latest `PREPARED` row of this order and gateway, or inserts one when the buyer
/// (or a callback) came without `POST /pay`.
async fn mark_payment<C: ConnectionTrait>(
    conn: &C,
    order: &orders::Model,
    attempt: &Attempt<'_>,
    now: OffsetDateTime,
) -> AppResult<()> {
    let prepared = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order.id.clone()))
        .filter(payments::Column::Provider.eq(attempt.provider))
        .filter(payments::Column::Status.eq(payment_status::PREPARED))
        .order_by_desc(payments::Column::CreatedAt)
        .order_by_desc(payments::Column::Id)
        .one(conn)
        .await?;
    match prepared {
        Some(row) => {
            // By id, without reading the row back (one round trip, not two).
            payments::Entity::update_many()
                .col_expr(payments::Column::Status, Expr::value(attempt.status))
                .col_expr(
                    payments::Column::ProviderRef,
                    Expr::value(attempt.provider_ref.map(str::to_owned)),
                )
                .col_expr(payments::Column::Amount, Expr::value(attempt.amount))
                .col_expr(
                    payments::Column::FailureCode,
                    Expr::value(attempt.failure_code.map(str::to_owned)),
                )
                .col_expr(payments::Column::UpdatedAt, Expr::value(to_db(now)))
                .filter(payments::Column::Id.eq(row.id))
                .exec(conn)
                .await?;
        }
        None => {
            payments::Entity::insert(payments::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                order_id: Set(order.id.clone()),
                event_id: Set(order.event_id.clone()),
                provider: Set(attempt.provider.to_owned()),
                amount: Set(attempt.amount),
                status: Set(attempt.status.to_owned()),
                provider_ref: Set(attempt.provider_ref.map(str::to_owned)),
                failure_code: Set(attempt.failure_code.map(str::to_owned)),
                created_at: Set(to_db(now)),
                updated_at: Set(to_db(now)),
            })
            .exec_without_returning(conn)
            .await?;
        }
    }
    Ok(())
}

/// What the settling transaction decided; the gateway is called after its commit.
enum Decision {
    Paid(OrderChange),
    AlreadyPaid,
    Refund(refunds::Model),
    AlreadyRefunded,
    Stray { reason: &'static str },
}

/// Settles a capture: confirms the order if it is still pending and held, otherwise gives the
/// money back. The one code path for `POST /pay/confirm` and gateway callbacks. `actor` is the
/// buyer (absent for callbacks).
pub async fn settle(
    state: &AppState,
    order_id: &str,
    provider: &str,
    capture: &Captured,
    actor: Option<&str>,
) -> AppResult<Settlement> {
    // Read after the gateway answered: the hold must still run when we commit.
    let now = state.clock.now();
    let decision = db::write_tx(&state.db, |tx| {
        let (state, order_id, provider, capture, actor) = (
            state.clone(),
            order_id.to_owned(),
            provider.to_owned(),
            capture.clone(),
            actor.map(str::to_owned),
        );
        Box::pin(async move {
            decide(
                tx,
                &state,
                &order_id,
                &provider,
                &capture,
                actor.as_deref(),
                now,
            )
            .await
        })
    })
    .await?;
    Ok(match decision {
        Decision::Paid(change) => {
            metrics::counter!("boxoffice_orders_total", "result" => "paid").increment(1);
            state.mail_wake.notify_one();
            state.order_hooks.announce(state, &[change]).await;
            Settlement::Paid
        }
        Decision::AlreadyPaid => Settlement::AlreadyPaid,
        Decision::Refund(row) => {
            metrics::counter!("boxoffice_payments_total", "result" => "late_refunded").increment(1);
            crate::orders::refunds::attempt(state, &row.id).await?;
            Settlement::Refunded
        }
        Decision::AlreadyRefunded => Settlement::AlreadyRefunded,
        Decision::Stray { reason } => {
            metrics::counter!("boxoffice_payments_total", "result" => "stray_refunded")
                .increment(1);
            refund_stray(state, order_id, provider, capture, reason).await;
            Settlement::Stray
        }
    })
}

async fn decide(
    tx: &DatabaseTransaction,
    state: &AppState,
    order_id: &str,
    provider: &str,
    capture: &Captured,
    actor: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<Decision> {
    let order = orders::Entity::find_by_id(order_id.to_owned())
        .one(tx)
        .await?
        .ok_or_else(AppError::not_found)?;
    if order.payment_ref.as_deref() == Some(capture.provider_ref.as_str()) {
        // This capture already paid the order (which may have been refunded since).
        return Ok(Decision::AlreadyPaid);
    }
    if capture.amount.minor() != order.total {
        audit_with_detail(
            tx,
            now,
            actor,
            "payment.stray_capture",
            "order",
            Some(order_id),
            None,
            Some(
                json!({"provider": provider, "provider_ref": capture.provider_ref,
                        "amount": capture.amount, "reason": "amount_mismatch"}),
            ),
        )
        .await?;
        return Ok(Decision::Stray {
            reason: "amount_mismatch",
        });
    }
    // A canceled event sells nothing more, even to a buyer whose checkout raced the
    // cancellation (checkout reads the catalog from a cache cleared by pub/sub).
    let event = events::Entity::find_by_id(order.event_id.clone())
        .one(tx)
        .await?;
    let event_canceled = event
        .as_ref()
        .is_none_or(|e| EventStatus::from_db(&e.status) == EventStatus::Canceled);
    if event_canceled {
        return late(tx, &order, provider, capture, actor, now).await;
    }
    let moved = effects::transition(
        tx,
        order_id,
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        Stamp {
            payment: Some((
                provider.to_owned(),
                capture.provider_ref.clone(),
                capture.amount.minor(),
            )),
            only_if_unexpired: true,
            ..Stamp::default()
        },
        now,
    )
    .await?;
    if moved {
        let title = event.map(|e| e.title).unwrap_or_default();
        return confirmed(tx, state, &order, &title, provider, capture, actor, now).await;
    }
    // Someone else moved it first (read again: on MariaDB our first read may be stale).
    let current = orders::Entity::find_by_id(order_id.to_owned())
        .one(tx)
        .await?
        .ok_or_else(AppError::not_found)?;
    if current.payment_ref.as_deref() == Some(capture.provider_ref.as_str()) {
        return Ok(Decision::AlreadyPaid);
    }
    if OrderStatus::from_db(&current.status) == OrderStatus::Confirmed {
        audit_with_detail(
            tx,
            now,
            actor,
            "payment.stray_capture",
            "order",
            Some(order_id),
            None,
            Some(
                json!({"provider": provider, "provider_ref": capture.provider_ref,
                        "amount": capture.amount, "reason": "already_paid"}),
            ),
        )
        .await?;
        return Ok(Decision::Stray {
            reason: "already_paid",
        });
    }
    late(tx, &current, provider, capture, actor, now).await
}

/// The order moved to `CONFIRMED` in this transaction: sell its holds, issue its tickets,
/// record the capture, queue the confirmation mail and audit it.
#[allow(clippy::too_many_arguments)]
async fn confirmed(
    tx: &DatabaseTransaction,
    state: &AppState,
    order: &orders::Model,
    event_title: &str,
    provider: &str,
    capture: &Captured,
    actor: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<Decision> {
    let lines = view::lines_of(tx, &order.id).await?;
    effects::sell(tx, order, lines.iter().any(|l| l.seats.is_some()), now).await?;
    let issued = tickets::issue(tx, state.rng.as_ref(), order, &lines, now).await?;
    mark_payment(
        tx,
        order,
        &Attempt {
            provider,
            status: payment_status::CAPTURED,
            provider_ref: Some(&capture.provider_ref),
            amount: capture.amount.minor(),
            failure_code: None,
        },
        now,
    )
    .await?;
    queue_confirmation(tx, state, order, event_title, &lines, now).await?;
    audit_with_detail(
        tx,
        now,
        actor,
        "order.paid",
        "order",
        Some(&order.id),
        None,
        Some(
            json!({"provider": provider, "provider_ref": capture.provider_ref,
                    "amount": capture.amount, "tickets": issued,
                    "via": if actor.is_some() { "confirm" } else { "webhook" }}),
        ),
    )
    .await?;
    Ok(Decision::Paid(OrderChange {
        what: Lifecycle::Paid,
        order_id: order.id.clone(),
        event_id: order.event_id.clone(),
        user_id: order.user_id.clone(),
        status: OrderStatus::Confirmed,
    }))
}

/// The confirmation mail (buyer's language): the lines, the total and the order's page.
async fn queue_confirmation(
    tx: &DatabaseTransaction,
    state: &AppState,
    order: &orders::Model,
    event_title: &str,
    lines: &[order_items::Model],
    now: OffsetDateTime,
) -> AppResult<()> {
    let Some(user) = users::Entity::find_by_id(order.user_id.clone())
        .one(tx)
        .await?
        .filter(|u| u.deleted_at.is_none())
    else {
        return Ok(());
    };
    let currency = &order.currency;
    let summary = lines
        .iter()
        .map(|l| match LineKind::from_db(&l.kind) {
            LineKind::Shipping => {
                format!("{} — {} {currency}", l.name, Money::from_minor(l.price))
            }
            _ => format!(
                "{} × {} — {} {currency}",
                l.name,
                l.quantity,
                Money::from_minor(l.price)
            ),
        })
        .collect();
    let mail = Mail::OrderConfirmed {
        name: user.name.clone().unwrap_or_default(),
        event_title: event_title.to_owned(),
        order_id: order.id.clone(),
        lines: summary,
        total: format!("{} {currency}", Money::from_minor(order.total)),
        url: format!(
            "{}/account/orders/{}",
            state.config.public_url.as_str().trim_end_matches('/'),
            order.id
        ),
    };
    crate::auth::flows::mail_user(tx, now, &user, &mail).await
}

/// The order had ended before this capture could confirm it: record a `LATE_PAYMENT` refund
/// (one per order, by its unique index) to be sent after the commit.
async fn late(
    tx: &DatabaseTransaction,
    order: &orders::Model,
    provider: &str,
    capture: &Captured,
    actor: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<Decision> {
    let inserted = crate::orders::refunds::insert(
        tx,
        crate::orders::refunds::NewRefund {
            order_id: &order.id,
            event_id: &order.event_id,
            provider: Some(provider),
            provider_ref: Some(&capture.provider_ref),
            amount: capture.amount,
            fee: Money::from_minor(0),
            reason: CancelReason::LatePayment,
            status: crate::orders::refunds::status::PENDING,
            error: None,
        },
        now,
    )
    .await?;
    let Some(id) = inserted else {
        let existing = refunds::Entity::find()
            .filter(refunds::Column::OrderId.eq(order.id.clone()))
            .one(tx)
            .await?;
        if existing.and_then(|r| r.provider_ref).as_deref() == Some(capture.provider_ref.as_str()) {
            return Ok(Decision::AlreadyRefunded);
        }
        audit_with_detail(
            tx,
            now,
            actor,
            "payment.stray_capture",
            "order",
            Some(&order.id),
            None,
            Some(
                json!({"provider": provider, "provider_ref": capture.provider_ref,
                        "amount": capture.amount, "reason": "refund_exists"}),
            ),
        )
        .await?;
        return Ok(Decision::Stray {
            reason: "refund_exists",
        });
    };
    mark_payment(
        tx,
        order,
        &Attempt {
            provider,
            status: payment_status::REFUNDED,
            provider_ref: Some(&capture.provider_ref),
            amount: capture.amount.minor(),
            failure_code: Some("late_payment"),
        },
        now,
    )
    .await?;
    audit_with_detail(
        tx,
        now,
        actor,
        "order.late_payment_refund",
        "order",
        Some(&order.id),
        None,
        Some(
            json!({"provider": provider, "provider_ref": capture.provider_ref,
                    "amount": capture.amount, "status": order.status, "refund_id": id}),
        ),
    )
    .await?;
    Ok(refunds::Entity::find_by_id(id)
        .one(tx)
        .await?
        .map_or(Decision::AlreadyRefunded, Decision::Refund))
}

/// Gives back a capture that must not count (a second capture of a paid order, or one of
/// the wrong amount). The order's one refund row is not used for it; a failure is logged
/// loudly for people to finish at the gateway.
async fn refund_stray(
    state: &AppState,
    order_id: &str,
    provider: &str,
    capture: &Captured,
    reason: &str,
) {
    let Some(gateway) = state.payments.get(provider) else {
        return;
    };
    let key = format!("stray-{}", capture.provider_ref);
    match gateway
        .refund(&capture.provider_ref, capture.amount, &key)
        .await
    {
        Ok(_) => tracing::warn!(order_id, provider, reason, "stray capture refunded"),
        Err(e) => tracing::error!(order_id, provider, reason, error = %e,
            "stray capture could not be refunded; refund it at the gateway"),
    }
}

/// Handles a gateway callback: checks its signature, then settles a capture exactly as a
/// confirmation does, or notes a cancellation made at the gateway. Replays change nothing.
pub async fn webhook(
    state: &AppState,
    provider_name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> AppResult<WebhookAck> {
    let provider = state
        .payments
        .get(provider_name)
        .ok_or_else(AppError::not_found)?;
    let event = provider.parse_webhook(headers, body).map_err(|e| {
        tracing::warn!(provider = provider_name, error = %e, "webhook refused");
        AppError::bad_request(
            "invalid_signature",
            "The callback's signature does not verify.",
        )
    })?;
    let result = match event {
        WebhookEvent::Captured { order_id, capture } => {
            let known = orders::Entity::find_by_id(order_id.clone())
                .one(&state.db)
                .await?
                .is_some();
            if !known {
                tracing::warn!(
                    provider = provider_name,
                    order_id,
                    "capture for an unknown order"
                );
                WebhookResult::Unchanged
            } else {
                match settle(state, &order_id, provider.name(), &capture, None).await? {
                    Settlement::Paid => WebhookResult::Confirmed,
                    Settlement::Refunded | Settlement::Stray => WebhookResult::Refunded,
                    Settlement::AlreadyPaid | Settlement::AlreadyRefunded => {
                        WebhookResult::Unchanged
                    }
                }
            }
        }
        WebhookEvent::Canceled {
            order_id,
            provider_ref,
        } => canceled_at_gateway(state, provider.name(), &order_id, &provider_ref).await?,
    };
    Ok(WebhookAck { result })
}

/// A paid order's payment was canceled at the gateway (by its console or a dispute): we do
/// not refund again or change the order; people look at the audit entry (written once).
async fn canceled_at_gateway(
    state: &AppState,
    provider: &str,
    order_id: &str,
    provider_ref: &str,
) -> AppResult<WebhookResult> {
    let Some(order) = orders::Entity::find_by_id(order_id.to_owned())
        .one(&state.db)
        .await?
    else {
        return Ok(WebhookResult::Unchanged);
    };
    let paid_here = OrderStatus::from_db(&order.status) == OrderStatus::Confirmed
        && order.payment_ref.as_deref() == Some(provider_ref);
    if !paid_here {
        tracing::info!(
            provider,
            order_id,
            "gateway cancellation of an order not paid with it; ignored"
        );
        return Ok(WebhookResult::Unchanged);
    }
    const ACTION: &str = "payment.canceled_at_gateway";
    let now = state.clock.now();
    let (order_id, provider, provider_ref) = (
        order_id.to_owned(),
        provider.to_owned(),
        provider_ref.to_owned(),
    );
    let noted = db::write_tx(&state.db, |tx| {
        let (order_id, provider, provider_ref) =
            (order_id.clone(), provider.clone(), provider_ref.clone());
        Box::pin(async move {
            let seen = audit_log::Entity::find()
                .filter(audit_log::Column::Action.eq(ACTION))
                .filter(audit_log::Column::TargetId.eq(order_id.clone()))
                .one(tx)
                .await?
                .is_some();
            if seen {
                return Ok(false);
            }
            audit_with_detail(
                tx,
                now,
                None,
                ACTION,
                "order",
                Some(&order_id),
                None,
                Some(json!({"provider": provider, "provider_ref": provider_ref})),
            )
            .await?;
            Ok(true)
        })
    })
    .await?;
    if noted {
        tracing::warn!(order_id = %order_id, "a paid order's payment was canceled at the gateway; check it");
        Ok(WebhookResult::Noted)
    } else {
        Ok(WebhookResult::Unchanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, name: &str) -> order_items::Model {
        order_items::Model {
            id: name.into(),
            order_id: "o".into(),
            event_id: "e".into(),
            position: 0,
            kind: kind.into(),
            product_id: None,
            variant_id: None,
            performance_id: None,
            shipping_option_id: None,
            name: name.into(),
            quantity: 1,
            unit_price: 0,
            price: 0,
            preorder: false,
            seats: None,
            fulfillment: None,
            carrier: None,
            tracking_number: None,
            fulfilled_at: None,
        }
    }

    #[test]
    fn the_order_name_counts_the_other_lines_but_not_shipping() {
        assert_eq!(order_name(&[line("TICKET", "R석")]), "R석");
        assert_eq!(
            order_name(&[
                line("TICKET", "R석"),
                line("MERCH", "응원봉"),
                line("PACKAGE", "VIP"),
                line("SHIPPING", "택배")
            ]),
            "R석 외 2건"
        );
        assert_eq!(order_name(&[]), "주문");
    }

    #[test]
    fn gateway_errors_keep_the_gateway_text_out_of_the_answer() {
        let e = gateway_error(&ProviderError::Unavailable("secret host 10.0.0.1".into()));
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::BAD_GATEWAY, "payment_unavailable")
        );
        assert!(!e.to_string().contains("10.0.0.1"));
        assert_eq!(
            gateway_error(&ProviderError::Declined("x".into())).code(),
            "payment_declined"
        );
        assert_eq!(
            gateway_error(&ProviderError::Invalid("x".into())).code(),
            "validation_failed"
        );
    }
}
