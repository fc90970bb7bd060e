//! The account flows, independent of HTTP: sign-up, verification, sign-in, refresh, sign-out.

use std::net::IpAddr;

use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use time::OffsetDateTime;

use super::{
    attempts::{self, Attempt},
    codes::{self, Check, Purpose},
    lockout::{self, Reservation},
    model::{Email, Locale, Role, parse_name},
    sessions::{self, ClientMeta, Rotation},
    users::{self, NewUser},
};
use crate::infra::ratelimit::account_action;
use crate::{
    app::AppState,
    db::{
        self,
        entities::{audit_log, users as user_rows},
    },
    error::{AppError, AppResult, FieldError},
    infra::{
        bus,
        clock::to_db,
        mail::{self, Mail, MailLocale},
        metrics,
    },
    security::events::{self, EventKind, Severity},
};

/// A validated sign-up.
pub struct Signup {
    /// Address.
    pub email: Email,
    /// Plain password (hashed before storage).
    pub password: String,
    /// Full name.
    pub name: String,
    /// Nickname.
    pub nickname: Option<String>,
    /// Language.
    pub locale: Locale,
}

impl Signup {
    /// Validates every field and reports all problems at once.
    pub fn parse(
        state: &AppState,
        email: &str,
        password: String,
        name: &str,
        nickname: Option<&str>,
        locale: Option<&str>,
    ) -> AppResult<Self> {
        let mut errors = Vec::new();
        let email = Email::parse(email).map_err(|e| errors.push(e)).ok();
        let name = parse_name("name", name, 100)
            .map_err(|e| errors.push(e))
            .ok();
        let nickname = match nickname {
            Some(n) => parse_name("nickname", n, 100)
                .map_err(|e| errors.push(e))
                .ok(),
            None => None,
        };
        let locale = match locale {
            Some(l) => Locale::parse(l).map_err(|e| errors.push(e)).ok(),
            None => Some(Locale::Ko),
        };
        if let Some(email) = &email
            && let Err(e) = state.passwords.check_policy(&password, email.normalized())
        {
            errors.push(e);
        }
        match (email, name, locale) {
            (Some(email), Some(name), Some(locale)) if errors.is_empty() => Ok(Self {
                email,
                password,
                name,
                nickname,
                locale,
            }),
            _ => Err(AppError::validation(errors)),
        }
    }
}

/// Creates an unverified account and mails its code. Exactly one of concurrent sign-ups
/// with one address wins: the unique index decides.
pub async fn signup(state: &AppState, input: Signup, ip: IpAddr) -> AppResult<user_rows::Model> {
    if users::find_by_email(&state.db, &input.email)
        .await?
        .is_some()
    {
        return Err(email_taken());
    }
    let hash = state
        .passwords
        .hash(state.rng.clone(), input.password)
        .await?;
    let now = state.clock.now();
    let user = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let (email, name, nickname, hash) = (
            input.email.clone(),
            input.name.clone(),
            input.nickname.clone(),
            hash.clone(),
        );
        let locale = input.locale;
        Box::pin(async move {
            let user = users::insert(
                tx,
                now,
                NewUser {
                    email: &email,
                    password_hash: Some(hash),
                    name: Some(name.clone()),
                    nickname,
                    locale,
                    role: Role::User,
                    vip: false,
                    verified: false,
                },
            )
            .await?;
            let code = codes::issue(
                tx,
                &state.secrets,
                state.rng.as_ref(),
                now,
                &user.id,
                Purpose::VerifyEmail,
            )
            .await?
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("fresh account already had a code"))
            })?;
            mail::enqueue(
                tx,
                now,
                email.as_str(),
                mail_locale(locale),
                &verification_mail(&name, code),
            )
            .await?;
            audit(
                tx,
                now,
                Some(&user.id),
                "user.signup",
                "user",
                Some(&user.id),
                Some(ip),
            )
            .await?;
            Ok(user)
        })
    })
    .await?;
    state.mail_wake.notify_one();
    metrics::signup();
    Ok(user)
}

fn email_taken() -> AppError {
    AppError::conflict(
        "email_taken",
        "An account with this e-mail address already exists.",
    )
}

