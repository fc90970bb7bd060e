//! Cancellation: the policy math (a plain function), the buyer's quote and cancel, the
//! organizer's cancel, and the one routine every cancellation and refund goes through.
//! Whole orders only in this version.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    effects::{self, Stamp},
    fulfillment,
    hooks::{Lifecycle, OrderChange},
    model::{CancelReason, OrderStatus, movement},
    refunds, tickets,
    view::{self, OrderView},
};
use crate::{
    app::AppState,
    auth::{AuthUser, flows},
    catalog::{
        access::{self, Viewer},
        model::{CancelPolicy, text},
        money::{Currency, Money},
    },
    db::{
        self,
        entities::{events, order_items, orders, performances, users},
    },
    error::{AppError, AppResult},
    infra::{clock::from_db, mail::Mail},
};

/// Why a cancellation is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No tier of the cancel policy is left (409 `cancel_not_allowed`).
    NoTierLeft,
    /// Merchandise of the order was already shipped or picked up (409 `already_fulfilled`).
    AlreadyFulfilled,
    /// The order is already canceled or refunded (409 `invalid_transition`).
    Ended(OrderStatus),
}

impl Refusal {
    /// Its stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoTierLeft => "cancel_not_allowed",
            Self::AlreadyFulfilled => "already_fulfilled",
            Self::Ended(_) => "invalid_transition",
        }
    }

    /// As an API error.
    pub fn into_error(self) -> AppError {
        match self {
            Self::NoTierLeft => AppError::conflict(
                "cancel_not_allowed",
                "The cancel policy allows no cancellation this close to the start.",
            ),
            Self::AlreadyFulfilled => AppError::conflict(
                "already_fulfilled",
                "Merchandise of this order was already shipped or picked up.",
            ),
            Self::Ended(status) => status
                .check(OrderStatus::Canceled)
                .err()
                .unwrap_or_else(|| AppError::conflict("invalid_transition", "Order ended.")),
        }
    }
}

/// What canceling an order would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A pending order is canceled for free.
    Cancel,
    /// A confirmed order is refunded: `fee` kept, `refund` paid back.
    Refund {
        /// Kept.
        fee: Money,
        /// Paid back.
        refund: Money,
    },
    /// Not allowed.
    Refused(Refusal),
}

/// Everything the policy decision depends on.
#[derive(Clone, Debug)]
pub struct PolicyInput<'a> {
    /// The order's status.
    pub status: OrderStatus,
    /// The policy snapshotted on the order.
    pub policy: &'a CancelPolicy,
    /// What the buyer paid.
    pub total: Money,
    /// The shipping part of the total (never subject to the fee).
    pub shipping: Money,
    /// The order's currency.
    pub currency: &'a Currency,
    /// When the order's performance (or event) starts.
    pub starts_at: OffsetDateTime,
    /// Now.
    pub now: OffsetDateTime,
    /// Whether some merchandise of the order was shipped or picked up.
    pub fulfilled: bool,
}

/// The buyer's cancellation under the policy: pending orders cancel for free; confirmed ones
/// pay the fee of the first tier still reachable (percent of the total without shipping,
/// rounded down to the currency unit) and get the rest back.
pub fn decide(input: &PolicyInput<'_>) -> Decision {
    match input.status {
        OrderStatus::Pending => Decision::Cancel,
        OrderStatus::Confirmed => {
            if input.fulfilled {
                return Decision::Refused(Refusal::AlreadyFulfilled);
            }
            let hours_left = (input.starts_at - input.now).whole_hours();
            match input.policy.fee_percent(hours_left) {
                None => Decision::Refused(Refusal::NoTierLeft),
                Some(percent) => {
                    let base = Money::from_minor(
                        input.total.minor().saturating_sub(input.shipping.minor()),
                    );
                    let fee = base.percent(percent, input.currency).min(input.total);
                    Decision::Refund {
                        fee,
                        refund: Money::from_minor(input.total.minor() - fee.minor()),
                    }
                }
            }
        }
        ended => Decision::Refused(Refusal::Ended(ended)),
    }
}

