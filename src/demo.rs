//! Demo data for `serve --demo`: accounts to try the service with and a realistic catalog,
//! created once on an empty database.

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    app::AppState,
    auth::{
        model::{Email, Locale, Role},
        users::{self, NewUser},
    },
    catalog::{access::Viewer, events, products::store as products},
    db::entities::users as user_rows,
    error::AppError,
    infra::rng,
};

/// Seeds accounts and the catalog when there are no users; prints the credentials once.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    if user_rows::Entity::find().count(&state.db).await? > 0 {
        return Ok(());
    }
    let accounts = [
        ("admin@boxoffice.local", "관리자", Role::Admin),
        ("organizer@boxoffice.local", "주최자", Role::Organizer),
        ("buyer@boxoffice.local", "구매자", Role::User),
    ];
    println!("demo accounts (shown once):");
    let mut organizer = None;
    for (email, name, role) in accounts {
        let password = rng::token(state.rng.as_ref(), 12);
        let hash = state
            .passwords
            .hash(state.rng.clone(), password.clone())
            .await?;
        let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let user = users::insert(
            &state.db,
            state.clock.now(),
            NewUser {
                email: &email,
                password_hash: Some(hash),
                name: Some(name.to_owned()),
                nickname: None,
                locale: Locale::Ko,
                role,
                vip: false,
                verified: true,
            },
        )
        .await?;
        if role == Role::Organizer {
            organizer = Some(Viewer {
                user_id: user.id,
                role,
            });
        }
        println!(
            "  {:<10} {:<28} {}",
            role.as_str(),
            email.as_str(),
            password
        );
    }
    if let Some(organizer) = organizer {
        seed_catalog(state, &organizer)
            .await
            .map_err(|e| anyhow::anyhow!("demo catalog: {e}"))?;
    }
    Ok(())
}

