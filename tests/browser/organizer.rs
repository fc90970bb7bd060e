//! The organizer's journey through the pages: an event with a seat map, put on sale.

use boxoffice::auth::model::Role;
use serde_json::json;

use crate::{
    app,
    harness::{Browser, DESKTOP, Options, PHONE},
    sign_in,
};

/// Sets a field's value directly (Chromium's `datetime-local` does not take typed text).
async fn set(browser: &Browser, css: &str, value: &str) {
    browser.wait_for(css).await;
    browser
        .js(&format!(
            "const el = document.querySelector({}); el.value = {}; el.dispatchEvent(new Event('input', {{bubbles: true}}));",
            json!(css),
            json!(value)
        ))
        .await;
}

#[tokio::test]
async fn an_organizer_creates_an_event_with_a_seat_map_and_opens_the_sale() {
    let app = app().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let Some(browser) = Browser::open(&app.base, Options::default()).await else {
        return;
    };
    sign_in(&browser, &organizer.email, "/manage/events/new").await;

    // The organizer's profile is Korean, so the pages are.
    // The event form: dates go from the browser's local time to ISO through enhance.js.
    browser.fill("#ev-title", "Seat Map Night").await;
    browser.fill("#ev-total", "200").await;
    browser.fill("#ev-venue", "Olympic Hall").await;
    set(&browser, "#ev-start", "2027-03-10T19:00").await;
    browser.click("#event-form button[type=submit]").await;
    browser
        .wait_until(
            "event created",
            "/^\\/manage\\/events\\/[0-9a-f-]{36}$/.test(location.pathname)",
        )
        .await;
    let event_path = browser.path().await;
    let event_id = event_path.trim_start_matches("/manage/events/").to_owned();
    assert!(browser.text("h1").await.contains("Seat Map Night"));
    // The start comes back as typed, whatever the event's and the browser's time zones.
    browser
        .wait_until(
            "start shown in the browser's time zone",
            "document.querySelector('#ev-start').value === '2027-03-10T19:00'",
        )
        .await;

    // The seat-map generator: the default blocks are previewed and saved.
    browser.click("a[href$='/seats']").await;
    browser.wait_for("#preview svg circle").await;
    let seats_path = browser.path().await;
    assert_eq!(browser.text("#seat-count").await, "80");
    browser.fill("#blk-2-rows", "6").await;
    browser
        .wait_until(
            "preview follows the blocks",
            "document.querySelector('#seat-count').textContent === '90'",
        )
        .await;
    browser.click("#seat-editor button[type=submit]").await;
    browser.wait_for("#seat-editor .success").await;
    browser.wait_for("#current svg circle").await;
    let drawn = browser
        .js("return document.querySelectorAll('#current svg circle').length;")
        .await;
    assert_eq!(drawn, json!(90));

    // Reserved tickets for both grades.
    for (grade, price) in [("VIP", "150000"), ("R", "90000")] {
        browser
            .goto(&format!("/manage/events/{event_id}/products"))
            .await;
        browser.fill("#t-name", &format!("{grade} seat")).await;
        browser.fill("#t-grade", grade).await;
        set(&browser, "#t-seating", "RESERVED").await;
        browser.fill("#t-price", price).await;
        browser.click("#new-ticket button[type=submit]").await;
        browser
            .wait_until(
                "product listed",
                &format!("document.querySelector('main').textContent.includes('{grade} seat')"),
            )
            .await;
    }

    // Publish (the confirmation is accepted).
    browser.goto(&event_path).await;
    browser.js("window.confirm = () => true;").await;
    browser.click("#publish-form button[type=submit]").await;
    browser
        .wait_until(
            "published",
            "!document.querySelector('#publish-form') && document.querySelector('h1 .badge').textContent === '공개'",
        )
        .await;

    // The public page shows it on sale with both grades.
    browser.goto(&format!("/e/{event_id}")).await;
    let main = browser.text("main").await;
    assert!(main.contains("Seat Map Night"), "{main}");
    assert!(main.contains("판매 중"), "{main}");
    assert!(main.contains("VIP"), "{main}");

    for (size, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        browser
            .client
            .set_window_size(size.0, size.1)
            .await
            .expect("size");
        browser
            .goto(&format!("/manage/events/{event_id}/sales"))
            .await;
        browser.wait_for("#orders-chart svg rect").await;
        browser
            .screenshot(&format!("manage-dashboard-{name}"))
            .await;
        browser.goto(&seats_path).await;
        browser.wait_for("#current svg circle").await;
        browser
            .js("document.querySelector('#preview').scrollIntoView({block: 'center'});")
            .await;
        browser
            .screenshot(&format!("manage-seat-editor-{name}"))
            .await;
    }
    browser.close().await;
}

#[tokio::test]
async fn at_the_door_a_ticket_shows_ok_then_already_used_with_its_time() {
    let app = app().await;
    let shop = crate::shop::Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order =
        crate::shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 1}])).await;
    let order_id = crate::shop::id(&order);
    crate::shop::confirm(&app, &buyer, &order_id).await;
    let tickets: serde_json::Value = app
        .get_as(&format!("/orders/{order_id}/tickets"), &buyer.access_token)
        .await
        .json()
        .await
        .expect("tickets");
    let code = tickets[0]["code"].as_str().expect("code").to_owned();
    let Some(browser) = Browser::open(&app.base, Options::default()).await else {
        return;
    };
    let path = format!("/manage/events/{}/check-in", shop.event_id);
    sign_in(&browser, &shop.organizer.email, &path).await;

    browser.fill("#code", &code).await;
    browser.click("#check-form button[type=submit]").await;
    browser
        .wait_until(
            "admitted",
            "document.querySelector('#check-result.ok strong')?.textContent === '입장 확인'",
        )
        .await;
    browser.fill("#code", &code).await;
    browser.click("#check-form button[type=submit]").await;
    browser
        .wait_until(
            "already used",
            "document.querySelector('#check-result.used strong')?.textContent === '이미 사용됨'",
        )
        .await;
    assert!(browser.text("#check-result").await.contains("사용 시각"));
    browser.fill("#code", "not-a-ticket").await;
    browser.click("#check-form button[type=submit]").await;
    browser
        .wait_until(
            "invalid",
            "document.querySelector('#check-result.bad strong')?.textContent === '유효하지 않은 티켓'",
        )
        .await;
    // Without a BarcodeDetector the camera button stays hidden and the page says so.
    let scan_shown = browser
        .js("return 'BarcodeDetector' in window || getComputedStyle(document.querySelector('#scan')).display === 'none';")
        .await;
    assert_eq!(scan_shown, json!(true));
    browser.screenshot("manage-check-in-desktop").await;
    browser.close().await;
}
