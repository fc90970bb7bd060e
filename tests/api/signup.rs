use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};

#[tokio::test]
async fn signup_creates_an_unverified_account_and_mails_a_code() {
    let app = TestApp::spawn().await;
    let user = app.signup("minji@example.com").await;
    assert_eq!(user["email"], "minji@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["role"], "USER");
    assert!(user.get("password").is_none(), "never the hash");
    let mails = app.mail.wait_for("minji@example.com", 1).await;
    let code = mails[0].code();
    assert_eq!(code.len(), 6);
    assert!(
        mails[0].text.contains("인증 코드"),
        "Korean by default: {}",
        mails[0].text
    );
    assert!(mails[0].html.contains(&code));
}

#[tokio::test]
async fn mail_is_written_in_the_users_language() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/auth/signup", &json!({"email": "tom@example.com", "password": PASSWORD, "name": "Tom", "locale": "en"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mail = &app.mail.wait_for("tom@example.com", 1).await[0];
    assert!(mail.text.contains("Enter the code"), "{}", mail.text);
    assert!(
        mail.subject.contains("verification code"),
        "{}",
        mail.subject
    );
}

#[tokio::test]
async fn an_address_is_taken_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.signup("Minji@Example.com").await;
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "  MINJI@example.COM ", "password": PASSWORD, "name": "x"}),
        )
        .await;
    assert_problem(response, StatusCode::CONFLICT, "email_taken").await;
}

#[tokio::test]
async fn sixteen_concurrent_signups_with_one_address_create_exactly_one_account() {
    let app = TestApp::spawn().await;
    let attempts = (0..16).map(|i| {
        let client = app.client.clone();
        let url = app.url("/auth/signup");
        async move {
            client
                .post(url)
                .json(&json!({"email": "race@example.com", "password": PASSWORD, "name": format!("racer {i}")}))
                .send()
                .await
                .expect("request")
        }
    });
    let responses = futures::future::join_all(attempts).await;
    let mut created = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                let body: Value = response.json().await.expect("json");
                assert_eq!(body["code"], "email_taken");
            }
            other => panic!(
                "unexpected {other}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.mail.wait_for("race@example.com", 1).await.len(), 1);
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let cases = [
        ("short", "too_short"),
        ("password123", "too_common"),
        ("QWERTYUIOP", "too_common"),
        ("weak@example.com", "same_as_email"),
    ];
    for (password, code) in cases {
        let response = app
            .post(
                "/auth/signup",
                &json!({"email": "weak@example.com", "password": password, "name": "x"}),
            )
            .await;
        let body = assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "password");
        assert_eq!(body["errors"][0]["code"], code, "{password}");
    }
    let long = "가".repeat(129);
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "weak@example.com", "password": long, "name": "x"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "not-an-email", "password": "x", "name": "  ", "locale": "fr"}),
        )
        .await;
    let body = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in ["email", "name", "locale"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
}
