//! Products in the database: views with their remaining stock, create, change, delete, list.
//!
//! Writers of one product are serialised by touching its row first, writers of one
//! performance's tickets by touching the performance row, so the capacity check and the
//! one-reserved-product-per-grade check cannot race on MariaDB (SQLite's IMMEDIATE transactions
//! are serial anyway).

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, sea_query::Expr,
};
use time::OffsetDateTime;

use super::{
    model::{
        ComponentBody, ComponentDraft, ComponentView, Context, DEFAULT_VARIANT, Draft, Input,
        ListQuery, PackageKind, ProductBody, ProductPage, ProductPatch, ProductStatus, ProductType,
        ProductView, Seating, ShippingBody, ShippingDraft, ShippingKind, ShippingView, VariantBody,
        VariantDraft, VariantView, default_sku, validate,
    },
    notify, stock,
};
use crate::{
    app::AppState,
    auth::flows::audit_with_detail,
    catalog::{
        access::{Viewer, can_see, manageable_event},
        model::{EventStatus, SaleState, sale_state},
        money::{Currency, Money},
        performances,
    },
    db::{
        self,
        entities::{
            events, notify_requests, package_components, performances as performance_rows,
            product_variants, products, seats, shipping_options,
        },
    },
    error::{AppError, AppResult, FieldError},
    infra::clock::{from_db, to_db},
};

/// A product with its rows.
#[derive(Clone, Debug)]
struct Stored {
    product: products::Model,
    variants: Vec<product_variants::Model>,
    shipping: Vec<shipping_options::Model>,
    components: Vec<package_components::Model>,
}

/// Seats of one performance and grade: `(not blocked, available)`.
type SeatCounts = HashMap<(String, String), (i64, i64)>;

async fn seat_counts<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    performance_id: Option<&str>,
) -> AppResult<SeatCounts> {
    let mut select = seats::Entity::find()
        .select_only()
        .column(seats::Column::PerformanceId)
        .column(seats::Column::Grade)
        .column(seats::Column::State)
        .column_as(seats::Column::Id.count(), "n")
        .filter(seats::Column::EventId.eq(event_id));
    if let Some(p) = performance_id {
        select = select.filter(seats::Column::PerformanceId.eq(p));
    }
    let rows: Vec<(String, String, String, i64)> = select
        .group_by(seats::Column::PerformanceId)
        .group_by(seats::Column::Grade)
        .group_by(seats::Column::State)
        .into_tuple()
        .all(conn)
        .await?;
    let mut counts = SeatCounts::new();
    for (performance, grade, state, n) in rows {
        let entry = counts.entry((performance, grade)).or_default();
        if state != "BLOCKED" {
            entry.0 += n;
        }
        if state == "AVAILABLE" {
            entry.1 += n;
        }
    }
    Ok(counts)
}

/// Views of products of one event with their remaining stock, in a fixed number of queries.
pub async fn views<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    rows: Vec<products::Model>,
    now: OffsetDateTime,
) -> AppResult<Vec<ProductView>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let (mut variants, shipping, components) = parts_of(conn, ids.clone()).await?;
    // Components may live outside this page: load those products and variants too.
    let missing: HashSet<String> = components
        .iter()
        .map(|c| c.component_product_id.clone())
        .filter(|id| !ids.contains(id))
        .collect();
    let mut all_products = rows.clone();
    if !missing.is_empty() {
        all_products.extend(
            products::Entity::find()
                .filter(products::Column::Id.is_in(missing))
                .all(conn)
                .await?,
        );
    }
    let missing_variants: HashSet<String> = components
        .iter()
        .filter_map(|c| c.component_variant_id.clone())
        .filter(|id| !variants.iter().any(|v| &v.id == id))
        .collect();
    if !missing_variants.is_empty() {
        variants.extend(
            product_variants::Entity::find()
                .filter(product_variants::Column::Id.is_in(missing_variants))
                .all(conn)
                .await?,
        );
    }
    let stock_ids: Vec<String> = all_products
        .iter()
        .filter_map(|p| p.stock_id.clone())
        .chain(variants.iter().map(|v| v.stock_id.clone()))
        .chain(variants.iter().filter_map(|v| v.preorder_stock_id.clone()))
        .collect();
    let stock = stock::remaining_of(conn, stock_ids).await?;
    let seats = if rows
        .iter()
        .any(|r| r.seating.as_deref() == Some(Seating::Reserved.as_str()))
    {
        seat_counts(conn, &event.id, None).await?
    } else {
        SeatCounts::new()
    };
    let left = |id: &str| stock.get(id).copied().unwrap_or(0);
    let component_left = |c: &package_components::Model| -> i64 {
        match &c.component_variant_id {
            Some(v) => variants
                .iter()
                .find(|x| &x.id == v)
                .map_or(0, |x| left(&x.stock_id)),
            None => all_products
                .iter()
                .find(|p| p.id == c.component_product_id)
                .and_then(|p| p.stock_id.as_deref())
                .map_or(0, left),
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let my_variants: Vec<VariantView> = variants
                .iter()
                .filter(|v| v.product_id == row.id)
                .map(|v| VariantView {
                    id: v.id.clone(),
                    name: v.name.clone(),
                    sku: v.sku.clone(),
                    quantity: i64::from(v.quantity),
                    remaining: left(&v.stock_id),
                    preorder_limit: v.preorder_limit,
                    preorder_remaining: v.preorder_stock_id.as_deref().map(left),
                    expected_ship_date: v.expected_ship_date.clone(),
                })
                .collect();
            let my_components: Vec<&package_components::Model> = components
                .iter()
                .filter(|c| c.package_id == row.id)
                .collect();
            let product_type = ProductType::parse(&row.product_type).unwrap_or(ProductType::Ticket);
            let seating = row.seating.as_deref().map(Seating::from_db);
            let (quantity, remaining) = match product_type {
                ProductType::Ticket if seating == Some(Seating::Reserved) => {
                    let key = (
                        row.performance_id.clone().unwrap_or_default(),
                        row.grade.clone().unwrap_or_default(),
                    );
                    seats.get(&key).copied().unwrap_or_default()
                }
                ProductType::Ticket => (
                    i64::from(row.quantity),
                    row.stock_id.as_deref().map_or(0, left),
                ),
                ProductType::Merch => (
                    my_variants.iter().map(|v| v.quantity).sum(),
                    my_variants.iter().map(|v| v.remaining).sum(),
                ),
                ProductType::Package => {
                    let parts: Vec<(i64, i64)> = my_components
                        .iter()
                        .map(|c| (component_left(c), i64::from(c.quantity)))
                        .collect();
                    (
                        i64::from(row.quantity),
                        stock::package_remaining(row.stock_id.as_deref().map_or(0, left), &parts),
                    )
                }
            };
            let status = ProductStatus::from_db(&row.status);
            let open = row
                .sale_open_at
                .map_or(from_db(event.sale_open_at), from_db);
            let close = row
                .sale_close_at
                .map_or(from_db(event.sale_close_at), from_db);
            let preorders_left = my_variants
                .iter()
                .any(|v| v.preorder_remaining.unwrap_or(0) > 0);
            let state = if status == ProductStatus::Archived {
                SaleState::Closed
            } else {
                sale_state(
                    now,
                    EventStatus::from_db(&event.status),
                    open,
                    close,
                    Some(remaining > 0 || preorders_left),
                )
            };
            ProductView {
                id: row.id.clone(),
                event_id: row.event_id.clone(),
                performance_id: row.performance_id.clone(),
                product_type,
                kind: row.kind.as_deref().map(PackageKind::from_db),
                name: row.name.clone(),
                description: row.description.clone(),
                price: Money::from_minor(row.price),
                currency: event.currency.clone(),
                quantity,
                remaining,
                grade: row.grade.clone(),
                seating,
                sale_open_at: open,
                sale_close_at: close,
                per_user_limit: row.per_user_limit,
                per_order_limit: row.per_order_limit,
                status,
                sale_state: state,
                variants: my_variants,
                shipping_options: shipping
                    .iter()
                    .filter(|s| s.product_id == row.id)
                    .map(|s| ShippingView {
                        id: s.id.clone(),
                        kind: ShippingKind::from_db(&s.kind),
                        name: s.name.clone(),
                        fee: Money::from_minor(s.fee),
                    })
                    .collect(),
                components: my_components
                    .iter()
                    .map(|c| ComponentView {
                        product_id: c.component_product_id.clone(),
                        variant_id: c.component_variant_id.clone(),
                        quantity: c.quantity,
                    })
                    .collect(),
                created_at: from_db(row.created_at),
                updated_at: from_db(row.updated_at),
            }
        })
        .collect())
}

