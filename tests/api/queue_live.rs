//! The waiting room live: WebSocket pushes, several instances over one queue, leader failover,
//! shutdown, and Redis going away and coming back.

use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::{
    helpers::{FlakyProxy, Spawn, TestApp, TestUser, assert_problem, eventually, single_redis_url},
    queue::{join, queued_shop, status, status_by_token, until_admitted},
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A single-use socket ticket from a queue token.
async fn ticket(app: &TestApp, event_id: &str, queue_token: &str) -> String {
    let response = app
        .client
        .post(app.url("/queue/ws-ticket"))
        .header("x-queue-token", queue_token)
        .json(&json!({ "event_id": event_id }))
        .send()
        .await
        .expect("request");
    let code = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 30);
    body["ticket"].as_str().expect("ticket").to_owned()
}

fn socket_url(app: &TestApp, event_id: &str, ticket: &str) -> String {
    format!(
        "{}/queue/ws?event_id={event_id}&ticket={ticket}",
        app.base.replace("http://", "ws://")
    )
}

async fn connect(app: &TestApp, event_id: &str, queue_token: &str) -> Socket {
    let ticket = ticket(app, event_id, queue_token).await;
    let (socket, _) = tokio_tungstenite::connect_async(socket_url(app, event_id, &ticket))
        .await
        .expect("socket opens");
    socket
}

/// A WebSocket over HTTP/2 (RFC 8441): an extended CONNECT on a multiplexed connection.
type Http2Socket = WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>;

/// An HTTP/2 connection to the app (prior knowledge, as a proxy speaks to its upstream).
async fn http2_connection(
    app: &TestApp,
) -> hyper::client::conn::http2::SendRequest<axum::body::Body> {
    let address = app.base.trim_start_matches("http://");
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(address).await.expect("connect"));
    let (mut sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(io)
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    // The server's SETTINGS (which enable extended CONNECT) precede its first response.
    let health = http::Request::get("/healthz")
        .body(axum::body::Body::empty())
        .expect("request");
    let answered = sender.send_request(health).await.expect("health over h2");
    assert_eq!(answered.status(), StatusCode::OK);
    sender
}

/// Opens the queue socket as one more stream on `sender`'s connection.
async fn connect_http2(
    sender: &mut hyper::client::conn::http2::SendRequest<axum::body::Body>,
    event_id: &str,
    ticket: &str,
) -> Result<Http2Socket, StatusCode> {
    let request = http::Request::connect(format!("/queue/ws?event_id={event_id}&ticket={ticket}"))
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13")
        .body(axum::body::Body::empty())
        .expect("request");
    let mut response = sender.send_request(request).await.expect("response");
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    let upgraded = hyper::upgrade::on(&mut response).await.expect("upgraded");
    Ok(WebSocketStream::from_raw_socket(
        hyper_util::rt::TokioIo::new(upgraded),
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await)
}

/// The next JSON message (with a deadline; the ticker pushes in the background).
async fn next<S>(socket: &mut S) -> Value
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("json message");
        }
    }
}

/// Messages until one of `kind` arrives; returns it.
async fn next_of<S>(socket: &mut S, kind: &str) -> Value
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = next(socket).await;
        if message["type"] == kind {
            return message;
        }
    }
}

fn token(place: &Value) -> String {
    place["queue_token"]
        .as_str()
        .expect("queue token")
        .to_owned()
}

