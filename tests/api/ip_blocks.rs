use boxoffice::infra::clock::Clock;
use std::net::IpAddr;

use boxoffice::{
    db::entities::login_attempts,
    infra::clock::to_db,
    security::ip_blocks::{self, BlockSource},
};
use reqwest::{Response, StatusCode};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    admin_users::{delete_as, get_json, user_id, wait_until_peer_listens},
    helpers::{Spawn, TestApp, assert_problem, eventually},
};

/// Requests through a trusted proxy on 127.0.0.1 that says who the client is.
fn behind_proxy() -> Spawn {
    Spawn {
        configure: |c| c.trusted_proxies = "127.0.0.1/32".into(),
        ..Spawn::default()
    }
}

async fn get_from(app: &TestApp, path: &str, client_ip: &str) -> Response {
    app.client
        .get(app.url(path))
        .header("x-forwarded-for", client_ip)
        .send()
        .await
        .expect("request")
}

async fn block(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post_as("/admin/ip-blocks", token, body).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

#[tokio::test]
async fn a_blocked_network_is_refused_on_every_instance_while_health_checks_pass() {
    let first = TestApp::spawn_with(behind_proxy()).await;
    let second = first.spawn_peer_with(behind_proxy()).await;
    wait_until_peer_listens(&first, &second).await;
    let admin = first.admin().await;

    let created = block(
        &first,
        &admin.access_token,
        &json!({"cidr": "203.0.113.0/24", "reason": "credential stuffing"}),
    )
    .await;
    assert_eq!(created["cidr"], "203.0.113.0/24");
    assert_eq!(created["source"], "MANUAL");
    assert_eq!(created["active"], true);
    assert!(created["expires_at"].is_null());
    let id = created["id"].as_str().expect("id").to_owned();

    // This instance applied it before answering.
    for path in ["/auth/me", "/openapi.json", "/no-such-page"] {
        assert_problem(
            get_from(&first, path, "203.0.113.9").await,
            StatusCode::FORBIDDEN,
            "ip_blocked",
        )
        .await;
    }
    let login = first
        .client
        .post(first.url("/auth/login"))
        .header("x-forwarded-for", "203.0.113.200")
        .json(&json!({"email": admin.email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_problem(login, StatusCode::FORBIDDEN, "ip_blocked").await;
    eventually("the peer refuses the blocked network", async || {
        get_from(&second, "/openapi.json", "203.0.113.9")
            .await
            .status()
            == StatusCode::FORBIDDEN
    })
    .await;
    assert_problem(
        get_from(&second, "/openapi.json", "203.0.113.9").await,
        StatusCode::FORBIDDEN,
        "ip_blocked",
    )
    .await;
    for app in [&first, &second] {
        for path in ["/healthz", "/readyz"] {
            assert_eq!(
                get_from(app, path, "203.0.113.9").await.status(),
                StatusCode::OK,
                "{path}"
            );
        }
        // Neighbours outside the network are not affected, nor is the IPv4-mapped form missed.
        assert_eq!(
            get_from(app, "/openapi.json", "203.0.114.1").await.status(),
            StatusCode::OK
        );
        assert_eq!(
            get_from(app, "/openapi.json", "::ffff:203.0.113.9")
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
    }

    let lifted = delete_as(
        &first,
        &format!("/admin/ip-blocks/{id}"),
        &admin.access_token,
    )
    .await;
    assert_eq!(lifted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get_from(&first, "/openapi.json", "203.0.113.9")
            .await
            .status(),
        StatusCode::OK
    );
    eventually("the peer lifts the block", async || {
        get_from(&second, "/openapi.json", "203.0.113.9")
            .await
            .status()
            == StatusCode::OK
    })
    .await;
    let active = get_json(&first, "/admin/ip-blocks", &admin.access_token).await;
    assert!(
        active["items"].as_array().expect("items").is_empty(),
        "{active}"
    );
    let all = get_json(&first, "/admin/ip-blocks?state=ALL", &admin.access_token).await;
    assert_eq!(all["items"][0]["id"], id.as_str());
    assert_eq!(all["items"][0]["active"], false);
    assert!(all["items"][0]["deleted_at"].is_string());
}

#[tokio::test]
async fn an_expired_block_stops_applying_by_the_clock() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    let admin = app.admin().await;
    let expires = app.clock.now() + Duration::minutes(10);
    let created = block(
        &app,
        &admin.access_token,
        &json!({"cidr": "198.51.100.7", "reason": "ten minutes out", "expires_at": rfc3339(expires)}),
    )
    .await;
    assert_eq!(
        created["cidr"], "198.51.100.7/32",
        "a bare address is one host"
    );
    assert_eq!(created["expires_at"], rfc3339(expires).as_str());
    assert_eq!(
        get_from(&app, "/openapi.json", "198.51.100.7")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    app.clock.advance(Duration::minutes(10));
    assert_eq!(
        get_from(&app, "/openapi.json", "198.51.100.7")
            .await
            .status(),
        StatusCode::OK
    );
    let active = get_json(&app, "/admin/ip-blocks", &admin.access_token).await;
    assert!(
        active["items"].as_array().expect("items").is_empty(),
        "{active}"
    );
    let all = get_json(&app, "/admin/ip-blocks?state=ALL", &admin.access_token).await;
    assert_eq!(all["items"][0]["active"], false);
}

#[tokio::test]
async fn invalid_networks_reasons_and_expiries_are_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let past = rfc3339(app.clock.now() - Duration::minutes(1));
    let cases = [
        (
            json!({"cidr": "not an address", "reason": "x"}),
            "cidr",
            "invalid_cidr",
        ),
        (
            json!({"cidr": "10.0.0.0/33", "reason": "x"}),
            "cidr",
            "invalid_cidr",
        ),
        (
            json!({"cidr": "10.0.0/8", "reason": "x"}),
            "cidr",
            "invalid_cidr",
        ),
        (
            json!({"cidr": "0.0.0.0/0", "reason": "x"}),
            "cidr",
            "too_broad",
        ),
        (json!({"cidr": "::/0", "reason": "x"}), "cidr", "too_broad"),
        (
            json!({"cidr": "203.0.113.0/24", "reason": "  "}),
            "reason",
            "required",
        ),
        (
            json!({"cidr": "203.0.113.0/24", "reason": "x".repeat(256)}),
            "reason",
            "too_long",
        ),
        (
            json!({"cidr": "203.0.113.0/24", "reason": "a\u{0}b"}),
            "reason",
            "invalid_characters",
        ),
        (
            json!({"cidr": "203.0.113.0/24", "reason": "x", "expires_at": past}),
            "expires_at",
            "in_the_past",
        ),
    ];
    for (body, field, code) in cases {
        let response = app
            .post_as("/admin/ip-blocks", &admin.access_token, &body)
            .await;
        let problem = assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{body}: {problem}");
    }
    for body in [
        json!({"cidr": "203.0.113.0/24"}),
        json!({"cidr": "203.0.113.0/24", "reason": "x", "expires_at": "tomorrow"}),
        json!({"cidr": "203.0.113.0/24", "reason": "x", "extra": 1}),
    ] {
        let response = app
            .post_as("/admin/ip-blocks", &admin.access_token, &body)
            .await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    // A 255-character reason is fine.
    block(
        &app,
        &admin.access_token,
        &json!({"cidr": "2001:db8::1", "reason": "가".repeat(255)}),
    )
    .await;
    let listed = get_json(&app, "/admin/ip-blocks", &admin.access_token).await;
    assert_eq!(listed["items"][0]["cidr"], "2001:db8::1/128");
}

#[tokio::test]
async fn an_admin_cannot_block_their_own_address() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    let admin = app.admin().await;
    let from_outside = app
        .client
        .post(app.url("/admin/ip-blocks"))
        .bearer_auth(&admin.access_token)
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"cidr": "203.0.0.0/16", "reason": "oops"}))
        .send()
        .await
        .expect("request");
    assert_problem(from_outside, StatusCode::CONFLICT, "would_block_self").await;
    let local = app
        .post_as(
            "/admin/ip-blocks",
            &admin.access_token,
            &json!({"cidr": "127.0.0.0/8", "reason": "oops"}),
        )
        .await;
    assert_problem(local, StatusCode::CONFLICT, "would_block_self").await;
    let listed = get_json(&app, "/admin/ip-blocks?state=ALL", &admin.access_token).await;
    assert!(listed["items"].as_array().expect("items").is_empty());
}

#[tokio::test]
async fn creating_and_lifting_a_block_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let admin_id = user_id(&app, &admin.access_token).await;
    let created = block(
        &app,
        &admin.access_token,
        &json!({"cidr": "192.0.2.0/24", "reason": "scraper"}),
    )
    .await;
    let id = created["id"].as_str().expect("id");
    assert_eq!(created["created_by"], admin_id.as_str());
    let lifted = delete_as(&app, &format!("/admin/ip-blocks/{id}"), &admin.access_token).await;
    assert_eq!(lifted.status(), StatusCode::NO_CONTENT);

    let log = get_json(
        &app,
        &format!("/admin/audit-log?target_id={id}"),
        &admin.access_token,
    )
    .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["admin.ip_block.delete", "admin.ip_block.create"]);
    assert_eq!(log["items"][1]["actor_user_id"], admin_id.as_str());
    assert_eq!(log["items"][1]["detail"]["cidr"], "192.0.2.0/24");
    assert_eq!(log["items"][1]["detail"]["reason"], "scraper");
}

