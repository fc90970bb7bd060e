//! Checkout and order history: what a buyer sees when ordering.

use boxoffice::{
    catalog::products::stock,
    db::entities::{events, idempotency_keys, orders, products, seats, stock_movements},
};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, assert_problem},
    shop::{Shop, address, assert_stock_consistent, cancel, id, order, place, remaining},
};

fn errors_of(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_buyer_orders_tickets_and_delivered_merch_in_one_pending_order() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let stick = shop.merch(&app, 10).await;
    let delivery = stick["shipping_options"][0]["id"].as_str().expect("option");
    let buyer = app.user().await;

    let created = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [
                {"product_id": ticket, "quantity": 2},
                {"product_id": id(&stick), "quantity": 1, "shipping_option_id": delivery}
            ], "shipping_address": address()}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let order: Value = created.json().await.expect("json");
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["event_id"], shop.event_id.as_str());
    assert_eq!(order["currency"], "KRW");
    assert_eq!(order["subtotal"], "145000.00");
    assert_eq!(order["shipping_fee"], "3000.00");
    assert_eq!(order["total"], "148000.00");
    let items = order["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "two lines and the shipping fee: {order}");
    assert_eq!(items[0]["kind"], "TICKET");
    assert_eq!(items[0]["unit_price"], "55000.00");
    assert_eq!(items[0]["price"], "110000.00");
    assert_eq!(items[1]["kind"], "MERCH");
    assert_eq!(items[1]["preorder"], false);
    assert_eq!(items[2]["kind"], "SHIPPING");
    assert_eq!(items[2]["price"], "3000.00");
    assert_eq!(order["shipping_address"]["recipient"], "김민지");
    let expires = time::OffsetDateTime::parse(
        order["expires_at"].as_str().expect("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("time");
    assert!(expires > app.state.clock.now());

    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        98
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &id(&stick)).await,
        9
    );
    let read = app
        .get_as(&format!("/orders/{}", id(&order)), &buyer.access_token)
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.expect("json");
    assert_eq!(read["items"], order["items"]);
    let list: Value = app
        .get_as("/orders", &buyer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"][0]["id"], order["id"]);
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn someone_elses_order_is_not_found() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyers = app.buyers(2).await;
    let order = place(
        &app,
        &buyers[0],
        json!([{"product_id": ticket, "quantity": 1}]),
    )
    .await;
    let response = app
        .get_as(&format!("/orders/{}", id(&order)), &buyers[1].access_token)
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let list: Value = app
        .get_as("/orders", &buyers[1].access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"], json!([]));
    let anonymous = app.get("/orders").await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn an_order_is_all_or_nothing_and_names_what_is_sold_out() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let poster = shop.ticket(&app, 1).await;
    let buyer = app.user().await;
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": ticket, "quantity": 3}, {"product_id": poster, "quantity": 2}]),
    )
    .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "sold_out").await;
    assert_eq!(
        errors_of(&problem),
        vec![("items[1]".into(), "sold_out".into())]
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        100,
        "nothing was taken"
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &poster).await,
        1
    );
    assert_eq!(
        orders::Entity::find()
            .all(&app.state.db)
            .await
            .expect("orders")
            .len(),
        0
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn reserved_seats_are_held_for_the_order_and_taken_seats_are_named() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let (product, seat_ids) = shop.seated(&app, 4).await;
    let buyers = app.buyers(2).await;
    let first = place(
        &app,
        &buyers[0],
        json!([{"product_id": product, "quantity": 2, "seat_ids": [seat_ids[0], seat_ids[1]]}]),
    )
    .await;
    let seats_of_first = first["items"][0]["seats"].as_array().expect("seats");
    assert_eq!(seats_of_first.len(), 2);
    assert_eq!(seats_of_first[0]["label"], "A-1-1");
    let held = seats::Entity::find()
        .filter(seats::Column::OrderId.eq(id(&first)))
        .all(&app.state.db)
        .await
        .expect("seats");
    assert!(held.iter().all(|s| s.state == "HELD") && held.len() == 2);

    let response = order(
        &app,
        &buyers[1],
        json!([{"product_id": product, "quantity": 2, "seat_ids": [seat_ids[1], seat_ids[2]]}]),
    )
    .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "seat_unavailable").await;
    assert_eq!(problem["errors"][0]["message"], seat_ids[1].as_str());
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(1));
    let free = seats::Entity::find_by_id(seat_ids[2].clone())
        .one(&app.state.db)
        .await
        .expect("seat")
        .expect("exists");
    assert_eq!(
        free.state, "AVAILABLE",
        "the free seat of a failed order stays free"
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn seat_requests_must_match_the_quantity_and_name_each_seat_once() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let (product, seat_ids) = shop.seated(&app, 3).await;
    let buyer = app.user().await;
    for (items, field, code) in [
        (
            json!([{"product_id": product, "quantity": 2}]),
            "items[0].seat_ids",
            "required",
        ),
        (
            json!([{"product_id": product, "quantity": 2, "seat_ids": [seat_ids[0]]}]),
            "items[0].seat_ids",
            "quantity_mismatch",
        ),
        (
            json!([{"product_id": product, "quantity": 2, "seat_ids": [seat_ids[0], seat_ids[0]]}]),
            "items[0].seat_ids",
            "duplicate_seat",
        ),
        (
            json!([{"product_id": product, "quantity": 1, "seat_ids": ["no-such-seat"]}]),
            "",
            "",
        ),
    ] {
        let response = order(&app, &buyer, items).await;
        if field.is_empty() {
            assert_problem(response, StatusCode::CONFLICT, "seat_unavailable").await;
        } else {
            let problem = assert_problem(
                response,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            )
            .await;
            assert!(
                errors_of(&problem).contains(&(field.into(), code.into())),
                "{problem}"
            );
        }
    }
}

