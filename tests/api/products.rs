use boxoffice::{
    auth::model::Role,
    db::entities::{
        audit_log, mail_outbox, product_variants, products, seats, stock_counters, stock_movements,
    },
    infra::clock::to_db,
};
use reqwest::{Response, StatusCode};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

/// An event a month ahead; returns it as the API shows it.
async fn event(app: &TestApp, owner: &TestUser, total: i64) -> Value {
    let start = app.state.clock.now() + time::Duration::days(30);
    let start = start
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = app
        .post_as(
            "/events",
            &owner.access_token,
            &json!({"title": "2026 Winter Concert", "start_at": start, "total_tickets": total}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("json")
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

async fn patch(app: &TestApp, token: &str, product: &str, body: Value) -> Response {
    send(
        app,
        reqwest::Method::PATCH,
        &format!("/products/{product}"),
        token,
        Some(&body),
    )
    .await
}

/// Creates a product and expects 201.
async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post_as("/products", token, body).await;
    let status = response.status();
    let value: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{value}");
    value
}

async fn ticket(app: &TestApp, token: &str, event_id: &str, quantity: i64) -> Value {
    create(
        app,
        token,
        &json!({"event_id": event_id, "type": "TICKET", "name": "R석", "price": "55000", "quantity": quantity}),
    )
    .await
}

async fn merch(app: &TestApp, token: &str, event_id: &str, quantity: i64) -> Value {
    create(
        app,
        token,
        &json!({"event_id": event_id, "type": "MERCH", "name": "응원봉", "price": "35000", "quantity": quantity}),
    )
    .await
}

async fn get(app: &TestApp, token: &str, product: &str) -> Value {
    let response = app.get_as(&format!("/products/{product}"), token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn publish(app: &TestApp, owner: &TestUser, event_id: &str) {
    let response = send(
        app,
        reqwest::Method::PATCH,
        &format!("/events/{event_id}"),
        &owner.access_token,
        Some(&json!({"status": "PUBLISHED"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The stock counter of a ticket or package, or of a merchandise product's first variant.
async fn stock_of(app: &TestApp, product: &str) -> String {
    let row = products::Entity::find_by_id(product.to_owned())
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("product");
    match row.stock_id {
        Some(s) => s,
        None => {
            product_variants::Entity::find()
                .filter(product_variants::Column::ProductId.eq(product))
                .order_by_asc(product_variants::Column::Position)
                .one(&app.state.db)
                .await
                .expect("query")
                .expect("variant")
                .stock_id
        }
    }
}

/// What an order would do: a conditional decrement and a ledger row naming the order.
async fn sell(app: &TestApp, event_id: &str, stock_id: &str, units: i64) {
    // Scoped: the trait's `is_null` would shadow `serde_json::Value::is_null` elsewhere.
    use sea_orm::sea_query::ExprTrait;
    let moved = stock_counters::Entity::update_many()
        .col_expr(
            stock_counters::Column::Remaining,
            Expr::col(stock_counters::Column::Remaining).sub(units),
        )
        .filter(stock_counters::Column::Id.eq(stock_id))
        .filter(stock_counters::Column::Remaining.gte(units))
        .exec(&app.state.db)
        .await
        .expect("decrement");
    assert_eq!(moved.rows_affected, 1, "enough stock to sell {units}");
    stock_movements::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        event_id: Set(event_id.to_owned()),
        stock_id: Set(stock_id.to_owned()),
        order_id: Set(Some(uuid::Uuid::now_v7().to_string())),
        kind: Set("HOLD".to_owned()),
        delta: Set(-units),
        created_at: Set(to_db(app.state.clock.now())),
    }
    .insert(&app.state.db)
    .await
    .expect("ledger row");
}

/// The counter and the sum of its ledger.
async fn counter_and_ledger(app: &TestApp, stock_id: &str) -> (i64, i64) {
    let counter = stock_counters::Entity::find_by_id(stock_id.to_owned())
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("counter")
        .remaining;
    let ledger = stock_movements::Entity::find()
        .filter(stock_movements::Column::StockId.eq(stock_id))
        .all(&app.state.db)
        .await
        .expect("query")
        .iter()
        .map(|m| m.delta)
        .sum();
    (counter, ledger)
}

/// Expects 422 `validation_failed`; returns its `(field, code)` pairs.
async fn invalid(response: Response) -> Vec<(String, String)> {
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
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
async fn the_seed_flow_creates_a_ticket_publishes_and_lists_it() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let event = event(&app, &organizer, 2000).await;
    let event_id = id(&event);
    let product = create(
        &app,
        &organizer.access_token,
        &json!({"event_id": event_id, "type": "TICKET", "name": "R석", "description": "2층", "price": 55000, "quantity": 500}),
    )
    .await;
    assert_eq!(product["price"], "55000.00");
    assert_eq!(product["currency"], "KRW");
    assert_eq!(product["quantity"], 500);
    assert_eq!(product["remaining"], 500);
    assert_eq!(product["grade"], "GENERAL");
    assert_eq!(product["seating"], "GENERAL");
    assert_eq!(product["status"], "ACTIVE");
    assert_eq!(product["performance_id"], event["performances"][0]["id"]);
    assert_eq!(product["sale_open_at"], event["sale_open_at"]);
    assert_eq!(
        product["sale_state"], "UPCOMING",
        "a draft event sells nothing"
    );

    let hidden_while_draft = app.get(&format!("/products?event_id={event_id}")).await;
    assert_problem(hidden_while_draft, StatusCode::NOT_FOUND, "not_found").await;

    publish(&app, &organizer, &event_id).await;
    let response = app.get(&format!("/products?event_id={event_id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.expect("json");
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    assert_eq!(page["items"][0]["id"], product["id"]);
    assert_eq!(page["items"][0]["sale_state"], "ON_SALE");
    assert!(page["next_cursor"].is_null());
    let one: Value = app
        .get(&format!("/products/{}", id(&product)))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["name"], "R석");
    assert_eq!(one["description"], "2층");

    invalid(app.get("/products").await).await;
}

#[tokio::test]
async fn general_admission_cannot_exceed_the_performance_capacity() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let first = ticket(&app, token, &event_id, 60).await;
    let over = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": "S석", "price": "44000", "quantity": 41, "grade": "S"}),
        )
        .await;
    assert_eq!(
        invalid(over).await,
        vec![("quantity".into(), "capacity_exceeded".into())]
    );
    ticket(&app, token, &event_id, 40).await;
    let raise = patch(&app, token, &id(&first), json!({"quantity": 61})).await;
    invalid(raise).await;

    // Archiving frees the places; bringing it back must fit again.
    let archived = patch(&app, token, &id(&first), json!({"status": "ARCHIVED"})).await;
    assert_eq!(archived.status(), StatusCode::OK);
    ticket(&app, token, &event_id, 60).await;
    let back = patch(&app, token, &id(&first), json!({"status": "ACTIVE"})).await;
    invalid(back).await;
}

#[tokio::test]
async fn grades_are_tickets_of_one_performance_and_reserved_ones_count_seats() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event = event(&app, &organizer, 100).await;
    let event_id = id(&event);
    let performance = event["performances"][0]["id"]
        .as_str()
        .expect("performance")
        .to_owned();
    for (grade, price) in [("VIP", "165000"), ("R", "132000")] {
        let product = create(
            &app,
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": format!("{grade}석"), "price": price, "quantity": 10, "grade": grade, "performance_id": performance}),
        )
        .await;
        assert_eq!(product["grade"], grade);
    }
    // Seats of grade S in the map (the seat-map module writes them; here directly).
    for (n, state) in ["AVAILABLE", "AVAILABLE", "HELD", "BLOCKED"]
        .iter()
        .enumerate()
    {
        seats::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            event_id: Set(event_id.clone()),
            performance_id: Set(performance.clone()),
            label: Set(format!("A-{n}")),
            section: Set("A".into()),
            row_label: Set("1".into()),
            seat_label: Set(n.to_string()),
            grade: Set("S".into()),
            x: Set(i32::try_from(n).expect("small")),
            y: Set(0),
            position: Set(i32::try_from(n).expect("small")),
            state: Set((*state).into()),
            order_id: Set(None),
            updated_at: Set(to_db(app.state.clock.now())),
        }
        .insert(&app.state.db)
        .await
        .expect("seat");
    }
    let set_quantity = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": "S석", "price": "99000", "quantity": 50, "grade": "S", "seating": "RESERVED"}),
        )
        .await;
    assert_eq!(
        invalid(set_quantity).await,
        vec![("quantity".into(), "derived_quantity".into())]
    );
    let reserved = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "TICKET", "name": "S석", "price": "99000", "grade": "S", "seating": "RESERVED"}),
    )
    .await;
    assert_eq!(reserved["seating"], "RESERVED");
    assert_eq!(reserved["quantity"], 3, "blocked seats are not sold");
    assert_eq!(reserved["remaining"], 2, "only available seats remain");
    let twice = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": "S석 2", "price": "99000", "grade": "S", "seating": "RESERVED"}),
        )
        .await;
    assert_problem(twice, StatusCode::CONFLICT, "grade_exists").await;
    // 10 + 10 general admission + 3 seats: 77 places are left of 100.
    ticket(&app, token, &event_id, 77).await;
    let over = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": "A석", "price": "1000", "quantity": 1, "grade": "A"}),
        )
        .await;
    invalid(over).await;

    let list: Value = app
        .get_as(&format!("/products?event_id={event_id}&type=TICKET"), token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().expect("items").len(), 4);
    let bad_grade = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": "X", "price": "1", "quantity": 1, "grade": "x".repeat(33)}),
        )
        .await;
    invalid(bad_grade).await;

    // With two performances, the ticket must name one.
    let grow = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/events/{event_id}"),
        token,
        Some(&json!({"total_tickets": 200})),
    )
    .await;
    assert_eq!(grow.status(), StatusCode::OK);
    let second = app
        .post_as(
            &format!("/events/{event_id}/performances"),
            token,
            &json!({"start_at": event["start_at"], "capacity": 100}),
        )
        .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let unnamed = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "TICKET", "name": "R석", "price": "1000", "quantity": 1}),
        )
        .await;
    assert_eq!(
        invalid(unnamed).await,
        vec![("performance_id".into(), "required".into())]
    );
}