/// The sign-up verification mail with its code.
pub fn verification_mail(name: &str, code: String) -> Mail {
    Mail::VerifyEmail {
        name: name.to_owned(),
        code,
        minutes: Purpose::VerifyEmail.ttl().whole_minutes() as u32,
    }
}

fn mail_locale(locale: Locale) -> MailLocale {
    match locale {
        Locale::Ko => MailLocale::Ko,
        Locale::En => MailLocale::En,
    }
}

/// Confirms an address with its code.
pub async fn verify_email(
    state: &AppState,
    email: &str,
    code: &str,
) -> AppResult<user_rows::Model> {
    let invalid = || AppError::bad_request("invalid_code", "The code is not valid.");
    let email = Email::parse(email).map_err(|e| AppError::validation(vec![e]))?;
    let code = codes::parse(code)?;
    let user = users::find_by_email(&state.db, &email)
        .await?
        .ok_or_else(invalid)?;
    if user.email_verified_at.is_some() {
        return Err(invalid());
    }
    state
        .limits
        .check_account(account_action::CODE_ATTEMPT, &user.id)
        .await?;
    let now = state.clock.now();
    let user_id = user.id.clone();
    let outcome = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let (user_id, code) = (user_id.clone(), code.to_owned());
        Box::pin(async move {
            let check = codes::check(
                tx,
                &state.secrets,
                now,
                &user_id,
                Purpose::VerifyEmail,
                &code,
            )
            .await?;
            if check == Check::Accepted {
                user_rows::ActiveModel {
                    id: Set(user_id.clone()),
                    email_verified_at: Set(Some(to_db(now))),
                    updated_at: Set(to_db(now)),
                    ..Default::default()
                }
                .update(tx)
                .await?;
                audit(
                    tx,
                    now,
                    Some(&user_id),
                    "user.email_verified",
                    "user",
                    Some(&user_id),
                    None,
                )
                .await?;
            }
            Ok(check)
        })
    })
    .await?;
    match outcome {
        Check::Accepted => users::find_by_id(&state.db, &user.id)
            .await?
            .ok_or_else(AppError::not_found),
        Check::Wrong { exhausted: true } => Err(AppError::too_many(
            "too_many_attempts",
            "Too many wrong codes; request a new one.",
            codes::RESEND_INTERVAL.whole_seconds() as u64,
        )),
        Check::Wrong { exhausted: false } => Err(invalid()),
    }
}

/// Sends a new code if the account exists, is unverified and the last mail is a minute old.
/// Says nothing either way, so addresses cannot be probed.
pub async fn resend_verification(state: &AppState, email: &str) -> AppResult<()> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    state
        .limits
        .check_account(account_action::VERIFY_RESEND, email.normalized())
        .await?;
    let Some(user) = users::find_by_email(&state.db, &email).await? else {
        return Ok(());
    };
    if user.email_verified_at.is_some() {
        return Ok(());
    }
    let now = state.clock.now();
    let sent = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let user = user.clone();
        Box::pin(async move {
            let Some(code) = codes::issue(
                tx,
                &state.secrets,
                state.rng.as_ref(),
                now,
                &user.id,
                Purpose::VerifyEmail,
            )
            .await?
            else {
                return Ok(false);
            };
            let name = user.name.clone().unwrap_or_default();
            mail::enqueue(
                tx,
                now,
                &user.email,
                MailLocale::from_tag(&user.locale),
                &verification_mail(&name, code),
            )
            .await?;
            Ok(true)
        })
    })
    .await?;
    if sent {
        state.mail_wake.notify_one();
    }
    Ok(())
}

/// How a successful sign-in is handed to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// JSON token pair.
    Tokens,
    /// `bo_session` cookie.
    Cookie,
}

/// A successful sign-in.
pub struct SignedIn {
    /// The account.
    pub user: user_rows::Model,
    /// Session family.
    pub family_id: String,
    /// Refresh token or cookie secret.
    pub secret: String,
}