#[tokio::test]
async fn merch_sells_from_stock_then_as_a_preorder_and_packages_take_their_parts() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let tee = shop
        .product(
            &app,
            json!({"type": "MERCH", "name": "투어 티셔츠", "price": "39000",
                   "variants": [{"name": "M", "sku": "TEE-M", "quantity": 1, "preorder_limit": 2, "expected_ship_date": "2027-01-15"},
                                {"name": "L", "sku": "TEE-L", "quantity": 5}],
                   "shipping_options": [{"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
        )
        .await;
    let m = tee["variants"][0]["id"]
        .as_str()
        .expect("variant")
        .to_owned();
    let pickup = tee["shipping_options"][0]["id"]
        .as_str()
        .expect("pickup")
        .to_owned();
    let buyer = app.user().await;
    let line = |n: i64| json!([{"product_id": id(&tee), "variant_id": m, "quantity": n, "shipping_option_id": pickup}]);
    let first = place(&app, &buyer, line(1)).await;
    assert_eq!(first["items"][0]["preorder"], false);
    assert_eq!(first["items"][0]["name"], "투어 티셔츠 (M)");
    assert_eq!(
        first["items"].as_array().map(Vec::len),
        Some(1),
        "free pick-up adds no line"
    );
    let second = place(&app, &buyer, line(2)).await;
    assert_eq!(second["items"][0]["preorder"], true);
    let third = order(&app, &buyer, line(1)).await;
    assert_problem(third, StatusCode::CONFLICT, "sold_out").await;
    let no_variant = order(
        &app,
        &buyer,
        json!([{"product_id": id(&tee), "quantity": 1, "shipping_option_id": pickup}]),
    )
    .await;
    let problem = assert_problem(
        no_variant,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        errors_of(&problem),
        vec![("items[0].variant_id".into(), "required".into())]
    );

    let ticket = shop.ticket(&app, 100).await;
    let stick = shop.merch(&app, 3).await;
    let package = shop
        .product(
            &app,
            json!({"type": "PACKAGE", "name": "VIP 패키지", "price": "200000", "quantity": 10,
                   "components": [{"product_id": ticket, "quantity": 1}, {"product_id": id(&stick), "quantity": 1}],
                   "shipping_options": [{"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
        )
        .await;
    let package_pickup = package["shipping_options"][0]["id"]
        .as_str()
        .expect("pickup");
    let bought = place(
        &app,
        &buyer,
        json!([{"product_id": id(&package), "quantity": 2, "shipping_option_id": package_pickup}]),
    )
    .await;
    assert_eq!(bought["total"], "400000.00");
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        98
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &id(&stick)).await,
        1
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &id(&package)).await,
        1,
        "limited by the light stick"
    );
    let too_many = order(
        &app,
        &buyer,
        json!([{"product_id": id(&package), "quantity": 2, "shipping_option_id": package_pickup}]),
    )
    .await;
    assert_problem(too_many, StatusCode::CONFLICT, "sold_out").await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_delivery_needs_an_address_and_a_product_with_options_needs_a_choice() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let stick = shop.merch(&app, 10).await;
    let delivery = stick["shipping_options"][0]["id"]
        .as_str()
        .expect("delivery");
    let buyer = app.user().await;
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": id(&stick), "quantity": 1, "shipping_option_id": delivery}]),
    )
    .await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        errors_of(&problem),
        vec![("shipping_address".into(), "required".into())]
    );
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": id(&stick), "quantity": 1}]),
    )
    .await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        errors_of(&problem),
        vec![("items[0].shipping_option_id".into(), "required".into())]
    );
    let bad_address = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [{"product_id": id(&stick), "quantity": 1, "shipping_option_id": delivery}],
                    "shipping_address": {"recipient": "", "phone": "call me", "postcode": "06236", "address_lines": []}}),
        )
        .await;
    let problem = assert_problem(
        bad_address,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<String> = errors_of(&problem).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        vec![
            "shipping_address.recipient",
            "shipping_address.phone",
            "shipping_address.address_lines"
        ]
    );
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &id(&stick)).await,
        10
    );
}

