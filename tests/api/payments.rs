//! Paying for orders: prepare, confirm, gateway callbacks, late captures, tickets.

use boxoffice::{
    catalog::{money::Money, products::stock},
    db::entities::{orders, payments, products, refunds, seats, stock_movements, tickets},
    orders::{
        expiry,
        payment::{
            flow::{self, Settlement},
            provider::Captured,
            test_provider::{SIGNATURE_HEADER, TestProvider},
        },
        tickets::verify_payload,
    },
};
use futures::{StreamExt, stream::FuturesUnordered};
use reqwest::{Response, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    admin_users::wait_until_peer_listens,
    helpers::{SentMail, TestApp, TestUser, assert_problem, eventually},
    shop::{Shop, assert_stock_consistent, cancel, id, place},
};

/// `POST /orders/{id}/pay` with the default gateway.
pub async fn pay(app: &TestApp, buyer: &TestUser, order_id: &str) -> Response {
    app.post_as(
        &format!("/orders/{order_id}/pay"),
        &buyer.access_token,
        &json!({}),
    )
    .await
}

/// `POST /orders/{id}/pay/confirm` with a test-gateway payload.
pub async fn confirm(app: &TestApp, buyer: &TestUser, order_id: &str, payload: Value) -> Response {
    app.post_as(
        &format!("/orders/{order_id}/pay/confirm"),
        &buyer.access_token,
        &json!({ "provider_payload": payload }),
    )
    .await
}

