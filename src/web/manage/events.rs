//! The organizer's event list, the event form with its performances, and the seat-map generator.

use askama::Template;
use axum::extract::{Path, State};
use std::collections::HashMap;
use time::UtcOffset;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::{Tab, managed, organizer, tabs, texts::ManageTexts};
use crate::{
    app::AppState,
    auth::model::Role,
    catalog::{
        events::{self, EventView},
        model::{CancelTier, EventStatus},
        performances,
    },
    db::entities::events as event_rows,
    web::{
        context::{Ctx, PageResult, render},
        format,
        i18n::Lang,
    },
};

/// Most events listed on `/manage`.
const LIST_LIMIT: u64 = 200;

/// One row of the event list.
pub struct EventRow {
    id: String,
    title: String,
    starts: String,
    status: &'static str,
    status_class: &'static str,
    sale: &'static str,
    sale_class: &'static str,
    sold: i64,
    remaining: String,
    total: i32,
}

/// Tickets sold (confirmed orders) per event, for the listed events only.
async fn sold_per_event(
    state: &AppState,
    ids: &[String],
) -> Result<HashMap<String, i64>, crate::error::AppError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = state.read_db.get_database_backend();
    let marks = vec!["?"; ids.len()].join(", ");
    let mut values: Vec<sea_orm::Value> = vec!["CONFIRMED".into(), "TICKET".into()];
    values.extend(ids.iter().map(|id| sea_orm::Value::from(id.as_str())));
    let rows = state
        .read_db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT i.event_id AS event_id, CAST(SUM(i.quantity) AS SIGNED) AS units \
                 FROM order_items i JOIN orders o ON o.id = i.order_id \
                 WHERE o.status = ? AND i.kind = ? AND i.event_id IN ({marks}) \
                 GROUP BY i.event_id"
            ),
            values,
        ))
        .await?;
    let mut sold = HashMap::new();
    for row in rows {
        let event: String = row.try_get("", "event_id")?;
        let units: i64 = row.try_get("", "units")?;
        sold.insert(event, units);
    }
    Ok(sold)
}

#[derive(Template)]
#[template(path = "web/manage/home.html")]
struct HomePage {
    ctx: Ctx,
    m: &'static ManageTexts,
    rows: Vec<EventRow>,
}

/// The status badge of an event.
pub fn status_badge(lang: Lang, status: EventStatus) -> (&'static str, &'static str) {
    let ko = lang == Lang::Ko;
    match status {
        EventStatus::Draft => (if ko { "초안" } else { "Draft" }, "pending"),
        EventStatus::Published => (if ko { "공개" } else { "Published" }, "ok"),
        EventStatus::Ended => (if ko { "종료" } else { "Ended" }, ""),
        EventStatus::Canceled => (if ko { "취소됨" } else { "Canceled" }, "canceled"),
    }
}

/// `GET /manage`: the organizer's events (every event for admins), newest start first.
pub async fn home(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let viewer = organizer(&ctx)?;
    let mut select = event_rows::Entity::find();
    if viewer.role != Role::Admin {
        select = select.filter(event_rows::Column::OrganizerId.eq(viewer.user_id.as_str()));
    }
    let rows = select
        .order_by_desc(event_rows::Column::StartAt)
        .order_by_desc(event_rows::Column::Id)
        .limit(LIST_LIMIT)
        .all(&state.db)
        .await
        .map_err(crate::error::AppError::from)?;
    let now = state.clock.now();
    let perfs = performances::views_for(&state.db, &rows, now).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let sold = sold_per_event(&state, &ids).await?;
    let lang = ctx.lang;
    let rows = rows
        .iter()
        .map(|row| {
            let mine = perfs
                .iter()
                .filter(|p| p.event_id == row.id)
                .cloned()
                .collect();
            let mut r = event_row(lang, &events::view(row, mine, now));
            r.sold = sold.get(&row.id).copied().unwrap_or(0);
            r
        })
        .collect();
    render(&HomePage {
        m: ManageTexts::of(lang),
        rows,
        ctx,
    })
}

