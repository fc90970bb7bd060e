//! Running a sale: the sales dashboard, the event's orders, the waiting room and check-in.

use askama::Template;
use axum::extract::{Path, Query, State};
use sea_orm::EntityTrait;
use serde::Deserialize;

use super::{
    Tab, events::form_offset, events::local_input, events::offset_text, managed, organizer, tabs,
    texts::ManageTexts,
};
use crate::{
    app::AppState,
    catalog::access::{Viewer, can_see},
    db::entities::{check_in_staff, events as event_rows, orders as order_rows},
    error::AppError,
    orders::{
        check_in,
        model::OrderStatus,
        reports::{self, EventOrdersQuery},
    },
    queue::settings,
    web::{
        context::{Ctx, PageResult, encode, render},
        format,
        i18n::Lang,
    },
};

/// A line of a sales table.
pub struct SalesRow {
    name: String,
    sold: i64,
    held: i64,
    remaining: i64,
    revenue: String,
}

#[derive(Template)]
#[template(path = "web/manage/sales.html")]
struct SalesPage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    event_id: String,
    event_title: String,
    totals: Vec<(&'static str, &'static str, String)>,
    products: Vec<SalesRow>,
    grades: Vec<SalesRow>,
    data: String,
}

/// `GET /manage/events/{id}/sales`: the dashboard (figures refreshed live by `chart.js`).
pub async fn sales(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let viewer = organizer(&ctx)?;
    let e = managed(&state, &viewer, &id).await?;
    let report = reports::sales(&state, &viewer, &e.id).await?;
    let lang = ctx.lang;
    let m = ManageTexts::of(lang);
    let money = |v| format::money(lang, v, &report.currency);
    let t = &report.totals;
    let orders = t.orders_pending + t.orders_confirmed + t.orders_canceled + t.orders_refunded;
    let totals = vec![
        ("sold", m.sold, t.sold.to_string()),
        ("held", m.held, t.held.to_string()),
        ("orders", m.orders_title, orders.to_string()),
        ("revenue", m.revenue, money(t.revenue)),
        ("gross", m.gross, money(t.gross)),
        ("refunded", m.refunded, money(t.refunded)),
    ];
    let when = |pid: &Option<String>| {
        pid.as_ref()
            .and_then(|pid| e.performances.iter().find(|p| &p.id == pid))
            .map(|p| format::datetime(lang, p.start_at, &e.timezone))
    };
    let products = report
        .products
        .iter()
        .map(|p| SalesRow {
            name: match (&p.grade, when(&p.performance_id)) {
                (Some(g), Some(w)) => format!("{} · {g} · {w}", p.name),
                _ => p.name.clone(),
            },
            sold: p.sold,
            held: p.held,
            remaining: p.remaining,
            revenue: money(p.revenue),
        })
        .collect();
    let grades = report
        .tickets
        .iter()
        .map(|g| SalesRow {
            name: [when(&g.performance_id), g.grade.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
            sold: g.sold,
            held: g.held,
            remaining: g.remaining,
            revenue: money(g.revenue),
        })
        .collect();
    let data = serde_json::json!({
        "event_id": e.id,
        "lang": crate::web::i18n::tag(lang),
        "currency": report.currency,
        "history": orders_per_minute(&state, &e.id).await?,
        "texts": { "orders_per_minute": m.orders_per_minute },
    });
    render(&SalesPage {
        m,
        tabs: tabs(m, &e.id, "/sales"),
        event_id: e.id.clone(),
        event_title: e.title.clone(),
        totals,
        products,
        grades,
        data: crate::web::context::json_block(&data)?,
        ctx,
    })
}

/// How many minutes of order history the chart starts with.
const CHART_MINUTES: i64 = 30;

/// Orders placed in each of the last 30 minutes, by minute since the epoch (the chart's seed; the
/// page adds new orders live).
async fn orders_per_minute(
    state: &AppState,
    event_id: &str,
) -> Result<std::collections::BTreeMap<i64, u32>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let since = state.clock.now() - time::Duration::minutes(CHART_MINUTES);
    let times: Vec<time::PrimitiveDateTime> = order_rows::Entity::find()
        .select_only()
        .column(order_rows::Column::CreatedAt)
        .filter(order_rows::Column::EventId.eq(event_id))
        .filter(order_rows::Column::CreatedAt.gte(crate::infra::clock::to_db(since)))
        .into_tuple()
        .all(&state.read_db)
        .await?;
    let mut minutes = std::collections::BTreeMap::new();
    for at in times {
        let minute = crate::infra::clock::from_db(at)
            .unix_timestamp()
            .div_euclid(60);
        *minutes.entry(minute).or_insert(0) += 1;
    }
    Ok(minutes)
}