/// Checks the password (a dummy hash for unknown addresses, so both take as long) and
/// starts a session. Every attempt is recorded; an attempt is reserved on the account before
/// hashing, so a locked account costs no hash.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    delivery: Delivery,
    meta: ClientMeta,
    ip: IpAddr,
) -> AppResult<SignedIn> {
    let now = state.clock.now();
    let parsed = Email::parse(email).ok();
    let user = match &parsed {
        Some(email) => users::find_by_email(&state.db, email).await?,
        None => None,
    };
    let attempt = |result: &'static str| Attempt {
        user_id: user.as_ref().map(|u| u.id.as_str()),
        email_normalized: parsed.as_ref().map(|e| e.normalized()),
        ip,
        user_agent: meta.user_agent.as_deref(),
        method: attempts::method::PASSWORD,
        result,
    };
    if let Some(email) = &parsed
        && let Err(limited) = state
            .limits
            .check_account(account_action::LOGIN, email.normalized())
            .await
    {
        attempts::record(&state.db, now, &attempt(attempts::result::RATE_LIMITED)).await?;
        metrics::login("rate_limited");
        return Err(limited);
    }
    if let Some(account) = &user
        && let Reservation::Refused { until } = lockout::reserve(&state.db, account, now).await?
    {
        attempts::record(&state.db, now, &attempt(attempts::result::ACCOUNT_LOCKED)).await?;
        metrics::login("account_locked");
        return Err(account_locked(now, until));
    }
    let stored = user.as_ref().and_then(|u| u.password.clone());
    let ok = state.passwords.verify(password, stored).await?;
    let Some(account) = user.as_ref().filter(|_| ok) else {
        attempts::record(
            &state.db,
            now,
            &attempt(attempts::result::INVALID_CREDENTIALS),
        )
        .await?;
        metrics::login("invalid_credentials");
        if let Some(account) = &user {
            lock_after_failures(state, account, now, ip).await?;
        }
        attempts::detect_after_failure(
            state,
            now,
            ip,
            parsed.as_ref().map(|e| e.normalized()),
            user.as_ref().map(|u| u.id.as_str()),
        )
        .await?;
        crate::security::ip_blocks::maybe_auto_block(state, ip, now).await?;
        return Err(AppError::unauthorized(
            "invalid_credentials",
            "The e-mail address or password is wrong.",
        ));
    };
    // The end every sign-in method shares: account checks, session, history, alerts.
    super::signin::complete(
        state,
        account,
        attempts::method::PASSWORD,
        delivery,
        &meta,
        ip,
    )
    .await
}

fn account_locked(now: OffsetDateTime, until: OffsetDateTime) -> AppError {
    AppError::too_many(
        "account_locked",
        "Too many wrong passwords: this account is locked for a while. Resetting the password unlocks it.",
        lockout::retry_after(now, until),
    )
}

/// Locks the account when this failure used up its window; mails the owner once.
async fn lock_after_failures(
    state: &AppState,
    account: &user_rows::Model,
    now: OffsetDateTime,
    ip: IpAddr,
) -> AppResult<()> {
    let locked = db::write_tx(&state.db, |tx| {
        let account = account.clone();
        Box::pin(async move {
            if !lockout::lock_if_exhausted(tx, &account.id, now).await? {
                return Ok(false);
            }
            let mail = Mail::AccountLocked {
                name: account.name.clone().unwrap_or_default(),
                minutes: lockout::LOCK.whole_minutes() as u32,
            };
            mail::enqueue(tx, now, &account.email, MailLocale::from_tag(&account.locale), &mail).await?;
            let ip_text = ip.to_string();
            events::record(
                tx,
                now,
                EventKind::AccountLocked,
                Severity::Medium,
                Some(&account.id),
                Some(&ip_text),
                serde_json::json!({"failures": lockout::MAX_FAILURES, "lock_minutes": lockout::LOCK.whole_minutes()}),
            )
            .await?;
            Ok(true)
        })
    })
    .await?;
    if locked {
        state.mail_wake.notify_one();
    }
    Ok(())
}