/// The view of one product.
async fn view_of<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    row: products::Model,
    now: OffsetDateTime,
) -> AppResult<ProductView> {
    views(conn, event, vec![row], now)
        .await?
        .pop()
        .ok_or_else(AppError::not_found)
}

/// Packages (of any status) that contain the product.
pub async fn dependent_packages<C: ConnectionTrait>(
    conn: &C,
    product_id: &str,
) -> AppResult<Vec<String>> {
    let ids: Vec<String> = package_components::Entity::find()
        .select_only()
        .column(package_components::Column::PackageId)
        .filter(package_components::Column::ComponentProductId.eq(product_id))
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    Ok(ids)
}

/// The variants, shipping options and components of some products, each in list order.
async fn parts_of<C: ConnectionTrait>(
    conn: &C,
    ids: Vec<String>,
) -> AppResult<(
    Vec<product_variants::Model>,
    Vec<shipping_options::Model>,
    Vec<package_components::Model>,
)> {
    let variants = product_variants::Entity::find()
        .filter(product_variants::Column::ProductId.is_in(ids.clone()))
        .order_by_asc(product_variants::Column::Position)
        .all(conn)
        .await?;
    let shipping = shipping_options::Entity::find()
        .filter(shipping_options::Column::ProductId.is_in(ids.clone()))
        .order_by_asc(shipping_options::Column::Position)
        .all(conn)
        .await?;
    let components = package_components::Entity::find()
        .filter(package_components::Column::PackageId.is_in(ids))
        .order_by_asc(package_components::Column::Id)
        .all(conn)
        .await?;
    Ok((variants, shipping, components))
}

async fn load<C: ConnectionTrait>(conn: &C, id: &str) -> AppResult<Option<Stored>> {
    let Some(product) = products::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let (variants, shipping, components) = parts_of(conn, vec![id.to_owned()]).await?;
    Ok(Some(Stored {
        product,
        variants,
        shipping,
        components,
    }))
}

