//! `DATABASE_READ_URL`: anonymous catalog reads and organizer reports go to the replica; a buyer's
//! own orders and every write stay on the primary. The first tests' "replica" is a second database
//! that receives no replication, so where a read went shows in what it finds; the rest run against
//! a real MariaDB replica when `BOXOFFICE_TEST_REPLICA_URL` is set (see below).

use boxoffice::config::ServiceUrl;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

use crate::{
    helpers::{Spawn, TestApp, TestDb, mysql_base_url},
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

// ---------------------------------------------------------------------------------------------
// A real replica: `scripts/mariadb-replica.sh start` runs a primary and a replica of it, and
// `BOXOFFICE_TEST_DATABASE_URL` (the primary, root) and `BOXOFFICE_TEST_REPLICA_URL` (the
// replica, a SELECT-only login) name them. Each test's database is created on the primary and
// reaches the replica through replication, schema and all; the tests wait for the replica with
// `MASTER_GTID_WAIT`, never with sleeps. Without `BOXOFFICE_TEST_REPLICA_URL` they are skipped.

/// An app whose `DATABASE_READ_URL` is the test database on the real replica.
struct Replicated {
    app: TestApp,
    /// The test database's name, the same on both servers.
    name: String,
    /// Root on the primary server.
    primary: DatabaseConnection,
    /// The SELECT-only login on the replica server.
    replica: DatabaseConnection,
}

impl Replicated {
    /// `None` (the test is skipped) when no replica is configured.
    async fn spawn() -> Option<Self> {
        let Some(replica_server) = std::env::var("BOXOFFICE_TEST_REPLICA_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("skipped: no replica (BOXOFFICE_TEST_REPLICA_URL is not set)");
            return None;
        };
        let replica_server = replica_server.trim_end_matches('/').to_owned();
        let primary_server = mysql_base_url()
            .expect("BOXOFFICE_TEST_REPLICA_URL needs BOXOFFICE_TEST_DATABASE_URL, its primary");
        let primary = server(primary_server.trim_end_matches('/')).await;
        let replica = server(&replica_server).await;
        let db = TestDb::create().await;
        let name = db.url.rsplit('/').next().expect("database name").to_owned();
        // The app connects to its read database at start: it must exist there by then.
        caught_up(&primary, &replica).await;
        let app = TestApp::spawn_on(
            db,
            Spawn {
                database_read_url: Some(format!("{replica_server}/{name}")),
                ..Spawn::default()
            },
        )
        .await;
        Some(Self {
            app,
            name,
            primary,
            replica,
        })
    }

    /// Returns once the replica has applied everything the primary has committed so far.
    async fn caught_up(&self) {
        caught_up(&self.primary, &self.replica).await;
    }
}

async fn server(url: &str) -> DatabaseConnection {
    let parsed = ServiceUrl::parse(url).expect("url");
    boxoffice::db::connect(&parsed, Some(1))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

async fn caught_up(primary: &DatabaseConnection, replica: &DatabaseConnection) {
    let pos: String = one(primary, "SELECT @@gtid_binlog_pos AS v", []).await;
    // 0 once applied, -1 on timeout; generous, since other tests replicate through it too.
    let waited: i64 = one(
        replica,
        "SELECT CAST(MASTER_GTID_WAIT(?, 30) AS SIGNED) AS v",
        [pos.clone().into()],
    )
    .await;
    assert_eq!(waited, 0, "the replica did not reach {pos} within 30 s");
}

async fn one<T: sea_orm::TryGetable, const N: usize>(
    conn: &DatabaseConnection,
    sql: &str,
    values: [sea_orm::Value; N],
) -> T {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row");
    row.try_get("", "v").expect("v")
}

async fn json_with(response: reqwest::Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(actual, status, "{body}");
    body
}

fn find<'a>(list: &'a Value, key: &str, id: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|v| v[key] == id)
}