/// `GET /orders/{id}/cancel-quote`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"allowed": true, "status_after": "REFUNDED", "fee": "5500.00", "refund_amount": "49500.00", "currency": "KRW", "reason_if_not_allowed": null}))]
pub struct CancelQuote {
    /// Whether `PUT /orders/{id}/cancel` would succeed now.
    pub allowed: bool,
    /// `CANCELED` (pending orders) or `REFUNDED` (confirmed orders).
    pub status_after: OrderStatus,
    /// The fee kept.
    #[schema(value_type = String, example = "5500.00")]
    pub fee: Money,
    /// What goes back to the buyer.
    #[schema(value_type = String, example = "49500.00")]
    pub refund_amount: Money,
    /// ISO 4217.
    pub currency: String,
    /// `cancel_not_allowed`, `already_fulfilled` or `invalid_transition` when not allowed.
    pub reason_if_not_allowed: Option<String>,
}

/// Body of `PUT /orders/{id}/cancel`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "일정이 맞지 않아요"}))]
pub struct BuyerCancelBody {
    /// Why (optional, at most 500 characters).
    pub reason: Option<String>,
}

/// Body of an organizer's cancel (`reason` required).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "중복 주문 정리"}))]
pub struct ReasonBody {
    /// Why (1..=500 characters).
    pub reason: String,
}

/// Validates an optional or required reason.
pub fn reason(raw: Option<&str>, required: bool) -> AppResult<Option<String>> {
    match raw {
        Some(r) if required || !r.trim().is_empty() => text("reason", r, 1, 500)
            .map(Some)
            .map_err(|e| AppError::validation(vec![e])),
        _ if required => Err(AppError::invalid_field(
            "reason",
            "required",
            "must not be empty",
        )),
        _ => Ok(None),
    }
}

/// An order with what the policy needs to know about it.
pub(crate) struct Loaded {
    /// The order row.
    pub order: orders::Model,
    /// Its lines.
    pub lines: Vec<order_items::Model>,
    /// When its performance (or event) starts.
    pub starts_at: OffsetDateTime,
}

