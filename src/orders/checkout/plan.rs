//! From a request and the catalog rows it names to a plan: the lines and their prices, the
//! per-user counters, seats and stock to take. Plain functions, no I/O: every rule of what may be
//! ordered lives here, and the transaction only executes the plan.

use std::collections::{BTreeMap, HashMap, HashSet};

use time::OffsetDateTime;

use super::request::{ItemRequest, OrderRequest};
use crate::{
    catalog::{
        model::EventStatus,
        products::model::{ProductStatus, ProductType, Seating, ShippingKind},
    },
    db::entities::{
        events, package_components, performances, product_variants, products, shipping_options,
    },
    error::{AppError, FieldError},
    infra::clock::from_db,
    orders::{
        effects::{performance_scope, product_scope},
        model::LineKind,
        view::ShippingAddress,
    },
};

/// Most lines in one order.
pub const MAX_ITEMS: usize = 20;
/// Most units in one line.
pub const MAX_QUANTITY: i64 = 50;

/// The catalog rows a request names, loaded before the transaction (configuration, not stock:
/// stock is only ever decided by the conditional statements of the plan).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// The event of the products (absent when no product was found).
    pub event: Option<events::Model>,
    /// Requested products by id.
    pub products: HashMap<String, products::Model>,
    /// Variants of the requested merchandise, by product id, in list order.
    pub variants: HashMap<String, Vec<product_variants::Model>>,
    /// Shipping options of the requested products, by product id.
    pub shipping: HashMap<String, Vec<shipping_options::Model>>,
    /// Components of the requested packages, by package id.
    pub components: HashMap<String, Vec<package_components::Model>>,
    /// Products named by those components, by id.
    pub component_products: HashMap<String, products::Model>,
    /// Variants named by those components, by id.
    pub component_variants: HashMap<String, product_variants::Model>,
    /// Performances of the requested tickets, by id.
    pub performances: HashMap<String, performances::Model>,
}

/// One line to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// What it is.
    pub kind: LineKind,
    /// The request line it comes from (shipping lines: the first line that chose the option).
    pub item: usize,
    /// Product (none on shipping lines).
    pub product_id: Option<String>,
    /// Variant of merchandise.
    pub variant_id: Option<String>,
    /// Performance of a ticket.
    pub performance_id: Option<String>,
    /// Chosen shipping option.
    pub shipping_option_id: Option<String>,
    /// Name shown on the order.
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// Minor units per unit.
    pub unit_price: i64,
    /// Seats, sorted (reserved tickets).
    pub seat_ids: Vec<String>,
}

/// Seats to hold for one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatTake {
    /// Request line.
    pub item: usize,
    /// Their performance.
    pub performance_id: String,
    /// Their grade (the product's).
    pub grade: String,
    /// Sorted seat ids.
    pub seat_ids: Vec<String>,
}

/// Merchandise that is sold from stock, or from its pre-order allowance when stock is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FallbackTake {
    /// Request line (and index into [`Plan::lines`]).
    pub item: usize,
    /// In-stock counter.
    pub stock_id: String,
    /// Pre-order counter.
    pub preorder_stock_id: String,
    /// Units.
    pub quantity: i64,
}

/// A per-user counter to raise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterTake {
    /// Units this order adds.
    pub quantity: i64,
    /// The most one buyer may have.
    pub limit: i64,
    /// Request line to blame.
    pub item: usize,
    /// What the limit is on, for the message.
    pub what: String,
}

/// Everything checkout will write and take, in the order it takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Item lines in request order, then shipping lines.
    pub lines: Vec<Line>,
    /// Sum of the item lines.
    pub subtotal: i64,
    /// Sum of the shipping lines.
    pub shipping_fee: i64,
    /// Per-user counters by scope (sorted).
    pub counters: BTreeMap<String, CounterTake>,
    /// Seats per line.
    pub seats: Vec<SeatTake>,
    /// Merchandise with a pre-order fallback.
    pub fallbacks: Vec<FallbackTake>,
    /// Plain counters by stock id (sorted): units and the request lines to blame.
    pub stock: BTreeMap<String, (i64, Vec<usize>)>,
    /// The address to keep, when a delivery option was chosen.
    pub address: Option<ShippingAddress>,
}

