//! Events: create, read, replace, patch, list; the status machine and the sweeper.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use super::{
    access::Viewer,
    model::{CancelPolicy, EventStatus, SaleState, Venue, present, sale_state, text},
    money::Currency,
    performances::{self, PerformanceView},
};
use crate::{
    app::AppState,
    auth::flows::audit_with_detail,
    db::{
        self,
        entities::{events, performances as performance_rows},
    },
    error::{AppError, AppResult, FieldError},
    http::page::{Cursor, split_page},
    infra::clock::{from_db, to_db},
};

/// Longest event accepted.
const MAX_LENGTH: Duration = Duration::days(366);

/// An event as sent on create and replace. Only `title`, `start_at` and `total_tickets` are required.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"title": "2026 Winter Concert", "start_at": "2026-12-24T19:00:00+09:00", "total_tickets": 2000, "description": "An evening of carols", "venue": {"name": "Olympic Hall", "address": "424 Olympic-ro, Seoul"}}))]
pub struct EventBody {
    /// Title (1..=255 characters).
    pub title: String,
    /// Longer text.
    pub description: Option<String>,
    /// Start (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start_at: OffsetDateTime,
    /// Tickets across all performances.
    pub total_tickets: i64,
    /// End (default: start + 3 h).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end_at: Option<OffsetDateTime>,
    /// IANA time zone (default `Asia/Seoul`).
    pub timezone: Option<String>,
    /// ISO 4217 (default `KRW`).
    pub currency: Option<String>,
    /// Venue.
    pub venue: Option<Venue>,
    /// Sales open (default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sale_open_at: Option<OffsetDateTime>,
    /// Sales close (default: `start_at`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sale_close_at: Option<OffsetDateTime>,
    /// Poster (http or https URL).
    pub image_url: Option<String>,
    /// How long a pending order holds stock (60..=3600, default 600).
    pub order_hold_seconds: Option<i64>,
    /// Cancel policy (default: free until 24 h before, none after).
    pub cancel_policy: Option<CancelPolicy>,
    /// `DRAFT` (default) or `PUBLISHED`.
    pub status: Option<EventStatus>,
}

/// Fields to change; absent fields stay, `null` clears an optional field.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "PUBLISHED"}))]
pub struct EventPatch {
    title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    start_at: Option<OffsetDateTime>,
    total_tickets: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    end_at: Option<OffsetDateTime>,
    timezone: Option<String>,
    currency: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Venue>)]
    venue: Option<Option<Venue>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    sale_open_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    sale_close_at: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    image_url: Option<Option<String>>,
    order_hold_seconds: Option<i64>,
    cancel_policy: Option<CancelPolicy>,
    status: Option<EventStatus>,
}

/// A validated event, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDraft {
    title: String,
    description: Option<String>,
    start_at: OffsetDateTime,
    end_at: OffsetDateTime,
    total_tickets: i32,
    timezone: String,
    currency: Currency,
    venue: Option<Venue>,
    sale_open_at: OffsetDateTime,
    sale_close_at: OffsetDateTime,
    image_url: Option<String>,
    order_hold_seconds: i32,
    cancel_policy: CancelPolicy,
    status: EventStatus,
}

/// Unvalidated values: a body with defaults applied, or a stored event with a patch applied.
struct Fields {
    title: String,
    description: Option<String>,
    start_at: OffsetDateTime,
    end_at: OffsetDateTime,
    total_tickets: i64,
    timezone: String,
    currency: String,
    venue: Option<Venue>,
    sale_open_at: OffsetDateTime,
    sale_close_at: OffsetDateTime,
    image_url: Option<String>,
    order_hold_seconds: i64,
    cancel_policy: CancelPolicy,
    status: EventStatus,
}

