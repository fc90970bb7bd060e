//! Hostile and broken requests: each gets a clear problem+json answer, never a 500.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};

const JSON_ROUTES: &[&str] = &[
    "/auth/signup",
    "/auth/verify-email",
    "/auth/verify-email/resend",
    "/auth/login",
    "/auth/refresh",
];

#[tokio::test]
async fn malformed_json_is_400_malformed_body() {
    let app = TestApp::spawn().await;
    for path in JSON_ROUTES {
        for body in ["{", "{\"", "[", "\u{0}", "nul\u{0}l", "}", "{,}"] {
            let response = app.post_raw(path, "application/json", body).await;
            assert_problem(response, StatusCode::BAD_REQUEST, "malformed_body").await;
        }
    }
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422() {
    let app = TestApp::spawn().await;
    for path in JSON_ROUTES {
        for body in [
            json!({}),
            json!({"email": 42, "password": true}),
            json!([]),
            json!("text"),
            json!(null),
        ] {
            let response = app.post(path, &body).await;
            assert_problem(
                response,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            )
            .await;
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::spawn().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = app
            .post_raw("/auth/login", content_type, "email=a&password=b")
            .await;
        assert_problem(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
    let none = app
        .client
        .post(app.url("/auth/login"))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_problem(
        none,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn a_two_megabyte_body_is_413() {
    let app = TestApp::spawn().await;
    let huge = format!(
        "{{\"email\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let response = app.post_raw("/auth/signup", "application/json", huge).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn long_and_unicode_addresses_are_handled() {
    let app = TestApp::spawn().await;
    let long = format!("{}@example.com", "a".repeat(300));
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": long, "password": PASSWORD, "name": "x"}),
        )
        .await;
    let body = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "email");
    let login = app
        .post("/auth/login", &json!({"email": long, "password": PASSWORD}))
        .await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // As in HTML forms: an internationalised domain is fine, a non-ASCII local part is not.
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "사용자@example.com", "password": PASSWORD, "name": "x"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "minji@예시.한국", "password": PASSWORD, "name": "🎫 김민지 👩‍🎤"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.expect("json");
    assert_eq!(user["name"], "🎫 김민지 👩‍🎤");
}

#[tokio::test]
async fn sql_and_html_in_strings_are_just_text() {
    let app = TestApp::spawn().await;
    let nasty = [
        "'; DROP TABLE users; --",
        "<script>alert(1)</script>",
        "\" OR \"1\"=\"1",
        "Robert'); --",
    ];
    for (i, text) in nasty.iter().enumerate() {
        let email = format!("nasty{i}@example.com");
        let response = app
            .post(
                "/auth/signup",
                &json!({"email": email, "password": PASSWORD, "name": text, "nickname": text}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{text}");
        let user: Value = response.json().await.expect("json");
        assert_eq!(user["name"], *text);
        let login = app
            .post("/auth/login", &json!({"email": text, "password": text}))
            .await;
        assert!(login.status() == StatusCode::UNAUTHORIZED, "{text}");
    }
    // The table is still there.
    app.signup("after@example.com").await;
}

#[tokio::test]
async fn nul_bytes_and_control_characters_are_refused() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({"email": "nul\u{0}@example.com", "password": PASSWORD, "name": "x"}),
        json!({"email": "ok@example.com", "password": "pass\u{0}word-long-enough", "name": "x"}),
        json!({"email": "ok@example.com", "password": PASSWORD, "name": "bell\u{7}"}),
    ];
    for body in cases {
        let response = app.post("/auth/signup", &body).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn names_that_read_differently_from_what_they_hold_are_refused() {
    let app = TestApp::spawn().await;
    for name in [
        "\u{202E}evil",
        "a\u{2066}b",
        "zero\u{200B}width",
        "\u{FEFF}bom",
    ] {
        let response = app
            .post(
                "/auth/signup",
                &json!({"email": "bidi@example.com", "password": PASSWORD, "name": name}),
            )
            .await;
        let problem = assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(
            problem["errors"][0]["code"], "invalid_characters",
            "{name:?}"
        );
    }
    // Hangul, emoji and joined emoji are names like any other.
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "family@example.com", "password": PASSWORD, "name": "김민지 👨\u{200D}👩\u{200D}👧"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_fields_are_refused_rather_than_ignored() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "x@example.com", "password": PASSWORD, "name": "x", "role": "ADMIN"}),
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
async fn negative_and_huge_numbers_where_strings_belong_are_422() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            "/auth/verify-email",
            &json!({"email": "x@example.com", "code": -123456}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .post_raw(
            "/auth/verify-email",
            "application/json",
            "{\"email\":\"x@example.com\",\"code\":1e999}",
        )
        .await;
    assert!(response.status().is_client_error());
}