/// Takes the row lock of a product (MariaDB) so its writers run one after another.
async fn lock_product<C: ConnectionTrait>(conn: &C, id: &str) -> AppResult<()> {
    products::Entity::update_many()
        .col_expr(
            products::Column::UpdatedAt,
            Expr::col(products::Column::UpdatedAt),
        )
        .filter(products::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Takes the row lock of a performance: ticket writers of one performance run one after another.
async fn lock_performance<C: ConnectionTrait>(conn: &C, id: &str) -> AppResult<()> {
    performance_rows::Entity::update_many()
        .col_expr(
            performance_rows::Column::UpdatedAt,
            Expr::col(performance_rows::Column::UpdatedAt),
        )
        .filter(performance_rows::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

fn context(event: &events::Model, product_id: &str) -> AppResult<Context> {
    Ok(Context {
        product_id: product_id.to_owned(),
        currency: Currency::parse(&event.currency)
            .map_err(|e| AppError::internal(anyhow::anyhow!("stored currency: {}", e.message)))?,
        event_sale_open_at: from_db(event.sale_open_at),
        event_sale_close_at: from_db(event.sale_close_at),
        event_end_at: from_db(event.end_at),
    })
}

fn checked(input: Input, ctx: &Context) -> AppResult<Draft> {
    validate(input, ctx).map_err(AppError::validation)
}

fn below_sold(what: &str) -> AppError {
    AppError::conflict(
        "quantity_below_sold",
        format!("{what}: more units are sold or held than the new quantity leaves room for."),
    )
}

/// A unique-index violation on variants can only be the SKU index.
fn sku_taken(err: DbErr) -> AppError {
    if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        AppError::conflict(
            "sku_taken",
            "Another product of this event already uses one of these SKUs.",
        )
    } else {
        err.into()
    }
}

/// Sets a counter to a new configured quantity: creates it, or moves it by the difference.
async fn set_quantity<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    stock_id: Option<&str>,
    old: i32,
    new: i32,
    what: &str,
    now: OffsetDateTime,
) -> AppResult<String> {
    match stock_id {
        None => stock::create_counter(conn, event_id, i64::from(new), now).await,
        Some(id) => {
            if stock::adjust(conn, event_id, id, i64::from(new) - i64::from(old), now).await? {
                Ok(id.to_owned())
            } else {
                Err(below_sold(what))
            }
        }
    }
}

async fn resolve_performance<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    requested: Option<&str>,
) -> AppResult<performance_rows::Model> {
    let rows = crate::catalog::events::performance_rows(conn, &event.id).await?;
    match requested {
        Some(id) => rows.into_iter().find(|p| p.id == id).ok_or_else(|| {
            AppError::invalid_field(
                "performance_id",
                "not_found",
                "is not a performance of this event",
            )
        }),
        None if rows.len() == 1 => rows.into_iter().next().ok_or_else(AppError::not_found),
        None => Err(AppError::invalid_field(
            "performance_id",
            "required",
            "the event has several performances; name one",
        )),
    }
}

/// Checks the components against the database; returns the derived kind and the components
/// with merchandise variants resolved.
async fn resolve_components<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    drafts: &[ComponentDraft],
    requested: Option<PackageKind>,
) -> AppResult<(PackageKind, Vec<ComponentDraft>)> {
    let ids: Vec<String> = drafts.iter().map(|c| c.product_id.clone()).collect();
    let found = products::Entity::find()
        .filter(products::Column::Id.is_in(ids.clone()))
        .all(conn)
        .await?;
    let variants = product_variants::Entity::find()
        .filter(product_variants::Column::ProductId.is_in(ids))
        .all(conn)
        .await?;
    let mut errors = Vec::new();
    let mut resolved: Vec<ComponentDraft> = Vec::new();
    let mut all_merch = true;
    for (i, c) in drafts.iter().enumerate() {
        let field = |name: &str| format!("components[{i}].{name}");
        let error = |name: &str, code: &str, msg: &str| FieldError::new(&field(name), code, msg);
        let Some(product) = found.iter().find(|p| p.id == c.product_id) else {
            errors.push(error("product_id", "not_found", "no such product"));
            continue;
        };
        if product.event_id != event.id {
            errors.push(error(
                "product_id",
                "component_other_event",
                "belongs to another event",
            ));
            continue;
        }
        if ProductStatus::from_db(&product.status) == ProductStatus::Archived {
            errors.push(error("product_id", "component_archived", "is archived"));
            continue;
        }
        let variant_id = match ProductType::parse(&product.product_type) {
            Some(ProductType::Package) | None => {
                errors.push(error(
                    "product_id",
                    "component_is_package",
                    "a package cannot contain a package",
                ));
                continue;
            }
            Some(ProductType::Ticket) => {
                all_merch = false;
                if product.seating.as_deref() == Some(Seating::Reserved.as_str()) {
                    errors.push(error(
                        "product_id",
                        "component_reserved_seat",
                        "reserved-seat tickets cannot be in a package; use a general-admission ticket",
                    ));
                    continue;
                }
                if c.variant_id.is_some() {
                    errors.push(error(
                        "variant_id",
                        "not_allowed",
                        "tickets have no variants",
                    ));
                    continue;
                }
                None
            }
            Some(ProductType::Merch) => {
                let own: Vec<&product_variants::Model> = variants
                    .iter()
                    .filter(|v| v.product_id == product.id)
                    .collect();
                match (&c.variant_id, own.as_slice()) {
                    (Some(v), _) if own.iter().any(|x| &x.id == v) => Some(v.clone()),
                    (Some(_), _) => {
                        errors.push(error(
                            "variant_id",
                            "not_found",
                            "is not a variant of this product",
                        ));
                        continue;
                    }
                    (None, [only]) => Some(only.id.clone()),
                    (None, _) => {
                        errors.push(error(
                            "variant_id",
                            "required",
                            "the product has several variants; name one",
                        ));
                        continue;
                    }
                }
            }
        };
        if resolved
            .iter()
            .any(|r| r.product_id == c.product_id && r.variant_id == variant_id)
        {
            errors.push(error(
                "product_id",
                "duplicate_component",
                "is listed twice; raise its quantity instead",
            ));
            continue;
        }
        resolved.push(ComponentDraft {
            product_id: c.product_id.clone(),
            variant_id,
            quantity: c.quantity,
        });
    }
    let kind = if all_merch {
        PackageKind::Bundle
    } else {
        PackageKind::Package
    };
    if errors.is_empty()
        && let Some(k) = requested
        && k != kind
    {
        errors.push(FieldError::new(
            "kind",
            "kind_mismatch",
            "BUNDLE means merchandise only; PACKAGE includes a ticket",
        ));
    }
    if errors.is_empty() {
        Ok((kind, resolved))
    } else {
        Err(AppError::validation(errors))
    }
}

