//! The buyer's catalog pages: the event list with search and filters, and an event's page (poster,
//! venue, performances, prices per grade, merchandise, packages, sale state with a countdown).

use askama::Template;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::{
    context::{Ctx, PageResult, render},
    format,
    i18n::Lang,
};
use crate::{
    app::AppState,
    catalog::{
        access::Viewer,
        events::{self, EventView, ListQuery},
        model::SaleState,
        products::{
            self,
            model::{ListQuery as ProductQuery, ProductType, ProductView},
        },
    },
};

crate::texts! {
    /// Texts of the catalog pages.
    pub struct CatalogTexts {
        list_title: "공연·이벤트", "Events";
        search: "검색", "Search";
        search_label: "공연명 또는 공연장", "Title or venue";
        from: "이 날짜부터", "From";
        state: "판매 상태", "Sale state";
        any: "전체", "Any";
        none_found: "조건에 맞는 공연이 없습니다.", "No events match.";
        more: "더 보기", "More";
        venue: "공연장", "Venue";
        performances: "회차", "Performances";
        left: "남은 표", "Tickets left";
        per_user: "1인 최대", "Per person";
        prices: "좌석 등급별 가격", "Prices by grade";
        merch: "굿즈", "Merchandise";
        packages: "패키지", "Packages";
        buy: "예매하기", "Buy tickets";
        opens_in: "판매 시작까지", "Sale opens in";
        opens_at: "판매 시작", "Sale opens";
        closes_at: "판매 종료", "Sale closes";
        preorder: "예약 판매", "Pre-order";
        ships: "발송 예정", "Ships";
        sold_out: "매진", "Sold out";
        reserved: "지정석", "Reserved seating";
        general: "자유석", "General admission";
        queue_note: "판매 시작 시 대기열을 거쳐 공정한 순서로 입장합니다.", "At opening you go through a fair waiting room.";
        canceled: "이 공연은 취소되었습니다. 결제하신 주문은 자동으로 환불됩니다.", "This event has been canceled. Paid orders are refunded automatically.";
    }
}

/// Filters of the event list (all optional; bad values are ignored, not errors).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    from: Option<String>,
    state: Option<String>,
    cursor: Option<String>,
}

/// One card of the list.
pub struct Card {
    id: String,
    title: String,
    when: String,
    when_iso: String,
    venue: Option<String>,
    state: &'static str,
    state_class: &'static str,
    image_url: Option<String>,
    initial: String,
}

#[derive(Template)]
#[template(path = "web/events.html")]
struct EventsPage {
    ctx: Ctx,
    c: &'static CatalogTexts,
    cards: Vec<Card>,
    q: String,
    from: String,
    state: String,
    states: Vec<(&'static str, &'static str)>,
    next: Option<String>,
}

/// `GET /`: published events by start time.
pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(params): Query<ListParams>,
) -> PageResult {
    let from = params
        .from
        .as_deref()
        .and_then(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
        })
        .map(|d| {
            let midnight = d.midnight().assume_utc();
            midnight.replace_offset(format::offset_at(format::HOME_ZONE, midnight))
        });
    let wanted = match params.state.as_deref() {
        Some("on_sale") => Some(SaleState::OnSale),
        Some("upcoming") => Some(SaleState::Upcoming),
        _ => None,
    };
    let viewer = ctx.user.as_ref().map(Viewer::from);
    let page = events::list(
        &state,
        viewer.as_ref(),
        ListQuery {
            q: params.q.clone().filter(|q| !q.trim().is_empty()),
            from,
            limit: Some(24),
            cursor: params.cursor.clone().filter(|c| !c.is_empty()),
            ..Default::default()
        },
    )
    .await?;
    let lang = ctx.lang;
    let cards = page
        .items
        .iter()
        .filter(|e| wanted.is_none_or(|w| e.sale_state == w))
        .map(|e| card(lang, e))
        .collect();
    let keep = |cursor: &str| {
        let mut url = format!("/?cursor={}", super::context::encode(cursor));
        for (k, v) in [
            ("q", &params.q),
            ("from", &params.from),
            ("state", &params.state),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                url.push_str(&format!("&{k}={}", super::context::encode(v)));
            }
        }
        url
    };
    let c = CatalogTexts::of(lang);
    let (on_sale, _) = format::sale_state(lang, SaleState::OnSale);
    let (upcoming, _) = format::sale_state(lang, SaleState::Upcoming);
    render(&EventsPage {
        c,
        cards,
        q: params.q.clone().unwrap_or_default(),
        from: params.from.clone().unwrap_or_default(),
        state: params.state.clone().unwrap_or_default(),
        states: vec![("", c.any), ("on_sale", on_sale), ("upcoming", upcoming)],
        next: page.next_cursor.as_deref().map(keep),
        ctx,
    })
}