fn event_row(lang: Lang, e: &EventView) -> EventRow {
    let (status, status_class) = status_badge(lang, e.status);
    let (sale, sale_class) = format::sale_state(lang, e.sale_state);
    let left: Option<i64> = e
        .performances
        .iter()
        .map(|p| p.tickets_left)
        .try_fold(0i64, |sum, left| left.map(|l| sum + l));
    EventRow {
        id: e.id.clone(),
        title: e.title.clone(),
        starts: format::datetime(lang, e.start_at, &e.timezone),
        status,
        status_class,
        sale,
        sale_class,
        sold: 0,
        remaining: left.map_or_else(|| "—".into(), |l| l.to_string()),
        total: e.total_tickets,
    }
}

/// The one offset an event's forms write their `datetime-local` values in: its zone's at the
/// event's start (a form has one offset, and the start is the time that matters most).
pub fn form_offset(e: &EventView) -> UtcOffset {
    format::offset_at(&e.timezone, e.start_at)
}

/// `datetime-local` value of an instant at the form's offset.
pub fn local_input(at: time::OffsetDateTime, offset: UtcOffset) -> String {
    let local = at.to_offset(offset);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    local.format(&fmt).unwrap_or_default()
}

/// `+09:00`: the offset the form's `datetime-local` values are written in, so `manage.js` can show
/// them in the browser's time zone (the one `enhance.js` reads them back in).
pub fn offset_text(offset: UtcOffset) -> String {
    let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    offset.format(&fmt).unwrap_or_else(|_| "+00:00".into())
}

/// Values the event form starts with.
pub struct EventFields {
    title: String,
    description: String,
    start_at: String,
    end_at: String,
    timezone: String,
    currency: String,
    total_tickets: String,
    venue_name: String,
    venue_address: String,
    sale_open_at: String,
    sale_close_at: String,
    hold_seconds: String,
    image_url: String,
    tiers: Vec<(String, String)>,
}

impl EventFields {
    fn blank() -> Self {
        Self {
            title: String::new(),
            description: String::new(),
            start_at: String::new(),
            end_at: String::new(),
            timezone: "Asia/Seoul".into(),
            currency: "KRW".into(),
            total_tickets: String::new(),
            venue_name: String::new(),
            venue_address: String::new(),
            sale_open_at: String::new(),
            sale_close_at: String::new(),
            hold_seconds: "600".into(),
            image_url: String::new(),
            tiers: pad_tiers(&crate::catalog::model::CancelPolicy::default().tiers),
        }
    }

    fn of(e: &EventView) -> Self {
        let tz = form_offset(e);
        Self {
            title: e.title.clone(),
            description: e.description.clone().unwrap_or_default(),
            start_at: local_input(e.start_at, tz),
            end_at: local_input(e.end_at, tz),
            timezone: e.timezone.clone(),
            currency: e.currency.clone(),
            total_tickets: e.total_tickets.to_string(),
            venue_name: e.venue.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
            venue_address: e
                .venue
                .as_ref()
                .and_then(|v| v.address.clone())
                .unwrap_or_default(),
            sale_open_at: local_input(e.sale_open_at, tz),
            sale_close_at: local_input(e.sale_close_at, tz),
            hold_seconds: e.order_hold_seconds.to_string(),
            image_url: e.image_url.clone().unwrap_or_default(),
            tiers: pad_tiers(&e.cancel_policy.tiers),
        }
    }
}

/// The tiers and at least one empty row to add another (three rows at least).
fn pad_tiers(tiers: &[CancelTier]) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = tiers
        .iter()
        .map(|t| (t.hours_before.to_string(), t.fee_percent.to_string()))
        .collect();
    let wanted = (rows.len() + 1).max(3);
    rows.resize(wanted, (String::new(), String::new()));
    rows
}

/// A performance row of the event form.
pub struct PerfRow {
    id: String,
    start_at: String,
    start_input: String,
    doors_input: String,
    capacity: i32,
    per_user_limit: String,
    layout_version: i32,
    left: String,
}

#[derive(Template)]
#[template(path = "web/manage/event.html")]
struct EventPage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    id: Option<String>,
    status: Option<(&'static str, &'static str)>,
    can_publish: bool,
    can_cancel: bool,
    f: EventFields,
    perfs: Vec<PerfRow>,
    offset: String,
}

/// `GET /manage/events/new`.
pub async fn new(ctx: Ctx) -> PageResult {
    organizer(&ctx)?;
    render(&EventPage {
        m: ManageTexts::of(ctx.lang),
        tabs: Vec::new(),
        id: None,
        status: None,
        can_publish: false,
        can_cancel: false,
        f: EventFields::blank(),
        perfs: Vec::new(),
        offset: String::new(),
        ctx,
    })
}