impl Fields {
    fn from_body(body: EventBody, now: OffsetDateTime) -> Self {
        Self {
            end_at: body.end_at.unwrap_or(body.start_at + Duration::hours(3)),
            sale_close_at: body.sale_close_at.unwrap_or(body.start_at),
            title: body.title,
            description: body.description,
            start_at: body.start_at,
            total_tickets: body.total_tickets,
            timezone: body.timezone.unwrap_or_else(|| "Asia/Seoul".into()),
            currency: body.currency.unwrap_or_else(|| "KRW".into()),
            venue: body.venue,
            sale_open_at: body.sale_open_at.unwrap_or(now),
            image_url: body.image_url,
            order_hold_seconds: body.order_hold_seconds.unwrap_or(600),
            cancel_policy: body.cancel_policy.unwrap_or_default(),
            status: body.status.unwrap_or(EventStatus::Draft),
        }
    }

    fn from_stored(row: &events::Model) -> Self {
        Self {
            title: row.title.clone(),
            description: row.description.clone(),
            start_at: from_db(row.start_at),
            end_at: from_db(row.end_at),
            total_tickets: i64::from(row.total_tickets),
            timezone: row.timezone.clone(),
            currency: row.currency.clone(),
            venue: row.venue_name.clone().map(|name| Venue {
                name,
                address: row.venue_address.clone(),
            }),
            sale_open_at: from_db(row.sale_open_at),
            sale_close_at: from_db(row.sale_close_at),
            image_url: row.image_url.clone(),
            order_hold_seconds: i64::from(row.order_hold_seconds),
            cancel_policy: serde_json::from_str(&row.cancel_policy).unwrap_or_default(),
            status: EventStatus::from_db(&row.status),
        }
    }

    fn apply(mut self, patch: EventPatch) -> Self {
        if let Some(v) = patch.title {
            self.title = v;
        }
        if let Some(v) = patch.description {
            self.description = v;
        }
        if let Some(v) = patch.start_at {
            self.start_at = v;
        }
        if let Some(v) = patch.total_tickets {
            self.total_tickets = v;
        }
        if let Some(v) = patch.end_at {
            self.end_at = v;
        }
        if let Some(v) = patch.timezone {
            self.timezone = v;
        }
        if let Some(v) = patch.currency {
            self.currency = v;
        }
        if let Some(v) = patch.venue {
            self.venue = v;
        }
        if let Some(v) = patch.sale_open_at {
            self.sale_open_at = v;
        }
        if let Some(v) = patch.sale_close_at {
            self.sale_close_at = v;
        }
        if let Some(v) = patch.image_url {
            self.image_url = v;
        }
        if let Some(v) = patch.order_hold_seconds {
            self.order_hold_seconds = v;
        }
        if let Some(v) = patch.cancel_policy {
            self.cancel_policy = v;
        }
        if let Some(v) = patch.status {
            self.status = v;
        }
        self
    }

