//! The command line, run as a real process.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Spawn, TestApp, TestDb};

fn boxoffice(db_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BOXOFFICE_DATABASE_URL", db_url)
        .env("RUST_LOG", "error");
    cmd
}

#[tokio::test]
async fn a_bad_configuration_value_stops_start_up_with_one_line_naming_it() {
    let db = TestDb::create().await;
    let output = boxoffice(&db.url)
        .env("BOXOFFICE_DATABASE_POOL_MAX", "many")
        .arg("migrate")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_POOL_MAX"), "{stderr}");

    let output = boxoffice(&db.url)
        .env("BOXOFFICE_NO_SUCH_KEY", "1")
        .arg("migrate")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no_such_key"));

    let output = boxoffice(&db.url)
        .env("BOXOFFICE_RATE_LIMITS", "off")
        .arg("migrate")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("RATE_LIMITS"));
}

#[tokio::test]
async fn user_create_makes_a_verified_account_that_can_sign_in() {
    let db = TestDb::create().await;
    let url = db.url.clone();
    let output = boxoffice(&url).args(["migrate"]).output().expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = boxoffice(&url)
        .args([
            "user",
            "create",
            "--email",
            "boss@example.com",
            "--password",
            "a long admin passphrase",
            "--role",
            "admin",
        ])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let app = TestApp::spawn_on(db, Spawn::default()).await;
    let response = app
        .post(
            "/auth/login",
            &json!({"email": "boss@example.com", "password": "a long admin passphrase"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.expect("json");
    let me: serde_json::Value = app
        .get_as("/auth/me", tokens["access_token"].as_str().expect("token"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "ADMIN");
    assert_eq!(me["email_verified"], true);
}

#[tokio::test]
async fn user_create_refuses_a_weak_password() {
    let db = TestDb::create().await;
    let output = boxoffice(&db.url)
        .args([
            "user",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "password123",
            "--role",
            "USER",
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("password"));
}

#[tokio::test]
async fn bench_seed_needs_bench_mode_and_then_writes_usable_tokens() {
    let db = TestDb::create().await;
    let out = std::env::temp_dir().join(format!("tokens-{}.jsonl", uuid::Uuid::now_v7().simple()));
    let refused = boxoffice(&db.url)
        .args(["bench", "seed", "--users", "2", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    assert!(!refused.status.success());
    let output = boxoffice(&db.url)
        .env("BOXOFFICE_BENCH_MODE", "true")
        .args(["bench", "seed", "--users", "3", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("tokens file");
    let _ = std::fs::remove_file(&out);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let app = TestApp::spawn_on(db, Spawn::default()).await;
    let me = app
        .get_as(
            "/auth/me",
            lines[0]["access_token"].as_str().expect("token"),
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let refreshed = app
        .post(
            "/auth/refresh",
            &json!({"refresh_token": lines[1]["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn demo_seeding_creates_three_accounts_and_a_catalog_once() {
    let app = TestApp::spawn().await;
    boxoffice::demo::seed(&app.state).await.expect("seed");
    boxoffice::demo::seed(&app.state)
        .await
        .expect("second seed is a no-op");
    use sea_orm::{EntityTrait, PaginatorTrait};
    let count = boxoffice::db::entities::users::Entity::find()
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(count, 3);
    let events: serde_json::Value = app.get("/events").await.json().await.expect("json");
    let items = events["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "a concert and a small show, both published");
    let concert = items
        .iter()
        .find(|e| e["performances"].as_array().is_some_and(|p| p.len() == 2))
        .expect("two-night concert");
    assert_eq!(
        concert["sale_state"], "UPCOMING",
        "sales open a few minutes after start"
    );
    let products: serde_json::Value = app
        .get(&format!(
            "/products?event_id={}&limit=100",
            concert["id"].as_str().expect("id")
        ))
        .await
        .json()
        .await
        .expect("json");
    let types: Vec<&str> = products["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["type"].as_str())
        .collect();
    assert!(types.iter().filter(|t| **t == "MERCH").count() >= 3);
    assert!(types.iter().filter(|t| **t == "PACKAGE").count() >= 2);
}

#[tokio::test]
async fn the_demo_buyer_buys_a_jazz_ticket_with_the_test_gateway_end_to_end() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::spawn().await;
    boxoffice::demo::seed(&app.state).await.expect("seed");
    let buyer = boxoffice::db::entities::users::Entity::find()
        .filter(boxoffice::db::entities::users::Column::EmailNormalized.eq("buyer@boxoffice.local"))
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("demo buyer");
    let buyer = app.session_for(&buyer.id, &buyer.email).await;
    let events: serde_json::Value = app.get("/events?q=재즈").await.json().await.expect("json");
    let jazz = events["items"][0]["id"]
        .as_str()
        .expect("jazz night")
        .to_owned();
    let products: serde_json::Value = app
        .get(&format!("/products?event_id={jazz}"))
        .await
        .json()
        .await
        .expect("json");
    let ticket = products["items"][0]["id"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let order = crate::shop::place(
        &app,
        &buyer,
        serde_json::json!([{"product_id": ticket, "quantity": 2}]),
    )
    .await;
    let paid = crate::shop::confirm(&app, &buyer, order["id"].as_str().expect("id")).await;
    assert_eq!(paid["status"], "CONFIRMED");
    let tickets: serde_json::Value = app
        .get_as(
            &format!("/orders/{}/tickets", order["id"].as_str().expect("id")),
            &buyer.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tickets.as_array().map(Vec::len), Some(2), "{tickets}");
}