/// `GET /manage/events/{id}`: the event form, publish and cancel, and performances.
pub async fn edit(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let viewer = organizer(&ctx)?;
    let e = managed(&state, &viewer, &id).await?;
    let lang = ctx.lang;
    let m = ManageTexts::of(lang);
    let tz = e.timezone.clone();
    let offset = form_offset(&e);
    let perfs = e
        .performances
        .iter()
        .map(|p| PerfRow {
            id: p.id.clone(),
            start_at: format::datetime(lang, p.start_at, &tz),
            start_input: local_input(p.start_at, offset),
            doors_input: p
                .doors_open_at
                .map(|d| local_input(d, offset))
                .unwrap_or_default(),
            capacity: p.capacity,
            per_user_limit: p.per_user_limit.map(|n| n.to_string()).unwrap_or_default(),
            layout_version: p.layout_version,
            left: p.tickets_left.map_or_else(|| "—".into(), |n| n.to_string()),
        })
        .collect();
    render(&EventPage {
        m,
        tabs: tabs(m, &e.id, ""),
        id: Some(e.id.clone()),
        status: Some(status_badge(lang, e.status)),
        can_publish: e.status == EventStatus::Draft,
        can_cancel: matches!(e.status, EventStatus::Draft | EventStatus::Published),
        f: EventFields::of(&e),
        perfs,
        offset: offset_text(offset),
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/manage/seats.html")]
struct SeatsPage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    event_id: String,
    event_title: String,
    performance_id: String,
    when: String,
    layout_version: i32,
    data: String,
}

/// `GET /manage/events/{id}/performances/{pid}/seats`: the seat-map generator with a preview.
pub async fn seats(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, pid)): Path<(String, String)>,
) -> PageResult {
    let viewer = organizer(&ctx)?;
    let e = managed(&state, &viewer, &id).await?;
    let p = e
        .performances
        .iter()
        .find(|p| p.id == pid)
        .ok_or_else(crate::error::AppError::not_found)?;
    let lang = ctx.lang;
    let m = ManageTexts::of(lang);
    let data = serde_json::json!({
        "event_id": e.id,
        "performance_id": p.id,
        "layout_version": p.layout_version,
        "texts": {
            "section": m.section, "rows": m.rows, "seats_per_row": m.seats_per_row,
            "grade": m.grade, "remove": m.remove, "seats_total": m.seats_total,
            "saved": m.layout_saved,
        },
    });
    render(&SeatsPage {
        m,
        tabs: tabs(m, &e.id, ""),
        when: format::datetime(lang, p.start_at, &e.timezone),
        event_id: e.id.clone(),
        event_title: e.title.clone(),
        performance_id: p.id.clone(),
        layout_version: p.layout_version,
        data: crate::web::context::json_block(&data)?,
        ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_written_in_the_events_zone_with_its_offset() {
        let at = time::macros::datetime!(2026-12-24 10:00 UTC);
        let seoul = format::offset_at("Asia/Seoul", at);
        assert_eq!(local_input(at, seoul), "2026-12-24T19:00");
        assert_eq!(offset_text(seoul), "+09:00");
        let utc = format::offset_at("UTC", at);
        assert_eq!(local_input(at, utc), "2026-12-24T10:00");
        assert_eq!(offset_text(utc), "+00:00");
        // Zones with summer time get the offset in force at that instant.
        let july = time::macros::datetime!(2027-07-01 10:00 UTC);
        assert_eq!(
            offset_text(format::offset_at("Europe/London", at)),
            "+00:00"
        );
        assert_eq!(
            offset_text(format::offset_at("Europe/London", july)),
            "+01:00"
        );
        assert_eq!(
            offset_text(format::offset_at("America/New_York", july)),
            "-04:00"
        );
    }

    #[test]
    fn tier_rows_always_leave_room_to_add_one() {
        let rows = pad_tiers(&[CancelTier {
            hours_before: 24,
            fee_percent: 10,
        }]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], ("24".to_owned(), "10".to_owned()));
        assert_eq!(rows[2], (String::new(), String::new()));
        let three = [24, 48, 72].map(|h| CancelTier {
            hours_before: h,
            fee_percent: 0,
        });
        assert_eq!(pad_tiers(&three).len(), 4);
    }
}