/// A buyer's order of one ticket (of ten on sale) whose payment has started.
async fn payment_started(app: &TestApp) -> (TestUser, String) {
    let shop = Shop::open(app).await;
    let ticket = shop.ticket(app, 10).await;
    let buyer = app.user().await;
    let order_id = id(&place(app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    assert_eq!(pay(app, &buyer, &order_id).await.status(), StatusCode::OK);
    (buyer, order_id)
}

/// Pays and confirms an order successfully; returns the confirmed order.
pub async fn pay_in_full(app: &TestApp, buyer: &TestUser, order_id: &str) -> Value {
    assert_eq!(pay(app, buyer, order_id).await.status(), StatusCode::OK);
    let response = confirm(app, buyer, order_id, json!({"scenario": "SUCCESS"})).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CONFIRMED");
    body
}

/// `GET /orders/{id}/tickets` expecting 200.
pub async fn tickets_of(app: &TestApp, buyer: &TestUser, order_id: &str) -> Vec<Value> {
    let response = app
        .get_as(&format!("/orders/{order_id}/tickets"), &buyer.access_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

/// Posts a gateway callback signed by the test gateway (or with the given signature).
async fn webhook(app: &TestApp, body: &Value, signature: Option<&str>) -> Response {
    let raw = body.to_string();
    let signed = TestProvider::new(app.state.secrets.test_payments).sign(raw.as_bytes());
    app.client
        .post(app.url("/payments/test/webhook"))
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature.unwrap_or(&signed))
        .body(raw)
        .send()
        .await
        .expect("request")
}

async fn webhook_result(app: &TestApp, body: &Value) -> String {
    let response = webhook(app, body, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let ack: Value = response.json().await.expect("json");
    ack["result"].as_str().expect("result").to_owned()
}

async fn order_row(app: &TestApp, order_id: &str) -> orders::Model {
    orders::Entity::find_by_id(order_id.to_owned())
        .one(&app.state.db)
        .await
        .expect("order")
        .expect("exists")
}

async fn payment_rows(app: &TestApp, order_id: &str) -> Vec<payments::Model> {
    payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .all(&app.state.db)
        .await
        .expect("payments")
}

async fn refund_rows(app: &TestApp, order_id: &str) -> Vec<refunds::Model> {
    refunds::Entity::find()
        .filter(refunds::Column::OrderId.eq(order_id))
        .all(&app.state.db)
        .await
        .expect("refunds")
}

async fn ticket_count(app: &TestApp, order_id: &str) -> u64 {
    tickets::Entity::find()
        .filter(tickets::Column::OrderId.eq(order_id))
        .count(&app.state.db)
        .await
        .expect("tickets")
}

fn captures(rows: &[payments::Model]) -> usize {
    rows.iter().filter(|p| p.status == "CAPTURED").count()
}

/// Waits (with a deadline) for a mail to the address whose subject contains `needle`.
pub async fn mail_about(app: &TestApp, address: &str, needle: &str) -> SentMail {
    let mut count = 1;
    loop {
        let mails = app.mail.wait_for(address, count).await;
        if let Some(mail) = mails.iter().find(|m| m.subject.contains(needle)) {
            return mail.clone();
        }
        count = mails.len() + 1;
    }
}

#[tokio::test]
async fn a_paid_order_is_confirmed_with_signed_tickets_sold_seats_and_a_mail() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let standing = shop.ticket(&app, 100).await;
    let (reserved, seat_ids) = shop.seated(&app, 3).await;
    let stick = shop.merch(&app, 10).await;
    let pickup = stick["shipping_options"][1]["id"].as_str().expect("pickup");
    let package = shop
        .product(
            &app,
            json!({"type": "PACKAGE", "name": "VIP 패키지", "price": "200000", "quantity": 10,
                   "components": [{"product_id": standing, "quantity": 2}, {"product_id": id(&stick), "quantity": 1}],
                   "shipping_options": [{"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
        )
        .await;
    let package_pickup = package["shipping_options"][0]["id"]
        .as_str()
        .expect("pickup");
    let buyer = app.user().await;
    let placed = place(
        &app,
        &buyer,
        json!([
            {"product_id": standing, "quantity": 2},
            {"product_id": reserved, "quantity": 2, "seat_ids": [seat_ids[0], seat_ids[1]]},
            {"product_id": id(&stick), "quantity": 1, "shipping_option_id": pickup},
            {"product_id": id(&package), "quantity": 1, "shipping_option_id": package_pickup},
        ]),
    )
    .await;
    let order_id = id(&placed);

    let prepared = pay(&app, &buyer, &order_id).await;
    assert_eq!(prepared.status(), StatusCode::OK);
    let prepared: Value = prepared.json().await.expect("json");
    assert_eq!(prepared["provider"], "test");
    assert_eq!(prepared["amount"], placed["total"]);
    assert_eq!(prepared["currency"], "KRW");
    assert_eq!(prepared["order_id"], order_id.as_str());
    assert_eq!(prepared["client_params"]["order_name"], "스탠딩 외 3건");

    let confirmed = confirm(&app, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed: Value = confirmed.json().await.expect("json");
    assert_eq!(confirmed["status"], "CONFIRMED");
    assert_eq!(confirmed["payment_provider"], "test");
    assert!(confirmed["confirmed_at"].is_string());

    // 2 standing + 2 seats + 2 from the package; the light stick admits nobody.
    let tickets = tickets_of(&app, &buyer, &order_id).await;
    assert_eq!(tickets.len(), 6);
    for ticket in &tickets {
        let payload = ticket["qr_payload"].as_str().expect("payload");
        assert_eq!(
            verify_payload(&app.state.secrets.ticket_code, payload).as_deref(),
            ticket["code"].as_str(),
            "the QR payload is signed for its own code"
        );
        assert!(
            ticket["qr_svg"]
                .as_str()
                .is_some_and(|svg| svg.contains("<svg")),
            "QR as SVG"
        );
        assert_eq!(ticket["status"], "VALID");
        assert!(ticket["used_at"].is_null());
    }
    let mut seat_labels: Vec<&str> = tickets
        .iter()
        .filter_map(|t| t["seat_label"].as_str())
        .collect();
    seat_labels.sort();
    assert_eq!(seat_labels.len(), 2);
    let from_package = tickets
        .iter()
        .filter(|t| t["name"] == "VIP 패키지 · 스탠딩" && t["product_id"] == standing.as_str())
        .count();
    assert_eq!(from_package, 2);
    let mut codes: Vec<&str> = tickets.iter().filter_map(|t| t["code"].as_str()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 6, "every code is different");

    for seat_id in &seat_ids[..2] {
        let seat = seats::Entity::find_by_id(seat_id.clone())
            .one(&app.state.db)
            .await
            .expect("seat")
            .expect("exists");
        assert_eq!(seat.state, "SOLD");
    }
    let rows = payment_rows(&app, &order_id).await;
    assert_eq!(rows.len(), 1, "the prepared row became the capture");
    assert_eq!(captures(&rows), 1);
    assert_eq!(
        rows[0].provider_ref.as_deref(),
        Some(format!("test_{order_id}").as_str())
    );

    let mail = mail_about(&app, &buyer.email, "주문이 확정").await;
    assert!(
        mail.text.contains(&format!("/account/orders/{order_id}")),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("스탠딩 × 2"), "{}", mail.text);
    assert_stock_consistent(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_twice_answers_the_same_order_and_captures_once() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order_id = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
    let first = pay_in_full(&app, &buyer, &order_id).await;
    // Even a payload that would decline is not sent to the gateway again.
    let again = confirm(&app, &buyer, &order_id, json!({"scenario": "DECLINE"})).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["confirmed_at"], first["confirmed_at"]);
    assert_eq!(captures(&payment_rows(&app, &order_id).await), 1);
    assert_eq!(ticket_count(&app, &order_id).await, 2);

    // Two confirmations at once: both answer the paid order, one capture, one set of tickets.
    let other = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 3}])).await);
    assert_eq!(pay(&app, &buyer, &other).await.status(), StatusCode::OK);
    let (a, b) = tokio::join!(
        confirm(&app, &buyer, &other, json!({"scenario": "SUCCESS"})),
        confirm(&app, &buyer, &other, json!({"scenario": "SUCCESS"}))
    );
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(captures(&payment_rows(&app, &other).await), 1);
    assert_eq!(ticket_count(&app, &other).await, 3);
    // Sold once: one SALE row in the ledger.
    let sales = stock_movements::Entity::find()
        .filter(stock_movements::Column::Kind.eq("SALE"))
        .filter(stock_movements::Column::OrderId.eq(other.clone()))
        .count(&app.state.db)
        .await
        .expect("ledger");
    assert_eq!(sales, 1);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_declined_payment_leaves_the_order_pending_for_another_try() {
    let app = TestApp::spawn().await;
    let (buyer, order_id) = payment_started(&app).await;
    let declined = confirm(&app, &buyer, &order_id, json!({"scenario": "DECLINE"})).await;
    let problem = assert_problem(declined, StatusCode::CONFLICT, "payment_declined").await;
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("test")
    );
    assert_eq!(order_row(&app, &order_id).await.status, "PENDING");
    assert_eq!(ticket_count(&app, &order_id).await, 0);

    let bad = confirm(&app, &buyer, &order_id, json!({"scenario": "MAYBE"})).await;
    let problem = assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "provider_payload");
    let not_object = confirm(&app, &buyer, &order_id, json!("SUCCESS")).await;
    assert_problem(
        not_object,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    pay_in_full(&app, &buyer, &order_id).await;
    let rows = payment_rows(&app, &order_id).await;
    let mut statuses: Vec<&str> = rows.iter().map(|p| p.status.as_str()).collect();
    statuses.sort();
    assert_eq!(statuses, ["CAPTURED", "DECLINED", "FAILED"]);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_gateway_timeout_is_a_502_and_the_order_stays_pending() {
    let app = TestApp::spawn().await;
    let (buyer, order_id) = payment_started(&app).await;
    let timed_out = confirm(
        &app,
        &buyer,
        &order_id,
        json!({"scenario": "FAIL_AFTER_MS", "ms": 30}),
    )
    .await;
    assert_problem(timed_out, StatusCode::BAD_GATEWAY, "payment_unavailable").await;
    assert_eq!(order_row(&app, &order_id).await.status, "PENDING");
    pay_in_full(&app, &buyer, &order_id).await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn paying_an_order_whose_hold_ran_out_is_order_expired_and_charges_nothing() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 300})).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order_id = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    assert_eq!(pay(&app, &buyer, &order_id).await.status(), StatusCode::OK);
    app.clock.advance(time::Duration::seconds(301));
    // Whether or not the sweeper got there first, the answer is the same and nothing is taken.
    let late = confirm(&app, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await;
    assert_problem(late, StatusCode::CONFLICT, "order_expired").await;
    assert_problem(
        pay(&app, &buyer, &order_id).await,
        StatusCode::CONFLICT,
        "order_expired",
    )
    .await;
    assert_eq!(captures(&payment_rows(&app, &order_id).await), 0);
    assert!(refund_rows(&app, &order_id).await.is_empty());
    expiry::sweep(&app.state).await.expect("sweep");
    assert_eq!(order_row(&app, &order_id).await.status, "CANCELED");
    assert_problem(
        confirm(&app, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await,
        StatusCode::CONFLICT,
        "order_expired",
    )
    .await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_capture_that_lands_after_the_order_ended_is_refunded_and_recorded() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 300})).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let swept = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;
    let unswept = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    let failing = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    app.clock.advance(time::Duration::seconds(301));

    // What a confirmation does once the gateway answered: the hold ran out meanwhile (the
    // background sweeper may or may not have canceled the order yet).
    let paying = flow::Paying::load(&app.state.db, &id(&unswept))
        .await
        .expect("read")
        .expect("the order");
    let outcome = flow::settle(
        &app.state,
        &paying,
        "test",
        &Captured {
            provider_ref: format!("test_{}", id(&unswept)),
            amount: Money::from_minor(5_500_000),
        },
        None,
        app.state.clock.now(),
    )
    .await
    .expect("settle");
    assert_eq!(outcome, Settlement::Refunded);
    assert_eq!(refund_rows(&app, &id(&unswept)).await[0].status, "DONE");
    assert_ne!(order_row(&app, &id(&unswept)).await.status, "CONFIRMED");
    assert_eq!(ticket_count(&app, &id(&unswept)).await, 0);

    // The gateway reports a capture for an order the sweeper already canceled.
    expiry::sweep(&app.state).await.expect("sweep");
    let capture = json!({"type": "CAPTURED", "order_id": id(&swept),
                         "provider_ref": format!("test_{}", id(&swept)), "amount": swept["total"]});
    assert_eq!(webhook_result(&app, &capture).await, "REFUNDED");
    let recorded = refund_rows(&app, &id(&swept)).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (
            recorded[0].reason.as_str(),
            recorded[0].status.as_str(),
            recorded[0].amount,
            recorded[0].fee
        ),
        ("LATE_PAYMENT", "DONE", 11_000_000, 0)
    );
    assert_eq!(order_row(&app, &id(&swept)).await.status, "CANCELED");
    assert_eq!(ticket_count(&app, &id(&swept)).await, 0);
    // A replay refunds nothing more.
    assert_eq!(webhook_result(&app, &capture).await, "UNCHANGED");
    assert_eq!(refund_rows(&app, &id(&swept)).await.len(), 1);

    // A gateway that fails the refund leaves it pending for the retry worker, with the error.
    let capture = json!({"type": "CAPTURED", "order_id": id(&failing),
                         "provider_ref": format!("test_{}.refund-fails", id(&failing)), "amount": failing["total"]});
    assert_eq!(webhook_result(&app, &capture).await, "REFUNDED");
    let pending = &refund_rows(&app, &id(&failing)).await[0];
    assert_eq!((pending.status.as_str(), pending.attempts), ("PENDING", 1));
    assert!(pending.last_error.is_some());
    assert_stock_consistent(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_racing_a_late_confirmation_has_exactly_one_winner() {
    const ROUNDS: usize = 3;
    const PER_ROUND: usize = 10;
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 60})).await;
    let ticket = shop.ticket(&app, 1_000).await;
    let buyers = app.buyers(ROUNDS * PER_ROUND).await;
    let (mut paid, mut expired, mut refunded) = (0, 0, 0);
    for (round, buyers) in buyers.chunks(PER_ROUND).enumerate() {
        let mut order_ids = Vec::new();
        for buyer in buyers {
            let order_id =
                id(&place(&app, buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
            assert_eq!(pay(&app, buyer, &order_id).await.status(), StatusCode::OK);
            order_ids.push(order_id);
        }
        // The holds run out while the confirmations are with the gateway (each answers after
        // its own latency): the first answer triggers the clock and a sweep, racing the rest.
        app.clock.advance(time::Duration::milliseconds(59_990));
        let shared = &app;
        let mut in_flight: FuturesUnordered<_> = buyers
            .iter()
            .zip(&order_ids)
            .enumerate()
            .map(|(n, (buyer, order_id))| {
                let latency = (n * (round + 1) * 3) as u64;
                async move {
                    let payload = json!({"scenario": "SUCCESS", "ms": latency});
                    (n, confirm(shared, buyer, order_id, payload).await)
                }
            })
            .collect();
        let mut responses: Vec<Option<Response>> = (0..order_ids.len()).map(|_| None).collect();
        while let Some((n, response)) = in_flight.next().await {
            responses[n] = Some(response);
            if responses.iter().filter(|r| r.is_some()).count() == 1 {
                app.clock.advance(time::Duration::milliseconds(20));
                expiry::sweep(&app.state).await.expect("sweep");
            }
        }
        let responses = responses.into_iter().map(|r| r.expect("answered"));
        expiry::sweep(&app.state).await.expect("sweep");
        for (response, order_id) in responses.into_iter().zip(&order_ids) {
            let status = response.status();
            let order = order_row(&app, order_id).await;
            let rows = payment_rows(&app, order_id).await;
            let refunds = refund_rows(&app, order_id).await;
            match order.status.as_str() {
                "CONFIRMED" => {
                    assert_eq!(status, StatusCode::OK);
                    assert_eq!(ticket_count(&app, order_id).await, 2);
                    assert_eq!(captures(&rows), 1);
                    assert!(refunds.is_empty(), "a paid order keeps its money");
                    paid += 1;
                }
                "CANCELED" => {
                    assert_problem(response, StatusCode::CONFLICT, "order_expired").await;
                    assert_eq!(ticket_count(&app, order_id).await, 0);
                    assert_eq!(captures(&rows), 0, "a canceled order keeps no payment");
                    let late = rows.iter().filter(|p| p.status == "REFUNDED").count();
                    assert_eq!(refunds.len(), late, "every late capture went back");
                    assert!(refunds.iter().all(|r| r.status == "DONE"));
                    expired += 1;
                    refunded += late;
                }
                other => panic!("order ended {other}"),
            }
        }
    }
    eprintln!("race: {paid} paid, {expired} expired ({refunded} captured, then refunded)");
    assert_eq!(paid + expired, ROUNDS * PER_ROUND);
    assert_eq!(stock_sold(&app, &ticket).await, 2 * paid as i64);
    assert_stock_consistent(&app).await;
}

async fn stock_sold(app: &TestApp, product_id: &str) -> i64 {
    let product = products::Entity::find_by_id(product_id.to_owned())
        .one(&app.state.db)
        .await
        .expect("product")
        .expect("exists");
    let stock_id = product.stock_id.expect("general admission has a counter");
    let remaining = stock::remaining_of(&app.state.db, vec![stock_id.clone()])
        .await
        .expect("stock");
    1_000 - remaining[&stock_id]
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_or_an_unknown_gateway_is_refused() {
    let app = TestApp::spawn().await;
    let body = json!({"type": "CAPTURED", "order_id": "x", "provider_ref": "y", "amount": "1.00"});
    assert_problem(
        webhook(&app, &body, Some("00ff")).await,
        StatusCode::BAD_REQUEST,
        "invalid_signature",
    )
    .await;
    let unsigned = app
        .post_raw(
            "/payments/test/webhook",
            "application/json",
            body.to_string(),
        )
        .await;
    assert_problem(unsigned, StatusCode::BAD_REQUEST, "invalid_signature").await;
    let unknown = app
        .post_raw(
            "/payments/paypal/webhook",
            "application/json",
            body.to_string(),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_webhook_capture_confirms_a_pending_order_and_a_replay_changes_nothing() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let placed = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;
    let order_id = id(&placed);
    let reference = format!("test_{order_id}");
    let capture = json!({"type": "CAPTURED", "order_id": order_id, "provider_ref": reference, "amount": placed["total"]});
    assert_eq!(webhook_result(&app, &capture).await, "CONFIRMED");
    let order = order_row(&app, &order_id).await;
    assert_eq!(order.status, "CONFIRMED");
    assert_eq!(order.payment_ref.as_deref(), Some(reference.as_str()));
    assert_eq!(ticket_count(&app, &order_id).await, 2);
    mail_about(&app, &buyer.email, "주문이 확정").await;

    assert_eq!(webhook_result(&app, &capture).await, "UNCHANGED");
    assert_eq!(ticket_count(&app, &order_id).await, 2);
    assert_eq!(captures(&payment_rows(&app, &order_id).await), 1);
    // The buyer's page confirming afterwards gets the paid order.
    let confirmed = confirm(&app, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(captures(&payment_rows(&app, &order_id).await), 1);

    // A cancellation made at the gateway is noted once; the order is not refunded twice.
    let canceled = json!({"type": "CANCELED", "order_id": order_id, "provider_ref": reference});
    assert_eq!(webhook_result(&app, &canceled).await, "NOTED");
    assert_eq!(webhook_result(&app, &canceled).await, "UNCHANGED");
    assert_eq!(order_row(&app, &order_id).await.status, "CONFIRMED");
    assert!(refund_rows(&app, &order_id).await.is_empty());
    // Callbacks about orders we do not know change nothing.
    let stranger =
        json!({"type": "CAPTURED", "order_id": "nope", "provider_ref": "r", "amount": "1.00"});
    assert_eq!(webhook_result(&app, &stranger).await, "UNCHANGED");
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn someone_elses_order_is_not_found_for_paying_and_tickets() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let stranger = app.user().await;
    let order_id = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    assert_problem(
        pay(&app, &stranger, &order_id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        confirm(&app, &stranger, &order_id, json!({"scenario": "SUCCESS"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    pay_in_full(&app, &buyer, &order_id).await;
    assert_problem(
        app.get_as(
            &format!("/orders/{order_id}/tickets"),
            &stranger.access_token,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("/orders/{order_id}/tickets")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // Paying a paid order again is the state machine's refusal; unknown gateways are named.
    assert_problem(
        pay(&app, &buyer, &order_id).await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let other = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    let unknown = app
        .post_as(
            &format!("/orders/{other}/pay"),
            &buyer.access_token,
            &json!({"provider": "paypal"}),
        )
        .await;
    let problem = assert_problem(
        unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "provider");
    // No body at all picks the default gateway.
    let bare = app
        .client
        .post(app.url(&format!("/orders/{other}/pay")))
        .bearer_auth(&buyer.access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(bare.status(), StatusCode::OK);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn an_idempotency_key_replays_a_confirmation() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order_id = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    let send = |payload: Value| {
        app.client
            .post(app.url(&format!("/orders/{order_id}/pay/confirm")))
            .bearer_auth(&buyer.access_token)
            .header("Idempotency-Key", "confirm-1")
            .json(&json!({ "provider_payload": payload }))
            .send()
    };
    let first = send(json!({"scenario": "DECLINE"})).await.expect("request");
    assert_eq!(first.status(), StatusCode::CONFLICT);
    let replay = send(json!({"scenario": "DECLINE"})).await.expect("request");
    assert_eq!(replay.status(), StatusCode::CONFLICT);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let reused = send(json!({"scenario": "SUCCESS"})).await.expect("request");
    assert_problem(
        reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(order_row(&app, &order_id).await.status, "PENDING");
}

#[tokio::test]
async fn a_payment_for_an_event_canceled_meanwhile_is_given_back_not_confirmed() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    // The checkout won the race with the cancellation; the cancellation job has not reached it.
    boxoffice::db::entities::events::ActiveModel {
        id: sea_orm::Set(shop.event_id.clone()),
        status: Set("CANCELED".into()),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("cancel");
    let paid = app
        .post_as(
            &format!("/orders/{}/pay", id(&order)),
            &buyer.access_token,
            &json!({}),
        )
        .await;
    if paid.status() == StatusCode::OK {
        let confirmed = app
            .post_as(
                &format!("/orders/{}/pay/confirm", id(&order)),
                &buyer.access_token,
                &json!({"provider_payload": {"scenario": "SUCCESS"}}),
            )
            .await;
        assert_problem(confirmed, StatusCode::CONFLICT, "order_expired").await;
    } else {
        assert_problem(paid, StatusCode::CONFLICT, "order_expired").await;
    }
    let row = orders::Entity::find_by_id(id(&order))
        .one(&app.state.db)
        .await
        .expect("order")
        .expect("exists");
    assert_ne!(row.status, "CONFIRMED");
    let kept = refunds::Entity::find()
        .filter(refunds::Column::OrderId.eq(id(&order)))
        .all(&app.state.db)
        .await
        .expect("refunds");
    assert!(
        kept.iter().all(|r| r.status == "DONE"),
        "any capture went back: {kept:?}"
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_buyer_who_canceled_after_starting_to_pay_is_refused_before_anything_is_captured() {
    let app = TestApp::spawn().await;
    let (buyer, order_id) = payment_started(&app).await;
    assert_eq!(
        cancel(&app, &buyer, &order_id, None).await.status(),
        StatusCode::OK
    );
    assert_problem(
        confirm(&app, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await,
        StatusCode::CONFLICT,
        "order_expired",
    )
    .await;
    assert_eq!(captures(&payment_rows(&app, &order_id).await), 0);
    assert!(refund_rows(&app, &order_id).await.is_empty());
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_cancellation_on_another_instance_reaches_the_one_the_buyer_paid_on() {
    let first = TestApp::spawn().await;
    let second = first.spawn_peer().await;
    wait_until_peer_listens(&second, &first).await;
    let (buyer, order_id) = payment_started(&first).await;
    assert!(first.state.recent_payments.holds(&order_id));
    assert_eq!(
        cancel(&second, &buyer, &order_id, None).await.status(),
        StatusCode::OK
    );
    eventually(
        "the paying instance hears of the cancellation",
        async || !first.state.recent_payments.holds(&order_id),
    )
    .await;
    assert_problem(
        confirm(&first, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await,
        StatusCode::CONFLICT,
        "order_expired",
    )
    .await;
    assert_eq!(captures(&payment_rows(&first, &order_id).await), 0);
    assert_stock_consistent(&first).await;
}

#[tokio::test]
async fn a_stranger_confirming_a_payment_in_progress_changes_nothing_for_the_buyer() {
    let app = TestApp::spawn().await;
    let (buyer, order_id) = payment_started(&app).await;
    let stranger = app.user().await;
    assert_problem(
        confirm(&app, &stranger, &order_id, json!({"scenario": "SUCCESS"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(app.state.recent_payments.holds(&order_id));
    let confirmed = confirm(&app, &buyer, &order_id, json!({"scenario": "SUCCESS"})).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(!app.state.recent_payments.holds(&order_id));
    assert_eq!(captures(&payment_rows(&app, &order_id).await), 1);
    assert_stock_consistent(&app).await;
}