impl Plan {
    /// What the buyer pays.
    pub fn total(&self) -> i64 {
        self.subtotal + self.shipping_fee
    }
}

fn field(item: usize, name: &str) -> String {
    if name.is_empty() {
        format!("items[{item}]")
    } else {
        format!("items[{item}].{name}")
    }
}

/// Validates the request's shape before anything is loaded.
pub fn check_shape(request: &OrderRequest) -> Result<(), AppError> {
    let mut errors = Vec::new();
    if request.items.is_empty() || request.items.len() > MAX_ITEMS {
        errors.push(FieldError::new(
            "items",
            "out_of_range",
            format!("must hold 1..={MAX_ITEMS} lines"),
        ));
    }
    let mut seen_seats = HashSet::new();
    for (i, item) in request.items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                &field(i, "quantity"),
                "out_of_range",
                format!("must be 1..={MAX_QUANTITY}"),
            ));
        }
        if item.product_id.len() > 64 {
            errors.push(FieldError::new(
                &field(i, "product_id"),
                "invalid",
                "is not an id",
            ));
        }
        if let Some(seats) = &item.seat_ids {
            if seats.iter().any(|s| s.is_empty() || s.len() > 64) {
                errors.push(FieldError::new(
                    &field(i, "seat_ids"),
                    "invalid",
                    "holds something that is not an id",
                ));
            }
            if seats.iter().any(|s| !seen_seats.insert(s.as_str())) {
                errors.push(FieldError::new(
                    &field(i, "seat_ids"),
                    "duplicate_seat",
                    "names a seat twice",
                ));
            }
        }
    }
    if let Some(address) = &request.shipping_address {
        errors.extend(check_address(address));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
}

fn check_address(a: &ShippingAddress) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut text = |name: &str, value: &str, max: usize| {
        let n = value.trim().chars().count();
        if n == 0 || n > max || value.chars().any(crate::infra::text::is_forbidden) {
            errors.push(FieldError::new(
                &format!("shipping_address.{name}"),
                "invalid",
                format!("must be 1..={max} characters of text"),
            ));
        }
    };
    text("recipient", &a.recipient, 100);
    text("postcode", &a.postcode, 16);
    for line in &a.address_lines {
        text("address_lines", line, 200);
    }
    let digits = a.phone.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits)
        || !a
            .phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'))
    {
        errors.push(FieldError::new(
            "shipping_address.phone",
            "invalid",
            "must be a phone number (7–15 digits)",
        ));
    }
    if a.address_lines.is_empty() || a.address_lines.len() > 3 {
        errors.push(FieldError::new(
            "shipping_address.address_lines",
            "out_of_range",
            "must hold 1..=3 lines",
        ));
    }
    errors
}

