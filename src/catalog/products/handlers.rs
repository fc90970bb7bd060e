//! HTTP handlers for products and "notify me".

use axum::{
    extract::{Path, State},
    http::StatusCode,
};

use super::{
    model::{ListQuery, NotifyView, ProductBody, ProductPage, ProductPatch, ProductView},
    notify,
    store::{self, Change},
};
use crate::{
    app::AppState,
    auth::{AuthUser, RequireRole, extract::Organizer},
    catalog::access::Viewer,
    error::{AppResult, Problem},
    http::{ApiJson, ApiQuery},
};

/// Creates a product on an event the caller manages. A ticket needs only the seed's fields
/// `{event_id, type, name, description, price, quantity}`.
#[utoipa::path(post, path = "/products", tag = "catalog", request_body = ProductBody,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "Created", body = ProductView),
        (status = 403, description = "`forbidden`: buyers cannot create products", body = Problem),
        (status = 404, description = "`not_found`: no such event, or someone else's", body = Problem),
        (status = 409, description = "`grade_exists`, `sku_taken`", body = Problem),
        (status = 422, description = "`validation_failed`: bad price, quantity, type, component, `capacity_exceeded`, ...", body = Problem),
    ))]
pub async fn create_product(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    ApiJson(body): ApiJson<ProductBody>,
) -> AppResult<(StatusCode, ApiJson<ProductView>)> {
    let view = store::create(&state, &Viewer::from(&user), body).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// The products of one event by creation time: `ACTIVE` ones for the public, all for who
/// manages the event.
#[utoipa::path(get, path = "/products", tag = "catalog", params(ListQuery),
    responses(
        (status = 200, body = ProductPage),
        (status = 404, description = "No such event, or a draft of someone else", body = Problem),
        (status = 422, description = "`validation_failed`: `event_id` missing, unknown `type`", body = Problem),
    ))]
pub async fn list_products(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<ProductPage>> {
    let viewer = user.as_ref().map(Viewer::from);
    Ok(ApiJson(store::list(&state, viewer.as_ref(), query).await?))
}

/// One product with its remaining stock.
#[utoipa::path(get, path = "/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = Problem)))]
pub async fn get_product(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path(id): Path<String>,
) -> AppResult<ApiJson<ProductView>> {
    let viewer = user.as_ref().map(Viewer::from);
    Ok(ApiJson(store::get(&state, viewer.as_ref(), &id).await?))
}

/// Replaces a product. `event_id`, `type`, `performance_id` and `seating` cannot change; a new
/// `quantity` moves `remaining` by the difference; a new price applies to future orders.
#[utoipa::path(put, path = "/products/{id}", tag = "catalog", params(("id" = String, Path)), request_body = ProductBody,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ProductView),
        (status = 404, body = Problem),
        (status = 409, description = "`quantity_below_sold`, `orders_exist`, `used_by_package`, `grade_exists`, `sku_taken`", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn replace_product(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProductBody>,
) -> AppResult<ApiJson<ProductView>> {
    Ok(ApiJson(
        store::update(&state, &Viewer::from(&user), &id, Change::Replace(body)).await?,
    ))
}

/// Changes some fields of a product (lists replace the whole list).
#[utoipa::path(patch, path = "/products/{id}", tag = "catalog", params(("id" = String, Path)), request_body = ProductPatch,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, body = ProductView),
        (status = 404, body = Problem),
        (status = 409, description = "`quantity_below_sold`, `orders_exist`, `used_by_package`, `grade_exists`, `sku_taken`", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn patch_product(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ProductPatch>,
) -> AppResult<ApiJson<ProductView>> {
    Ok(ApiJson(
        store::update(&state, &Viewer::from(&user), &id, Change::Patch(patch)).await?,
    ))
}

/// Deletes a product that no order and no package refers to (otherwise archive it).
#[utoipa::path(delete, path = "/products/{id}", tag = "catalog", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem),
        (status = 409, description = "`orders_exist` (archive instead) or `used_by_package`", body = Problem),
    ))]
pub async fn delete_product(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    store::delete(&state, &Viewer::from(&user), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks for one mail when the product is back in stock (idempotent per user).
#[utoipa::path(post, path = "/products/{id}/notify-me", tag = "catalog", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 201, description = "Subscribed (also when already subscribed)", body = NotifyView),
        (status = 401, description = "`unauthenticated`", body = Problem),
        (status = 404, body = Problem),
    ))]
pub async fn subscribe(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, ApiJson<NotifyView>)> {
    let view = notify::subscribe(&state, &user, &id).await?;
    Ok((StatusCode::CREATED, ApiJson(view)))
}

/// Withdraws a "notify me" request.
#[utoipa::path(delete, path = "/products/{id}/notify-me", tag = "catalog", params(("id" = String, Path)),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Not subscribed (any more)"), (status = 401, body = Problem)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    notify::unsubscribe(&state, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
