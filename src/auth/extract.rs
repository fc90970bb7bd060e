//! `AuthUser`, `MaybeAuthUser` and `RequireRole`: Bearer token or `bo_session` cookie,
//! CSRF enforced on cookie-authenticated unsafe requests. No database query per request
//! for Bearer tokens; cookie sessions are cached briefly.

use std::marker::PhantomData;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{HeaderMap, Method, header, request::Parts},
};

use super::{model::Role, sessions};
use crate::{
    app::AppState,
    error::AppError,
    infra::secrets::{constant_time_eq, hash_token},
};

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "bo_session";
/// Header carrying the CSRF token on fetches.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the request proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer`.
    Bearer,
    /// `bo_session` cookie.
    Cookie,
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// Account id.
    pub user_id: String,
    /// Session family id.
    pub session_id: String,
    /// Role.
    pub role: Role,
    /// VIP flag.
    pub vip: bool,
    /// Credential kind.
    pub via: Via,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state)
            .await?
            .ok_or_else(AppError::unauthenticated)
    }
}

/// A user who may or may not be signed in; bad credentials are still refused.
#[derive(Clone, Debug)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(authenticate(parts, state).await?))
    }
}

impl OptionalFromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        authenticate(parts, state).await
    }
}

/// The least role a route needs.
pub trait MinRole: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

/// Marker: organizers and admins.
pub struct Organizer;
impl MinRole for Organizer {
    const ROLE: Role = Role::Organizer;
}

/// Marker: admins only.
pub struct Admin;
impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// A signed-in user with at least role `R` (403 `forbidden` otherwise).
pub struct RequireRole<R: MinRole>(pub AuthUser, pub PhantomData<R>);

impl<R: MinRole> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user =
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if user.role < R::ROLE {
            return Err(AppError::forbidden(
                "forbidden",
                "Your role does not allow this.",
            ));
        }
        Ok(Self(user, PhantomData))
    }
}

/// The browser session's user of a request, ignoring any bearer token (pages).
pub async fn authenticate_cookie(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<AuthUser>, AppError> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    authenticate(parts, state).await
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Option<AuthUser>, AppError> {
    let now = state.clock.now();
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok().and_then(bearer).ok_or_else(|| {
            AppError::unauthorized("unauthenticated", "Use `Authorization: Bearer <token>`.")
        })?;
        let claims = state.tokens.verify(token, now).await?;
        if state.revoked.contains(&claims.sid) {
            return Err(AppError::unauthorized(
                "unauthenticated",
                "This session has ended.",
            ));
        }
        return Ok(Some(AuthUser {
            user_id: claims.sub.clone(),
            session_id: claims.sid.clone(),
            role: claims.role,
            vip: claims.vip,
            via: Via::Bearer,
        }));
    }
    let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let key = hash_token(&secret);
    let session = match state.cookie_sessions.get(&key) {
        Some(s) => Some(s),
        None => {
            let found = sessions::find_cookie_session(&state.db, now, &secret).await?;
            if let Some(s) = &found {
                state.cookie_sessions.insert(key, s.clone());
            }
            found
        }
    };
    let Some(session) =
        session.filter(|s| s.expires_at > now && !state.revoked.contains(&s.family_id))
    else {
        return Err(AppError::unauthorized(
            "unauthenticated",
            "This session has ended; sign in again.",
        ));
    };
    if !is_safe(&parts.method) {
        let expected = state.secrets.csrf_token(&session.family_id);
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(presented, &expected) {
            return Err(AppError::forbidden(
                "csrf_failed",
                "The CSRF token is missing or wrong.",
            ));
        }
    }
    Ok(Some(AuthUser {
        user_id: session.user_id,
        session_id: session.family_id,
        role: session.role,
        vip: session.vip,
        via: Via::Cookie,
    }))
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of a cookie.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
