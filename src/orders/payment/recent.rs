//! Orders this instance has just started a payment for, so the confirmation that follows
//! seconds later does not read them again (in a sell-out the pay and confirm reads were a third
//! of the database's work per order).
//!
//! Only what a confirmation checks before calling the gateway comes from here: the buyer, the
//! amount, the hold's end and the prepared attempt, all fixed when the payment started. Whether
//! the order is still pending is decided, as always, by the settling transaction's conditional
//! update. An order that is canceled or refunded is forgotten at once on this instance and,
//! through the bus, on the others, and is never remembered again, so a buyer who canceled is
//! refused before the gateway is called, not refunded after it. One that expires or is paid is
//! forgotten here; the hold's end is checked from the entry itself, and a second confirmation is
//! answered by the settling transaction.

use std::sync::Arc;
use std::time::Duration;

use super::flow::Paying;
use crate::orders::hooks::{Lifecycle, OrderChange};

/// Bus channel carrying the id of an order that was canceled or refunded.
pub const ORDER_ENDED: &str = "order.ended";

/// How long an entry waits for its confirmation; a buyer slower than this is read again.
const KEEP_FOR: Duration = Duration::from_secs(10 * 60);
/// Entries at most (an order and its lines are one to two kilobytes, so ≈ 40 MB at worst); an
/// evicted entry only costs its confirmation a read.
const CAPACITY: u64 = 20_000;

/// Payments started here and not yet confirmed, by order id, and the orders that ended.
#[derive(Clone)]
pub struct RecentPayments {
    started: moka::sync::Cache<String, Arc<Paying>>,
    /// Orders canceled or refunded: never remembered again, whatever a slow `pay` still has.
    ended: moka::sync::Cache<String, ()>,
}

fn cache<V: Clone + Send + Sync + 'static>() -> moka::sync::Cache<String, V> {
    moka::sync::Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(KEEP_FOR)
        .build()
}

impl Default for RecentPayments {
    fn default() -> Self {
        Self {
            started: cache(),
            ended: cache(),
        }
    }
}

impl RecentPayments {
    /// Keeps an order whose payment just started, unless it ended meanwhile.
    pub fn remember(&self, paying: Paying) {
        let id = paying.order.id.clone();
        self.started.insert(id.clone(), Arc::new(paying));
        // Checked after the insert: an end announced in between is either seen here or
        // removes the entry itself.
        if self.ended.contains_key(&id) {
            self.started.invalidate(&id);
        }
    }

    /// The caller's order, if its payment started here; at most one confirmation gets it.
    pub fn take_own(&self, user_id: &str, order_id: &str) -> Option<Paying> {
        if self.started.get(order_id)?.order.user_id != user_id {
            return None;
        }
        self.started.remove(order_id).map(Arc::unwrap_or_clone)
    }

    /// Whether a payment of this order started here and awaits its confirmation.
    pub fn holds(&self, order_id: &str) -> bool {
        self.started.contains_key(order_id)
    }

    /// Forgets an order for good (it ended).
    pub fn ended(&self, order_id: &str) {
        self.ended.insert(order_id.to_owned(), ());
        self.started.invalidate(order_id);
    }

    /// Reacts to a committed change; true when other instances must hear of it too.
    pub fn changed(&self, change: &OrderChange) -> bool {
        match change.what {
            // A paid order cannot start another payment, a second confirmation elsewhere is
            // answered by the settling transaction, and every instance checks the hold's end
            // itself (an entry remembered after it ended is refused by that check): nothing to
            // keep and nothing to tell anyone.
            Lifecycle::Paid | Lifecycle::Expired => {
                self.started.invalidate(&change.order_id);
                false
            }
            Lifecycle::Canceled | Lifecycle::Refunded => {
                self.ended(&change.order_id);
                true
            }
        }
    }
}