#[tokio::test]
async fn lifting_an_unknown_or_already_lifted_block_is_not_found() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let unknown = delete_as(
        &app,
        "/admin/ip-blocks/0190c0e1-3333-7000-8000-000000000004",
        &admin.access_token,
    )
    .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let created = block(
        &app,
        &admin.access_token,
        &json!({"cidr": "192.0.2.1", "reason": "x"}),
    )
    .await;
    let path = format!("/admin/ip-blocks/{}", created["id"].as_str().expect("id"));
    assert_eq!(
        delete_as(&app, &path, &admin.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        delete_as(&app, &path, &admin.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_block_list_pages_newest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for n in 1..=3 {
        app.clock.advance(Duration::seconds(1));
        block(
            &app,
            &admin.access_token,
            &json!({"cidr": format!("192.0.2.{n}"), "reason": "x"}),
        )
        .await;
    }
    let first = get_json(&app, "/admin/ip-blocks?limit=2", &admin.access_token).await;
    assert_eq!(first["items"][0]["cidr"], "192.0.2.3/32");
    assert_eq!(first["items"][1]["cidr"], "192.0.2.2/32");
    let cursor = first["next_cursor"].as_str().expect("more");
    let second = get_json(
        &app,
        &format!("/admin/ip-blocks?limit=2&cursor={cursor}"),
        &admin.access_token,
    )
    .await;
    assert_eq!(second["items"].as_array().expect("items").len(), 1);
    assert_eq!(second["items"][0]["cidr"], "192.0.2.1/32");
    assert!(second["next_cursor"].is_null());
}

async fn failed_attempts(app: &TestApp, ip: &str, count: usize, at: OffsetDateTime) {
    for _ in 0..count {
        login_attempts::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            user_id: Set(None),
            email_normalized: Set(Some("victim@example.com".into())),
            ip: Set(Some(ip.into())),
            ip_prefix: Set(None),
            user_agent: Set(None),
            method: Set("PASSWORD".into()),
            result: Set("INVALID_CREDENTIALS".into()),
            created_at: Set(to_db(at)),
        }
        .insert(&app.state.db)
        .await
        .expect("insert attempt");
    }
}

fn auto_blocking() -> Spawn {
    Spawn {
        configure: |c| {
            c.trusted_proxies = "127.0.0.1/32".into();
            c.ip_auto_block_failures = 5;
            c.ip_auto_block_minutes = 20;
        },
        ..Spawn::default()
    }
}

#[tokio::test]
async fn a_burst_of_failed_sign_ins_blocks_the_address_for_a_while() {
    let app = TestApp::spawn_with(auto_blocking()).await;
    let admin = app.admin().await;
    let now = app.clock.now();
    let ip: IpAddr = "203.0.113.50".parse().expect("ip");
    // Old failures, successes and other addresses do not count.
    failed_attempts(&app, "203.0.113.50", 3, now - Duration::minutes(16)).await;
    failed_attempts(&app, "203.0.113.51", 3, now).await;
    failed_attempts(&app, "203.0.113.50", 4, now).await;
    successful_attempt("203.0.113.50", now)
        .insert(&app.state.db)
        .await
        .expect("insert");
    assert!(
        ip_blocks::maybe_auto_block(&app.state, ip, now)
            .await
            .expect("check")
            .is_none(),
        "four failures are below the threshold"
    );

    failed_attempts(&app, "203.0.113.50", 1, now).await;
    let created = ip_blocks::maybe_auto_block(&app.state, ip, now)
        .await
        .expect("check")
        .expect("blocked at the threshold");
    assert_eq!(created.cidr, "203.0.113.50/32");
    assert_eq!(created.source, BlockSource::Auto.as_str());
    assert_eq!(created.expires_at, Some(to_db(now + Duration::minutes(20))));
    assert_problem(
        get_from(&app, "/openapi.json", "203.0.113.50").await,
        StatusCode::FORBIDDEN,
        "ip_blocked",
    )
    .await;
    assert_eq!(
        get_from(&app, "/openapi.json", "203.0.113.51")
            .await
            .status(),
        StatusCode::OK
    );

    // Already blocked: more failures make no second block.
    failed_attempts(&app, "203.0.113.50", 1, now).await;
    assert!(
        ip_blocks::maybe_auto_block(&app.state, ip, now)
            .await
            .expect("check")
            .is_none()
    );
    let listed = get_json(&app, "/admin/ip-blocks", &admin.access_token).await;
    let blocks = listed["items"].as_array().expect("items");
    assert_eq!(blocks.len(), 1, "{listed}");
    assert_eq!(blocks[0]["source"], "AUTO");
    assert!(blocks[0]["created_by"].is_null());
    let events = get_json(
        &app,
        "/admin/security/events?kind=IP_AUTO_BLOCKED",
        &admin.access_token,
    )
    .await;
    let event = &events["items"][0];
    assert_eq!(event["ip"], "203.0.113.50");
    assert_eq!(event["severity"], "HIGH");
    assert_eq!(event["detail"]["failures"], 5);
    assert_eq!(event["detail"]["block_id"], blocks[0]["id"]);

    // The block ends by itself.
    app.clock.advance(Duration::minutes(20));
    assert_eq!(
        get_from(&app, "/openapi.json", "203.0.113.50")
            .await
            .status(),
        StatusCode::OK
    );
}

fn successful_attempt(ip: &str, at: OffsetDateTime) -> login_attempts::ActiveModel {
    login_attempts::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(None),
        email_normalized: Set(None),
        ip: Set(Some(ip.into())),
        ip_prefix: Set(None),
        user_agent: Set(None),
        method: Set("PASSWORD".into()),
        result: Set("SUCCESS".into()),
        created_at: Set(to_db(at)),
    }
}

