//! Seat maps: upload (explicit and generated), limits, access, the layout and state documents,
//! blocking, and the lock once seats are held.

use std::{io::Read, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use boxoffice::{
    auth::model::Role,
    db::entities::{audit_log, seats},
};
use reqwest::{Response, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, assert_problem};

/// An event (draft) with its default performance; returns (event id, performance id).
async fn event(app: &TestApp, organizer: &TestUser, total_tickets: i64) -> (String, String) {
    let start = (app.state.clock.now() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = app
        .post_as(
            "/events",
            &organizer.access_token,
            &json!({"title": "Seat map test", "start_at": start, "total_tickets": total_tickets}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["performances"][0]["id"]
            .as_str()
            .expect("performance")
            .to_owned(),
    )
}

fn seats_path(event_id: &str, pid: &str) -> String {
    format!("/events/{event_id}/performances/{pid}/seats")
}

async fn put_seats(
    app: &TestApp,
    token: &str,
    event_id: &str,
    pid: &str,
    body: &Value,
) -> Response {
    app.client
        .put(app.url(&seats_path(event_id, pid)))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn patch_seats(
    app: &TestApp,
    token: &str,
    event_id: &str,
    pid: &str,
    body: &Value,
) -> Response {
    app.client
        .patch(app.url(&seats_path(event_id, pid)))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// GET a seat document, anonymously or as someone.
async fn get_doc(app: &TestApp, token: Option<&str>, path: &str) -> Response {
    let request = app.client.get(app.url(path));
    let request = match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    };
    request.send().await.expect("request")
}

/// The 2-bit codes of a state document, one per seat.
fn codes(doc: &Value) -> Vec<u8> {
    assert_eq!(doc["encoding"], "2bit-base64");
    let packed = STANDARD
        .decode(doc["data"].as_str().expect("data"))
        .expect("base64");
    let count = usize::try_from(doc["seat_count"].as_u64().expect("count")).expect("usize");
    (0..count)
        .map(|i| (packed[i / 4] >> ((i % 4) * 2)) & 3)
        .collect()
}

async fn state_codes(app: &TestApp, token: Option<&str>, event_id: &str, pid: &str) -> Vec<u8> {
    let response = get_doc(app, token, &format!("{}/state", seats_path(event_id, pid))).await;
    assert_eq!(response.status(), StatusCode::OK);
    codes(&response.json().await.expect("json"))
}

/// Polls the state document until `check` holds (the document may be up to a second old).
async fn wait_for_state(
    app: &TestApp,
    token: Option<&str>,
    event_id: &str,
    pid: &str,
    check: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let codes = state_codes(app, token, event_id, pid).await;
        if check(&codes) {
            return codes;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "state never matched: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts a seat into a state directly, as a checkout would.
async fn force_state(app: &TestApp, pid: &str, label: &str, state: &str) {
    let changed = seats::Entity::update_many()
        .col_expr(seats::Column::State, Expr::value(state))
        .filter(seats::Column::PerformanceId.eq(pid))
        .filter(seats::Column::Label.eq(label))
        .exec(&app.state.db)
        .await
        .expect("update seat");
    assert_eq!(changed.rows_affected, 1, "seat {label}");
}

fn one_row(section: &str, grade: &str, n: usize) -> Value {
    let seats: Vec<Value> = (1..=n)
        .map(|i| json!({"label": i.to_string(), "x": i * 10, "y": 0}))
        .collect();
    json!({"sections": [{"name": section, "grade": grade, "rows": [{"label": "1", "seats": seats}]}]})
}

async fn audit_count(app: &TestApp, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .count(&app.state.db)
        .await
        .expect("audit")
}

#[tokio::test]
async fn explicit_sections_rows_and_seats_become_a_layout_in_order() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    let body = json!({"sections": [
        {"name": "Floor", "grade": "VIP", "rows": [
            {"label": "A", "seats": [{"label": "1", "x": 10, "y": 20}, {"label": "2", "x": 30, "y": 20, "grade": "R"}]},
            {"label": "B", "grade": "R", "seats": [{"label": "1", "x": 10, "y": 40}]}
        ]},
        {"name": "<b>Box</b>", "grade": "S", "rows": [{"label": "1", "seats": [{"label": "<script>", "x": -5, "y": 0}]}]}
    ]});
    let response = put_seats(&app, &organizer.access_token, &eid, &pid, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let summary: Value = response.json().await.expect("json");
    assert_eq!(
        summary,
        json!({"version": 1, "seat_count": 4, "grades": [
            {"grade": "VIP", "seat_count": 1}, {"grade": "R", "seat_count": 2}, {"grade": "S", "seat_count": 1}]})
    );

    let response = get_doc(
        &app,
        Some(&organizer.access_token),
        &format!("{}/layout", seats_path(&eid, &pid)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let layout: Value = response.json().await.expect("json");
    assert_eq!(layout["version"], 1);
    assert_eq!(layout["event_id"], eid.as_str());
    assert_eq!(layout["performance_id"], pid.as_str());
    assert_eq!(layout["seat_count"], 4);
    assert_eq!(
        layout["bounds"],
        json!({"min_x": -5, "min_y": 0, "max_x": 30, "max_y": 40})
    );
    let labels: Vec<&str> = layout["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| s["label"].as_str().expect("label"))
        .collect();
    assert_eq!(
        labels,
        [
            "Floor-A-1",
            "Floor-A-2",
            "Floor-B-1",
            "<b>Box</b>-1-<script>"
        ]
    );
    assert_eq!(
        layout["seats"][1],
        json!({"id": layout["seats"][1]["id"], "label": "Floor-A-2", "section": "Floor", "row": "A", "seat": "2", "grade": "R", "x": 30, "y": 20})
    );

    let rows = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(pid.as_str()))
        .order_by_asc(seats::Column::Position)
        .all(&app.state.db)
        .await
        .expect("seats");
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.position, i32::try_from(i).expect("small"));
        assert_eq!(row.state, "AVAILABLE");
        assert_eq!(row.event_id, eid);
        assert_eq!(layout["seats"][i]["id"], row.id.as_str());
    }
    assert_eq!(rows[3].label, "<b>Box</b>-1-<script>");
    assert_eq!(audit_count(&app, "seat_map.replaced").await, 1);

    let state = state_codes(&app, Some(&organizer.access_token), &eid, &pid).await;
    assert_eq!(state, [0, 0, 0, 0]);
    let event: Value = app
        .get_as(&format!("/events/{eid}"), &organizer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(event["performances"][0]["layout_version"], 1);
}

#[tokio::test]
async fn generator_blocks_expand_into_rows_and_seats_and_a_new_upload_replaces_the_old() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    let body = json!({"blocks": [
        {"section": "North", "rows": 3, "seats_per_row": 4, "grade": "R", "x": 100, "y": 200,
         "seat_spacing": 12, "row_spacing": 15, "row_labels": "LETTERS"},
        {"section": "South", "rows": 2, "seats_per_row": 2, "grade": "S", "x": 0, "y": 0,
         "first_row": 10, "first_seat": 5}
    ]});
    let response = put_seats(&app, &organizer.access_token, &eid, &pid, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let summary: Value = response.json().await.expect("json");
    assert_eq!(summary["seat_count"], 16);
    let layout: Value = get_doc(
        &app,
        Some(&organizer.access_token),
        &format!("{}/layout?version=1", seats_path(&eid, &pid)),
    )
    .await
    .json()
    .await
    .expect("json");
    let seat = |i: usize| &layout["seats"][i];
    assert_eq!(seat(0)["label"], "North-A-1");
    assert_eq!(
        (seat(0)["x"].clone(), seat(0)["y"].clone()),
        (json!(100), json!(200))
    );
    assert_eq!(seat(5)["label"], "North-B-2");
    assert_eq!(
        (seat(5)["x"].clone(), seat(5)["y"].clone()),
        (json!(112), json!(215))
    );
    assert_eq!(seat(11)["label"], "North-C-4");
    assert_eq!(seat(12)["label"], "South-10-5");
    assert_eq!(seat(15)["label"], "South-11-6");
    assert_eq!(
        (seat(15)["x"].clone(), seat(15)["y"].clone()),
        (json!(10), json!(10))
    );
    assert_eq!(
        layout["grades"],
        json!([{"grade": "R", "seat_count": 12}, {"grade": "S", "seat_count": 4}])
    );

    let response = put_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &one_row("Balcony", "A", 5),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let summary: Value = response.json().await.expect("json");
    assert_eq!(summary["version"], 2);
    let stored = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(pid.as_str()))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(stored, 5);
    // Only the current version is kept.
    let old = get_doc(
        &app,
        Some(&organizer.access_token),
        &format!("{}/layout?version=1", seats_path(&eid, &pid)),
    )
    .await;
    assert_problem(old, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(audit_count(&app, "seat_map.replaced").await, 2);
}

#[tokio::test]
async fn a_fifty_thousand_seat_stadium_is_one_request_and_its_state_stays_small() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 50_000).await;
    // 45,000 generated seats plus 5,000 given one by one, so the body is far over the
    // general 64 KiB limit (about 200 KiB).
    let blocks: Vec<Value> = (1..=9)
        .map(|s| json!({"section": format!("S{s}"), "rows": 100, "seats_per_row": 50, "grade": if s < 3 { "VIP" } else { "R" },
                        "x": s * 600, "y": 0, "seat_spacing": 12, "row_spacing": 12}))
        .collect();
    let rows: Vec<Value> = (1..=50)
        .map(|r| {
            let seats: Vec<Value> = (1..=100)
                .map(|s| json!({"label": s.to_string(), "x": s * 10, "y": 2000 + r * 10}))
                .collect();
            json!({"label": r.to_string(), "seats": seats})
        })
        .collect();
    let body =
        json!({"sections": [{"name": "Floor", "grade": "P", "rows": rows}], "blocks": blocks});
    assert!(serde_json::to_vec(&body).expect("json").len() > 64 * 1024);
    let response = put_seats(&app, &organizer.access_token, &eid, &pid, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let summary: Value = response.json().await.expect("json");
    assert_eq!(summary["seat_count"], 50_000);
    assert_eq!(
        summary["grades"],
        json!([{"grade": "P", "seat_count": 5000}, {"grade": "VIP", "seat_count": 10000}, {"grade": "R", "seat_count": 35000}])
    );

    let response = get_doc(
        &app,
        Some(&organizer.access_token),
        &format!("{}/state", seats_path(&eid, &pid)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.expect("body");
    assert!(
        bytes.len() < 30 * 1024,
        "state document is {} bytes",
        bytes.len()
    );
    let doc: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(doc["version"], 1);
    let codes = codes(&doc);
    assert_eq!(codes.len(), 50_000);
    assert!(codes.iter().all(|c| *c == 0));

    let response = app
        .client
        .get(app.url(&format!("{}/layout?version=1", seats_path(&eid, &pid))))
        .bearer_auth(&organizer.access_token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.expect("body");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut json)
        .expect("gunzip");
    assert!(compressed.len() * 3 < json.len(), "gzip should pay off");
    let layout: Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(layout["seats"].as_array().expect("seats").len(), 50_000);
    assert_eq!(layout["seats"][0]["label"], "Floor-1-1");
    assert_eq!(layout["seats"][49_999]["label"], "S9-100-50");
}

#[tokio::test]
async fn duplicate_labels_are_422() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    let explicit = json!({"sections": [{"name": "A", "grade": "R", "rows": [
        {"label": "1", "seats": [{"label": "1", "x": 0, "y": 0}, {"label": "1", "x": 10, "y": 0}]}]}]});
    let body = assert_problem(
        put_seats(&app, &organizer.access_token, &eid, &pid, &explicit).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["code"], "duplicate_label");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("A-1-1")
    );

    // A block repeating an explicit seat, in another letter case.
    let overlapping = json!({
        "sections": [{"name": "a", "grade": "R", "rows": [{"label": "1", "seats": [{"label": "2", "x": 0, "y": 0}]}]}],
        "blocks": [{"section": "A", "rows": 1, "seats_per_row": 3, "grade": "R", "x": 0, "y": 10}]});
    let body = assert_problem(
        put_seats(&app, &organizer.access_token, &eid, &pid, &overlapping).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["code"], "duplicate_label");
    assert_eq!(body["errors"][0]["field"], "blocks");
    let stored = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(pid.as_str()))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn more_seats_than_the_capacity_is_422() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    let body = json!({"blocks": [{"section": "A", "rows": 11, "seats_per_row": 10, "grade": "R", "x": 0, "y": 0}]});
    let problem = assert_problem(
        put_seats(&app, &organizer.access_token, &eid, &pid, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "exceeds_capacity");
    // Exactly the capacity is fine.
    let body = json!({"blocks": [{"section": "A", "rows": 10, "seats_per_row": 10, "grade": "R", "x": 0, "y": 0}]});
    assert_eq!(
        put_seats(&app, &organizer.access_token, &eid, &pid, &body)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_nine_megabyte_upload_is_413_and_other_seat_routes_keep_the_small_limit() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    let huge = format!(
        "{{\"sections\": [], \"pad\": \"{}\"}}",
        "a".repeat(9 * 1024 * 1024)
    );
    let response = app
        .raw_json_as(
            reqwest::Method::PUT,
            &seats_path(&eid, &pid),
            &organizer.access_token,
            huge,
        )
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let labels: Vec<String> = (0..10_000).map(|i| format!("A-1-{i}")).collect();
    let response = patch_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &json!({"block": labels}),
    )
    .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn only_the_events_organizer_or_an_admin_changes_its_seats() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let other = app.user_with_role(Role::Organizer).await;
    let buyer = app.user().await;
    let admin = app.admin().await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    let body = one_row("A", "R", 3);

    assert_problem(
        put_seats(&app, &other.access_token, &eid, &pid, &body).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        put_seats(&app, &buyer.access_token, &eid, &pid, &body).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let anonymous = app
        .client
        .put(app.url(&seats_path(&eid, &pid)))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A performance of another event is not reachable through this one.
    let (_, foreign_pid) = event(&app, &other, 100).await;
    assert_problem(
        put_seats(&app, &organizer.access_token, &eid, &foreign_pid, &body).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    assert_eq!(
        put_seats(&app, &admin.access_token, &eid, &pid, &body)
            .await
            .status(),
        StatusCode::OK
    );
    let block = json!({"block": ["A-1-1"]});
    assert_problem(
        patch_seats(&app, &other.access_token, &eid, &pid, &block).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        patch_seats(&app, &buyer.access_token, &eid, &pid, &block).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        patch_seats(&app, &organizer.access_token, &eid, &pid, &block)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_versioned_layout_is_cached_for_a_year_and_both_documents_answer_304_and_gzip() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    put_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &one_row("A", "R", 8),
    )
    .await;
    let published = app
        .client
        .patch(app.url(&format!("/events/{eid}")))
        .bearer_auth(&organizer.access_token)
        .json(&json!({"status": "PUBLISHED"}))
        .send()
        .await
        .expect("request");
    assert_eq!(published.status(), StatusCode::OK);
    let layout_path = format!("{}/layout", seats_path(&eid, &pid));

    // The event may show as a draft for up to a second (the per-second snapshot).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let versioned = loop {
        let response = get_doc(&app, None, &format!("{layout_path}?version=1")).await;
        if response.status() == StatusCode::OK || tokio::time::Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(versioned.status(), StatusCode::OK);
    assert_eq!(versioned.headers()["etag"], "\"1\"");
    assert_eq!(
        versioned.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let plain = versioned.bytes().await.expect("body");

    let current = get_doc(&app, None, &layout_path).await;
    assert_eq!(current.status(), StatusCode::OK);
    assert_eq!(current.headers()["etag"], "\"1\"");
    assert_eq!(current.headers()["cache-control"], "public, max-age=10");

    let again = app
        .client
        .get(app.url(&format!("{layout_path}?version=1")))
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], "\"1\"");

    let zipped = app
        .client
        .get(app.url(&format!("{layout_path}?version=1")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["etag"], "\"1-gz\"");
    assert_eq!(zipped.headers()["vary"], "Accept-Encoding");
    let compressed = zipped.bytes().await.expect("body");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, plain.to_vec());

    assert_problem(
        get_doc(&app, None, &format!("{layout_path}?version=2")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let state_path = format!("{}/state", seats_path(&eid, &pid));
    let state = get_doc(&app, None, &state_path).await;
    assert_eq!(state.status(), StatusCode::OK);
    assert_eq!(state.headers()["cache-control"], "public, max-age=1");
    let etag = state.headers()["etag"].to_str().expect("etag").to_owned();
    let again = app
        .client
        .get(app.url(&state_path))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let zipped = app
        .client
        .get(app.url(&state_path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn the_state_document_shows_blocked_and_held_seats_within_a_second_on_every_instance() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = Some(organizer.access_token.as_str());
    let (eid, pid) = event(&app, &organizer, 100).await;
    put_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &one_row("A", "R", 6),
    )
    .await;
    // The peer caches the all-available state before anything changes.
    assert_eq!(state_codes(&peer, token, &eid, &pid).await, [0; 6]);

    let response = patch_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &json!({"block": ["A-1-2"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The instance that made the change shows it at once.
    assert_eq!(
        state_codes(&app, token, &eid, &pid).await,
        [0, 3, 0, 0, 0, 0]
    );

    force_state(&app, &pid, "A-1-5", "HELD").await;
    force_state(&app, &pid, "A-1-6", "SOLD").await;
    let expected = [0, 3, 0, 0, 1, 2];
    wait_for_state(&app, token, &eid, &pid, |c| c == expected).await;
    wait_for_state(&peer, token, &eid, &pid, |c| c == expected).await;
}

#[tokio::test]
async fn re_uploading_while_a_seat_is_held_is_409_seats_in_use() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    put_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &one_row("A", "R", 4),
    )
    .await;
    force_state(&app, &pid, "A-1-3", "HELD").await;

    assert_problem(
        put_seats(
            &app,
            &organizer.access_token,
            &eid,
            &pid,
            &one_row("B", "R", 4),
        )
        .await,
        StatusCode::CONFLICT,
        "seats_in_use",
    )
    .await;
    let rows = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(pid.as_str()))
        .order_by_asc(seats::Column::Position)
        .all(&app.state.db)
        .await
        .expect("seats");
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["A-1-1", "A-1-2", "A-1-3", "A-1-4"]);
    assert_eq!(rows[2].state, "HELD");
    let event: Value = app
        .get_as(&format!("/events/{eid}"), &organizer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(event["performances"][0]["layout_version"], 1);

    // Blocking the free seats still works.
    let response = patch_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &json!({"block": ["A-1-1"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn block_and_unblock_are_all_or_nothing() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = organizer.access_token.as_str();
    let (eid, pid) = event(&app, &organizer, 100).await;
    put_seats(&app, token, &eid, &pid, &one_row("A", "R", 5)).await;

    let response = patch_seats(
        &app,
        token,
        &eid,
        &pid,
        &json!({"block": ["A-1-1", "A-1-2"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"blocked": 2, "unblocked": 0})
    );

    // A-1-3 is free but A-1-1 is already blocked: nothing changes.
    let problem = assert_problem(
        patch_seats(
            &app,
            token,
            &eid,
            &pid,
            &json!({"block": ["A-1-3", "A-1-1"]}),
        )
        .await,
        StatusCode::CONFLICT,
        "seat_unavailable",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("A-1-1")
    );
    assert_eq!(
        problem["errors"],
        json!([{"field": "block", "code": "blocked", "message": "A-1-1"}])
    );
    // Unblocking a free seat alongside a blocked one: nothing changes either.
    force_state(&app, &pid, "A-1-5", "HELD").await;
    let problem = assert_problem(
        patch_seats(
            &app,
            token,
            &eid,
            &pid,
            &json!({"unblock": ["A-1-2", "A-1-4"], "block": ["A-1-5"]}),
        )
        .await,
        StatusCode::CONFLICT,
        "seat_unavailable",
    )
    .await;
    assert_eq!(
        problem["errors"],
        json!([{"field": "block", "code": "held", "message": "A-1-5"},
               {"field": "unblock", "code": "available", "message": "A-1-4"}])
    );
    assert_eq!(
        state_codes(&app, Some(token), &eid, &pid).await,
        [3, 3, 0, 0, 1]
    );

    let problem = assert_problem(
        patch_seats(
            &app,
            token,
            &eid,
            &pid,
            &json!({"block": ["A-1-3", "Z-9-9", "a-1-4"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem["errors"],
        json!([{"field": "block", "code": "unknown_seat", "message": "Z-9-9"},
               {"field": "block", "code": "unknown_seat", "message": "a-1-4"}])
    );
    assert_problem(
        patch_seats(
            &app,
            token,
            &eid,
            &pid,
            &json!({"block": ["A-1-3"], "unblock": ["A-1-3"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        patch_seats(&app, token, &eid, &pid, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let response = patch_seats(
        &app,
        token,
        &eid,
        &pid,
        &json!({"block": ["A-1-3", "A-1-4", "A-1-3"], "unblock": ["A-1-1"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("json"),
        json!({"blocked": 2, "unblocked": 1})
    );
    assert_eq!(
        state_codes(&app, Some(token), &eid, &pid).await,
        [0, 3, 3, 3, 1]
    );
    assert_eq!(audit_count(&app, "seat_map.blocks_changed").await, 2);
}

#[tokio::test]
async fn a_drafts_seat_map_is_seen_only_by_who_manages_it() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let other = app.user_with_role(Role::Organizer).await;
    let buyer = app.user().await;
    let admin = app.admin().await;
    let (eid, pid) = event(&app, &organizer, 100).await;
    put_seats(
        &app,
        &organizer.access_token,
        &eid,
        &pid,
        &one_row("A", "R", 3),
    )
    .await;
    let base = seats_path(&eid, &pid);
    for doc in ["layout", "state"] {
        let path = format!("{base}/{doc}");
        for token in [
            None,
            Some(buyer.access_token.as_str()),
            Some(other.access_token.as_str()),
        ] {
            assert_problem(
                get_doc(&app, token, &path).await,
                StatusCode::NOT_FOUND,
                "not_found",
            )
            .await;
        }
        for token in [&organizer.access_token, &admin.access_token] {
            let response = get_doc(&app, Some(token), &path).await;
            assert_eq!(response.status(), StatusCode::OK, "{doc}");
            assert!(
                response.headers()["cache-control"]
                    .to_str()
                    .expect("ascii")
                    .starts_with("private"),
                "{doc}"
            );
        }
    }
    // The event id must match the performance's.
    let (other_eid, _) = event(&app, &organizer, 10).await;
    assert_problem(
        get_doc(
            &app,
            Some(&organizer.access_token),
            &format!("{}/state", seats_path(&other_eid, &pid)),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // A performance without a seat map has no documents.
    let (bare_eid, bare_pid) = event(&app, &organizer, 10).await;
    for doc in ["layout", "state"] {
        assert_problem(
            get_doc(
                &app,
                Some(&organizer.access_token),
                &format!("{}/{doc}", seats_path(&bare_eid, &bare_pid)),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

#[tokio::test]
async fn capacity_cannot_drop_below_the_seat_map_and_deleting_the_performance_removes_it() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let token = organizer.access_token.as_str();
    let (eid, pid) = event(&app, &organizer, 100).await;
    put_seats(&app, token, &eid, &pid, &one_row("A", "R", 5)).await;
    let lower = |capacity: i64| {
        app.client
            .patch(app.url(&format!("/events/{eid}/performances/{pid}")))
            .bearer_auth(token)
            .json(&json!({"capacity": capacity}))
            .send()
    };
    assert_problem(
        lower(4).await.expect("request"),
        StatusCode::CONFLICT,
        "capacity_below_seats",
    )
    .await;
    assert_eq!(lower(5).await.expect("request").status(), StatusCode::OK);

    let deleted = app
        .client
        .delete(app.url(&format!("/events/{eid}/performances/{pid}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let layouts = boxoffice::db::entities::seat_layouts::Entity::find()
        .filter(boxoffice::db::entities::seat_layouts::Column::PerformanceId.eq(pid.as_str()))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(layouts, 0);
    assert_problem(
        get_doc(
            &app,
            Some(token),
            &format!("{}/state", seats_path(&eid, &pid)),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
