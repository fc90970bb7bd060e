use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_says_ok() {
    let app = TestApp::spawn().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_reports_the_database_and_redis() {
    let app = TestApp::spawn().await;
    let body: Value = app.get("/readyz").await.json().await.expect("json");
    assert_eq!(body["database"], true);
    let expected = if std::env::var("BOXOFFICE_TEST_REDIS_URL").is_ok_and(|v| !v.is_empty()) {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(body["redis"], expected);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/no/such/route"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert!(
            headers.get("x-request-id").is_some(),
            "{path} has a request id"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .expect("ascii")
                .contains("frame-ancestors 'none'")
        );
    }
}

#[tokio::test]
async fn a_client_supplied_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_documents_the_auth_routes_and_swagger_ui_is_served_offline() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    for path in [
        "/auth/signup",
        "/auth/login",
        "/auth/refresh",
        "/auth/verify-email",
        "/auth/me",
        "/.well-known/jwks.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger"), "swagger ui page");
    assert!(
        !html.contains("cdn") && !html.contains("unpkg"),
        "no CDN links"
    );
}

#[tokio::test]
async fn jwks_publishes_an_ed25519_key() {
    let app = TestApp::spawn().await;
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key["kid"].is_string() && key["x"].is_string());
    assert!(key.get("d").is_none(), "no private part");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = TestApp::spawn().await;
    crate::helpers::assert_problem(app.get("/nope").await, StatusCode::NOT_FOUND, "not_found")
        .await;
    let response = app
        .client
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    crate::helpers::assert_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn metrics_count_errors_by_code_and_sample_business_gauges() {
    let app = TestApp::spawn().await;
    let shop = crate::shop::Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = crate::shop::place(
        &app,
        &buyer,
        serde_json::json!([{"product_id": ticket, "quantity": 2}]),
    )
    .await;
    crate::shop::confirm(&app, &buyer, &crate::shop::id(&order)).await;
    app.get("/events/no-such-event").await;
    boxoffice::infra::gauges::sample(&app.state.read_db)
        .await
        .expect("sampled");

    let text = app.get("/metrics").await.text().await.expect("text");
    assert!(
        text.contains(r#"boxoffice_errors_total{code="not_found"}"#),
        "{text}"
    );
    assert!(text.contains("boxoffice_mail_outbox_backlog"), "{text}");
    let sold = format!(
        r#"boxoffice_product_sold{{event="{}",product="{ticket}"}} 2"#,
        shop.event_id
    );
    assert!(text.contains(&sold), "{text}");
    let confirmed = format!(
        r#"boxoffice_orders{{event="{}",status="CONFIRMED"}} 1"#,
        shop.event_id
    );
    assert!(text.contains(&confirmed), "{text}");
    let funnel = format!(
        r#"boxoffice_funnel_total{{event="{}",stage="paid"}} 1"#,
        shop.event_id
    );
    assert!(text.contains(&funnel), "{text}");
    assert!(
        text.contains("boxoffice_db_transaction_seconds_bucket"),
        "{text}"
    );
}