fn card(lang: Lang, e: &EventView) -> Card {
    let (state, state_class) = format::sale_state(lang, e.sale_state);
    Card {
        id: e.id.clone(),
        title: e.title.clone(),
        when: format::datetime(lang, e.start_at, &e.timezone),
        when_iso: format::iso(e.start_at),
        venue: e.venue.as_ref().map(|v| v.name.clone()),
        state,
        state_class,
        // Only https posters: the page's policy loads images from no other origin.
        image_url: e.image_url.clone().filter(|u| u.starts_with("https://")),
        initial: e.title.chars().next().map(String::from).unwrap_or_default(),
    }
}

/// A performance row.
pub struct PerfRow {
    when: String,
    left: String,
    per_user: Option<i32>,
}

/// A product row.
pub struct ProductRow {
    name: String,
    detail: Option<String>,
    price: String,
    sold_out: bool,
    preorder: Option<String>,
}

#[derive(Template)]
#[template(path = "web/event.html")]
struct EventPage {
    ctx: Ctx,
    c: &'static CatalogTexts,
    event: EventView,
    card: Card,
    description: Vec<String>,
    venue_address: Option<String>,
    performances: Vec<PerfRow>,
    tickets: Vec<ProductRow>,
    merch: Vec<ProductRow>,
    packages: Vec<ProductRow>,
    opens: String,
    opens_iso: String,
    closes: String,
    upcoming: bool,
    on_sale: bool,
    canceled: bool,
}

/// `GET /e/{id}`: one event.
pub async fn event(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let viewer = ctx.user.as_ref().map(Viewer::from);
    let event = events::get(&state, viewer.as_ref(), &id).await?;
    let items = products::store::list(
        &state,
        viewer.as_ref(),
        ProductQuery {
            event_id: Some(event.id.clone()),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await?
    .items;
    let lang = ctx.lang;
    let c = CatalogTexts::of(lang);
    let row = |p: &ProductView| product_row(lang, c, &event.currency, p);
    // One line per grade and price, not one per performance.
    let of = |t: ProductType| {
        let mut rows: Vec<ProductRow> = Vec::new();
        for p in items.iter().filter(|p| p.product_type == t) {
            let r = row(p);
            if !rows.iter().any(|o| o.name == r.name && o.price == r.price) {
                rows.push(r);
            }
        }
        rows
    };
    let tz = event.timezone.clone();
    render(&EventPage {
        c,
        card: card(lang, &event),
        description: event
            .description
            .as_deref()
            .unwrap_or_default()
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        venue_address: event.venue.as_ref().and_then(|v| v.address.clone()),
        performances: event
            .performances
            .iter()
            .map(|p| PerfRow {
                when: format::datetime(lang, p.start_at, &tz),
                left: p
                    .tickets_left
                    .map(|n| {
                        if n > 0 {
                            n.to_string()
                        } else {
                            c.sold_out.to_owned()
                        }
                    })
                    .unwrap_or_else(|| "—".into()),
                per_user: p.per_user_limit,
            })
            .collect(),
        tickets: of(ProductType::Ticket),
        merch: of(ProductType::Merch),
        packages: of(ProductType::Package),
        opens: format::datetime(lang, event.sale_open_at, &tz),
        opens_iso: format::iso(event.sale_open_at),
        closes: format::datetime(lang, event.sale_close_at, &tz),
        upcoming: event.sale_state == SaleState::Upcoming,
        on_sale: event.sale_state == SaleState::OnSale,
        canceled: event.status == crate::catalog::model::EventStatus::Canceled,
        event,
        ctx,
    })
}

fn product_row(lang: Lang, c: &CatalogTexts, currency: &str, p: &ProductView) -> ProductRow {
    let detail = match p.product_type {
        ProductType::Ticket => Some(
            match p.seating {
                Some(crate::catalog::products::model::Seating::Reserved) => c.reserved,
                _ => c.general,
            }
            .to_owned(),
        ),
        ProductType::Merch => {
            let names: Vec<&str> = p.variants.iter().map(|v| v.name.as_str()).collect();
            (!names.is_empty()).then(|| names.join(" · "))
        }
        ProductType::Package => p.description.clone(),
    };
    let preorder = p
        .variants
        .iter()
        .find(|v| v.remaining <= 0 && v.preorder_remaining.is_some_and(|n| n > 0))
        .map(|v| match &v.expected_ship_date {
            Some(date) => format!("{} · {} {date}", c.preorder, c.ships),
            None => c.preorder.to_owned(),
        });
    ProductRow {
        name: p
            .grade
            .clone()
            .map_or_else(|| p.name.clone(), |g| format!("{g} · {}", p.name)),
        detail,
        price: format::money(lang, p.price, currency),
        sold_out: p.remaining <= 0 && preorder.is_none(),
        preorder,
    }
}
