//! The page frame: language, assets, security headers and friendly error pages.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{TestApp, assert_problem},
    shop::Shop,
};

async fn html(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = app.client.get(app.url(path)).header("accept", "text/html");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_event_list_speaks_the_browsers_language_and_the_switch_remembers_a_choice() {
    let app = TestApp::spawn().await;
    Shop::open(&app).await;

    let (status, _, body) = html(&app, "/", &[("accept-language", "en-US,en;q=0.9")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<html lang="en">"#));
    assert!(body.contains("2026 Winter Concert"));
    assert!(body.contains("On sale"));

    let (_, _, body) = html(&app, "/", &[("accept-language", "ko-KR")]).await;
    assert!(body.contains(r#"<html lang="ko">"#));
    assert!(body.contains("판매 중"));

    let response = app
        .client
        .get(app.url("/lang?to=en&next=/e/x"))
        .send()
        .await
        .expect("switch");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/e/x");
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("lang=en;")
    );
    let (_, _, body) = html(
        &app,
        "/",
        &[("accept-language", "ko-KR"), ("cookie", "lang=en")],
    )
    .await;
    assert!(body.contains(r#"<html lang="en">"#));
}

#[tokio::test]
async fn the_language_switch_never_sends_people_to_another_site() {
    let app = TestApp::spawn().await;
    for next in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/lang?to=ko&next={}", urlencode(next))))
            .send()
            .await
            .expect("switch");
        assert_eq!(response.headers()["location"], "/", "{next}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn pages_carry_a_strict_policy_without_inline_script() {
    let app = TestApp::spawn().await;
    let (_, headers, body) = html(&app, "/", &[]).await;
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["referrer-policy"].to_str().is_ok());
    // The only <script> without src is the JSON data block, which browsers never run.
    for tag in body.split("<script").skip(1) {
        assert!(
            tag.contains(" src=") || tag.starts_with(r#" type="application/json""#),
            "{tag}"
        );
    }
    assert!(
        !body.contains("style=\""),
        "inline style attributes break the policy"
    );
}

#[tokio::test]
async fn assets_are_served_under_hashed_names_and_cached_for_a_year() {
    let app = TestApp::spawn().await;
    let (_, _, body) = html(&app, "/", &[]).await;
    let css = body
        .split("href=\"")
        .find_map(|s| {
            s.split('"')
                .next()
                .filter(|h| h.starts_with("/static/app."))
        })
        .expect("stylesheet link")
        .to_owned();
    let response = app.get(&css).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // A name that is not an asset is a 404 like any other, with a problem body.
    assert_problem(
        app.get("/static/app.css").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_unknown_page_is_a_friendly_404_in_the_readers_language_but_the_api_keeps_json() {
    let app = TestApp::spawn().await;
    let (status, headers, body) =
        html(&app, "/e/no-such-event", &[("accept-language", "en")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("Page not found"));

    let (status, _, body) = html(&app, "/no/such/path", &[("accept-language", "ko")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("페이지를 찾을 수 없습니다"));

    let response = app.get("/events/no-such-event").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
}

#[tokio::test]
async fn event_text_is_escaped_on_the_page() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(
        &app,
        json!({"title": "<script>alert(1)</script> Night", "description": "<img src=x onerror=alert(2)>"}),
    )
    .await;
    let (status, _, body) = html(&app, &format!("/e/{}", shop.event_id), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("<script>alert(1)"));
    assert!(!body.contains("<img src=x"));
    assert!(
        body.contains("&#60;script&#62;alert(1)&#60;/script&#62; Night")
            || body.contains("&lt;script&gt;")
    );
}

#[tokio::test]
async fn an_event_page_shows_prices_by_grade_and_a_countdown_before_opening() {
    let app = TestApp::spawn().await;
    let opens = (app.state.clock.now() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let shop = Shop::open_with(&app, json!({"sale_open_at": opens})).await;
    shop.product(
        &app,
        json!({"type": "TICKET", "performance_id": shop.performance_id, "name": "R석", "grade": "R", "price": "143000", "quantity": 100}),
    )
    .await;
    let (_, _, body) = html(
        &app,
        &format!("/e/{}", shop.event_id),
        &[("accept-language", "ko")],
    )
    .await;
    assert!(body.contains("143,000원"), "{body}");
    assert!(body.contains("data-countdown="));
    assert!(body.contains("판매 예정"));
}