#[tokio::test]
async fn a_socket_shows_the_position_move_and_then_the_admission() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers = app.buyers(2).await;
    let first = join(&app, &buyers[0], &shop.event_id).await;
    let second = join(&app, &buyers[1], &shop.event_id).await;
    let mut socket = connect(&app, &shop.event_id, &token(&second)).await;
    let position = next(&mut socket).await;
    assert_eq!(position["type"], "position");
    assert_eq!(position["position"], 2);
    assert_eq!(position["ahead"], 1);

    app.clock.advance(time::Duration::seconds(1));
    until_admitted(&app, &shop.event_id, &token(&first)).await;
    let moved = next_of(&mut socket, "position").await;
    assert_eq!(moved["position"], 1, "{moved}");
    assert_eq!(moved["ahead"], 0);

    app.clock.advance(time::Duration::seconds(1));
    let admitted = next_of(&mut socket, "admitted").await;
    let admission = admitted["admission_token"].as_str().expect("token");
    assert!(admitted["admission_expires_at"].is_string());
    let by_status = status(&app, &shop.event_id, &token(&second)).await;
    assert_eq!(by_status["status"], "ADMITTED");
    assert_eq!(
        by_status["admission_expires_at"],
        admitted["admission_expires_at"]
    );
    assert!(!admission.is_empty());
}

#[tokio::test]
async fn a_socket_ticket_is_single_use_and_checked_with_the_origin() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyer = app.buyers(1).await.remove(0);
    let place = join(&app, &buyer, &shop.event_id).await;
    let ticket = ticket(&app, &shop.event_id, &token(&place)).await;
    let url = socket_url(&app, &shop.event_id, &ticket);

    let mut foreign =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .expect("request");
    foreign
        .headers_mut()
        .insert("origin", "https://evil.example".parse().expect("header"));
    match tokio_tungstenite::connect_async(foreign).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::FORBIDDEN)
        }
        other => panic!(
            "a foreign origin must be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("first use opens");
    assert_eq!(next(&mut socket).await["type"], "position");
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED)
        }
        other => panic!("a used ticket must be refused, got {:?}", other.map(|_| ())),
    }
    let garbage = socket_url(&app, &shop.event_id, "w1.x.y");
    assert!(
        tokio_tungstenite::connect_async(garbage.as_str())
            .await
            .is_err()
    );
    socket.close(None).await.expect("close");
}

