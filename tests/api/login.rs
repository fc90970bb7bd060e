use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};

#[tokio::test]
async fn a_verified_user_signs_in_and_reads_their_profile() {
    let app = TestApp::spawn().await;
    app.signup_verified("hana@example.com").await;
    let response = app
        .post(
            "/auth/login",
            &json!({"email": "Hana@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().expect("token");
    let me: Value = app
        .get_as("/auth/me", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "hana@example.com");
    assert_eq!(me["email_verified"], true);
}

#[tokio::test]
async fn unknown_address_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.signup_verified("same@example.com").await;
    let wrong = app
        .post(
            "/auth/login",
            &json!({"email": "same@example.com", "password": "not the password"}),
        )
        .await;
    let a = assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = app
        .post(
            "/auth/login",
            &json!({"email": "ghost@example.com", "password": "not the password"}),
        )
        .await;
    let b = assert_problem(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(a["detail"], b["detail"]);
}

#[tokio::test]
async fn an_unverified_account_hears_email_not_verified_only_after_the_right_password() {
    let app = TestApp::spawn().await;
    app.signup("fresh@example.com").await;
    let wrong = app
        .post(
            "/auth/login",
            &json!({"email": "fresh@example.com", "password": "not the password"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let right = app
        .post(
            "/auth/login",
            &json!({"email": "fresh@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(right, StatusCode::FORBIDDEN, "email_not_verified").await;
}

#[tokio::test]
async fn profile_changes_are_validated_and_saved() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let patch = |body: Value| {
        app.client
            .patch(app.url("/auth/me"))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
    };
    let response = patch(json!({"nickname": "<b>민지</b>", "locale": "en"}))
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.expect("json");
    assert_eq!(
        me["nickname"], "<b>민지</b>",
        "stored verbatim, escaped only where rendered"
    );
    assert_eq!(me["locale"], "en");
    let cleared: Value = patch(json!({"nickname": null}))
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(cleared["nickname"].is_null());
    assert_eq!(cleared["locale"], "en", "absent fields stay");
    let bad = patch(json!({"locale": "xx", "name": "a".repeat(101)}))
        .await
        .expect("request");
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let unknown = patch(json!({"role": "ADMIN"})).await.expect("request");
    assert_problem(
        unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn me_needs_a_signed_in_user() {
    let app = TestApp::spawn().await;
    assert_problem(
        app.get("/auth/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}
