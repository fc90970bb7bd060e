//! Failure drills: a dependency goes away in the middle of traffic; people get clear answers, no
//! 500s, and the service comes back on its own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{FlakyProxy, Spawn, TestApp, TestDb, assert_problem, mysql_base_url},
    shop::{self, Shop},
};

/// Polls `check` every 50 ms for up to 20 s.
async fn within_20s<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 20 s");
}

#[tokio::test]
async fn with_the_database_unreachable_requests_get_clear_503s_and_the_service_recovers_without_a_restart()
 {
    if mysql_base_url().is_none() {
        // An embedded SQLite file cannot become unreachable; this is a MariaDB drill.
        return;
    }
    let db = TestDb::create().await;
    let proxy = FlakyProxy::start(&db.url).await;
    let app = TestApp::spawn_on(
        db,
        Spawn {
            database_url: Some(proxy.url.clone()),
            ..Spawn::default()
        },
    )
    .await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let paid = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    shop::confirm(&app, &buyer, &shop::id(&paid)).await;

    proxy.cut();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["database"], false);
    assert_problem(
        app.get_as("/orders", &buyer.access_token).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    let order = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [{"product_id": ticket, "quantity": 1}]}),
        )
        .await;
    assert_problem(
        order,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;

    proxy.restore();
    within_20s("readiness", || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    let mine: Value = app
        .get_as("/orders", &buyer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        mine["items"][0]["id"], paid["id"],
        "the paid order survived the outage"
    );
    let again = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_eq!(again["status"], "PENDING");
    shop::assert_stock_consistent(&app).await;
}
