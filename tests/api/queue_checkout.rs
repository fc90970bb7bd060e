//! The waiting room at checkout: orders need the admission token of an active slot, and an
//! order that is paid, canceled or expires ends the slot.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, assert_problem, eventually},
    queue::{join, queued_shop, stats, status_by_token, until_admitted},
    shop::{Shop, cancel, confirm},
};

async fn order_with(
    app: &TestApp,
    buyer: &TestUser,
    product_id: &str,
    admission: Option<&str>,
) -> Response {
    let request = app
        .client
        .post(app.url("/orders"))
        .bearer_auth(&buyer.access_token)
        .json(&json!({"items": [{"product_id": product_id, "quantity": 1}]}));
    let request = match admission {
        Some(token) => request.header("x-admission-token", token),
        None => request,
    };
    request.send().await.expect("request")
}

/// A queued shop with a ticket, and `n` buyers admitted one per second; returns their
/// admission tokens and queue tokens.
async fn admitted(app: &TestApp, n: usize) -> (Shop, String, Vec<TestUser>, Vec<(String, String)>) {
    let shop = queued_shop(app, json!({"admit_per_second": 10})).await;
    admitted_in(app, shop, n).await
}

/// Like [`admitted`] in a shop whose queue is set up already.
async fn admitted_in(
    app: &TestApp,
    shop: Shop,
    n: usize,
) -> (Shop, String, Vec<TestUser>, Vec<(String, String)>) {
    let ticket = shop.ticket(app, 100).await;
    let buyers = app.buyers(n).await;
    let mut queue_tokens = Vec::new();
    for buyer in &buyers {
        let place = join(app, buyer, &shop.event_id).await;
        queue_tokens.push(place["queue_token"].as_str().expect("token").to_owned());
    }
    app.clock.advance(time::Duration::seconds(1));
    let mut tokens = Vec::new();
    for queue_token in queue_tokens {
        let place = until_admitted(app, &shop.event_id, &queue_token).await;
        let admission = place["admission_token"]
            .as_str()
            .expect("admission")
            .to_owned();
        tokens.push((admission, queue_token));
    }
    (shop, ticket, buyers, tokens)
}

fn id(order: &Value) -> String {
    order["id"].as_str().expect("id").to_owned()
}

async fn created(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn checkout_needs_the_buyers_own_admission_for_this_event() {
    let app = TestApp::spawn().await;
    let (_shop, ticket, buyers, tokens) = admitted(&app, 2).await;
    let (other_shop, _, other_buyers, other_tokens) = admitted(&app, 1).await;
    let _ = (&other_shop, &other_buyers);

    let without = order_with(&app, &buyers[0], &ticket, None).await;
    assert_problem(without, StatusCode::FORBIDDEN, "admission_required").await;
    let someone_elses = order_with(&app, &buyers[0], &ticket, Some(&tokens[1].0)).await;
    assert_problem(someone_elses, StatusCode::FORBIDDEN, "admission_required").await;
    let other_event = order_with(&app, &buyers[0], &ticket, Some(&other_tokens[0].0)).await;
    assert_problem(other_event, StatusCode::FORBIDDEN, "admission_required").await;
    let forged = order_with(&app, &buyers[0], &ticket, Some("a1.e30.AAAA")).await;
    assert_problem(forged, StatusCode::FORBIDDEN, "admission_required").await;
    // A queue token is not an admission token.
    let wrong_kind = order_with(&app, &buyers[0], &ticket, Some(&tokens[0].1)).await;
    assert_problem(wrong_kind, StatusCode::FORBIDDEN, "admission_required").await;

    created(order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await).await;
}

#[tokio::test]
async fn an_expired_admission_is_refused_but_a_pending_order_keeps_its_own_expiry() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 3600})).await;
    let response = crate::queue::put_settings(
        &app,
        &shop,
        &json!({"enabled": true, "capacity": 10, "admit_per_second": 10}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (shop, ticket, buyers, tokens) = admitted_in(&app, shop, 1).await;
    let order = created(order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await).await;
    // Slots last 600 s from admission; the order holds for an hour.
    app.clock.advance(time::Duration::seconds(599));
    let late = order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await;
    assert_eq!(late.status(), StatusCode::CREATED, "still inside the slot");
    app.clock.advance(time::Duration::seconds(2));
    let expired = order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await;
    assert_problem(expired, StatusCode::FORBIDDEN, "admission_required").await;
    // Paying needs no token.
    let _ = &shop;
    confirm(&app, &buyers[0], &id(&order)).await;
}

#[tokio::test]
async fn paying_ends_the_slot() {
    let app = TestApp::spawn().await;
    let (shop, ticket, buyers, tokens) = admitted(&app, 1).await;
    let order = created(order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await).await;
    confirm(&app, &buyers[0], &id(&order)).await;
    let again = order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await;
    assert_problem(again, StatusCode::FORBIDDEN, "admission_required").await;
    let gone = status_by_token(&app, &shop.event_id, &tokens[0].1).await;
    assert_problem(gone, StatusCode::NOT_FOUND, "not_in_queue").await;
    assert_eq!(stats(&app, &shop).await["active"], 0);
}

#[tokio::test]
async fn canceling_ends_the_slot() {
    let app = TestApp::spawn().await;
    let (_shop, ticket, buyers, tokens) = admitted(&app, 1).await;
    let order = created(order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await).await;
    let canceled = cancel(&app, &buyers[0], &id(&order), None).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    let again = order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await;
    assert_problem(again, StatusCode::FORBIDDEN, "admission_required").await;
}

#[tokio::test]
async fn an_order_that_expires_ends_the_slot() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 60})).await;
    let response = crate::queue::put_settings(
        &app,
        &shop,
        &json!({"enabled": true, "capacity": 10, "admit_per_second": 10}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.buyers(1).await.remove(0);
    let place = join(&app, &buyer, &shop.event_id).await;
    let queue_token = place["queue_token"].as_str().expect("token").to_owned();
    app.clock.advance(time::Duration::seconds(1));
    let admitted = until_admitted(&app, &shop.event_id, &queue_token).await;
    let admission = admitted["admission_token"].as_str().expect("admission");
    created(order_with(&app, &buyer, &ticket, Some(admission)).await).await;
    app.clock.advance(time::Duration::seconds(61));
    eventually("the expired order ends the slot", || async {
        status_by_token(&app, &shop.event_id, &queue_token)
            .await
            .status()
            == StatusCode::NOT_FOUND
    })
    .await;
    let refused = order_with(&app, &buyer, &ticket, Some(admission)).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "admission_required").await;
}

#[tokio::test]
async fn leaving_gives_the_slot_back() {
    let app = TestApp::spawn().await;
    let (shop, ticket, buyers, tokens) = admitted(&app, 1).await;
    let left = app
        .client
        .delete(app.url(&format!("/queue/leave?event_id={}", shop.event_id)))
        .bearer_auth(&buyers[0].access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    let refused = order_with(&app, &buyers[0], &ticket, Some(&tokens[0].0)).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "admission_required").await;
    assert_eq!(stats(&app, &shop).await["active"], 0);
}

#[tokio::test]
async fn events_without_a_queue_need_no_admission() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.buyers(1).await.remove(0);
    created(order_with(&app, &buyer, &ticket, None).await).await;
}