#[tokio::test]
async fn a_published_event_becomes_visible_to_anonymous_readers_once_the_replica_has_caught_up() {
    let Some(r) = Replicated::spawn().await else {
        return;
    };
    let shop = Shop::open(&r.app).await;

    r.caught_up().await;
    let event = json_with(
        r.app.get(&format!("/events/{}", shop.event_id)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(event["status"], "PUBLISHED", "{event}");
    let list = json_with(r.app.get("/events").await, StatusCode::OK).await;
    assert!(
        find(&list["items"], "id", &shop.event_id).is_some(),
        "{list}"
    );
}

#[tokio::test]
async fn a_buyer_reads_their_new_order_at_once_and_the_organizer_sees_it_once_the_replica_has_caught_up()
 {
    let Some(r) = Replicated::spawn().await else {
        return;
    };
    let app = &r.app;
    let shop = Shop::open(app).await;
    let ticket = shop.ticket(app, 10).await;
    let buyer = app.user().await;
    let order = shop::place(app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;

    // No wait: the buyer's own orders come from the primary.
    let mine = json_with(
        app.get_as(
            &format!("/orders/{}", shop::id(&order)),
            &buyer.access_token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (mine["id"].clone(), mine["status"].clone()),
        (order["id"].clone(), json!("PENDING"))
    );

    r.caught_up().await;
    let report = json_with(
        app.get_as(
            &format!("/events/{}/sales", shop.event_id),
            &shop.organizer.access_token,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let line = find(&report["products"], "product_id", &ticket).expect("the ticket in the report");
    assert_eq!(
        (
            line["held"].clone(),
            line["sold"].clone(),
            line["remaining"].clone()
        ),
        (json!(2), json!(0), json!(8)),
        "{report}"
    );
    assert_eq!(report["totals"]["orders_pending"], 1, "{report}");
}

#[tokio::test]
async fn a_sale_goes_through_while_the_app_reads_with_a_select_only_login_on_the_read_only_replica()
{
    let Some(r) = Replicated::spawn().await else {
        return;
    };
    let app = &r.app;
    // The read pool is the replica, and nothing can be written through it: any write the app
    // sent there would fail the request below.
    let (primary_id, replica_id): (i64, i64) = (
        one(&r.primary, "SELECT CAST(@@server_id AS SIGNED) AS v", []).await,
        one(
            &app.state.read_db,
            "SELECT CAST(@@server_id AS SIGNED) AS v",
            [],
        )
        .await,
    );
    assert_ne!(primary_id, replica_id, "the read pool is on the primary");
    assert!(
        app.state
            .read_db
            .execute_unprepared("CREATE TABLE written_on_the_replica (id INT)")
            .await
            .is_err(),
        "the read pool can write"
    );

    let shop = Shop::open(app).await;
    let ticket = shop.ticket(app, 10).await;
    let buyer = app.user().await;
    let order =
        shop::id(&shop::place(app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await);
    shop::confirm(app, &buyer, &order).await;

    r.caught_up().await;
    for path in [
        "/events".to_owned(),
        format!("/events/{}", shop.event_id),
        format!("/events/{}/performances", shop.event_id),
    ] {
        assert_eq!(app.get(&path).await.status(), StatusCode::OK, "{path}");
    }
    let product = json_with(
        app.get(&format!("/products/{ticket}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(product["remaining"], 8, "{product}");
    let organizer = &shop.organizer.access_token;
    let report = json_with(
        app.get_as(&format!("/events/{}/sales", shop.event_id), organizer)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            report["totals"]["orders_confirmed"].clone(),
            report["totals"]["gross"].clone()
        ),
        (json!(1), json!("110000.00")),
        "{report}"
    );
    let orders = json_with(
        app.get_as(&format!("/events/{}/orders", shop.event_id), organizer)
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(find(&orders["items"], "id", &order).is_some(), "{orders}");
    let csv = app
        .get_as(&format!("/events/{}/orders.csv", shop.event_id), organizer)
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.text().await.expect("csv").contains(&order));
}

#[tokio::test]
async fn anonymous_readers_get_the_replicas_copy_and_the_organizer_the_primarys() {
    let Some(r) = Replicated::spawn().await else {
        return;
    };
    let shop = Shop::open(&r.app).await;
    r.caught_up().await;
    // A change the replica never receives: the primary does not log it.
    r.primary
        .execute_raw(Statement::from_sql_and_values(
            r.primary.get_database_backend(),
            format!(
                "SET STATEMENT sql_log_bin = 0 FOR UPDATE `{}`.events SET title = ? WHERE id = ?",
                r.name
            ),
            ["Only on the primary".into(), shop.event_id.clone().into()],
        ))
        .await
        .expect("unlogged update");

    let path = format!("/events/{}", shop.event_id);
    let anonymous = json_with(r.app.get(&path).await, StatusCode::OK).await;
    assert_eq!(anonymous["title"], "2026 Winter Concert", "{anonymous}");
    let own = json_with(
        r.app.get_as(&path, &shop.organizer.access_token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(own["title"], "Only on the primary", "{own}");
}