/// Starts a session for a user who proved who they are (any method); clears failed attempts and,
/// when asked, alerts the owner about a new device or network.
pub async fn start_session(
    state: &AppState,
    account: &user_rows::Model,
    delivery: Delivery,
    method: &'static str,
    meta: &ClientMeta,
    ip: IpAddr,
    alert: bool,
) -> AppResult<SignedIn> {
    let now = state.clock.now();
    let kind = match delivery {
        Delivery::Tokens => sessions::kind::REFRESH,
        Delivery::Cookie => sessions::kind::COOKIE,
    };
    let (family_id, secret) = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let (account, meta) = (account.clone(), meta.clone());
        Box::pin(async move {
            let started = sessions::start(
                tx,
                state.rng.as_ref(),
                now,
                &account.id,
                kind,
                method,
                &meta,
            )
            .await?;
            user_rows::ActiveModel {
                id: Set(account.id.clone()),
                last_login_at: Set(Some(to_db(now))),
                ..Default::default()
            }
            .update(tx)
            .await?;
            lockout::clear(tx, &account.id).await?;
            if alert {
                let mail = Mail::NewSignIn {
                    name: account.name.clone().unwrap_or_default(),
                    ip: ip.to_string(),
                    device: super::device::describe(meta.user_agent.as_deref()),
                    at: now
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                };
                mail::enqueue(
                    tx,
                    now,
                    &account.email,
                    MailLocale::from_tag(&account.locale),
                    &mail,
                )
                .await?;
            }
            Ok(started)
        })
    })
    .await?;
    if alert {
        state.mail_wake.notify_one();
    }
    Ok(SignedIn {
        user: account.clone(),
        family_id,
        secret,
    })
}

/// Rotates a refresh token; a reused one revokes its family everywhere.
pub async fn refresh(state: &AppState, presented: &str, meta: ClientMeta) -> AppResult<SignedIn> {
    let now = state.clock.now();
    let rotation = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let (presented, meta) = (presented.to_owned(), meta.clone());
        Box::pin(
            async move { sessions::rotate(tx, state.rng.as_ref(), now, &presented, &meta).await },
        )
    })
    .await
    .inspect_err(|_| metrics::refresh("invalid"))?;
    match rotation {
        Rotation::Rotated {
            user,
            family_id,
            refresh_token,
        } => {
            metrics::refresh("rotated");
            Ok(SignedIn {
                user: *user,
                family_id,
                secret: refresh_token,
            })
        }
        Rotation::Reused { family_id } => {
            metrics::refresh("reused");
            tracing::warn!(session = %family_id, "refresh token reused; session family revoked");
            crate::security::token_reuse::record(state, &family_id, meta.ip.as_deref(), now).await;
            announce_revocation(state, &family_id).await;
            Err(AppError::unauthorized(
                "refresh_token_reused",
                "This refresh token was already used; the session has been ended for safety.",
            ))
        }
    }
}

/// Queues a mail to a user, in their language, inside the caller's transaction.
pub async fn mail_user<C: sea_orm::ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    user: &user_rows::Model,
    mail: &Mail,
) -> AppResult<()> {
    mail::enqueue(
        conn,
        now,
        &user.email,
        MailLocale::from_tag(&user.locale),
        mail,
    )
    .await
}

/// Mails a fresh code of `purpose` to the active account with this address, made into a mail
/// by `mail(name, code, minutes)`. Nothing happens for an unknown or inactive address (or while
/// the code's resend interval runs), so the caller's answer never tells which it was.
pub async fn mail_code(
    state: &AppState,
    email: &Email,
    purpose: Purpose,
    mail: fn(String, String, u32) -> Mail,
) -> AppResult<()> {
    let Some(user) = users::find_by_email(&state.db, email).await? else {
        return Ok(());
    };
    if user.status != super::model::status::ACTIVE {
        return Ok(());
    }
    let now = state.clock.now();
    let sent = db::write_tx(&state.db, |tx| {
        let (state, user) = (state.clone(), user.clone());
        Box::pin(async move {
            let Some(code) = codes::issue(
                tx,
                &state.secrets,
                state.rng.as_ref(),
                now,
                &user.id,
                purpose,
            )
            .await?
            else {
                return Ok(false);
            };
            let minutes = purpose.ttl().whole_minutes() as u32;
            let mail = mail(user.name.clone().unwrap_or_default(), code, minutes);
            mail_user(tx, now, &user, &mail).await?;
            Ok(true)
        })
    })
    .await?;
    if sent {
        state.mail_wake.notify_one();
    }
    Ok(())
}

