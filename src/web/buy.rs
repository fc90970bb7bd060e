//! The buyer's shopping pages: `/e/{id}/buy` (seat map, general admission, merchandise with
//! variants and shipping, packages, notify-me) and `/e/{id}/queue` (the waiting room). Both are
//! live: the server renders the frame and a JSON data block, `seatmap.js` / `queue.js` do the rest.

use askama::Template;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::{
    context::{Ctx, PageResult, render},
    format,
};
use crate::{
    app::AppState,
    catalog::{
        access::Viewer,
        events::{self, EventView},
        model::SaleState,
        products::{
            self,
            model::{ListQuery, ProductType, ProductView, Seating, ShippingKind},
        },
    },
};

crate::texts! {
    /// Texts of the buy and waiting-room pages.
    pub struct BuyTexts {
        title: "예매", "Buy";
        performance: "회차 선택", "Choose a performance";
        seat_map: "좌석 배치도", "Seat map";
        seat_map_help: "좌석을 눌러 선택하세요. 키보드: 화살표로 이동, Enter 또는 스페이스로 선택.", "Tap a seat to choose it. Keyboard: arrows move, Enter or Space chooses.";
        zoom_in: "확대", "Zoom in";
        zoom_out: "축소", "Zoom out";
        legend: "등급", "Grades";
        taken: "선택 불가", "Taken";
        chosen: "선택한 좌석", "Chosen";
        none_chosen: "아직 선택한 좌석이 없습니다.", "No seats chosen yet.";
        limit: "1인 최대", "Limit per person";
        tickets: "티켓", "Tickets";
        general: "자유석", "General admission";
        quantity: "수량", "Quantity";
        merch: "굿즈", "Merchandise";
        variant: "옵션", "Option";
        shipping: "받는 방법", "Delivery";
        address: "배송지", "Shipping address";
        recipient: "받는 분", "Recipient";
        phone: "연락처", "Phone";
        postcode: "우편번호", "Postcode";
        address_line: "주소", "Address";
        address_line2: "상세 주소", "Address line 2";
        packages: "패키지", "Packages";
        preorder: "예약 판매 상품입니다. 발송 예정일에 보내 드립니다.", "Pre-order: ships on the expected date.";
        sold_out: "매진", "Sold out";
        notify: "입고 알림 받기", "Notify me";
        notify_done: "입고되면 메일로 알려 드립니다.", "We will e-mail you when it is back.";
        total: "합계", "Total";
        order: "주문하기", "Place order";
        not_on_sale: "지금은 판매 중이 아닙니다.", "Not on sale right now.";
        queue_first: "이 공연은 대기열을 거쳐 입장합니다.", "This sale goes through a waiting room.";
        go_queue: "대기열로 가기", "Go to the waiting room";
        admission_left: "구매 가능 시간", "Time left to buy";
        seats_gone: "선택한 좌석 중 일부가 방금 판매되었습니다. 다른 좌석을 골라 주세요.", "Some chosen seats were just taken. Please choose others.";
        choose_something: "티켓이나 상품을 하나 이상 골라 주세요.", "Choose at least one ticket or item.";
        over_limit: "1인 구매 한도를 넘었습니다.", "That is more than the per-person limit.";
        queue_title: "대기열", "Waiting room";
        queue_joining: "대기열에 들어가는 중…", "Joining the waiting room…";
        queue_position: "내 순서", "Your place";
        queue_ahead: "앞에 있는 사람", "People ahead";
        queue_eta: "예상 대기 시간", "Estimated wait";
        queue_pre: "판매 시작 시각에 입장 순서가 무작위로 정해집니다. 일찍 오셔도, 새로고침하셔도 순서는 같습니다.", "Your place is drawn at random when the sale opens: arriving early or reloading changes nothing.";
        queue_opens: "판매 시작", "Sale opens";
        queue_paused: "판매자가 입장을 잠시 멈췄습니다. 순서는 그대로 유지됩니다.", "The organizer has paused admissions. You keep your place.";
        queue_admitted: "입장하셨습니다! 구매 페이지로 이동합니다.", "You are in! Taking you to the shop.";
        queue_expired: "입장 시간이 지났습니다. 다시 줄을 서 주세요.", "Your shopping time ran out. Please join the line again.";
        queue_reconnecting: "연결이 끊겨 다시 연결하는 중…", "Connection lost; reconnecting…";
        queue_leave: "대기열에서 나가기", "Leave the line";
        queue_left: "대기열에서 나왔습니다.", "You left the line.";
        queue_rejoin: "다시 줄 서기", "Join again";
        queue_keep_open: "이 창을 열어 두세요. 순서가 오면 자동으로 이동합니다.", "Keep this page open; it moves on by itself when it is your turn.";
        queue_solving: "잠시만 기다려 주세요. 자동 등록 방지 확인 중…", "One moment: checking you are not a bot…";
        minutes: "분", "min";
        seconds: "초", "s";
        lane_vip: "VIP 대기열", "VIP lane";
    }
}

