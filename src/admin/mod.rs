//! `/admin/*`: the administrators' JSON API (users, audit log, security events, IP blocks).
//! Every route requires the ADMIN role (401 without credentials, 403 `forbidden` otherwise).

pub mod audit;
pub mod ip_blocks;
pub mod security_events;
pub mod users;

use utoipa_axum::{router::OpenApiRouter, routes};

pub use crate::http::page::Cursor;
use crate::{
    app::AppState,
    error::{AppError, AppResult},
    http::page::split_page,
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
        let limit = crate::http::page::limit(limit, DEFAULT_LIMIT, MAX_LIMIT)
            .map_err(|e| AppError::validation(vec![e]))?;
        let after = cursor
            .map(Cursor::decode)
            .transpose()
            .map_err(|e| AppError::validation(vec![e]))?;
        Ok(Self { limit, after })
    }

    /// Cuts one extra fetched row off and turns the last kept row into `next_cursor`.
    pub fn finish<T>(&self, rows: Vec<T>, key: impl Fn(&T) -> Cursor) -> (Vec<T>, Option<String>) {
        split_page(rows, self.limit, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_two_hundred_are_refused() {
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(201), None).is_err());
        assert_eq!(PageRequest::parse(None, None).expect("default").limit, 50);
    }
}
