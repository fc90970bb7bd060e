use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_problem};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

async fn login_with_agent(app: &TestApp, email: &str, agent: &str) -> Value {
    app.client
        .post(app.url("/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn sessions_are_listed_with_device_ip_and_the_current_one_marked() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let chrome = login_with_agent(&app, &user.email, CHROME).await;
    let list: Vec<Value> = app
        .get_as("/auth/sessions", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let other = list
        .iter()
        .find(|s| s["current"] == false)
        .expect("other session");
    assert_eq!(other["device"], "Chrome on Windows 10");
    assert_eq!(other["ip"], "127.0.0.1");
    assert!(other["created_at"].is_string() && other["last_used_at"].is_string());
    assert!(chrome["access_token"].is_string());
}

#[tokio::test]
async fn ending_one_session_stops_its_tokens_at_once() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let other = login_with_agent(&app, &user.email, CHROME).await;
    let other_access = other["access_token"].as_str().expect("token");
    let list: Vec<Value> = app
        .get_as("/auth/sessions", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    let id = list.iter().find(|s| s["current"] == false).expect("other")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = app
        .client
        .delete(app.url(&format!("/auth/sessions/{id}")))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_as("/auth/me", other_access).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_user_cannot_end_another_users_session() {
    let app = TestApp::spawn().await;
    let alice = app.user().await;
    let bob = app.user().await;
    let bobs: Vec<Value> = app
        .get_as("/auth/sessions", &bob.access_token)
        .await
        .json()
        .await
        .expect("json");
    let id = bobs[0]["id"].as_str().expect("id");
    let response = app
        .client
        .delete(app.url(&format!("/auth/sessions/{id}")))
        .bearer_auth(&alice.access_token)
        .send()
        .await
        .expect("request");
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        app.get_as("/auth/me", &bob.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoke_others_keeps_only_the_current_session() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let (a, _) = app.login(&user.email).await;
    let (b, _) = app.login(&user.email).await;
    let response = app
        .post_as(
            "/auth/sessions/revoke-others",
            &user.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["revoked"], 2);
    for token in [a, b] {
        assert_problem(
            app.get_as("/auth/me", &token).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    let list: Vec<Value> = app
        .get_as("/auth/sessions", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["current"], true);
}

#[tokio::test]
async fn login_history_lists_own_attempts_newest_first_in_pages() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let wrong = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": "not the password"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    app.login(&user.email).await;
    let page: Value = app
        .get_as("/auth/login-history?limit=2", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["result"], "SUCCESS");
    assert_eq!(items[1]["result"], "INVALID_CREDENTIALS");
    assert_eq!(items[0]["method"], "PASSWORD");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let rest: Value = app
        .get_as(
            &format!("/auth/login-history?limit=2&cursor={cursor}"),
            &user.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        rest["items"].as_array().expect("items").len(),
        1,
        "the first sign-in"
    );
    assert!(rest["next_cursor"].is_null());
    let other = app.user().await;
    let theirs: Value = app
        .get_as("/auth/login-history", &other.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        theirs["items"].as_array().expect("items").len(),
        1,
        "only their own"
    );
    let bad = app
        .get_as("/auth/login-history?limit=0", &user.access_token)
        .await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}
