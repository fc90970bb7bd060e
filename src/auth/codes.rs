//! Six-digit e-mail codes: stored as keyed hashes, one live code per user and purpose,
//! a bounded number of tries reserved by conditional updates.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};
use time::{Duration, OffsetDateTime};

use crate::{
    db::{
        self,
        entities::email_codes::{self, Column, Entity as Codes},
    },
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        rng::{self, Rng},
        secrets::{Secrets, constant_time_eq},
    },
};

/// What a code proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Ownership of the sign-up address.
    VerifyEmail,
    /// Permission to set a new password.
    PasswordReset,
    /// A sign-in without password or passkey.
    LoginCode,
}

impl Purpose {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "VERIFY_EMAIL",
            Self::PasswordReset => "PASSWORD_RESET",
            Self::LoginCode => "LOGIN_CODE",
        }
    }
    /// How long a code is valid.
    pub fn ttl(self) -> Duration {
        match self {
            Self::VerifyEmail => Duration::minutes(5),
            Self::PasswordReset => Duration::minutes(30),
            Self::LoginCode => Duration::minutes(10),
        }
    }
}

/// Checks the shape of a presented code: exactly six ASCII digits.
pub fn parse(code: &str) -> AppResult<&str> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::invalid_field(
            "code",
            "invalid_format",
            "must be 6 digits",
        ));
    }
    Ok(code)
}

/// Wrong tries allowed before a code is dead.
pub const MAX_ATTEMPTS: i32 = 5;
/// Minimum time between two mails with a new code.
pub const RESEND_INTERVAL: Duration = Duration::seconds(60);

/// Creates or replaces the user's code; returns the plain code for the mail, or `None`
/// when one was sent less than [`RESEND_INTERVAL`] ago.
pub async fn issue<C: ConnectionTrait>(
    conn: &C,
    secrets: &Secrets,
    rng: &dyn Rng,
    now: OffsetDateTime,
    user_id: &str,
    purpose: Purpose,
) -> AppResult<Option<String>> {
    let code = rng::six_digit_code(rng);
    let hash = secrets.hash_code(purpose.as_str(), &code);
    let expires = to_db(now + purpose.ttl());
    // Replace an existing code only if the last mail is old enough: the row decides, not a read.
    let replaced = Codes::update_many()
        .col_expr(Column::CodeHash, Expr::value(hash.clone()))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::ExpiresAt, Expr::value(expires))
        .col_expr(Column::SentAt, Expr::value(to_db(now)))
        .col_expr(
            Column::ConsumedAt,
            Expr::value(Option::<time::PrimitiveDateTime>::None),
        )
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .filter(Column::SentAt.lte(to_db(now - RESEND_INTERVAL)))
        .exec(conn)
        .await?;
    if replaced.rows_affected == 1 {
        return Ok(Some(code));
    }
    let inserted = email_codes::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_owned()),
        purpose: Set(purpose.as_str().to_owned()),
        code_hash: Set(hash),
        attempts: Set(0),
        expires_at: Set(expires),
        sent_at: Set(to_db(now)),
        consumed_at: Set(None),
        created_at: Set(to_db(now)),
    }
    .insert(conn)
    .await;
    match inserted {
        Ok(_) => Ok(Some(code)),
        // A code exists and was sent within the interval.
        Err(e) if db::unique_violation(&e) == Some("ux_email_codes_user_purpose") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The outcome of checking a code; wrong tries must be committed, so they are not errors.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Right code, now consumed.
    Accepted,
    /// Wrong code; the try was counted.
    Wrong {
        /// Whether that was the last allowed try.
        exhausted: bool,
    },
}

/// Checks a code inside the caller's write transaction.
pub async fn check<C: ConnectionTrait>(
    conn: &C,
    secrets: &Secrets,
    now: OffsetDateTime,
    user_id: &str,
    purpose: Purpose,
    code: &str,
) -> AppResult<Check> {
    let invalid = || AppError::bad_request("invalid_code", "The code is not valid.");
    let too_many = || {
        AppError::too_many(
            "too_many_attempts",
            "Too many wrong codes; request a new one.",
            RESEND_INTERVAL.whole_seconds() as u64,
        )
    };
    let row = Codes::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .one(conn)
        .await?
        .filter(|r| r.consumed_at.is_none())
        .ok_or_else(invalid)?;
    if row.attempts >= MAX_ATTEMPTS {
        return Err(too_many());
    }
    if from_db(row.expires_at) <= now {
        return Err(AppError::bad_request(
            "code_expired",
            "The code has expired; request a new one.",
        ));
    }
    // Reserve the try first, conditional on the code we read still being the live one.
    let reserved = Codes::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .filter(Column::Id.eq(&row.id))
        .filter(Column::CodeHash.eq(&row.code_hash))
        .filter(Column::Attempts.lt(MAX_ATTEMPTS))
        .filter(Column::ConsumedAt.is_null())
        .exec(conn)
        .await?;
    if reserved.rows_affected != 1 {
        return Err(too_many());
    }
    let presented = secrets.hash_code(purpose.as_str(), code);
    if !constant_time_eq(&presented, &row.code_hash) {
        return Ok(Check::Wrong {
            exhausted: row.attempts + 1 >= MAX_ATTEMPTS,
        });
    }
    let consumed = Codes::update_many()
        .col_expr(Column::ConsumedAt, Expr::value(Some(to_db(now))))
        .filter(Column::Id.eq(&row.id))
        .filter(Column::ConsumedAt.is_null())
        .exec(conn)
        .await?;
    if consumed.rows_affected != 1 {
        return Err(invalid());
    }
    Ok(Check::Accepted)
}