fn at(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn body<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, AppError> {
    serde_json::from_value(value).map_err(|e| AppError::internal(anyhow::anyhow!("demo body: {e}")))
}

/// A two-night concert (seat maps in four grades, standing tickets, merch, a bundle and a
/// package) whose sales open a few minutes after start, plus a small show on sale now.
async fn seed_catalog(state: &AppState, organizer: &Viewer) -> Result<(), AppError> {
    let now = state.clock.now();
    let day = (now + Duration::days(21)).replace_time(time::macros::time!(10:00));
    let concert = events::create(
        state,
        organizer,
        body(json!({
            "title": "boxoffice 윈터 라이브 2026",
            "description": "두 밤 동안 이어지는 겨울 콘서트. 지정석 네 등급과 스탠딩, 공식 굿즈를 함께 판매합니다.",
            "start_at": at(day),
            "end_at": at(day + Duration::days(1) + Duration::hours(3)),
            "total_tickets": 5000,
            "venue": {"name": "올림픽홀", "address": "서울 송파구 올림픽로 424"},
            "sale_open_at": at(now + Duration::minutes(5)),
            "order_hold_seconds": 600,
            "cancel_policy": {"tiers": [{"hours_before": 168, "fee_percent": 0}, {"hours_before": 24, "fee_percent": 10}], "otherwise": "NO_CANCEL"},
            "status": "PUBLISHED"
        }))?,
    )
    .await?;
    let first = concert
        .performances
        .first()
        .map(|p| p.id.clone())
        .unwrap_or_default();
    crate::catalog::performances::update(
        state,
        organizer,
        &concert.id,
        &first,
        body(json!({"capacity": 2500, "doors_open_at": at(day - Duration::hours(1))}))?,
    )
    .await?;
    let second = crate::catalog::performances::create(
        state,
        organizer,
        &concert.id,
        body(json!({"start_at": at(day + Duration::days(1)), "doors_open_at": at(day + Duration::days(1) - Duration::hours(1)), "capacity": 2500, "per_user_limit": 4}))?,
    )
    .await?
    .id;
    for performance in [&first, &second] {
        seed_seat_map(state, organizer, &concert.id, performance).await?;
        for (grade, price) in [
            ("VIP", 165_000),
            ("R", 143_000),
            ("S", 121_000),
            ("A", 99_000),
        ] {
            products::create(
                state,
                organizer,
                body(json!({"event_id": concert.id, "type": "TICKET", "name": format!("{grade}석"), "price": price,
                    "performance_id": performance, "grade": grade, "seating": "RESERVED", "per_user_limit": 4}))?,
            )
            .await?;
        }
    }
    let mut standing = Vec::new();
    for (night, performance) in [(1, &first), (2, &second)] {
        let ticket = products::create(
            state,
            organizer,
            body(json!({"event_id": concert.id, "type": "TICKET", "name": format!("스탠딩 ({night}일차)"), "price": 110_000,
                "quantity": 500, "performance_id": performance, "grade": "STANDING", "per_user_limit": 4}))?,
        )
        .await?;
        standing.push(ticket.id);
    }
    let shipping = json!([{"kind": "DELIVERY", "name": "택배", "fee": 3000}, {"kind": "PICKUP", "name": "현장 수령", "fee": 0}]);
    let shirt = products::create(
        state,
        organizer,
        body(json!({"event_id": concert.id, "type": "MERCH", "name": "투어 티셔츠", "price": 39_000, "per_user_limit": 5,
            "variants": [
                {"name": "S", "sku": "TEE-S", "quantity": 100}, {"name": "M", "sku": "TEE-M", "quantity": 200},
                {"name": "L", "sku": "TEE-L", "quantity": 200}, {"name": "XL", "sku": "TEE-XL", "quantity": 100}],
            "shipping_options": shipping}))?,
    )
    .await?;
    let ship_date = (now + Duration::days(45)).date().to_string();
    products::create(
        state,
        organizer,
        body(json!({"event_id": concert.id, "type": "MERCH", "name": "공식 응원봉 (예약 판매)", "price": 45_000,
            "description": "재고 소진 후에는 예약 주문으로 받습니다.",
            "variants": [{"name": "DEFAULT", "sku": "LIGHTSTICK", "quantity": 50, "preorder_limit": 1000, "expected_ship_date": ship_date}],
            "shipping_options": shipping}))?,
    )
    .await?;
    let poster = products::create(
        state,
        organizer,
        body(json!({"event_id": concert.id, "type": "MERCH", "name": "한정판 포스터", "price": 15_000, "quantity": 300,
            "shipping_options": shipping}))?,
    )
    .await?;
    let medium = shirt
        .variants
        .iter()
        .find(|v| v.sku == "TEE-M")
        .map(|v| v.id.clone());
    products::create(
        state,
        organizer,
        body(json!({"event_id": concert.id, "type": "PACKAGE", "kind": "BUNDLE", "name": "굿즈 세트 (티셔츠 M + 포스터)", "price": 49_000,
            "quantity": 100, "components": [{"product_id": shirt.id, "variant_id": medium, "quantity": 1}, {"product_id": poster.id, "quantity": 1}],
            "shipping_options": shipping}))?,
    )
    .await?;
    products::create(
        state,
        organizer,
        body(json!({"event_id": concert.id, "type": "PACKAGE", "name": "스탠딩 + 포스터 패키지 (1일차)", "price": 119_000,
            "quantity": 50, "components": [{"product_id": standing[0], "quantity": 1}, {"product_id": poster.id, "quantity": 1}]}))?,
    )
    .await?;

    let jazz_day = (now + Duration::days(7)).replace_time(time::macros::time!(11:00));
    let jazz = events::create(
        state,
        organizer,
        body(
            json!({"title": "재즈 나이트", "start_at": at(jazz_day), "total_tickets": 200,
            "venue": {"name": "블루노트 서울"}, "status": "PUBLISHED"}),
        )?,
    )
    .await?;
    products::create(
        state,
        organizer,
        body(json!({"event_id": jazz.id, "type": "TICKET", "name": "일반석", "price": 50_000, "quantity": 200, "per_user_limit": 4}))?,
    )
    .await?;
    println!(
        "demo catalog: \"{}\" (sales open in 5 minutes) and \"{}\" (on sale now)",
        concert.title, jazz.title
    );
    Ok(())
}

/// A 2,000-seat map in four grades with four wheelchair places held back.
async fn seed_seat_map(
    state: &AppState,
    organizer: &Viewer,
    event_id: &str,
    performance_id: &str,
) -> Result<(), AppError> {
    let map = body(json!({"blocks": [
        {"section": "Floor", "rows": 4, "seats_per_row": 50, "grade": "VIP", "x": 0, "y": 0, "row_labels": "LETTERS"},
        {"section": "A", "rows": 12, "seats_per_row": 50, "grade": "R", "x": 0, "y": 60},
        {"section": "B", "rows": 12, "seats_per_row": 50, "grade": "S", "x": 0, "y": 200},
        {"section": "C", "rows": 12, "seats_per_row": 50, "grade": "A", "x": 0, "y": 340}
    ]}))?;
    crate::catalog::seats::store::replace(state, organizer, event_id, performance_id, map).await?;
    let held_back = body(json!({"block": ["C-12-1", "C-12-2", "C-12-3", "C-12-4"]}))?;
    crate::catalog::seats::store::change_blocks(
        state,
        organizer,
        event_id,
        performance_id,
        held_back,
    )
    .await?;
    Ok(())
}
