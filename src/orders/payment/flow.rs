//! The pay flow: start a payment, confirm (capture) it, and settle a capture — from the
//! buyer's confirmation or from a gateway callback, through the one function [`settle`].
//!
//! Gateways are called outside any database transaction (they may take seconds). Settling is
//! one write transaction whose conditional transition decides: the order becomes `CONFIRMED`
//! (stock sold, tickets issued, mail queued) or, if it ended meanwhile, the capture is recorded
//! as a `LATE_PAYMENT` refund and given back. Never a paid order left pending, never a
//! canceled order kept paid.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, QueryFilter, QueryOrder, Set, Statement, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::provider::{Captured, Charge, ProviderError, WebhookEvent};
use crate::{
    app::AppState,
    auth::{AuthUser, flows::audit_with_detail},
    catalog::money::Money,
    db::{
        self,
        entities::{audit_log, order_items, orders, payments, refunds},
    },
    error::{AppError, AppResult},
    infra::{
        batch::{FlushFuture, all_unavailable},
        clock::{from_db, to_db, truncate_micros},
        mail::{Mail, MailLocale},
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

fn charge(order: &orders::Model, lines: &[order_items::Model]) -> Charge {
    Charge {
        order_id: order.id.clone(),
        amount: Money::from_minor(order.total),
        currency: order.currency.clone(),
        order_name: order_name(lines),
    }
}

/// Everything settling a capture needs, read in one query before the gateway is called, so
/// the settling transaction of an ordinary purchase only writes: the order, its lines, the
/// buyer (for the mail), the event's title and the order's latest payment attempt.
#[derive(Clone, Debug)]
pub struct Paying {
    /// The order as it was before the gateway was called.
    pub order: orders::Model,
    /// Its lines, in position order.
    pub lines: Vec<order_items::Model>,
    /// The latest payment attempt: id, provider, status.
    latest_payment: Option<(String, String, String)>,
    /// The buyer's address, name and language, unless the account was deleted.
    buyer: Option<(String, Option<String>, String)>,
    /// The event's title (for the mail).
    event_title: String,
}

impl Paying {
    /// Reads an order with what settling it needs (`None`: no such order).
    pub async fn load<C: ConnectionTrait>(conn: &C, order_id: &str) -> AppResult<Option<Self>> {
        Ok(Self::load_many(conn, &[order_id]).await?.remove(order_id))
    }

    /// Reads orders with what settling them needs, by order id, in one query: one row per
    /// line, each carrying its order (an order always has a line).
    pub async fn load_many<C: ConnectionTrait>(
        conn: &C,
        order_ids: &[&str],
    ) -> AppResult<HashMap<String, Self>> {
        let mut found: HashMap<String, Self> = HashMap::new();
        if order_ids.is_empty() {
            return Ok(found);
        }
        let ids = db::padded(effects::values(order_ids.iter().copied()));
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                conn.get_database_backend(),
                format!(
                    "SELECT o.*, {line_columns}, u.email AS buyer_email, u.name AS buyer_name, \
                     u.locale AS buyer_locale, u.deleted_at AS buyer_deleted_at, \
                     e.title AS event_title, p.id AS latest_payment_id, \
                     p.provider AS latest_payment_provider, p.status AS latest_payment_status \
                     FROM orders o \
                     JOIN order_items i ON i.order_id = o.id \
                     LEFT JOIN users u ON u.id = o.user_id \
                     LEFT JOIN events e ON e.id = o.event_id \
                     LEFT JOIN payments p ON p.id = (SELECT q.id FROM payments q \
                       WHERE q.order_id = o.id ORDER BY q.created_at DESC, q.id DESC LIMIT 1) \
                     WHERE o.id IN ({marks}) ORDER BY o.id, i.position",
                    line_columns = line_columns(),
                    marks = vec!["?"; ids.len()].join(", ")
                ),
                ids,
            ))
            .await?;
        for row in &rows {
            let line = order_items::Model::from_query_result(row, LINE)?;
            if let Some(paying) = found.get_mut(&line.order_id) {
                paying.lines.push(line);
                continue;
            }
            let order = orders::Model::from_query_result(row, "")?;
            let text = |column: &str| row.try_get::<Option<String>>("", column);
            let latest_payment = match (
                text("latest_payment_id")?,
                text("latest_payment_provider")?,
                text("latest_payment_status")?,
            ) {
                (Some(id), Some(provider), Some(status)) => Some((id, provider, status)),
                _ => None,
            };
            let deleted: Option<time::PrimitiveDateTime> = row.try_get("", "buyer_deleted_at")?;
            let buyer = match (text("buyer_email")?, text("buyer_locale")?) {
                (Some(email), Some(locale)) if deleted.is_none() => {
                    Some((email, text("buyer_name")?, locale))
                }
                _ => None,
            };
            let event_title = text("event_title")?.unwrap_or_default();
            found.insert(
                order.id.clone(),
                Self {
                    order,
                    lines: vec![line],
                    latest_payment,
                    buyer,
                    event_title,
                },
            );
        }
        Ok(found)
    }

    /// Reads an order for its buyer through the read batcher (`None`: no such order, or not
    /// theirs).
    pub async fn load_own(state: &AppState, user_id: &str, order_id: &str) -> AppResult<Self> {
        state
            .order_batches
            .paying
            .run(PayingRead {
                state: state.clone(),
                order_id: order_id.to_owned(),
            })
            .await?
            .filter(|p| p.order.user_id == user_id)
            .ok_or_else(AppError::not_found)
    }

    /// The order as the settling transaction leaves it when it confirms it (no read-back).
    fn confirmed(&self, provider: &str, capture: &Captured, now: OffsetDateTime) -> orders::Model {
        let at = to_db(truncate_micros(now));
        orders::Model {
            status: OrderStatus::Confirmed.as_str().to_owned(),
            payment_provider: Some(provider.to_owned()),
            payment_ref: Some(capture.provider_ref.clone()),
            paid_amount: Some(capture.amount.minor()),
            confirmed_at: Some(at),
            updated_at: at,
            ..self.order.clone()
        }
    }

    /// The id of the latest attempt if it is a `PREPARED` one of `provider`.
    pub(super) fn prepared_with(&self, provider: &str) -> Option<&str> {
        self.latest_payment
            .as_ref()
            .filter(|(_, p, status)| p == provider && status == payment_status::PREPARED)
            .map(|(id, _, _)| id.as_str())
    }
}

