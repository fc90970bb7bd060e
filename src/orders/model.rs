//! Order states, the one state-machine rule, cancel reasons and the views a buyer sees:
//! plain types and functions, no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::AppError;

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Stock is held until `expires_at`; waiting for payment.
    Pending,
    /// Paid; tickets issued.
    Confirmed,
    /// Ended before payment (expired, by the buyer, by the organizer); stock released.
    Canceled,
    /// Paid, then refunded; stock back on sale.
    Refunded,
}

impl OrderStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Canceled => "CANCELED",
            Self::Refunded => "REFUNDED",
        }
    }

    /// From the stored or requested name (exact, upper case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "CANCELED" => Some(Self::Canceled),
            "REFUNDED" => Some(Self::Refunded),
            _ => None,
        }
    }

    /// From the stored name; unknown values read as `CANCELED` (they can never be sold on).
    pub fn from_db(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Canceled)
    }

    /// The state machine: PENDING → CONFIRMED | CANCELED; CONFIRMED → REFUNDED. Nothing else.
    pub fn can_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::Confirmed)
                | (Self::Pending, Self::Canceled)
                | (Self::Confirmed, Self::Refunded)
        )
    }

    /// [`Self::can_become`] as an API error: 409 `invalid_transition`.
    pub fn check(self, next: Self) -> Result<(), AppError> {
        if self.can_become(next) {
            Ok(())
        } else {
            Err(AppError::conflict(
                "invalid_transition",
                format!(
                    "An order that is {} cannot become {}.",
                    self.as_str(),
                    next.as_str()
                ),
            ))
        }
    }

    /// Whether the order still holds or owns stock (pending or confirmed).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }
}

/// Why an order was canceled or refunded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    /// The hold ran out before payment.
    Expired,
    /// The buyer canceled.
    Buyer,
    /// An organizer or administrator canceled or refunded it.
    Organizer,
    /// The whole event was canceled.
    EventCanceled,
    /// The payment was captured after the order had ended; the money went back.
    LatePayment,
}

impl CancelReason {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "EXPIRED",
            Self::Buyer => "BUYER",
            Self::Organizer => "ORGANIZER",
            Self::EventCanceled => "EVENT_CANCELED",
            Self::LatePayment => "LATE_PAYMENT",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "EXPIRED" => Some(Self::Expired),
            "BUYER" => Some(Self::Buyer),
            "ORGANIZER" => Some(Self::Organizer),
            "EVENT_CANCELED" => Some(Self::EventCanceled),
            "LATE_PAYMENT" => Some(Self::LatePayment),
            _ => None,
        }
    }
}

/// What an order line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LineKind {
    /// Tickets (general admission or seats).
    Ticket,
    /// Merchandise (a variant).
    Merch,
    /// A package.
    Package,
    /// The shipping fee of a delivery option.
    Shipping,
}

impl LineKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ticket => "TICKET",
            Self::Merch => "MERCH",
            Self::Package => "PACKAGE",
            Self::Shipping => "SHIPPING",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Self {
        match s {
            "MERCH" => Self::Merch,
            "PACKAGE" => Self::Package,
            "SHIPPING" => Self::Shipping,
            _ => Self::Ticket,
        }
    }
}

/// Ledger kinds written by orders (the catalog writes `INITIAL` and `ADJUST`).
pub mod movement {
    /// Stock held by a pending order.
    pub const HOLD: &str = "HOLD";
    /// A pending order's hold returned because it expired.
    pub const RELEASE: &str = "RELEASE";
    /// A held unit became a sale (delta 0: the counter already moved at `HOLD`).
    pub const SALE: &str = "SALE";
    /// A pending order's hold returned because it was canceled.
    pub const CANCEL: &str = "CANCEL";
    /// A confirmed order's units returned because it was refunded.
    pub const REFUND: &str = "REFUND";
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::{self, *};

    #[test]
    fn only_the_four_documented_transitions_exist() {
        let all = [Pending, Confirmed, Canceled, Refunded];
        let allowed: Vec<(OrderStatus, OrderStatus)> = all
            .iter()
            .flat_map(|&a| all.iter().map(move |&b| (a, b)))
            .filter(|&(a, b)| a.can_become(b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Pending, Confirmed),
                (Pending, Canceled),
                (Confirmed, Refunded)
            ]
        );
        assert_eq!(
            Canceled.check(Confirmed).unwrap_err().code(),
            "invalid_transition"
        );
    }

    #[test]
    fn stored_names_round_trip() {
        for s in [Pending, Confirmed, Canceled, Refunded] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("pending"), None);
    }
}
