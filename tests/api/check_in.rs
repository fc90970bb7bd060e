//! Check-in at the entrance: exactly once per ticket, forged codes refused, staff named by the
//! organizer.

use boxoffice::{
    auth::model::Role,
    db::entities::{orders, tickets, users},
    orders::tickets::void_for_order,
};
use reqwest::{Response, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, assert_problem},
    payments::{pay_in_full, tickets_of},
    shop::{Shop, assert_stock_consistent, id, place},
};

async fn scan(app: &TestApp, who: &TestUser, event_id: &str, code: &str) -> Response {
    app.post_as(
        &format!("/events/{event_id}/check-in"),
        &who.access_token,
        &json!({ "code": code }),
    )
    .await
}

async fn scan_ok(app: &TestApp, who: &TestUser, event_id: &str, code: &str) -> Value {
    let response = scan(app, who, event_id, code).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn user_id(app: &TestApp, user: &TestUser) -> String {
    users::Entity::find()
        .filter(users::Column::Email.eq(user.email.clone()))
        .one(&app.state.db)
        .await
        .expect("user")
        .expect("exists")
        .id
}

async fn put_staff(app: &TestApp, who: &TestUser, event_id: &str, ids: Value) -> Response {
    app.client
        .put(app.url(&format!("/events/{event_id}/check-in/staff")))
        .bearer_auth(&who.access_token)
        .json(&json!({ "user_ids": ids }))
        .send()
        .await
        .expect("request")
}

/// An open shop with one paid order of `quantity` standing tickets; returns the shop, the
/// buyer, the order id and its tickets.
async fn sold(app: &TestApp, quantity: i64) -> (Shop, TestUser, String, Vec<Value>) {
    let shop = Shop::open(app).await;
    let ticket = shop.ticket(app, 100).await;
    let buyer = app.user().await;
    let order_id = id(&place(
        app,
        &buyer,
        json!([{"product_id": ticket, "quantity": quantity}]),
    )
    .await);
    pay_in_full(app, &buyer, &order_id).await;
    let tickets = tickets_of(app, &buyer, &order_id).await;
    (shop, buyer, order_id, tickets)
}

fn payload(ticket: &Value) -> &str {
    ticket["qr_payload"].as_str().expect("payload")
}

#[tokio::test]
async fn the_organizer_checks_a_ticket_in_once_and_a_second_scan_says_already_used() {
    let app = TestApp::spawn().await;
    let (shop, buyer, order_id, tickets) = sold(&app, 2).await;
    let first = scan_ok(&app, &shop.organizer, &shop.event_id, payload(&tickets[0])).await;
    assert_eq!(first["result"], "OK");
    assert_eq!(first["ticket"]["id"], tickets[0]["id"]);
    assert_eq!(first["ticket"]["status"], "USED");
    assert_eq!(first["ticket"]["name"], "스탠딩");
    assert!(first["used_at"].is_string());

    let again = scan_ok(&app, &shop.organizer, &shop.event_id, payload(&tickets[0])).await;
    assert_eq!(again["result"], "ALREADY_USED");
    assert_eq!(
        again["used_at"], first["used_at"],
        "the first admission's time"
    );

    // Staff may type the bare code (any case) when a QR code does not scan.
    let typed = tickets[1]["code"].as_str().expect("code").to_uppercase();
    let by_hand = scan_ok(&app, &shop.organizer, &shop.event_id, &typed).await;
    assert_eq!(by_hand["result"], "OK");
    let by_hand_again = scan_ok(&app, &shop.organizer, &shop.event_id, &typed).await;
    assert_eq!(by_hand_again["result"], "ALREADY_USED");

    let admin = app.admin().await;
    let by_admin = scan_ok(&app, &admin, &shop.event_id, payload(&tickets[0])).await;
    assert_eq!(by_admin["result"], "ALREADY_USED");

    let seen = tickets_of(&app, &buyer, &order_id).await;
    assert!(
        seen.iter()
            .all(|t| t["status"] == "USED" && t["used_at"].is_string())
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_check_ins_of_one_ticket_admit_it_once() {
    let app = TestApp::spawn().await;
    let (shop, _buyer, _order_id, tickets) = sold(&app, 8).await;
    let staff = app.user().await;
    let staff_id = user_id(&app, &staff).await;
    let response = put_staff(&app, &shop.organizer, &shop.event_id, json!([staff_id])).await;
    assert_eq!(response.status(), StatusCode::OK);
    for ticket in &tickets {
        // Two gates scan the same ticket at the same moment.
        let (a, b) = tokio::join!(
            scan_ok(&app, &shop.organizer, &shop.event_id, payload(ticket)),
            scan_ok(&app, &staff, &shop.event_id, payload(ticket))
        );
        let mut results = [
            a["result"].as_str().expect("result").to_owned(),
            b["result"].as_str().expect("result").to_owned(),
        ];
        results.sort();
        assert_eq!(results, ["ALREADY_USED", "OK"]);
        assert_eq!(a["used_at"], b["used_at"]);
    }
}

#[tokio::test]
async fn a_forged_or_malformed_payload_or_another_events_ticket_is_invalid() {
    let app = TestApp::spawn().await;
    let (shop, _buyer, _order_id, tickets) = sold(&app, 1).await;
    let (other_shop, _, _, other_tickets) = sold(&app, 1).await;
    let genuine = payload(&tickets[0]).to_owned();
    let code = tickets[0]["code"].as_str().expect("code");
    let tag = genuine.rsplit('.').next().expect("tag");
    let forged_code = format!("BO1.{}.{tag}", "0".repeat(32));
    let mut bent_tag = genuine.clone();
    bent_tag.pop();
    bent_tag.push(if genuine.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        forged_code.as_str(),
        bent_tag.as_str(),
        &format!("BO2.{code}.{tag}"),
        "hello",
        "",
        &"f".repeat(32),
        payload(&other_tickets[0]),
    ] {
        let answer = scan_ok(&app, &shop.organizer, &shop.event_id, bad).await;
        assert_eq!(answer["result"], "INVALID", "{bad}");
        assert!(answer["ticket"].is_null());
    }
    // The genuine ticket is still unused, and valid at its own event only.
    let ok = scan_ok(&app, &shop.organizer, &shop.event_id, &genuine).await;
    assert_eq!(ok["result"], "OK");
    let elsewhere = scan_ok(
        &app,
        &other_shop.organizer,
        &other_shop.event_id,
        payload(&tickets[0]),
    )
    .await;
    assert_eq!(elsewhere["result"], "INVALID");
}

#[tokio::test]
async fn a_void_ticket_is_reported_refunded_and_shows_no_qr_code() {
    let app = TestApp::spawn().await;
    let (shop, buyer, order_id, tickets) = sold(&app, 2).await;
    let used = scan_ok(&app, &shop.organizer, &shop.event_id, payload(&tickets[0])).await;
    assert_eq!(used["result"], "OK");
    let voided = void_for_order(&app.state.db, &order_id, app.state.clock.now())
        .await
        .expect("void");
    assert_eq!(voided, 1, "the used ticket stays used");
    let refunded = scan_ok(&app, &shop.organizer, &shop.event_id, payload(&tickets[1])).await;
    assert_eq!(refunded["result"], "REFUNDED");
    assert_eq!(refunded["ticket"]["status"], "VOID");
    let seen = tickets_of(&app, &buyer, &order_id).await;
    let void = seen
        .iter()
        .find(|t| t["id"] == tickets[1]["id"])
        .expect("ticket");
    assert_eq!(void["status"], "VOID");
    assert!(void["qr_payload"].is_null() && void["qr_svg"].is_null());
    let row = tickets::Entity::find_by_id(tickets[1]["id"].as_str().expect("id").to_owned())
        .one(&app.state.db)
        .await
        .expect("ticket")
        .expect("exists");
    assert!(row.used_at.is_none());

    // A ticket of an order that is no longer paid admits nobody, even if voiding was missed.
    let other = id(&place(
        &app,
        &buyer,
        json!([{"product_id": shop_ticket(&app, &order_id).await, "quantity": 1}]),
    )
    .await);
    pay_in_full(&app, &buyer, &other).await;
    let unvoided = tickets_of(&app, &buyer, &other).await;
    orders::Entity::update_many()
        .col_expr(orders::Column::Status, Expr::value("REFUNDED"))
        .filter(orders::Column::Id.eq(other.clone()))
        .exec(&app.state.db)
        .await
        .expect("refund behind the scenes");
    let scanned = scan_ok(&app, &shop.organizer, &shop.event_id, payload(&unvoided[0])).await;
    assert_eq!(scanned["result"], "REFUNDED");
    assert_eq!(scanned["ticket"]["status"], "VALID");
}

/// The ticket product of an order's first line.
async fn shop_ticket(app: &TestApp, order_id: &str) -> String {
    tickets::Entity::find()
        .filter(tickets::Column::OrderId.eq(order_id))
        .one(&app.state.db)
        .await
        .expect("ticket")
        .expect("exists")
        .product_id
}

#[tokio::test]
async fn named_staff_may_check_in_and_others_may_not() {
    let app = TestApp::spawn().await;
    let (shop, buyer, _order_id, tickets) = sold(&app, 3).await;
    let staff = app.user().await;
    let staff_id = user_id(&app, &staff).await;
    let other_organizer = app.user_with_role(Role::Organizer).await;

    for outsider in [&staff, &buyer, &other_organizer] {
        assert_problem(
            scan(&app, outsider, &shop.event_id, payload(&tickets[0])).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_problem(
        scan(&app, &shop.organizer, "no-such-event", payload(&tickets[0])).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let named = put_staff(
        &app,
        &shop.organizer,
        &shop.event_id,
        json!([staff_id, staff_id]),
    )
    .await;
    assert_eq!(named.status(), StatusCode::OK);
    let named: Value = named.json().await.expect("json");
    assert_eq!(named["user_ids"], json!([staff_id]));
    let listed: Value = app
        .get_as(
            &format!("/events/{}/check-in/staff", shop.event_id),
            &shop.organizer.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, named);
    let by_staff = scan_ok(&app, &staff, &shop.event_id, payload(&tickets[0])).await;
    assert_eq!(by_staff["result"], "OK");

    // Staff cannot name staff; another organizer's event is not found; unknown ids are named.
    assert_problem(
        put_staff(&app, &staff, &shop.event_id, json!([])).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        put_staff(&app, &other_organizer, &shop.event_id, json!([])).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let unknown = put_staff(&app, &shop.organizer, &shop.event_id, json!(["nobody"])).await;
    let problem = assert_problem(
        unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "unknown_user");

    // An empty list takes the permission away again.
    let cleared = put_staff(&app, &shop.organizer, &shop.event_id, json!([])).await;
    assert_eq!(cleared.status(), StatusCode::OK);
    assert_problem(
        scan(&app, &staff, &shop.event_id, payload(&tickets[1])).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