    /// Checks every rule and reports all problems at once.
    fn validate(self) -> AppResult<EventDraft> {
        let mut errors: Vec<FieldError> = Vec::new();
        let title = text("title", &self.title, 1, 255)
            .map_err(|e| errors.push(e))
            .ok();
        let description = match self.description.as_deref() {
            Some(d) => text("description", d, 0, 20_000)
                .map_err(|e| errors.push(e))
                .ok()
                .map(Some),
            None => Some(None),
        };
        if self.end_at <= self.start_at {
            errors.push(FieldError::new(
                "end_at",
                "before_start",
                "must be after start_at",
            ));
        } else if self.end_at - self.start_at > MAX_LENGTH {
            errors.push(FieldError::new(
                "end_at",
                "too_long",
                "an event lasts at most 366 days",
            ));
        }
        let total = i32::try_from(self.total_tickets)
            .ok()
            .filter(|n| (1..=1_000_000).contains(n));
        if total.is_none() {
            errors.push(FieldError::new(
                "total_tickets",
                "out_of_range",
                "must be 1..=1000000",
            ));
        }
        if !valid_timezone(&self.timezone) {
            errors.push(FieldError::new(
                "timezone",
                "invalid_timezone",
                "must be an IANA zone such as Asia/Seoul",
            ));
        }
        let currency = Currency::parse(&self.currency)
            .map_err(|e| errors.push(e))
            .ok();
        let venue = match self.venue {
            Some(v) => {
                let name = text("venue.name", &v.name, 1, 255)
                    .map_err(|e| errors.push(e))
                    .ok();
                let address = match v.address.as_deref() {
                    Some(a) => text("venue.address", a, 0, 500)
                        .map_err(|e| errors.push(e))
                        .ok(),
                    None => None,
                };
                name.map(|name| Venue { name, address })
            }
            None => None,
        };
        if self.sale_close_at <= self.sale_open_at {
            errors.push(FieldError::new(
                "sale_close_at",
                "before_open",
                "must be after sale_open_at",
            ));
        }
        if self.sale_close_at > self.end_at {
            errors.push(FieldError::new(
                "sale_close_at",
                "after_end",
                "must not be after end_at",
            ));
        }
        let image_url = match self.image_url {
            Some(u) => match url::Url::parse(u.trim()) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && u.len() <= 1000 => {
                    Some(parsed.to_string())
                }
                _ => {
                    errors.push(FieldError::new(
                        "image_url",
                        "invalid_url",
                        "must be an http(s) URL of at most 1000 characters",
                    ));
                    None
                }
            },
            None => None,
        };
        let hold = i32::try_from(self.order_hold_seconds)
            .ok()
            .filter(|n| (60..=3600).contains(n));
        if hold.is_none() {
            errors.push(FieldError::new(
                "order_hold_seconds",
                "out_of_range",
                "must be 60..=3600",
            ));
        }
        let cancel_policy = self
            .cancel_policy
            .normalized()
            .map_err(|e| errors.push(e))
            .ok();
        match (title, description, total, currency, hold, cancel_policy) {
            (
                Some(title),
                Some(description),
                Some(total_tickets),
                Some(currency),
                Some(order_hold_seconds),
                Some(cancel_policy),
            ) if errors.is_empty() => Ok(EventDraft {
                title,
                description,
                start_at: self.start_at,
                end_at: self.end_at,
                total_tickets,
                timezone: self.timezone,
                currency,
                venue,
                sale_open_at: self.sale_open_at,
                sale_close_at: self.sale_close_at,
                image_url,
                order_hold_seconds,
                cancel_policy,
                status: self.status,
            }),
            _ => Err(AppError::validation(errors)),
        }
    }
}

/// A name the time zone database knows (`Asia/Seoul`, `UTC`), as pages show times in it.
fn valid_timezone(tz: &str) -> bool {
    !tz.is_empty() && tz.len() <= 64 && jiff::tz::TimeZone::get(tz).is_ok()
}

/// An event as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Id.
    pub id: String,
    /// Organizer's user id.
    pub organizer_id: String,
    /// Title (text, escape when rendering).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start_at: OffsetDateTime,
    /// End.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end_at: OffsetDateTime,
    /// Time zone.
    pub timezone: String,
    /// Currency.
    pub currency: String,
    /// Venue.
    pub venue: Option<Venue>,
    /// Sales open.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sale_open_at: OffsetDateTime,
    /// Sales close.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sale_close_at: OffsetDateTime,
    /// Poster.
    pub image_url: Option<String>,
    /// Pending-order hold.
    pub order_hold_seconds: i32,
    /// Cancel policy.
    pub cancel_policy: CancelPolicy,
    /// Tickets across all performances.
    pub total_tickets: i32,
    /// Status.
    pub status: EventStatus,
    /// Derived from the sale window and the status.
    pub sale_state: SaleState,
    /// Performances by start time.
    pub performances: Vec<PerformanceView>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Builds the view of a stored event.
