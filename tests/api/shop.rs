//! A shop to buy from: an event on sale with the products a test needs, and the buyer's calls.

use boxoffice::{auth::model::Role, db::entities::seats};
use reqwest::{Response, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser};

/// An organizer's published event, on sale now, starting in 30 days, with one performance.
pub struct Shop {
    /// The organizer who owns the event.
    pub organizer: TestUser,
    /// The event.
    pub event_id: String,
    /// Its first performance.
    pub performance_id: String,
}

impl Shop {
    /// An event with room for 10,000 tickets, published and on sale.
    pub async fn open(app: &TestApp) -> Self {
        Self::open_with(app, json!({})).await
    }

    /// Like [`Shop::open`], with extra event fields (e.g. `cancel_policy`, `order_hold_seconds`,
    /// `sale_open_at`).
    pub async fn open_with(app: &TestApp, extra: Value) -> Self {
        let organizer = app.user_with_role(Role::Organizer).await;
        let start = (app.state.clock.now() + time::Duration::days(30))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        let mut body =
            json!({"title": "2026 Winter Concert", "start_at": start, "total_tickets": 10_000});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        let response = app.post_as("/events", &organizer.access_token, &body).await;
        let status = response.status();
        let event: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "{event}");
        let event_id = event["id"].as_str().expect("id").to_owned();
        let performance_id = event["performances"][0]["id"]
            .as_str()
            .expect("performance")
            .to_owned();
        let response = app
            .client
            .patch(app.url(&format!("/events/{event_id}")))
            .bearer_auth(&organizer.access_token)
            .json(&json!({"status": "PUBLISHED"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "publish");
        Self {
            organizer,
            event_id,
            performance_id,
        }
    }

    /// Creates a product of this event (`event_id` is added) and returns it as the API shows it.
    pub async fn product(&self, app: &TestApp, body: Value) -> Value {
        let mut body = body;
        body["event_id"] = json!(self.event_id);
        let response = app
            .post_as("/products", &self.organizer.access_token, &body)
            .await;
        let status = response.status();
        let value: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "{value}");
        value
    }

