use boxoffice::db::entities::{login_attempts, security_events};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use time::Duration;

use crate::helpers::{PASSWORD, Spawn, TestApp, assert_problem};

async fn wrong_login(app: &TestApp, email: &str) -> reqwest::Response {
    app.post(
        "/auth/login",
        &json!({"email": email, "password": "definitely wrong"}),
    )
    .await
}

async fn events_of_kind(app: &TestApp, kind: &str) -> u64 {
    security_events::Entity::find()
        .filter(security_events::Column::Kind.eq(kind))
        .count(&app.state.db)
        .await
        .expect("count")
}

#[tokio::test]
async fn the_fifth_wrong_password_locks_the_account_for_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    for _ in 0..5 {
        assert_problem(
            wrong_login(&app, &user.email).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    let locked = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    let retry_after: u64 = locked.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((850..=900).contains(&retry_after), "{retry_after}");
    assert_problem(locked, StatusCode::TOO_MANY_REQUESTS, "account_locked").await;
    let mails = app.mail.wait_for(&user.email, 2).await;
    assert!(
        mails.iter().any(|m| m.subject.contains("잠겼")),
        "lock notice mailed"
    );
    assert_eq!(events_of_kind(&app, "ACCOUNT_LOCKED").await, 1);

    // Not a second early.
    app.clock
        .advance(Duration::minutes(14) + Duration::seconds(59));
    let still = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_problem(still, StatusCode::TOO_MANY_REQUESTS, "account_locked").await;
    app.clock.advance(Duration::seconds(2));
    let open = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(open.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_hundred_parallel_wrong_passwords_get_at_most_five_hashes() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let attempts = (0..100).map(|_| {
        let (client, url, email) = (
            app.client.clone(),
            app.url("/auth/login"),
            user.email.clone(),
        );
        async move {
            client
                .post(url)
                .json(&json!({"email": email, "password": "definitely wrong"}))
                .send()
                .await
                .expect("request")
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert!(checked <= 5, "{checked} passwords were checked");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let hashed = login_attempts::Entity::find()
        .filter(login_attempts::Column::Result.eq("INVALID_CREDENTIALS"))
        .count(&app.state.db)
        .await
        .expect("count");
    assert!(hashed <= 5, "{hashed} hashes");
    let refused = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "still locked for the right password"
    );
}

#[tokio::test]
async fn refused_attempts_are_recorded_too() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    for _ in 0..6 {
        wrong_login(&app, &user.email).await;
    }
    let page: serde_json::Value = app
        .get_as("/auth/login-history?limit=100", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    let results: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["result"].as_str())
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == "INVALID_CREDENTIALS")
            .count(),
        5
    );
    assert_eq!(
        results.iter().filter(|r| **r == "ACCOUNT_LOCKED").count(),
        1
    );
}

#[tokio::test]
async fn a_password_reset_unlocks_the_account() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    for _ in 0..5 {
        wrong_login(&app, &user.email).await;
    }
    app.post("/auth/password/forgot", &json!({"email": user.email}))
        .await;
    let mails = app.mail.wait_for(&user.email, 3).await;
    let code = mails
        .iter()
        .find(|m| m.subject.contains("재설정"))
        .expect("reset mail")
        .code();
    let reset = app
        .post(
            "/auth/password/reset",
            &json!({"email": user.email, "code": code, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let login = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_burst_of_failures_from_one_ip_becomes_a_security_event() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        let response = wrong_login(&app, &format!("nobody{i}@example.com")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(events_of_kind(&app, "FAILURE_BURST").await, 1);
    wrong_login(&app, "nobody-more@example.com").await;
    assert_eq!(
        events_of_kind(&app, "FAILURE_BURST").await,
        1,
        "once per window"
    );
}

#[tokio::test]
async fn one_account_tried_from_many_ips_becomes_a_security_event() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| c.trusted_proxies = "127.0.0.1/32".into(),
        ..Spawn::default()
    })
    .await;
    let user = app.user().await;
    for i in 1..=5 {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"email": user.email, "password": "definitely wrong"}))
            .send()
            .await
            .expect("request");
        assert!(response.status().is_client_error());
    }
    assert_eq!(events_of_kind(&app, "ACCOUNT_MANY_IPS").await, 1);
}

#[tokio::test]
async fn a_sign_in_from_a_new_network_is_an_event_and_a_mail() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| c.trusted_proxies = "127.0.0.1/32".into(),
        ..Spawn::default()
    })
    .await;
    let user = app.user().await;
    assert_eq!(
        events_of_kind(&app, "NEW_IP_PREFIX").await,
        0,
        "the first sign-in is not news"
    );
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", "203.0.113.50")
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(events_of_kind(&app, "NEW_IP_PREFIX").await, 1);
    let mails = app.mail.wait_for(&user.email, 2).await;
    let alert = mails
        .iter()
        .find(|m| m.subject.contains("새로운 기기"))
        .expect("alert mail");
    assert!(alert.text.contains("203.0.113.50"), "{}", alert.text);
    // The same network again is not news.
    let again = app
        .client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", "203.0.113.51")
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(events_of_kind(&app, "NEW_IP_PREFIX").await, 1);
}