/// Stock of a variant is taken by orders or a package refers to it: it must stay.
async fn remove_variant<C: ConnectionTrait>(
    conn: &C,
    variant: &product_variants::Model,
) -> AppResult<()> {
    let stocks: Vec<String> = std::iter::once(variant.stock_id.clone())
        .chain(variant.preorder_stock_id.clone())
        .collect();
    if stock::has_order_movements(conn, &stocks).await? {
        return Err(AppError::conflict(
            "orders_exist",
            format!(
                "Variant {} has orders; keep it (set its quantity instead).",
                variant.sku
            ),
        ));
    }
    let used = package_components::Entity::find()
        .filter(package_components::Column::ComponentVariantId.eq(variant.id.as_str()))
        .count(conn)
        .await?;
    if used > 0 {
        return Err(AppError::conflict(
            "used_by_package",
            format!(
                "Variant {} is part of a package; change the package first.",
                variant.sku
            ),
        ));
    }
    product_variants::Entity::delete_by_id(variant.id.clone())
        .exec(conn)
        .await?;
    stock::remove(conn, &stocks).await
}

/// Makes the variants of a product what the draft says, moving stock by differences.
async fn sync_variants<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    product_id: &str,
    existing: &[product_variants::Model],
    drafts: &[VariantDraft],
    now: OffsetDateTime,
) -> AppResult<()> {
    let mut matched: Vec<Option<&product_variants::Model>> = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let found = match &d.id {
            Some(id) => Some(existing.iter().find(|v| &v.id == id).ok_or_else(|| {
                AppError::invalid_field(
                    &format!("variants[{i}].id"),
                    "not_found",
                    "is not a variant of this product",
                )
            })?),
            None => existing.iter().find(|v| v.sku == d.sku),
        };
        if let Some(f) = found
            && matched.iter().flatten().any(|m| m.id == f.id)
        {
            return Err(AppError::invalid_field(
                &format!("variants[{i}]"),
                "duplicate_variant",
                "names a variant another entry already names",
            ));
        }
        matched.push(found);
    }
    // Removals first, so their SKUs are free for the rest.
    for old in existing {
        if !matched.iter().flatten().any(|m| m.id == old.id) {
            remove_variant(conn, old).await?;
        }
    }
    for (position, (d, old)) in drafts.iter().zip(matched).enumerate() {
        let what = format!("Variant {}", d.sku);
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        match old {
            Some(old) => {
                if !stock::adjust(
                    conn,
                    event_id,
                    &old.stock_id,
                    i64::from(d.quantity) - i64::from(old.quantity),
                    now,
                )
                .await?
                {
                    return Err(below_sold(&what));
                }
                let preorder_stock_id =
                    match (&old.preorder_stock_id, old.preorder_limit, d.preorder_limit) {
                        (Some(id), Some(before), Some(after)) => {
                            if !stock::adjust(
                                conn,
                                event_id,
                                id,
                                i64::from(after) - i64::from(before),
                                now,
                            )
                            .await?
                            {
                                return Err(below_sold(&format!("Pre-orders of {}", d.sku)));
                            }
                            Some(id.clone())
                        }
                        (Some(id), before, None) => {
                            let before = i64::from(before.unwrap_or(0));
                            if !stock::adjust(conn, event_id, id, -before, now).await? {
                                return Err(below_sold(&format!("Pre-orders of {}", d.sku)));
                            }
                            // Nothing is pre-ordered now; a counter no order touched can go.
                            let ids = [id.clone()];
                            if !stock::has_order_movements(conn, &ids).await? {
                                stock::remove(conn, &ids).await?;
                            }
                            None
                        }
                        (_, _, Some(after)) => Some(
                            stock::create_counter(conn, event_id, i64::from(after), now).await?,
                        ),
                        (None, _, None) => None,
                    };
                let mut model: product_variants::ActiveModel = old.clone().into();
                model.name = Set(d.name.clone());
                model.sku = Set(d.sku.clone());
                model.quantity = Set(d.quantity);
                model.preorder_limit = Set(d.preorder_limit);
                model.preorder_stock_id = Set(preorder_stock_id);
                model.expected_ship_date = Set(d.expected_ship_date.clone());
                model.position = Set(position);
                model.update(conn).await.map_err(sku_taken)?;
            }
            None => {
                let stock_id =
                    stock::create_counter(conn, event_id, i64::from(d.quantity), now).await?;
                let preorder_stock_id = match d.preorder_limit {
                    Some(limit) => {
                        Some(stock::create_counter(conn, event_id, i64::from(limit), now).await?)
                    }
                    None => None,
                };
                product_variants::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    product_id: Set(product_id.to_owned()),
                    event_id: Set(event_id.to_owned()),
                    name: Set(d.name.clone()),
                    sku: Set(d.sku.clone()),
                    quantity: Set(d.quantity),
                    stock_id: Set(stock_id),
                    preorder_limit: Set(d.preorder_limit),
                    preorder_stock_id: Set(preorder_stock_id),
                    expected_ship_date: Set(d.expected_ship_date.clone()),
                    position: Set(position),
                }
                .insert(conn)
                .await
                .map_err(sku_taken)?;
            }
        }
    }
    Ok(())
}