pub fn view(
    row: &events::Model,
    performances: Vec<PerformanceView>,
    now: OffsetDateTime,
) -> EventView {
    let status = EventStatus::from_db(&row.status);
    let open = from_db(row.sale_open_at);
    let close = from_db(row.sale_close_at);
    // Sold out when every performance that sells tickets has none left.
    let selling: Vec<i64> = performances.iter().filter_map(|p| p.tickets_left).collect();
    let stock_left = (!selling.is_empty()).then(|| selling.iter().any(|n| *n > 0));
    EventView {
        id: row.id.clone(),
        organizer_id: row.organizer_id.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        start_at: from_db(row.start_at),
        end_at: from_db(row.end_at),
        timezone: row.timezone.clone(),
        currency: row.currency.clone(),
        venue: row.venue_name.clone().map(|name| Venue {
            name,
            address: row.venue_address.clone(),
        }),
        sale_open_at: open,
        sale_close_at: close,
        image_url: row.image_url.clone(),
        order_hold_seconds: row.order_hold_seconds,
        cancel_policy: serde_json::from_str(&row.cancel_policy).unwrap_or_default(),
        total_tickets: row.total_tickets,
        status,
        sale_state: sale_state(now, status, open, close, stock_left),
        performances,
        created_at: from_db(row.created_at),
        updated_at: from_db(row.updated_at),
    }
}

fn snapshot(row: &events::Model) -> serde_json::Value {
    serde_json::json!({
        "title": row.title, "start_at": from_db(row.start_at).unix_timestamp(), "end_at": from_db(row.end_at).unix_timestamp(),
        "total_tickets": row.total_tickets, "status": row.status, "sale_open_at": from_db(row.sale_open_at).unix_timestamp(),
        "sale_close_at": from_db(row.sale_close_at).unix_timestamp(), "currency": row.currency, "cancel_policy": row.cancel_policy,
    })
}

fn write(model: &mut events::ActiveModel, draft: &EventDraft, now: OffsetDateTime) {
    model.title = Set(draft.title.clone());
    model.description = Set(draft.description.clone());
    model.start_at = Set(to_db(draft.start_at));
    model.end_at = Set(to_db(draft.end_at));
    model.timezone = Set(draft.timezone.clone());
    model.currency = Set(draft.currency.code().to_owned());
    model.venue_name = Set(draft.venue.as_ref().map(|v| v.name.clone()));
    model.venue_address = Set(draft.venue.as_ref().and_then(|v| v.address.clone()));
    model.sale_open_at = Set(to_db(draft.sale_open_at));
    model.sale_close_at = Set(to_db(draft.sale_close_at));
    model.image_url = Set(draft.image_url.clone());
    model.order_hold_seconds = Set(draft.order_hold_seconds);
    model.cancel_policy = Set(serde_json::to_string(&draft.cancel_policy).unwrap_or_default());
    model.total_tickets = Set(draft.total_tickets);
    model.status = Set(draft.status.as_str().to_owned());
    model.updated_at = Set(to_db(now));
}

