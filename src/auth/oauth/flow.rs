//! The OAuth flows without HTTP: start a redirect, finish it, trade an app's code, and decide
//! what a provider identity means here (sign in, new account, link, or ask for proof/address).

use std::net::IpAddr;

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde::{Deserialize, Serialize};
use time::Duration;
use url::Url;

use super::{
    providers::{ProviderId, ProviderIdentity, errors},
    redirect::{self, STATE_TTL},
};
use crate::{
    app::AppState,
    auth::{
        attempts::result,
        ceremonies::{self, Kind},
        codes::{self, Purpose},
        flows::{self, Delivery, SignedIn},
        identities::{self, IdentityView},
        model::{Email, Locale, Role, parse_name},
        sessions::ClientMeta,
        signin,
        users::{self, NewUser},
    },
    db::{self, entities::users as user_rows},
    error::{AppError, AppResult},
    infra::{
        mail::{self, MailLocale},
        rng,
    },
};

/// How long a pending link waits for the account owner to sign in.
pub const LINK_TTL: Duration = Duration::minutes(15);
/// How long a provider identity waits for an address.
pub const SIGNUP_TTL: Duration = Duration::minutes(30);

/// What a redirect in flight remembers.
#[derive(Serialize, Deserialize)]
struct InFlight {
    provider: ProviderId,
    verifier: String,
    nonce: String,
    return_to: String,
}

/// Where to send the browser and the `state` to bind to it.
pub struct Started {
    /// The provider's authorization URL.
    pub authorize_url: Url,
    /// The `state` (goes into the signed cookie).
    pub state: String,
}

/// Our callback URL for a provider.
pub fn redirect_uri(state: &AppState, id: ProviderId) -> String {
    format!(
        "{}/auth/oauth/{}/callback",
        state.config.origin(),
        id.as_str()
    )
}

/// Starts a redirect to the provider; `link_to` is the signed-in user asking to link it.
pub async fn start(
    state: &AppState,
    id: ProviderId,
    return_to: String,
    link_to: Option<&str>,
) -> AppResult<Started> {
    let provider = state.oauth.get(id)?;
    // 32 random bytes → 43 characters, the shortest verifier RFC 7636 allows.
    let verifier = PkceCodeVerifier::new(rng::token(state.rng.as_ref(), 32));
    let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
    let nonce = rng::token(state.rng.as_ref(), 16);
    let flight = InFlight {
        provider: id,
        verifier: verifier.secret().clone(),
        nonce: nonce.clone(),
        return_to,
    };
    let handle = ceremonies::put(state, Kind::OAuthState, link_to, STATE_TTL, &flight).await?;
    let authorize_url =
        provider.authorize_url(&redirect_uri(state, id), &handle, challenge, &nonce)?;
    Ok(Started {
        authorize_url,
        state: handle,
    })
}

/// What a provider identity led to.
pub enum Outcome {
    /// A session was started.
    SignedIn(Box<SignedIn>),
    /// The identity was linked to the signed-in user.
    Linked(IdentityView),
    /// An account with the verified address exists: its owner must sign in and claim this.
    LinkRequired {
        /// For `POST /auth/oauth/link`.
        link_token: String,
    },
    /// No verified address: the user must give one (`POST /auth/oauth/signup`).
    EmailRequired {
        /// For `POST /auth/oauth/signup`.
        signup_token: String,
    },
}

/// The callback's parameters.
pub struct CallbackParams {
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `error` (the user or provider refused).
    pub error: Option<String>,
    /// The state cookie.
    pub cookie: Option<String>,
}

