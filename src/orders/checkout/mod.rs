//! `POST /orders`: all or nothing in one transaction. The plan (see [`plan`]) decides what to
//! take; here every take is one conditional statement whose affected-row count decides, in the
//! order DESIGN.md gives: the order and its lines first, then per-user counters, seats and
//! merchandise with a pre-order fallback, then the ledger rows, and the hot stock counters last
//! (sorted), so the hottest rows are locked for the shortest time and two orders never deadlock.
//! Orders without seats or pre-orders go through [`batch`] (group commit) with the others arriving
//! at the same moment; this one-order transaction serves the rest and a batch's fallbacks.

pub mod batch;
pub mod plan;
pub mod request;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use axum::http::HeaderMap;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Statement, Value,
};
use time::{Duration, OffsetDateTime};

pub use plan::{Catalog, Plan};
pub use request::{ItemRequest, OrderRequest};

use super::{
    effects::{insert_ignore, values},
    model::{LineKind, OrderStatus, movement},
    view::{self, OrderView, SeatRef},
};
use crate::{
    app::AppState,
    auth::AuthUser,
    catalog::products::{model::ProductType, stock},
    db::{
        self,
        entities::{
            events, order_items, orders, package_components, performances, product_variants,
            products, shipping_options, stock_movements,
        },
    },
    error::{AppError, AppResult, FieldError},
    infra::clock::to_db,
};

/// Catalog rows of recent checkouts, by the sorted product ids they name. A sell-out asks for the
/// same few products thousands of times a second; their configuration changes rarely and every
/// change clears this cache on every instance (`App::catalog_changed` and its bus message), with
/// a short expiry as the fallback should a message be lost. Stock is never cached.
#[derive(Clone)]
pub struct CatalogCache(moka::sync::Cache<String, Arc<Catalog>>);

impl Default for CatalogCache {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(2))
                .build(),
        )
    }
}

impl CatalogCache {
    /// Drops everything (the catalog changed).
    pub fn clear(&self) {
        self.0.invalidate_all();
    }
}