#[tokio::test]
async fn sockets_over_one_http2_connection_each_hear_their_own_position_and_admission() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers = app.buyers(2).await;
    let first = join(&app, &buyers[0], &shop.event_id).await;
    let second = join(&app, &buyers[1], &shop.event_id).await;
    let mut connection = http2_connection(&app).await;
    let first_ticket = ticket(&app, &shop.event_id, &token(&first)).await;
    let second_ticket = ticket(&app, &shop.event_id, &token(&second)).await;
    let mut first_socket = connect_http2(&mut connection, &shop.event_id, &first_ticket)
        .await
        .expect("first socket opens");
    let mut second_socket = connect_http2(&mut connection, &shop.event_id, &second_ticket)
        .await
        .expect("second socket opens on the same connection");
    assert_eq!(next(&mut first_socket).await["position"], 1);
    assert_eq!(next(&mut second_socket).await["position"], 2);

    app.clock.advance(time::Duration::seconds(1));
    let admitted = next_of(&mut first_socket, "admitted").await;
    assert!(admitted["admission_token"].is_string(), "{admitted}");
    let moved = next_of(&mut second_socket, "position").await;
    assert_eq!(moved["position"], 1, "{moved}");

    // The ticket rules are the same as over HTTP/1.1: single use, and checked.
    assert_eq!(
        connect_http2(&mut connection, &shop.event_id, &first_ticket)
            .await
            .err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        connect_http2(&mut connection, &shop.event_id, "w1.x.y")
            .await
            .err(),
        Some(StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn a_request_that_is_not_a_handshake_gets_a_problem_and_keeps_its_ticket() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyer = app.buyers(1).await.remove(0);
    let place = join(&app, &buyer, &shop.event_id).await;
    let fresh = ticket(&app, &shop.event_id, &token(&place)).await;
    let plain = app
        .client
        .get(app.url(&format!(
            "/queue/ws?event_id={}&ticket={fresh}",
            shop.event_id
        )))
        .send()
        .await
        .expect("request");
    assert_problem(plain, StatusCode::BAD_REQUEST, "websocket_required").await;
    let mut over_http2 = http2_connection(&app).await;
    let get_over_http2 = over_http2
        .send_request(
            http::Request::get(format!(
                "/queue/ws?event_id={}&ticket={fresh}",
                shop.event_id
            ))
            .body(axum::body::Body::empty())
            .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(get_over_http2.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        get_over_http2.headers()["content-type"],
        "application/problem+json"
    );
    assert!(
        connect_http2(&mut over_http2, &shop.event_id, &fresh)
            .await
            .is_ok(),
        "the ticket still opens a socket"
    );
}

#[tokio::test]
async fn sockets_hear_pause_and_are_closed_at_shutdown() {
    let app = TestApp::spawn().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyer = app.buyers(1).await.remove(0);
    let place = join(&app, &buyer, &shop.event_id).await;
    let mut socket = connect(&app, &shop.event_id, &token(&place)).await;
    assert_eq!(next(&mut socket).await["type"], "position");
    let paused = app
        .post_as(
            &format!("/events/{}/queue/pause", shop.event_id),
            &shop.organizer.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    next_of(&mut socket, "paused").await;
    // Paused: the clock moves, nobody is admitted.
    app.clock.advance(time::Duration::seconds(2));
    app.state.queue.shut_down().await;
    let closed = next_of(&mut socket, "closed").await;
    assert_eq!(closed["reason"], "shutdown");
    // A socket asked of a stopping instance is refused (it would never hear the shutdown).
    let late = ticket(&app, &shop.event_id, &token(&place)).await;
    match tokio_tungstenite::connect_async(socket_url(&app, &shop.event_id, &late)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE)
        }
        other => panic!(
            "a stopping instance must refuse new sockets, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(
        status(&app, &shop.event_id, &token(&place)).await["status"],
        "WAITING"
    );
}

#[tokio::test]
async fn two_instances_serve_one_queue() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers = app.buyers(2).await;
    let first = join(&app, &buyers[0], &shop.event_id).await;
    let second = join(&peer, &buyers[1], &shop.event_id).await;
    assert_eq!(second["position"], 2, "one line across instances: {second}");
    assert_eq!(
        status(&peer, &shop.event_id, &token(&first)).await["position"],
        1
    );
    // The socket on one instance hears admissions made by whichever instance leads.
    let mut on_peer = connect(&peer, &shop.event_id, &token(&second)).await;
    assert_eq!(next(&mut on_peer).await["position"], 2);
    app.clock.advance(time::Duration::seconds(1));
    until_admitted(&peer, &shop.event_id, &token(&first)).await;
    app.clock.advance(time::Duration::seconds(1));
    next_of(&mut on_peer, "admitted").await;
    let leaders = [&app, &peer]
        .iter()
        .filter(|a| a.state.queue.is_leader())
        .count();
    assert_eq!(leaders, 1, "exactly one instance ticks");
}

#[tokio::test]
async fn another_instance_takes_over_admission_when_the_leader_dies() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let shop = queued_shop(&app, json!({})).await;
    eventually("one instance leads", || async {
        app.state.queue.is_leader() || peer.state.queue.is_leader()
    })
    .await;
    let (leader, survivor) = if app.state.queue.is_leader() {
        (&app, &peer)
    } else {
        (&peer, &app)
    };
    leader.state.queue.shut_down().await;
    let buyer = app.buyers(1).await.remove(0);
    let place = join(survivor, &buyer, &shop.event_id).await;
    // The lease runs out by the shared clock; the survivor takes it and admits.
    app.clock.advance(time::Duration::seconds(4));
    eventually("the survivor leads", || async {
        survivor.state.queue.is_leader()
    })
    .await;
    until_admitted(survivor, &shop.event_id, &token(&place)).await;
}