/// Finishes a redirect: the state must be this browser's, unused and fresh.
pub async fn callback(
    state: &AppState,
    id: ProviderId,
    params: CallbackParams,
    meta: &ClientMeta,
    ip: IpAddr,
) -> AppResult<(String, Outcome)> {
    let fail = |why: &'static str, err: AppError| async move {
        signin::record_failure(state, None, None, id.method(), why, meta, ip).await;
        Err(err)
    };
    let now = state.clock.now();
    let provider = state.oauth.get(id)?;
    let bound = match (&params.state, &params.cookie) {
        (Some(s), Some(c)) => redirect::matches(&state.secrets.cookie, c, s, now),
        _ => false,
    };
    if !bound {
        return fail(result::STATE_INVALID, errors::state_invalid()).await;
    }
    let handle = params.state.as_deref().unwrap_or_default();
    let Some(taken) =
        ceremonies::take::<InFlight, _>(state, &state.db, Kind::OAuthState, handle).await?
    else {
        return fail(result::STATE_INVALID, errors::state_invalid()).await;
    };
    let flight = taken.data;
    if flight.provider != id {
        return fail(result::STATE_INVALID, errors::state_invalid()).await;
    }
    let code = match (params.error, params.code) {
        (None, Some(code)) if !code.is_empty() && code.len() <= 2048 => code,
        _ => return fail(result::PROVIDER_FAILED, errors::denied()).await,
    };
    let identity = match state
        .oauth
        .identify(
            provider,
            &code,
            &flight.verifier,
            &redirect_uri(state, id),
            Some(&flight.nonce),
            now,
        )
        .await
    {
        Ok(identity) => identity,
        Err(e) => return fail(result::PROVIDER_FAILED, e).await,
    };
    let outcome = match taken.user_id {
        Some(user_id) => Outcome::Linked(link(state, &user_id, &identity).await?),
        None => sign_in(state, identity, Delivery::Cookie, meta, ip).await?,
    };
    Ok((flight.return_to, outcome))
}

/// An app's code exchange (it ran the redirect itself, with its own PKCE and state).
pub struct AppExchange {
    /// The authorization code.
    pub code: String,
    /// The app's PKCE verifier.
    pub code_verifier: String,
    /// The redirect URI the app used.
    pub redirect_uri: String,
    /// The nonce the app sent (checked when given).
    pub nonce: Option<String>,
}

/// Trades an app's code for our tokens (or links it, for a signed-in user).
pub async fn exchange(
    state: &AppState,
    id: ProviderId,
    input: AppExchange,
    link_to: Option<&str>,
    meta: &ClientMeta,
    ip: IpAddr,
) -> AppResult<Outcome> {
    let provider = state.oauth.get(id)?;
    let identity = match state
        .oauth
        .identify(
            provider,
            &input.code,
            &input.code_verifier,
            &input.redirect_uri,
            input.nonce.as_deref(),
            state.clock.now(),
        )
        .await
    {
        Ok(identity) => identity,
        Err(e) => {
            signin::record_failure(
                state,
                link_to,
                None,
                id.method(),
                result::PROVIDER_FAILED,
                meta,
                ip,
            )
            .await;
            return Err(e);
        }
    };
    match link_to {
        Some(user_id) => Ok(Outcome::Linked(link(state, user_id, &identity).await?)),
        None => sign_in(state, identity, Delivery::Tokens, meta, ip).await,
    }
}