/// After a commit that queued mail and ended sessions: wakes the mail worker and tells every
/// instance about the ended sessions.
pub async fn after_sessions_ended(state: &AppState, families: &[String]) {
    state.mail_wake.notify_one();
    for family in families {
        announce_revocation(state, family).await;
    }
}

/// Ends a session family on every instance.
pub async fn logout(state: &AppState, family_id: &str) -> AppResult<()> {
    let now = state.clock.now();
    sessions::revoke_family(&state.db, now, family_id, sessions::reason::LOGOUT).await?;
    announce_revocation(state, family_id).await;
    Ok(())
}

pub async fn announce_revocation(state: &AppState, family_id: &str) {
    state.revoked.insert(family_id);
    if let Err(e) = state.bus.publish(bus::SESSION_REVOKED, family_id).await {
        // Other instances still learn it within the access-token lifetime at the latest.
        tracing::warn!(error = %e, "could not publish session revocation");
    }
}

/// Issues an access token for a signed-in session.
pub fn access_token(state: &AppState, signed_in: &SignedIn) -> AppResult<String> {
    let role: Role = signed_in.user.role.parse().unwrap_or(Role::User);
    state.tokens.issue(
        &signed_in.user.id,
        &signed_in.family_id,
        role,
        signed_in.user.vip,
        state.clock.now(),
    )
}

/// A validated profile change.
#[derive(Default)]
pub struct ProfileChange {
    /// New name.
    pub name: Option<String>,
    /// New nickname (`Some(None)` clears it).
    pub nickname: Option<Option<String>>,
    /// New language.
    pub locale: Option<Locale>,
}

/// Applies a profile change.
pub async fn update_profile(
    state: &AppState,
    user_id: &str,
    change: ProfileChange,
) -> AppResult<user_rows::Model> {
    let now = state.clock.now();
    let mut model = user_rows::ActiveModel {
        id: Set(user_id.to_owned()),
        updated_at: Set(to_db(now)),
        ..Default::default()
    };
    if let Some(name) = change.name {
        model.name = Set(Some(name));
    }
    if let Some(nickname) = change.nickname {
        model.nickname = Set(nickname);
    }
    if let Some(locale) = change.locale {
        model.locale = Set(locale.as_str().to_owned());
    }
    users::find_by_id(&state.db, user_id)
        .await?
        .ok_or_else(AppError::not_found)?;
    Ok(model.update(&state.db).await?)
}

/// Validates a profile patch.
pub fn parse_profile(
    name: Option<&str>,
    nickname: Option<Option<&str>>,
    locale: Option<&str>,
) -> AppResult<ProfileChange> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut change = ProfileChange::default();
    if let Some(name) = name {
        change.name = parse_name("name", name, 100)
            .map_err(|e| errors.push(e))
            .ok();
    }
    match nickname {
        Some(Some(n)) => {
            change.nickname = parse_name("nickname", n, 100)
                .map_err(|e| errors.push(e))
                .ok()
                .map(Some)
        }
        Some(None) => change.nickname = Some(None),
        None => {}
    }
    if let Some(locale) = locale {
        change.locale = Locale::parse(locale).map_err(|e| errors.push(e)).ok();
    }
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(AppError::validation(errors))
    }
}

/// Writes an audit record in the caller's transaction.
pub async fn audit<C: sea_orm::ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    actor: Option<&str>,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    ip: Option<IpAddr>,
) -> AppResult<()> {
    audit_with_detail(conn, now, actor, action, target_type, target_id, ip, None).await
}

/// Writes an audit record with a detail document (e.g. `{before, after}`).
#[allow(clippy::too_many_arguments)]
pub async fn audit_with_detail<C: sea_orm::ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    actor: Option<&str>,
    action: &str,
    target_type: &str,
    target_id: Option<&str>,
    ip: Option<IpAddr>,
    detail: Option<serde_json::Value>,
) -> AppResult<()> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        actor_user_id: Set(actor.map(str::to_owned)),
        action: Set(action.to_owned()),
        target_type: Set(target_type.to_owned()),
        target_id: Set(target_id.map(str::to_owned)),
        ip: Set(ip.map(|ip| ip.to_string())),
        detail: Set(detail.map(|d| d.to_string())),
        created_at: Set(to_db(now)),
    })
    .exec(conn)
    .await?;
    Ok(())
}