/// The catalog rows of a request, from the cache or the database.
async fn catalog_for(state: &AppState, request: &OrderRequest) -> AppResult<Arc<Catalog>> {
    let mut ids: Vec<&str> = request
        .items
        .iter()
        .map(|i| i.product_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let key = ids.join(",");
    if let Some(hit) = state.checkout_catalog.0.get(&key) {
        return Ok(hit);
    }
    let loaded = Arc::new(load(&state.db, request).await?);
    // Only complete answers are kept: an unknown id may be a product created a moment ago.
    if loaded.products.len() == ids.len() {
        state.checkout_catalog.0.insert(key, loaded.clone());
    }
    Ok(loaded)
}

/// Places an order for the signed-in buyer.
pub async fn place(
    state: &AppState,
    headers: &HeaderMap,
    user: &AuthUser,
    request: OrderRequest,
    order_id: Option<String>,
) -> AppResult<OrderView> {
    plan::check_shape(&request)?;
    let now = state.clock.now();
    let catalog = catalog_for(state, &request).await?;
    let plan = plan::build(&request, &catalog, now)?;
    let event = catalog
        .event
        .clone()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a plan without its event")))?;
    state
        .order_hooks
        .gate
        .admit(state, headers, user, &event)
        .await?;
    let job = batch::Job {
        state: state.clone(),
        plan,
        event,
        user_id: user.user_id.clone(),
        order_id: order_id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        now,
    };
    let event_id = job.event.id.clone();
    let order_id = job.order_id.clone();
    let placed = if batch::batchable(&job.plan) {
        state.order_batches.place.run(job).await
    } else {
        batch::single(&job).await
    };
    let view = match placed {
        Ok((order, lines)) => view::present(order, lines),
        // An I/O error on COMMIT leaves the outcome unknown: the order may be in the database.
        // Its id was chosen up front, so look: the buyer gets the order, not a 503 hiding it.
        // Found absent, the doubt is settled: the flag goes, so an Idempotency-Key above does
        // not look again; a failed look-up keeps it, and the key stays claimed.
        Err(e) if e.commit_outcome_unknown() => {
            match super::history::find(state, &user.user_id, order_id).await {
                Ok(Some(view)) => {
                    tracing::warn!(order = %view.id, error = %e, "order placed although its commit failed to answer");
                    view
                }
                Ok(None) => return Err(e.with_commit_unknown(false)),
                Err(_) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    metrics::counter!("boxoffice_orders_total", "result" => "placed").increment(1);
    metrics::counter!("boxoffice_funnel_total", "event" => event_id, "stage" => "ordered")
        .increment(1);
    Ok(view)
}

/// Loads the catalog rows a request names: configuration only, never stock.
pub async fn load<C: ConnectionTrait>(conn: &C, request: &OrderRequest) -> AppResult<Catalog> {
    let mut ids: Vec<String> = request.items.iter().map(|i| i.product_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let rows = products::Entity::find()
        .filter(products::Column::Id.is_in(ids.clone()))
        .all(conn)
        .await?;
    let mut catalog = Catalog::default();
    let Some(first) = rows.first() else {
        return Ok(catalog);
    };
    catalog.event = events::Entity::find_by_id(first.event_id.clone())
        .one(conn)
        .await?;
    let of_type = |t: ProductType| -> Vec<String> {
        rows.iter()
            .filter(|p| p.product_type == t.as_str())
            .map(|p| p.id.clone())
            .collect()
    };
    let merch = of_type(ProductType::Merch);
    let packages = of_type(ProductType::Package);
    let mut performance_ids: Vec<String> = rows
        .iter()
        .filter(|p| p.product_type == ProductType::Ticket.as_str())
        .filter_map(|p| p.performance_id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !merch.is_empty() {
        for v in product_variants::Entity::find()
            .filter(product_variants::Column::ProductId.is_in(merch))
            .all(conn)
            .await?
        {
            catalog
                .variants
                .entry(v.product_id.clone())
                .or_default()
                .push(v);
        }
        for list in catalog.variants.values_mut() {
            list.sort_by_key(|v| v.position);
        }
    }
    for o in shipping_options::Entity::find()
        .filter(shipping_options::Column::ProductId.is_in(ids))
        .all(conn)
        .await?
    {
        catalog
            .shipping
            .entry(o.product_id.clone())
            .or_default()
            .push(o);
    }
    if !packages.is_empty() {
        let components = package_components::Entity::find()
            .filter(package_components::Column::PackageId.is_in(packages))
            .all(conn)
            .await?;
        let product_ids: Vec<String> = components
            .iter()
            .map(|c| c.component_product_id.clone())
            .collect();
        let variant_ids: Vec<String> = components
            .iter()
            .filter_map(|c| c.component_variant_id.clone())
            .collect();
        catalog.component_products = products::Entity::find()
            .filter(products::Column::Id.is_in(product_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        // A package's tickets count against their performance's limit too.
        performance_ids.extend(
            catalog
                .component_products
                .values()
                .filter_map(|p| p.performance_id.clone()),
        );
        if !variant_ids.is_empty() {
            catalog.component_variants = product_variants::Entity::find()
                .filter(product_variants::Column::Id.is_in(variant_ids))
                .all(conn)
                .await?
                .into_iter()
                .map(|v| (v.id.clone(), v))
                .collect();
        }
        for c in components {
            catalog
                .components
                .entry(c.package_id.clone())
                .or_default()
                .push(c);
        }
    }
    if !performance_ids.is_empty() {
        catalog.performances = performances::Entity::find()
            .filter(performances::Column::Id.is_in(performance_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
    }
    catalog.products = rows.into_iter().map(|p| (p.id.clone(), p)).collect();
    Ok(catalog)
}

/// Writes the order and takes everything the plan names, or fails leaving nothing behind.
async fn execute(
    tx: &DatabaseTransaction,
    plan: &Plan,
    event: &events::Model,
    user_id: &str,
    order_id: &str,
    now: OffsetDateTime,
) -> AppResult<(orders::Model, Vec<order_items::Model>)> {
    let backend = tx.get_database_backend();
    let order_id = order_id.to_owned();
    let at = to_db(now);
    let order = order_row(plan, event, user_id, &order_id, now);
    orders::Entity::insert(orders::ActiveModel::from(order.clone()))
        .exec_without_returning(tx)
        .await?;

    raise_counters(tx, plan, &event.id, user_id).await??;

    let mut seat_labels: HashMap<String, String> = HashMap::new();
    for take in &plan.seats {
        let marks = vec!["?"; take.seat_ids.len()].join(", ");
        let mut params: Vec<Value> = vec![order_id.clone().into(), at.into()];
        params.extend(values(take.seat_ids.iter().cloned()));
        params.push(take.performance_id.clone().into());
        params.push(take.grade.clone().into());
        let held = tx
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE seats SET state = 'HELD', order_id = ?, updated_at = ? \
                     WHERE id IN ({marks}) AND performance_id = ? AND grade = ? AND state = 'AVAILABLE'"
                ),
                params,
            ))
            .await?
            .rows_affected();
        let mut select: Vec<Value> = values(take.seat_ids.iter().cloned());
        select.push(order_id.clone().into());
        let mine: Vec<(String, String)> = tx
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT id, label FROM seats WHERE id IN ({marks}) AND order_id = ?"),
                select,
            ))
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "label")?)))
            .collect::<Result<_, sea_orm::DbErr>>()?;
        if usize::try_from(held).ok() != Some(take.seat_ids.len())
            || mine.len() != take.seat_ids.len()
        {
            let taken: Vec<&String> = take
                .seat_ids
                .iter()
                .filter(|s| !mine.iter().any(|(id, _)| id == *s))
                .collect();
            return Err(AppError::conflict(
                "seat_unavailable",
                format!(
                    "{} of the chosen seats are no longer available.",
                    taken.len()
                ),
            )
            .with_errors(
                taken
                    .iter()
                    .map(|s| {
                        FieldError::new(
                            &format!("items[{}].seat_ids", take.item),
                            "seat_unavailable",
                            s.as_str(),
                        )
                    })
                    .collect(),
            ));
        }
        seat_labels.extend(mine);
    }

    let mut preorder: HashSet<usize> = HashSet::new();
    for take in &plan.fallbacks {
        let name = &plan.lines[take.item].name;
        let from_stock = stock::apply(
            tx,
            &event.id,
            &take.stock_id,
            -take.quantity,
            movement::HOLD,
            Some(&order_id),
            now,
        )
        .await?;
        if from_stock {
            continue;
        }
        let from_preorder = crate::catalog::products::stock::apply(
            tx,
            &event.id,
            &take.preorder_stock_id,
            -take.quantity,
            movement::HOLD,
            Some(&order_id),
            now,
        )
        .await?;
        if !from_preorder {
            return Err(sold_out(&[take.item], plan, name));
        }
        preorder.insert(take.item);
    }

    let lines = line_rows(plan, &order_id, &event.id, &preorder, &seat_labels);
    order_items::Entity::insert_many(lines.iter().cloned().map(order_items::ActiveModel::from))
        .exec_without_returning(tx)
        .await?;

    if !plan.stock.is_empty() {
        // The ledger rows go in before the hot rows are touched; if a counter then refuses, the
        // whole transaction (ledger included) rolls back.
        stock_movements::Entity::insert_many(
            hold_rows(plan, &event.id, &order_id, now)
                .into_iter()
                .map(stock_movements::ActiveModel::from),
        )
        .exec_without_returning(tx)
        .await?;
        for (stock_id, (quantity, items)) in &plan.stock {
            if !stock::move_counter(tx, stock_id, -quantity).await? {
                let name = &plan.lines[items[0]].name;
                return Err(sold_out(items, plan, name));
            }
        }
    }
    Ok((order, lines))
}

/// Raises the buyer's per-user counters the plan names, each by one conditional statement.
/// The outer error is the database's; the inner one is `limit_exceeded`, after which the
/// counters this call raised are lowered again (so a batch can go on with other orders).
async fn raise_counters(
    tx: &DatabaseTransaction,
    plan: &Plan,
    event_id: &str,
    user_id: &str,
) -> AppResult<Result<(), AppError>> {
    let backend = tx.get_database_backend();
    let mut raised: Vec<(&String, i64)> = Vec::new();
    for (scope, take) in &plan.counters {
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            insert_ignore(
                backend,
                "purchase_counts (scope_id, user_id, event_id, quantity)",
                "?, ?, ?, 0",
            ),
            values([scope.as_str(), user_id, event_id]),
        ))
        .await?;
        let ok = db::exec_one(
            tx,
            Statement::from_sql_and_values(
                backend,
                "UPDATE purchase_counts SET quantity = quantity + ? \
                 WHERE scope_id = ? AND user_id = ? AND quantity + ? <= ?",
                [
                    take.quantity.into(),
                    scope.clone().into(),
                    user_id.into(),
                    take.quantity.into(),
                    take.limit.into(),
                ],
            ),
        )
        .await?;
        if !ok {
            lower_counters(tx, raised, user_id).await?;
            return Ok(Err(AppError::conflict(
                "limit_exceeded",
                format!("At most {} per buyer for {}.", take.limit, take.what),
            )
            .with_errors(vec![FieldError::new(
                &format!("items[{}].quantity", take.item),
                "per_user_limit",
                format!("at most {} per buyer", take.limit),
            )])));
        }
        raised.push((scope, take.quantity));
    }
    Ok(Ok(()))
}