/// Builds the plan, or the first reason the order cannot be placed: 422 for a request that names
/// what does not exist or does not fit, 409 for a sale that is not open, closed or canceled, or a
/// per-order limit.
pub fn build(
    request: &OrderRequest,
    catalog: &Catalog,
    now: OffsetDateTime,
) -> Result<Plan, AppError> {
    let mut errors = Vec::new();
    let unknown = |i: usize| {
        FieldError::new(
            &field(i, "product_id"),
            "unknown_product",
            "is not a product on sale",
        )
    };
    // Every product must exist and be offered; all of one event.
    let mut event_ids = HashSet::new();
    for (i, item) in request.items.iter().enumerate() {
        match catalog.products.get(&item.product_id) {
            Some(p) if ProductStatus::from_db(&p.status) == ProductStatus::Active => {
                event_ids.insert(p.event_id.as_str());
            }
            _ => errors.push(unknown(i)),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    if event_ids.len() > 1 {
        return Err(AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "mixed_events",
            "All lines of one order must belong to one event.",
        ));
    }
    let Some(event) = catalog.event.as_ref() else {
        return Err(AppError::validation(vec![unknown(0)]));
    };
    match EventStatus::from_db(&event.status) {
        EventStatus::Draft => return Err(AppError::validation(vec![unknown(0)])),
        EventStatus::Canceled => {
            return Err(AppError::conflict(
                "event_canceled",
                "This event was canceled.",
            ));
        }
        EventStatus::Ended => {
            return Err(AppError::conflict("sale_closed", "This event has ended."));
        }
        EventStatus::Published => {}
    }

    let mut plan = Plan::default();
    let mut per_product: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
    let mut delivery = false;
    let mut shipping_chosen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in request.items.iter().enumerate() {
        let product = &catalog.products[&item.product_id];
        let open = product
            .sale_open_at
            .map_or(from_db(event.sale_open_at), from_db);
        let close = product
            .sale_close_at
            .map_or(from_db(event.sale_close_at), from_db);
        if now < open {
            return Err(AppError::conflict(
                "sale_not_open",
                format!("Sales of {} open at {}.", product.name, rfc3339(open)),
            )
            .with_errors(vec![FieldError::new(
                &field(i, ""),
                "sale_not_open",
                rfc3339(open),
            )]));
        }
        if now >= close {
            return Err(AppError::conflict(
                "sale_closed",
                format!("Sales of {} are closed.", product.name),
            )
            .with_errors(vec![FieldError::new(
                &field(i, ""),
                "sale_closed",
                "sales are closed",
            )]));
        }
        let entry = per_product.entry(product.id.as_str()).or_insert((0, i));
        entry.0 += item.quantity;
        let kind = ProductType::parse(&product.product_type);
        let mut line = Line {
            kind: LineKind::Ticket,
            item: i,
            product_id: Some(product.id.clone()),
            variant_id: None,
            performance_id: None,
            shipping_option_id: None,
            name: product.name.clone(),
            quantity: item.quantity,
            unit_price: product.price,
            seat_ids: Vec::new(),
        };
        if let Some(option) = choose_shipping(item, i, product, catalog, &mut errors) {
            if ShippingKind::from_db(&option.kind) == ShippingKind::Delivery {
                delivery = true;
            }
            shipping_chosen.entry(option.id.clone()).or_insert(i);
            line.shipping_option_id = Some(option.id.clone());
        }
        match kind {
            Some(ProductType::Ticket) => {
                line.performance_id = product.performance_id.clone();
                ticket(item, i, product, &mut line, &mut plan, &mut errors);
            }
            Some(ProductType::Merch) => {
                line.kind = LineKind::Merch;
                merch(item, i, product, catalog, &mut line, &mut plan, &mut errors);
            }
            Some(ProductType::Package) => {
                line.kind = LineKind::Package;
                package(item, i, product, catalog, &mut plan, &mut errors);
            }
            None => errors.push(unknown(i)),
        }
        plan.subtotal += line.unit_price * line.quantity;
        plan.lines.push(line);
    }
    if delivery {
        match &request.shipping_address {
            Some(address) => plan.address = Some(address.clone()),
            None => errors.push(FieldError::new(
                "shipping_address",
                "required",
                "is required for a delivery option",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    for (option_id, item) in shipping_chosen {
        let option = catalog
            .shipping
            .values()
            .flatten()
            .find(|o| o.id == option_id)
            .ok_or_else(|| AppError::validation(vec![unknown(item)]))?;
        if option.fee > 0 {
            plan.shipping_fee += option.fee;
            plan.lines.push(Line {
                kind: LineKind::Shipping,
                item,
                product_id: None,
                variant_id: None,
                performance_id: None,
                shipping_option_id: Some(option.id.clone()),
                name: option.name.clone(),
                quantity: 1,
                unit_price: option.fee,
                seat_ids: Vec::new(),
            });
        }
    }
    // Limits per order, per buyer and product, per buyer and performance.
    let mut per_performance: BTreeMap<&str, (i64, usize)> = BTreeMap::new();
    for line in plan.lines.iter().filter(|l| l.kind == LineKind::Ticket) {
        if let Some(pid) = &line.performance_id {
            let entry = per_performance
                .entry(pid.as_str())
                .or_insert((0, line.item));
            entry.0 += line.quantity;
        }
    }
    // A package's contents count as if bought one by one, or a package would be a way around a
    // ticket's or an item's limit.
    for line in plan.lines.iter().filter(|l| l.kind == LineKind::Package) {
        for part in line
            .product_id
            .as_ref()
            .and_then(|id| catalog.components.get(id))
            .map_or(&[][..], Vec::as_slice)
        {
            let units = line.quantity * i64::from(part.quantity);
            let entry = per_product
                .entry(part.component_product_id.as_str())
                .or_insert((0, line.item));
            entry.0 += units;
            if let Some(pid) = catalog
                .component_products
                .get(&part.component_product_id)
                .and_then(|p| p.performance_id.as_deref())
            {
                let entry = per_performance.entry(pid).or_insert((0, line.item));
                entry.0 += units;
            }
        }
    }
    for (product_id, (quantity, item)) in per_product {
        let Some(product) = catalog
            .products
            .get(product_id)
            .or_else(|| catalog.component_products.get(product_id))
        else {
            continue;
        };
        if let Some(limit) = product.per_order_limit
            && quantity > i64::from(limit)
        {
            return Err(AppError::conflict(
                "limit_exceeded",
                format!("At most {limit} of {} per order.", product.name),
            )
            .with_errors(vec![FieldError::new(
                &field(item, "quantity"),
                "per_order_limit",
                format!("at most {limit} per order"),
            )]));
        }
        if let Some(limit) = product.per_user_limit {
            plan.counters.insert(
                product_scope(product_id),
                CounterTake {
                    quantity,
                    limit: i64::from(limit),
                    item,
                    what: product.name.clone(),
                },
            );
        }
    }
    for (performance_id, (quantity, item)) in per_performance {
        if let Some(limit) = catalog
            .performances
            .get(performance_id)
            .and_then(|p| p.per_user_limit)
        {
            plan.counters.insert(
                performance_scope(performance_id),
                CounterTake {
                    quantity,
                    limit: i64::from(limit),
                    item,
                    what: "this performance".into(),
                },
            );
        }
    }
    Ok(plan)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn choose_shipping<'a>(
    item: &ItemRequest,
    i: usize,
    product: &products::Model,
    catalog: &'a Catalog,
    errors: &mut Vec<FieldError>,
) -> Option<&'a shipping_options::Model> {
    let options = catalog
        .shipping
        .get(&product.id)
        .map_or(&[][..], Vec::as_slice);
    match &item.shipping_option_id {
        Some(id) => {
            let found = options.iter().find(|o| &o.id == id);
            if found.is_none() {
                errors.push(FieldError::new(
                    &field(i, "shipping_option_id"),
                    "unknown_shipping_option",
                    "is not a shipping option of this product",
                ));
            }
            found
        }
        None if !options.is_empty() => {
            errors.push(FieldError::new(
                &field(i, "shipping_option_id"),
                "required",
                "choose one of the product's shipping options",
            ));
            None
        }
        None => None,
    }
}

fn ticket(
    item: &ItemRequest,
    i: usize,
    product: &products::Model,
    line: &mut Line,
    plan: &mut Plan,
    errors: &mut Vec<FieldError>,
) {
    if item.variant_id.is_some() {
        errors.push(FieldError::new(
            &field(i, "variant_id"),
            "not_allowed",
            "tickets have no variants",
        ));
    }
    let seating = product
        .seating
        .as_deref()
        .map_or(Seating::General, Seating::from_db);
    match (seating, &item.seat_ids) {
        (Seating::Reserved, Some(seats)) => {
            if i64::try_from(seats.len()).ok() != Some(item.quantity) {
                errors.push(FieldError::new(
                    &field(i, "seat_ids"),
                    "quantity_mismatch",
                    "must name as many seats as the quantity",
                ));
                return;
            }
            let (Some(performance_id), Some(grade)) = (&product.performance_id, &product.grade)
            else {
                errors.push(FieldError::new(
                    &field(i, "product_id"),
                    "unknown_product",
                    "is not a product on sale",
                ));
                return;
            };
            let mut sorted = seats.clone();
            sorted.sort();
            line.seat_ids = sorted.clone();
            plan.seats.push(SeatTake {
                item: i,
                performance_id: performance_id.clone(),
                grade: grade.clone(),
                seat_ids: sorted,
            });
        }
        (Seating::Reserved, None) => errors.push(FieldError::new(
            &field(i, "seat_ids"),
            "required",
            "choose seats for a reserved-seat ticket",
        )),
        (Seating::General, Some(_)) => errors.push(FieldError::new(
            &field(i, "seat_ids"),
            "not_allowed",
            "general-admission tickets have no seats",
        )),
        (Seating::General, None) => match &product.stock_id {
            Some(stock) => take(plan, stock, item.quantity, i),
            None => errors.push(FieldError::new(
                &field(i, "product_id"),
                "unknown_product",
                "is not a product on sale",
            )),
        },
    }
}

fn merch(
    item: &ItemRequest,
    i: usize,
    product: &products::Model,
    catalog: &Catalog,
    line: &mut Line,
    plan: &mut Plan,
    errors: &mut Vec<FieldError>,
) {
    if item.seat_ids.is_some() {
        errors.push(FieldError::new(
            &field(i, "seat_ids"),
            "not_allowed",
            "merchandise has no seats",
        ));
    }
    let variants = catalog
        .variants
        .get(&product.id)
        .map_or(&[][..], Vec::as_slice);
    let variant = match &item.variant_id {
        Some(id) => variants.iter().find(|v| &v.id == id),
        None if variants.len() == 1 => variants.first(),
        None => {
            errors.push(FieldError::new(
                &field(i, "variant_id"),
                "required",
                "choose a variant",
            ));
            return;
        }
    };
    let Some(variant) = variant else {
        errors.push(FieldError::new(
            &field(i, "variant_id"),
            "unknown_variant",
            "is not a variant of this product",
        ));
        return;
    };
    line.variant_id = Some(variant.id.clone());
    if variants.len() > 1 {
        line.name = format!("{} ({})", product.name, variant.name);
    }
    match &variant.preorder_stock_id {
        Some(preorder) => plan.fallbacks.push(FallbackTake {
            item: i,
            stock_id: variant.stock_id.clone(),
            preorder_stock_id: preorder.clone(),
            quantity: item.quantity,
        }),
        None => take(plan, &variant.stock_id, item.quantity, i),
    }
}

fn package(
    item: &ItemRequest,
    i: usize,
    product: &products::Model,
    catalog: &Catalog,
    plan: &mut Plan,
    errors: &mut Vec<FieldError>,
) {
    if item.seat_ids.is_some() || item.variant_id.is_some() {
        errors.push(FieldError::new(
            &field(i, ""),
            "not_allowed",
            "packages take no seats or variants",
        ));
    }
    let Some(own) = &product.stock_id else {
        errors.push(FieldError::new(
            &field(i, "product_id"),
            "unknown_product",
            "is not a product on sale",
        ));
        return;
    };
    take(plan, own, item.quantity, i);
    for component in catalog
        .components
        .get(&product.id)
        .map_or(&[][..], Vec::as_slice)
    {
        let units = item.quantity * i64::from(component.quantity);
        let stock = match &component.component_variant_id {
            Some(variant) => catalog
                .component_variants
                .get(variant)
                .map(|v| v.stock_id.clone()),
            None => catalog
                .component_products
                .get(&component.component_product_id)
                .and_then(|p| p.stock_id.clone()),
        };
        match stock {
            Some(stock) => take(plan, &stock, units, i),
            None => errors.push(FieldError::new(
                &field(i, "product_id"),
                "unknown_product",
                "is a package with a part that is no longer sold",
            )),
        }
    }
}

fn take(plan: &mut Plan, stock_id: &str, quantity: i64, item: usize) {
    let entry = plan
        .stock
        .entry(stock_id.to_owned())
        .or_insert((0, Vec::new()));
    entry.0 += quantity;
    if !entry.1.contains(&item) {
        entry.1.push(item);
    }
}
