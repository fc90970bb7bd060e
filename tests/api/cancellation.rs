//! Cancelling and refunding orders: the buyer under the cancel policy, the organizer without
//! it, and the refund worker.

use boxoffice::{
    auth::model::Role,
    db::entities::{audit_log, refunds, tickets},
    orders::refunds as refund_worker,
};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use time::Duration;

use crate::{
    helpers::{TestApp, TestUser, assert_problem, eventually},
    shop::{
        Shop, address, assert_stock_consistent, cancel, confirm, confirm_with, id, place, remaining,
    },
};

/// Remaining stock as a signed-in reader sees it (anonymous reads may be a second old).
async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn quote(app: &TestApp, buyer: &TestUser, order_id: &str) -> Value {
    ok_json(
        app.get_as(
            &format!("/orders/{order_id}/cancel-quote"),
            &buyer.access_token,
        )
        .await,
    )
    .await
}

async fn refund_of(app: &TestApp, order_id: &str) -> refunds::Model {
    refunds::Entity::find()
        .filter(refunds::Column::OrderId.eq(order_id))
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("a refund row")
}

/// Signs a buyer in again (access tokens last 15 minutes of the advanced clock).
async fn fresh(app: &TestApp, user: &TestUser) -> TestUser {
    let (access_token, refresh_token) = app.login(&user.email).await;
    TestUser {
        email: user.email.clone(),
        access_token,
        refresh_token,
    }
}

