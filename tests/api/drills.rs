//! Failure drills: a dependency goes away in the middle of traffic; people get clear answers, no
//! 500s, and the service comes back on its own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    admin_users::{get_json, user_id},
    helpers::{
        FlakyProxy, Spawn, TestApp, TestDb, TestUser, assert_problem, eventually, mysql_base_url,
    },
    shop::{self, Shop},
};

#[tokio::test]
async fn with_the_database_unreachable_requests_get_clear_503s_and_the_service_recovers_without_a_restart()
 {
    let Some(Paid {
        app,
        proxy,
        ticket,
        buyer,
        order: paid,
    }) = one_paid_order_behind_a_proxy().await
    else {
        return;
    };

    proxy.cut();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["database"], false);
    assert_problem(
        app.get_as("/orders", &buyer.access_token).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    let order = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [{"product_id": ticket, "quantity": 1}]}),
        )
        .await;
    assert_problem(
        order,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;

    proxy.restore();
    eventually("readiness", || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    let mine: Value = app
        .get_as("/orders", &buyer.access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        mine["items"][0]["id"], paid["id"],
        "the paid order survived the outage"
    );
    let again = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_eq!(again["status"], "PENDING");
    shop::assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn a_write_after_the_database_dropped_every_connection_is_served_on_a_fresh_one() {
    let Some(Paid {
        app,
        proxy,
        ticket,
        buyer,
        ..
    }) = one_paid_order_behind_a_proxy().await
    else {
        return;
    };

    // Every pooled connection is now dead, and those used a moment ago are lent without a ping:
    // the checkout's BEGIN finds that out and moves on to a live connection instead of a 503.
    proxy.drop_connections().await;
    let again = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert_eq!(again["status"], "PENDING");
    shop::confirm(&app, &buyer, &shop::id(&again)).await;
    shop::assert_stock_consistent(&app).await;
}

#[tokio::test]
async fn after_the_database_dropped_every_connection_at_most_one_read_fails() {
    let Some(Paid {
        app, proxy, buyer, ..
    }) = one_paid_order_behind_a_proxy().await
    else {
        return;
    };
    // Every pooled connection has just been used, so each would be lent without a ping.
    futures::future::join_all((0..5).map(|_| app.get_as("/orders", &buyer.access_token))).await;
    proxy.drop_connections().await;

    // The first read may find its connection dead (503); from then on the pool checks each
    // connection before lending it, so no other read fails on a connection dead since.
    let mut unavailable = 0;
    for _ in 0..10 {
        let response = app.get_as("/orders", &buyer.access_token).await;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("{other}"),
        }
    }
    assert!(unavailable <= 1, "{unavailable} reads failed");
}

#[tokio::test]
async fn an_order_whose_commit_answer_was_lost_is_answered_with_that_order_and_placed_once() {
    let Some(Paid {
        app,
        proxy,
        ticket,
        buyer,
        ..
    }) = one_paid_order_behind_a_proxy().await
    else {
        return;
    };
    let body = json!({"items": [{"product_id": ticket, "quantity": 2}]});
    let send = || app.post_as_with_key("/orders", &buyer.access_token, "commit-answer-lost", &body);

    // The order is committed, but the app hears only that its connection broke: instead of a
    // 503 (after which a retry would place a second order), it finds the order it placed.
    // The buyer's id is bound in the checkout transaction's statements (the order row).
    let buyer_id = user_id(&app, &buyer.access_token).await;
    proxy.lose_the_answer_to_the_commit_after(&buyer_id);
    let placed = send().await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.expect("json");
    assert!(proxy.trap_sprung(), "the commit's answer was really lost");
    let retry: Value = send().await.json().await.expect("json");
    assert_eq!(retry["id"], placed["id"]);
    let mine = get_json(&app, "/orders?status=PENDING", &buyer.access_token).await;
    assert_eq!(
        mine["items"].as_array().map(Vec::len),
        Some(1),
        "one order: {mine}"
    );
    shop::confirm(&app, &buyer, &shop::id(&placed)).await;

    // Without a key as well: the order the buyer is told about is the one that was placed.
    proxy.lose_the_answer_to_the_commit_after(&buyer_id);
    let unkeyed = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    assert!(proxy.trap_sprung(), "the commit's answer was really lost");
    let mine = get_json(&app, "/orders?status=PENDING", &buyer.access_token).await;
    assert_eq!(mine["items"][0]["id"], unkeyed["id"], "{mine}");
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    shop::assert_stock_consistent(&app).await;
}

/// An app whose database connections go through a [`FlakyProxy`], with a ticket on sale and a
/// buyer who has paid for one.
struct Paid {
    app: TestApp,
    proxy: FlakyProxy,
    ticket: String,
    buyer: TestUser,
    order: Value,
}

/// `None` on SQLite: an embedded file has no connections to lose, cut or drop, so these are
/// MariaDB drills.
async fn one_paid_order_behind_a_proxy() -> Option<Paid> {
    mysql_base_url()?;
    let db = TestDb::create().await;
    let proxy = FlakyProxy::start(&db.url).await;
    let app = TestApp::spawn_on(
        db,
        Spawn {
            database_url: Some(proxy.url.clone()),
            ..Spawn::default()
        },
    )
    .await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    shop::confirm(&app, &buyer, &shop::id(&order)).await;
    Some(Paid {
        app,
        proxy,
        ticket,
        buyer,
        order,
    })
}

/// A real `boxoffice serve` process over the test's database (and Redis, with its key prefix).
struct Process {
    child: tokio::process::Child,
    base: String,
}

async fn start_process(app: &TestApp) -> Process {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BOXOFFICE_DATABASE_URL", &app.db.url)
        .env("BOXOFFICE_LISTEN", "127.0.0.1:0")
        .env("BOXOFFICE_BENCH_MODE", "true")
        .env("BOXOFFICE_RATE_LIMITS", "off")
        .env("RUST_LOG", "error")
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(redis) = crate::helpers::redis_url() {
        cmd.env("BOXOFFICE_REDIS_URL", redis)
            .env("BOXOFFICE_REDIS_KEY_PREFIX", &app.key_prefix);
    }
    let mut child = cmd.spawn().expect("start boxoffice serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("boxoffice listening on ") {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        }
        panic!("the process ended before listening");
    })
    .await
    .expect("the process listens within a minute");
    Process { child, base }
}

