//! Rate limits: per IP on the API and on `/auth/*`, per account on sign-in and mail, shared
//! through Redis when configured, in process when Redis fails.

use std::sync::OnceLock;

use boxoffice::config::{Config, ServiceUrl, Switch};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{FlakyProxy, PASSWORD, Spawn, TestApp, assert_problem};

/// A cheap API route that answers 200.
const API: &str = "/.well-known/jwks.json";

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset` as numbers.
fn rate_limit(response: &Response) -> (u64, u64, u64) {
    let number = |name: &str| {
        header(response, name)
            .unwrap_or_else(|| panic!("{name} is present"))
            .parse::<u64>()
            .expect("a number")
    };
    (
        number("ratelimit-limit"),
        number("ratelimit-remaining"),
        number("ratelimit-reset"),
    )
}

/// Asserts a 429 `rate_limited` problem with `Retry-After`; returns it and the headers.
async fn assert_rate_limited(response: Response) -> (u64, (u64, u64, u64)) {
    let retry_after = header(&response, "retry-after")
        .expect("Retry-After is present")
        .parse::<u64>()
        .expect("Retry-After in seconds");
    let limits = rate_limit(&response);
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(retry_after >= 1);
    (retry_after, limits)
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request")
}

/// A failed sign-in from the test client's own address.
async fn wrong_login(app: &TestApp) -> Response {
    app.post(
        "/auth/login",
        &json!({"email": "nobody@example.com", "password": "wrong"}),
    )
    .await
}

async fn resend(app: &TestApp, email: &str) -> Response {
    app.post("/auth/verify-email/resend", &json!({"email": email}))
        .await
}

fn three_api_requests_a_minute(c: &mut Config) {
    c.rate_limit_api_per_ip = 3;
}

#[tokio::test]
async fn over_the_api_limit_a_client_gets_429_rate_limited_with_retry_after_and_headers() {
    let app = TestApp::spawn_with(Spawn {
        configure: three_api_requests_a_minute,
        ..Spawn::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get(API).await.status(), StatusCode::OK);
    }
    let (retry_after, (limit, remaining, reset)) = assert_rate_limited(app.get(API).await).await;
    // 3 a minute: one request comes back every 20 s, all three after a minute.
    assert_eq!(retry_after, 20);
    assert_eq!((limit, remaining, reset), (3, 0, 60));
    // Any API route counts against the same per-IP limit, unknown ones included.
    assert_rate_limited(app.get("/no/such/route").await).await;
}

#[tokio::test]
async fn allowed_responses_describe_the_limit_in_ratelimit_headers() {
    let app = TestApp::spawn_with(Spawn {
        configure: three_api_requests_a_minute,
        ..Spawn::default()
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = app.get(API).await;
        assert_eq!(response.status(), StatusCode::OK);
        seen.push(rate_limit(&response));
    }
    assert_eq!(seen, [(3, 2, 20), (3, 1, 40), (3, 0, 60)]);
}

#[tokio::test]
async fn the_api_limit_recovers_as_the_clock_advances() {
    let app = TestApp::spawn_with(Spawn {
        configure: three_api_requests_a_minute,
        ..Spawn::default()
    })
    .await;
    for _ in 0..3 {
        app.get(API).await;
    }
    assert_rate_limited(app.get(API).await).await;
    app.clock.advance(Duration::seconds(20));
    assert_eq!(app.get(API).await.status(), StatusCode::OK);
    assert_rate_limited(app.get(API).await).await;
    app.clock.advance(Duration::minutes(1));
    for _ in 0..3 {
        assert_eq!(app.get(API).await.status(), StatusCode::OK);
    }
    assert_rate_limited(app.get(API).await).await;
}

#[tokio::test]
async fn health_metrics_and_docs_are_never_limited() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| c.rate_limit_api_per_ip = 1,
        ..Spawn::default()
    })
    .await;
    app.get(API).await;
    assert_rate_limited(app.get(API).await).await;
    for _ in 0..5 {
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs/"] {
            let response = app.get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(header(&response, "ratelimit-limit").is_none(), "{path}");
        }
    }
}

#[tokio::test]
async fn auth_posts_have_a_stricter_per_ip_limit_than_the_rest_of_the_api() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| c.rate_limit_auth_per_ip = 3,
        ..Spawn::default()
    })
    .await;
    for i in 0..3 {
        let response = app
            .post(
                "/auth/login",
                &json!({"email": format!("nobody{i}@example.com"), "password": "wrong"}),
            )
            .await;
        // The tighter of the two limits is the one described.
        assert_eq!(rate_limit(&response).0, 3);
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let refused = app
        .post("/auth/refresh", &json!({"refresh_token": "x"}))
        .await;
    let (retry_after, (limit, _, _)) = assert_rate_limited(refused).await;
    assert_eq!((retry_after, limit), (20, 3));
    // Reads are still governed by the general limit only.
    let read = app.get(API).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(rate_limit(&read).0, 600);
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account_whatever_the_client_address() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| {
            c.trusted_proxies = "127.0.0.1/32".into();
            c.rate_limit_login_per_account = 3;
        },
        ..Spawn::default()
    })
    .await;
    let user = app.user().await;
    // Signing the user up signed them in once; start from a full budget.
    app.clock.advance(Duration::minutes(15));
    for i in 1..=3 {
        let response = login_from(&app, &format!("203.0.113.{i}"), &user.email, "wrong").await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // A fourth address, and even the right password: the account's attempts are used up.
    let refused = login_from(&app, "203.0.113.4", &user.email.to_uppercase(), PASSWORD).await;
    let (retry_after, (limit, remaining, _)) = assert_rate_limited(refused).await;
    // 3 per 15 minutes: one attempt comes back every 5 minutes.
    assert_eq!((retry_after, limit, remaining), (300, 3, 0));
    // Other accounts are not affected.
    let other = login_from(&app, "203.0.113.4", "someone@example.com", "wrong").await;
    assert_problem(other, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    app.clock.advance(Duration::minutes(5));
    let response = login_from(&app, "203.0.113.5", &user.email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn verification_code_resends_are_limited_per_address() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| c.rate_limit_mail_per_account = 2,
        ..Spawn::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            resend(&app, "someone@example.com").await.status(),
            StatusCode::ACCEPTED
        );
    }
    let (retry_after, _) = assert_rate_limited(resend(&app, "SomeOne@example.com").await).await;
    assert_eq!(retry_after, 30 * 60);
    assert_eq!(
        resend(&app, "another@example.com").await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn auth_limits_are_shared_by_instances_over_one_redis_and_api_limits_are_not() {
    let configure = |c: &mut Config| {
        c.rate_limit_auth_per_ip = 4;
        c.rate_limit_api_per_ip = 8;
    };
    let app = TestApp::spawn_with(Spawn {
        configure,
        ..Spawn::default()
    })
    .await;
    let peer = app
        .spawn_peer_with(Spawn {
            configure,
            ..Spawn::default()
        })
        .await;
    for _ in 0..4 {
        assert_eq!(wrong_login(&app).await.status(), StatusCode::UNAUTHORIZED);
    }
    let on_peer = wrong_login(&peer).await;
    if app.state.redis.is_some() {
        // One client address, one budget, whichever instance it reaches.
        assert_rate_limited(on_peer).await;
    } else {
        // Without Redis each instance limits on its own.
        assert_eq!(on_peer.status(), StatusCode::UNAUTHORIZED);
    }
    // The general API limit is in process on purpose (hot path): per instance either way.
    for _ in 0..4 {
        assert_eq!(app.get(API).await.status(), StatusCode::OK);
    }
    assert_rate_limited(app.get(API).await).await;
    assert_eq!(peer.get(API).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_redis_unreachable_from_the_start_limits_hold_in_process_and_nothing_fails() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| {
            // Nothing listens on port 1 of the loopback: connections are refused at once.
            c.redis_url = Some(ServiceUrl::parse("redis://127.0.0.1:1").expect("url"));
            c.trusted_proxies = "127.0.0.1/32".into();
            c.rate_limit_auth_per_ip = 2;
            c.rate_limit_login_per_account = 2;
        },
        ..Spawn::default()
    })
    .await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["redis"], "down");

    // Per account, from two addresses.
    for ip in ["198.51.100.1", "198.51.100.2"] {
        let response = login_from(&app, ip, "victim@example.com", "wrong").await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    assert_rate_limited(login_from(&app, "198.51.100.3", "victim@example.com", "wrong").await)
        .await;
    // Per address: the third POST from 198.51.100.3 is refused whatever the account.
    login_from(&app, "198.51.100.3", "a@example.com", "wrong").await;
    assert_rate_limited(login_from(&app, "198.51.100.3", "b@example.com", "wrong").await).await;
}

/// The address of the Redis proxy of the test below (`Spawn::configure` is a plain `fn`).
static PROXY_URL: OnceLock<String> = OnceLock::new();

#[tokio::test]
async fn when_redis_goes_away_after_start_limits_fall_back_to_in_process() {
    let Some(redis) = crate::helpers::single_redis_url() else {
        // Needs a real Redis behind the proxy; the unreachable-from-the-start test covers
        // the embedded run.
        return;
    };
    let proxy = FlakyProxy::start(&redis).await;
    PROXY_URL.set(proxy.url.clone()).expect("set once");
    let app = TestApp::spawn_with(Spawn {
        configure: |c| {
            let url = PROXY_URL.get().expect("proxy started");
            c.redis_url = Some(ServiceUrl::parse(url).expect("url"));
            c.rate_limit_auth_per_ip = 3;
        },
        ..Spawn::default()
    })
    .await;
    assert_eq!(wrong_login(&app).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/readyz")
            .await
            .json::<Value>()
            .await
            .expect("json")["redis"],
        "ok"
    );

    proxy.cut();
    // The in-process limiter starts from a full bucket: three more, then refused, never a 500.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(wrong_login(&app).await.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
        ]
    );
    assert_eq!(
        app.get("/readyz")
            .await
            .json::<Value>()
            .await
            .expect("json")["redis"],
        "down"
    );
}

#[tokio::test]
async fn rate_limits_off_in_bench_mode_disables_limiting() {
    let app = TestApp::spawn_with(Spawn {
        configure: |c| {
            c.bench_mode = true;
            c.rate_limits = Switch::Off;
            c.rate_limit_api_per_ip = 1;
            c.rate_limit_auth_per_ip = 1;
            c.rate_limit_login_per_account = 1;
        },
        ..Spawn::default()
    })
    .await;
    for _ in 0..5 {
        let response = app.get(API).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "ratelimit-limit").is_none());
        let login = app
            .post(
                "/auth/login",
                &json!({"email": "nobody@example.com", "password": "wrong"}),
            )
            .await;
        assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    }
}
