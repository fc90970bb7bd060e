//! Extension points around checkout: the waiting room plugs in here without touching checkout.

use std::sync::Arc;

use axum::http::HeaderMap;

use crate::{
    app::AppState, auth::AuthUser, db::entities::events, error::AppResult,
    orders::model::OrderStatus,
};

/// Decides whether a buyer may check out now. Called inside `POST /orders` after the request
/// is parsed and the event is known, before any stock is touched; an error ends the request
/// (the waiting room answers 403 `admission_required`). The default lets everyone through.
#[async_trait::async_trait]
pub trait CheckoutGate: Send + Sync + 'static {
    /// Admits or refuses one checkout.
    async fn admit(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        user: &AuthUser,
        event: &events::Model,
    ) -> AppResult<()>;
}

/// Everyone may check out.
pub struct OpenGate;

#[async_trait::async_trait]
impl CheckoutGate for OpenGate {
    async fn admit(
        &self,
        _: &AppState,
        _: &HeaderMap,
        _: &AuthUser,
        _: &events::Model,
    ) -> AppResult<()> {
        Ok(())
    }
}

/// What happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Payment confirmed.
    Paid,
    /// Canceled before payment by the buyer, an organizer or an event cancellation.
    Canceled,
    /// Refunded after payment.
    Refunded,
    /// The hold ran out.
    Expired,
}

/// One order's change, as hooks see it (after the commit).
#[derive(Clone, Debug)]
pub struct OrderChange {
    /// What happened.
    pub what: Lifecycle,
    /// The order.
    pub order_id: String,
    /// Its event.
    pub event_id: String,
    /// Its buyer.
    pub user_id: String,
    /// The status it has now.
    pub status: OrderStatus,
}

/// Called after an order was paid, canceled, refunded or expired (after the commit, at most
/// once per change on one instance). Errors are the hook's own business: it returns nothing.
#[async_trait::async_trait]
pub trait OrderLifecycle: Send + Sync + 'static {
    /// Reacts to one change.
    async fn after(&self, state: &AppState, change: &OrderChange);
}

/// Does nothing.
pub struct NoLifecycle;

#[async_trait::async_trait]
impl OrderLifecycle for NoLifecycle {
    async fn after(&self, _: &AppState, _: &OrderChange) {}
}

/// The hooks an application runs with.
#[derive(Clone)]
pub struct Hooks {
    /// Checkout admission.
    pub gate: Arc<dyn CheckoutGate>,
    /// Order changes.
    pub lifecycle: Arc<dyn OrderLifecycle>,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            gate: Arc::new(OpenGate),
            lifecycle: Arc::new(NoLifecycle),
        }
    }
}

impl Hooks {
    /// Runs the lifecycle hook for changes that were committed.
    pub async fn announce(&self, state: &AppState, changes: &[OrderChange]) {
        for change in changes {
            if state.recent_payments.changed(change)
                && let Err(e) = state
                    .bus
                    .publish(
                        crate::orders::payment::recent::ORDER_ENDED,
                        &change.order_id,
                    )
                    .await
            {
                // The other instances still refuse it when settling; they may capture first.
                tracing::warn!(error = %e, order_id = %change.order_id, "order end not published");
            }
            self.lifecycle.after(state, change).await;
        }
    }
}
