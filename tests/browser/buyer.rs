//! The buyer's journey through a queued sale, in two browsers at once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    app,
    harness::{Browser, Options},
    helpers::TestApp,
    shop::{self, Shop},
    sign_in,
};

/// Lets the waiting room's ticker admit by moving the app's clock while `until` is false.
async fn admit_while(app: &TestApp, browser: &Browser, until: &str) {
    for _ in 0..300 {
        if browser.js(&format!("return !!({until});")).await == json!(true) {
            return;
        }
        app.clock.advance(time::Duration::milliseconds(500));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not admitted within 15 s");
}

async fn seat_taken(browser: &Browser, index: usize) -> bool {
    browser
        .js(&format!(
            "return document.querySelector('circle.seat[data-index=\"{index}\"]').classList.contains('taken');"
        ))
        .await
        == json!(true)
}

#[tokio::test]
async fn a_buyer_queues_buys_two_adjacent_seats_and_a_t_shirt_sees_qr_codes_and_cancels_with_the_fee_shown()
 {
    let app = app().await;
    let shop = Shop::open_with(
        &app,
        json!({"title": "브라우저 콘서트",
               "cancel_policy": {"tiers": [{"hours_before": 24, "fee_percent": 10}], "otherwise": "NO_CANCEL"}}),
    )
    .await;
    shop.seated(&app, 8).await;
    let tee: Value = shop
        .product(
            &app,
            json!({"type": "MERCH", "name": "투어 티셔츠", "price": "39000",
                   "variants": [{"name": "M", "sku": "TEE-M", "quantity": 10}],
                   "shipping_options": [{"kind": "DELIVERY", "name": "택배", "fee": "3000"},
                                        {"kind": "PICKUP", "name": "현장 수령", "fee": "0"}]}),
        )
        .await;
    let queue = app
        .client
        .put(app.url(&format!("/events/{}/queue", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"enabled": true, "capacity": 10, "admit_per_second": 5}))
        .send()
        .await
        .expect("queue settings");
    assert!(queue.status().is_success());
    let (minji, jisoo) = (app.user().await, app.user().await);

    let Some(a) = Browser::open(&app.base, Options::default()).await else {
        return;
    };
    sign_in(&a, &minji.email, &format!("/e/{}/buy", shop.event_id)).await;
    // Without an admission the shop sends her to the waiting room, which admits her.
    a.wait_until("the waiting room", "location.pathname.endsWith('/queue')")
        .await;
    a.wait_for("#queue-state").await;
    a.screenshot("queue-desktop").await;
    admit_while(&app, &a, "location.pathname.endsWith('/buy')").await;

    a.wait_until(
        "the seat map",
        "document.querySelectorAll('circle.seat').length === 8",
    )
    .await;
    a.click("circle.seat[data-index=\"2\"]").await;
    a.click("circle.seat[data-index=\"3\"]").await;
    let chosen = a.text("#chosen").await;
    assert!(
        chosen.contains("A 1-3") && chosen.contains("A 1-4"),
        "{chosen}"
    );
    let tee_id = shop::id(&tee);
    a.fill(&format!("#qty-{tee_id}"), "1").await;
    a.wait_until(
        "the address form",
        "!document.getElementById('address').hidden",
    )
    .await;
    a.fill("[name='shipping_address.recipient']", "김민지")
        .await;
    a.fill("[name='shipping_address.phone']", "010-1234-5678")
        .await;
    a.fill("[name='shipping_address.postcode']", "06236").await;
    a.fill(
        "[name='shipping_address.address_lines.0']",
        "서울특별시 강남구 테헤란로 123",
    )
    .await;
    a.screenshot("seat-map-desktop").await;
    a.click("#place-order").await;
    a.wait_until("the checkout", "location.pathname.startsWith('/checkout/')")
        .await;
    a.screenshot("checkout-desktop").await;
    a.click("#pay-button").await;
    a.wait_until("the paid order", "location.search.includes('paid=1')")
        .await;
    a.wait_until(
        "two QR codes",
        "document.querySelectorAll('.ticket img').length === 2",
    )
    .await;
    a.screenshot("order-desktop").await;
    let order_path = a.path().await;

    // A second buyer sees those seats taken.
    let Some(b) = Browser::open(&app.base, Options::default()).await else {
        return;
    };
    sign_in(&b, &jisoo.email, &format!("/e/{}/queue", shop.event_id)).await;
    admit_while(&app, &b, "location.pathname.endsWith('/buy')").await;
    b.wait_until(
        "the seat map",
        "document.querySelectorAll('circle.seat').length === 8",
    )
    .await;
    assert!(seat_taken(&b, 2).await && seat_taken(&b, 3).await);
    assert!(!seat_taken(&b, 4).await);

    // A request without the page's CSRF token is refused.
    let refused = a
        .js_async(&format!(
            "fetch('/orders/{}/cancel', {{method: 'PUT', headers: {{'content-type': 'application/json'}}, body: '{{}}'}})
               .then(async r => done([r.status, (await r.json()).code]));",
            order_path.trim_start_matches("/account/orders/").split('?').next().unwrap_or_default()
        ))
        .await;
    assert_eq!(refused, json!([403, "csrf_failed"]));

    // The fee is shown before she cancels.
    a.goto(order_path.split('?').next().unwrap_or_default())
        .await;
    assert_eq!(a.text("#cancel-fee").await, "30,300원");
    a.click("#cancel-button").await;
    a.client.accept_alert().await.expect("confirm");
    a.wait_until(
        "refunded",
        "document.getElementById('order-status').textContent.includes('환불')",
    )
    .await;

    // …and the second browser sees the seats free again, live.
    b.wait_until(
        "the seats back on sale",
        "!document.querySelector('circle.seat[data-index=\"2\"]').classList.contains('taken')",
    )
    .await;
    assert!(!seat_taken(&b, 3).await);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn on_a_phone_a_buyer_picks_a_seat_with_the_keyboard_pays_and_sees_the_ticket() {
    let app = app().await;
    let shop = Shop::open_with(&app, json!({"title": "모바일 콘서트"})).await;
    shop.seated(&app, 6).await;
    let buyer = app.user().await;
    let Some(phone) = Browser::open(
        &app.base,
        Options {
            size: crate::harness::PHONE,
            javascript: true,
        },
    )
    .await
    else {
        return;
    };
    sign_in(&phone, &buyer.email, &format!("/e/{}/buy", shop.event_id)).await;
    phone
        .wait_until(
            "the seat map",
            "document.querySelectorAll('circle.seat').length === 6",
        )
        .await;
    // Keyboard: the first seat holds the focus; → moves along the row, Enter chooses.
    phone
        .js("document.querySelector('circle.seat[data-index=\"0\"]').focus(); return true;")
        .await;
    let focused = phone.wait_for("circle.seat[data-index=\"0\"]").await;
    focused.send_keys("\u{E014}").await.expect("arrow right");
    phone
        .wait_until(
            "focus moved",
            "document.activeElement.dataset.index === '1'",
        )
        .await;
    phone
        .wait_for("circle.seat[data-index=\"1\"]")
        .await
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    assert!(phone.text("#chosen").await.contains("A 1-2"));
    phone.screenshot("seat-map-phone").await;
    phone.click("#place-order").await;
    phone
        .wait_until("the checkout", "location.pathname.startsWith('/checkout/')")
        .await;
    phone.screenshot("checkout-phone").await;
    phone.click("#pay-button").await;
    phone
        .wait_until(
            "the ticket",
            "document.querySelectorAll('.ticket img').length === 1",
        )
        .await;
    phone.screenshot("order-phone").await;
    // Nothing wider than the screen.
    let overflow = phone
        .js("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
        .await;
    assert_eq!(overflow, json!(true), "the page fits the phone's width");
    phone.close().await;
}
