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
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            "must not contain control characters",
        ));
    }
    Ok(value)
}

/// A keyset cursor over `(time, id)`: opaque to clients, ordered like the listing.
pub fn encode_cursor(at: time::PrimitiveDateTime, id: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{id}",
        at.assume_utc().unix_timestamp_nanos() / 1000
    ))
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<(time::PrimitiveDateTime, String), FieldError> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let bad = || FieldError::new("cursor", "invalid_cursor", "is not a cursor from this list");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (micros, id) = raw.split_once('|').ok_or_else(bad)?;
    let micros: i128 = micros.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000).ok_or_else(bad)?)
        .map_err(|_| bad())?;
    Ok((crate::infra::clock::to_db(at), id.to_owned()))
}

/// Cuts a keyset page fetched with `limit + 1` rows: the page, and the cursor of its last row
/// when more rows follow.
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_follow() {
        let cursor = |n: &u32| n.to_string();
        assert_eq!(
            split_page(vec![1, 2, 3], 2, cursor),
            (vec![1, 2], Some("2".into()))
        );
        assert_eq!(split_page(vec![1, 2], 2, cursor), (vec![1, 2], None));
        assert_eq!(split_page(Vec::new(), 2, cursor), (Vec::new(), None));
        let at = crate::infra::clock::to_db(OffsetDateTime::UNIX_EPOCH + time::Duration::days(1));
        assert_eq!(
            decode_cursor(&encode_cursor(at, "id-1")).expect("round trip"),
            (at, "id-1".to_owned())
        );
        assert!(decode_cursor("not a cursor").is_err());
    }

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