#[tokio::test]
async fn a_buyer_cancels_a_pending_order_and_the_stock_comes_back() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyer = app.user().await;
    let order = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;
    assert_eq!(remaining(&app, &buyer.access_token, &ticket).await, 98);
    let order_id = id(&order);

    let q = quote(&app, &buyer, &order_id).await;
    assert_eq!(q["allowed"], true);
    assert_eq!(q["status_after"], "CANCELED");
    assert_eq!(q["fee"], "0.00");

    let canceled = ok_json(cancel(&app, &buyer, &order_id, None).await).await;
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(canceled["cancel_reason"], "BUYER");
    assert_eq!(remaining(&app, &buyer.access_token, &ticket).await, 100);
    let mails = app.mail.wait_for(&buyer.email, 2).await;
    assert!(
        mails.iter().any(|m| m.subject.contains("취소")),
        "a cancellation mail in Korean: {:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert_problem(
        cancel(&app, &buyer, &order_id, Some(json!({"reason": "again"}))).await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn someone_elses_order_cannot_be_quoted_or_canceled() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let other = app.user().await;
    let order = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    assert_problem(
        app.get_as(
            &format!("/orders/{order}/cancel-quote"),
            &other.access_token,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        cancel(&app, &other, &order, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        cancel(
            &app,
            &buyer,
            &order,
            Some(json!({"reason": "x".repeat(501)})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        remaining(&app, &buyer.access_token, &ticket).await,
        9,
        "nothing moved"
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_confirmed_order_is_refunded_by_the_policy_tier_the_clock_is_in() {
    let app = TestApp::spawn().await;
    // The event starts in 30 days.
    let shop = Shop::open_with(
        &app,
        json!({"cancel_policy": {"tiers": [
            {"hours_before": 168, "fee_percent": 0},
            {"hours_before": 72, "fee_percent": 10},
            {"hours_before": 24, "fee_percent": 33}], "otherwise": "NO_CANCEL"}}),
    )
    .await;
    let ticket = shop.ticket_with(&app, 100, json!({"price": "55555"})).await;
    let buyer = app.user().await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let order = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
        confirm(&app, &buyer, &order).await;
        orders.push(order);
    }
    assert_eq!(remaining(&app, &buyer.access_token, &ticket).await, 96);

    // (days before the start, fee, refund)
    let tiers = [
        (30, "0.00", "55555.00"),
        (5, "5555.00", "50000.00"),
        (2, "18333.00", "37222.00"),
    ];
    let mut buyer = buyer;
    let mut days_left = 30;
    for ((days, fee, refund), order) in tiers.iter().zip(&orders) {
        app.clock.advance(Duration::days(days_left - days));
        days_left = *days;
        buyer = fresh(&app, &buyer).await;
        let q = quote(&app, &buyer, order).await;
        assert_eq!(
            (q["allowed"].clone(), q["status_after"].clone()),
            (json!(true), json!("REFUNDED"))
        );
        assert_eq!(
            (q["fee"].as_str(), q["refund_amount"].as_str()),
            (Some(*fee), Some(*refund))
        );
        let refunded = ok_json(cancel(&app, &buyer, order, None).await).await;
        assert_eq!(refunded["status"], "REFUNDED");
        assert_eq!(refunded["cancel_reason"], "BUYER");
        assert_eq!(refunded["cancel_fee"], *fee, "the quote matches the refund");
        assert_eq!(refunded["refund_amount"], *refund);
        let row = refund_of(&app, order).await;
        assert_eq!(row.status, "DONE", "the gateway accepted it at once");
        assert_eq!(
            row.amount,
            refunded["refund_amount"]
                .as_str()
                .map(minor)
                .expect("amount")
        );
        let valid = tickets::Entity::find()
            .filter(tickets::Column::OrderId.eq(order.as_str()))
            .filter(tickets::Column::Status.eq("VALID"))
            .all(&app.state.db)
            .await
            .expect("tickets");
        assert!(valid.is_empty(), "a refunded order's tickets are void");
    }
    assert_eq!(
        remaining(&app, &buyer.access_token, &ticket).await,
        99,
        "refunded tickets are back on sale"
    );

    // 23 hours before the start no tier is left.
    app.clock.advance(Duration::days(2) - Duration::hours(23));
    let buyer = fresh(&app, &buyer).await;
    let q = quote(&app, &buyer, &orders[3]).await;
    assert_eq!(q["allowed"], false);
    assert_eq!(q["reason_if_not_allowed"], "cancel_not_allowed");
    assert_problem(
        cancel(&app, &buyer, &orders[3], None).await,
        StatusCode::CONFLICT,
        "cancel_not_allowed",
    )
    .await;
    assert_problem(
        cancel(&app, &buyer, &orders[0], None).await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let mails = app.mail.wait_for(&buyer.email, 1 + 4 + 3).await;
    assert!(
        mails.iter().any(|m| m.text.contains("37222.00 KRW")),
        "the refund mail names the amount"
    );
    assert_stock_consistent(&app).await;
}

fn minor(s: &str) -> i64 {
    let (units, cents) = s.split_once('.').expect("two decimals");
    units.parse::<i64>().expect("units") * 100 + cents.parse::<i64>().expect("cents")
}

#[tokio::test]
async fn shipped_merchandise_cannot_be_canceled() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let stick = shop.merch(&app, 10).await;
    let delivery = stick["shipping_options"][0]["id"].as_str().expect("option");
    let buyer = app.user().await;
    let order = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [{"product_id": id(&stick), "quantity": 1, "shipping_option_id": delivery}],
                    "shipping_address": address()}),
        )
        .await;
    assert_eq!(order.status(), StatusCode::CREATED);
    let order: Value = order.json().await.expect("json");
    let order_id = id(&order);
    let confirmed = confirm(&app, &buyer, &order_id).await;
    let line = id(&confirmed["items"][0]);
    let shipped = app
        .client
        .put(app.url(&format!(
            "/events/{}/orders/{order_id}/items/{line}/fulfillment",
            shop.event_id
        )))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"status": "SHIPPED", "carrier": "CJ대한통운", "tracking_number": "1234"}))
        .send()
        .await
        .expect("request");
    assert_eq!(shipped.status(), StatusCode::OK);
    let q = quote(&app, &buyer, &order_id).await;
    assert_eq!(q["allowed"], false);
    assert_eq!(q["reason_if_not_allowed"], "already_fulfilled");
    assert_problem(
        cancel(&app, &buyer, &order_id, None).await,
        StatusCode::CONFLICT,
        "already_fulfilled",
    )
    .await;
    assert_eq!(remaining(&app, &buyer.access_token, &id(&stick)).await, 9);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_failing_refund_stays_pending_and_is_given_up_after_the_last_attempt() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    confirm_with(
        &app,
        &buyer,
        &order,
        json!({"scenario": "SUCCESS", "refund_scenario": "FAIL"}),
    )
    .await;
    let refunded = ok_json(cancel(&app, &buyer, &order, None).await).await;
    assert_eq!(
        refunded["status"], "REFUNDED",
        "the order is refunded at once"
    );
    let row = refund_of(&app, &order).await;
    assert_eq!((row.status.as_str(), row.attempts), ("PENDING", 1));
    assert!(row.last_error.is_some());
    assert_eq!(
        refund_worker::run_due(&app.state).await.expect("pass"),
        0,
        "not due before its back-off"
    );

    // Each pass after the back-off tries again, until the last attempt gives up.
    for _ in 0..refund_worker::MAX_ATTEMPTS + 2 {
        app.clock.advance(Duration::hours(2));
        refund_worker::run_due(&app.state).await.expect("pass");
        if refund_of(&app, &order).await.status == "FAILED" {
            break;
        }
    }
    let row = refund_of(&app, &order).await;
    assert_eq!(row.status, "FAILED");
    assert_eq!(row.attempts, refund_worker::MAX_ATTEMPTS);
    let audits = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("refund.failed"))
        .filter(audit_log::Column::TargetId.eq(order.as_str()))
        .all(&app.state.db)
        .await
        .expect("audit");
    assert_eq!(audits.len(), 1, "one audit entry for the failure");
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_refund_the_gateway_refused_is_retried_by_the_worker_until_done() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    confirm_with(
        &app,
        &buyer,
        &order,
        json!({"scenario": "SUCCESS", "refund_scenario": "FAIL"}),
    )
    .await;
    ok_json(cancel(&app, &buyer, &order, None).await).await;
    assert_eq!(refund_of(&app, &order).await.status, "PENDING");
    // The gateway recovers (the test gateway fails refunds of references with this marker).
    let row = refund_of(&app, &order).await;
    let healed = row
        .provider_ref
        .as_deref()
        .map(|r| r.replace(".refund-fails", ""));
    refunds::Entity::update_many()
        .col_expr(refunds::Column::ProviderRef, Expr::value(healed))
        .filter(refunds::Column::Id.eq(row.id.clone()))
        .exec(&app.state.db)
        .await
        .expect("update");
    // Two instances run the worker at once (and either one's background worker may join them):
    // the claim lets exactly one of them attempt.
    let peer = app.spawn_peer().await;
    app.clock.advance(Duration::minutes(1));
    let (a, b) = tokio::join!(
        refund_worker::run_due(&app.state),
        refund_worker::run_due(&peer.state)
    );
    assert!(
        a.expect("pass") + b.expect("pass") <= 1,
        "one attempt at most"
    );
    // If a background worker won the claim, its attempt may still be under way.
    eventually("the refund is done", async || {
        refund_of(&app, &order).await.status == "DONE"
    })
    .await;
    let row = refund_of(&app, &order).await;
    assert_eq!(
        row.attempts, 2,
        "one more attempt after the gateway recovered"
    );
}