#[tokio::test]
async fn merch_keeps_stock_on_variants_with_preorders_and_shipping() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let tee = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "MERCH", "name": "투어 티셔츠", "price": "39000",
                "variants": [
                    {"name": "M", "sku": "TEE-M", "quantity": 10},
                    {"name": "L", "sku": "TEE-L", "quantity": 5, "preorder_limit": 20, "expected_ship_date": "2027-01-15"}
                ],
                "shipping_options": [
                    {"kind": "DELIVERY", "name": "택배", "fee": "3000"},
                    {"kind": "PICKUP", "name": "현장 수령", "fee": 0}
                ]}),
    )
    .await;
    assert_eq!(tee["quantity"], 15);
    assert_eq!(tee["remaining"], 15);
    let variants = tee["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 2);
    assert_eq!(variants[0]["sku"], "TEE-M");
    assert_eq!(variants[0]["preorder_limit"], Value::Null);
    assert_eq!(variants[1]["preorder_limit"], 20);
    assert_eq!(variants[1]["preorder_remaining"], 20);
    assert_eq!(variants[1]["expected_ship_date"], "2027-01-15");
    assert_eq!(tee["shipping_options"][0]["fee"], "3000.00");
    assert_eq!(tee["shipping_options"][1]["kind"], "PICKUP");
    assert_eq!(tee["shipping_options"][1]["fee"], "0.00");

    // Without variants a product gets one default variant holding its quantity.
    let plain = merch(&app, token, &event_id, 30).await;
    assert_eq!(plain["variants"].as_array().expect("variants").len(), 1);
    assert_eq!(plain["variants"][0]["name"], "DEFAULT");
    assert_eq!(plain["remaining"], 30);
    let raised = patch(&app, token, &id(&plain), json!({"quantity": 40})).await;
    let raised: Value = raised.json().await.expect("json");
    assert_eq!(raised["remaining"], 40);
    assert_eq!(raised["variants"][0]["id"], plain["variants"][0]["id"]);

    // Variants keep their ids when changed; stock moves by the difference.
    let m = variants[0]["id"].clone();
    let changed = patch(
        &app,
        token,
        &id(&tee),
        json!({"variants": [
            {"id": m, "name": "M", "sku": "TEE-M", "quantity": 12},
            {"name": "L", "sku": "TEE-L", "quantity": 5, "preorder_limit": 25, "expected_ship_date": "2027-01-20"},
            {"name": "XL", "sku": "TEE-XL", "quantity": 3}
        ]}),
    )
    .await;
    let changed: Value = changed.json().await.expect("json");
    assert_eq!(changed["quantity"], 20);
    assert_eq!(changed["variants"][0]["id"], m);
    assert_eq!(changed["variants"][1]["id"], variants[1]["id"]);
    assert_eq!(changed["variants"][1]["preorder_remaining"], 25);
    assert_eq!(changed["variants"][2]["remaining"], 3);
    assert_eq!(
        changed["shipping_options"], tee["shipping_options"],
        "untouched lists stay"
    );
    let sum = patch(&app, token, &id(&tee), json!({"quantity": 99})).await;
    invalid(sum).await;

    let taken = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "MERCH", "name": "복제", "price": "1000",
                    "variants": [{"name": "M", "sku": "TEE-M", "quantity": 1}]}),
        )
        .await;
    assert_problem(taken, StatusCode::CONFLICT, "sku_taken").await;
    let no_date = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "MERCH", "name": "예약", "price": "1000",
                    "variants": [{"name": "M", "sku": "PRE-M", "quantity": 0, "preorder_limit": 5}],
                    "shipping_options": [{"kind": "BOAT", "name": "배", "fee": "1"}]}),
        )
        .await;
    invalid(no_date).await;
    let no_date = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "MERCH", "name": "예약", "price": "1000",
                    "variants": [{"name": "M", "sku": "PRE-M", "quantity": 0, "preorder_limit": 5}]}),
        )
        .await;
    assert_eq!(
        invalid(no_date).await,
        vec![("variants[0].expected_ship_date".into(), "required".into())]
    );
}

