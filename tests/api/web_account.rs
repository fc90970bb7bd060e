//! The account pages: only ever the signed-in person's own data, escaped, in their language.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Browser, TestApp};

#[tokio::test]
async fn account_pages_send_signed_out_visitors_to_sign_in() {
    let app = TestApp::spawn().await;
    for path in [
        "/account",
        "/account/sessions",
        "/account/history",
        "/account/passkeys",
        "/account/identities",
        "/account/delete",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            Browser::location(&response).starts_with("/account/sign-in?next="),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_account_pages_show_the_persons_own_data_escaped() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let (browser, csrf) = app.signed_in_browser(&user, None).await;
    let patched = browser
        .client
        .patch(app.url("/auth/me"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"nickname": "<script>alert(1)</script>", "locale": "en"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), StatusCode::OK);

    let body = browser.get("/account").await.text().await.expect("body");
    assert!(body.contains(&user.email));
    assert!(
        !body.contains("<script>alert(1)"),
        "the nickname is escaped"
    );
    assert!(
        body.contains(r#"<html lang="en">"#),
        "the profile's language without a cookie"
    );

    let body = browser
        .get("/account/sessions")
        .await
        .text()
        .await
        .expect("body");
    assert!(body.contains("This device"));
    let body = browser
        .get("/account/history")
        .await
        .text()
        .await
        .expect("body");
    assert!(body.contains("Success"));
    for path in [
        "/account/passkeys",
        "/account/identities",
        "/account/delete",
    ] {
        assert_eq!(browser.get(path).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn another_persons_session_cannot_be_ended_from_the_sessions_page() {
    let app = TestApp::spawn().await;
    let (owner, stranger) = (app.user().await, app.user().await);
    let (owner_browser, _) = app.signed_in_browser(&owner, None).await;
    let body = owner_browser
        .get("/account/sessions")
        .await
        .text()
        .await
        .expect("body");
    assert!(body.contains("This device") || body.contains("지금 이 기기"));
    let sessions: serde_json::Value = app
        .get_as("/auth/sessions", &owner.access_token)
        .await
        .json()
        .await
        .expect("json");
    let owners_session = sessions[0]["id"].as_str().expect("id").to_owned();

    let (browser, csrf) = app.signed_in_browser(&stranger, None).await;
    let response = browser
        .client
        .delete(app.url(&format!("/auth/sessions/{owners_session}")))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        owner_browser.get("/account").await.status(),
        StatusCode::OK,
        "the owner is still signed in"
    );
}
