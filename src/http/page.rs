//! Keyset pagination shared by every list: an opaque `(time, id)` cursor and the cut of a page
//! fetched with one extra row.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ColumnTrait, Condition};
use time::OffsetDateTime;

use crate::{error::FieldError, infra::clock::to_db};

/// A position in a list ordered by `(time, id)`. Opaque to clients: base64url of
/// `<unix microseconds>:<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Time of the last row shown.
    pub at: OffsetDateTime,
    /// Id of the last row shown (breaks ties of equal times).
    pub id: String,
}

impl Cursor {
    /// The cursor after a row.
    pub fn new(at: OffsetDateTime, id: &str) -> Self {
        Self {
            at,
            id: id.to_owned(),
        }
    }

    /// The opaque form.
    pub fn encode(&self) -> String {
        let micros = self.at.unix_timestamp_nanos() / 1000;
        URL_SAFE_NO_PAD.encode(format!("{micros}:{}", self.id))
    }

    /// Parses the opaque form; anything else is a field error on `cursor`.
    pub fn decode(raw: &str) -> Result<Self, FieldError> {
        let invalid =
            || FieldError::new("cursor", "invalid_cursor", "is not a cursor from this list");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let micros: i128 = micros.parse().map_err(|_| invalid())?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(
            micros.checked_mul(1000).ok_or_else(invalid)?,
        )
        .map_err(|_| invalid())?;
        if id.is_empty() || id.len() > 64 {
            return Err(invalid());
        }
        Ok(Self::new(at, id))
    }

    /// Rows strictly after this position in `(time ASC, id ASC)` order.
    pub fn after_ascending<C: ColumnTrait>(&self, time: C, id: C) -> Condition {
        let at = to_db(self.at);
        Condition::any().add(time.gt(at)).add(
            Condition::all()
                .add(time.eq(at))
                .add(id.gt(self.id.clone())),
        )
    }

    /// Rows strictly after this position in `(time DESC, id DESC)` order.
    pub fn after_descending<C: ColumnTrait>(&self, time: C, id: C) -> Condition {
        let at = to_db(self.at);
        Condition::any().add(time.lt(at)).add(
            Condition::all()
                .add(time.eq(at))
                .add(id.lt(self.id.clone())),
        )
    }
}

/// A page size from `?limit=`: `default` when absent, otherwise 1..=`max`.
pub fn limit(raw: Option<u64>, default: u64, max: u64) -> Result<u64, FieldError> {
    match raw {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(FieldError::new(
            "limit",
            "out_of_range",
            format!("must be 1..={max}"),
        )),
    }
}

/// Cuts a page fetched with `limit + 1` rows: the page, and the cursor of its last row when more
/// rows follow.
pub fn split_page<T>(
    mut rows: Vec<T>,
    limit: u64,
    cursor_of: impl Fn(&T) -> Cursor,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        rows.last().map(|r| cursor_of(r).encode())
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = crate::infra::clock::truncate_micros(OffsetDateTime::now_utc());
        let cursor = Cursor::new(at, "0190c0de-0000-7000-8000-000000000000");
        assert_eq!(Cursor::decode(&cursor.encode()).expect("decodes"), cursor);
        let huge = URL_SAFE_NO_PAD.encode(format!("{}:x", "9".repeat(40)));
        for bad in [
            "",
            "!!!",
            "bm9jb2xvbg",
            &URL_SAFE_NO_PAD.encode("x:y"),
            &huge,
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(limit(None, 20, 100).expect("default"), 20);
        assert_eq!(limit(Some(100), 20, 100).expect("max"), 100);
        assert!(limit(Some(0), 20, 100).is_err());
        assert!(limit(Some(101), 20, 100).is_err());
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_follow() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let cursor = |n: &u32| Cursor::new(at, &n.to_string());
        let (page, next) = split_page(vec![1, 2, 3], 2, cursor);
        assert_eq!(page, vec![1, 2]);
        assert_eq!(next, Some(Cursor::new(at, "2").encode()));
        assert_eq!(split_page(vec![1, 2], 2, cursor), (vec![1, 2], None));
    }
}