#[tokio::test]
async fn packages_and_bundles_remain_as_their_scarcest_part_allows() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 1000).await);
    let seat = ticket(&app, token, &event_id, 100).await;
    let stick = merch(&app, token, &event_id, 30).await;
    let towel = merch(&app, token, &event_id, 8).await;
    let package = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "PACKAGE", "name": "VIP 패키지", "price": "200000", "quantity": 50,
                "components": [{"product_id": id(&seat), "quantity": 1}, {"product_id": id(&stick), "quantity": 2}],
                "shipping_options": [{"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
    )
    .await;
    assert_eq!(package["kind"], "PACKAGE");
    assert_eq!(package["quantity"], 50);
    assert_eq!(package["remaining"], 15, "min(50, 100/1, 30/2)");
    assert_eq!(
        package["components"][1]["variant_id"], stick["variants"][0]["id"],
        "the only variant is named"
    );
    let bundle = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "PACKAGE", "kind": "BUNDLE", "name": "굿즈 세트", "price": "50000", "quantity": 10,
                "components": [{"product_id": id(&stick), "quantity": 1}, {"product_id": id(&towel), "quantity": 1}]}),
    )
    .await;
    assert_eq!(bundle["kind"], "BUNDLE");
    assert_eq!(bundle["remaining"], 8);

    sell(&app, &event_id, &stock_of(&app, &id(&stick)).await, 25).await;
    assert_eq!(get(&app, token, &id(&package)).await["remaining"], 2);
    assert_eq!(get(&app, token, &id(&bundle)).await["remaining"], 5);
    sell(&app, &event_id, &stock_of(&app, &id(&package)).await, 1).await;
    let list: Value = app
        .get_as(
            &format!("/products?event_id={event_id}&type=PACKAGE"),
            token,
        )
        .await
        .json()
        .await
        .expect("json");
    let remaining: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["remaining"].as_i64().expect("remaining"))
        .collect();
    assert_eq!(remaining, vec![2, 5]);

    let ticket_bundle = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "PACKAGE", "kind": "BUNDLE", "name": "X", "price": "1", "quantity": 1,
                    "components": [{"product_id": id(&seat), "quantity": 1}]}),
        )
        .await;
    invalid(ticket_bundle).await;

    // The kind follows the components.
    let mixed: Value = patch(
        &app,
        token,
        &id(&bundle),
        json!({"components": [{"product_id": id(&stick), "quantity": 1}, {"product_id": id(&seat), "quantity": 1}]}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(mixed["kind"], "PACKAGE");
}

#[tokio::test]
async fn packages_refuse_themselves_other_events_packages_and_reserved_seats() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 1000).await);
    let other_event = id(&event(&app, &organizer, 1000).await);
    let seat = ticket(&app, token, &event_id, 10).await;
    let foreign = ticket(&app, token, &other_event, 10).await;
    let reserved = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "TICKET", "name": "지정석", "price": "99000", "grade": "S", "seating": "RESERVED"}),
    )
    .await;
    let package = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "PACKAGE", "name": "패키지", "price": "10000", "quantity": 5,
                "components": [{"product_id": id(&seat), "quantity": 1}]}),
    )
    .await;
    let cases = [
        (id(&package), "component_self"),
        (id(&foreign), "component_other_event"),
        (id(&reserved), "component_reserved_seat"),
        ("no-such-product".to_owned(), "not_found"),
    ];
    for (component, code) in cases {
        let response = patch(
            &app,
            token,
            &id(&package),
            json!({"components": [{"product_id": component, "quantity": 1}]}),
        )
        .await;
        assert_eq!(
            invalid(response).await,
            vec![("components[0].product_id".into(), code.into())],
            "{code}"
        );
    }
    let nested = app
        .post_as(
            "/products",
            token,
            &json!({"event_id": event_id, "type": "PACKAGE", "name": "중첩", "price": "1", "quantity": 1,
                    "components": [{"product_id": id(&package), "quantity": 1}]}),
        )
        .await;
    assert_eq!(
        invalid(nested).await,
        vec![(
            "components[0].product_id".into(),
            "component_is_package".into()
        )]
    );
    assert_eq!(
        get(&app, token, &id(&package)).await["components"],
        json!([{"product_id": id(&seat), "variant_id": null, "quantity": 1}]),
        "refused changes leave the package as it was"
    );
}