/// Makes the shipping options what the draft says (matched by id).
async fn sync_shipping<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
    product_id: &str,
    existing: &[shipping_options::Model],
    drafts: &[ShippingDraft],
) -> AppResult<()> {
    let mut kept = Vec::new();
    for (position, d) in drafts.iter().enumerate() {
        let position_i32 = i32::try_from(position).unwrap_or(i32::MAX);
        let old = match &d.id {
            Some(id) => Some(existing.iter().find(|s| &s.id == id).ok_or_else(|| {
                AppError::invalid_field(
                    &format!("shipping_options[{position}].id"),
                    "not_found",
                    "is not a shipping option of this product",
                )
            })?),
            None => None,
        };
        let mut model = match old {
            Some(old) => {
                kept.push(old.id.clone());
                let model: shipping_options::ActiveModel = old.clone().into();
                model
            }
            None => shipping_options::ActiveModel {
                id: Set(uuid::Uuid::now_v7().to_string()),
                product_id: Set(product_id.to_owned()),
                event_id: Set(event_id.to_owned()),
                ..Default::default()
            },
        };
        model.kind = Set(d.kind.as_str().to_owned());
        model.name = Set(d.name.clone());
        model.fee = Set(d.fee.minor());
        model.position = Set(position_i32);
        if old.is_some() {
            model.update(conn).await?;
        } else {
            model.insert(conn).await?;
        }
    }
    let gone: Vec<String> = existing
        .iter()
        .filter(|s| !kept.contains(&s.id))
        .map(|s| s.id.clone())
        .collect();
    if !gone.is_empty() {
        shipping_options::Entity::delete_many()
            .filter(shipping_options::Column::Id.is_in(gone))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// One reserved-seat product per performance and grade, or the seats would be sold twice.
async fn ensure_single_reserved<C: ConnectionTrait>(
    conn: &C,
    performance_id: &str,
    grade: &str,
    except: &str,
) -> AppResult<()> {
    let other = products::Entity::find()
        .filter(products::Column::PerformanceId.eq(performance_id))
        .filter(products::Column::Grade.eq(grade))
        .filter(products::Column::Seating.eq(Seating::Reserved.as_str()))
        .filter(products::Column::Status.ne(ProductStatus::Archived.as_str()))
        .filter(products::Column::Id.ne(except))
        .count(conn)
        .await?;
    if other > 0 {
        return Err(AppError::conflict(
            "grade_exists",
            format!(
                "Grade {grade} of this performance is already sold by another reserved-seat product."
            ),
        ));
    }
    Ok(())
}

/// What a sold package contains is part of what its buyers bought, and cancelling or refunding
/// their orders gives back the per-buyer limits of those contents: so once a package has orders,
/// its contents stay as they are (archive it and create another to sell something else).
async fn contents_unchanged_once_sold<C: ConnectionTrait>(
    conn: &C,
    existing: &Stored,
    components: &[ComponentDraft],
) -> AppResult<()> {
    let key = |product: &str, variant: Option<&str>, quantity: i32| {
        (product.to_owned(), variant.map(str::to_owned), quantity)
    };
    let mut before: Vec<_> = existing
        .components
        .iter()
        .map(|c| {
            key(
                &c.component_product_id,
                c.component_variant_id.as_deref(),
                c.quantity,
            )
        })
        .collect();
    let mut after: Vec<_> = components
        .iter()
        .map(|c| key(&c.product_id, c.variant_id.as_deref(), c.quantity))
        .collect();
    before.sort();
    after.sort();
    let stocks: Vec<String> = existing.product.stock_id.iter().cloned().collect();
    if before != after && stock::has_order_movements(conn, &stocks).await? {
        return Err(AppError::conflict(
            "orders_exist",
            "This package has orders, so what it contains can no longer change; archive it and create another.",
        ));
    }
    Ok(())
}

/// Writes a validated draft: stock, variants, shipping, components and the product row.
async fn save<C: ConnectionTrait>(
    conn: &C,
    event: &events::Model,
    id: &str,
    existing: Option<&Stored>,
    draft: &Draft,
    now: OffsetDateTime,
) -> AppResult<products::Model> {
    let old_quantity = existing.map_or(0, |e| e.product.quantity);
    let old_stock = existing.and_then(|e| e.product.stock_id.clone());
    let mut performance_id = None;
    let mut kind = None;
    let mut stock_id = None;
    let stored_quantity: i32;
    match draft.product_type {
        ProductType::Ticket => {
            let performance =
                resolve_performance(conn, event, draft.performance_id.as_deref()).await?;
            lock_performance(conn, &performance.id).await?;
            let grade = draft.grade.clone().unwrap_or_default();
            let archived = draft.status == ProductStatus::Archived;
            if let Some(e) = existing {
                let immutable = |field: &str| {
                    AppError::invalid_field(
                        field,
                        "immutable",
                        "cannot change; create another product",
                    )
                };
                if e.product.performance_id.as_deref() != Some(performance.id.as_str()) {
                    return Err(immutable("performance_id"));
                }
                if e.product.seating.as_deref() != draft.seating.map(Seating::as_str) {
                    return Err(immutable("seating"));
                }
                if draft.seating == Some(Seating::Reserved)
                    && e.product.grade.as_deref() != Some(grade.as_str())
                {
                    return Err(immutable("grade"));
                }
            }
            if draft.seating == Some(Seating::Reserved) {
                if !archived {
                    ensure_single_reserved(conn, &performance.id, &grade, id).await?;
                }
                let seats = seat_counts(conn, &event.id, Some(&performance.id)).await?;
                let (total, _) = seats
                    .get(&(performance.id.clone(), grade.clone()))
                    .copied()
                    .unwrap_or_default();
                if let Some(q) = draft.quantity
                    && i64::from(q) != total
                {
                    return Err(AppError::invalid_field(
                        "quantity",
                        "derived_quantity",
                        format!(
                            "reserved seating sells the {total} seats of grade {grade}; leave quantity out"
                        ),
                    ));
                }
                stored_quantity = 0;
            } else {
                let q = draft.quantity.ok_or_else(|| {
                    AppError::invalid_field(
                        "quantity",
                        "required",
                        "is required for general admission",
                    )
                })?;
                let was_counted = existing
                    .filter(|e| e.product.status != ProductStatus::Archived.as_str())
                    .map_or(0, |e| i64::from(e.product.quantity));
                let counted = if archived { 0 } else { i64::from(q) };
                if counted > was_counted {
                    let on_sale = performances::tickets_on_sale(conn, &performance.id).await?;
                    let capacity = i64::from(performance.capacity);
                    if on_sale - was_counted + counted > capacity {
                        return Err(AppError::invalid_field(
                            "quantity",
                            "capacity_exceeded",
                            format!(
                                "the performance holds {capacity}; {} are already on sale",
                                on_sale - was_counted
                            ),
                        ));
                    }
                }
                stock_id = Some(
                    set_quantity(
                        conn,
                        &event.id,
                        old_stock.as_deref(),
                        old_quantity,
                        q,
                        "This ticket",
                        now,
                    )
                    .await?,
                );
                stored_quantity = q;
            }
            performance_id = Some(performance.id);
        }
        ProductType::Merch => {
            let existing_variants = existing.map(|e| e.variants.as_slice()).unwrap_or_default();
            sync_variants(conn, &event.id, id, existing_variants, &draft.variants, now).await?;
            stored_quantity = draft.quantity.unwrap_or_default();
        }
        ProductType::Package => {
            let (derived, components) =
                resolve_components(conn, event, &draft.components, draft.kind).await?;
            if let Some(e) = existing {
                contents_unchanged_once_sold(conn, e, &components).await?;
            }
            kind = Some(derived.as_str().to_owned());
            package_components::Entity::delete_many()
                .filter(package_components::Column::PackageId.eq(id))
                .exec(conn)
                .await?;
            for c in components {
                package_components::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    package_id: Set(id.to_owned()),
                    event_id: Set(event.id.clone()),
                    component_product_id: Set(c.product_id),
                    component_variant_id: Set(c.variant_id),
                    quantity: Set(c.quantity),
                }
                .insert(conn)
                .await?;
            }
            let q = draft.quantity.ok_or_else(|| {
                AppError::invalid_field("quantity", "required", "is required for a package")
            })?;
            stock_id = Some(
                set_quantity(
                    conn,
                    &event.id,
                    old_stock.as_deref(),
                    old_quantity,
                    q,
                    "This package",
                    now,
                )
                .await?,
            );
            stored_quantity = q;
        }
    }
    let existing_shipping = existing.map(|e| e.shipping.as_slice()).unwrap_or_default();
    sync_shipping(conn, &event.id, id, existing_shipping, &draft.shipping).await?;
    let mut model = match existing {
        Some(e) => e.product.clone().into(),
        None => products::ActiveModel {
            id: Set(id.to_owned()),
            event_id: Set(event.id.clone()),
            product_type: Set(draft.product_type.as_str().to_owned()),
            created_at: Set(to_db(now)),
            ..Default::default()
        },
    };
    model.performance_id = Set(performance_id);
    model.kind = Set(kind);
    model.name = Set(draft.name.clone());
    model.description = Set(draft.description.clone());
    model.price = Set(draft.price.minor());
    model.quantity = Set(stored_quantity);
    model.grade = Set(draft.grade.clone());
    model.seating = Set(draft.seating.map(|s| s.as_str().to_owned()));
    model.stock_id = Set(stock_id);
    model.sale_open_at = Set(draft.sale_open_at.map(to_db));
    model.sale_close_at = Set(draft.sale_close_at.map(to_db));
    model.per_user_limit = Set(draft.per_user_limit);
    model.per_order_limit = Set(draft.per_order_limit);
    model.status = Set(draft.status.as_str().to_owned());
    model.updated_at = Set(to_db(now));
    Ok(if existing.is_some() {
        model.update(conn).await?
    } else {
        model.insert(conn).await?
    })
}

/// Creates a product on an event the viewer manages.
pub async fn create(
    state: &AppState,
    viewer: &Viewer,
    body: ProductBody,
) -> AppResult<ProductView> {
    let event = manageable_event(state, viewer, &body.event_id).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let draft = checked(
        Input::from_body(body, ProductStatus::Active),
        &context(&event, &id)?,
    )?;
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    let view = db::write_tx(&state.db, |tx| {
        let (event, id, draft, actor) = (event.clone(), id.clone(), draft.clone(), actor.clone());
        Box::pin(async move {
            let row = save(tx, &event, &id, None, &draft, now).await?;
            let view = view_of(tx, &event, row, now).await?;
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "product.created",
                "product",
                Some(&id),
                None,
                Some(serde_json::json!({"event_id": event.id, "after": view})),
            )
            .await?;
            Ok(view)
        })
    })
    .await?;
    state.catalog_changed(&event.id).await;
    Ok(view)
}

