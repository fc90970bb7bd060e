//! The organizer's and administrator's pages: who may open them, whose events they show, both
//! languages, escaping, and what the mail outbox never shows.

use boxoffice::auth::model::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Browser, TestApp},
    shop::{self, Shop},
};

fn event_pages(event_id: &str, performance_id: &str) -> Vec<String> {
    vec![
        format!("/manage/events/{event_id}"),
        format!("/manage/events/{event_id}/products"),
        format!("/manage/events/{event_id}/sales"),
        format!("/manage/events/{event_id}/orders"),
        format!("/manage/events/{event_id}/queue"),
        format!("/manage/events/{event_id}/check-in"),
        format!("/manage/events/{event_id}/performances/{performance_id}/seats"),
    ]
}

const ADMIN_PAGES: [&str; 6] = [
    "/manage/admin",
    "/manage/admin/security",
    "/manage/admin/ip-blocks",
    "/manage/admin/mail",
    "/manage/admin/audit",
    "/manage/admin/queues",
];

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_buyers_get_a_forbidden_page() {
    let app = TestApp::spawn().await;
    let response = app.get("/manage").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(Browser::location(&response).starts_with("/account/sign-in?next=%2Fmanage"));

    let buyer = app.user_with_role(Role::User).await;
    let browser = app.signed_in_browser(&buyer, Some("en")).await.0;
    for path in ["/manage", "/manage/events/new"] {
        let (status, body) = browser.page(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("<html lang=\"en\">"), "{path}: {body}");
        assert!(!body.contains("New event"), "{path}");
    }
}