#[tokio::test]
async fn instances_crossing_the_threshold_together_make_one_block() {
    let first = TestApp::spawn_with(auto_blocking()).await;
    let second = first.spawn_peer_with(auto_blocking()).await;
    let now = first.clock.now();
    failed_attempts(&first, "198.51.100.66", 6, now).await;
    let ip: IpAddr = "198.51.100.66".parse().expect("ip");
    let calls = (0..6).map(|n| {
        let state = if n % 2 == 0 {
            first.state.clone()
        } else {
            second.state.clone()
        };
        async move {
            ip_blocks::maybe_auto_block(&state, ip, now)
                .await
                .expect("check")
        }
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(
        results.iter().filter(|r| r.is_some()).count(),
        1,
        "{results:?}"
    );
}

#[tokio::test]
async fn automatic_blocking_is_off_unless_configured() {
    let app = TestApp::spawn().await;
    let now = app.clock.now();
    failed_attempts(&app, "198.51.100.77", 100, now).await;
    let ip: IpAddr = "198.51.100.77".parse().expect("ip");
    assert!(
        ip_blocks::maybe_auto_block(&app.state, ip, now)
            .await
            .expect("check")
            .is_none()
    );
    assert!(!app.state.ip_blocks.is_blocked(ip, now));
}

#[tokio::test]
async fn a_new_instance_starts_with_the_blocks_already_stored() {
    let app = TestApp::spawn().await;
    let now = app.clock.now();
    ip_blocks::block(
        &app.state,
        "192.0.2.0/24",
        "from a script",
        BlockSource::Manual,
        None,
        None,
    )
    .await
    .expect("block");
    let peer = app.spawn_peer().await;
    // A fresh instance loads the blocks at start.
    assert!(
        peer.state
            .ip_blocks
            .is_blocked("192.0.2.9".parse().expect("ip"), now)
    );
}
