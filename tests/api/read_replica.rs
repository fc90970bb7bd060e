//! `DATABASE_READ_URL`: anonymous catalog reads and organizer reports go to the replica; a buyer's
//! own orders and every write stay on the primary. The "replica" here is a second database that
//! receives no replication, so where a read went shows in what it finds.

use boxoffice::config::ServiceUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Spawn, TestApp, TestDb},
    shop::{self, Shop},
};

async fn app_with_a_replica_that_lags_forever() -> (TestApp, TestDb) {
    let replica = TestDb::create().await;
    let url = ServiceUrl::parse(&replica.url).expect("url");
    let conn = boxoffice::db::connect(&url, Some(2))
        .await
        .expect("replica");
    // A real replica gets its schema through replication.
    boxoffice::db::migration::run(&conn, &url)
        .await
        .expect("schema");
    let _ = conn.close().await;
    let app = TestApp::spawn_with(Spawn {
        database_read_url: Some(replica.url.clone()),
        ..Spawn::default()
    })
    .await;
    (app, replica)
}

#[tokio::test]
async fn anonymous_catalog_reads_come_from_the_replica_and_signed_in_reads_from_the_primary() {
    let (app, _replica) = app_with_a_replica_that_lags_forever().await;
    let shop = Shop::open(&app).await;
    let path = format!("/events/{}", shop.event_id);

    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    let list: Value = app.get("/events").await.json().await.expect("json");
    assert_eq!(list["items"], json!([]));

    let own = app.get_as(&path, &shop.organizer.access_token).await;
    assert_eq!(own.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_buyers_own_order_is_read_from_the_primary_and_the_sales_report_from_the_replica() {
    let (app, _replica) = app_with_a_replica_that_lags_forever().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;

    let mine = app
        .get_as(
            &format!("/orders/{}", shop::id(&order)),
            &buyer.access_token,
        )
        .await;
    assert_eq!(mine.status(), StatusCode::OK);

    let report: Value = app
        .get_as(
            &format!("/events/{}/sales", shop.event_id),
            &shop.organizer.access_token,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(report["products"], json!([]), "{report}");
}
