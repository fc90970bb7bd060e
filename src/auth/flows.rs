//! The account flows, independent of HTTP: sign-up, verification, sign-in, refresh, sign-out.

use std::net::IpAddr;

use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use time::OffsetDateTime;

use super::{
    codes::{self, Check, Purpose},
    model::{Email, Locale, Role, parse_name},
    sessions::{self, ClientMeta, Rotation},
    users::{self, NewUser},
};
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

fn verification_mail(name: &str, code: String) -> Mail {
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
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::invalid_field(
            "code",
            "invalid_format",
            "must be 6 digits",
        ));
    }
    let user = users::find_by_email(&state.db, &email)
        .await?
        .ok_or_else(invalid)?;
    if user.email_verified_at.is_some() {
        return Err(invalid());
    }
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
/// starts a session.
pub async fn login(
    state: &AppState,
    email: &str,
    password: String,
    delivery: Delivery,
    meta: ClientMeta,
) -> AppResult<SignedIn> {
    let invalid = || {
        AppError::unauthorized(
            "invalid_credentials",
            "The e-mail address or password is wrong.",
        )
    };
    let email = Email::parse(email).ok();
    let user = match &email {
        Some(email) => users::find_by_email(&state.db, email).await?,
        None => None,
    };
    let stored = user.as_ref().and_then(|u| u.password.clone());
    let ok = state.passwords.verify(password, stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        metrics::login("invalid_credentials");
        return Err(invalid());
    };
    if user.status == super::model::status::DISABLED {
        metrics::login("account_disabled");
        return Err(AppError::forbidden(
            "account_disabled",
            "This account has been disabled.",
        ));
    }
    if user.email_verified_at.is_none() {
        metrics::login("email_not_verified");
        return Err(AppError::forbidden(
            "email_not_verified",
            "Confirm your e-mail address first; we sent you a code.",
        ));
    }
    let now = state.clock.now();
    let kind = match delivery {
        Delivery::Tokens => sessions::kind::REFRESH,
        Delivery::Cookie => sessions::kind::COOKIE,
    };
    let (family_id, secret) = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let (user_id, meta) = (user.id.clone(), meta.clone());
        Box::pin(async move {
            let started = sessions::start(
                tx,
                state.rng.as_ref(),
                now,
                &user_id,
                kind,
                "PASSWORD",
                &meta,
            )
            .await?;
            user_rows::ActiveModel {
                id: Set(user_id.clone()),
                last_login_at: Set(Some(to_db(now))),
                ..Default::default()
            }
            .update(tx)
            .await?;
            Ok(started)
        })
    })
    .await?;
    metrics::login("success");
    Ok(SignedIn {
        user,
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

/// Ends a session family on every instance.
pub async fn logout(state: &AppState, family_id: &str) -> AppResult<()> {
    let now = state.clock.now();
    sessions::revoke_family(&state.db, now, family_id, sessions::reason::LOGOUT).await?;
    announce_revocation(state, family_id).await;
    Ok(())
}

async fn announce_revocation(state: &AppState, family_id: &str) {
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
    audit_log::Entity::insert(audit_log::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        actor_user_id: Set(actor.map(str::to_owned)),
        action: Set(action.to_owned()),
        target_type: Set(target_type.to_owned()),
        target_id: Set(target_id.map(str::to_owned)),
        ip: Set(ip.map(|ip| ip.to_string())),
        detail: Set(None),
        created_at: Set(to_db(now)),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Writes an audit record with a JSON `detail` (e.g. before/after) in the caller's transaction.
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