/// Replaces (`PUT`) or patches (`PATCH`) a product.
#[derive(Clone, Debug)]
pub enum Change {
    /// The whole product.
    Replace(ProductBody),
    /// Some fields.
    Patch(ProductPatch),
}

/// The stored product as an input, so a patch goes through the same validation as a body.
fn input_of(stored: &Stored) -> Input {
    let p = &stored.product;
    let implicit = matches!(stored.variants.as_slice(),
        [only] if only.name == DEFAULT_VARIANT && only.sku == default_sku(&p.id));
    let product_type = ProductType::parse(&p.product_type);
    let reserved = p.seating.as_deref() == Some(Seating::Reserved.as_str());
    Input {
        product_type: p.product_type.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        price: Money::from_minor(p.price).to_string(),
        quantity: match product_type {
            Some(ProductType::Merch) if implicit => {
                stored.variants.first().map(|v| i64::from(v.quantity))
            }
            Some(ProductType::Merch) => None,
            Some(ProductType::Ticket) if reserved => None,
            _ => Some(i64::from(p.quantity)),
        },
        sale_open_at: p.sale_open_at.map(from_db),
        sale_close_at: p.sale_close_at.map(from_db),
        per_user_limit: p.per_user_limit.map(i64::from),
        per_order_limit: p.per_order_limit.map(i64::from),
        status: ProductStatus::from_db(&p.status),
        performance_id: p.performance_id.clone(),
        grade: p.grade.clone(),
        seating: p.seating.as_deref().map(Seating::from_db),
        // The stored kind was derived from the components; a patch that changes them must not
        // be held to the old one.
        kind: None,
        variants: (product_type == Some(ProductType::Merch) && !implicit).then(|| {
            stored
                .variants
                .iter()
                .map(|v| VariantBody {
                    id: Some(v.id.clone()),
                    name: v.name.clone(),
                    sku: v.sku.clone(),
                    quantity: i64::from(v.quantity),
                    preorder_limit: v.preorder_limit.map(i64::from),
                    expected_ship_date: v.expected_ship_date.clone(),
                })
                .collect()
        }),
        shipping_options: (product_type != Some(ProductType::Ticket)).then(|| {
            stored
                .shipping
                .iter()
                .map(|s| ShippingBody {
                    id: Some(s.id.clone()),
                    kind: ShippingKind::from_db(&s.kind),
                    name: s.name.clone(),
                    fee: crate::catalog::money::RawAmount(Money::from_minor(s.fee).to_string()),
                })
                .collect()
        }),
        components: (product_type == Some(ProductType::Package)).then(|| {
            stored
                .components
                .iter()
                .map(|c| ComponentBody {
                    product_id: c.component_product_id.clone(),
                    variant_id: c.component_variant_id.clone(),
                    quantity: i64::from(c.quantity),
                })
                .collect()
        }),
    }
}