/// `?status=&cursor=` of the orders page (bad values are ignored).
#[derive(Debug, Default, Deserialize)]
pub struct OrdersParams {
    status: Option<String>,
    cursor: Option<String>,
}

/// A merchandise line awaiting or past fulfilment.
pub struct FulfilLine {
    id: String,
    name: String,
    status: String,
}

/// One order of the event.
pub struct OrderRow {
    id: String,
    buyer: String,
    status: &'static str,
    status_class: &'static str,
    items: String,
    total: String,
    ordered_at: String,
    reason: Option<String>,
    ship_to: Option<String>,
    cancelable: bool,
    fulfil: Vec<FulfilLine>,
    confirmed: bool,
}

#[derive(Template)]
#[template(path = "web/manage/orders.html")]
struct OrdersPage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    event_id: String,
    event_title: String,
    filters: Vec<(&'static str, &'static str, bool)>,
    rows: Vec<OrderRow>,
    next: Option<String>,
}

/// The label and badge class of an order status.
pub fn order_status(lang: Lang, s: OrderStatus) -> (&'static str, &'static str) {
    let ko = lang == Lang::Ko;
    match s {
        OrderStatus::Pending => (if ko { "결제 대기" } else { "Pending" }, "pending"),
        OrderStatus::Confirmed => (if ko { "결제 완료" } else { "Confirmed" }, "confirmed"),
        OrderStatus::Canceled => (if ko { "취소" } else { "Canceled" }, "canceled"),
        OrderStatus::Refunded => (if ko { "환불" } else { "Refunded" }, "refunded"),
    }
}

/// `GET /manage/events/{id}/orders`: newest first, with cancel/refund, fulfilment and CSV links.
pub async fn orders(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(params): Query<OrdersParams>,
) -> PageResult {
    let viewer = organizer(&ctx)?;
    let e = managed(&state, &viewer, &id).await?;
    let status = params.status.as_deref().and_then(OrderStatus::parse);
    let page = reports::list(
        &state,
        &viewer,
        &e.id,
        EventOrdersQuery {
            status,
            limit: Some(50),
            cursor: params.cursor.clone().filter(|c| !c.is_empty()),
        },
    )
    .await?;
    let lang = ctx.lang;
    let m = ManageTexts::of(lang);
    let rows = page
        .items
        .iter()
        .map(|mo| {
            let o = &mo.order;
            let (label, class) = order_status(lang, o.status);
            OrderRow {
                id: o.id.clone(),
                buyer: match (&mo.buyer_name, &mo.buyer_email) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.clone(),
                    (Some(n), None) => n.clone(),
                    (None, None) => o.user_id.clone(),
                },
                status: label,
                status_class: class,
                items: o
                    .items
                    .iter()
                    .map(|i| format!("{} × {}", i.name, i.quantity))
                    .collect::<Vec<_>>()
                    .join(", "),
                total: format::money(lang, o.total, &o.currency),
                ordered_at: format::datetime(lang, o.created_at, &e.timezone),
                reason: o
                    .cancel_reason
                    .as_ref()
                    .and_then(|r| serde_json::to_value(r).ok())
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                ship_to: o.shipping_address.as_ref().map(|a| {
                    format!(
                        "{} · {} · ({}) {}",
                        a.recipient,
                        a.phone,
                        a.postcode,
                        a.address_lines.join(" ")
                    )
                }),
                cancelable: matches!(o.status, OrderStatus::Pending | OrderStatus::Confirmed),
                confirmed: o.status == OrderStatus::Confirmed,
                fulfil: o
                    .items
                    .iter()
                    .filter_map(|i| {
                        i.fulfillment.as_ref().map(|f| FulfilLine {
                            id: i.id.clone(),
                            name: i.name.clone(),
                            status: f.status.clone(),
                        })
                    })
                    .collect(),
            }
        })
        .collect();
    let current = status.map(OrderStatus::as_str).unwrap_or("");
    let mut filters = vec![("", m.all, current.is_empty())];
    for s in [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Canceled,
        OrderStatus::Refunded,
    ] {
        filters.push((s.as_str(), order_status(lang, s).0, current == s.as_str()));
    }
    let next = page.next_cursor.map(|c| {
        let mut url = format!("/manage/events/{}/orders?cursor={}", e.id, encode(&c));
        if !current.is_empty() {
            url.push_str(&format!("&status={current}"));
        }
        url
    });
    render(&OrdersPage {
        m,
        tabs: tabs(m, &e.id, "/orders"),
        event_id: e.id.clone(),
        event_title: e.title.clone(),
        filters,
        rows,
        next,
        ctx,
    })
}

