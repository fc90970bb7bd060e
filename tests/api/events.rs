use boxoffice::{auth::model::Role, db::entities::audit_log};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::helpers::{TestApp, TestUser, assert_problem, eventually};

fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post_as("/events", token, &body).await
}

async fn create_ok(app: &TestApp, organizer: &TestUser, body: Value) -> Value {
    let response = create(app, &organizer.access_token, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("json")
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn minimal(app: &TestApp, title: &str, days: i64) -> Value {
    json!({"title": title, "start_at": at(app.state.clock.now() + Duration::days(days)), "total_tickets": 100})
}

#[tokio::test]
async fn an_event_needs_only_title_start_and_total_and_gets_sensible_defaults() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let start = app.state.clock.now() + Duration::days(30);
    let event = create_ok(
        &app,
        &organizer,
        json!({"title": "Winter Concert", "start_at": at(start), "total_tickets": 2000}),
    )
    .await;
    assert_eq!(event["status"], "DRAFT");
    assert_eq!(event["timezone"], "Asia/Seoul");
    assert_eq!(event["currency"], "KRW");
    assert_eq!(event["order_hold_seconds"], 600);
    assert_eq!(event["end_at"], at(start + Duration::hours(3)));
    assert_eq!(event["sale_close_at"], at(start));
    assert_eq!(event["sale_open_at"], at(app.state.clock.now()));
    assert_eq!(event["cancel_policy"]["tiers"][0]["hours_before"], 24);
    assert_eq!(event["cancel_policy"]["otherwise"], "NO_CANCEL");
    assert_eq!(event["sale_state"], "UPCOMING", "a draft is not on sale");
    let performances = event["performances"].as_array().expect("performances");
    assert_eq!(performances.len(), 1);
    assert_eq!(performances[0]["capacity"], 2000);
    assert_eq!(performances[0]["start_at"], at(start));
}

#[tokio::test]
async fn buyers_cannot_create_events_and_anonymous_users_must_sign_in() {
    let app = TestApp::spawn().await;
    let buyer = app.user().await;
    assert_problem(
        create(&app, &buyer.access_token, minimal(&app, "x", 1)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post("/events", &minimal(&app, "x", 1)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn impossible_events_are_refused_with_every_reason() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let now = app.state.clock.now();
    let cases = [
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "end_at": at(now + Duration::days(1)), "total_tickets": 10}),
            "end_at",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 10, "sale_open_at": at(now + Duration::days(1)), "sale_close_at": at(now)}),
            "sale_close_at",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 10, "sale_close_at": at(now + Duration::days(9))}),
            "sale_close_at",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 0}),
            "total_tickets",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": -5}),
            "total_tickets",
        ),
        (
            json!({"title": "", "start_at": at(now + Duration::days(2)), "total_tickets": 5}),
            "title",
        ),
        (
            json!({"title": "x".repeat(256), "start_at": at(now + Duration::days(2)), "total_tickets": 5}),
            "title",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 5, "currency": "WON!"}),
            "currency",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 5, "order_hold_seconds": 5}),
            "order_hold_seconds",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 5, "image_url": "javascript:alert(1)"}),
            "image_url",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 5, "cancel_policy": {"tiers": [{"hours_before": 24, "fee_percent": 150}], "otherwise": "NO_CANCEL"}}),
            "cancel_policy",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 5, "timezone": "Mars/Olympus Mons"}),
            "timezone",
        ),
        (
            json!({"title": "x", "start_at": at(now + Duration::days(2)), "total_tickets": 5, "timezone": "Mars/Olympus"}),
            "timezone",
        ),
    ];
    for (body, field) in cases {
        let response = create(&app, &organizer.access_token, body.clone()).await;
        let problem = assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field} in {fields:?} for {body}");
    }
    for body in [
        json!({"title": "x", "start_at": "tomorrow", "total_tickets": 5}),
        json!({"title": "x", "start_at": at(now), "total_tickets": "many"}),
        json!({"start_at": at(now), "total_tickets": 5}),
        json!({"title": "x", "start_at": at(now), "total_tickets": 5, "status": "LIVE"}),
    ] {
        assert_problem(
            create(&app, &organizer.access_token, body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn any_zone_the_time_zone_database_knows_is_accepted() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    for zone in ["America/New_York", "Europe/London", "UTC"] {
        let event = create_ok(&app, &organizer, json!({"title": "World tour", "start_at": at(app.state.clock.now() + Duration::days(3)), "total_tickets": 5, "timezone": zone})).await;
        assert_eq!(event["timezone"], zone);
    }
}

#[tokio::test]
async fn html_in_a_title_is_kept_as_text() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let event = create_ok(&app, &organizer, json!({"title": "<script>alert(1)</script>", "start_at": at(app.state.clock.now() + Duration::days(3)), "total_tickets": 5})).await;
    assert_eq!(event["title"], "<script>alert(1)</script>");
}

#[tokio::test]
async fn drafts_are_visible_only_to_their_organizer_and_admins() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let other = app.user_with_role(Role::Organizer).await;
    let admin = app.admin().await;
    let event = create_ok(&app, &organizer, minimal(&app, "Secret", 5)).await;
    let path = format!("/events/{}", event["id"].as_str().expect("id"));
    assert_problem(app.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(
        app.get_as(&path, &other.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        app.get_as(&path, &organizer.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_as(&path, &admin.access_token).await.status(),
        StatusCode::OK
    );
    let public: Value = app.get("/events").await.json().await.expect("json");
    assert!(public["items"].as_array().expect("items").is_empty());
    let own: Value = app
        .get_as("/events", &organizer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(own["items"].as_array().expect("items").len(), 1);
    let theirs: Value = app
        .get_as("/events", &other.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert!(theirs["items"].as_array().expect("items").is_empty());
    // Another organizer cannot change it either: it does not exist for them.
    assert_problem(
        patch(&app, &other.access_token, &path, json!({"title": "mine"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        patch(
            &app,
            &admin.access_token,
            &path,
            json!({"title": "Fixed by admin"})
        )
        .await
        .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn status_moves_only_along_the_allowed_paths() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let event = create_ok(&app, &organizer, minimal(&app, "Show", 5)).await;
    let path = format!("/events/{}", event["id"].as_str().expect("id"));
    let token = &organizer.access_token;
    let published: Value = patch(&app, token, &path, json!({"status": "PUBLISHED"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(published["status"], "PUBLISHED");
    assert_eq!(published["sale_state"], "ON_SALE");
    for illegal in ["DRAFT", "ENDED"] {
        assert_problem(
            patch(&app, token, &path, json!({"status": illegal})).await,
            StatusCode::CONFLICT,
            "invalid_transition",
        )
        .await;
    }
    // Canceling refunds orders: only the cancel route does it, with a reason.
    assert_problem(
        patch(&app, token, &path, json!({"status": "CANCELED"})).await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    assert_eq!(
        app.post_as(
            &format!("{path}/cancel"),
            token,
            &json!({"reason": "공연장 사정"})
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    assert_problem(
        patch(&app, token, &path, json!({"status": "PUBLISHED"})).await,
        StatusCode::CONFLICT,
        "invalid_transition",
    )
    .await;
    let canceled: Value = app.get(&path).await.json().await.expect("json");
    assert_eq!(canceled["sale_state"], "CLOSED");
}

#[tokio::test]
async fn the_sweeper_ends_published_events_after_their_end() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let body = json!({"title": "Soon over", "start_at": at(app.state.clock.now() + Duration::hours(2)), "total_tickets": 10, "status": "PUBLISHED"});
    let event = create_ok(&app, &organizer, body).await;
    let draft = create_ok(&app, &organizer, minimal(&app, "Draft", 1)).await;
    app.clock.advance(Duration::hours(6));
    // Access tokens live 15 minutes of the advanced clock: sign in again.
    let (token, _) = app.login(&organizer.email).await;
    let ended = boxoffice::catalog::events::end_past_events(&app.state.db, app.state.clock.now())
        .await
        .expect("sweep");
    assert_eq!(ended, 1, "only the published one");
    let again = boxoffice::catalog::events::end_past_events(&app.state.db, app.state.clock.now())
        .await
        .expect("sweep");
    assert_eq!(again, 0, "exactly once");
    let view: Value = app
        .get_as(
            &format!("/events/{}", event["id"].as_str().expect("id")),
            &token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["status"], "ENDED");
    assert_eq!(view["sale_state"], "CLOSED");
    let draft_view: Value = app
        .get_as(
            &format!("/events/{}", draft["id"].as_str().expect("id")),
            &token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(draft_view["status"], "DRAFT");
}

#[tokio::test]
async fn the_sale_state_follows_the_sale_window() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let now = app.state.clock.now();
    let body = json!({"title": "Later", "start_at": at(now + Duration::days(10)), "total_tickets": 10, "status": "PUBLISHED",
        "sale_open_at": at(now + Duration::hours(1)), "sale_close_at": at(now + Duration::days(9))});
    let event = create_ok(&app, &organizer, body).await;
    assert_eq!(event["sale_state"], "UPCOMING");
    let path = format!("/events/{}", event["id"].as_str().expect("id"));
    app.clock.advance(Duration::hours(2));
    let (token, _) = app.login(&organizer.email).await;
    let view: Value = app.get_as(&path, &token).await.json().await.expect("json");
    assert_eq!(view["sale_state"], "ON_SALE");
    app.clock.advance(Duration::days(9));
    let (token, _) = app.login(&organizer.email).await;
    let view: Value = app.get_as(&path, &token).await.json().await.expect("json");
    assert_eq!(view["sale_state"], "CLOSED");
}

#[tokio::test]
async fn the_list_filters_and_pages_by_start_time() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let other = app.user_with_role(Role::Organizer).await;
    for (i, days) in [5, 1, 3, 2, 4].iter().enumerate() {
        let mut body = minimal(&app, &format!("Concert {i}"), *days);
        body["status"] = json!("PUBLISHED");
        body["venue"] = json!({"name": if i == 2 { "Olympic Hall" } else { "Arena" }});
        create_ok(&app, &organizer, body).await;
    }
    let mut foreign = minimal(&app, "Elsewhere", 6);
    foreign["status"] = json!("PUBLISHED");
    create_ok(&app, &other, foreign).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/events?limit=2&cursor={c}"),
            None => "/events?limit=2".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.expect("json");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["start_at"].as_str().expect("start").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "by start time across pages");

    let by_venue: Value = app
        .get("/events?q=olympic")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by_venue["items"].as_array().expect("items").len(), 1);
    let by_title: Value = app
        .get("/events?q=Concert%203")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(by_title["items"].as_array().expect("items").len(), 1);
    let theirs: Value = app
        .get(&format!(
            "/events?organizer_id={}",
            event_owner(&app, &other).await
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["items"].as_array().expect("items").len(), 1);
    let from = at(app.state.clock.now() + Duration::days(2) - Duration::minutes(1));
    let to = at(app.state.clock.now() + Duration::days(4));
    let window: Value = app
        .client
        .get(app.url("/events"))
        .query(&[("from", from.as_str()), ("to", to.as_str())])
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(
        window["items"].as_array().expect("items").len(),
        2,
        "days 2 and 3"
    );
    let bad = app.get("/events?limit=1000").await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let bad = app.get("/events?cursor=%%%").await;
    assert!(bad.status().is_client_error());
    let bad = app.get("/events?from=yesterday").await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn put_replaces_and_patch_changes_only_what_is_sent() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let event = create_ok(&app, &organizer, json!({"title": "Old", "description": "keep?", "start_at": at(app.state.clock.now() + Duration::days(3)), "total_tickets": 50})).await;
    let path = format!("/events/{}", event["id"].as_str().expect("id"));
    let patched: Value = patch(
        &app,
        &organizer.access_token,
        &path,
        json!({"title": "New"}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(patched["title"], "New");
    assert_eq!(patched["description"], "keep?");
    let replaced = app
        .client
        .put(app.url(&path))
        .bearer_auth(&organizer.access_token)
        .json(&json!({"title": "Replaced", "start_at": event["start_at"], "total_tickets": 50}))
        .send()
        .await
        .expect("request");
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.expect("json");
    assert_eq!(replaced["title"], "Replaced");
    assert!(
        replaced["description"].is_null(),
        "PUT replaces the whole event"
    );
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("event.updated"))
        .all(&app.state.db)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 2);
    let detail: Value =
        serde_json::from_str(audit[0].detail.as_deref().expect("detail")).expect("json");
    assert!(detail["before"]["title"].is_string() && detail["after"]["title"].is_string());
}

#[tokio::test]
async fn performances_stay_inside_the_event_and_its_ticket_total() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let start = app.state.clock.now() + Duration::days(10);
    let event = create_ok(&app, &organizer, json!({"title": "Two nights", "start_at": at(start), "end_at": at(start + Duration::days(1) + Duration::hours(3)), "total_tickets": 100})).await;
    let id = event["id"].as_str().expect("id");
    let default_pid = event["performances"][0]["id"].as_str().expect("pid");
    let token = &organizer.access_token;
    let base = format!("/events/{id}/performances");
    // The default performance holds all 100 places: shrink it first.
    let shrunk = patch(
        &app,
        token,
        &format!("{base}/{default_pid}"),
        json!({"capacity": 60}),
    )
    .await;
    assert_eq!(shrunk.status(), StatusCode::OK);
    let second = app.post_as(&base, token, &json!({"start_at": at(start + Duration::days(1)), "capacity": 40, "doors_open_at": at(start + Duration::days(1) - Duration::hours(1))})).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: Value = second.json().await.expect("json");
    let too_many = app
        .post_as(
            &base,
            token,
            &json!({"start_at": at(start + Duration::hours(1)), "capacity": 1}),
        )
        .await;
    assert_problem(
        too_many,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let outside = app
        .post_as(
            &base,
            token,
            &json!({"start_at": at(start + Duration::days(5)), "capacity": 1}),
        )
        .await;
    assert_problem(
        outside,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let doors_late = patch(
        &app,
        token,
        &format!("{base}/{}", second["id"].as_str().expect("id")),
        json!({"doors_open_at": at(start + Duration::days(2))}),
    )
    .await;
    assert_problem(
        doors_late,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // The event cannot shrink below its performances.
    let shrink_event = patch(
        &app,
        token,
        &format!("/events/{id}"),
        json!({"total_tickets": 50}),
    )
    .await;
    assert_problem(shrink_event, StatusCode::CONFLICT, "capacity_exceeds_total").await;
    let list: Vec<Value> = app.get_as(&base, token).await.json().await.expect("json");
    assert_eq!(list.len(), 2);
    let deleted = app
        .client
        .delete(app.url(&format!("{base}/{}", second["id"].as_str().expect("id"))))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let missing = app
        .client
        .delete(app.url(&format!("{base}/{}", second["id"].as_str().expect("id"))))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_problem(missing, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn anonymous_reads_are_cached_with_etags_and_changes_show_at_once() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let mut body = minimal(&app, "Cached", 3);
    body["status"] = json!("PUBLISHED");
    let event = create_ok(&app, &organizer, body).await;
    let path = format!("/events/{}", event["id"].as_str().expect("id"));
    for instance in [&app, &peer] {
        let first = instance.get(&path).await;
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()["etag"].to_str().expect("ascii").to_owned();
        assert!(
            first.headers()["cache-control"]
                .to_str()
                .expect("ascii")
                .contains("max-age=1")
        );
        let again = instance
            .client
            .get(instance.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("request");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
    let changed = patch(
        &app,
        &organizer.access_token,
        &path,
        json!({"title": "Renamed"}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    // The instance that made the change dropped its copy before answering; the peer hears of it
    // on the bus (and would in any case let its copy go after max-age).
    let view: Value = app.get(&path).await.json().await.expect("json");
    assert_eq!(view["title"], "Renamed", "stale read after a change");
    eventually("the peer serves the change", async || {
        let view: Value = peer.get(&path).await.json().await.expect("json");
        view["title"] == "Renamed"
    })
    .await;
}

async fn event_owner(app: &TestApp, user: &TestUser) -> String {
    let me: Value = app
        .get_as("/auth/me", &user.access_token)
        .await
        .json()
        .await
        .expect("json");
    me["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_ten_megabyte_event_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let huge = format!(
        "{{\"title\": \"x\", \"start_at\": \"{}\", \"total_tickets\": 5, \"description\": \"{}\"}}",
        at(app.state.clock.now() + Duration::days(3)),
        "가".repeat(10 * 1024 * 1024 / 3)
    );
    let response = app
        .raw_json_as(
            reqwest::Method::POST,
            "/events",
            &organizer.access_token,
            huge,
        )
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn an_event_whose_tickets_are_all_gone_is_sold_out() {
    use boxoffice::db::entities::{products, stock_counters};
    use sea_orm::{ActiveModelTrait, Set};
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let mut body = minimal(&app, "Small room", 3);
    body["status"] = json!("PUBLISHED");
    let event = create_ok(&app, &organizer, body).await;
    let id = event["id"].as_str().expect("id").to_owned();
    let path = format!("/events/{id}");
    let view: Value = app
        .get_as(&path, &organizer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        view["sale_state"], "ON_SALE",
        "no tickets defined yet: not sold out"
    );
    let ticket = app
        .post_as("/products", &organizer.access_token, &json!({"event_id": id, "type": "TICKET", "name": "GA", "price": "10000", "quantity": 2}))
        .await;
    assert_eq!(ticket.status(), StatusCode::CREATED);
    let ticket: Value = ticket.json().await.expect("json");
    let row = products::Entity::find_by_id(ticket["id"].as_str().expect("id").to_owned())
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("product");
    // What checkout will do: the counter reaches zero.
    stock_counters::ActiveModel {
        id: Set(row.stock_id.expect("counter")),
        remaining: Set(0),
        ..Default::default()
    }
    .update(&app.state.db)
    .await
    .expect("update");
    let view: Value = app
        .get_as(&path, &organizer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["sale_state"], "SOLD_OUT");
    assert_eq!(view["performances"][0]["sale_state"], "SOLD_OUT");
}
