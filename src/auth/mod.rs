//! Accounts: sign-up, verification, sign-in, tokens, browser sessions.

pub mod account_handlers;
pub mod attempts;
pub mod ceremonies;
pub mod codes;
pub mod deletion;
pub mod device;
pub mod email_login;
pub mod extract;
pub mod flows;
pub mod handlers;
pub mod identities;
pub mod keys;
pub mod lockout;
pub mod model;
pub mod oauth;
pub mod password;
pub mod recovery;
pub mod sessions;
pub mod signature_checks;
pub mod signin;
pub mod tokens;
pub mod users;
pub mod webauthn;

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
        .routes(routes!(
            handlers::me,
            handlers::update_me,
            account_handlers::delete_me
        ))
        .routes(routes!(account_handlers::forgot_password))
        .routes(routes!(account_handlers::reset_password))
        .routes(routes!(account_handlers::change_password))
        .routes(routes!(account_handlers::list_sessions))
        .routes(routes!(account_handlers::delete_session))
        .routes(routes!(account_handlers::revoke_other_sessions))
        .routes(routes!(account_handlers::login_history))
        .routes(routes!(handlers::jwks))
        .routes(routes!(email_login::request_code))
        .routes(routes!(email_login::finish_code))
        .routes(routes!(oauth::handlers::providers))
        .routes(routes!(oauth::handlers::start))
        .routes(routes!(oauth::handlers::callback))
        .routes(routes!(oauth::handlers::token))
        .routes(routes!(oauth::handlers::start_link))
        .routes(routes!(oauth::handlers::link_with_code))
        .routes(routes!(oauth::handlers::claim_link))
        .routes(routes!(oauth::handlers::signup))
        .routes(routes!(oauth::handlers::list_identities))
        .routes(routes!(oauth::handlers::delete_identity))
        .routes(routes!(webauthn::handlers::start_registration))
        .routes(routes!(webauthn::handlers::finish_registration))
        .routes(routes!(webauthn::handlers::start_authentication))
        .routes(routes!(webauthn::handlers::finish_authentication))
        .routes(routes!(webauthn::handlers::list))
        .routes(routes!(
            webauthn::handlers::rename,
            webauthn::handlers::remove
        ))
}
