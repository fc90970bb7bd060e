//! The waiting room: settings, joining, status, leaving, abandonment and the operator's view.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, TestUser, assert_problem, eventually},
    shop::Shop,
};

/// Settings that admit one person per second into ten slots, with the shortest timeout.
pub fn settings() -> Value {
    json!({"enabled": true, "capacity": 10, "admit_per_second": 1, "heartbeat_timeout_seconds": 10})
}

/// A shop whose checkout is guarded by a queue with [`settings`] (plus `extra`).
pub async fn queued_shop(app: &TestApp, extra: Value) -> Shop {
    let shop = Shop::open(app).await;
    let mut body = settings();
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let response = put_settings(app, &shop, &body).await;
    assert_eq!(response.status(), StatusCode::OK, "queue settings");
    shop
}

/// `PUT /events/{id}/queue` as the shop's organizer.
pub async fn put_settings(app: &TestApp, shop: &Shop, body: &Value) -> Response {
    app.client
        .put(app.url(&format!("/events/{}/queue", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// `POST /queue/join` expecting 200.
pub async fn join(app: &TestApp, buyer: &TestUser, event_id: &str) -> Value {
    let response = app
        .post_as(
            "/queue/join",
            &buyer.access_token,
            &json!({ "event_id": event_id }),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "join: {body}");
    body
}

/// `GET /queue/status` with a queue token only.
pub async fn status_by_token(app: &TestApp, event_id: &str, token: &str) -> Response {
    app.client
        .get(app.url(&format!("/queue/status?event_id={event_id}")))
        .header("x-queue-token", token)
        .send()
        .await
        .expect("request")
}

/// The status body, expecting 200.
pub async fn status(app: &TestApp, event_id: &str, token: &str) -> Value {
    let response = status_by_token(app, event_id, token).await;
    let code = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(code, StatusCode::OK, "status: {body}");
    body
}

/// Polls (with a deadline) until the user's status is `ADMITTED`; returns it.
pub async fn until_admitted(app: &TestApp, event_id: &str, token: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body = status(app, event_id, token).await;
        if body["status"] == "ADMITTED" {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not admitted in time: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The operator's view.
pub async fn stats(app: &TestApp, shop: &Shop) -> Value {
    let response = app
        .get_as(
            &format!("/admin/queues/{}", shop.event_id),
            &shop.organizer.access_token,
        )
        .await;
    let code = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(code, StatusCode::OK, "stats: {body}");
    body
}

fn token(place: &Value) -> String {
    place["queue_token"]
        .as_str()
        .expect("queue token")
        .to_owned()
}

#[tokio::test]
async fn an_organizer_sets_up_the_queue_and_reads_it_back() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let response = put_settings(
        &app,
        &shop,
        &json!({"enabled": true, "capacity": 500, "admit_per_second": 50, "vip_share": 0.2, "max_joins_per_ip": 5}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let view: Value = app
        .get_as(
            &format!("/events/{}/queue", shop.event_id),
            &shop.organizer.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["enabled"], true);
    assert_eq!(view["capacity"], 500);
    assert_eq!(view["admission_ttl_seconds"], 600);
    assert_eq!(view["heartbeat_timeout_seconds"], 30);
    assert_eq!(view["vip_share"], 0.2);
    assert_eq!(view["max_joins_per_ip"], 5);
    assert_eq!(view["paused"], false);

    let paused: Value = app
        .post_as(
            &format!("/events/{}/queue/pause", shop.event_id),
            &shop.organizer.access_token,
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(paused["paused"], true);
    let buyer = app.buyers(1).await.remove(0);
    let vips = app
        .client
        .put(app.url(&format!("/events/{}/queue/vip", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"user_ids": [uuid::Uuid::now_v7().to_string()]}))
        .send()
        .await
        .expect("request");
    assert_eq!(vips.status(), StatusCode::OK);
    let vips: Value = vips.json().await.expect("json");
    assert_eq!(vips["vip_user_ids"].as_array().map(Vec::len), Some(1));

    // Buyers may not touch it; another organizer does not see it.
    let refused = app
        .post_as(
            &format!("/events/{}/queue/resume", shop.event_id),
            &buyer.access_token,
            &json!({}),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let other = app
        .user_with_role(boxoffice::auth::model::Role::Organizer)
        .await;
    let hidden = app
        .get_as(
            &format!("/events/{}/queue", shop.event_id),
            &other.access_token,
        )
        .await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn queue_settings_out_of_range_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let late = (app.state.clock.now() + time::Duration::days(60))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = put_settings(
        &app,
        &shop,
        &json!({"enabled": true, "capacity": 0, "admit_per_second": 1_000_000, "vip_share": 1.5,
                "heartbeat_timeout_seconds": 1, "pre_queue_opens_at": late}),
    )
    .await;
    let body = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in [
        "capacity",
        "admit_per_second",
        "vip_share",
        "heartbeat_timeout_seconds",
        "pre_queue_opens_at",
    ] {
        assert!(fields.contains(&field), "{field} missing in {body}");
    }
    let bad_vips = app
        .client
        .put(app.url(&format!("/events/{}/queue/vip", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"user_ids": ["not-an-id"]}))
        .send()
        .await
        .expect("request");
    assert_problem(
        bad_vips,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn joining_twice_returns_the_same_place_and_status_is_exact() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({"capacity": 1})).await;
    let buyers = app.buyers(3).await;
    let mut places = Vec::new();
    for buyer in &buyers {
        places.push(join(&app, buyer, &shop.event_id).await);
    }
    assert_eq!(places[0]["status"], "WAITING");
    assert_eq!(places[0]["lane"], "NORMAL");
    assert_eq!(places[2]["position"], 3);
    assert_eq!(places[2]["ahead"], 2);
    assert!(places[2]["eta_seconds"].as_u64().is_some_and(|s| s >= 2));

    let again = join(&app, &buyers[2], &shop.event_id).await;
    assert_eq!(again["position"], 3, "same place: {again}");

    // Status with the queue token alone (no JWT) is the exact rank.
    let second = status(&app, &shop.event_id, &token(&places[1])).await;
    assert_eq!(second["position"], 2);
    assert_eq!(second["status"], "WAITING");
}

#[tokio::test]
async fn a_queue_that_is_off_or_not_yet_open_refuses_joins() {
    let app = TestApp::spawn().await;
    let buyer = app.buyers(1).await.remove(0);
    let plain = Shop::open(&app).await;
    let off = app
        .post_as(
            "/queue/join",
            &buyer.access_token,
            &json!({"event_id": plain.event_id}),
        )
        .await;
    assert_problem(off, StatusCode::CONFLICT, "queue_not_enabled").await;

    let shop = Shop::open_with(
        &app,
        json!({"sale_open_at": rfc(&app, time::Duration::hours(2))}),
    )
    .await;
    let response = put_settings(
        &app,
        &shop,
        &json!({"enabled": true, "capacity": 10, "admit_per_second": 1,
                "pre_queue_opens_at": rfc(&app, time::Duration::hours(1))}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let early = app
        .post_as(
            "/queue/join",
            &buyer.access_token,
            &json!({"event_id": shop.event_id}),
        )
        .await;
    assert_problem(early, StatusCode::CONFLICT, "queue_not_open").await;

    // In the pre-queue the order is secret: no position until the sale opens.
    app.clock.advance(time::Duration::minutes(61));
    let buyer = app.buyers(1).await.remove(0);
    let place = join(&app, &buyer, &shop.event_id).await;
    assert_eq!(place["status"], "WAITING");
    assert!(place["position"].is_null() && place["ahead"].is_null());
    assert!(place["eta_seconds"].is_null());
    assert!(place["opens_at"].is_string());
    app.clock.advance(time::Duration::minutes(60));
    let opened = status(&app, &shop.event_id, &token(&place)).await;
    assert_eq!(opened["position"], 1, "{opened}");
}

fn rfc(app: &TestApp, from_now: time::Duration) -> String {
    (app.state.clock.now() + from_now)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[tokio::test]
async fn leaving_frees_the_place_and_those_behind_move_up() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers = app.buyers(2).await;
    let first = join(&app, &buyers[0], &shop.event_id).await;
    let second = join(&app, &buyers[1], &shop.event_id).await;
    let left = app
        .client
        .delete(app.url(&format!("/queue/leave?event_id={}", shop.event_id)))
        .header("x-queue-token", token(&first))
        .send()
        .await
        .expect("request");
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    let gone = status_by_token(&app, &shop.event_id, &token(&first)).await;
    assert_problem(gone, StatusCode::NOT_FOUND, "not_in_queue").await;
    let moved = status(&app, &shop.event_id, &token(&second)).await;
    assert_eq!(moved["position"], 1);
    // Coming back is allowed: at the end of the line.
    let back = join(&app, &buyers[0], &shop.event_id).await;
    assert_eq!(back["position"], 2);
}

#[tokio::test]
async fn a_silent_waiter_is_dropped_and_counted_as_abandoned() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    // Paused, so nobody is admitted while the clock moves.
    let paused = app
        .post_as(
            &format!("/events/{}/queue/pause", shop.event_id),
            &shop.organizer.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    let buyers = app.buyers(2).await;
    let silent = join(&app, &buyers[0], &shop.event_id).await;
    let alive = join(&app, &buyers[1], &shop.event_id).await;
    app.clock.advance(time::Duration::seconds(6));
    status(&app, &shop.event_id, &token(&alive)).await;
    app.clock.advance(time::Duration::seconds(5));
    // Watched through the operator's view: a status call would itself be a heartbeat.
    eventually("the silent waiter is dropped", || async {
        stats(&app, &shop).await["abandoned_total"] == 1
    })
    .await;
    assert_eq!(stats(&app, &shop).await["waiting"]["NORMAL"], 1);
    let gone = status_by_token(&app, &shop.event_id, &token(&silent)).await;
    assert_problem(gone, StatusCode::NOT_FOUND, "not_in_queue").await;
    let moved = status(&app, &shop.event_id, &token(&alive)).await;
    assert_eq!(moved["position"], 1);
}

#[tokio::test]
async fn the_ticker_admits_in_order_at_the_configured_rate() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers = app.buyers(3).await;
    let mut places = Vec::new();
    for buyer in &buyers {
        places.push(join(&app, buyer, &shop.event_id).await);
    }
    app.clock.advance(time::Duration::seconds(1));
    let first = until_admitted(&app, &shop.event_id, &token(&places[0])).await;
    assert!(first["admission_token"].is_string());
    assert!(first["admission_expires_at"].is_string());
    // One per second: the second is still waiting, now first in line.
    let second = status(&app, &shop.event_id, &token(&places[1])).await;
    assert_eq!(second["status"], "WAITING");
    assert_eq!(second["position"], 1);
    app.clock.advance(time::Duration::seconds(1));
    until_admitted(&app, &shop.event_id, &token(&places[1])).await;
    let third = status(&app, &shop.event_id, &token(&places[2])).await;
    assert_eq!(third["position"], 1);
    eventually("stats show two admissions", || async {
        let view = stats(&app, &shop).await;
        view["admitted_total"] == 2 && view["active"] == 2
    })
    .await;
}

#[tokio::test]
async fn vip_list_members_wait_in_the_vip_lane() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({"vip_share": 0.5})).await;
    let buyers = app.buyers(2).await;
    let normal = join(&app, &buyers[0], &shop.event_id).await;
    assert_eq!(normal["lane"], "NORMAL");
    let vip_id = boxoffice::db::entities::users::Entity::find()
        .filter(boxoffice::db::entities::users::Column::EmailNormalized.eq(buyers[1].email.clone()))
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("user")
        .id;
    let listed = app
        .client
        .put(app.url(&format!("/events/{}/queue/vip", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({ "user_ids": [vip_id] }))
        .send()
        .await
        .expect("request");
    assert_eq!(listed.status(), StatusCode::OK);
    let vip = join(&app, &buyers[1], &shop.event_id).await;
    assert_eq!(vip["lane"], "VIP");
    assert_eq!(vip["position"], 1);
}

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

#[tokio::test]
async fn joins_beyond_the_per_address_limit_are_refused() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({"max_joins_per_ip": 2})).await;
    let buyers = app.buyers(3).await;
    join(&app, &buyers[0], &shop.event_id).await;
    join(&app, &buyers[1], &shop.event_id).await;
    // Joining again is not a new join.
    join(&app, &buyers[1], &shop.event_id).await;
    let third = app
        .post_as(
            "/queue/join",
            &buyers[2].access_token,
            &json!({"event_id": shop.event_id}),
        )
        .await;
    assert_problem(third, StatusCode::TOO_MANY_REQUESTS, "too_many_joins").await;
}

#[tokio::test]
async fn ugly_queue_inputs_get_clean_errors() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let other = queued_shop(&app, json!({})).await;
    let buyer = app.buyers(1).await.remove(0);
    for bad in [
        "",
        "not-a-uuid",
        "../../etc/passwd",
        &uuid::Uuid::now_v7().to_string(),
    ] {
        let response = app
            .post_as(
                "/queue/join",
                &buyer.access_token,
                &json!({ "event_id": bad }),
            )
            .await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let no_body = app
        .post_as("/queue/join", &buyer.access_token, &json!({}))
        .await;
    assert_eq!(no_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = app
        .post("/queue/join", &json!({"event_id": shop.event_id}))
        .await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let place = join(&app, &buyer, &shop.event_id).await;
    // A queue token is bound to its event and cannot be forged.
    let elsewhere = status_by_token(&app, &other.event_id, &token(&place)).await;
    assert_problem(elsewhere, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let forged = status_by_token(&app, &shop.event_id, &format!("{}x", token(&place))).await;
    assert_problem(forged, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let garbage = status_by_token(&app, &shop.event_id, "q1.....").await;
    assert_problem(garbage, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let missing = app.get("/queue/status").await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let anonymous = app
        .get(&format!("/queue/status?event_id={}", shop.event_id))
        .await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // No way to learn another user's place: status is always the caller's own.
    let stranger = app.buyers(1).await.remove(0);
    let own = app
        .get_as(
            &format!("/queue/status?event_id={}", shop.event_id),
            &stranger.access_token,
        )
        .await;
    assert_problem(own, StatusCode::NOT_FOUND, "not_in_queue").await;
    let not_admin = app
        .get_as(
            &format!("/admin/queues/{}", shop.event_id),
            &buyer.access_token,
        )
        .await;
    assert_problem(not_admin, StatusCode::FORBIDDEN, "forbidden").await;
    let admin = app.admin().await;
    let unknown = app
        .get_as("/admin/queues/nonsense", &admin.access_token)
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
}
