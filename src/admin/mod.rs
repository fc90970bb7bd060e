//! `/admin/*`: the administrators' JSON API (users, audit log, security events, IP blocks).
//! Every route requires the ADMIN role (401 without credentials, 403 `forbidden` otherwise).

pub mod audit;
pub mod ip_blocks;
pub mod security_events;
pub mod users;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ColumnTrait, Condition};
use time::OffsetDateTime;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    app::AppState,
    error::{AppError, AppResult},
    infra::clock::to_db,
};

/// The `/admin/*` routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::list_users))
        .routes(routes!(users::get_user, users::patch_user))
        .routes(routes!(audit::list_audit_log))
        .routes(routes!(security_events::list_security_events))
        .routes(routes!(
            ip_blocks::list_ip_blocks,
            ip_blocks::create_ip_block
        ))
        .routes(routes!(ip_blocks::delete_ip_block))
}

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u64 = 50;
/// Largest accepted `limit`.
pub const MAX_LIMIT: u64 = 200;

/// A validated `?limit=&cursor=`.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// Rows per page.
    pub limit: u64,
    /// Where the previous page ended.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Validates the raw query values (422 on a bad limit or cursor).
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> AppResult<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::invalid_field(
                "limit",
                "out_of_range",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = cursor.map(Cursor::decode).transpose()?;
        Ok(Self { limit, after })
    }

    /// Cuts one extra fetched row off and turns the last kept row into `next_cursor`.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> Cursor,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|r| key(r).encode())
        } else {
            None
        };
        (rows, next)
    }
}

/// A keyset position in a newest-first list ordered by `(created_at DESC, id DESC)`. Opaque to
/// clients: base64url of `<unix microseconds>:<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// `created_at` of the last row shown.
    pub created_at: OffsetDateTime,
    /// `id` of the last row shown (breaks ties of equal times).
    pub id: String,
}

impl Cursor {
    /// The cursor after a row.
    pub fn new(created_at: OffsetDateTime, id: &str) -> Self {
        Self {
            created_at,
            id: id.to_owned(),
        }
    }

    /// The opaque form.
    pub fn encode(&self) -> String {
        let micros = self.created_at.unix_timestamp_nanos() / 1000;
        URL_SAFE_NO_PAD.encode(format!("{micros}:{}", self.id))
    }

    /// Parses the opaque form (422 `validation_failed` on anything else).
    pub fn decode(raw: &str) -> AppResult<Self> {
        let invalid = || AppError::invalid_field("cursor", "invalid_cursor", "is not a cursor");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let micros: i128 = micros.parse().map_err(|_| invalid())?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(
            micros.checked_mul(1000).ok_or_else(invalid)?,
        )
        .map_err(|_| invalid())?;
        if id.is_empty() || id.len() > 64 {
            return Err(invalid());
        }
        Ok(Self::new(created_at, id))
    }

    /// Rows strictly after this position in `(created_at DESC, id DESC)` order.
    pub fn after<C: ColumnTrait>(&self, created_at: C, id: C) -> Condition {
        let at = to_db(self.created_at);
        Condition::any().add(created_at.lt(at)).add(
            Condition::all()
                .add(created_at.eq(at))
                .add(id.lt(self.id.clone())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = crate::infra::clock::truncate_micros(OffsetDateTime::now_utc());
        let cursor = Cursor::new(at, "0190c0de-0000-7000-8000-000000000000");
        assert_eq!(Cursor::decode(&cursor.encode()).expect("decodes"), cursor);
        for bad in ["", "!!!", "bm9jb2xvbg", &URL_SAFE_NO_PAD.encode("x:y")] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn limits_outside_one_to_two_hundred_are_refused() {
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(201), None).is_err());
        assert_eq!(PageRequest::parse(None, None).expect("default").limit, 50);
    }
}