/// Prefix of the line columns in [`Paying::load_many`]'s rows.
const LINE: &str = "line_";

/// `i.col AS line_col, …` for every `order_items` column.
fn line_columns() -> &'static str {
    static COLUMNS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        order_items::Column::iter()
            .map(|c| format!("i.{0} AS {LINE}{0}", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// An order to read for paying or confirming, with the reads arriving meanwhile.
pub struct PayingRead {
    /// The application (for its database).
    pub state: AppState,
    /// The order.
    pub order_id: String,
}

/// Reads a batch of orders in two queries (a crowd paying asks for thousands a second).
pub fn read_batch(reads: Vec<PayingRead>) -> FlushFuture<Option<Paying>> {
    Box::pin(async move {
        let Some(first) = reads.first() else {
            return Vec::new();
        };
        let ids: Vec<&str> = reads.iter().map(|r| r.order_id.as_str()).collect();
        match Paying::load_many(&first.state.db, &ids).await {
            Ok(found) => reads
                .iter()
                .map(|r| Ok(found.get(&r.order_id).cloned()))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "order read batch failed");
                all_unavailable(&e, reads.len()).unwrap_or_else(|| {
                    reads
                        .iter()
                        .map(|_| {
                            Err(AppError::internal(anyhow::anyhow!(
                                "order read batch failed"
                            )))
                        })
                        .collect()
                })
            }
        }
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
    let mut paying = Paying::load_own(state, &user.user_id, order_id).await?;
    let order = &paying.order;
    payable(order, state.clock.now())?;
    let charge = charge(order, &paying.lines);
    let prepared = provider.prepare(&charge).await.map_err(|e| {
        tracing::warn!(provider = provider.name(), order_id, error = %e, "payment prepare failed");
        gateway_error(&e)
    })?;
    let now = state.clock.now();
    let payment_id = uuid::Uuid::now_v7().to_string();
    state
        .order_batches
        .prepared
        .run(PreparedRow {
            state: state.clone(),
            row: payments::ActiveModel {
                id: Set(payment_id.clone()),
                order_id: Set(order.id.clone()),
                event_id: Set(order.event_id.clone()),
                provider: Set(provider.name().to_owned()),
                amount: Set(order.total),
                status: Set(payment_status::PREPARED.to_owned()),
                provider_ref: Set(None),
                failure_code: Set(None),
                created_at: Set(to_db(now)),
                updated_at: Set(to_db(now)),
            },
        })
        .await?;
    let view = PayView {
        provider: provider.name().to_owned(),
        client_params: prepared.client_params,
        amount: charge.amount,
        currency: order.currency.clone(),
        order_id: order.id.clone(),
    };
    paying.latest_payment = Some((
        payment_id,
        provider.name().to_owned(),
        payment_status::PREPARED.to_owned(),
    ));
    state.recent_payments.remember(paying);
    Ok(view)
}

/// A `PREPARED` payment row to insert with the others arriving meanwhile.
pub struct PreparedRow {
    /// The application (for its database).
    pub state: AppState,
    /// The row.
    pub row: payments::ActiveModel,
}

/// Inserts a batch of `PREPARED` rows with one statement; if it fails, each alone.
pub fn insert_prepared(rows: Vec<PreparedRow>) -> FlushFuture<()> {
    Box::pin(async move {
        let Some(first) = rows.first() else {
            return Vec::new();
        };
        let db = first.state.db.clone();
        let all: Vec<payments::ActiveModel> = rows.iter().map(|r| r.row.clone()).collect();
        if db::insert_all::<payments::Entity, _>(&db, all)
            .await
            .is_ok()
        {
            return rows.iter().map(|_| Ok(())).collect();
        }
        let mut results = Vec::with_capacity(rows.len());
        for r in rows {
            results.push(
                payments::Entity::insert(r.row)
                    .exec_without_returning(&db)
                    .await
                    .map(|_| ())
                    .map_err(AppError::from),
            );
        }
        results
    })
}

/// Confirms (captures) the payment of the caller's order and settles it. Idempotent by order:
/// an order already confirmed with this gateway is answered again, never captured twice.
pub async fn confirm(
    state: &AppState,
    user: &AuthUser,
    order_id: &str,
    body: ConfirmBody,
) -> AppResult<OrderView> {
    let paying = match state.recent_payments.take_own(&user.user_id, order_id) {
        Some(paying) => paying,
        None => Paying::load_own(state, &user.user_id, order_id).await?,
    };
    // The gateway of the latest attempt, or the default one.
    let provider = paying
        .latest_payment
        .as_ref()
        .and_then(|(_, name, _)| state.payments.get(name))
        .unwrap_or_else(|| state.payments.default_provider());
    let order = &paying.order;
    if OrderStatus::from_db(&order.status) == OrderStatus::Confirmed
        && order.payment_provider.as_deref() == Some(provider.name())
    {
        return Ok(view::present(paying.order, paying.lines));
    }
    // An order already known to be over is not captured at all (nothing to give back); one
    // that ends while the gateway works is settled as a late payment below.
    payable(order, state.clock.now())?;
    if !body.provider_payload.is_object() {
        return Err(AppError::invalid_field(
            "provider_payload",
            "invalid",
            "must be an object",
        ));
    }
    // Outside any transaction: a gateway may take seconds.
    let charge = charge(order, &paying.lines);
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
            record_failure(state, &paying, provider.name(), &e).await?;
            return Err(gateway_error(&e));
        }
    };
    // Read after the gateway answered: the hold must still run when we commit.
    let now = state.clock.now();
    match settle(
        state,
        &paying,
        provider.name(),
        &capture,
        Some(&user.user_id),
        now,
    )
    .await?
    {
        // Built from what the transaction wrote: nothing is read back.
        Settlement::Paid => Ok(view::present(
            paying.confirmed(provider.name(), &capture, now),
            paying.lines,
        )),
        Settlement::AlreadyPaid => current_view(state, order_id).await,
        Settlement::Refunded | Settlement::AlreadyRefunded => Err(expired()),
        Settlement::Stray => {
            let view = current_view(state, order_id).await?;
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
    paying: &Paying,
    provider: &str,
    error: &ProviderError,
) -> AppResult<()> {
    let (status, code) = match error {
        ProviderError::Declined(_) => (payment_status::DECLINED, "declined"),
        ProviderError::Invalid(_) => (payment_status::FAILED, "invalid_payload"),
        ProviderError::Unavailable(_) => (payment_status::FAILED, "unavailable"),
    };
    let now = state.clock.now();
    let order = &paying.order;
    let prepared = paying.prepared_with(provider);
    let attempt = Attempt {
        provider,
        status,
        provider_ref: None,
        amount: order.total,
        failure_code: Some(code),
    };
    // One statement: no transaction needed.
    mark_payment(&state.db, order, &attempt, prepared, now).await
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
/// (or a callback) came without `POST /pay`. `prepared` is that row's id when the caller read
/// it already (then it is updated without a lookup, if it is still `PREPARED`).
async fn mark_payment<C: ConnectionTrait>(
    conn: &C,
    order: &orders::Model,
    attempt: &Attempt<'_>,
    prepared: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<()> {
    if let Some(id) = prepared
        && update_payment(conn, id, attempt, now).await?
    {
        return Ok(());
    }
    let prepared = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order.id.clone()))
        .filter(payments::Column::Provider.eq(attempt.provider))
        .filter(payments::Column::Status.eq(payment_status::PREPARED))
        .order_by_desc(payments::Column::CreatedAt)
        .order_by_desc(payments::Column::Id)
        .one(conn)
        .await?;
    match prepared {
        Some(row) if update_payment(conn, &row.id, attempt, now).await? => {}
        _ => {
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

/// Sets the outcome on a `PREPARED` payment row by id (one statement, no read-back); false
/// when the row is no longer `PREPARED`.
async fn update_payment<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    attempt: &Attempt<'_>,
    now: OffsetDateTime,
) -> AppResult<bool> {
    let updated = payments::Entity::update_many()
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
        .filter(payments::Column::Id.eq(id))
        .filter(payments::Column::Status.eq(payment_status::PREPARED))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
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
/// buyer (absent for callbacks); `now` is read after the gateway answered.
pub async fn settle(
    state: &AppState,
    paying: &Paying,
    provider: &str,
    capture: &Captured,
    actor: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<Settlement> {
    let order_id = paying.order.id.as_str();
    // The ordinary capture (first of this order, right amount) goes with the others arriving
    // meanwhile; anything the batch cannot confirm is settled alone below.
    let ordinary = paying.order.payment_ref.as_deref() != Some(capture.provider_ref.as_str())
        && capture.amount.minor() == paying.order.total;
    let batched = if ordinary {
        state
            .order_batches
            .settle
            .run(super::settle_batch::Job {
                state: state.clone(),
                paying: paying.clone(),
                provider: provider.to_owned(),
                capture: capture.clone(),
                now,
            })
            .await?
    } else {
        None
    };
    let decision = match batched {
        Some(change) => Decision::Paid(change),
        None => {
            db::write_tx(&state.db, |tx| {
                let (state, paying, provider, capture, actor) = (
                    state.clone(),
                    paying.clone(),
                    provider.to_owned(),
                    capture.clone(),
                    actor.map(str::to_owned),
                );
                Box::pin(async move {
                    let settling = Settling {
                        state: &state,
                        paying: &paying,
                        provider: &provider,
                        capture: &capture,
                        actor: actor.as_deref(),
                        now,
                    };
                    settling.decide(tx).await
                })
            })
            .await?
        }
    };
    Ok(match decision {
        Decision::Paid(change) => {
            metrics::counter!("boxoffice_orders_total", "result" => "paid").increment(1);
            metrics::counter!("boxoffice_funnel_total", "event" => change.event_id.clone(), "stage" => "paid")
                .increment(1);
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

/// One capture being settled inside the settling transaction.
struct Settling<'a> {
    state: &'a AppState,
    paying: &'a Paying,
    provider: &'a str,
    capture: &'a Captured,
    actor: Option<&'a str>,
    now: OffsetDateTime,
}

impl Settling<'_> {
    /// An audit entry about this capture (strays and late payments only: an ordinary sale is
    /// recorded by its `payments` row and the order itself).
    async fn audit(
        &self,
        tx: &DatabaseTransaction,
        action: &str,
        extra: serde_json::Map<String, Value>,
    ) -> AppResult<()> {
        let mut detail = json!({"provider": self.provider,
            "provider_ref": self.capture.provider_ref, "amount": self.capture.amount});
        if let Some(map) = detail.as_object_mut() {
            map.extend(extra);
        }
        audit_with_detail(
            tx,
            self.now,
            self.actor,
            action,
            "order",
            Some(&self.paying.order.id),
            None,
            Some(detail),
        )
        .await
    }

    async fn stray(&self, tx: &DatabaseTransaction, reason: &'static str) -> AppResult<Decision> {
        let mut extra = serde_json::Map::new();
        extra.insert("reason".into(), reason.into());
        self.audit(tx, "payment.stray_capture", extra).await?;
        Ok(Decision::Stray { reason })
    }

    /// Ordinarily one conditional statement decides (pending, still held, event not canceled)
    /// and the rest only writes; anything else is looked at again inside the transaction.
    async fn decide(&self, tx: &DatabaseTransaction) -> AppResult<Decision> {
        let order = &self.paying.order;
        let reference = self.capture.provider_ref.as_str();
        if order.payment_ref.as_deref() == Some(reference) {
            // This capture already paid the order (which may have been refunded since).
            return Ok(Decision::AlreadyPaid);
        }
        if self.capture.amount.minor() != order.total {
            return self.stray(tx, "amount_mismatch").await;
        }
        let moved = effects::transition(
            tx,
            &order.id,
            OrderStatus::Pending,
            OrderStatus::Confirmed,
            Stamp {
                payment: Some((
                    self.provider.to_owned(),
                    reference.to_owned(),
                    self.capture.amount.minor(),
                )),
                only_if_unexpired: true,
                // A canceled event sells nothing more, even to a buyer whose checkout raced
                // the cancellation (checkout reads the catalog from a cache).
                unless_event_canceled: true,
                ..Stamp::default()
            },
            self.now,
        )
        .await?;
        if moved {
            return self.confirmed(tx).await;
        }
        // Someone else moved it first, it ran out, or its event was canceled (read again: the
        // first read was before the gateway call).
        let current = orders::Entity::find_by_id(order.id.clone())
            .one(tx)
            .await?
            .ok_or_else(AppError::not_found)?;
        if current.payment_ref.as_deref() == Some(reference) {
            return Ok(Decision::AlreadyPaid);
        }
        if OrderStatus::from_db(&current.status) == OrderStatus::Confirmed {
            return self.stray(tx, "already_paid").await;
        }
        self.late(tx, &current).await
    }

    /// The order moved to `CONFIRMED` in this transaction: sell its holds, issue its tickets,
    /// record the capture and queue the confirmation mail — writes only.
    async fn confirmed(&self, tx: &DatabaseTransaction) -> AppResult<Decision> {
        let (order, lines) = (&self.paying.order, &self.paying.lines);
        let has_seats = lines.iter().any(|l| l.seats.is_some());
        effects::sell(tx, &[order.id.as_str()], has_seats, self.now).await?;
        tickets::issue(tx, self.state.rng.as_ref(), &[(order, lines)], self.now).await?;
        mark_payment(
            tx,
            order,
            &Attempt {
                provider: self.provider,
                status: payment_status::CAPTURED,
                provider_ref: Some(&self.capture.provider_ref),
                amount: self.capture.amount.minor(),
                failure_code: None,
            },
            self.paying.prepared_with(self.provider),
            self.now,
        )
        .await?;
        self.queue_confirmation(tx).await?;
        Ok(Decision::Paid(OrderChange {
            what: Lifecycle::Paid,
            order_id: order.id.clone(),
            event_id: order.event_id.clone(),
            user_id: order.user_id.clone(),
            status: OrderStatus::Confirmed,
        }))
    }

    /// Queues the confirmation mail, unless the buyer's account is gone.
    async fn queue_confirmation(&self, tx: &DatabaseTransaction) -> AppResult<()> {
        let Some((email, locale, mail)) = confirmation_mail(self.state, self.paying) else {
            return Ok(());
        };
        crate::infra::mail::enqueue(tx, self.now, email, locale, &mail).await
    }

    async fn late(&self, tx: &DatabaseTransaction, order: &orders::Model) -> AppResult<Decision> {
        late(tx, order, self.provider, self.capture, self.actor, self.now).await
    }
}

/// The confirmation mail of a paid order (buyer's address and language; the lines, the total
/// and the order's page), unless the buyer's account is gone.
pub(super) fn confirmation_mail<'a>(
    state: &AppState,
    paying: &'a Paying,
) -> Option<(&'a str, MailLocale, Mail)> {
    let (email, name, locale) = paying.buyer.as_ref()?;
    let order = &paying.order;
    let currency = &order.currency;
    let summary = paying
        .lines
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
        name: name.clone().unwrap_or_default(),
        event_title: paying.event_title.clone(),
        order_id: order.id.clone(),
        lines: summary,
        total: format!("{} {currency}", Money::from_minor(order.total)),
        url: format!(
            "{}/account/orders/{}",
            state.config.public_url.as_str().trim_end_matches('/'),
            order.id
        ),
    };
    Some((email, MailLocale::from_tag(locale), mail))
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
        None,
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
            let paying = Paying::load(&state.db, &order_id).await?;
            if let Some(paying) = paying {
                let now = state.clock.now();
                match settle(state, &paying, provider.name(), &capture, None, now).await? {
                    Settlement::Paid => WebhookResult::Confirmed,
                    Settlement::Refunded | Settlement::Stray => WebhookResult::Refunded,
                    Settlement::AlreadyPaid | Settlement::AlreadyRefunded => {
                        WebhookResult::Unchanged
                    }
                }
            } else {
                tracing::warn!(
                    provider = provider_name,
                    order_id,
                    "capture for an unknown order"
                );
                WebhookResult::Unchanged
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
