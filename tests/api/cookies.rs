use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};

struct Browser {
    client: reqwest::Client,
    csrf: String,
    set_cookie: String,
}

async fn browser_login(app: &TestApp, email: &str) -> Browser {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let response = client
        .post(app.url("/auth/login?session=cookie"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    Browser {
        client,
        csrf: body["csrf_token"].as_str().expect("csrf").to_owned(),
        set_cookie,
    }
}

#[tokio::test]
async fn a_browser_sign_in_sets_an_http_only_session_cookie() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let browser = browser_login(&app, &user.email).await;
    assert!(browser.set_cookie.starts_with("bo_session="));
    assert!(browser.set_cookie.contains("HttpOnly"));
    assert!(browser.set_cookie.contains("SameSite=Lax"));
    assert!(!browser.set_cookie.contains("Secure"), "http PUBLIC_URL");
    let me = browser
        .client
        .get(app.url("/auth/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_request_that_changes_something_needs_the_csrf_token() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let browser = browser_login(&app, &user.email).await;
    let without = browser
        .client
        .patch(app.url("/auth/me"))
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .expect("request");
    assert_problem(without, StatusCode::FORBIDDEN, "csrf_failed").await;
    let wrong = browser
        .client
        .patch(app.url("/auth/me"))
        .header("x-csrf-token", "forged")
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .expect("request");
    assert_problem(wrong, StatusCode::FORBIDDEN, "csrf_failed").await;
    let with = browser
        .client
        .patch(app.url("/auth/me"))
        .header("x-csrf-token", &browser.csrf)
        .json(&json!({"nickname": "x"}))
        .send()
        .await
        .expect("request");
    assert_eq!(with.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_logout_clears_the_cookie_and_ends_the_session() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let browser = browser_login(&app, &user.email).await;
    let cookie = browser
        .set_cookie
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let logout = browser
        .client
        .post(app.url("/auth/logout"))
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .expect("request");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(
        logout.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    // Replaying the old cookie by hand does not bring the session back.
    let replay = app
        .client
        .get(app.url("/auth/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    assert_problem(replay, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_made_up_cookie_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("cookie", "bo_session=made-up")
        .send()
        .await
        .expect("request");
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn an_unknown_session_mode_is_a_validation_error() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let response = app
        .post(
            "/auth/login?session=jwt",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}