/// What one buyer's attempt ended as.
#[derive(Debug, PartialEq)]
enum Outcome {
    Paid(String),
    Refused,
    Unknown,
}

async fn buy(client: &reqwest::Client, base: &str, token: &str, product: &str) -> Outcome {
    let post = |path: String, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let Ok(created) = post(
        "/orders".into(),
        json!({"items": [{"product_id": product, "quantity": 2}]}),
    )
    .await
    else {
        return Outcome::Unknown;
    };
    if created.status() == StatusCode::CONFLICT {
        return Outcome::Refused;
    }
    let Ok(order) = created.json::<Value>().await else {
        return Outcome::Unknown;
    };
    let id = order["id"].as_str().unwrap_or_default().to_owned();
    let paid = post(format!("/orders/{id}/pay"), json!({})).await;
    if !paid.is_ok_and(|r| r.status() == StatusCode::OK) {
        return Outcome::Unknown;
    }
    match post(
        format!("/orders/{id}/pay/confirm"),
        json!({"provider_payload": {"scenario": "SUCCESS"}}),
    )
    .await
    {
        Ok(r) if r.status() == StatusCode::OK => Outcome::Paid(id),
        _ => Outcome::Unknown,
    }
}

#[tokio::test]
async fn killing_an_instance_mid_sell_out_loses_no_paid_order_and_its_holds_return_by_expiry() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"order_hold_seconds": 60})).await;
    let ticket = shop.ticket(&app, 40).await;
    let mut doomed = start_process(&app).await;
    let mut buyers = app.buyers(21).await.into_iter();
    let client = reqwest::Client::new();
    let mut outcomes = Vec::new();

    // On the instance about to die: six buyers pay, five hold seats and have not paid yet.
    for buyer in buyers.by_ref().take(6) {
        let outcome = buy(&client, &doomed.base, &buyer.access_token, &ticket).await;
        assert!(matches!(outcome, Outcome::Paid(_)), "{outcome:?}");
        outcomes.push(outcome);
    }
    for buyer in buyers.by_ref().take(5) {
        let created = client
            .post(format!("{}/orders", doomed.base))
            .bearer_auth(&buyer.access_token)
            .json(&json!({"items": [{"product_id": ticket, "quantity": 2}]}))
            .send()
            .await
            .expect("order");
        assert_eq!(created.status(), StatusCode::CREATED);
    }

    // Then it dies while buyers are shopping on both instances.
    let mut attempts = tokio::task::JoinSet::new();
    for (i, buyer) in buyers.enumerate() {
        let base = if i % 3 == 0 {
            doomed.base.clone()
        } else {
            app.base.clone()
        };
        let (client, token, product) = (client.clone(), buyer.access_token.clone(), ticket.clone());
        attempts.spawn(async move { buy(&client, &base, &token, &product).await });
    }
    doomed.child.start_kill().expect("kill");
    outcomes.extend(attempts.join_all().await);
    eprintln!("outcomes: {outcomes:?}");

    use boxoffice::db::entities::orders;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    // Every purchase its buyer saw succeed is paid, whichever instance answered.
    for outcome in &outcomes {
        if let Outcome::Paid(id) = outcome {
            let row = orders::Entity::find_by_id(id.clone())
                .one(&app.state.db)
                .await
                .expect("read")
                .expect("the paid order exists");
            assert_eq!(row.status, "CONFIRMED", "{id}");
        }
    }
    let count = |status: &'static str| {
        let db = app.state.db.clone();
        async move {
            orders::Entity::find()
                .filter(orders::Column::Status.eq(status))
                .count(&db)
                .await
                .expect("count") as i64
        }
    };
    let held = count("PENDING").await;
    assert!(
        held >= 5,
        "the dead instance's holds are still held: {held}"
    );

    // They go back on sale when their orders expire (on the survivor), exactly once.
    app.clock.advance(time::Duration::seconds(120));
    boxoffice::orders::expiry::sweep(&app.state)
        .await
        .expect("sweep");
    assert_eq!(count("PENDING").await, 0, "no hold outlives its order");
    let confirmed = count("CONFIRMED").await;
    let paid = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Paid(_)))
        .count() as i64;
    assert!(confirmed >= paid, "paid {paid}, confirmed {confirmed}");
    assert!(
        confirmed * 2 <= 40,
        "never oversold: {confirmed} orders of 2"
    );
    let left = shop::remaining(&app, &shop.organizer.access_token, &ticket).await;
    assert_eq!(left, 40 - confirmed * 2, "the stock adds up");
    shop::assert_stock_consistent(&app).await;

    // The survivor sells what came back.
    assert!(left >= 2, "the expired holds are on sale again");
    let late = app.user().await;
    let order = shop::place(&app, &late, json!([{"product_id": ticket, "quantity": 2}])).await;
    shop::confirm(&app, &late, &shop::id(&order)).await;
}
