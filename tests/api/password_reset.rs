use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::helpers::{PASSWORD, TestApp, assert_problem};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn reset_code(app: &TestApp, email: &str, mails_before: usize) -> String {
    let response = app
        .post("/auth/password/forgot", &json!({"email": email}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mails = app.mail.wait_for(email, mails_before + 1).await;
    let mail = mails.last().expect("reset mail");
    assert!(mail.subject.contains("비밀번호 재설정"), "{}", mail.subject);
    mail.code()
}

#[tokio::test]
async fn a_reset_code_sets_a_new_password_and_ends_every_session() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let code = reset_code(&app, &user.email, 1).await;
    let response = app
        .post(
            "/auth/password/reset",
            &json!({"email": user.email, "code": code, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_as("/auth/me", &user.access_token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let refresh = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_problem(refresh, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let old = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(new.status(), StatusCode::OK);
    let mails = app.mail.wait_for(&user.email, 3).await;
    assert!(
        mails.iter().any(|m| m.subject.contains("비밀번호가 변경")),
        "password-changed notice"
    );
}

#[tokio::test]
async fn a_reset_code_works_once() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let code = reset_code(&app, &user.email, 1).await;
    let body = json!({"email": user.email, "code": code, "new_password": NEW_PASSWORD});
    assert_eq!(
        app.post("/auth/password/reset", &body).await.status(),
        StatusCode::NO_CONTENT
    );
    let again = app.post("/auth/password/reset", &body).await;
    assert_problem(again, StatusCode::BAD_REQUEST, "invalid_code").await;
}

#[tokio::test]
async fn a_wrong_or_expired_reset_code_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let code = reset_code(&app, &user.email, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let response = app
        .post(
            "/auth/password/reset",
            &json!({"email": user.email, "code": wrong, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_code").await;
    app.clock
        .advance(Duration::minutes(30) + Duration::seconds(1));
    let late = app
        .post(
            "/auth/password/reset",
            &json!({"email": user.email, "code": code, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(late, StatusCode::BAD_REQUEST, "code_expired").await;
}

#[tokio::test]
async fn five_wrong_reset_codes_kill_the_code() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let code = reset_code(&app, &user.email, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let body = json!({"email": user.email, "code": wrong, "new_password": NEW_PASSWORD});
    for _ in 0..4 {
        assert_problem(
            app.post("/auth/password/reset", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_code",
        )
        .await;
    }
    assert_problem(
        app.post("/auth/password/reset", &body).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    let right = json!({"email": user.email, "code": code, "new_password": NEW_PASSWORD});
    assert_problem(
        app.post("/auth/password/reset", &right).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
}

#[tokio::test]
async fn a_weak_new_password_is_refused_before_the_code_is_spent() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let code = reset_code(&app, &user.email, 1).await;
    let weak = app
        .post(
            "/auth/password/reset",
            &json!({"email": user.email, "code": code, "new_password": "password123"}),
        )
        .await;
    let body = assert_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    let good = app
        .post(
            "/auth/password/reset",
            &json!({"email": user.email, "code": code, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(good.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn forgot_answers_the_same_for_unknown_addresses_in_similar_time() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..5 {
        let start = Instant::now();
        let a = app
            .post("/auth/password/forgot", &json!({"email": user.email}))
            .await;
        known.push(start.elapsed());
        let start = Instant::now();
        let b = app
            .post(
                "/auth/password/forgot",
                &json!({"email": format!("ghost{i}@example.com")}),
            )
            .await;
        unknown.push(start.elapsed());
        assert_eq!(a.status(), StatusCode::ACCEPTED);
        assert_eq!(b.status(), StatusCode::ACCEPTED);
        assert_eq!(a.text().await.expect("body"), b.text().await.expect("body"));
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[2].as_millis() as i64, unknown[2].as_millis() as i64);
    assert!((k - u).abs() < 100, "median known {k} ms vs unknown {u} ms");
    // One reset mail only: the later requests fell within the one-a-minute window.
    let mails = app.mail.wait_for(&user.email, 2).await;
    assert_eq!(mails.len(), 2, "verification + one reset code");
}

#[tokio::test]
async fn a_signed_in_user_changes_their_password_and_other_sessions_end() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let (other_access, _) = app.login(&user.email).await;
    let wrong = app
        .post_as(
            "/auth/password/change",
            &user.access_token,
            &json!({"current_password": "not it at all", "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let weak = app
        .post_as(
            "/auth/password/change",
            &user.access_token,
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let ok = app
        .post_as(
            "/auth/password/change",
            &user.access_token,
            &json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_problem(
        app.get_as("/auth/me", &other_access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let new = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(new.status(), StatusCode::OK);
}
