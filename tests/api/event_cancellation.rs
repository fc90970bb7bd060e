//! Canceling an event: every pending order canceled, every confirmed one fully refunded, once,
//! by a job that survives restarts and runs on one instance at a time.

use boxoffice::{
    db::entities::{event_cancellations, events, orders, refunds, stock_movements},
    infra::clock::to_db,
    orders::event_cancel,
};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use serde_json::{Value, json};
use time::Duration;

use crate::{
    helpers::{TestApp, assert_problem},
    shop::{Shop, assert_stock_consistent, confirm, id, order, place},
};

async fn status_of(app: &TestApp, order_id: &str) -> String {
    orders::Entity::find_by_id(order_id.to_owned())
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("order")
        .status
}

/// Polls the progress until `DONE` (with a deadline).
async fn wait_done(app: &TestApp, shop: &Shop) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let progress: Value = app
            .get_as(
                &format!("/events/{}/cancellation", shop.event_id),
                &shop.organizer.access_token,
            )
            .await
            .json()
            .await
            .expect("json");
        if progress["status"] == "DONE" {
            return progress;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job did not finish: {progress}"
        );
        event_cancel::run_due(&app.state).await.expect("pass");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn canceling_an_event_cancels_pending_and_fully_refunds_confirmed_orders() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyers = [app.user().await, app.user().await];
    let mut pending = Vec::new();
    let mut paid = Vec::new();
    for buyer in &buyers {
        pending.push(id(&place(
            &app,
            buyer,
            json!([{"product_id": ticket, "quantity": 1}]),
        )
        .await));
        let order = id(&place(&app, buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
        confirm(&app, buyer, &order).await;
        paid.push(order);
    }
    let path = format!("/events/{}/cancel", shop.event_id);
    assert_problem(
        app.post_as(&path, &buyers[0].access_token, &json!({"reason": "x"}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post_as(&path, &shop.organizer.access_token, &json!({"reason": ""}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let started = app
        .post_as(
            &path,
            &shop.organizer.access_token,
            &json!({"reason": "공연장 사정으로 취소되었습니다"}),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let started: Value = started.json().await.expect("json");
    assert_eq!(started["orders_total"], 4);

    let event: Value = app
        .get_as(
            &format!("/events/{}", shop.event_id),
            &shop.organizer.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(event["status"], "CANCELED", "at once");
    assert_problem(
        app.post_as(
            &path,
            &shop.organizer.access_token,
            &json!({"reason": "again"}),
        )
        .await,
        StatusCode::CONFLICT,
        "event_canceled",
    )
    .await;
    assert_problem(
        order(
            &app,
            &buyers[0],
            json!([{"product_id": ticket, "quantity": 1}]),
        )
        .await,
        StatusCode::CONFLICT,
        "event_canceled",
    )
    .await;

    let done = wait_done(&app, &shop).await;
    assert_eq!(
        (done["orders_total"].clone(), done["orders_done"].clone()),
        (json!(4), json!(4))
    );
    assert_eq!(done["refunds_pending"], 0);
    assert_eq!(done["refunds_failed"], 0);
    assert_eq!(done["reason"], "공연장 사정으로 취소되었습니다");
    for order_id in &pending {
        assert_eq!(status_of(&app, order_id).await, "CANCELED");
    }
    for order_id in &paid {
        assert_eq!(status_of(&app, order_id).await, "REFUNDED");
        let refund = refunds::Entity::find()
            .filter(refunds::Column::OrderId.eq(order_id.as_str()))
            .one(&app.state.db)
            .await
            .expect("query")
            .expect("refund");
        assert_eq!((refund.amount, refund.fee), (11_000_000, 0), "in full");
        assert_eq!(refund.reason, "EVENT_CANCELED");
    }
    for buyer in &buyers {
        // Verification, confirmation, then one mail per order of the event.
        let mails = app.mail.wait_for(&buyer.email, 4).await;
        let canceled: Vec<_> = mails
            .iter()
            .filter(|m| m.text.contains("공연장 사정으로 취소되었습니다"))
            .collect();
        assert_eq!(canceled.len(), 2, "one mail per order");
    }
    let remaining: Value = app
        .get_as(&format!("/products/{ticket}"), &shop.organizer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(remaining["remaining"], 100);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn the_job_resumes_after_a_crash_and_ends_each_order_once_across_instances() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyers = app.buyers(6).await;
    let mut paid = Vec::new();
    for (n, buyer) in buyers.iter().enumerate() {
        let order = id(&place(&app, buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
        if n % 2 == 0 {
            confirm(&app, buyer, &order).await;
            paid.push(order);
        }
    }
    // An instance canceled the event and died while running the job: its heartbeat is fresh.
    let now = app.state.clock.now();
    events::Entity::update_many()
        .col_expr(events::Column::Status, Expr::value("CANCELED"))
        .filter(events::Column::Id.eq(shop.event_id.clone()))
        .exec(&app.state.db)
        .await
        .expect("cancel");
    event_cancellations::ActiveModel {
        event_id: Set(shop.event_id.clone()),
        reason: Set("폭우".into()),
        requested_by: Set(boxoffice::db::entities::users::Entity::find()
            .one(&app.state.db)
            .await
            .expect("query")
            .expect("a user")
            .id),
        status: Set("RUNNING".into()),
        orders_total: Set(6),
        orders_done: Set(0),
        created_at: Set(to_db(now)),
        updated_at: Set(to_db(now)),
    }
    .insert(&app.state.db)
    .await
    .expect("job");
    let peer = app.spawn_peer().await;
    assert_eq!(
        event_cancel::step(&peer.state, &shop.event_id)
            .await
            .expect("step"),
        event_cancel::Step::NotClaimed,
        "a runner with a fresh heartbeat keeps the job"
    );

    // After the lease both instances try at once: each order is ended exactly once.
    app.clock.advance(Duration::minutes(2));
    let (a, b) = tokio::join!(
        event_cancel::step(&app.state, &shop.event_id),
        event_cancel::step(&peer.state, &shop.event_id)
    );
    let outcomes = [a.expect("step"), b.expect("step")];
    assert!(
        outcomes.contains(&event_cancel::Step::NotClaimed),
        "one of them holds the claim: {outcomes:?}"
    );
    let progress = wait_done(&app, &shop).await;
    assert_eq!(progress["orders_done"], 6);
    // Running it again changes nothing.
    assert_eq!(
        event_cancel::step(&app.state, &shop.event_id)
            .await
            .expect("step"),
        event_cancel::Step::NotClaimed
    );
    let refund_rows = refunds::Entity::find()
        .filter(refunds::Column::EventId.eq(shop.event_id.clone()))
        .all(&app.state.db)
        .await
        .expect("refunds");
    assert_eq!(refund_rows.len(), paid.len(), "one refund per paid order");
    for order_id in &paid {
        let returns = stock_movements::Entity::find()
            .filter(stock_movements::Column::OrderId.eq(order_id.as_str()))
            .filter(stock_movements::Column::Kind.eq("REFUND"))
            .all(&app.state.db)
            .await
            .expect("ledger");
        assert_eq!(returns.len(), 1, "stock returned once");
    }
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn progress_is_only_for_the_events_manager_and_only_once_canceled() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let path = format!("/events/{}/cancellation", shop.event_id);
    assert_problem(
        app.get_as(&path, &shop.organizer.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let started = app
        .post_as(
            &format!("/events/{}/cancel", shop.event_id),
            &shop.organizer.access_token,
            &json!({"reason": "no orders yet"}),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let done = wait_done(&app, &shop).await;
    assert_eq!(done["orders_total"], 0);
    let stranger = app
        .user_with_role(boxoffice::auth::model::Role::Organizer)
        .await;
    assert_problem(
        app.get_as(&path, &stranger.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let admin = app.admin().await;
    assert_eq!(
        app.get_as(&path, &admin.access_token).await.status(),
        StatusCode::OK
    );
}
