//! Records a `REFRESH_TOKEN_REUSE` security event when a spent refresh token comes back.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use time::OffsetDateTime;

use super::events::{self, EventKind, Severity};
use crate::{app::AppState, db::entities::user_authorization};

/// Records the reuse of a refresh token of `family_id`, presented from `ip`.
///
/// Never fails the caller: the client is refused either way, and a missing event must not turn
/// a 401 into a 500, so errors are logged.
pub async fn record(state: &AppState, family_id: &str, ip: Option<&str>, now: OffsetDateTime) {
    let user_id: Option<String> = match user_authorization::Entity::find()
        .select_only()
        .column(user_authorization::Column::UserId)
        .filter(user_authorization::Column::FamilyId.eq(family_id))
        .into_tuple()
        .one(&state.db)
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "could not look up the reused session's owner");
            None
        }
    };
    let detail = serde_json::json!({ "session_id": family_id });
    if let Err(e) = events::record(
        &state.db,
        now,
        EventKind::RefreshTokenReuse,
        Severity::High,
        user_id.as_deref(),
        ip,
        detail,
    )
    .await
    {
        tracing::warn!(error = %e, "could not record refresh-token reuse");
    }
}