#[tokio::test]
async fn ugly_order_requests_get_clear_errors_and_take_nothing() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    for (body, status, code) in [
        (
            json!({"items": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": -1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": 0}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": 51}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": "2"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": 1e20}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": "없는 상품 🎫", "quantity": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": 1, "price": "1"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": 1, "seat_ids": ["x"]}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": [{"product_id": ticket, "quantity": 1, "variant_id": "x"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"items": vec![json!({"product_id": ticket, "quantity": 1}); 21]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!([1, 2, 3]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
    ] {
        let response = app.post_as("/orders", &buyer.access_token, &body).await;
        assert_problem(response, status, code).await;
    }
    let not_json = app
        .client
        .post(app.url("/orders"))
        .bearer_auth(&buyer.access_token)
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .expect("request");
    assert_problem(not_json, StatusCode::BAD_REQUEST, "malformed_body").await;
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        10
    );
}

#[tokio::test]
async fn lines_of_two_events_are_refused() {
    let app = TestApp::spawn().await;
    let first = Shop::open(&app).await;
    let second = Shop::open(&app).await;
    let a = first.ticket(&app, 10).await;
    let b = second.ticket(&app, 10).await;
    let buyer = app.user().await;
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}]),
    )
    .await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "mixed_events").await;
}

#[tokio::test]
async fn limits_per_order_per_buyer_and_per_performance_hold() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let per_order = shop
        .ticket_with(&app, 100, json!({"per_order_limit": 2}))
        .await;
    let per_buyer = shop
        .ticket_with(&app, 100, json!({"per_user_limit": 3}))
        .await;
    let buyer = app.user().await;
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": per_order, "quantity": 3}]),
    )
    .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;
    assert_eq!(
        errors_of(&problem),
        vec![("items[0].quantity".into(), "per_order_limit".into())]
    );
    place(
        &app,
        &buyer,
        json!([{"product_id": per_buyer, "quantity": 2}]),
    )
    .await;
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": per_buyer, "quantity": 2}]),
    )
    .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;
    assert_eq!(
        errors_of(&problem),
        vec![("items[0].quantity".into(), "per_user_limit".into())]
    );
    place(
        &app,
        &buyer,
        json!([{"product_id": per_buyer, "quantity": 1}]),
    )
    .await;
    let other = app.user().await;
    place(
        &app,
        &other,
        json!([{"product_id": per_buyer, "quantity": 3}]),
    )
    .await;

    // A performance limit of 4 counts every ticket product of the performance.
    shop.limit_performance(&app, 4).await;
    let third = app.user().await;
    place(
        &app,
        &third,
        json!([{"product_id": per_order, "quantity": 2}, {"product_id": per_buyer, "quantity": 2}]),
    )
    .await;
    let response = order(
        &app,
        &third,
        json!([{"product_id": per_order, "quantity": 1}]),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_package_counts_its_contents_against_their_per_buyer_limits() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop
        .ticket_with(
            &app,
            100,
            json!({"per_user_limit": 4, "per_order_limit": 4}),
        )
        .await;
    let package = id(&shop
        .product(
            &app,
            json!({"type": "PACKAGE", "name": "스탠딩 2인 패키지", "price": "100000", "quantity": 50,
                   "components": [{"product_id": ticket, "quantity": 2}]}),
        )
        .await);
    let buyer = app.user().await;
    place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;

    // Two packages hold four more tickets: six in all, over the limit of four.
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": package, "quantity": 2}]),
    )
    .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;
    assert_eq!(
        errors_of(&problem),
        vec![("items[0].quantity".into(), "per_user_limit".into())]
    );
    // Three tickets and a package of two are five of the ticket in one order: over its
    // per-order limit of four.
    let fresh = app.user().await;
    let response = order(
        &app,
        &fresh,
        json!([{"product_id": ticket, "quantity": 3}, {"product_id": package, "quantity": 1}]),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;

    // One package brings the buyer to exactly four; canceling it gives the two back.
    let bought = place(
        &app,
        &buyer,
        json!([{"product_id": package, "quantity": 1}]),
    )
    .await;
    let response = order(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;
    let canceled = cancel(&app, &buyer, &id(&bought), None).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;
    let response = order(
        &app,
        &buyer,
        json!([{"product_id": package, "quantity": 1}]),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;

    // A performance's limit counts the tickets inside packages too.
    shop.limit_performance(&app, 3).await;
    let third = app.user().await;
    place(
        &app,
        &third,
        json!([{"product_id": package, "quantity": 1}]),
    )
    .await;
    let response = order(
        &app,
        &third,
        json!([{"product_id": package, "quantity": 1}]),
    )
    .await;
    assert_problem(response, StatusCode::CONFLICT, "limit_exceeded").await;
    place(&app, &third, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn what_a_sold_package_contains_can_no_longer_change() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let token = &shop.organizer.access_token;
    let ticket = shop.ticket(&app, 100).await;
    let other = shop.ticket(&app, 100).await;
    let package = id(&shop
        .product(
            &app,
            json!({"type": "PACKAGE", "name": "패키지", "price": "100000", "quantity": 50,
                   "components": [{"product_id": ticket, "quantity": 1}]}),
        )
        .await);
    let patch = |body: Value| {
        app.client
            .patch(app.url(&format!("/products/{package}")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    // Unsold, it may change.
    let changed = patch(json!({"components": [{"product_id": ticket, "quantity": 2}]}))
        .await
        .expect("request");
    assert_eq!(changed.status(), StatusCode::OK);
    let buyer = app.user().await;
    place(
        &app,
        &buyer,
        json!([{"product_id": package, "quantity": 1}]),
    )
    .await;

    let response = patch(json!({"components": [{"product_id": other, "quantity": 2}]}))
        .await
        .expect("request");
    assert_problem(response, StatusCode::CONFLICT, "orders_exist").await;
    let response = patch(json!({"components": [{"product_id": ticket, "quantity": 3}]}))
        .await
        .expect("request");
    assert_problem(response, StatusCode::CONFLICT, "orders_exist").await;
    // Everything else about it still may.
    let renamed = patch(json!({"name": "새 이름", "quantity": 60, "components": [{"product_id": ticket, "quantity": 2}]}))
        .await
        .expect("request");
    assert_eq!(renamed.status(), StatusCode::OK);
}

#[tokio::test]
async fn sales_must_be_open_and_the_event_live() {
    let app = TestApp::spawn().await;
    let later = (app.state.clock.now() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let shop = Shop::open_with(&app, json!({"sale_open_at": later})).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let response = order(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_problem(response, StatusCode::CONFLICT, "sale_not_open").await;

    app.clock.advance(time::Duration::days(1));
    let buyer = app.user().await;
    place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;

    app.clock.advance(time::Duration::days(30));
    let buyer = app.user().await;
    let response = order(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_problem(response, StatusCode::CONFLICT, "sale_closed").await;

    let open = Shop::open(&app).await;
    let ticket = open.ticket(&app, 10).await;
    events::ActiveModel {
        id: Set(open.event_id.clone()),
        status: Set("CANCELED".into()),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("cancel");
    let response = order(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_problem(response, StatusCode::CONFLICT, "event_canceled").await;

    let hidden = open.ticket(&app, 10).await;
    products::ActiveModel {
        id: Set(hidden.clone()),
        status: Set("HIDDEN".into()),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("hide");
    let response = order(&app, &buyer, json!([{"product_id": hidden, "quantity": 1}])).await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_retry_whose_first_answer_was_lost_gets_the_order_that_was_placed_not_a_second_one() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let body = json!({"items": [{"product_id": ticket, "quantity": 2}]});
    let send = || app.post_as_with_key("/orders", &buyer.access_token, "lost-answer", &body);
    let first = send().await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    // The order committed but its answer never reached the key (the commit's reply was lost, or
    // the instance died right after): the key looks in flight.
    let forget_answer = || async {
        idempotency_keys::Entity::update_many()
            .col_expr(
                idempotency_keys::Column::StatusCode,
                Expr::value(None::<i32>),
            )
            .col_expr(
                idempotency_keys::Column::Response,
                Expr::value(None::<String>),
            )
            .exec(&app.state.db)
            .await
            .expect("update");
    };
    forget_answer().await;
    let retry = send().await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(retry.headers().contains_key("idempotent-replayed"));
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry["id"], first["id"]);

    // Long after, when the claim counts as abandoned, a retry still finds the order.
    forget_answer().await;
    app.clock.advance(time::Duration::minutes(2));
    let late = send().await;
    assert_eq!(late.status(), StatusCode::CREATED);
    let late: Value = late.json().await.expect("json");
    assert_eq!(late["id"], first["id"]);
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        8,
        "one order, not two"
    );
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let send = async |key: &str, quantity: i64| {
        let body = json!({"items": [{"product_id": ticket, "quantity": quantity}]});
        app.post_as_with_key("/orders", &buyer.access_token, key, &body)
            .await
    };
    let first = send("checkout-1", 2).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let replay = send("checkout-1", 2).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replay: Value = replay.json().await.expect("json");
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        8,
        "one order, not two"
    );
    let other_body = send("checkout-1", 3).await;
    assert_problem(
        other_body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;

    // Errors are replayed too; another buyer's key is their own.
    let sold_out = send("checkout-2", 9).await;
    assert_problem(sold_out, StatusCode::CONFLICT, "sold_out").await;
    let again = send("checkout-2", 9).await;
    assert_problem(again, StatusCode::CONFLICT, "sold_out").await;
    let other = app.user().await;
    let one = json!({"items": [{"product_id": ticket, "quantity": 1}]});
    let theirs = app
        .post_as_with_key("/orders", &other.access_token, "checkout-1", &one)
        .await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    let bad_key = app
        .post_as_with_key("/orders", &other.access_token, &"x".repeat(300), &one)
        .await;
    assert_problem(
        bad_key,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn an_unpaid_order_expires_once_and_its_stock_and_seats_return() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 300})).await;
    let ticket = shop
        .ticket_with(&app, 10, json!({"per_user_limit": 2}))
        .await;
    let (seated, seat_ids) = shop.seated(&app, 2).await;
    let buyer = app.user().await;
    let order_view = place(
        &app,
        &buyer,
        json!([{"product_id": ticket, "quantity": 2}, {"product_id": seated, "quantity": 1, "seat_ids": [seat_ids[0]]}]),
    )
    .await;
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        8
    );
    let peer = app.spawn_peer().await;
    app.clock.advance(time::Duration::seconds(299));
    assert_eq!(
        boxoffice::orders::expiry::sweep(&app.state)
            .await
            .expect("sweep"),
        0
    );
    app.clock.advance(time::Duration::seconds(1));
    // Two instances sweep at once (and both background sweepers may too): the order expires
    // once, which the single RELEASE ledger row below proves.
    let (a, b) = tokio::join!(
        boxoffice::orders::expiry::sweep(&app.state),
        boxoffice::orders::expiry::sweep(&peer.state)
    );
    assert!(a.expect("sweep") + b.expect("sweep") <= 1);
    let (buyer_token, _) = app.login(&buyer.email).await;
    let read: Value = app
        .get_as(&format!("/orders/{}", id(&order_view)), &buyer_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(read["status"], "CANCELED");
    assert_eq!(read["cancel_reason"], "EXPIRED");
    assert_eq!(
        remaining(&app, &shop.organizer.access_token, &ticket).await,
        10
    );
    let seat = seats::Entity::find_by_id(seat_ids[0].clone())
        .one(&app.state.db)
        .await
        .expect("seat")
        .expect("exists");
    assert_eq!((seat.state.as_str(), seat.order_id), ("AVAILABLE", None));
    let releases = stock_movements::Entity::find()
        .filter(stock_movements::Column::OrderId.eq(id(&order_view)))
        .filter(stock_movements::Column::Kind.eq("RELEASE"))
        .all(&app.state.db)
        .await
        .expect("ledger");
    assert_eq!(releases.len(), 1);
    // The per-buyer counter came back too.
    let buyer_again = crate::helpers::TestUser {
        email: buyer.email.clone(),
        access_token: buyer_token,
        refresh_token: String::new(),
    };
    place(
        &app,
        &buyer_again,
        json!([{"product_id": ticket, "quantity": 2}]),
    )
    .await;
    assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn the_history_pages_newest_first_and_filters_by_status() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 100).await;
    let buyer = app.user().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(id(&place(
            &app,
            &buyer,
            json!([{"product_id": ticket, "quantity": 1}]),
        )
        .await));
        app.clock.advance(time::Duration::seconds(1));
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/orders?limit=2".to_owned();
    loop {
        let page: Value = app
            .get_as(&path, &buyer.access_token)
            .await
            .json()
            .await
            .expect("json");
        for o in page["items"].as_array().expect("items") {
            seen.push(id(o));
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/orders?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let pending: Value = app
        .get_as("/orders?status=PENDING", &buyer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(5));
    let none: Value = app
        .get_as("/orders?status=REFUNDED", &buyer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["items"], json!([]));
    let bad = app
        .get_as("/orders?status=PAID&limit=0", &buyer.access_token)
        .await;
    let problem = assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_buyer_with_a_live_order_cannot_delete_the_account() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    let response = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(&buyer.access_token)
        .json(&json!({"password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_problem(response, StatusCode::CONFLICT, "live_orders_exist").await;
}

#[tokio::test]
async fn the_stock_audit_finds_a_counter_that_disagrees_with_its_ledger() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    assert_stock_consistent(&app).await;
    let stock_id = products::Entity::find_by_id(ticket)
        .one(&app.state.db)
        .await
        .expect("product")
        .expect("exists")
        .stock_id
        .expect("stock");
    // A write that bypasses the ledger is exactly what the audit is for.
    stock::record(
        &app.state.db,
        &shop.event_id,
        &stock_id,
        -1,
        "HOLD",
        None,
        app.state.clock.now(),
    )
    .await
    .expect("ledger row");
    let found = boxoffice::orders::audit::differences(&app.state.db, Some(&shop.event_id))
        .await
        .expect("audit");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].stored, "10");
    assert_eq!(found[0].expected, "9");
}