/// `?performance=`.
#[derive(Debug, Default, Deserialize)]
pub struct BuyParams {
    performance: Option<String>,
}

/// A ticket grade of the chosen performance, for the seat map script.
#[derive(Serialize)]
struct GradeData {
    grade: String,
    product_id: String,
    name: String,
    price: i64,
    price_text: String,
    remaining: i64,
}

/// What `seatmap.js` needs, as the page's JSON data block.
#[derive(Serialize)]
struct BuyData<'a> {
    event_id: &'a str,
    performance_id: Option<&'a str>,
    currency: &'a str,
    lang: &'static str,
    per_user_limit: Option<i32>,
    queue: bool,
    reserved: Vec<GradeData>,
    /// Unit price of every product, in hundredths.
    prices: std::collections::HashMap<&'a str, i64>,
    /// Fee of every shipping option, in hundredths.
    fees: std::collections::HashMap<&'a str, i64>,
    texts: &'static BuyTexts,
}

impl Serialize for BuyTexts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in [
            ("taken", self.taken),
            ("none_chosen", self.none_chosen),
            ("seats_gone", self.seats_gone),
            ("choose_something", self.choose_something),
            ("over_limit", self.over_limit),
            ("queue_joining", self.queue_joining),
            ("queue_paused", self.queue_paused),
            ("queue_admitted", self.queue_admitted),
            ("queue_expired", self.queue_expired),
            ("queue_reconnecting", self.queue_reconnecting),
            ("queue_left", self.queue_left),
            ("queue_pre", self.queue_pre),
            ("queue_solving", self.queue_solving),
            ("minutes", self.minutes),
            ("seconds", self.seconds),
            ("notify_done", self.notify_done),
        ] {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A product line of the page.
pub struct Line {
    id: String,
    name: String,
    price: String,
    sold_out: bool,
    max: i64,
    variants: Vec<(String, String, bool)>,
    shipping: Vec<(String, String, bool)>,
    preorder: bool,
    description: Option<String>,
}

#[derive(Template)]
#[template(path = "web/buy.html")]
struct BuyPage {
    ctx: Ctx,
    b: &'static BuyTexts,
    event: EventView,
    performances: Vec<(String, String, bool)>,
    per_user_limit: Option<i32>,
    legend: Vec<(usize, String, String)>,
    general: Vec<Line>,
    goods: Vec<(&'static str, Vec<Line>)>,
    on_sale: bool,
    queue: bool,
    data: String,
}

/// `GET /e/{id}/buy`: choose seats, tickets and goods (signed in).
pub async fn buy(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(params): Query<BuyParams>,
) -> PageResult {
    let user = ctx.require_user()?.clone();
    let viewer = Viewer::from(&user);
    let event = events::get(&state, Some(&viewer), &id).await?;
    let items = products::store::list(
        &state,
        Some(&viewer),
        ListQuery {
            event_id: Some(event.id.clone()),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await?
    .items;
    let lang = ctx.lang;
    let tz = event.timezone.clone();
    let chosen = params
        .performance
        .as_deref()
        .and_then(|p| event.performances.iter().find(|x| x.id == p))
        .or_else(|| event.performances.first());
    let performance_id = chosen.map(|p| p.id.clone());
    let per_user_limit = chosen.and_then(|p| p.per_user_limit);
    let performances = event
        .performances
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                format::datetime(lang, p.start_at, &tz),
                Some(&p.id) == performance_id.as_ref(),
            )
        })
        .collect();
    let of_performance = |p: &&ProductView| p.performance_id == performance_id;
    let reserved: Vec<GradeData> = items
        .iter()
        .filter(|p| p.product_type == ProductType::Ticket && p.seating == Some(Seating::Reserved))
        .filter(of_performance)
        .map(|p| GradeData {
            grade: p.grade.clone().unwrap_or_default(),
            product_id: p.id.clone(),
            name: p.name.clone(),
            price: p.price.minor(),
            price_text: format::money(lang, p.price, &event.currency),
            remaining: p.remaining,
        })
        .collect();
    let legend = reserved
        .iter()
        .enumerate()
        .map(|(i, g)| {
            (
                i % 8,
                format!("{} · {}", g.grade, g.name),
                g.price_text.clone(),
            )
        })
        .collect();
    let line = |p: &ProductView| {
        let limit = [p.per_order_limit, p.per_user_limit]
            .into_iter()
            .flatten()
            .min()
            .map_or(10, i64::from)
            .min(10);
        let preorder = p
            .variants
            .iter()
            .any(|v| v.remaining <= 0 && v.preorder_remaining.is_some_and(|n| n > 0));
        Line {
            id: p.id.clone(),
            name: p.name.clone(),
            price: format::money(lang, p.price, &event.currency),
            sold_out: p.remaining <= 0 && !preorder,
            max: limit.min(p.remaining.max(if preorder { limit } else { 0 })),
            variants: p
                .variants
                .iter()
                .map(|v| {
                    let available = v.remaining > 0 || v.preorder_remaining.is_some_and(|n| n > 0);
                    (v.id.clone(), v.name.clone(), available)
                })
                .collect(),
            shipping: p
                .shipping_options
                .iter()
                .map(|o| {
                    let fee = format::money(lang, o.fee, &event.currency);
                    (
                        o.id.clone(),
                        format!("{} (+{fee})", o.name),
                        o.kind == ShippingKind::Delivery,
                    )
                })
                .collect(),
            preorder,
            description: p.description.clone(),
        }
    };
    let general = items
        .iter()
        .filter(|p| p.product_type == ProductType::Ticket && p.seating != Some(Seating::Reserved))
        .filter(of_performance)
        .map(line)
        .collect();
    let merch = items
        .iter()
        .filter(|p| p.product_type == ProductType::Merch)
        .map(line)
        .collect();
    let packages = items
        .iter()
        .filter(|p| p.product_type == ProductType::Package)
        .map(line)
        .collect();
    let queue = crate::queue::settings::load(&state, &event.id)
        .await?
        .is_some_and(|q| q.enabled);
    let b = BuyTexts::of(lang);
    let data = super::context::json_block(&BuyData {
        event_id: &event.id,
        performance_id: performance_id.as_deref(),
        currency: &event.currency,
        lang: super::i18n::tag(lang),
        per_user_limit,
        queue,
        reserved,
        prices: items
            .iter()
            .map(|p| (p.id.as_str(), p.price.minor()))
            .collect(),
        fees: items
            .iter()
            .flat_map(|p| p.shipping_options.iter())
            .map(|o| (o.id.as_str(), o.fee.minor()))
            .collect(),
        texts: b,
    })?;
    render(&BuyPage {
        b,
        performances,
        per_user_limit,
        legend,
        general,
        goods: vec![(b.merch, merch), (b.packages, packages)],
        on_sale: event.sale_state == SaleState::OnSale,
        queue,
        data,
        event,
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/queue.html")]
struct QueuePage {
    ctx: Ctx,
    b: &'static BuyTexts,
    event: EventView,
    opens: String,
    data: String,
}

/// What `queue.js` needs.
#[derive(Serialize)]
struct QueueData<'a> {
    event_id: &'a str,
    user_id: &'a str,
    texts: &'static BuyTexts,
}

/// `GET /e/{id}/queue`: the waiting room (signed in).
pub async fn queue(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let user = ctx.require_user()?.clone();
    let event = events::get(&state, Some(&Viewer::from(&user)), &id).await?;
    let b = BuyTexts::of(ctx.lang);
    let data = super::context::json_block(&QueueData {
        event_id: &event.id,
        user_id: &user.user_id,
        texts: b,
    })?;
    render(&QueuePage {
        b,
        opens: format::datetime(ctx.lang, event.sale_open_at, &event.timezone),
        data,
        event,
        ctx,
    })
}