/// Loads an order, its lines and its start (the earliest performance of its tickets, else the
/// event's start).
pub(crate) async fn load<C: ConnectionTrait>(conn: &C, order_id: &str) -> AppResult<Loaded> {
    let order = orders::Entity::find_by_id(order_id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    let lines = crate::orders::view::lines_of(conn, &order.id).await?;
    let performance_ids: Vec<String> = lines
        .iter()
        .filter_map(|l| l.performance_id.clone())
        .collect();
    let earliest = if performance_ids.is_empty() {
        None
    } else {
        performances::Entity::find()
            .filter(performances::Column::Id.is_in(performance_ids))
            .order_by_asc(performances::Column::StartAt)
            .one(conn)
            .await?
            .map(|p| from_db(p.start_at))
    };
    let starts_at = match earliest {
        Some(at) => at,
        None => events::Entity::find_by_id(order.event_id.clone())
            .one(conn)
            .await?
            .map(|e| from_db(e.start_at))
            .ok_or_else(AppError::not_found)?,
    };
    Ok(Loaded {
        order,
        lines,
        starts_at,
    })
}

impl Loaded {
    /// The buyer's decision at `now`.
    pub fn decide(&self, now: OffsetDateTime) -> Decision {
        let policy: CancelPolicy =
            serde_json::from_str(&self.order.cancel_policy).unwrap_or_default();
        let currency = Currency::parse(&self.order.currency).unwrap_or_else(|_| krw_fallback());
        decide(&PolicyInput {
            status: OrderStatus::from_db(&self.order.status),
            policy: &policy,
            total: Money::from_minor(self.order.total),
            shipping: Money::from_minor(self.order.shipping_fee),
            currency: &currency,
            starts_at: self.starts_at,
            now,
            fulfilled: self.lines.iter().any(fulfillment::is_done),
        })
    }
}

fn krw_fallback() -> Currency {
    // Stored currencies were validated on the event; this is never reached in practice.
    Currency::parse("KRW").unwrap_or_else(|_| unreachable!("KRW is a valid code"))
}

/// Loads the buyer's own order (someone else's is 404).
async fn own(state: &AppState, user: &AuthUser, order_id: &str) -> AppResult<Loaded> {
    let loaded = load(&state.db, order_id).await?;
    if loaded.order.user_id != user.user_id {
        return Err(AppError::not_found());
    }
    Ok(loaded)
}

/// The buyer's quote.
pub async fn quote(state: &AppState, user: &AuthUser, order_id: &str) -> AppResult<CancelQuote> {
    let loaded = own(state, user, order_id).await?;
    let decision = loaded.decide(state.clock.now());
    let total = Money::from_minor(loaded.order.total);
    let currency = loaded.order.currency.clone();
    Ok(match decision {
        Decision::Cancel => CancelQuote {
            allowed: true,
            status_after: OrderStatus::Canceled,
            fee: Money::ZERO,
            refund_amount: Money::ZERO,
            currency,
            reason_if_not_allowed: None,
        },
        Decision::Refund { fee, refund } => CancelQuote {
            allowed: true,
            status_after: OrderStatus::Refunded,
            fee,
            refund_amount: refund,
            currency,
            reason_if_not_allowed: None,
        },
        Decision::Refused(why) => CancelQuote {
            allowed: false,
            status_after: match OrderStatus::from_db(&loaded.order.status) {
                OrderStatus::Pending => OrderStatus::Canceled,
                _ => OrderStatus::Refunded,
            },
            fee: total,
            refund_amount: Money::ZERO,
            currency,
            reason_if_not_allowed: Some(why.code().to_owned()),
        },
    })
}

/// How an order is ended.
#[derive(Clone, Debug)]
pub(crate) struct Ending {
    /// Who or what ended it.
    pub reason: CancelReason,
    /// A note (the buyer's or organizer's reason).
    pub note: Option<String>,
    /// Cancel a pending order, or refund a confirmed one with this fee kept.
    pub plan: Decision,
}

/// What ending an order did (after the commit, announce `change`, wake the mail worker and try
/// the refund).
#[derive(Clone, Debug)]
pub(crate) struct Ended {
    /// For the lifecycle hook.
    pub change: OrderChange,
    /// The refund to try at once.
    pub refund_id: Option<String>,
}

/// Ends one order inside the caller's transaction: the one conditional transition, stock and
/// seats back, tickets void, the refund recorded, the buyer mailed. `Ok(None)` when the order
/// was no longer in the status the plan was made for (someone else moved it first).
pub(crate) async fn end_order<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    order: &orders::Model,
    ending: Ending,
    now: OffsetDateTime,
) -> AppResult<Option<Ended>> {
    let (from, to, kind, refund) = match ending.plan {
        Decision::Cancel => (
            OrderStatus::Pending,
            OrderStatus::Canceled,
            movement::CANCEL,
            None,
        ),
        Decision::Refund { fee, refund } => (
            OrderStatus::Confirmed,
            OrderStatus::Refunded,
            movement::REFUND,
            Some((fee, refund)),
        ),
        Decision::Refused(why) => return Err(why.into_error()),
    };
    let stamp = Stamp {
        reason: Some(ending.reason),
        note: ending.note.clone(),
        refund: refund.map(|(fee, amount): (Money, Money)| (fee.minor(), amount.minor())),
        ..Stamp::default()
    };
    if !effects::transition(conn, &order.id, from, to, stamp, now).await? {
        return Ok(None);
    }
    let refund_id = match refund {
        Some((fee, amount)) => {
            tickets::void_for_order(conn, &order.id, now).await?;
            Some(refunds::record(conn, order, amount, fee, ending.reason, now).await?)
        }
        None => None,
    };
    mail_buyer(conn, order, &ending, refund, now).await?;
    // Last: it moves the hot stock counters, whose locks are then held only until the commit.
    effects::release(conn, state, order, kind, now).await?;
    Ok(Some(Ended {
        change: OrderChange {
            what: if refund.is_some() {
                Lifecycle::Refunded
            } else {
                Lifecycle::Canceled
            },
            order_id: order.id.clone(),
            event_id: order.event_id.clone(),
            user_id: order.user_id.clone(),
            status: to,
        },
        refund_id,
    }))
}

