//! Account lockout: an attempt is reserved on the user row *before* the password is hashed,
//! so however many requests arrive in parallel, at most [`MAX_FAILURES`] hashes run per window
//! and a lock is never lifted early.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use time::{Duration, OffsetDateTime};

use crate::{
    db::{self, entities::users},
    error::AppResult,
    infra::clock::{from_db, to_db},
};

/// Failures within [`WINDOW`] that lock the account.
pub const MAX_FAILURES: i32 = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::minutes(15);
/// How long a lock lasts.
pub const LOCK: Duration = Duration::minutes(15);

/// The outcome of reserving an attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The password may be checked.
    Granted,
    /// Locked (or the window is used up) until this time.
    Refused {
        /// When the next attempt may be reserved.
        until: OffsetDateTime,
    },
}

/// Reserves one attempt with one conditional update: it succeeds only when the account is not
/// locked and fewer than [`MAX_FAILURES`] attempts were reserved in the current window.
pub async fn reserve<C: ConnectionTrait>(
    conn: &C,
    user: &users::Model,
    now: OffsetDateTime,
) -> AppResult<Reservation> {
    let window_start = to_db(now - WINDOW);
    let now_db = to_db(now);
    let sql = "UPDATE users SET \
        failed_login_count = CASE WHEN failed_login_window_start IS NULL OR failed_login_window_start < ? THEN 1 ELSE failed_login_count + 1 END, \
        failed_login_window_start = CASE WHEN failed_login_window_start IS NULL OR failed_login_window_start < ? THEN ? ELSE failed_login_window_start END \
        WHERE id = ? AND (locked_until IS NULL OR locked_until <= ?) \
        AND (failed_login_window_start IS NULL OR failed_login_window_start < ? OR failed_login_count < ?)";
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        [
            window_start.into(),
            window_start.into(),
            now_db.into(),
            user.id.clone().into(),
            now_db.into(),
            window_start.into(),
            MAX_FAILURES.into(),
        ],
    );
    if db::exec_one(conn, stmt).await? {
        return Ok(Reservation::Granted);
    }
    let until = match (
        user.locked_until.map(from_db),
        user.failed_login_window_start.map(from_db),
    ) {
        (Some(locked), _) if locked > now => locked,
        (_, Some(start)) => (start + WINDOW).max(now + Duration::seconds(1)),
        _ => now + LOCK,
    };
    Ok(Reservation::Refused { until })
}

/// After a wrong password: locks the account if its window is used up. Returns whether this call
/// set the lock, so the mail and the event go out exactly once.
pub async fn lock_if_exhausted<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    now: OffsetDateTime,
) -> AppResult<bool> {
    let stmt = Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE users SET locked_until = ? WHERE id = ? AND failed_login_count >= ? \
         AND failed_login_window_start >= ? AND (locked_until IS NULL OR locked_until <= ?)",
        [
            to_db(now + LOCK).into(),
            user_id.into(),
            MAX_FAILURES.into(),
            to_db(now - WINDOW).into(),
            to_db(now).into(),
        ],
    );
    db::exec_one(conn, stmt).await
}

/// After a success or a password reset: forgets failures and lifts any lock.
pub async fn clear<C: ConnectionTrait>(conn: &C, user_id: &str) -> AppResult<()> {
    let backend: DbBackend = conn.get_database_backend();
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE users SET failed_login_count = 0, failed_login_window_start = NULL, locked_until = NULL WHERE id = ?",
        [user_id.into()],
    ))
    .await?;
    Ok(())
}

/// Whole seconds from now until `until`, at least one.
pub fn retry_after(now: OffsetDateTime, until: OffsetDateTime) -> u64 {
    (until - now).whole_seconds().max(1) as u64
}
