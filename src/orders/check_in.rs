//! Check-in at the entrance: the event's organizer, an admin or a staff account the organizer
//! named scans a ticket's QR payload (or types its code); the ticket is marked used exactly
//! once by one conditional `UPDATE`. A forged payload is refused by its signature alone.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, Query},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    model::OrderStatus,
    tickets::{Scanned, TicketStatus},
};
use crate::{
    app::AppState,
    auth::{AuthUser, flows::audit_with_detail},
    catalog::access::{Viewer, can_see, manageable_event},
    db::{
        self,
        entities::{check_in_staff, events, order_items, orders, tickets, users},
    },
    error::{AppError, AppResult, FieldError},
    infra::clock::{from_db, to_db},
};

/// The most staff accounts one event may name.
pub const MAX_STAFF: usize = 200;

/// `POST /events/{id}/check-in`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "BO1.3f2a9c0d4b1e8f7a6c5d4e3f2a1b0c9d.q7Vw3k9XyZ1aB2cD3eF4gH"}))]
pub struct CheckInBody {
    /// The QR payload as scanned, or the bare 32-digit hex code typed by hand.
    pub code: String,
}

/// What the scan found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckInResult {
    /// Admitted now.
    Ok,
    /// Admitted before (see `used_at`).
    AlreadyUsed,
    /// Not a ticket of this event (forged, mistyped or another event's).
    Invalid,
    /// The order was refunded or canceled.
    Refunded,
}

/// The scanned ticket, as staff see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CheckInTicket {
    /// Ticket id.
    pub id: String,
    /// Its order.
    pub order_id: String,
    /// Status after the scan.
    pub status: TicketStatus,
    /// The ticket product.
    pub product_id: String,
    /// Its performance.
    pub performance_id: Option<String>,
    /// The seat, for reserved seating.
    pub seat_label: Option<String>,
    /// What it admits to.
    pub name: String,
    /// When it was admitted.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used_at: Option<OffsetDateTime>,
}

/// The answer to a scan.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"result": "ALREADY_USED", "ticket": {"id": "0190…", "order_id": "0190…", "status": "USED", "product_id": "0190…", "performance_id": "0190…", "seat_label": "A-1-12", "name": "R석", "used_at": "2026-12-24T18:02:11Z"}, "used_at": "2026-12-24T18:02:11Z"}))]
pub struct CheckInView {
    /// What the scan found.
    pub result: CheckInResult,
    /// The ticket (absent when `INVALID`).
    pub ticket: Option<CheckInTicket>,
    /// When it was admitted (now for `OK`, the first time for `ALREADY_USED`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used_at: Option<OffsetDateTime>,
}

impl CheckInView {
    fn invalid() -> Self {
        Self {
            result: CheckInResult::Invalid,
            ticket: None,
            used_at: None,
        }
    }
}

/// `PUT /events/{id}/check-in/staff` and its `GET`: the accounts allowed to check tickets in.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_ids": ["01900000-0000-7000-8000-000000000001"]}))]
pub struct StaffList {
    /// Account ids (the whole list; at most 200).
    pub user_ids: Vec<String>,
}

/// Loads the event for a check-in by `user`: its managers and named staff pass; anyone else
/// who can see the event is 403, and an event they cannot see is 404, as in the catalog.
async fn check_in_event(
    state: &AppState,
    user: &AuthUser,
    event_id: &str,
) -> AppResult<events::Model> {
    let viewer = Viewer::from(user);
    let event = events::Entity::find_by_id(event_id.to_owned())
        .one(&state.db)
        .await?
        .filter(|e| can_see(Some(&viewer), e))
        .ok_or_else(AppError::not_found)?;
    if viewer.manages(&event) {
        return Ok(event);
    }
    let staff = check_in_staff::Entity::find_by_id((event.id.clone(), user.user_id.clone()))
        .one(&state.db)
        .await?
        .is_some();
    if staff {
        Ok(event)
    } else {
        Err(AppError::forbidden(
            "forbidden",
            "Only the organizer and the staff they name can check tickets in.",
        ))
    }
}