/// Queues the buyer's mail about a cancellation or refund (not for deleted accounts).
async fn mail_buyer<C: ConnectionTrait>(
    conn: &C,
    order: &orders::Model,
    ending: &Ending,
    refund: Option<(Money, Money)>,
    now: OffsetDateTime,
) -> AppResult<()> {
    let Some(user) = users::Entity::find_by_id(order.user_id.clone())
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none())
    else {
        return Ok(());
    };
    let event_title = events::Entity::find_by_id(order.event_id.clone())
        .one(conn)
        .await?
        .map(|e| e.title)
        .unwrap_or_default();
    let name = user.name.clone().unwrap_or_default();
    let money = |m: Money| format!("{m} {}", order.currency);
    let mail = match (ending.reason, refund) {
        (CancelReason::EventCanceled, refund) => Mail::EventCanceled {
            name,
            event_title,
            order_id: order.id.clone(),
            reason: ending.note.clone().unwrap_or_default(),
            refund: refund.map(|(_, amount)| money(amount)),
        },
        (_, Some((fee, amount))) => Mail::OrderRefunded {
            name,
            event_title,
            order_id: order.id.clone(),
            amount: money(amount),
            fee: money(fee),
            note: organizer_note(ending),
        },
        (_, None) => Mail::OrderCanceled {
            name,
            event_title,
            order_id: order.id.clone(),
            note: organizer_note(ending),
        },
    };
    flows::mail_user(conn, now, &user, &mail).await
}

/// The organizer's reason is shown to the buyer; the buyer's own is not repeated.
fn organizer_note(ending: &Ending) -> Option<String> {
    (ending.reason == CancelReason::Organizer)
        .then(|| ending.note.clone())
        .flatten()
}

/// After the commit: wake the mail worker, run the lifecycle hook, try the refund at once.
pub(crate) async fn after_commit(state: &AppState, ended: &Ended) {
    let result = match ended.change.what {
        Lifecycle::Refunded => "refunded",
        _ => "canceled",
    };
    metrics::counter!("boxoffice_orders_total", "result" => result).increment(1);
    state.mail_wake.notify_one();
    state
        .order_hooks
        .announce(state, std::slice::from_ref(&ended.change))
        .await;
    if let Some(id) = &ended.refund_id
        && let Err(e) = refunds::attempt(state, id).await
    {
        tracing::warn!(error = %e, refund = %id, "refund attempt failed; the worker retries");
    }
}

/// The buyer cancels their own order: pending → canceled for free, confirmed → refunded
/// under the policy snapshotted on the order.
pub async fn buyer_cancel(
    state: &AppState,
    user: &AuthUser,
    order_id: &str,
    body: BuyerCancelBody,
) -> AppResult<OrderView> {
    let note = reason(body.reason.as_deref(), false)?;
    own(state, user, order_id).await?;
    let ended = db::write_tx(&state.db, |tx| {
        let (state, order_id, note) = (state.clone(), order_id.to_owned(), note.clone());
        Box::pin(async move {
            let now = state.clock.now();
            // Decide on what this transaction reads: a concurrent payment or shipment changes it.
            let loaded = load(tx, &order_id).await?;
            let plan = loaded.decide(now);
            let ending = Ending {
                reason: CancelReason::Buyer,
                note,
                plan,
            };
            let ended = end_order(tx, &state, &loaded.order, ending, now).await?;
            let ended = ended.ok_or_else(changed_meanwhile)?;
            // A shipment committed while this transaction waited for the order row shows now.
            if plan != Decision::Cancel && fulfilled_now(tx, &order_id).await? {
                return Err(Refusal::AlreadyFulfilled.into_error());
            }
            Ok(ended)
        })
    })
    .await?;
    after_commit(state, &ended).await;
    view::load(&state.db, order_id)
        .await?
        .ok_or_else(AppError::not_found)
}

