use std::sync::Arc;

use boxoffice::infra::mail::{
    self, Mail, MailLocale,
    worker::{MailWorker, Transport},
};
use reqwest::StatusCode;
use serde_json::json;
use time::Duration;

use crate::helpers::{MailSink, PASSWORD, Spawn, TestApp};

#[tokio::test]
async fn mail_waits_in_the_outbox_while_smtp_is_down_and_goes_out_later() {
    // The relay is "down": it hangs up on every connection before its greeting, until the sink
    // takes over the same listener. (Closing a reserved port instead lets a parallel test bind
    // it meanwhile, and the mail would go there.)
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (relay_up, up) = tokio::sync::oneshot::channel::<()>();
    let down = tokio::spawn(async move {
        tokio::pin!(up);
        loop {
            tokio::select! {
                _ = &mut up => return listener,
                accepted = listener.accept() => drop(accepted),
            }
        }
    });
    let app = TestApp::spawn_with(Spawn {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Spawn::default()
    })
    .await;
    let response = app
        .post(
            "/auth/signup",
            &json!({"email": "later@example.com", "password": PASSWORD, "name": "x"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Wait until the worker has tried and failed at least once.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let rows = boxoffice::db::entities::mail_outbox::Entity::find()
            .filter(boxoffice::db::entities::mail_outbox::Column::ToAddress.eq("later@example.com"))
            .all(&app.state.db)
            .await
            .expect("query");
        if rows
            .iter()
            .any(|r| r.attempts >= 1 && r.status == "PENDING")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed attempt recorded: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    relay_up.send(()).expect("the relay is down");
    let sink = MailSink::serve(down.await.expect("listener"));
    app.clock.advance(Duration::minutes(5));
    let mails = sink.wait_for("later@example.com", 1).await;
    assert_eq!(mails[0].code().len(), 6);
}

#[tokio::test]
async fn two_workers_on_one_outbox_send_each_mail_once() {
    // The app's own worker holds mail (no SMTP_URL), so only the two workers below deliver.
    let app = TestApp::spawn_with(Spawn {
        configure: |c| c.smtp_url = None,
        ..Spawn::default()
    })
    .await;
    let sink = MailSink::start().await;
    let now = app.state.clock.now();
    for i in 0..10 {
        let mail = Mail::VerifyEmail {
            name: format!("n{i}"),
            code: format!("{i:06}"),
            minutes: 5,
        };
        mail::enqueue(
            &app.state.db,
            now,
            &format!("m{i}@example.com"),
            MailLocale::En,
            &mail,
        )
        .await
        .expect("enqueue");
    }
    let relay_worker = || {
        worker(
            &app,
            Transport::from_config(Some(&sink.url), false).expect("transport"),
        )
    };
    let (a, b) = (relay_worker(), relay_worker());
    let (ra, rb) = tokio::join!(a.deliver_due(), b.deliver_due());
    ra.expect("worker a");
    rb.expect("worker b");
    for i in 0..10 {
        assert_eq!(
            sink.to(&format!("m{i}@example.com")).len(),
            1,
            "m{i} sent exactly once"
        );
    }
}

/// A worker over the app's outbox that delivers through `transport` when the test calls it
/// (`Transport::Log` gives delivered rows without a relay).
fn worker(app: &TestApp, transport: Transport) -> MailWorker {
    MailWorker {
        db: app.state.db.clone(),
        clock: app.state.clock.clone(),
        transport,
        from: "boxoffice <no-reply@localhost>".parse().expect("mailbox"),
        wake: Arc::new(tokio::sync::Notify::new()),
    }
}

/// An app whose own worker holds mail, so only the test decides what is delivered.
async fn app_holding_mail() -> TestApp {
    TestApp::spawn_with(Spawn {
        configure: |c| c.smtp_url = None,
        ..Spawn::default()
    })
    .await
}

async fn enqueue_to(app: &TestApp, address: &str) {
    let mail = Mail::VerifyEmail {
        name: "n".into(),
        code: "123456".into(),
        minutes: 5,
    };
    mail::enqueue(
        &app.state.db,
        app.state.clock.now(),
        address,
        MailLocale::En,
        &mail,
    )
    .await
    .expect("enqueue");
}

async fn outbox_to(
    app: &TestApp,
    address: &str,
) -> Vec<boxoffice::db::entities::mail_outbox::Model> {
    use boxoffice::db::entities::mail_outbox::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    Entity::find()
        .filter(Column::ToAddress.eq(address))
        .all(&app.state.db)
        .await
        .expect("query")
}

#[tokio::test]
async fn finished_mail_is_deleted_after_the_retention_and_pending_mail_is_kept() {
    use boxoffice::db::entities::mail_outbox::{Column, Entity};
    use boxoffice::infra::mail::retention;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let app = app_holding_mail().await;
    let keep = Duration::days(30);
    // Delivered 31 days ago, and one that was given up on then.
    enqueue_to(&app, "old@example.com").await;
    enqueue_to(&app, "failed@example.com").await;
    Entity::update_many()
        .col_expr(Column::Status, Expr::value("FAILED"))
        .filter(Column::ToAddress.eq("failed@example.com"))
        .exec(&app.state.db)
        .await
        .expect("give up");
    worker(&app, Transport::Log)
        .deliver_due()
        .await
        .expect("deliver");
    app.clock.advance(Duration::days(2));
    // Delivered 29 days ago.
    enqueue_to(&app, "recent@example.com").await;
    worker(&app, Transport::Log)
        .deliver_due()
        .await
        .expect("deliver");
    app.clock.advance(Duration::days(29));
    // Still waiting for a relay after all this time: never purged.
    Entity::update_many()
        .col_expr(
            Column::NextAttemptAt,
            Expr::value(boxoffice::infra::clock::to_db(
                app.state.clock.now() + Duration::days(1),
            )),
        )
        .filter(Column::Status.eq("PENDING"))
        .exec(&app.state.db)
        .await
        .expect("postpone");
    enqueue_to(&app, "waiting@example.com").await;
    Entity::update_many()
        .col_expr(
            Column::CreatedAt,
            Expr::value(boxoffice::infra::clock::to_db(
                app.state.clock.now() - Duration::days(60),
            )),
        )
        .filter(Column::ToAddress.eq("waiting@example.com"))
        .exec(&app.state.db)
        .await
        .expect("age it");

    let purged = retention::purge_finished(&app.state.db, app.state.clock.now(), keep)
        .await
        .expect("purge");

    assert_eq!(purged, 2, "the old delivered mail and the old failed one");
    assert!(outbox_to(&app, "old@example.com").await.is_empty());
    assert!(outbox_to(&app, "failed@example.com").await.is_empty());
    assert_eq!(
        outbox_to(&app, "recent@example.com").await[0].status,
        "LOGGED"
    );
    assert_eq!(
        outbox_to(&app, "waiting@example.com").await[0].status,
        "PENDING"
    );
    assert_eq!(
        retention::purge_finished(&app.state.db, app.state.clock.now(), keep)
            .await
            .expect("purge again"),
        0,
        "a second purge finds nothing"
    );
}

#[tokio::test]
async fn a_purge_larger_than_one_batch_deletes_every_finished_row() {
    use boxoffice::infra::mail::retention;
    let app = app_holding_mail().await;
    let now = app.state.clock.now();
    let mail = Mail::VerifyEmail {
        name: "n".into(),
        code: "123456".into(),
        minutes: 5,
    };
    let addresses: Vec<String> = (0..2_500).map(|i| format!("bulk{i}@example.com")).collect();
    mail::enqueue_all(
        &app.state.db,
        now,
        addresses
            .iter()
            .map(|a| (a.as_str(), MailLocale::En, &mail)),
    )
    .await
    .expect("enqueue");
    {
        use boxoffice::db::entities::mail_outbox::{Column, Entity};
        use sea_orm::{EntityTrait, sea_query::Expr};
        Entity::update_many()
            .col_expr(Column::Status, Expr::value("SENT"))
            .col_expr(
                Column::SentAt,
                Expr::value(Some(boxoffice::infra::clock::to_db(now))),
            )
            .exec(&app.state.db)
            .await
            .expect("mark sent");
    }
    app.clock.advance(Duration::days(8));
    let purged = retention::purge_finished(&app.state.db, app.state.clock.now(), Duration::days(7))
        .await
        .expect("purge");
    assert_eq!(purged, 2_500);
}

#[tokio::test]
async fn deleting_an_account_forgets_its_delivered_mail_but_still_sends_the_farewell() {
    let app = app_holding_mail().await;
    let user = app.user_with_role(boxoffice::auth::model::Role::User).await;
    enqueue_to(&app, &user.email).await;
    worker(&app, Transport::Log)
        .deliver_due()
        .await
        .expect("deliver");
    assert!(
        outbox_to(&app, &user.email)
            .await
            .iter()
            .any(|row| row.status == "LOGGED"),
        "a delivered mail to forget"
    );

    let response = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(&user.access_token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let rows = outbox_to(&app, &user.email).await;
    assert!(
        rows.iter().all(|row| row.status == "PENDING"),
        "only mail still to send remains: {rows:?}"
    );
    assert!(
        rows.iter().any(|row| row.template == "ACCOUNT_DELETED"),
        "the farewell waits to go out: {rows:?}"
    );
}

#[tokio::test]
async fn a_mail_given_up_after_the_last_try_keeps_no_code() {
    use boxoffice::db::entities::mail_outbox::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    // A relay that hangs up on every connection before its greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            drop(listener.accept().await);
        }
    });
    let app = app_holding_mail().await;
    enqueue_to(&app, "unlucky@example.com").await;
    // Nine tries already failed.
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::value(9))
        .filter(Column::ToAddress.eq("unlucky@example.com"))
        .exec(&app.state.db)
        .await
        .expect("nine failures");
    let relay = Transport::from_config(Some(&format!("smtp://127.0.0.1:{port}")), false)
        .expect("transport");

    worker(&app, relay).deliver_due().await.expect("deliver");

    let rows = outbox_to(&app, "unlucky@example.com").await;
    assert_eq!(rows[0].status, "FAILED");
    assert_eq!(rows[0].attempts, 10);
    assert_eq!(rows[0].params, "{}", "the code is gone");
    assert!(rows[0].last_error.is_some(), "the operator sees why");
}
