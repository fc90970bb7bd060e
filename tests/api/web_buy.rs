//! The buyer's pages as a browser gets them: sign-in redirects, the shop, checkout, orders and
//! tickets, with authorization on every order.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Browser, TestApp},
    shop::{self, Shop},
};

#[tokio::test]
async fn shopping_pages_send_signed_out_visitors_to_sign_in_and_back() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    for path in [
        format!("/e/{}/buy", shop.event_id),
        format!("/e/{}/queue", shop.event_id),
        "/account/orders".to_owned(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = Browser::location(&response);
        assert!(
            location.starts_with("/account/sign-in?next=%2F"),
            "{path} → {location}"
        );
    }
}

#[tokio::test]
async fn the_buy_page_offers_seats_by_grade_and_goods_with_their_options() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let (_grade_product, _seats) = shop.seated(&app, 6).await;
    shop.merch(&app, 10).await;
    let buyer = app.user().await;
    let browser = app.signed_in_browser(&buyer, Some("ko")).await.0;

    let (status, body) = browser.page(&format!("/e/{}/buy", shop.event_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"id="seatmap""#), "the seat map is there");
    assert!(body.contains(r#"id="buy-data""#));
    assert!(body.contains("주문하기"));
    assert!(
        body.contains("data-variant-for"),
        "merchandise offers its variants"
    );
    assert!(
        body.contains("<noscript>"),
        "a clear message without JavaScript"
    );
}

#[tokio::test]
async fn a_buyer_sees_their_order_with_qr_tickets_and_the_cancellation_fee_first() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(
        &app,
        json!({"cancel_policy": {"tiers": [{"hours_before": 24, "fee_percent": 10}], "otherwise": "NO_CANCEL"}}),
    )
    .await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;
    let id = shop::id(&order);
    let browser = app.signed_in_browser(&buyer, Some("en")).await.0;

    let (status, body) = browser.page(&format!("/checkout/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Test payment gateway"), "{body}");
    assert!(body.contains("data-countdown="));

    shop::confirm(&app, &buyer, &id).await;
    let (status, body) = browser.page(&format!("/account/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.matches("data:image/svg+xml;base64,").count(),
        2,
        "two QR codes"
    );
    assert!(body.contains("Confirmed"));
    assert!(
        body.contains(r#"id="cancel-fee""#),
        "the fee is shown before canceling"
    );
    assert!(body.contains(r#"data-api="/orders/"#));

    let (status, body) = browser.page("/account/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!("/account/orders/{id}")));
}

#[tokio::test]
async fn another_buyers_order_is_a_not_found_page() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let owner = app.user().await;
    let order = shop::place(&app, &owner, json!([{"product_id": ticket, "quantity": 1}])).await;
    let id = shop::id(&order);
    let stranger = app.user().await;
    let browser = app.signed_in_browser(&stranger, Some("ko")).await.0;
    for path in [format!("/account/orders/{id}"), format!("/checkout/{id}")] {
        let (status, body) = browser.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body.contains("페이지를 찾을 수 없습니다"), "{path}");
    }
}

#[tokio::test]
async fn the_waiting_room_page_says_it_needs_javascript_when_it_is_off() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let buyer = app.user().await;
    let browser = app.signed_in_browser(&buyer, Some("en")).await.0;
    let (status, body) = browser.page(&format!("/e/{}/queue", shop.event_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<noscript><p class=\"notice\">This page is live and needs JavaScript"));
}

#[tokio::test]
async fn sign_in_and_sign_up_pages_render_in_both_languages_and_keep_next_local() {
    let app = TestApp::spawn().await;
    let (status, body) = app.browser().page("/account/sign-in?next=%2Fe%2Fx").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"data-next="/e/x""#));
    assert!(
        body.contains(r#"autocomplete="username webauthn""#),
        "passkeys in autofill"
    );
    let (_, body) = app
        .browser()
        .page("/account/sign-in?next=https%3A%2F%2Fevil.example")
        .await;
    assert!(body.contains(r#"data-next="/""#));
    assert!(!body.contains("data-next=\"https") && !body.contains("return_to=https"));

    let english = app.browser();
    english.get("/lang?to=en&next=/").await;
    let (status, body) = english.page("/account/sign-up").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Sign up") && body.contains(r#"data-api="/auth/signup""#));
    let (_, body) = app.browser().page("/account/reset").await;
    assert!(body.contains("비밀번호 재설정"));

    let buyer = app.user().await;
    let browser = app.signed_in_browser(&buyer, Some("ko")).await.0;
    let response = browser
        .get("/account/sign-in?next=%2Faccount%2Forders")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(Browser::location(&response), "/account/orders");
}