    /// Sets the performance's per-buyer ticket limit (every ticket product of it counts).
    pub async fn limit_performance(&self, app: &TestApp, per_user_limit: u32) {
        let response = app
            .client
            .patch(app.url(&format!(
                "/events/{}/performances/{}",
                self.event_id, self.performance_id
            )))
            .bearer_auth(&self.organizer.access_token)
            .json(&json!({ "per_user_limit": per_user_limit }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// A general-admission ticket at 55,000 KRW; returns its id.
    pub async fn ticket(&self, app: &TestApp, quantity: i64) -> String {
        self.ticket_with(app, quantity, json!({})).await
    }

    /// A general-admission ticket with extra fields (`per_user_limit`, `per_order_limit`, ...).
    pub async fn ticket_with(&self, app: &TestApp, quantity: i64, extra: Value) -> String {
        let mut body =
            json!({"type": "TICKET", "name": "스탠딩", "price": "55000", "quantity": quantity});
        merge(&mut body, extra);
        id(&self.product(app, body).await)
    }

    /// A seat map of `count` seats of grade `R` on the performance and its reserved ticket
    /// product at 132,000 KRW; returns the product id and the seat ids in map order.
    pub async fn seated(&self, app: &TestApp, count: usize) -> (String, Vec<String>) {
        let seats: Vec<Value> = (1..=count)
            .map(|n| json!({"label": n.to_string(), "x": 10 * n, "y": 0}))
            .collect();
        let map = json!({"sections": [{"name": "A", "grade": "R", "rows": [{"label": "1", "seats": seats}]}]});
        let response = app
            .client
            .put(app.url(&format!(
                "/events/{}/performances/{}/seats",
                self.event_id, self.performance_id
            )))
            .bearer_auth(&self.organizer.access_token)
            .json(&map)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "seat map");
        let product = self
            .product(
                app,
                json!({"type": "TICKET", "name": "R석", "price": "132000", "grade": "R", "seating": "RESERVED", "performance_id": self.performance_id}),
            )
            .await;
        let ids = seats::Entity::find()
            .filter(seats::Column::PerformanceId.eq(self.performance_id.clone()))
            .order_by_asc(seats::Column::Position)
            .all(&app.state.db)
            .await
            .expect("seats")
            .into_iter()
            .map(|s| s.id)
            .collect();
        (id(&product), ids)
    }

    /// Merchandise with one variant of `quantity` at 35,000 KRW and a 3,000 KRW delivery and a
    /// free pick-up option; returns the product as the API shows it.
    pub async fn merch(&self, app: &TestApp, quantity: i64) -> Value {
        self.product(
            app,
            json!({"type": "MERCH", "name": "응원봉", "price": "35000", "quantity": quantity,
                   "shipping_options": [{"kind": "DELIVERY", "name": "택배", "fee": "3000"},
                                        {"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
        )
        .await
    }
}

/// The `id` of an API object.
pub fn id(value: &Value) -> String {
    value["id"].as_str().expect("id").to_owned()
}

fn merge(body: &mut Value, extra: Value) {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            body.insert(k.clone(), v.clone());
        }
    }
}

/// A shipping address as checkout wants it.
pub fn address() -> Value {
    json!({"recipient": "김민지", "phone": "010-1234-5678", "postcode": "06236",
           "address_lines": ["서울특별시 강남구 테헤란로 123", "4층"]})
}

/// `POST /orders` with these items.
pub async fn order(app: &TestApp, buyer: &TestUser, items: Value) -> Response {
    app.post_as("/orders", &buyer.access_token, &json!({ "items": items }))
        .await
}

/// `POST /orders` expecting 201; returns the order.
pub async fn place(app: &TestApp, buyer: &TestUser, items: Value) -> Value {
    let response = order(app, buyer, items).await;
    let status = response.status();
    let value: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{value}");
    value
}

/// A product's `remaining`, read signed in: anonymous catalog reads are cached for a second, so
/// they may not show a change made a moment ago.
pub async fn remaining(app: &TestApp, token: &str, product_id: &str) -> i64 {
    let response = app.get_as(&format!("/products/{product_id}"), token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["remaining"].as_i64().expect("remaining")
}

/// Asserts that every stock counter equals the sum of its ledger (`audit-stock` finds nothing).
pub async fn assert_stock_consistent(app: &TestApp) {
    let differences = boxoffice::orders::audit::differences(&app.state.db, None)
        .await
        .expect("audit");
    assert!(
        differences.is_empty(),
        "stock differs from its ledger: {differences:?}"
    );
}

/// Pays an order with the test gateway (`POST /orders/{id}/pay`, then `/pay/confirm` with
/// scenario `SUCCESS`) and expects it `CONFIRMED`; returns the order.
pub async fn confirm(app: &TestApp, buyer: &TestUser, order_id: &str) -> Value {
    confirm_with(app, buyer, order_id, json!({"scenario": "SUCCESS"})).await
}

/// Like [`confirm`] with a test-gateway payload (e.g. `"refund_scenario": "FAIL"`).
pub async fn confirm_with(
    app: &TestApp,
    buyer: &TestUser,
    order_id: &str,
    payload: Value,
) -> Value {
    let paid = app
        .post_as(
            &format!("/orders/{order_id}/pay"),
            &buyer.access_token,
            &json!({}),
        )
        .await;
    let status = paid.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "pay: {}",
        paid.text().await.unwrap_or_default()
    );
    let response = app
        .post_as(
            &format!("/orders/{order_id}/pay/confirm"),
            &buyer.access_token,
            &json!({ "provider_payload": payload }),
        )
        .await;
    let status = response.status();
    let value: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["status"], "CONFIRMED", "{value}");
    value
}

/// `PUT /orders/{id}/cancel` with an optional body.
pub async fn cancel(
    app: &TestApp,
    buyer: &TestUser,
    order_id: &str,
    body: Option<Value>,
) -> Response {
    let request = app
        .client
        .put(app.url(&format!("/orders/{order_id}/cancel")))
        .bearer_auth(&buyer.access_token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}