/// Creates an event and its default performance.
pub async fn create(state: &AppState, viewer: &Viewer, body: EventBody) -> AppResult<EventView> {
    let now = state.clock.now();
    let draft = Fields::from_body(body, now).validate()?;
    if !matches!(draft.status, EventStatus::Draft | EventStatus::Published) {
        return Err(AppError::invalid_field(
            "status",
            "invalid_status",
            "a new event is DRAFT or PUBLISHED",
        ));
    }
    let organizer = viewer.user_id.clone();
    let row = db::write_tx(&state.db, |tx| {
        let (draft, organizer) = (draft.clone(), organizer.clone());
        Box::pin(async move {
            let id = uuid::Uuid::now_v7().to_string();
            let mut model = events::ActiveModel {
                id: Set(id.clone()),
                organizer_id: Set(organizer.clone()),
                created_at: Set(to_db(now)),
                ..Default::default()
            };
            write(&mut model, &draft, now);
            let row = model.insert(tx).await?;
            performances::insert_default(tx, &row, now).await?;
            audit_with_detail(
                tx,
                now,
                Some(&organizer),
                "event.created",
                "event",
                Some(&id),
                None,
                Some(serde_json::json!({"after": snapshot(&row)})),
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    let performances = performances::list_views(&state.db, &row, now).await?;
    state.catalog_changed(&row.id).await;
    Ok(view(&row, performances, now))
}

/// Replaces (`PUT`) or patches (`PATCH`) an event.
pub enum Change {
    /// The whole event.
    Replace(EventBody),
    /// Some fields.
    Patch(EventPatch),
}

/// Applies a change by the owner or an admin, keeping performances consistent.
pub async fn update(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    change: Change,
) -> AppResult<EventView> {
    let now = state.clock.now();
    let current = super::access::manageable_event(state, viewer, id).await?;
    let before = Fields::from_stored(&current);
    let old_status = before.status;
    let fields = match change {
        Change::Replace(body) => {
            let mut fields = Fields::from_body(body.clone(), now);
            // Omitted defaults on replace keep what the event already has where a default would
            // surprise: the sale window and status are not reset by a PUT that leaves them out.
            if body.sale_open_at.is_none() {
                fields.sale_open_at = before.sale_open_at;
            }
            if body.status.is_none() {
                fields.status = old_status;
            }
            fields
        }
        Change::Patch(patch) => before.apply(patch),
    };
    let draft = fields.validate()?;
    // Canceling has consequences for every order: it goes through `POST /events/{id}/cancel`.
    if draft.status == EventStatus::Canceled && old_status != EventStatus::Canceled {
        return Err(AppError::conflict(
            "invalid_transition",
            "Cancel an event with POST /events/{id}/cancel and a reason: its orders are canceled and refunded.",
        ));
    }
    if !old_status.can_become(draft.status, false) {
        return Err(AppError::conflict(
            "invalid_transition",
            format!(
                "An event cannot go from {} to {}.",
                old_status.as_str(),
                draft.status.as_str()
            ),
        ));
    }
    let actor = viewer.user_id.clone();
    let row = db::write_tx(&state.db, |tx| {
        let (draft, current, actor) = (draft.clone(), current.clone(), actor.clone());
        Box::pin(async move {
            performances::check_fit(
                tx,
                &current.id,
                draft.start_at,
                draft.end_at,
                draft.total_tickets,
            )
            .await?;
            let mut model: events::ActiveModel = current.clone().into();
            write(&mut model, &draft, now);
            // The status the row had when read is a condition: a concurrent change loses.
            let result = events::Entity::update_many()
                .set(model)
                .filter(events::Column::Id.eq(current.id.as_str()))
                .filter(events::Column::Status.eq(current.status.as_str()))
                .exec(tx)
                .await?;
            if result.rows_affected != 1 {
                return Err(AppError::conflict(
                    "invalid_transition",
                    "The event changed meanwhile; reload it.",
                ));
            }
            let row = events::Entity::find_by_id(current.id.clone())
                .one(tx)
                .await?
                .ok_or_else(AppError::not_found)?;
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "event.updated",
                "event",
                Some(&row.id),
                None,
                Some(serde_json::json!({"before": snapshot(&current), "after": snapshot(&row)})),
            )
            .await?;
            Ok(row)
        })
    })
    .await?;
    let performances = performances::list_views(&state.db, &row, now).await?;
    state.catalog_changed(&row.id).await;
    Ok(view(&row, performances, now))
}

/// One event, if the viewer may see it (drafts: owner and admins only).
pub async fn get(state: &AppState, viewer: Option<&Viewer>, id: &str) -> AppResult<EventView> {
    let conn = state.catalog_reader(viewer.is_none());
    let row = events::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .filter(|row| super::access::can_see(viewer, row))
        .ok_or_else(AppError::not_found)?;
    let now = state.clock.now();
    let performances = performances::list_views(conn, &row, now).await?;
    Ok(view(&row, performances, now))
}

/// Listing filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Words in the title or venue.
    pub q: Option<String>,
    /// Events starting at or after.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<OffsetDateTime>,
    /// Events starting before.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<OffsetDateTime>,
    /// Status (default: `PUBLISHED` for the public; organizers also see their drafts).
    pub status: Option<EventStatus>,
    /// One organizer's events.
    pub organizer_id: Option<String>,
    /// 1..=100, default 20.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// By start time.
    pub items: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Lists events by start time with keyset pagination.
pub async fn list(
    state: &AppState,
    viewer: Option<&Viewer>,
    query: ListQuery,
) -> AppResult<EventPage> {
    let conn = state.catalog_reader(viewer.is_none());
    let limit = crate::http::page::limit(query.limit, 20, 100)
        .map_err(|e| AppError::validation(vec![e]))?;
    let mut select = events::Entity::find();
    let visible = super::access::visibility(viewer, query.status);
    select = select.filter(visible);
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let q = text("q", q, 1, 100).map_err(|e| AppError::validation(vec![e]))?;
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        select = select.filter(
            Condition::any()
                .add(Expr::col(events::Column::Title).like(pattern.clone()))
                .add(Expr::col(events::Column::VenueName).like(pattern)),
        );
    }
    if let Some(from) = query.from {
        select = select.filter(events::Column::StartAt.gte(to_db(from)));
    }
    if let Some(to) = query.to {
        select = select.filter(events::Column::StartAt.lt(to_db(to)));
    }
    if let Some(organizer) = &query.organizer_id {
        select = select.filter(events::Column::OrganizerId.eq(organizer.as_str()));
    }
    if let Some(cursor) = &query.cursor {
        let cursor = Cursor::decode(cursor).map_err(|e| AppError::validation(vec![e]))?;
        select = select.filter(cursor.after_ascending(events::Column::StartAt, events::Column::Id));
    }
    let rows = select
        .order_by_asc(events::Column::StartAt)
        .order_by_asc(events::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    let (rows, next_cursor) = split_page(rows, limit, |row| {
        Cursor::new(from_db(row.start_at), &row.id)
    });
    let now = state.clock.now();
    let all_performances = performances::views_for(conn, &rows, now).await?;
    let items = rows
        .iter()
        .map(|row| {
            let mine = all_performances
                .iter()
                .filter(|p| p.event_id == row.id)
                .cloned()
                .collect();
            view(row, mine, now)
        })
        .collect();
    Ok(EventPage { items, next_cursor })
}

/// Ends published events whose `end_at` has passed. Safe on every instance at once: one
/// conditional statement, `now` from the clock.
pub async fn end_past_events<C: ConnectionTrait>(conn: &C, now: OffsetDateTime) -> AppResult<u64> {
    let result = events::Entity::update_many()
        .col_expr(
            events::Column::Status,
            Expr::value(EventStatus::Ended.as_str()),
        )
        .col_expr(events::Column::UpdatedAt, Expr::value(to_db(now)))
        .filter(events::Column::Status.eq(EventStatus::Published.as_str()))
        .filter(events::Column::EndAt.lte(to_db(now)))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Runs [`end_past_events`] every 30 seconds.
pub async fn sweep_forever(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tick.tick().await;
        match end_past_events(&state.db, state.clock.now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(ended = n, "events ended");
                state.catalog_changed("*").await;
            }
            Err(e) => tracing::warn!(error = %e, "event sweeper failed"),
        }
    }
}

/// Performance rows of an event (for other catalog modules).
pub async fn performance_rows<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
) -> AppResult<Vec<performance_rows::Model>> {
    Ok(performance_rows::Entity::find()
        .filter(performance_rows::Column::EventId.eq(event_id))
        .order_by_asc(performance_rows::Column::StartAt)
        .all(conn)
        .await?)
}