/// Values the queue form starts with.
pub struct QueueFields {
    enabled: bool,
    capacity: String,
    admit_per_second: String,
    admission_ttl: String,
    pre_queue: String,
    vip_share: String,
    heartbeat: String,
    max_joins_per_ip: String,
    paused: bool,
    vips: String,
    exists: bool,
}

#[derive(Template)]
#[template(path = "web/manage/queue.html")]
struct QueuePage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    event_id: String,
    event_title: String,
    q: QueueFields,
    offset: String,
}

/// `GET /manage/events/{id}/queue`: settings, VIP list, pause/resume and live figures.
pub async fn queue(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let viewer = organizer(&ctx)?;
    let e = managed(&state, &viewer, &id).await?;
    let offset = form_offset(&e);
    let q = match settings::get(&state, &viewer, &e.id).await {
        Ok(v) => QueueFields {
            enabled: v.enabled,
            capacity: v.capacity.to_string(),
            admit_per_second: v.admit_per_second.to_string(),
            admission_ttl: v.admission_ttl_seconds.to_string(),
            pre_queue: v
                .pre_queue_opens_at
                .map(|t| local_input(t, offset))
                .unwrap_or_default(),
            vip_share: v.vip_share.to_string(),
            heartbeat: v.heartbeat_timeout_seconds.to_string(),
            max_joins_per_ip: v
                .max_joins_per_ip
                .map(|n| n.to_string())
                .unwrap_or_default(),
            paused: v.paused,
            vips: v.vip_user_ids.join("\n"),
            exists: true,
        },
        Err(err) if err.status() == axum::http::StatusCode::NOT_FOUND => QueueFields {
            enabled: true,
            capacity: "500".into(),
            admit_per_second: "50".into(),
            admission_ttl: "600".into(),
            pre_queue: String::new(),
            vip_share: "0".into(),
            heartbeat: "30".into(),
            max_joins_per_ip: String::new(),
            paused: false,
            vips: String::new(),
            exists: false,
        },
        Err(err) => return Err(err.into()),
    };
    let m = ManageTexts::of(ctx.lang);
    render(&QueuePage {
        m,
        tabs: tabs(m, &e.id, "/queue"),
        event_id: e.id.clone(),
        event_title: e.title.clone(),
        q,
        offset: offset_text(offset),
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/manage/check_in.html")]
struct CheckInPage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    event_id: String,
    event_title: String,
    staff: Option<String>,
    data: String,
}

/// `GET /manage/events/{id}/check-in`: scan or type a ticket code. The organizer also edits the
/// staff list; staff they named (any role) get the scanner alone.
pub async fn check_in(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> PageResult {
    let user = ctx.require_user()?;
    let viewer = Viewer::from(user);
    let event = event_rows::Entity::find_by_id(id)
        .one(&state.db)
        .await
        .map_err(AppError::from)?
        .filter(|e| can_see(Some(&viewer), e))
        .ok_or_else(AppError::not_found)?;
    let manages = viewer.manages(&event);
    let staff = if manages {
        Some(check_in::staff(&state, user, &event.id).await?.user_ids)
    } else {
        let named = check_in_staff::Entity::find_by_id((event.id.clone(), user.user_id.clone()))
            .one(&state.db)
            .await
            .map_err(AppError::from)?
            .is_some();
        if !named {
            return Err(AppError::forbidden(
                "forbidden",
                "Only the organizer and the staff they name can check tickets in.",
            )
            .into());
        }
        None
    };
    let lang = ctx.lang;
    let m = ManageTexts::of(lang);
    let data = serde_json::json!({
        "lang": crate::web::i18n::tag(lang),
        "timezone": event.timezone,
        "texts": {
            "OK": m.result_ok, "ALREADY_USED": m.result_used, "INVALID": m.result_invalid,
            "REFUNDED": m.result_refunded, "used_at": m.used_at, "no_camera": m.no_camera,
            "scan": m.scan, "stop_scan": m.stop_scan,
        },
    });
    render(&CheckInPage {
        m,
        tabs: if manages {
            tabs(m, &event.id, "/check-in")
        } else {
            Vec::new()
        },
        event_id: event.id.clone(),
        event_title: event.title.clone(),
        staff: staff.map(|ids| ids.join("\n")),
        data: crate::web::context::json_block(&data)?,
        ctx,
    })
}