#[tokio::test]
async fn without_redis_queue_calls_answer_503_and_recover_when_it_returns() {
    let Some(real) = single_redis_url() else {
        // The in-process backend cannot go away; this is a Redis scenario.
        return;
    };
    let app = TestApp::spawn().await;
    let proxy = FlakyProxy::start(&real).await;
    let peer = app
        .spawn_peer_with(Spawn {
            redis_url: Some(proxy.url.clone()),
            ..Spawn::default()
        })
        .await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers: Vec<TestUser> = app.buyers(2).await;
    let place = join(&peer, &buyers[0], &shop.event_id).await;

    proxy.cut();
    let down = status_by_token(&peer, &shop.event_id, &token(&place)).await;
    assert_problem(down, StatusCode::SERVICE_UNAVAILABLE, "queue_unavailable").await;
    let join_down = peer
        .post_as(
            "/queue/join",
            &buyers[1].access_token,
            &json!({"event_id": shop.event_id}),
        )
        .await;
    assert_problem(
        join_down,
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
    )
    .await;
    assert_eq!(peer.get("/healthz").await.status(), StatusCode::OK);
    // The instance still connected to Redis keeps serving the same queue.
    assert_eq!(
        status(&app, &shop.event_id, &token(&place)).await["position"],
        1
    );

    proxy.restore();
    eventually("the peer recovers", || async {
        status_by_token(&peer, &shop.event_id, &token(&place))
            .await
            .status()
            == StatusCode::OK
    })
    .await;
    let second = join(&peer, &buyers[1], &shop.event_id).await;
    assert_eq!(second["position"], 2);
}

#[tokio::test]
async fn a_pre_queue_socket_learns_its_place_when_the_sale_opens() {
    let app = TestApp::spawn().await;
    let opens = (app.state.clock.now() + time::Duration::minutes(10))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let shop = crate::shop::Shop::open_with(&app, json!({ "sale_open_at": opens })).await;
    let now = app
        .state
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = crate::queue::put_settings(
        &app,
        &shop,
        // A timeout longer than the clock's jump: nobody is dropped for the minutes skipped.
        &json!({"enabled": true, "capacity": 10, "admit_per_second": 1, "pre_queue_opens_at": now,
                "heartbeat_timeout_seconds": 3600}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let buyers = app.buyers(2).await;
    join(&app, &buyers[0], &shop.event_id).await;
    let place = join(&app, &buyers[1], &shop.event_id).await;
    assert!(place["position"].is_null());
    let mut socket = connect(&app, &shop.event_id, &token(&place)).await;
    app.clock.advance(time::Duration::minutes(11));
    // The opening admits one of the two (the pre-queue order is random): either this member
    // hears its place, or that it is in.
    let message = next(&mut socket).await;
    let exact = status(&app, &shop.event_id, &token(&place)).await;
    match message["type"].as_str() {
        Some("position") => assert_eq!(message["position"], exact["position"], "{exact}"),
        Some("admitted") => assert_eq!(exact["status"], "ADMITTED"),
        _ => panic!("unexpected {message}"),
    }
}

#[tokio::test]
async fn a_settings_change_on_one_instance_applies_on_the_other_at_once() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    let shop = queued_shop(&app, json!({})).await;
    let buyers = app.buyers(2).await;
    // The peer has the rules cached now.
    join(&peer, &buyers[0], &shop.event_id).await;
    let off = crate::queue::put_settings(
        &app,
        &shop,
        &json!({"enabled": false, "capacity": 10, "admit_per_second": 1}),
    )
    .await;
    assert_eq!(off.status(), StatusCode::OK);
    let changed = std::time::Instant::now();
    eventually("the peer sees the queue switched off", || async {
        let response = peer
            .post_as(
                "/queue/join",
                &buyers[1].access_token,
                &json!({"event_id": shop.event_id}),
            )
            .await;
        response.status() == StatusCode::CONFLICT
    })
    .await;
    let refused = peer
        .post_as(
            "/queue/join",
            &buyers[1].access_token,
            &json!({"event_id": shop.event_id}),
        )
        .await;
    assert_problem(refused, StatusCode::CONFLICT, "queue_not_enabled").await;
    // Through the bus, well before the peer's cached rules would expire (10 s).
    assert!(
        changed.elapsed() < Duration::from_secs(5),
        "{:?}",
        changed.elapsed()
    );
}
