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
    let worker = || MailWorker {
        db: app.state.db.clone(),
        clock: app.state.clock.clone(),
        transport: Transport::from_config(Some(&sink.url), false).expect("transport"),
        from: "boxoffice <no-reply@localhost>".parse().expect("mailbox"),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let (a, b) = (worker(), worker());
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