/// Gives back what [`raise_counters`] took, inside the same transaction (the rows are still
/// locked by it, so nobody saw the raised values).
async fn lower_counters(
    tx: &DatabaseTransaction,
    raised: Vec<(&String, i64)>,
    user_id: &str,
) -> AppResult<()> {
    for (scope, quantity) in raised {
        tx.execute_raw(Statement::from_sql_and_values(
            tx.get_database_backend(),
            "UPDATE purchase_counts SET quantity = quantity - ? WHERE scope_id = ? AND user_id = ?",
            [quantity.into(), scope.clone().into(), user_id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The `orders` row of a new order (`PENDING`, held until the event's hold time from `now`).
fn order_row(
    plan: &Plan,
    event: &events::Model,
    user_id: &str,
    order_id: &str,
    now: OffsetDateTime,
) -> orders::Model {
    let at = to_db(now);
    orders::Model {
        id: order_id.to_owned(),
        event_id: event.id.clone(),
        user_id: user_id.to_owned(),
        status: OrderStatus::Pending.as_str().to_owned(),
        currency: event.currency.clone(),
        subtotal: plan.subtotal,
        shipping_fee: plan.shipping_fee,
        total: plan.total(),
        cancel_policy: event.cancel_policy.clone(),
        shipping_address: plan
            .address
            .as_ref()
            .and_then(|a| serde_json::to_string(a).ok()),
        expires_at: to_db(now + Duration::seconds(i64::from(event.order_hold_seconds.max(1)))),
        payment_provider: None,
        payment_ref: None,
        paid_amount: None,
        cancel_reason: None,
        cancel_note: None,
        cancel_fee: None,
        refund_amount: None,
        confirmed_at: None,
        canceled_at: None,
        refunded_at: None,
        created_at: at,
        updated_at: at,
    }
}

/// The `order_items` rows of a new order: `preorder` names the request items served from
/// pre-order stock, `seat_labels` the labels of the seats it holds.
fn line_rows(
    plan: &Plan,
    order_id: &str,
    event_id: &str,
    preorder: &HashSet<usize>,
    seat_labels: &HashMap<String, String>,
) -> Vec<order_items::Model> {
    plan.lines
        .iter()
        .enumerate()
        .map(|(position, line)| order_items::Model {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order_id.to_owned(),
            event_id: event_id.to_owned(),
            position: i32::try_from(position).unwrap_or(i32::MAX),
            kind: line.kind.as_str().to_owned(),
            product_id: line.product_id.clone(),
            variant_id: line.variant_id.clone(),
            performance_id: line.performance_id.clone(),
            shipping_option_id: line.shipping_option_id.clone(),
            name: line.name.clone(),
            quantity: i32::try_from(line.quantity).unwrap_or(i32::MAX),
            unit_price: line.unit_price,
            price: line.unit_price * line.quantity,
            preorder: line.kind == LineKind::Merch && preorder.contains(&line.item),
            seats: (!line.seat_ids.is_empty()).then(|| {
                let seats: Vec<SeatRef> = line
                    .seat_ids
                    .iter()
                    .map(|id| SeatRef {
                        id: id.clone(),
                        label: seat_labels.get(id).cloned().unwrap_or_default(),
                    })
                    .collect();
                serde_json::to_string(&seats).unwrap_or_default()
            }),
            fulfillment: None,
            carrier: None,
            tracking_number: None,
            fulfilled_at: None,
        })
        .collect()
}

/// The `HOLD` ledger rows of the plain counters a new order takes.
fn hold_rows(
    plan: &Plan,
    event_id: &str,
    order_id: &str,
    now: OffsetDateTime,
) -> Vec<stock_movements::Model> {
    plan.stock
        .iter()
        .map(|(stock_id, (quantity, _))| {
            stock::ledger_row(
                event_id,
                stock_id,
                -quantity,
                movement::HOLD,
                Some(order_id),
                now,
            )
        })
        .collect()
}

fn sold_out(items: &[usize], plan: &Plan, name: &str) -> AppError {
    AppError::conflict("sold_out", format!("Not enough of {name} is left.")).with_errors(
        items
            .iter()
            .map(|&i| {
                FieldError::new(
                    &format!("items[{i}]"),
                    "sold_out",
                    format!("not enough of {} left", plan.lines[i].name),
                )
            })
            .collect(),
    )
}