/// The input a change asks for; fields that cannot change must be absent or equal.
fn changed_input(stored: &Stored, change: Change) -> AppResult<Input> {
    let p = &stored.product;
    let immutable = |field: &str| {
        AppError::invalid_field(field, "immutable", "cannot change; create another product")
    };
    match change {
        Change::Replace(body) => {
            if body.event_id != p.event_id {
                return Err(immutable("event_id"));
            }
            if body.product_type.trim() != p.product_type {
                return Err(immutable("type"));
            }
            let mut input = Input::from_body(body, ProductStatus::from_db(&p.status));
            // What cannot change may be left out of a replacement.
            if input.performance_id.is_none() {
                input.performance_id = p.performance_id.clone();
            }
            if input.seating.is_none() {
                input.seating = p.seating.as_deref().map(Seating::from_db);
            }
            if input.grade.is_none() && input.seating == Some(Seating::Reserved) {
                input.grade = p.grade.clone();
            }
            Ok(input)
        }
        Change::Patch(patch) => {
            if patch.event_id.as_ref().is_some_and(|e| e != &p.event_id) {
                return Err(immutable("event_id"));
            }
            if patch
                .product_type
                .as_ref()
                .is_some_and(|t| t.trim() != p.product_type)
            {
                return Err(immutable("type"));
            }
            if patch
                .performance_id
                .as_ref()
                .is_some_and(|x| Some(x) != p.performance_id.as_ref())
            {
                return Err(immutable("performance_id"));
            }
            if patch
                .seating
                .is_some_and(|s| Some(s.as_str()) != p.seating.as_deref())
            {
                return Err(immutable("seating"));
            }
            Ok(input_of(stored).apply(patch))
        }
    }
}

/// Applies a change by the event's organizer or an admin; mails "notify me" subscribers of
/// every product whose remaining rose from zero.
pub async fn update(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    change: Change,
) -> AppResult<ProductView> {
    let product = products::Entity::find_by_id(id.to_owned())
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let event = manageable_event(state, viewer, &product.event_id).await?;
    let ctx = context(&event, id)?;
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    let (view, mailed) = db::write_tx(&state.db, |tx| {
        let (event, ctx, change, actor, state) = (
            event.clone(),
            ctx.clone(),
            change.clone(),
            actor.clone(),
            state.clone(),
        );
        Box::pin(async move {
            lock_product(tx, &ctx.product_id).await?;
            let stored = load(tx, &ctx.product_id)
                .await?
                .ok_or_else(AppError::not_found)?;
            let draft = checked(changed_input(&stored, change)?, &ctx)?;
            // The product and every package containing it may come back into stock.
            let mut affected = vec![stored.product.clone()];
            let packages = dependent_packages(tx, &ctx.product_id).await?;
            if !packages.is_empty() {
                affected.extend(
                    products::Entity::find()
                        .filter(products::Column::Id.is_in(packages))
                        .all(tx)
                        .await?,
                );
            }
            let before = views(tx, &event, affected.clone(), now).await?;
            let row = save(tx, &event, &ctx.product_id, Some(&stored), &draft, now).await?;
            affected[0] = row;
            let after = views(tx, &event, affected, now).await?;
            let mut mailed = 0;
            for (b, a) in before.iter().zip(&after) {
                if b.remaining == 0 && a.remaining > 0 {
                    mailed += notify::notify_back_in_stock(tx, &state, &a.id, now).await?;
                }
            }
            let view = after.into_iter().next().ok_or_else(AppError::not_found)?;
            let before = before.into_iter().next();
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "product.updated",
                "product",
                Some(&view.id),
                None,
                Some(serde_json::json!({"event_id": event.id, "before": before, "after": view})),
            )
            .await?;
            Ok((view, mailed))
        })
    })
    .await?;
    if mailed > 0 {
        state.mail_wake.notify_one();
    }
    state.catalog_changed(&event.id).await;
    Ok(view)
}

