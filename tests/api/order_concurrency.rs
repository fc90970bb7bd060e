//! Never oversell: real parallel HTTP requests racing for the same stock, seats and limits.
//! The database decides (conditional statements); these tests count what it let through.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Spawn, TestApp, TestUser},
    shop::{Shop, assert_stock_consistent, id, remaining},
};

/// An app with a production-sized connection pool (tests default to 5 connections per app to
/// keep the parallel suite within MariaDB's connection limit; a crowd of 500 needs more, as in
/// production, or the pool's acquire timeout answers 503 before the stock runs out), and a
/// per-address limit that lets a crowd come from one test address (in production they are 500
/// addresses).
async fn crowd_app() -> TestApp {
    TestApp::spawn_with(Spawn {
        configure: |config| {
            config.database_pool_max = Some(24);
            config.rate_limit_api_per_ip = 100_000;
        },
        ..Spawn::default()
    })
    .await
}

/// One buyer's order, sent again after a 503 or a dropped connection, as a client following
/// `Retry-After` would — with an `Idempotency-Key`, so a retry never places a second order. A
/// loaded 2-core test machine can keep a request in the pool's queue past its acquire timeout:
/// that is capacity, not correctness, and the retry still must not oversell.
async fn order_until_answered(
    app: &TestApp,
    buyer: &TestUser,
    items: Value,
) -> (StatusCode, Value) {
    let key = uuid::Uuid::now_v7().to_string();
    let mut last = None;
    for attempt in 0..30u64 {
        // Back off as a client honouring `Retry-After` would (this is pacing, not a wait for
        // some effect): a crowd on a loaded machine can exhaust the pool repeatedly.
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20 * attempt.min(10))).await;
        }
        let sent = app
            .client
            .post(app.url("/orders"))
            .bearer_auth(&buyer.access_token)
            .header("Idempotency-Key", &key)
            .json(&json!({ "items": items }))
            .send()
            .await;
        let Ok(response) = sent else { continue };
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        let retry =
            status == StatusCode::SERVICE_UNAVAILABLE || body["code"] == "idempotency_key_in_use";
        if !retry {
            return (status, body);
        }
        last = Some((status, body));
    }
    panic!("no answer but 503 after 30 attempts: {last:?}");
}

/// Fires every buyer's order at once; returns how many were placed and the refusals' codes.
async fn race(
    app: &TestApp,
    buyers: &[TestUser],
    items: impl Fn(usize) -> Value,
) -> (usize, Vec<String>) {
    let answers = join_all(
        buyers
            .iter()
            .enumerate()
            .map(|(i, buyer)| order_until_answered(app, buyer, items(i))),
    )
    .await;
    let mut created = 0;
    let mut refused = Vec::new();
    for (status, body) in answers {
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            assert!(status.is_client_error(), "{status}: {body}");
            refused.push(body["code"].as_str().unwrap_or_default().to_owned());
        }
    }
    (created, refused)
}

#[tokio::test]
async fn five_hundred_buyers_for_a_hundred_tickets_buy_exactly_a_hundred() {
    let app = crowd_app().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyers = app.buyers(500).await;
    let (created, refused) = race(
        &app,
        &buyers,
        |_| json!([{"product_id": ticket, "quantity": 1}]),
    )
    .await;
    assert_eq!(created, 100);
    assert!(refused.iter().all(|c| c == "sold_out"), "{refused:?}");
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        0
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn fifty_buyers_for_one_seat_leave_exactly_one_holder() {
    let app = crowd_app().await;
    let shop = Shop::open(&app).await;
    let (product, seat_ids) = shop.seated(&app, 3).await;
    let buyers = app.buyers(50).await;
    let (created, refused) = race(
        &app,
        &buyers,
        |_| json!([{"product_id": product, "quantity": 1, "seat_ids": [seat_ids[1]]}]),
    )
    .await;
    assert_eq!(created, 1);
    assert!(
        refused.iter().all(|c| c == "seat_unavailable"),
        "{refused:?}"
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn two_hundred_buyers_for_a_package_get_no_more_than_its_scarcest_part() {
    let app = crowd_app().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 1000).await;
    let stick = shop.merch(&app, 30).await;
    let package = shop
        .product(
            &app,
            json!({"type": "PACKAGE", "name": "응원 패키지", "price": "90000", "quantity": 500,
                   "components": [{"product_id": ticket, "quantity": 1}, {"product_id": id(&stick), "quantity": 1}],
                   "shipping_options": [{"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
        )
        .await;
    let pickup = package["shipping_options"][0]["id"]
        .as_str()
        .expect("pickup")
        .to_owned();
    let buyers = app.buyers(200).await;
    let (created, refused) = race(
        &app,
        &buyers,
        |_| json!([{"product_id": id(&package), "quantity": 1, "shipping_option_id": pickup}]),
    )
    .await;
    assert_eq!(created, 30);
    assert!(refused.iter().all(|c| c == "sold_out"), "{refused:?}");
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &id(&stick)).await,
        0
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        970
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn one_buyer_firing_twenty_orders_at_once_gets_no_more_than_the_limit() {
    let app = crowd_app().await;
    let shop = Shop::open(&app).await;
    let ticket = shop
        .ticket_with(&app, 100, json!({"per_user_limit": 4}))
        .await;
    let buyer = app.buyers(1).await.remove(0);
    let same: Vec<TestUser> = (0..20)
        .map(|_| TestUser {
            email: buyer.email.clone(),
            access_token: buyer.access_token.clone(),
            refresh_token: buyer.refresh_token.clone(),
        })
        .collect();
    let (created, refused) = race(
        &app,
        &same,
        |i| json!([{"product_id": ticket, "quantity": 1 + (i % 2)}]),
    )
    .await;
    assert!(created >= 2, "at least two orders fit the limit of four");
    assert!(refused.iter().all(|c| c == "limit_exceeded"), "{refused:?}");
    let bought = 100 - remaining(&app, &shop.organizer.access_token, &ticket).await;
    assert!(bought <= 4, "bought {bought} tickets with a limit of 4");
    assert!(
        bought >= 3,
        "the limit was used, not just refused: {bought}"
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn the_same_idempotency_key_sent_ten_times_at_once_places_one_order() {
    let app = crowd_app().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyer = app.buyers(1).await.remove(0);
    let body = json!({"items": [{"product_id": ticket, "quantity": 1}]});
    let responses = join_all(
        (0..10).map(|_| app.post_as_with_key("/orders", &buyer.access_token, "one-click", &body)),
    )
    .await;
    let mut ids = std::collections::HashSet::new();
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        match status {
            StatusCode::CREATED => {
                ids.insert(id(&body));
            }
            StatusCode::CONFLICT => assert_eq!(body["code"], "idempotency_key_in_use"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success is the same order");
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        99
    );
    assert_stock_consistent(&app).await;
}
