//! Real-browser journeys: Chromium (headless) through chromedriver against an app served at
//! `http://localhost:PORT`. Skipped with a printed reason when no browser is installed.

#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code, unused_imports)]
#[path = "../api/shop.rs"]
mod shop;

mod account;
mod buyer;
mod harness;
mod organizer;
mod site;

use helpers::{PASSWORD, Spawn, TestApp};

/// The app at `http://localhost:PORT` (the origin browsers, cookies and WebAuthn need).
pub async fn app() -> TestApp {
    TestApp::spawn_with(Spawn {
        localhost: true,
        ..Spawn::default()
    })
    .await
}

/// Signs in through the sign-in page and waits until it has moved on to `next`.
pub async fn sign_in(browser: &harness::Browser, email: &str, next: &str) {
    browser
        .goto(&format!("/account/sign-in?next={}", urlencode(next)))
        .await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click("#sign-in button[type=submit]").await;
    browser
        .wait_until(
            "signed in",
            "!location.pathname.startsWith('/account/sign-in')",
        )
        .await;
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