/// Deletes a product no order and no package refers to.
pub async fn delete(state: &AppState, viewer: &Viewer, id: &str) -> AppResult<()> {
    let product = products::Entity::find_by_id(id.to_owned())
        .one(&state.db)
        .await?
        .ok_or_else(AppError::not_found)?;
    let event = manageable_event(state, viewer, &product.event_id).await?;
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    db::write_tx(&state.db, |tx| {
        let (event, id, actor) = (event.clone(), id.to_owned(), actor.clone());
        Box::pin(async move {
            lock_product(tx, &id).await?;
            let stored = load(tx, &id).await?.ok_or_else(AppError::not_found)?;
            let p = &stored.product;
            let stocks: Vec<String> = p
                .stock_id
                .iter()
                .cloned()
                .chain(stored.variants.iter().map(|v| v.stock_id.clone()))
                .chain(
                    stored
                        .variants
                        .iter()
                        .filter_map(|v| v.preorder_stock_id.clone()),
                )
                .collect();
            let seats_ordered = match (&p.performance_id, &p.grade, p.seating.as_deref()) {
                (Some(perf), Some(grade), Some("RESERVED")) => {
                    seats::Entity::find()
                        .filter(seats::Column::PerformanceId.eq(perf.as_str()))
                        .filter(seats::Column::Grade.eq(grade.as_str()))
                        .filter(seats::Column::OrderId.is_not_null())
                        .count(tx)
                        .await?
                        > 0
                }
                _ => false,
            };
            if seats_ordered || stock::has_order_movements(tx, &stocks).await? {
                return Err(AppError::conflict(
                    "orders_exist",
                    "This product has orders; archive it instead (status ARCHIVED).",
                ));
            }
            if !dependent_packages(tx, &id).await?.is_empty() {
                return Err(AppError::conflict(
                    "used_by_package",
                    "A package contains this product; change or delete the package first.",
                ));
            }
            let before = view_of(tx, &event, p.clone(), now).await?;
            package_components::Entity::delete_many()
                .filter(package_components::Column::PackageId.eq(id.as_str()))
                .exec(tx)
                .await?;
            product_variants::Entity::delete_many()
                .filter(product_variants::Column::ProductId.eq(id.as_str()))
                .exec(tx)
                .await?;
            shipping_options::Entity::delete_many()
                .filter(shipping_options::Column::ProductId.eq(id.as_str()))
                .exec(tx)
                .await?;
            notify_requests::Entity::delete_many()
                .filter(notify_requests::Column::ProductId.eq(id.as_str()))
                .exec(tx)
                .await?;
            products::Entity::delete_by_id(id.clone()).exec(tx).await?;
            stock::remove(tx, &stocks).await?;
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "product.deleted",
                "product",
                Some(&id),
                None,
                Some(serde_json::json!({"event_id": event.id, "before": before})),
            )
            .await?;
            Ok(())
        })
    })
    .await?;
    state.catalog_changed(&event.id).await;
    Ok(())
}

/// A product and its event, if the viewer may see it: the event must be visible, and a product
/// that is not `ACTIVE` only to who manages the event.
pub async fn visible<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<&Viewer>,
    id: &str,
) -> AppResult<(products::Model, events::Model)> {
    let product = products::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(AppError::not_found)?;
    let event = events::Entity::find_by_id(product.event_id.clone())
        .one(conn)
        .await?
        .filter(|e| can_see(viewer, e))
        .ok_or_else(AppError::not_found)?;
    let manages = viewer.is_some_and(|v| v.manages(&event));
    if !manages && ProductStatus::from_db(&product.status) != ProductStatus::Active {
        return Err(AppError::not_found());
    }
    Ok((product, event))
}

/// One product.
pub async fn get(state: &AppState, viewer: Option<&Viewer>, id: &str) -> AppResult<ProductView> {
    let conn = state.catalog_reader(viewer.is_none());
    let (product, event) = visible(conn, viewer, id).await?;
    view_of(conn, &event, product, state.clock.now()).await
}

/// The products of one event by creation time, with keyset pagination.
pub async fn list(
    state: &AppState,
    viewer: Option<&Viewer>,
    query: ListQuery,
) -> AppResult<ProductPage> {
    let mut errors = Vec::new();
    let event_id = query
        .event_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if event_id.is_none() {
        errors.push(FieldError::new(
            "event_id",
            "required",
            "name the event whose products to list",
        ));
    }
    let product_type = match query.product_type.as_deref() {
        None => None,
        Some(t) => match ProductType::parse(t.trim()) {
            Some(t) => Some(t),
            None => {
                errors.push(FieldError::new(
                    "type",
                    "unknown_type",
                    "must be TICKET, MERCH or PACKAGE",
                ));
                None
            }
        },
    };
    let limit = crate::http::page::limit(query.limit, 50, 100).unwrap_or_else(|e| {
        errors.push(e);
        0
    });
    let cursor = match query
        .cursor
        .as_deref()
        .map(crate::http::page::Cursor::decode)
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
    };
    let Some(event_id) = event_id.filter(|_| errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let event = events::Entity::find_by_id(event_id.to_owned())
        .one(state.catalog_reader(viewer.is_none()))
        .await?
        .filter(|e| can_see(viewer, e))
        .ok_or_else(AppError::not_found)?;
    let mut select =
        products::Entity::find().filter(products::Column::EventId.eq(event.id.as_str()));
    if !viewer.is_some_and(|v| v.manages(&event)) {
        select = select.filter(products::Column::Status.eq(ProductStatus::Active.as_str()));
    }
    if let Some(t) = product_type {
        select = select.filter(products::Column::ProductType.eq(t.as_str()));
    }
    if let Some(cursor) = cursor {
        select = select
            .filter(cursor.after_ascending(products::Column::CreatedAt, products::Column::Id));
    }
    let rows = select
        .order_by_asc(products::Column::CreatedAt)
        .order_by_asc(products::Column::Id)
        .limit(limit + 1)
        .all(state.catalog_reader(viewer.is_none()))
        .await?;
    let (rows, next_cursor) = crate::http::page::split_page(rows, limit, |row| {
        crate::http::page::Cursor::new(crate::infra::clock::from_db(row.created_at), &row.id)
    });
    let items = views(
        state.catalog_reader(viewer.is_none()),
        &event,
        rows,
        state.clock.now(),
    )
    .await?;
    Ok(ProductPage { items, next_cursor })
}
