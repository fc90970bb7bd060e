//! Server-rendered pages for buyers, organizers and admins, in Korean and English.
//!
//! Pages read through the same domain functions as the JSON API; every change a page makes goes
//! through the JSON API from `enhance.js` (one validation path, one error contract, the CSRF header
//! on every fetch). Without JavaScript the reading pages still work and live pages say they need it.

pub mod account;
pub mod assets;
pub mod buy;
pub mod catalog;
pub mod context;
pub mod errors;
pub mod format;
pub mod i18n;
pub mod manage;
pub mod orders;
pub mod profile;

use axum::{
    Router,
    extract::Query,
    http::header,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use crate::app::AppState;

/// All page and asset routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(catalog::list))
        .route("/e/{id}", get(catalog::event))
        .route("/e/{id}/buy", get(buy::buy))
        .route("/e/{id}/queue", get(buy::queue))
        .route("/checkout/{id}", get(orders::checkout))
        .route("/account", get(profile::home))
        .route("/account/sessions", get(profile::sessions_page))
        .route("/account/history", get(profile::history))
        .route("/account/passkeys", get(profile::passkeys))
        .route("/account/identities", get(profile::identities_page))
        .route("/account/delete", get(profile::delete))
        .route("/account/sign-in", get(account::sign_in))
        .route("/account/sign-up", get(account::sign_up))
        .route("/account/verify", get(account::verify))
        .route("/account/reset", get(account::reset))
        .route("/account/orders", get(orders::list))
        .route("/account/orders/{id}", get(orders::detail))
        .route("/lang", get(switch_lang))
        .route("/static/{file}", get(assets::serve))
        .merge(manage::router())
}

/// `?to=` and where to go back.
#[derive(Deserialize)]
struct SwitchLang {
    to: String,
    next: Option<String>,
}

/// `GET /lang?to=en&next=/e/1`: remembers the language in a cookie and goes back. The profile
/// keeps it too once the account page saves it.
async fn switch_lang(Query(q): Query<SwitchLang>) -> Response {
    let next = context::safe_next(q.next.as_deref());
    match i18n::Lang::parse(&q.to) {
        Ok(lang) => (
            [(header::SET_COOKIE, i18n::lang_cookie(lang))],
            Redirect::to(&next),
        )
            .into_response(),
        Err(_) => Redirect::to(&next).into_response(),
    }
}
