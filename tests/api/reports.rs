//! After the sale: fulfilment, the organizer's order list, the sales report and CSV exports.

use boxoffice::db::entities::{tickets, users};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, assert_problem},
    shop::{Shop, address, assert_stock_consistent, cancel, confirm, id, place},
};

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Orders merch with delivery; returns the order.
async fn merch_order(app: &TestApp, buyer: &TestUser, stick: &Value, quantity: i64) -> Value {
    let delivery = stick["shipping_options"][0]["id"].as_str().expect("option");
    let response = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [{"product_id": id(stick), "quantity": quantity, "shipping_option_id": delivery}],
                    "shipping_address": address()}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn put_fulfillment(
    app: &TestApp,
    token: &str,
    shop: &Shop,
    order_id: &str,
    item_id: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .put(app.url(&format!(
            "/events/{}/orders/{order_id}/items/{item_id}/fulfillment",
            shop.event_id
        )))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn fulfilment_moves_forward_and_the_buyer_is_mailed_when_shipped() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let stick = shop.merch(&app, 10).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = merch_order(&app, &buyer, &stick, 2).await;
    let order_id = id(&order);
    let line = id(&order["items"][0]);
    let organizer = shop.organizer.access_token.clone();
    assert!(
        order["items"][0]["fulfillment"].is_null(),
        "nothing to fulfil before payment"
    );
    assert_problem(
        put_fulfillment(
            &app,
            &organizer,
            &shop,
            &order_id,
            &line,
            json!({"status": "PICKED_UP"}),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    confirm(&app, &buyer, &order_id).await;
    let seen = ok_json(
        app.get_as(&format!("/orders/{order_id}"), &buyer.access_token)
            .await,
    )
    .await;
    assert_eq!(seen["items"][0]["fulfillment"]["status"], "PENDING");

    assert_problem(
        put_fulfillment(
            &app,
            &organizer,
            &shop,
            &order_id,
            &line,
            json!({"status": "SHIPPED", "carrier": "CJ대한통운"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        put_fulfillment(
            &app,
            &buyer.access_token,
            &shop,
            &order_id,
            &line,
            json!({"status": "PICKED_UP"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let shipping_line = id(&order["items"][1]);
    assert_problem(
        put_fulfillment(
            &app,
            &organizer,
            &shop,
            &order_id,
            &shipping_line,
            json!({"status": "PICKED_UP"}),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let shipped = ok_json(
        put_fulfillment(
            &app,
            &organizer,
            &shop,
            &order_id,
            &line,
            json!({"status": "SHIPPED", "carrier": "CJ대한통운", "tracking_number": "6543-2109-8765"}),
        )
        .await,
    )
    .await;
    assert_eq!(shipped["items"][0]["fulfillment"]["status"], "SHIPPED");
    let seen = ok_json(
        app.get_as(&format!("/orders/{order_id}"), &buyer.access_token)
            .await,
    )
    .await;
    let fulfillment = &seen["items"][0]["fulfillment"];
    assert_eq!(fulfillment["carrier"], "CJ대한통운");
    assert_eq!(fulfillment["tracking_number"], "6543-2109-8765");
    assert!(fulfillment["at"].is_string());
    let mails = app.mail.wait_for(&buyer.email, 3).await;
    assert!(
        mails
            .iter()
            .any(|m| m.text.contains("6543-2109-8765") && m.text.contains("CJ대한통운")),
        "the shipping mail names carrier and tracking number"
    );
    assert_problem(
        put_fulfillment(
            &app,
            &organizer,
            &shop,
            &order_id,
            &line,
            json!({"status": "PICKED_UP"}),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    // A ticket-only order has nothing to fulfil.
    let tickets_only = place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    confirm(&app, &buyer, &id(&tickets_only)).await;
    assert_problem(
        put_fulfillment(
            &app,
            &organizer,
            &shop,
            &id(&tickets_only),
            &id(&tickets_only["items"][0]),
            json!({"status": "PICKED_UP"}),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn sales_count_sold_held_remaining_and_revenue_after_a_mix_of_orders() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let (seated, seats) = shop.seated(&app, 5).await;
    let stick = shop.merch(&app, 10).await;
    let buyer = app.user().await;
    let sold = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
    confirm(&app, &buyer, &sold).await;
    place(&app, &buyer, json!([{"product_id": ticket, "quantity": 3}])).await;
    let refunded = id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await);
    confirm(&app, &buyer, &refunded).await;
    assert_eq!(
        cancel(&app, &buyer, &refunded, None).await.status(),
        StatusCode::OK
    );
    let seat_order = id(&place(
        &app,
        &buyer,
        json!([{"product_id": seated, "quantity": 2, "seat_ids": [seats[0], seats[1]]}]),
    )
    .await);
    confirm(&app, &buyer, &seat_order).await;
    let merch = id(&merch_order(&app, &buyer, &stick, 1).await);
    confirm(&app, &buyer, &merch).await;

    let path = format!("/events/{}/sales", shop.event_id);
    assert_problem(
        app.get_as(&path, &buyer.access_token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let report = ok_json(app.get_as(&path, &shop.organizer.access_token).await).await;
    let product = |pid: &str| {
        report["products"]
            .as_array()
            .expect("products")
            .iter()
            .find(|p| p["product_id"] == pid)
            .cloned()
            .expect("product in the report")
    };
    let general = product(&ticket);
    assert_eq!(
        (
            general["sold"].clone(),
            general["held"].clone(),
            general["remaining"].clone()
        ),
        (json!(2), json!(3), json!(95))
    );
    assert_eq!(general["revenue"], "110000.00");
    let reserved = product(&seated);
    assert_eq!(
        (reserved["sold"].clone(), reserved["remaining"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(reserved["grade"], "R");
    assert_eq!(reserved["revenue"], "264000.00");
    let goods = product(&id(&stick));
    assert_eq!(
        (goods["sold"].clone(), goods["remaining"].clone()),
        (json!(1), json!(9))
    );
    let grade_r = report["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .find(|g| g["grade"] == "R")
        .cloned()
        .expect("grade R");
    assert_eq!(grade_r["sold"], 2);
    let totals = &report["totals"];
    assert_eq!(totals["sold"], 5);
    assert_eq!(totals["held"], 3);
    assert_eq!(
        (
            totals["orders_confirmed"].clone(),
            totals["orders_pending"].clone(),
            totals["orders_refunded"].clone()
        ),
        (json!(3), json!(1), json!(1))
    );
    // 110,000 + 264,000 + 35,000 + 3,000 shipping confirmed, and 55,000 paid then refunded.
    assert_eq!(totals["gross"], "467000.00");
    assert_eq!(totals["refunded"], "55000.00");
    assert_eq!(totals["shipping"], "3000.00");
    assert_eq!(totals["revenue"], "412000.00");
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn the_event_order_list_is_newest_first_with_buyer_emails_and_pages() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyers = app.buyers(3).await;
    let mut ids = Vec::new();
    for buyer in &buyers {
        ids.push(id(&place(
            &app,
            buyer,
            json!([{"product_id": ticket, "quantity": 1}]),
        )
        .await));
        app.clock.advance(time::Duration::seconds(1));
    }
    confirm(&app, &buyers[0], &ids[0]).await;
    let organizer = &shop.organizer.access_token;
    let base = format!("/events/{}/orders", shop.event_id);
    let page = ok_json(app.get_as(&format!("{base}?limit=2"), organizer).await).await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], ids[2].as_str(), "newest first");
    assert_eq!(items[0]["buyer_email"], buyers[2].email.as_str());
    let cursor = page["next_cursor"].as_str().expect("more");
    let rest = ok_json(
        app.get_as(&format!("{base}?limit=2&cursor={cursor}"), organizer)
            .await,
    )
    .await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 1);
    assert_eq!(rest["items"][0]["id"], ids[0].as_str());
    assert!(rest["next_cursor"].is_null());
    let confirmed = ok_json(
        app.get_as(&format!("{base}?status=CONFIRMED"), organizer)
            .await,
    )
    .await;
    assert_eq!(confirmed["items"].as_array().expect("items").len(), 1);
    assert_problem(
        app.get_as(&format!("{base}?status=NOPE"), organizer).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let stranger = app
        .user_with_role(boxoffice::auth::model::Role::Organizer)
        .await;
    assert_problem(
        app.get_as(&base, &stranger.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn csv(app: &TestApp, token: &str, path: &str) -> String {
    let response = app.get_as(path, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let bytes = response.bytes().await.expect("body");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a UTF-8 byte-order mark"
    );
    String::from_utf8(bytes[3..].to_vec()).expect("utf-8")
}

#[tokio::test]
async fn csv_exports_carry_a_bom_show_korean_and_defuse_formulas() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let stick = shop.merch(&app, 10).await;
    let buyer = app.buyers(1).await.remove(0);
    users::Entity::update_many()
        .col_expr(users::Column::Name, Expr::value("=cmd|' /C calc'!A0"))
        .filter(users::Column::Email.eq(buyer.email.clone()))
        .exec(&app.state.db)
        .await
        .expect("rename");
    let tickets_order =
        id(&place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
    confirm(&app, &buyer, &tickets_order).await;
    let goods = id(&merch_order(&app, &buyer, &stick, 1).await);
    confirm(&app, &buyer, &goods).await;
    let token = &shop.organizer.access_token;
    let base = format!("/events/{}", shop.event_id);

    let orders = csv(&app, token, &format!("{base}/orders.csv")).await;
    assert!(
        orders.starts_with("order_id,created_at,status,"),
        "{orders}"
    );
    assert!(orders.contains("스탠딩 x2"), "Korean as is: {orders}");
    assert!(orders.contains("'=cmd|"), "formula defused: {orders}");
    assert!(!orders.contains(",=cmd"), "{orders}");
    assert_eq!(orders.lines().count(), 3, "header and two orders");

    let attendees = csv(&app, token, &format!("{base}/attendees.csv")).await;
    let codes: Vec<String> = tickets::Entity::find()
        .filter(tickets::Column::OrderId.eq(tickets_order.as_str()))
        .all(&app.state.db)
        .await
        .expect("tickets")
        .into_iter()
        .map(|t| t.code)
        .collect();
    assert_eq!(attendees.lines().count(), 1 + codes.len(), "{attendees}");
    for code in &codes {
        assert!(!attendees.contains(code.as_str()), "never a ticket code");
    }
    assert!(codes.is_empty() || attendees.contains("스탠딩"));

    let fulfillment = csv(&app, token, &format!("{base}/fulfillment.csv")).await;
    assert!(
        fulfillment.contains("서울특별시 강남구 테헤란로 123 4층"),
        "{fulfillment}"
    );
    assert!(fulfillment.contains("응원봉"));
    assert!(fulfillment.contains(",PENDING,"), "{fulfillment}");
    assert!(fulfillment.contains("'010-") || fulfillment.contains("010-1234-5678"));

    assert_problem(
        app.get_as(&format!("{base}/orders.csv"), &buyer.access_token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