async fn fulfilled_now<C: ConnectionTrait>(conn: &C, order_id: &str) -> AppResult<bool> {
    Ok(order_items::Entity::find()
        .filter(order_items::Column::OrderId.eq(order_id))
        .all(conn)
        .await?
        .iter()
        .any(fulfillment::is_done))
}

fn changed_meanwhile() -> AppError {
    AppError::conflict(
        "invalid_transition",
        "The order changed meanwhile; reload it.",
    )
}

/// An organizer or admin cancels (pending) or fully refunds (confirmed) an order of their
/// event, bypassing the policy.
pub async fn organizer_cancel(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    order_id: &str,
    body: ReasonBody,
) -> AppResult<OrderView> {
    let note = reason(Some(&body.reason), true)?;
    access::manageable_event(state, viewer, event_id).await?;
    let actor = viewer.user_id.clone();
    let ended = db::write_tx(&state.db, |tx| {
        let (state, order_id, event_id, note, actor) = (
            state.clone(),
            order_id.to_owned(),
            event_id.to_owned(),
            note.clone(),
            actor.clone(),
        );
        Box::pin(async move {
            let now = state.clock.now();
            let loaded = load(tx, &order_id).await?;
            if loaded.order.event_id != event_id {
                return Err(AppError::not_found());
            }
            let status = OrderStatus::from_db(&loaded.order.status);
            let plan = full_refund_plan(&loaded.order)?;
            let ending = Ending {
                reason: CancelReason::Organizer,
                note: note.clone(),
                plan,
            };
            let ended = end_order(tx, &state, &loaded.order, ending, now)
                .await?
                .ok_or_else(changed_meanwhile)?;
            flows::audit_with_detail(
                tx,
                now,
                Some(&actor),
                "order.canceled_by_organizer",
                "order",
                Some(&order_id),
                None,
                Some(serde_json::json!({
                    "event_id": event_id, "reason": note, "from": status.as_str(),
                    "to": ended.change.status.as_str(),
                })),
            )
            .await?;
            Ok(ended)
        })
    })
    .await?;
    after_commit(state, &ended).await;
    view::load(&state.db, order_id)
        .await?
        .ok_or_else(AppError::not_found)
}

/// Pending → cancel; confirmed → refund everything, fee 0; anything else is 409.
pub(crate) fn full_refund_plan(order: &orders::Model) -> AppResult<Decision> {
    match OrderStatus::from_db(&order.status) {
        OrderStatus::Pending => Ok(Decision::Cancel),
        OrderStatus::Confirmed => Ok(Decision::Refund {
            fee: Money::ZERO,
            refund: Money::from_minor(order.total),
        }),
        ended => Err(Refusal::Ended(ended).into_error()),
    }
}

#[cfg(test)]
mod tests {
    use time::{Duration, macros::datetime};

    use super::*;
    use crate::catalog::model::{AfterLastTier, CancelTier};

    fn policy() -> CancelPolicy {
        CancelPolicy {
            tiers: vec![
                CancelTier {
                    hours_before: 168,
                    fee_percent: 0,
                },
                CancelTier {
                    hours_before: 72,
                    fee_percent: 10,
                },
                CancelTier {
                    hours_before: 24,
                    fee_percent: 33,
                },
            ],
            otherwise: AfterLastTier::NoCancel,
        }
    }

