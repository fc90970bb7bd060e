//! Catalog types shared by events, performances and products.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::FieldError;

/// Lifecycle of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Being prepared; visible to its organizer and admins only.
    Draft,
    /// Public.
    Published,
    /// Over (set by the sweeper at `end_at`).
    Ended,
    /// Called off.
    Canceled,
}

impl EventStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Published => "PUBLISHED",
            Self::Ended => "ENDED",
            Self::Canceled => "CANCELED",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Self {
        match s {
            "PUBLISHED" => Self::Published,
            "ENDED" => Self::Ended,
            "CANCELED" => Self::Canceled,
            _ => Self::Draft,
        }
    }

    /// The one place that decides which status changes are legal. `ENDED` is set only by the
    /// sweeper (`by_sweeper`).
    pub fn can_become(self, next: Self, by_sweeper: bool) -> bool {
        use EventStatus::*;
        self == next
            || matches!(
                (self, next),
                (Draft, Published) | (Draft, Canceled) | (Published, Canceled)
            )
            || (by_sweeper && self == Published && next == Ended)
    }
}

/// Whether something can be bought right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SaleState {
    /// Sales open later.
    Upcoming,
    /// On sale.
    OnSale,
    /// Nothing left.
    SoldOut,
    /// Sales are over (or the event ended or was canceled).
    Closed,
}

/// The derived sale state from a window, a status and whether stock remains.
pub fn sale_state(
    now: OffsetDateTime,
    status: EventStatus,
    open: OffsetDateTime,
    close: OffsetDateTime,
    stock_left: Option<bool>,
) -> SaleState {
    match status {
        EventStatus::Ended | EventStatus::Canceled => SaleState::Closed,
        _ if now >= close => SaleState::Closed,
        _ if now < open || status == EventStatus::Draft => SaleState::Upcoming,
        _ if stock_left == Some(false) => SaleState::SoldOut,
        _ => SaleState::OnSale,
    }
}

/// One tier of a cancel policy: cancel at least `hours_before` the start for `fee_percent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelTier {
    /// Hours before the start.
    pub hours_before: u32,
    /// Fee in percent of the total without shipping.
    pub fee_percent: u32,
}

/// What happens after the last tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AfterLastTier {
    /// No cancellation.
    NoCancel,
}

/// An event's cancel policy (snapshotted on every order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tiers": [{"hours_before": 168, "fee_percent": 0}, {"hours_before": 24, "fee_percent": 10}], "otherwise": "NO_CANCEL"}))]
pub struct CancelPolicy {
    /// Tiers, any order (kept sorted by `hours_before`, largest first).
    pub tiers: Vec<CancelTier>,
    /// After the last tier.
    pub otherwise: AfterLastTier,
}

impl Default for CancelPolicy {
    /// Free cancellation until 24 hours before the start, none after.
    fn default() -> Self {
        Self {
            tiers: vec![CancelTier {
                hours_before: 24,
                fee_percent: 0,
            }],
            otherwise: AfterLastTier::NoCancel,
        }
    }
}

impl CancelPolicy {
    /// Validates and sorts the tiers.
    pub fn normalized(mut self) -> Result<Self, FieldError> {
        let bad = |msg: &str| FieldError::new("cancel_policy", "invalid_policy", msg);
        if self.tiers.len() > 10 {
            return Err(bad("has more than 10 tiers"));
        }
        if self.tiers.iter().any(|t| t.fee_percent > 100) {
            return Err(bad("fee_percent must be 0..=100"));
        }
        if self
            .tiers
            .iter()
            .any(|t| t.hours_before == 0 || t.hours_before > 24 * 366)
        {
            return Err(bad("hours_before must be 1..=8784"));
        }
        self.tiers
            .sort_by_key(|t| std::cmp::Reverse(t.hours_before));
        if self
            .tiers
            .windows(2)
            .any(|w| w[0].hours_before == w[1].hours_before)
        {
            return Err(bad("two tiers have the same hours_before"));
        }
        Ok(self)
    }

    /// The fee percent for cancelling `hours_left` hours before the start, or `None` when
    /// cancellation is no longer allowed.
    pub fn fee_percent(&self, hours_left: i64) -> Option<u32> {
        self.tiers
            .iter()
            .find(|t| hours_left >= i64::from(t.hours_before))
            .map(|t| t.fee_percent)
    }
}

/// Where an event takes place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Venue {
    /// Name.
    pub name: String,
    /// Street address.
    pub address: Option<String>,
}

/// Distinguishes `"field": null` (clear) from an absent field (keep).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Validates free text: trimmed, within bounds, no control characters except newlines and tabs.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = raw.trim().to_owned();
    let len = value.chars().count();
    if len < min {
        return Err(FieldError::new(field, "required", "must not be empty"));
    }
    if len > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(crate::infra::text::is_forbidden_in_long_text)
    {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            crate::infra::text::FORBIDDEN_MESSAGE,
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_legal_status_changes_are_allowed() {
        use EventStatus::*;
        assert!(Draft.can_become(Published, false));
        assert!(Published.can_become(Canceled, false));
        assert!(!Published.can_become(Ended, false));
        assert!(Published.can_become(Ended, true));
        assert!(!Canceled.can_become(Published, false));
        assert!(!Ended.can_become(Draft, false));
        assert!(!Published.can_become(Draft, false));
    }

    #[test]
    fn the_fee_comes_from_the_first_tier_still_reachable() {
        let policy = CancelPolicy {
            tiers: vec![
                CancelTier {
                    hours_before: 24,
                    fee_percent: 10,
                },
                CancelTier {
                    hours_before: 168,
                    fee_percent: 0,
                },
            ],
            otherwise: AfterLastTier::NoCancel,
        }
        .normalized()
        .expect("valid");
        assert_eq!(policy.fee_percent(200), Some(0));
        assert_eq!(policy.fee_percent(100), Some(10));
        assert_eq!(policy.fee_percent(5), None);
    }
}
