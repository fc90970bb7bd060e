//! A buyer's own orders: the list (newest first, keyset pages) and one order. Someone else's
//! order is 404, exactly like one that does not exist.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    model::OrderStatus,
    view::{self, OrderView},
};
use crate::{
    app::AppState,
    db::entities::orders,
    error::{AppError, AppResult, FieldError},
    http::page::{self, Cursor},
    infra::clock::from_db,
};

/// `GET /orders` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status (`PENDING`, `CONFIRMED`, `CANCELED`, `REFUNDED`).
    pub status: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// Newest first.
    pub items: Vec<OrderView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The buyer's orders, newest first.
pub async fn list(state: &AppState, user_id: &str, query: ListQuery) -> AppResult<OrderPage> {
    let mut errors = Vec::new();
    let status = match query.status.as_deref() {
        None => None,
        Some(raw) => match OrderStatus::parse(&raw.trim().to_ascii_uppercase()) {
            Some(s) => Some(s),
            None => {
                errors.push(FieldError::new(
                    "status",
                    "invalid_status",
                    "must be PENDING, CONFIRMED, CANCELED or REFUNDED",
                ));
                None
            }
        },
    };
    let limit = page::limit(query.limit, 20, 100)
        .map_err(|e| errors.push(e))
        .ok();
    let cursor = match query.cursor.as_deref().map(Cursor::decode).transpose() {
        Ok(c) => c,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let Some(limit) = limit.filter(|_| errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let mut select = orders::Entity::find().filter(orders::Column::UserId.eq(user_id));
    if let Some(status) = status {
        select = select.filter(orders::Column::Status.eq(status.as_str()));
    }
    if let Some(cursor) = &cursor {
        select =
            select.filter(cursor.after_descending(orders::Column::CreatedAt, orders::Column::Id));
    }
    let rows = select
        .order_by_desc(orders::Column::CreatedAt)
        .order_by_desc(orders::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let (rows, next_cursor) =
        page::split_page(rows, limit, |o| Cursor::new(from_db(o.created_at), &o.id));
    Ok(OrderPage {
        items: view::present_all(&state.db, rows).await?,
        next_cursor,
    })
}

/// The buyer's order row, or 404 (also when it is someone else's).
pub async fn own_order(
    state: &AppState,
    user_id: &str,
    order_id: &str,
) -> AppResult<orders::Model> {
    orders::Entity::find_by_id(order_id.to_owned())
        .one(&state.db)
        .await?
        .filter(|o| o.user_id == user_id)
        .ok_or_else(AppError::not_found)
}

/// One of the buyer's orders if it exists (`None` also for someone else's).
pub async fn find(
    state: &AppState,
    user_id: &str,
    order_id: String,
) -> AppResult<Option<OrderView>> {
    match get(state, user_id, &order_id).await {
        Ok(view) => Ok(Some(view)),
        Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

/// One of the buyer's orders.
pub async fn get(state: &AppState, user_id: &str, order_id: &str) -> AppResult<OrderView> {
    let order = own_order(state, user_id, order_id).await?;
    view::present_all(&state.db, vec![order])
        .await?
        .pop()
        .ok_or_else(AppError::not_found)
}