    fn input<'a>(
        policy: &'a CancelPolicy,
        currency: &'a Currency,
        hours_before: i64,
        status: OrderStatus,
    ) -> PolicyInput<'a> {
        let starts_at = datetime!(2026-12-24 10:00 UTC);
        PolicyInput {
            status,
            policy,
            // 55,555 of tickets + 3,000 of shipping.
            total: Money::from_minor(5_855_500),
            shipping: Money::from_minor(300_000),
            currency,
            starts_at,
            now: starts_at - Duration::hours(hours_before),
            fulfilled: false,
        }
    }

    #[test]
    fn a_pending_order_cancels_for_free_whatever_the_time() {
        let (p, krw) = (policy(), Currency::parse("KRW").expect("code"));
        assert_eq!(
            decide(&input(&p, &krw, 1, OrderStatus::Pending)),
            Decision::Cancel
        );
    }

    #[test]
    fn each_tier_takes_its_percent_of_the_total_without_shipping_rounded_down() {
        let (p, krw) = (policy(), Currency::parse("KRW").expect("code"));
        let at = |h| decide(&input(&p, &krw, h, OrderStatus::Confirmed));
        assert_eq!(
            at(200),
            Decision::Refund {
                fee: Money::ZERO,
                refund: Money::from_minor(5_855_500)
            }
        );
        // 10 % of 55,555 = 5,555.5 → 5,555 KRW.
        assert_eq!(
            at(100),
            Decision::Refund {
                fee: Money::from_minor(555_500),
                refund: Money::from_minor(5_300_000)
            }
        );
        // 33 % of 55,555 = 18,333.15 → 18,333 KRW.
        assert_eq!(
            at(24),
            Decision::Refund {
                fee: Money::from_minor(1_833_300),
                refund: Money::from_minor(4_022_200)
            }
        );
        assert_eq!(at(23), Decision::Refused(Refusal::NoTierLeft));
        assert_eq!(at(-5), Decision::Refused(Refusal::NoTierLeft));
    }

    #[test]
    fn currencies_with_cents_keep_them() {
        let (p, usd) = (policy(), Currency::parse("USD").expect("code"));
        // 10 % of 55,555.00 = 5,555.50 USD.
        assert_eq!(
            decide(&input(&p, &usd, 100, OrderStatus::Confirmed)),
            Decision::Refund {
                fee: Money::from_minor(555_550),
                refund: Money::from_minor(5_299_950)
            }
        );
    }

    #[test]
    fn shipped_merchandise_and_ended_orders_cannot_be_canceled() {
        let (p, krw) = (policy(), Currency::parse("KRW").expect("code"));
        let mut shipped = input(&p, &krw, 200, OrderStatus::Confirmed);
        shipped.fulfilled = true;
        assert_eq!(
            decide(&shipped),
            Decision::Refused(Refusal::AlreadyFulfilled)
        );
        for ended in [OrderStatus::Canceled, OrderStatus::Refunded] {
            let d = decide(&input(&p, &krw, 200, ended));
            assert_eq!(d, Decision::Refused(Refusal::Ended(ended)));
            if let Decision::Refused(why) = d {
                assert_eq!(why.into_error().code(), "invalid_transition");
            }
        }
    }

    #[test]
    fn a_full_fee_leaves_nothing_to_refund() {
        let krw = Currency::parse("KRW").expect("code");
        let p = CancelPolicy {
            tiers: vec![CancelTier {
                hours_before: 1,
                fee_percent: 100,
            }],
            otherwise: AfterLastTier::NoCancel,
        };
        let mut i = input(&p, &krw, 2, OrderStatus::Confirmed);
        i.shipping = Money::ZERO;
        assert_eq!(
            decide(&i),
            Decision::Refund {
                fee: Money::from_minor(5_855_500),
                refund: Money::ZERO
            }
        );
    }

    #[test]
    fn reasons_are_checked() {
        assert_eq!(reason(None, false).expect("ok"), None);
        assert_eq!(reason(Some("  "), false).expect("ok"), None);
        assert!(reason(None, true).is_err());
        assert!(reason(Some(" "), true).is_err());
        assert!(reason(Some(&"x".repeat(501)), true).is_err());
        assert_eq!(
            reason(Some(" 중복 "), true).expect("ok").as_deref(),
            Some("중복")
        );
    }
}
