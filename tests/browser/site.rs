//! The site as anyone sees it: styled pages, both sizes, and what happens without JavaScript.

use serde_json::json;

use crate::{
    app,
    harness::{Browser, DESKTOP, Options, PHONE},
    shop::Shop,
};

#[tokio::test]
async fn the_event_list_and_event_page_load_styled_on_desktop_and_phone() {
    let app = app().await;
    let shop = Shop::open_with(
        &app,
        json!({"title": "겨울 콘서트 2026", "venue": {"name": "올림픽홀"}}),
    )
    .await;
    shop.ticket(&app, 100).await;
    for (size, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        let Some(browser) = Browser::open(
            &app.base,
            Options {
                size,
                javascript: true,
            },
        )
        .await
        else {
            return;
        };
        browser.goto("/").await;
        browser.wait_for(".card h2").await;
        assert!(browser.text("main").await.contains("겨울 콘서트 2026"));
        // The stylesheet arrived under its hashed name and applies (CSP allowed it).
        let header = browser
            .js("return getComputedStyle(document.querySelector('header.top')).backgroundColor;")
            .await;
        assert_eq!(header, json!("rgb(26, 26, 46)"));
        browser.screenshot(&format!("events-{name}")).await;
        browser.goto(&format!("/e/{}", shop.event_id)).await;
        assert!(browser.text("h1").await.contains("겨울 콘서트 2026"));
        browser.screenshot(&format!("event-{name}")).await;
        browser.close().await;
    }
}

#[tokio::test]
async fn without_javascript_the_site_lists_events_and_live_pages_say_they_need_it() {
    let app = app().await;
    let shop = Shop::open_with(&app, json!({"title": "스크립트 없는 밤"})).await;
    let Some(browser) = Browser::open(
        &app.base,
        Options {
            javascript: false,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    browser.goto("/").await;
    assert!(browser.text("main").await.contains("스크립트 없는 밤"));
    browser.goto(&format!("/e/{}", shop.event_id)).await;
    assert!(browser.text("h1").await.contains("스크립트 없는 밤"));
    // A live page (signing in runs in the page's script) says so plainly.
    browser.goto("/account/sign-in").await;
    assert!(
        browser.text("main").await.contains("JavaScript"),
        "the page explains that it needs JavaScript"
    );
    browser.close().await;
}