#[tokio::test]
async fn a_full_fee_leaves_nothing_to_refund_and_the_gateway_is_not_called() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(
        &app,
        json!({"cancel_policy": {"tiers": [{"hours_before": 1, "fee_percent": 100}], "otherwise": "NO_CANCEL"}}),
    )
    .await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    // A gateway that fails every refund: a zero refund must not reach it.
    confirm_with(
        &app,
        &buyer,
        &order,
        json!({"scenario": "SUCCESS", "refund_scenario": "FAIL"}),
    )
    .await;
    let refunded = ok_json(cancel(&app, &buyer, &order, None).await).await;
    assert_eq!(refunded["cancel_fee"], "55000.00");
    assert_eq!(refunded["refund_amount"], "0.00");
    let row = refund_of(&app, &order).await;
    assert_eq!(
        (row.status.as_str(), row.attempts, row.amount),
        ("DONE", 0, 0)
    );
    assert_eq!(remaining(&app, &buyer.access_token, &ticket).await, 10);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn an_organizer_cancels_and_refunds_orders_of_their_event_with_a_reason() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let pending = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    let paid = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
    confirm(&app, &buyer, &paid).await;
    let path = |order: &str| format!("/events/{}/orders/{order}/cancel", shop.event_id);
    let organizer = &shop.organizer.access_token;

    assert_problem(
        app.post_as(&path(&pending), organizer, &json!({"reason": " "}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.post_as(
            &path(&pending),
            &buyer.access_token,
            &json!({"reason": "mine"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let stranger = app.user_with_role(Role::Organizer).await;
    assert_problem(
        app.post_as(
            &path(&pending),
            &stranger.access_token,
            &json!({"reason": "x"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let canceled = ok_json(
        app.post_as(&path(&pending), organizer, &json!({"reason": "중복 주문"}))
            .await,
    )
    .await;
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(canceled["cancel_reason"], "ORGANIZER");
    // Close to the start the policy would refuse: the organizer is not bound by it.
    app.clock.advance(Duration::days(30) - Duration::hours(1));
    let organizer = fresh(&app, &shop.organizer).await.access_token;
    let refunded = ok_json(
        app.post_as(
            &path(&paid),
            &organizer,
            &json!({"reason": "좌석 배정 오류"}),
        )
        .await,
    )
    .await;
    assert_eq!(refunded["status"], "REFUNDED");
    assert_eq!(refunded["cancel_fee"], "0.00");
    assert_eq!(refunded["refund_amount"], "110000.00");
    assert_eq!(refund_of(&app, &paid).await.status, "DONE");
    assert_problem(
        app.post_as(&path(&paid), &organizer, &json!({"reason": "again"}))
            .await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let audits = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("order.canceled_by_organizer"))
        .all(&app.state.db)
        .await
        .expect("audit");
    assert_eq!(audits.len(), 2);
    assert!(audits.iter().any(|a| {
        a.detail
            .as_deref()
            .unwrap_or_default()
            .contains("좌석 배정 오류")
    }));
    let mails = app.mail.wait_for(&buyer.email, 1 + 1 + 2).await;
    assert!(
        mails.iter().any(|m| m.text.contains("좌석 배정 오류")),
        "the buyer reads the organizer's reason"
    );
    assert_eq!(remaining(&app, &organizer, &ticket).await, 10);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_canceled_order_mails_who_waits_for_the_product_and_for_packages_made_of_it() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 1).await;
    let package = shop
        .product(
            &app,
            json!({"type": "PACKAGE", "name": "응원 패키지", "price": "90000", "quantity": 5,
                   "components": [{"product_id": ticket, "quantity": 1}]}),
        )
        .await;
    let buyer = app.user_with_role(Role::User).await;
    let order = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    let (ticket_fan, package_fan) = (
        app.user_with_role(Role::User).await,
        app.user_with_role(Role::User).await,
    );
    for (fan, product) in [(&ticket_fan, ticket.clone()), (&package_fan, id(&package))] {
        let response = app
            .post_as(
                &format!("/products/{product}/notify-me"),
                &fan.access_token,
                &json!({}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    ok_json(cancel(&app, &buyer, &id(&order), None).await).await;

    app.mail.wait_for(&ticket_fan.email, 1).await;
    app.mail.wait_for(&package_fan.email, 1).await;
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        1
    );
    assert_stock_consistent(&app).await;
}
