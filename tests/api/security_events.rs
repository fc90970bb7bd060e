use boxoffice::infra::clock::Clock;
use boxoffice::security::events::{self, EventKind, Severity};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, format_description::well_known::Rfc3339};

use crate::{
    admin_users::{get_json, user_id},
    helpers::{TestApp, assert_problem},
};

fn kinds(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

/// Records one event at the app's current time, then moves the clock a second on.
async fn record(
    app: &TestApp,
    kind: EventKind,
    severity: Severity,
    user_id: Option<&str>,
    ip: Option<&str>,
) {
    events::record(
        &app.state.db,
        app.clock.now(),
        kind,
        severity,
        user_id,
        ip,
        json!({"note": kind.as_str()}),
    )
    .await
    .expect("record");
    app.clock.advance(Duration::seconds(1));
}

#[tokio::test]
async fn security_events_are_listed_newest_first_with_severity_and_time() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let started = app.clock.now();
    record(
        &app,
        EventKind::FailureBurst,
        Severity::Medium,
        None,
        Some("203.0.113.9"),
    )
    .await;
    record(&app, EventKind::AccountLocked, Severity::High, None, None).await;

    let body = get_json(&app, "/admin/security/events", &admin.access_token).await;
    assert_eq!(kinds(&body), ["ACCOUNT_LOCKED", "FAILURE_BURST"]);
    let oldest = &body["items"][1];
    assert_eq!(oldest["severity"], "MEDIUM");
    assert_eq!(oldest["ip"], "203.0.113.9");
    assert_eq!(oldest["detail"], json!({"note": "FAILURE_BURST"}));
    assert_eq!(
        oldest["created_at"],
        started.format(&Rfc3339).expect("format").as_str()
    );
    assert!(body["next_cursor"].is_null());
}

#[tokio::test]
async fn security_events_filter_by_kind_minimum_severity_user_address_and_time() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let victim = user_id(&app, &user.access_token).await;
    record(
        &app,
        EventKind::NewIpPrefix,
        Severity::Low,
        Some(&victim),
        Some("198.51.100.1"),
    )
    .await;
    let middle = app.clock.now();
    record(
        &app,
        EventKind::AccountManyIps,
        Severity::Medium,
        Some(&victim),
        None,
    )
    .await;
    record(
        &app,
        EventKind::FailureBurst,
        Severity::High,
        None,
        Some("203.0.113.9"),
    )
    .await;
    record(
        &app,
        EventKind::FailureBurst,
        Severity::Low,
        None,
        Some("203.0.113.10"),
    )
    .await;

    let cases = [
        ("kind=FAILURE_BURST", vec!["FAILURE_BURST", "FAILURE_BURST"]),
        (
            "severity=LOW",
            vec![
                "FAILURE_BURST",
                "FAILURE_BURST",
                "ACCOUNT_MANY_IPS",
                "NEW_IP_PREFIX",
            ],
        ),
        ("severity=MEDIUM", vec!["FAILURE_BURST", "ACCOUNT_MANY_IPS"]),
        ("severity=HIGH", vec!["FAILURE_BURST"]),
        ("kind=FAILURE_BURST&severity=MEDIUM", vec!["FAILURE_BURST"]),
        (
            &format!("user_id={victim}") as &str,
            vec!["ACCOUNT_MANY_IPS", "NEW_IP_PREFIX"],
        ),
        ("ip=203.0.113.9", vec!["FAILURE_BURST"]),
        ("ip=::ffff:198.51.100.1", vec!["NEW_IP_PREFIX"]),
        ("kind=REFRESH_TOKEN_REUSE", vec![]),
    ]
    .map(|(q, expected)| (q.to_owned(), expected));
    for (query, expected) in cases {
        let body = get_json(
            &app,
            &format!("/admin/security/events?{query}"),
            &admin.access_token,
        )
        .await;
        assert_eq!(kinds(&body), expected, "{query}");
    }
    let since = middle.format(&Rfc3339).expect("format");
    let body = app
        .client
        .get(app.url("/admin/security/events"))
        .query(&[("since", since.as_str())])
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(body.status(), StatusCode::OK);
    let body: Value = body.json().await.expect("json");
    assert_eq!(
        kinds(&body),
        ["FAILURE_BURST", "FAILURE_BURST", "ACCOUNT_MANY_IPS"]
    );
    // The same instant in another offset means the same thing.
    let shifted = (middle.to_offset(time::macros::offset!(+9)))
        .format(&Rfc3339)
        .expect("format");
    let body: Value = app
        .client
        .get(app.url("/admin/security/events"))
        .query(&[("since", shifted.as_str())])
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(kinds(&body).len(), 3, "{body}");
}

#[tokio::test]
async fn security_events_page_with_a_cursor() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for _ in 0..3 {
        record(&app, EventKind::FailureBurst, Severity::Medium, None, None).await;
    }
    // Two events in the same microsecond are still ordered and neither is skipped.
    for _ in 0..2 {
        events::record(
            &app.state.db,
            app.clock.now(),
            EventKind::AccountLocked,
            Severity::High,
            None,
            None,
            json!({}),
        )
        .await
        .expect("record");
    }
    let mut seen = Vec::new();
    let mut path = "/admin/security/events?limit=2".to_owned();
    loop {
        let page = get_json(&app, &path, &admin.access_token).await;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["id"].as_str().expect("id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/admin/security/events?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "no repeats");
    let all = get_json(
        &app,
        "/admin/security/events?limit=200",
        &admin.access_token,
    )
    .await;
    let all_ids: Vec<String> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(seen, all_ids, "pages concatenate to the whole list");
}

#[tokio::test]
async fn a_reused_refresh_token_is_recorded_as_a_security_event() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let id = user_id(&app, &user.access_token).await;
    let body = json!({"refresh_token": user.refresh_token});
    assert_eq!(
        app.post("/auth/refresh", &body).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.post("/auth/refresh", &body).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;

    let events = get_json(
        &app,
        "/admin/security/events?kind=REFRESH_TOKEN_REUSE",
        &admin.access_token,
    )
    .await;
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{events}");
    assert_eq!(items[0]["severity"], "HIGH");
    assert_eq!(items[0]["user_id"], id.as_str());
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert!(items[0]["detail"]["session_id"].is_string());
}

#[tokio::test]
async fn bad_security_event_filters_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for query in [
        "kind=NOPE",
        "severity=URGENT",
        "severity=high",
        "ip=not-an-ip",
        "since=yesterday",
        "since=2025-13-01T00:00:00Z",
        "limit=0",
        "cursor=zzz",
    ] {
        let response = app
            .get_as(
                &format!("/admin/security/events?{query}"),
                &admin.access_token,
            )
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}
