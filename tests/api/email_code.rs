//! The e-mail code fallback: a one-time 6-digit code signs in accounts with or without a
//! password; asking never reveals whether an address has an account.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

#[tokio::test]
async fn a_mailed_code_signs_in_once() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let response = app
        .post("/auth/login/email-code", &json!({"email": user.email}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mails = app.mail.wait_for(&user.email, 2).await;
    let code = mails[1].code();
    let body = json!({"email": user.email, "code": code});
    let response = app.post("/auth/login/email-code/finish", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.expect("json");
    let token = pair["access_token"].as_str().expect("token");
    let history: Value = app
        .get_as("/auth/login-history", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["method"], "EMAIL_CODE");
    assert_eq!(history["items"][0]["result"], "SUCCESS");
    let again = app.post("/auth/login/email-code/finish", &body).await;
    assert_problem(again, StatusCode::BAD_REQUEST, "invalid_code").await;
}

#[tokio::test]
async fn an_account_without_a_password_signs_in_with_a_code() {
    let app = TestApp::spawn().await;
    let user = app.buyers(1).await.remove(0);
    app.post("/auth/login/email-code", &json!({"email": user.email}))
        .await;
    let code = app.mail.wait_for(&user.email, 1).await[0].code();
    let response = app
        .post(
            "/auth/login/email-code/finish?session=cookie",
            &json!({"email": user.email, "code": code}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_some());
}

#[tokio::test]
async fn asking_for_an_unknown_address_looks_the_same_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/auth/login/email-code",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = app
        .post(
            "/auth/login/email-code/finish",
            &json!({"email": "nobody@example.com", "code": "123456"}),
        )
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_code").await;
    assert!(app.mail.to("nobody@example.com").is_empty());
}

#[tokio::test]
async fn a_wrong_code_is_refused_and_shows_in_login_history() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.post("/auth/login/email-code", &json!({"email": user.email}))
        .await;
    let code = app.mail.wait_for(&user.email, 2).await[1].code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = app
        .post(
            "/auth/login/email-code/finish",
            &json!({"email": user.email, "code": wrong}),
        )
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_code").await;
    let history: Value = app
        .get_as("/auth/login-history", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["items"][0]["method"], "EMAIL_CODE");
    assert_eq!(history["items"][0]["result"], "INVALID_CODE");
}
