use std::sync::Arc;

use boxoffice::{AppResult, AppState, auth::deletion::LiveOrders};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::helpers::{PASSWORD, Spawn, TestApp, assert_problem};

async fn delete_me(
    app: &TestApp,
    token: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = app.client.delete(app.url("/auth/me")).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn deleting_an_account_anonymises_it_ends_sessions_and_frees_the_address() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let response = delete_me(
        &app,
        &user.access_token,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_as("/auth/me", &user.access_token).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let login = app
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": PASSWORD}),
        )
        .await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let mails = app.mail.wait_for(&user.email, 2).await;
    assert!(
        mails.iter().any(|m| m.subject.contains("삭제")),
        "farewell mail to the old address"
    );

    use boxoffice::db::entities::users;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let rows = users::Entity::find()
        .filter(users::Column::Status.eq("DELETED"))
        .all(&app.state.db)
        .await
        .expect("query");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].deleted_at.is_some());
    assert!(rows[0].name.is_none() && rows[0].nickname.is_none() && rows[0].password.is_none());
    assert!(!rows[0].email.contains(&user.email), "address anonymised");

    // The address can sign up again.
    app.signup(&user.email).await;
}

#[tokio::test]
async fn a_recent_sign_in_stands_in_for_the_password_for_five_minutes() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    app.clock
        .advance(Duration::minutes(5) + Duration::seconds(1));
    let stale = delete_me(&app, &user.access_token, None).await;
    assert_problem(stale, StatusCode::FORBIDDEN, "reauthentication_required").await;
    let (fresh, _) = app.login(&user.email).await;
    assert_eq!(
        delete_me(&app, &fresh, None).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_wrong_password_does_not_delete_the_account() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let (fresh, _) = app.login(&user.email).await;
    let response = delete_me(&app, &fresh, Some(json!({"password": "not my password"}))).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        app.get_as("/auth/me", &fresh).await.status(),
        StatusCode::OK
    );
}

struct EveryoneHasOrders;

#[async_trait::async_trait]
impl LiveOrders for EveryoneHasOrders {
    async fn exist_for(&self, _: &AppState, _: &str) -> AppResult<bool> {
        Ok(true)
    }
}

#[tokio::test]
async fn an_account_with_live_orders_cannot_be_deleted() {
    let app = TestApp::spawn_with(Spawn {
        live_orders: Some(Arc::new(EveryoneHasOrders)),
        ..Spawn::default()
    })
    .await;
    let user = app.user().await;
    let response = delete_me(
        &app,
        &user.access_token,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "live_orders_exist").await;
    assert_eq!(
        app.get_as("/auth/me", &user.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_deletion_body_that_is_not_json_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let response = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(&user.access_token)
        .body("password=x")
        .send()
        .await
        .expect("request");
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let response = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body("{\"password\": 5}")
        .send()
        .await
        .expect("request");
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn the_last_active_admin_cannot_delete_their_account() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let response = delete_me(
        &app,
        &admin.access_token,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "last_admin").await;
    let second = app.admin().await;
    let response = delete_me(
        &app,
        &second.access_token,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "another admin remains"
    );
}

#[tokio::test]
async fn password_guesses_through_deletion_are_limited_per_account() {
    let app = TestApp::spawn().await;
    let user = app.user().await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(
            delete_me(
                &app,
                &user.access_token,
                Some(json!({"password": "a wrong guess"})),
            )
            .await
            .status(),
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count()
            <= 20
    );
}
