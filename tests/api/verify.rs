use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{TestApp, assert_problem};

fn wrong(code: &str) -> String {
    let first = code.as_bytes()[0];
    let replacement = if first == b'9' {
        '0'
    } else {
        (first + 1) as char
    };
    format!("{replacement}{}", &code[1..])
}

#[tokio::test]
async fn the_mailed_code_verifies_the_address() {
    let app = TestApp::spawn().await;
    app.signup("jisoo@example.com").await;
    let code = app.mail.wait_for("jisoo@example.com", 1).await[0].code();
    let response = app
        .post(
            "/auth/verify-email",
            &json!({"email": "JISOO@example.com", "code": code}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.expect("json");
    assert_eq!(user["email_verified"], true);
    // The code is spent: a replay is refused.
    let replay = app
        .post(
            "/auth/verify-email",
            &json!({"email": "jisoo@example.com", "code": code}),
        )
        .await;
    assert_problem(replay, StatusCode::BAD_REQUEST, "invalid_code").await;
}

#[tokio::test]
async fn a_wrong_code_is_invalid_and_the_fifth_wrong_try_kills_the_code() {
    let app = TestApp::spawn().await;
    app.signup("wrong@example.com").await;
    let code = app.mail.wait_for("wrong@example.com", 1).await[0].code();
    let bad = wrong(&code);
    for _ in 0..4 {
        let response = app
            .post(
                "/auth/verify-email",
                &json!({"email": "wrong@example.com", "code": bad}),
            )
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_code").await;
    }
    let fifth = app
        .post(
            "/auth/verify-email",
            &json!({"email": "wrong@example.com", "code": bad}),
        )
        .await;
    assert_problem(fifth, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let right = app
        .post(
            "/auth/verify-email",
            &json!({"email": "wrong@example.com", "code": code}),
        )
        .await;
    assert!(right.headers().get("retry-after").is_some());
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn parallel_guesses_never_get_more_than_five_tries() {
    let app = TestApp::spawn().await;
    app.signup("guess@example.com").await;
    let code = app.mail.wait_for("guess@example.com", 1).await[0].code();
    let guesses = (0..20).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/auth/verify-email"));
        let guess = format!(
            "{:06}",
            (code.parse::<u32>().expect("digits") + 1 + i) % 1_000_000
        );
        async move {
            client
                .post(url)
                .json(&json!({"email": "guess@example.com", "code": guess}))
                .send()
                .await
                .expect("request")
                .status()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let counted = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count()
        + statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
    assert_eq!(counted, 20);
    // At most five guesses are ever compared with the code, however they interleave.
    assert!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::BAD_REQUEST)
            .count()
            <= 5,
        "{statuses:?}"
    );
    let right = app
        .post(
            "/auth/verify-email",
            &json!({"email": "guess@example.com", "code": code}),
        )
        .await;
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn a_code_expires_after_five_minutes() {
    let app = TestApp::spawn().await;
    app.signup("late@example.com").await;
    let code = app.mail.wait_for("late@example.com", 1).await[0].code();
    app.clock
        .advance(Duration::minutes(5) + Duration::seconds(1));
    let response = app
        .post(
            "/auth/verify-email",
            &json!({"email": "late@example.com", "code": code}),
        )
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "code_expired").await;
}

#[tokio::test]
async fn resend_answers_202_even_for_unknown_addresses() {
    let app = TestApp::spawn().await;
    for email in ["nobody@example.com", "not an email", ""] {
        let response = app
            .post("/auth/verify-email/resend", &json!({"email": email}))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{email}");
    }
}

#[tokio::test]
async fn resend_mails_at_most_once_a_minute_and_replaces_the_code() {
    let app = TestApp::spawn().await;
    app.signup("again@example.com").await;
    let first = app.mail.wait_for("again@example.com", 1).await[0].code();
    let response = app
        .post(
            "/auth/verify-email/resend",
            &json!({"email": "again@example.com"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    app.clock.advance(Duration::seconds(61));
    let response = app
        .post(
            "/auth/verify-email/resend",
            &json!({"email": "again@example.com"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mails = app.mail.wait_for("again@example.com", 2).await;
    assert_eq!(mails.len(), 2, "the early resend sent nothing");
    let second = mails[1].code();
    if first != second {
        let old = app
            .post(
                "/auth/verify-email",
                &json!({"email": "again@example.com", "code": first}),
            )
            .await;
        assert_problem(old, StatusCode::BAD_REQUEST, "invalid_code").await;
    }
    let new = app
        .post(
            "/auth/verify-email",
            &json!({"email": "again@example.com", "code": second}),
        )
        .await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_code_is_a_validation_error() {
    let app = TestApp::spawn().await;
    app.signup("fmt@example.com").await;
    for code in ["12345", "1234567", "abcdef", "12 456", "１２３４５６"] {
        let response = app
            .post(
                "/auth/verify-email",
                &json!({"email": "fmt@example.com", "code": code}),
            )
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}
