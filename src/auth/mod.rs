//! Accounts: sign-up, verification, sign-in, tokens, browser sessions.

pub mod codes;
pub mod extract;
pub mod flows;
pub mod handlers;
pub mod keys;
pub mod model;
pub mod password;
pub mod sessions;
pub mod tokens;
pub mod users;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;

pub use extract::{AuthUser, MaybeAuthUser, RequireRole};

/// The `/auth/*` routes and the JWKS.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::signup))
        .routes(routes!(handlers::verify_email))
        .routes(routes!(handlers::resend_verification))
        .routes(routes!(handlers::login))
        .routes(routes!(handlers::refresh))
        .routes(routes!(handlers::logout))
        .routes(routes!(handlers::me, handlers::update_me))
        .routes(routes!(handlers::jwks))
}