/// Checks a ticket in at an event.
pub async fn check_in(
    state: &AppState,
    user: &AuthUser,
    event_id: &str,
    body: CheckInBody,
) -> AppResult<CheckInView> {
    let event = check_in_event(state, user, event_id).await?;
    // The signature is checked before any ticket lookup: a forged payload costs no query.
    let scanned = Scanned::read(&state.secrets.ticket_code, &body.code);
    let Some(code) = scanned.code() else {
        return Ok(CheckInView::invalid());
    };
    let Some(ticket) = tickets::Entity::find()
        .filter(tickets::Column::Code.eq(code))
        .one(&state.db)
        .await?
        .filter(|t| t.event_id == event.id)
    else {
        return Ok(CheckInView::invalid());
    };
    let now = state.clock.now();
    let admitted = TicketStatus::from_db(&ticket.status) == TicketStatus::Valid
        && tickets::Entity::update_many()
            .col_expr(
                tickets::Column::Status,
                Expr::value(TicketStatus::Used.as_str()),
            )
            .col_expr(tickets::Column::UsedAt, Expr::value(to_db(now)))
            .col_expr(
                tickets::Column::CheckedInBy,
                Expr::value(user.user_id.clone()),
            )
            .filter(tickets::Column::Id.eq(ticket.id.clone()))
            .filter(tickets::Column::Status.eq(TicketStatus::Valid.as_str()))
            // Belt and braces: a ticket whose order is no longer paid never admits anyone,
            // even if voiding it was missed.
            .filter(
                tickets::Column::OrderId.in_subquery(
                    Query::select()
                        .column(orders::Column::Id)
                        .from(orders::Entity)
                        .and_where(orders::Column::Id.eq(ticket.order_id.clone()))
                        .and_where(orders::Column::Status.eq(OrderStatus::Confirmed.as_str()))
                        .to_owned(),
                ),
            )
            .exec(&state.db)
            .await?
            .rows_affected
            == 1;
    // Whatever happened, answer with the ticket as it is now.
    let ticket = tickets::Entity::find_by_id(ticket.id)
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let status = TicketStatus::from_db(&ticket.status);
    let result = match (admitted, status) {
        (true, _) => CheckInResult::Ok,
        (false, TicketStatus::Used) => CheckInResult::AlreadyUsed,
        // Void, or still valid on an order that is no longer paid.
        (false, TicketStatus::Void | TicketStatus::Valid) => CheckInResult::Refunded,
    };
    let used_at = ticket.used_at.map(from_db);
    let name = order_items::Entity::find_by_id(ticket.order_item_id.clone())
        .select_only()
        .column(order_items::Column::Name)
        .into_tuple::<String>()
        .one(&state.db)
        .await?
        .unwrap_or_default();
    Ok(CheckInView {
        result,
        used_at: if result == CheckInResult::Refunded {
            None
        } else {
            used_at
        },
        ticket: Some(CheckInTicket {
            id: ticket.id,
            order_id: ticket.order_id,
            status,
            product_id: ticket.product_id,
            performance_id: ticket.performance_id,
            seat_label: ticket.seat_label,
            name,
            used_at,
        }),
    })
}

/// The staff named for an event (organizer and admins only).
pub async fn staff(state: &AppState, user: &AuthUser, event_id: &str) -> AppResult<StaffList> {
    let event = manageable_event(state, &Viewer::from(user), event_id).await?;
    staff_of(&state.db, &event.id).await
}

async fn staff_of<C: ConnectionTrait>(conn: &C, event_id: &str) -> AppResult<StaffList> {
    Ok(StaffList {
        user_ids: check_in_staff::Entity::find()
            .select_only()
            .column(check_in_staff::Column::UserId)
            .filter(check_in_staff::Column::EventId.eq(event_id))
            .order_by_asc(check_in_staff::Column::UserId)
            .into_tuple::<String>()
            .all(conn)
            .await?,
    })
}