/// Signs in with a provider identity: a linked one signs in its account; a new one with a
/// verified address creates an account, unless that address has one (then its owner must
/// prove it first: never a silent takeover); without a verified address the user is asked
/// for one.
pub async fn sign_in(
    state: &AppState,
    identity: ProviderIdentity,
    delivery: Delivery,
    meta: &ClientMeta,
    ip: IpAddr,
) -> AppResult<Outcome> {
    let now = state.clock.now();
    let method = identity.provider.method();
    if let Some(row) =
        identities::find(&state.db, identity.provider.as_str(), &identity.subject).await?
    {
        let Some(account) = users::find_by_id(&state.db, &row.user_id).await? else {
            return Err(AppError::forbidden(
                "account_disabled",
                "This account has been disabled.",
            ));
        };
        identities::touch(
            state,
            &state.db,
            now,
            &row.id,
            identity.refresh_token.as_deref(),
        )
        .await?;
        let signed_in = signin::complete(state, &account, method, delivery, meta, ip).await?;
        return Ok(Outcome::SignedIn(Box::new(signed_in)));
    }
    let email = identity.verified_email().and_then(|e| Email::parse(e).ok());
    let Some(email) = email else {
        let signup_token =
            ceremonies::put(state, Kind::OAuthSignup, None, SIGNUP_TTL, &identity).await?;
        signin::record_failure(state, None, None, method, result::EMAIL_REQUIRED, meta, ip).await;
        return Ok(Outcome::EmailRequired { signup_token });
    };
    if let Some(account) = users::find_by_email(&state.db, &email).await? {
        let link_token = ceremonies::put(
            state,
            Kind::OAuthLink,
            Some(&account.id),
            LINK_TTL,
            &identity,
        )
        .await?;
        signin::record_failure(
            state,
            Some(&account.id),
            Some(email.normalized()),
            method,
            result::LINK_REQUIRED,
            meta,
            ip,
        )
        .await;
        return Ok(Outcome::LinkRequired { link_token });
    }
    let account = db::write_tx(&state.db, |tx| {
        let (state, identity, email) = (state.clone(), identity.clone(), email.clone());
        Box::pin(async move {
            let user = users::insert(
                tx,
                now,
                NewUser {
                    email: &email,
                    password_hash: None,
                    name: display_name(&identity),
                    nickname: None,
                    locale: Locale::Ko,
                    role: Role::User,
                    vip: false,
                    verified: true,
                },
            )
            .await?;
            identities::insert(&state, tx, now, &user.id, &identity).await?;
            flows::audit(
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
    crate::infra::metrics::signup();
    let signed_in = signin::complete(state, &account, method, delivery, meta, ip).await?;
    Ok(Outcome::SignedIn(Box::new(signed_in)))
}

fn display_name(identity: &ProviderIdentity) -> Option<String> {
    identity
        .name
        .as_deref()
        .and_then(|n| parse_name("name", n, 100).ok())
}

/// Links an identity to a signed-in user (refused if it belongs to someone else).
pub async fn link(
    state: &AppState,
    user_id: &str,
    identity: &ProviderIdentity,
) -> AppResult<IdentityView> {
    let now = state.clock.now();
    if let Some(row) =
        identities::find(&state.db, identity.provider.as_str(), &identity.subject).await?
    {
        if row.user_id != user_id {
            return Err(identities::identity_in_use());
        }
        identities::touch(
            state,
            &state.db,
            now,
            &row.id,
            identity.refresh_token.as_deref(),
        )
        .await?;
        return Ok(IdentityView::from(row));
    }
    let row = db::write_tx(&state.db, |tx| {
        let (state, identity, user_id) = (state.clone(), identity.clone(), user_id.to_owned());
        Box::pin(async move {
            let row = identities::insert(&state, tx, now, &user_id, &identity).await?;
            flows::audit(
                tx,
                now,
                Some(&user_id),
                "identity.linked",
                "identity",
                Some(&row.id),
                None,
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    Ok(IdentityView::from(row))
}

/// The signed-in owner of the matching account claims a pending link. Someone else's token
/// is not found, and stays usable for its owner.
pub async fn claim_link(state: &AppState, user_id: &str, token: &str) -> AppResult<IdentityView> {
    let now = state.clock.now();
    let row = db::write_tx(&state.db, |tx| {
        let (state, user_id, token) = (state.clone(), user_id.to_owned(), token.to_owned());
        Box::pin(async move {
            let taken =
                ceremonies::take::<ProviderIdentity, _>(&state, tx, Kind::OAuthLink, &token)
                    .await?
                    .filter(|t| t.user_id.as_deref() == Some(user_id.as_str()))
                    .ok_or_else(AppError::not_found)?;
            let row = identities::insert(&state, tx, now, &user_id, &taken.data).await?;
            flows::audit(
                tx,
                now,
                Some(&user_id),
                "identity.linked",
                "identity",
                Some(&row.id),
                None,
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    Ok(IdentityView::from(row))
}

/// Creates the account of a provider identity that came without a verified address, with the
/// address the user gives; it becomes usable once the mailed code confirms it.
pub async fn finish_signup(
    state: &AppState,
    token: &str,
    email: &str,
    ip: IpAddr,
) -> AppResult<user_rows::Model> {
    let email = Email::parse(email).map_err(|e| AppError::validation(vec![e]))?;
    let now = state.clock.now();
    let user = db::write_tx(&state.db, |tx| {
        let (state, token, email) = (state.clone(), token.to_owned(), email.clone());
        Box::pin(async move {
            let taken =
                ceremonies::take::<ProviderIdentity, _>(&state, tx, Kind::OAuthSignup, &token)
                    .await?
                    .ok_or_else(errors::state_invalid)?;
            let identity = taken.data;
            let name = display_name(&identity);
            let user = users::insert(
                tx,
                now,
                NewUser {
                    email: &email,
                    password_hash: None,
                    name: name.clone(),
                    nickname: None,
                    locale: Locale::Ko,
                    role: Role::User,
                    vip: false,
                    verified: false,
                },
            )
            .await?;
            identities::insert(&state, tx, now, &user.id, &identity).await?;
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
            let mail = flows::verification_mail(name.as_deref().unwrap_or_default(), code);
            mail::enqueue(tx, now, email.as_str(), MailLocale::Ko, &mail).await?;
            flows::audit(
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
    crate::infra::metrics::signup();
    Ok(user)
}