#[tokio::test]
async fn an_organizer_sees_only_their_events_and_another_organizers_event_is_not_found() {
    let app = TestApp::spawn().await;
    let mine = Shop::open(&app).await;
    let theirs = Shop::open(&app).await;
    // A title no other event has, so the list shows whose event it is.
    let response = app
        .client
        .patch(app.url(&format!("/events/{}", theirs.event_id)))
        .bearer_auth(&theirs.organizer.access_token)
        .json(&json!({"title": "Somebody else's gala"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(response.status(), StatusCode::OK);
    let browser = app.signed_in_browser(&mine.organizer, Some("en")).await.0;

    let (status, body) = browser.page("/manage").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&format!("/manage/events/{}", mine.event_id)));
    assert!(body.contains("2026 Winter Concert"));
    assert!(!body.contains("Somebody else"), "{body}");
    assert!(!body.contains(&theirs.event_id));

    for path in event_pages(&theirs.event_id, &theirs.performance_id) {
        let (status, body) = browser.page(&path).await;
        // Check-in answers like its API: the event is public, but only its staff may scan.
        let expected = if path.ends_with("/check-in") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(status, expected, "{path}");
        assert!(!body.contains("Somebody else"), "{path}");
    }
    for path in event_pages(&mine.event_id, &mine.performance_id) {
        let (status, _) = browser.page(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn an_admin_sees_every_event_on_the_manage_page() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let admin = app.admin().await;
    let browser = app.signed_in_browser(&admin, Some("ko")).await.0;
    let (status, body) = browser.page("/manage").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(&shop.event_id));
    assert!(body.contains("내 공연"));
}

#[tokio::test]
async fn admin_pages_refuse_organizers_and_open_for_admins_in_both_languages() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let browser = app.signed_in_browser(&organizer, Some("ko")).await.0;
    for path in ADMIN_PAGES {
        let (status, _) = browser.page(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let admin = app.admin().await;
    for (lang, title) in [("ko", "관리자"), ("en", "Administration")] {
        let browser = app.signed_in_browser(&admin, Some(lang)).await.0;
        for path in ADMIN_PAGES {
            let (status, body) = browser.page(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains(title), "{path} in {lang}");
            assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{path}");
        }
    }
    let browser = app.signed_in_browser(&admin, Some("en")).await.0;
    let (_, body) = browser.page("/manage/admin?q=organizer").await;
    assert!(body.contains(&organizer.email), "{body}");
    assert!(!body.contains(&admin.email), "search narrows the list");
}

#[tokio::test]
async fn organizer_pages_render_in_korean_and_english() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    for (lang, words) in [
        (
            "ko",
            [
                "공연 정보",
                "상품",
                "판매 현황",
                "주문",
                "대기열",
                "입장 확인",
                "좌석 배치도 만들기",
            ],
        ),
        (
            "en",
            [
                "Performances",
                "Add a ticket product",
                "Orders per minute",
                "CSV export",
                "Use a waiting room",
                "Ticket code",
                "Seat map generator",
            ],
        ),
    ] {
        let browser = app.signed_in_browser(&shop.organizer, Some(lang)).await.0;
        for (path, word) in event_pages(&shop.event_id, &shop.performance_id)
            .iter()
            .zip(words)
        {
            let (status, body) = browser.page(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.contains(word), "{path} in {lang} lacks {word}");
            assert!(body.contains(&format!("<html lang=\"{lang}\">")));
        }
        let (status, _) = browser.page("/manage/events/new").await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn titles_and_names_are_escaped_on_the_manage_pages() {
    let app = TestApp::spawn().await;
    let shop = Shop::open_with(&app, json!({"title": "<script>alert(1)</script> Gala"})).await;
    shop.ticket_with(&app, 5, json!({"name": "<img src=x onerror=alert(2)>"}))
        .await;
    let browser = app.signed_in_browser(&shop.organizer, Some("en")).await.0;
    for path in [
        "/manage".to_owned(),
        format!("/manage/events/{}", shop.event_id),
        format!("/manage/events/{}/products", shop.event_id),
        format!("/manage/events/{}/sales", shop.event_id),
    ] {
        let (status, body) = browser.page(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.contains("<script>alert(1)"), "{path}");
        assert!(!body.contains("<img src=x"), "{path}");
    }
    let (_, body) = browser.page("/manage").await;
    assert!(body.contains("&#60;script&#62;alert(1)"), "{body}");
}

#[tokio::test]
async fn an_organizer_sees_the_orders_and_sales_of_their_event() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let ticket = shop.ticket(&app, 10).await;
    let buyer = app.user().await;
    let order = shop::place(&app, &buyer, json!([{"product_id": ticket, "quantity": 2}])).await;
    let order_id = shop::id(&order);
    shop::confirm(&app, &buyer, &order_id).await;
    let browser = app.signed_in_browser(&shop.organizer, Some("en")).await.0;

    let (_, body) = browser
        .page(&format!("/manage/events/{}/orders", shop.event_id))
        .await;
    assert!(body.contains(&order_id), "{body}");
    assert!(body.contains(&buyer.email));
    assert!(body.contains("Confirmed"));
    assert!(body.contains(&format!(
        "/events/{}/orders/{order_id}/cancel",
        shop.event_id
    )));
    assert!(body.contains(&format!("/events/{}/attendees.csv", shop.event_id)));

    let (_, body) = browser
        .page(&format!(
            "/manage/events/{}/orders?status=REFUNDED",
            shop.event_id
        ))
        .await;
    assert!(!body.contains(&order_id), "filtered out");

    let (_, body) = browser.page("/manage").await;
    assert!(body.contains("<td data-sold>2</td>"), "{body}");

    let (_, body) = browser
        .page(&format!("/manage/events/{}/sales", shop.event_id))
        .await;
    assert!(body.contains(r#"<dd data-total="sold">2</dd>"#), "{body}");
    assert!(body.contains("₩110,000"), "{body}");
    // The chart starts with the minute the order was placed in.
    let minute = app.state.clock.now().unix_timestamp().div_euclid(60);
    assert!(
        body.contains(&format!(r#""history":{{"{minute}":1}}"#)),
        "{body}"
    );
}

#[tokio::test]
async fn the_mail_outbox_shows_recipients_but_never_a_code() {
    let app = TestApp::spawn().await;
    let email = "outbox-check@example.com";
    app.signup(email).await;
    let code = app.mail.wait_for(email, 1).await[0].code();
    let admin = app.admin().await;
    let browser = app.signed_in_browser(&admin, Some("en")).await.0;
    let (status, body) = browser.page("/manage/admin/mail").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(email), "{body}");
    assert!(!body.contains(&code), "the code must not be shown");
    assert!(body.contains("Mail bodies are never shown"));
}

#[tokio::test]
async fn the_queue_page_shows_the_saved_settings_with_live_figures_and_pause() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let browser = app.signed_in_browser(&shop.organizer, Some("en")).await.0;
    let path = format!("/manage/events/{}/queue", shop.event_id);
    let (_, body) = browser.page(&path).await;
    assert!(body.contains("No waiting room set up yet."));
    assert!(!body.contains("queue-live"));

    let response = app
        .client
        .put(app.url(&format!("/events/{}/queue", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"enabled": true, "capacity": 321, "admit_per_second": 7}))
        .send()
        .await
        .expect("queue");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = browser.page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"id="queue-live""#), "{body}");
    assert!(body.contains(r#"value="321""#));
    assert!(body.contains(&format!("/events/{}/queue/pause", shop.event_id)));
    assert!(body.contains("Live figures"));
}

#[tokio::test]
async fn an_admin_sees_an_ip_block_with_a_way_to_lift_it_and_each_account_with_its_controls() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let response = app
        .post_as(
            "/admin/ip-blocks",
            &admin.access_token,
            &json!({"cidr": "203.0.113.0/24", "reason": "<b>stuffing</b>"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let block: serde_json::Value = response.json().await.expect("json");
    let browser = app.signed_in_browser(&admin, Some("en")).await.0;
    let (_, body) = browser.page("/manage/admin/ip-blocks").await;
    assert!(body.contains("203.0.113.0/24"), "{body}");
    assert!(!body.contains("<b>stuffing"), "escaped");
    assert!(body.contains(&format!(
        "data-api=\"/admin/ip-blocks/{}\" data-method=\"DELETE\"",
        block["id"].as_str().expect("id")
    )));

    let (_, body) = browser.page("/manage/admin").await;
    assert!(body.contains(&admin.email));
    assert!(body.contains(r#"data-method="PATCH""#));
    assert!(
        body.contains(r#"<option value="ADMIN" selected>"#),
        "{body}"
    );
}

#[tokio::test]
async fn a_merchandise_edit_form_holds_its_variants_and_shipping_as_the_api_takes_them_back() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let merch = shop.merch(&app, 20).await;
    let product_id = shop::id(&merch);
    let browser = app.signed_in_browser(&shop.organizer, Some("en")).await.0;
    let (_, body) = browser
        .page(&format!("/manage/events/{}/products", shop.event_id))
        .await;
    let start =
        format!(r#"id="pl-variants-{product_id}" name="variants" data-type="json" rows="4">"#);
    let at = body.find(&start).expect("variants field") + start.len();
    let end = at + body[at..].find("</textarea>").expect("end");
    let json = body[at..end].replace("&#34;", "\"").replace("&quot;", "\"");
    let variants: serde_json::Value = serde_json::from_str(&json).expect("variants JSON");
    assert!(variants[0]["id"].is_string(), "{variants}");

    // Sent back unchanged, as the page's form would, the API accepts it.
    let response = app
        .client
        .patch(app.url(&format!("/products/{product_id}")))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"name": "Renamed tee", "variants": variants}))
        .send()
        .await
        .expect("patch");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{text}");
    let (_, body) = browser
        .page(&format!("/manage/events/{}/products", shop.event_id))
        .await;
    assert!(body.contains("Renamed tee"));
}

#[tokio::test]
async fn hidden_products_stay_on_the_organizers_products_page() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    shop.ticket_with(
        &app,
        5,
        json!({"name": "Backstage pass", "status": "HIDDEN"}),
    )
    .await;
    let browser = app.signed_in_browser(&shop.organizer, Some("en")).await.0;
    let (_, body) = browser
        .page(&format!("/manage/events/{}/products", shop.event_id))
        .await;
    assert!(body.contains("Backstage pass"), "{body}");
    assert!(body.contains(r#"<option value="HIDDEN" selected>"#));
}

#[tokio::test]
async fn a_draft_offers_publishing_and_a_canceled_event_offers_neither_publishing_nor_canceling() {
    let app = TestApp::spawn().await;
    let organizer = app.user_with_role(Role::Organizer).await;
    let start = (app.state.clock.now() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let response = app
        .post_as(
            "/events",
            &organizer.access_token,
            &json!({"title": "Draft night", "start_at": start, "total_tickets": 10}),
        )
        .await;
    let event: serde_json::Value = response.json().await.expect("json");
    let id = shop::id(&event);
    let browser = app.signed_in_browser(&organizer, Some("en")).await.0;
    let path = format!("/manage/events/{id}");
    let (_, body) = browser.page(&path).await;
    assert!(body.contains(r#"id="publish-form""#));
    assert!(body.contains(">Draft</span>"));
    assert!(body.contains(&format!(r#"data-api="/events/{id}/cancel""#)));

    let response = app
        .post_as(
            &format!("/events/{id}/cancel"),
            &organizer.access_token,
            &json!({"reason": "venue flooded"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (_, body) = browser.page(&path).await;
    assert!(body.contains(">Canceled</span>"));
    assert!(!body.contains(r#"id="publish-form""#));
    assert!(!body.contains(&format!(r#"data-api="/events/{id}/cancel""#)));
}

#[tokio::test]
async fn door_staff_named_by_the_organizer_get_the_scanner_and_nothing_else() {
    use boxoffice::db::entities::users;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let staff = app.user_with_role(Role::User).await;
    let staff_id = users::Entity::find()
        .filter(users::Column::Email.eq(staff.email.clone()))
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("staff user")
        .id;
    let path = format!("/manage/events/{}/check-in", shop.event_id);
    let browser = app.signed_in_browser(&staff, Some("en")).await.0;
    let (status, _) = browser.page(&path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not named yet");

    let response = app
        .client
        .put(app.url(&format!("/events/{}/check-in/staff", shop.event_id)))
        .bearer_auth(&shop.organizer.access_token)
        .json(&json!({"user_ids": [staff_id]}))
        .send()
        .await
        .expect("staff");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = browser.page(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Ticket code"));
    assert!(
        !body.contains("check-in/staff"),
        "staff cannot edit the staff list"
    );
    assert!(!body.contains("/manage/events/"), "no organizer tabs");
    let (status, _) = browser
        .page(&format!("/manage/events/{}", shop.event_id))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let organizer = app.signed_in_browser(&shop.organizer, Some("en")).await.0;
    let (_, body) = organizer.page(&path).await;
    assert!(
        body.contains(&staff_id),
        "the organizer sees the staff list"
    );
}

#[tokio::test]
async fn a_paid_merchandise_order_shows_where_to_ship_it_and_a_fulfilment_form() {
    let app = TestApp::spawn().await;
    let shop = Shop::open(&app).await;
    let stick = shop.merch(&app, 10).await;
    let delivery = stick["shipping_options"][0]["id"]
        .as_str()
        .expect("option")
        .to_owned();
    let buyer = app.user().await;
    let response = app
        .post_as(
            "/orders",
            &buyer.access_token,
            &json!({"items": [{"product_id": shop::id(&stick), "quantity": 1, "shipping_option_id": delivery}],
                    "shipping_address": shop::address()}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: serde_json::Value = response.json().await.expect("json");
    let order_id = shop::id(&order);
    shop::confirm(&app, &buyer, &order_id).await;

    let browser = app.signed_in_browser(&shop.organizer, Some("ko")).await.0;
    let (_, body) = browser
        .page(&format!("/manage/events/{}/orders", shop.event_id))
        .await;
    assert!(body.contains("배송지: 김민지"), "{body}");
    assert!(body.contains("서울특별시 강남구 테헤란로 123 4층"));
    assert!(body.contains(&format!(
        "/events/{}/orders/{order_id}/items/",
        shop.event_id
    )));
    assert!(body.contains("송장 번호"));
}