#[tokio::test]
async fn quantity_changes_move_remaining_and_never_below_what_is_sold() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let product = ticket(&app, token, &event_id, 10).await;
    let stock = stock_of(&app, &id(&product)).await;
    sell(&app, &event_id, &stock, 7).await;
    assert_eq!(get(&app, token, &id(&product)).await["remaining"], 3);

    let up: Value = patch(&app, token, &id(&product), json!({"quantity": 12}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (up["quantity"].clone(), up["remaining"].clone()),
        (json!(12), json!(5))
    );
    let down: Value = patch(&app, token, &id(&product), json!({"quantity": 7}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(down["remaining"], 0);
    assert_eq!(down["sale_state"], "UPCOMING");
    let below = patch(&app, token, &id(&product), json!({"quantity": 6})).await;
    assert_problem(below, StatusCode::CONFLICT, "quantity_below_sold").await;
    assert_eq!(get(&app, token, &id(&product)).await["quantity"], 7);
    let (counter, ledger) = counter_and_ledger(&app, &stock).await;
    assert_eq!(
        (counter, ledger),
        (0, 0),
        "the ledger re-derives the counter"
    );

    // A full replacement goes through the same rules.
    let replaced = send(
        &app,
        reqwest::Method::PUT,
        &format!("/products/{}", id(&product)),
        token,
        Some(&json!({"event_id": event_id, "type": "TICKET", "name": "R석 (변경)", "price": "60000", "quantity": 9})),
    )
    .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.expect("json");
    assert_eq!(replaced["id"], product["id"]);
    assert_eq!(replaced["price"], "60000.00");
    assert_eq!(replaced["remaining"], 2);
    let retype = send(
        &app,
        reqwest::Method::PUT,
        &format!("/products/{}", id(&product)),
        token,
        Some(&json!({"event_id": event_id, "type": "MERCH", "name": "R석", "price": "60000", "quantity": 9})),
    )
    .await;
    assert_eq!(
        invalid(retype).await,
        vec![("type".into(), "immutable".into())]
    );
}

#[tokio::test]
async fn bad_prices_quantities_and_types_are_refused_and_names_stay_text() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let base = json!({"event_id": event_id, "type": "TICKET", "name": "R석", "price": "55000", "quantity": 10});
    let cases: [(&str, Value, &str, &str); 7] = [
        ("price", json!("55000.50"), "price", "fraction_not_allowed"),
        ("price", json!("-1"), "price", "invalid_amount"),
        ("price", json!("오만원"), "price", "invalid_amount"),
        ("quantity", json!(0), "quantity", "out_of_range"),
        ("quantity", json!(-5), "quantity", "out_of_range"),
        ("type", json!("COUPON"), "type", "unknown_type"),
        ("name", json!("   "), "name", "required"),
    ];
    for (key, value, field, code) in cases {
        let mut body = base.clone();
        body[key] = value.clone();
        let response = app.post_as("/products", token, &body).await;
        assert_eq!(
            invalid(response).await,
            vec![(field.to_owned(), code.to_owned())],
            "{key} = {value}"
        );
    }
    for (key, value) in [
        ("price", json!(true)),
        ("quantity", json!("many")),
        ("quantity", json!(1.5)),
    ] {
        let mut body = base.clone();
        body[key] = value;
        let response = app.post_as("/products", token, &body).await;
        invalid(response).await;
    }
    let html = "<script>alert(1)</script>";
    let mut body = base.clone();
    body["name"] = json!(html);
    let product = create(&app, token, &body).await;
    assert_eq!(product["name"], html, "stored and returned as text");
    let listed = app
        .get_as(&format!("/products?event_id={event_id}&type=COUPON"), token)
        .await;
    assert_eq!(
        invalid(listed).await,
        vec![("type".into(), "unknown_type".into())]
    );
}

#[tokio::test]
async fn only_the_events_organizer_or_an_admin_manages_its_products() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let rival = app.user_with_role(Role::Organizer).await;
    let admin = app.admin().await;
    let buyer = app.user_with_role(Role::User).await;
    let event_id = id(&event(&app, &organizer, 100).await);
    let body = json!({"event_id": event_id, "type": "TICKET", "name": "R석", "price": "55000", "quantity": 10});

    let foreign = app.post_as("/products", &rival.access_token, &body).await;
    assert_problem(foreign, StatusCode::NOT_FOUND, "not_found").await;
    let buyer_try = app.post_as("/products", &buyer.access_token, &body).await;
    assert_problem(buyer_try, StatusCode::FORBIDDEN, "forbidden").await;
    assert_problem(
        app.post("/products", &body).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    let product = create(&app, &organizer.access_token, &body).await;
    let rival_patch = patch(
        &app,
        &rival.access_token,
        &id(&product),
        json!({"price": "1"}),
    )
    .await;
    assert_problem(rival_patch, StatusCode::NOT_FOUND, "not_found").await;
    let rival_delete = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/products/{}", id(&product)),
        &rival.access_token,
        None,
    )
    .await;
    assert_problem(rival_delete, StatusCode::NOT_FOUND, "not_found").await;
    let rival_read = app
        .get_as(&format!("/products/{}", id(&product)), &rival.access_token)
        .await;
    assert_problem(rival_read, StatusCode::NOT_FOUND, "not_found").await;

    let by_admin = patch(
        &app,
        &admin.access_token,
        &id(&product),
        json!({"price": "60000"}),
    )
    .await;
    assert_eq!(by_admin.status(), StatusCode::OK);
    let created_by_admin = app.post_as("/products", &admin.access_token, &body).await;
    assert_eq!(created_by_admin.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn hidden_and_archived_products_are_shown_only_to_who_manages_them() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let buyer = app.user_with_role(Role::User).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let shown = ticket(&app, token, &event_id, 10).await;
    let hidden = ticket(&app, token, &event_id, 10).await;
    let archived = ticket(&app, token, &event_id, 10).await;
    for (product, status) in [(&hidden, "HIDDEN"), (&archived, "ARCHIVED")] {
        let response = patch(&app, token, &id(product), json!({"status": status})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    publish(&app, &organizer, &event_id).await;
    let ids = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["id"].clone())
            .collect()
    };
    let public: Value = app
        .get(&format!("/products?event_id={event_id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&public), vec![shown["id"].clone()]);
    let as_buyer: Value = app
        .get_as(
            &format!("/products?event_id={event_id}"),
            &buyer.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&as_buyer), vec![shown["id"].clone()]);
    let managed: Value = app
        .get_as(&format!("/products?event_id={event_id}&limit=2"), token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        ids(&managed),
        vec![shown["id"].clone(), hidden["id"].clone()]
    );
    let cursor = managed["next_cursor"].as_str().expect("more");
    let rest: Value = app
        .get_as(
            &format!("/products?event_id={event_id}&limit=2&cursor={cursor}"),
            token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&rest), vec![archived["id"].clone()]);
    assert_eq!(rest["items"][0]["sale_state"], "CLOSED");

    for product in [&hidden, &archived] {
        let path = format!("/products/{}", id(product));
        assert_problem(app.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(app.get_as(&path, token).await.status(), StatusCode::OK);
    }
}

async fn delete(app: &TestApp, token: &str, product: &str) -> Response {
    send(
        app,
        reqwest::Method::DELETE,
        &format!("/products/{product}"),
        token,
        None,
    )
    .await
}

#[tokio::test]
async fn a_product_with_orders_or_in_a_package_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let unsold = merch(&app, token, &event_id, 5).await;
    let stock = stock_of(&app, &id(&unsold)).await;
    assert_eq!(
        delete(&app, token, &id(&unsold)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        app.get_as(&format!("/products/{}", id(&unsold)), token)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(
        stock_counters::Entity::find_by_id(stock)
            .one(&app.state.db)
            .await
            .expect("query")
            .is_none(),
        "its stock went with it"
    );

    let sold = ticket(&app, token, &event_id, 10).await;
    sell(&app, &event_id, &stock_of(&app, &id(&sold)).await, 1).await;
    assert_problem(
        delete(&app, token, &id(&sold)).await,
        StatusCode::CONFLICT,
        "orders_exist",
    )
    .await;
    let archived = patch(&app, token, &id(&sold), json!({"status": "ARCHIVED"})).await;
    assert_eq!(archived.status(), StatusCode::OK);

    let part = merch(&app, token, &event_id, 5).await;
    let package = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "PACKAGE", "name": "세트", "price": "1000", "quantity": 2,
                "components": [{"product_id": id(&part), "quantity": 1}]}),
    )
    .await;
    assert_problem(
        delete(&app, token, &id(&part)).await,
        StatusCode::CONFLICT,
        "used_by_package",
    )
    .await;
    assert_eq!(
        delete(&app, token, &id(&package)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&app, token, &id(&part)).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn notify_me_mails_the_first_subscribers_when_stock_comes_back() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let product = merch(&app, token, &event_id, 2).await;
    let package = create(
        &app,
        token,
        &json!({"event_id": event_id, "type": "PACKAGE", "name": "세트", "price": "1000", "quantity": 5,
                "components": [{"product_id": id(&product), "quantity": 1}]}),
    )
    .await;
    publish(&app, &organizer, &event_id).await;
    sell(&app, &event_id, &stock_of(&app, &id(&product)).await, 2).await;

    let path = format!("/products/{}/notify-me", id(&product));
    assert_problem(
        app.post(&path, &json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let mut buyers = Vec::new();
    for _ in 0..3 {
        let buyer = app.user_with_role(Role::User).await;
        let response = app.post_as(&path, &buyer.access_token, &json!({})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        app.clock.advance(time::Duration::seconds(1));
        buyers.push(buyer);
    }
    let again = app
        .post_as(&path, &buyers[0].access_token, &json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::CREATED, "idempotent");
    let again: Value = again.json().await.expect("json");
    assert!(again["notified_at"].is_null());
    let leaver = app.user_with_role(Role::User).await;
    app.post_as(&path, &leaver.access_token, &json!({})).await;
    let left = send(
        &app,
        reqwest::Method::DELETE,
        &path,
        &leaver.access_token,
        None,
    )
    .await;
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    let package_watcher = app.user_with_role(Role::User).await;
    let response = app
        .post_as(
            &format!("/products/{}/notify-me", id(&package)),
            &package_watcher.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let restocked = patch(&app, token, &id(&product), json!({"quantity": 3})).await;
    assert_eq!(restocked.status(), StatusCode::OK);
    let mail = &app.mail.wait_for(&buyers[0].email, 1).await[0];
    assert!(mail.text.contains("응원봉"), "{}", mail.text);
    assert!(mail.text.contains("2026 Winter Concert"));
    app.mail.wait_for(&package_watcher.email, 1).await;
    // Outbox rows are written in the restock's transaction: only one unit, one buyer mailed.
    for other in [&buyers[1], &buyers[2], &leaver] {
        let queued = mail_outbox::Entity::find()
            .filter(mail_outbox::Column::ToAddress.eq(other.email.as_str()))
            .all(&app.state.db)
            .await
            .expect("query");
        assert!(queued.is_empty(), "{} was not first", other.email);
    }
    // Stock rising further (not from zero) mails nobody new.
    patch(&app, token, &id(&product), json!({"quantity": 4})).await;
    let queued = mail_outbox::Entity::find()
        .filter(mail_outbox::Column::Template.eq("BACK_IN_STOCK"))
        .all(&app.state.db)
        .await
        .expect("query");
    assert_eq!(queued.len(), 2);
}

#[tokio::test]
async fn every_change_is_audited_with_before_and_after() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = &organizer.access_token;
    let event_id = id(&event(&app, &organizer, 100).await);
    let product = ticket(&app, token, &event_id, 10).await;
    patch(
        &app,
        token,
        &id(&product),
        json!({"price": "60000", "quantity": 12}),
    )
    .await;
    send(
        &app,
        reqwest::Method::DELETE,
        &format!("/products/{}", id(&product)),
        token,
        None,
    )
    .await;
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::TargetId.eq(id(&product)))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.state.db)
        .await
        .expect("query");
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["product.created", "product.updated", "product.deleted"]
    );
    let detail = |i: usize| -> Value {
        serde_json::from_str(rows[i].detail.as_deref().expect("detail")).expect("json")
    };
    assert_eq!(detail(0)["after"]["quantity"], 10);
    let update = detail(1);
    assert_eq!(update["before"]["price"], "55000.00");
    assert_eq!(update["after"]["price"], "60000.00");
    assert_eq!(update["before"]["quantity"], 10);
    assert_eq!(update["after"]["quantity"], 12);
    assert_eq!(detail(2)["before"]["price"], "60000.00");
    assert!(rows.iter().all(|r| r.actor_user_id.is_some()));
}