/// Replaces the staff named for an event with existing, not deleted accounts.
pub async fn replace_staff(
    state: &AppState,
    user: &AuthUser,
    event_id: &str,
    body: StaffList,
) -> AppResult<StaffList> {
    let event = manageable_event(state, &Viewer::from(user), event_id).await?;
    let mut ids = body.user_ids;
    if ids.len() > MAX_STAFF {
        return Err(AppError::invalid_field(
            "user_ids",
            "too_many",
            format!("at most {MAX_STAFF} accounts"),
        ));
    }
    ids.sort();
    ids.dedup();
    let existing: Vec<String> = if ids.is_empty() {
        Vec::new()
    } else {
        users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Id.is_in(ids.clone()))
            .filter(users::Column::DeletedAt.is_null())
            .into_tuple::<String>()
            .all(&state.db)
            .await?
    };
    let unknown: Vec<FieldError> = ids
        .iter()
        .filter(|id| !existing.contains(id))
        .map(|id| {
            FieldError::new(
                "user_ids",
                "unknown_user",
                format!("{id} is not an account"),
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::validation(unknown));
    }
    let now = state.clock.now();
    let actor = user.user_id.clone();
    db::write_tx(&state.db, |tx| {
        let (event_id, ids, actor) = (event.id.clone(), ids.clone(), actor.clone());
        Box::pin(async move {
            let before = staff_of(tx, &event_id).await?;
            check_in_staff::Entity::delete_many()
                .filter(check_in_staff::Column::EventId.eq(event_id.clone()))
                .exec(tx)
                .await?;
            if !ids.is_empty() {
                check_in_staff::Entity::insert_many(ids.iter().map(|id| {
                    check_in_staff::ActiveModel {
                        event_id: Set(event_id.clone()),
                        user_id: Set(id.clone()),
                        created_at: Set(to_db(now)),
                    }
                }))
                .exec(tx)
                .await?;
            }
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "event.check_in_staff",
                "event",
                Some(&event_id),
                None,
                Some(json!({"before": before.user_ids, "after": ids})),
            )
            .await?;
            Ok(())
        })
    })
    .await?;
    staff_of(&state.db, &event.id).await
}

/// HTTP handlers.
pub mod handlers {
    use axum::extract::State;

    use super::{CheckInBody, CheckInView, StaffList};
    use crate::{
        app::AppState,
        auth::{AuthUser, RequireRole, extract::Organizer},
        error::{AppResult, Problem},
        http::{ApiJson, extract::ApiPath},
    };

    /// Checks a ticket in: the QR payload (or the bare code typed by hand) is marked used
    /// exactly once. A forged payload is `INVALID` by its signature alone; a ticket of
    /// another event is `INVALID`; a refunded or canceled order's ticket is `REFUNDED`.
    #[utoipa::path(post, path = "/events/{id}/check-in", tag = "orders", params(("id" = String, Path)),
        request_body = CheckInBody, security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 200, description = "`OK`, `ALREADY_USED` (with the time), `INVALID` or `REFUNDED`", body = CheckInView),
            (status = 401, description = "`unauthenticated`", body = Problem),
            (status = 403, description = "`forbidden`: not the organizer, an admin or named staff", body = Problem),
            (status = 404, description = "`not_found`", body = Problem),
        ))]
    pub async fn check_in(
        State(state): State<AppState>,
        user: AuthUser,
        ApiPath(id): ApiPath<String>,
        ApiJson(body): ApiJson<CheckInBody>,
    ) -> AppResult<ApiJson<CheckInView>> {
        Ok(ApiJson(super::check_in(&state, &user, &id, body).await?))
    }

    /// The accounts named to check tickets in at this event (organizer and admins).
    #[utoipa::path(get, path = "/events/{id}/check-in/staff", tag = "orders", params(("id" = String, Path)),
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 200, body = StaffList),
            (status = 403, description = "`forbidden`: buyers", body = Problem),
            (status = 404, description = "`not_found`: not an event you manage", body = Problem),
        ))]
    pub async fn staff(
        State(state): State<AppState>,
        RequireRole(user, _): RequireRole<Organizer>,
        ApiPath(id): ApiPath<String>,
    ) -> AppResult<ApiJson<StaffList>> {
        Ok(ApiJson(super::staff(&state, &user, &id).await?))
    }

    /// Replaces the accounts named to check tickets in at this event (organizer and admins).
    #[utoipa::path(put, path = "/events/{id}/check-in/staff", tag = "orders", params(("id" = String, Path)),
        request_body = StaffList, security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 200, description = "The list as stored", body = StaffList),
            (status = 403, description = "`forbidden`: buyers", body = Problem),
            (status = 404, description = "`not_found`: not an event you manage", body = Problem),
            (status = 422, description = "`validation_failed`: unknown accounts or too many", body = Problem),
        ))]
    pub async fn replace_staff(
        State(state): State<AppState>,
        RequireRole(user, _): RequireRole<Organizer>,
        ApiPath(id): ApiPath<String>,
        ApiJson(body): ApiJson<StaffList>,
    ) -> AppResult<ApiJson<StaffList>> {
        Ok(ApiJson(
            super::replace_staff(&state, &user, &id, body).await?,
        ))
    }
}
