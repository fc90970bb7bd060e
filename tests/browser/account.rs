//! Accounts in the browser: signing up with the e-mailed code, and passkeys through Chromium's
//! virtual authenticator (registration, then a discoverable sign-in without typing anything).

use crate::{
    app,
    harness::{Browser, Options},
    sign_in,
};

#[tokio::test]
async fn a_visitor_signs_up_confirms_the_emailed_code_and_signs_in() {
    let app = app().await;
    let Some(browser) = Browser::open(&app.base, Options::default()).await else {
        return;
    };
    let email = format!("new-{}@example.com", uuid::Uuid::now_v7().simple());
    browser.goto("/account/sign-up").await;
    browser.screenshot("sign-up-desktop").await;
    browser.fill("#sign-up [name=email]", &email).await;
    browser
        .fill("#sign-up [name=password]", crate::helpers::PASSWORD)
        .await;
    browser.fill("#sign-up [name=name]", "김민지").await;
    browser.click("#sign-up button[type=submit]").await;
    browser
        .wait_until("the code page", "location.pathname === '/account/verify'")
        .await;
    let mail = app.mail.wait_for(&email, 1).await;
    browser.fill("#code", &mail[0].code()).await;
    browser.click("#verify button[type=submit]").await;
    browser
        .wait_until(
            "the sign-in page",
            "location.pathname === '/account/sign-in'",
        )
        .await;
    assert!(browser.text("main").await.contains("인증되었습니다"));
    sign_in(&browser, &email, "/account/orders").await;
    assert_eq!(browser.path().await, "/account/orders");
    assert!(browser.text("header").await.contains("로그아웃"));

    // Switching to English while signed in is remembered in the profile.
    browser.click("a[data-lang-switch]").await;
    browser
        .wait_until("English pages", "document.documentElement.lang === 'en'")
        .await;
    let parsed = boxoffice::auth::model::Email::parse(&email).expect("email");
    let account = boxoffice::auth::users::find_by_email(&app.state.db, &parsed)
        .await
        .expect("read")
        .expect("the account");
    assert_eq!(account.locale, "en");
    browser.close().await;
}

#[tokio::test]
async fn a_passkey_registered_in_the_browser_signs_in_without_typing_an_email() {
    let app = app().await;
    let user = app.user().await;
    let Some(browser) = Browser::open(&app.base, Options::default()).await else {
        return;
    };
    browser.add_virtual_authenticator().await;
    sign_in(&browser, &user.email, "/").await;
    browser.goto("/account/passkeys").await;
    browser.fill("#passkey-name", "노트북").await;
    browser.click("#add-passkey button[type=submit]").await;
    browser
        .wait_until(
            "the new passkey listed",
            "[...document.querySelectorAll('.card input[name=name]')].some(i => i.value === '노트북')",
        )
        .await;
    browser.screenshot("passkeys-desktop").await;

    // Sign out, then sign in with the passkey alone (resident key, user verified).
    browser
        .click("header form[data-api='/auth/logout'] button")
        .await;
    browser
        .wait_until(
            "signed out",
            "document.querySelector('header').textContent.includes('로그인')",
        )
        .await;
    browser
        .goto("/account/sign-in?next=%2Faccount%2Forders")
        .await;
    browser.screenshot("sign-in-desktop").await;
    // With a passkey in the authenticator, the e-mail field's autofill (conditional UI) may finish
    // the sign-in by itself; otherwise the button does it.
    browser
        .js("document.getElementById('passkey-sign-in')?.click(); return true;")
        .await;
    browser
        .wait_until(
            "signed in by passkey",
            "location.pathname === '/account/orders'",
        )
        .await;
    assert!(browser.text("header").await.contains("로그아웃"));
    browser.close().await;
}
