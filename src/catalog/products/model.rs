//! Product requests, views and validation: plain types and functions, no I/O.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, macros::format_description};
use utoipa::ToSchema;

use crate::{
    catalog::{
        model::{SaleState, present, text},
        money::{Currency, Money, RawAmount},
        performances::present_time,
    },
    error::FieldError,
};

/// The three kinds of product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductType {
    /// One price grade of one performance.
    Ticket,
    /// Merchandise with stock on variants.
    Merch,
    /// A set of other products of the event at a special price.
    Package,
}

impl ProductType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ticket => "TICKET",
            Self::Merch => "MERCH",
            Self::Package => "PACKAGE",
        }
    }

    /// From a stored or requested name (exact, upper case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TICKET" => Some(Self::Ticket),
            "MERCH" => Some(Self::Merch),
            "PACKAGE" => Some(Self::Package),
            _ => None,
        }
    }
}

/// Whether a product is offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    /// Listed and sold.
    #[default]
    Active,
    /// Not listed to the public, kept for its manager.
    Hidden,
    /// Retired; kept because orders refer to it.
    Archived,
}

impl ProductStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Hidden => "HIDDEN",
            Self::Archived => "ARCHIVED",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Self {
        match s {
            "HIDDEN" => Self::Hidden,
            "ARCHIVED" => Self::Archived,
            _ => Self::Active,
        }
    }
}

/// How a ticket is placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Seating {
    /// General admission: a configured quantity.
    #[default]
    General,
    /// Reserved seats: the quantity is the seats of the grade in the performance's map.
    Reserved,
}

impl Seating {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "GENERAL",
            Self::Reserved => "RESERVED",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Self {
        if s == "RESERVED" {
            Self::Reserved
        } else {
            Self::General
        }
    }
}

/// What a package is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageKind {
    /// Any mix, tickets included.
    Package,
    /// Merchandise only.
    Bundle,
}

impl PackageKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Package => "PACKAGE",
            Self::Bundle => "BUNDLE",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Self {
        if s == "BUNDLE" {
            Self::Bundle
        } else {
            Self::Package
        }
    }
}

/// How merchandise reaches the buyer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShippingKind {
    /// Sent to an address.
    Delivery,
    /// Collected at the venue.
    Pickup,
}

impl ShippingKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivery => "DELIVERY",
            Self::Pickup => "PICKUP",
        }
    }

    /// From the stored name.
    pub fn from_db(s: &str) -> Self {
        if s == "PICKUP" {
            Self::Pickup
        } else {
            Self::Delivery
        }
    }
}

/// One variant of a merchandise product (size, colour, ...).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "L", "sku": "TEE-L", "quantity": 100, "preorder_limit": 50, "expected_ship_date": "2027-01-15"}))]
pub struct VariantBody {
    /// Existing variant to change (on update); without it a variant is matched by `sku`.
    pub id: Option<String>,
    /// Name (1..=100 characters).
    pub name: String,
    /// Stock keeping unit, unique within the event (`A-Z a-z 0-9 . _ -`, 1..=64).
    pub sku: String,
    /// Units in stock (0 only with a pre-order allowance).
    pub quantity: i64,
    /// Units that may be pre-ordered once the stock is gone.
    pub preorder_limit: Option<i64>,
    /// When pre-ordered units ship (`YYYY-MM-DD`; required with `preorder_limit`).
    pub expected_ship_date: Option<String>,
}

/// One way to receive merchandise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "DELIVERY", "name": "택배", "fee": "3000"}))]
pub struct ShippingBody {
    /// Existing option to change (on update).
    pub id: Option<String>,
    /// `DELIVERY` or `PICKUP`.
    pub kind: ShippingKind,
    /// Name (1..=100 characters).
    pub name: String,
    /// Fee in the event's currency (decimal string or number).
    #[schema(value_type = String, example = "3000")]
    pub fee: RawAmount,
}

/// One component of a package.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"product_id": "0190a0b2-0000-7000-8000-000000000001", "quantity": 1}))]
pub struct ComponentBody {
    /// A general-admission ticket or a merchandise product of the same event.
    pub product_id: String,
    /// The merchandise variant (optional when the product has one variant).
    pub variant_id: Option<String>,
    /// Units per package (1..=100).
    pub quantity: i64,
}

/// A product as sent on create (`POST`) and replace (`PUT`). The seed's fields
/// `{event_id, type, name, description, price, quantity}` are enough for a ticket.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_id": "0190a0b2-0000-7000-8000-000000000000", "type": "TICKET", "name": "VIP석", "description": "1층 앞쪽", "price": "165000", "quantity": 100, "grade": "VIP", "per_user_limit": 4}))]
pub struct ProductBody {
    /// The event (managed by the caller).
    pub event_id: String,
    /// `TICKET`, `MERCH` or `PACKAGE`.
    #[serde(rename = "type")]
    #[schema(value_type = ProductType)]
    pub product_type: String,
    /// Name (1..=255 characters, stored as text).
    pub name: String,
    /// Description (up to 20000 characters).
    pub description: Option<String>,
    /// Price in the event's currency (decimal string or number, two places at most).
    #[schema(value_type = String, example = "55000")]
    pub price: RawAmount,
    /// General-admission tickets, packages, merchandise without variants: required (1..=1000000).
    /// Merchandise with variants: the sum of the variants. Reserved seats: derived, not set.
    pub quantity: Option<i64>,
    /// Sales open (default: the event's).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sale_open_at: Option<OffsetDateTime>,
    /// Sales close (default: the event's).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sale_close_at: Option<OffsetDateTime>,
    /// Units of this product one buyer may hold across live orders (1..=1000).
    pub per_user_limit: Option<i64>,
    /// Units of this product in one order (1..=1000, at most `per_user_limit`).
    pub per_order_limit: Option<i64>,
    /// `ACTIVE` (default), `HIDDEN` or `ARCHIVED`.
    pub status: Option<ProductStatus>,
    /// Tickets: the performance (optional when the event has exactly one).
    pub performance_id: Option<String>,
    /// Tickets: the price grade (default `GENERAL`).
    pub grade: Option<String>,
    /// Tickets: `GENERAL` (default) or `RESERVED`.
    pub seating: Option<Seating>,
    /// Packages: `PACKAGE` or `BUNDLE` (derived from the components when absent).
    pub kind: Option<PackageKind>,
    /// Merchandise: variants (default: one variant `DEFAULT` holding `quantity`).
    pub variants: Option<Vec<VariantBody>>,
    /// Merchandise and packages: how the goods reach the buyer.
    pub shipping_options: Option<Vec<ShippingBody>>,
    /// Packages: what one package contains.
    pub components: Option<Vec<ComponentBody>>,
}

/// Fields to change; absent fields stay, `null` clears an optional field. Lists replace the
/// whole list (variants and shipping options keep their ids when matched by `id` or `sku`).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"price": "60000", "quantity": 120, "status": "ACTIVE"}))]
pub struct ProductPatch {
    /// Cannot change; accepted when equal.
    pub event_id: Option<String>,
    /// Cannot change; accepted when equal.
    #[serde(rename = "type")]
    #[schema(value_type = Option<ProductType>)]
    pub product_type: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Price (affects future orders only).
    #[schema(value_type = Option<String>)]
    pub price: Option<RawAmount>,
    /// Quantity: moves `remaining` by the difference.
    pub quantity: Option<i64>,
    /// Sales open (`null`: the event's).
    #[serde(default, deserialize_with = "present_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sale_open_at: Option<Option<OffsetDateTime>>,
    /// Sales close (`null`: the event's).
    #[serde(default, deserialize_with = "present_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sale_close_at: Option<Option<OffsetDateTime>>,
    /// Per-user limit (`null`: none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub per_user_limit: Option<Option<i64>>,
    /// Per-order limit (`null`: none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub per_order_limit: Option<Option<i64>>,
    /// Status.
    pub status: Option<ProductStatus>,
    /// Cannot change; accepted when equal.
    pub performance_id: Option<String>,
    /// Grade (general admission only).
    pub grade: Option<String>,
    /// Cannot change; accepted when equal.
    pub seating: Option<Seating>,
    /// Package kind.
    pub kind: Option<PackageKind>,
    /// Variants (the whole list).
    pub variants: Option<Vec<VariantBody>>,
    /// Shipping options (the whole list).
    pub shipping_options: Option<Vec<ShippingBody>>,
    /// Components (the whole list).
    pub components: Option<Vec<ComponentBody>>,
}

/// Unvalidated values: a body, or a stored product with a patch applied.
#[derive(Clone, Debug)]
pub struct Input {
    /// Requested type name.
    pub product_type: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price as sent.
    pub price: String,
    /// Quantity as sent.
    pub quantity: Option<i64>,
    /// Own window start.
    pub sale_open_at: Option<OffsetDateTime>,
    /// Own window end.
    pub sale_close_at: Option<OffsetDateTime>,
    /// Per-user limit.
    pub per_user_limit: Option<i64>,
    /// Per-order limit.
    pub per_order_limit: Option<i64>,
    /// Status.
    pub status: ProductStatus,
    /// Performance.
    pub performance_id: Option<String>,
    /// Grade.
    pub grade: Option<String>,
    /// Seating.
    pub seating: Option<Seating>,
    /// Package kind.
    pub kind: Option<PackageKind>,
    /// Variants; `None` means the implicit `DEFAULT` variant.
    pub variants: Option<Vec<VariantBody>>,
    /// Shipping options.
    pub shipping_options: Option<Vec<ShippingBody>>,
    /// Components.
    pub components: Option<Vec<ComponentBody>>,
}

impl Input {
    /// From a create or replace body; an omitted status becomes `fallback`.
    pub fn from_body(body: ProductBody, fallback: ProductStatus) -> Self {
        Self {
            product_type: body.product_type,
            name: body.name,
            description: body.description,
            price: body.price.0,
            quantity: body.quantity,
            sale_open_at: body.sale_open_at,
            sale_close_at: body.sale_close_at,
            per_user_limit: body.per_user_limit,
            per_order_limit: body.per_order_limit,
            status: body.status.unwrap_or(fallback),
            performance_id: body.performance_id,
            grade: body.grade,
            seating: body.seating,
            kind: body.kind,
            variants: body.variants,
            shipping_options: body.shipping_options,
            components: body.components,
        }
    }

    /// Applies a patch (immutable fields are checked by the caller).
    pub fn apply(mut self, patch: ProductPatch) -> Self {
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.description {
            self.description = v;
        }
        if let Some(v) = patch.price {
            self.price = v.0;
        }
        if let Some(v) = patch.sale_open_at {
            self.sale_open_at = v;
        }
        if let Some(v) = patch.sale_close_at {
            self.sale_close_at = v;
        }
        if let Some(v) = patch.per_user_limit {
            self.per_user_limit = v;
        }
        if let Some(v) = patch.per_order_limit {
            self.per_order_limit = v;
        }
        if let Some(v) = patch.status {
            self.status = v;
        }
        if let Some(v) = patch.grade {
            self.grade = Some(v);
        }
        if let Some(v) = patch.kind {
            self.kind = Some(v);
        }
        if let Some(v) = patch.shipping_options {
            self.shipping_options = Some(v);
        }
        if let Some(v) = patch.components {
            self.components = Some(v);
        }
        match (patch.variants, patch.quantity) {
            (Some(v), q) => {
                self.variants = Some(v);
                self.quantity = q;
            }
            // A new quantity for merchandise with explicit variants is checked against their
            // sum; with the implicit variant it is that variant's quantity.
            (None, Some(q)) => self.quantity = Some(q),
            (None, None) => {}
        }
        self
    }
}

/// What validation needs to know about the event and the product.
#[derive(Clone, Debug)]
pub struct Context {
    /// The product's id (new or existing).
    pub product_id: String,
    /// The event's currency.
    pub currency: Currency,
    /// The event's sale window start.
    pub event_sale_open_at: OffsetDateTime,
    /// The event's sale window end.
    pub event_sale_close_at: OffsetDateTime,
    /// The event's end.
    pub event_end_at: OffsetDateTime,
}

/// A validated variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariantDraft {
    /// Existing id to match.
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// SKU.
    pub sku: String,
    /// Units in stock.
    pub quantity: i32,
    /// Pre-order allowance.
    pub preorder_limit: Option<i32>,
    /// `YYYY-MM-DD`.
    pub expected_ship_date: Option<String>,
}

/// A validated shipping option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShippingDraft {
    /// Existing id to match.
    pub id: Option<String>,
    /// Kind.
    pub kind: ShippingKind,
    /// Name.
    pub name: String,
    /// Fee.
    pub fee: Money,
}

/// A validated component (checked against the database by the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentDraft {
    /// Product.
    pub product_id: String,
    /// Variant.
    pub variant_id: Option<String>,
    /// Units per package.
    pub quantity: i32,
}

/// A product that passed every rule that needs no database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// Type.
    pub product_type: ProductType,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price.
    pub price: Money,
    /// Requested quantity (tickets, packages); for merchandise the sum of the variants.
    pub quantity: Option<i32>,
    /// Own window start.
    pub sale_open_at: Option<OffsetDateTime>,
    /// Own window end.
    pub sale_close_at: Option<OffsetDateTime>,
    /// Per-user limit.
    pub per_user_limit: Option<i32>,
    /// Per-order limit.
    pub per_order_limit: Option<i32>,
    /// Status.
    pub status: ProductStatus,
    /// Tickets: performance as requested.
    pub performance_id: Option<String>,
    /// Tickets: grade.
    pub grade: Option<String>,
    /// Tickets: seating.
    pub seating: Option<Seating>,
    /// Packages: requested kind.
    pub kind: Option<PackageKind>,
    /// Merchandise: variants (at least one).
    pub variants: Vec<VariantDraft>,
    /// Shipping options.
    pub shipping: Vec<ShippingDraft>,
    /// Package components.
    pub components: Vec<ComponentDraft>,
}

/// Largest quantity of one product or variant.
pub const MAX_QUANTITY: i64 = 1_000_000;
const MAX_VARIANTS: usize = 100;
const MAX_SHIPPING: usize = 10;
const MAX_COMPONENTS: usize = 20;
/// Name of the variant a merchandise product without variants gets.
pub const DEFAULT_VARIANT: &str = "DEFAULT";

/// The SKU of the implicit variant: the product id without dashes, unique by construction.
pub fn default_sku(product_id: &str) -> String {
    product_id.replace('-', "")
}

fn not_allowed(field: &str, what: &str) -> FieldError {
    FieldError::new(field, "not_allowed", format!("is not used by {what}"))
}

fn quantity(field: &str, raw: i64, min: i64) -> Result<i32, FieldError> {
    if (min..=MAX_QUANTITY).contains(&raw) {
        i32::try_from(raw).map_err(|_| FieldError::new(field, "out_of_range", "is too large"))
    } else {
        Err(FieldError::new(
            field,
            "out_of_range",
            format!("must be {min}..={MAX_QUANTITY}"),
        ))
    }
}

fn limit(field: &str, raw: Option<i64>) -> Result<Option<i32>, FieldError> {
    match raw {
        None => Ok(None),
        Some(n) if (1..=1000).contains(&n) => Ok(i32::try_from(n).ok()),
        Some(_) => Err(FieldError::new(field, "out_of_range", "must be 1..=1000")),
    }
}

fn valid_sku(sku: &str) -> bool {
    (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn ship_date(field: &str, raw: &str) -> Result<String, FieldError> {
    Date::parse(raw.trim(), format_description!("[year]-[month]-[day]"))
        .map(|_| raw.trim().to_owned())
        .map_err(|_| FieldError::new(field, "invalid_date", "must be a date YYYY-MM-DD"))
}

fn variants(
    input: &Input,
    ctx: &Context,
    errors: &mut Vec<FieldError>,
) -> (Vec<VariantDraft>, Option<i32>) {
    let Some(list) = &input.variants else {
        // Stock lives on variants: a product without them gets one holding `quantity`.
        return match input.quantity {
            None => {
                errors.push(FieldError::new(
                    "quantity",
                    "required",
                    "is required for merchandise without variants",
                ));
                (Vec::new(), None)
            }
            Some(raw) => match quantity("quantity", raw, 1) {
                Ok(q) => (
                    vec![VariantDraft {
                        id: None,
                        name: DEFAULT_VARIANT.to_owned(),
                        sku: default_sku(&ctx.product_id),
                        quantity: q,
                        preorder_limit: None,
                        expected_ship_date: None,
                    }],
                    Some(q),
                ),
                Err(e) => {
                    errors.push(e);
                    (Vec::new(), None)
                }
            },
        };
    };
    if list.is_empty() || list.len() > MAX_VARIANTS {
        errors.push(FieldError::new(
            "variants",
            "out_of_range",
            format!("must hold 1..={MAX_VARIANTS} variants (omit it for one default variant)"),
        ));
        return (Vec::new(), None);
    }
    let mut drafts = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let field = |name: &str| format!("variants[{i}].{name}");
        let before = errors.len();
        let name = text(&field("name"), &v.name, 1, 100).map_err(|e| errors.push(e));
        let sku = v.sku.trim().to_owned();
        if !valid_sku(&sku) {
            errors.push(FieldError::new(
                &field("sku"),
                "invalid_sku",
                "must be 1..=64 of A-Z a-z 0-9 . _ -",
            ));
        } else if drafts.iter().any(|d: &VariantDraft| d.sku == sku) {
            errors.push(FieldError::new(
                &field("sku"),
                "duplicate_sku",
                "is used by another variant of this request",
            ));
        }
        let preorder_limit = match v.preorder_limit {
            None => None,
            Some(raw) => quantity(&field("preorder_limit"), raw, 1)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        // A variant may start empty only when it can be pre-ordered.
        let min = if v.preorder_limit.is_some() { 0 } else { 1 };
        let q = quantity(&field("quantity"), v.quantity, min).map_err(|e| errors.push(e));
        let expected_ship_date = match (&v.expected_ship_date, v.preorder_limit) {
            (Some(d), _) => ship_date(&field("expected_ship_date"), d)
                .map_err(|e| errors.push(e))
                .ok(),
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    &field("expected_ship_date"),
                    "required",
                    "is required with preorder_limit",
                ));
                None
            }
            (None, None) => None,
        };
        if let (Ok(name), Ok(q), true) = (name, q, errors.len() == before) {
            drafts.push(VariantDraft {
                id: v.id.clone(),
                name,
                sku,
                quantity: q,
                preorder_limit,
                expected_ship_date,
            });
        }
    }
    let sum: i64 = drafts.iter().map(|d| i64::from(d.quantity)).sum();
    if let Some(q) = input.quantity
        && q != sum
        && drafts.len() == list.len()
    {
        errors.push(FieldError::new(
            "quantity",
            "quantity_is_sum",
            format!("is the sum of the variants' quantities ({sum}); change the variants instead"),
        ));
    }
    (drafts, i32::try_from(sum).ok())
}

fn shipping(input: &Input, ctx: &Context, errors: &mut Vec<FieldError>) -> Vec<ShippingDraft> {
    let list = input.shipping_options.as_deref().unwrap_or_default();
    if list.len() > MAX_SHIPPING {
        errors.push(FieldError::new(
            "shipping_options",
            "out_of_range",
            format!("must hold at most {MAX_SHIPPING} options"),
        ));
        return Vec::new();
    }
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let name = text(&format!("shipping_options[{i}].name"), &s.name, 1, 100)
                .map_err(|e| errors.push(e));
            let fee = Money::parse(
                &format!("shipping_options[{i}].fee"),
                &s.fee.0,
                &ctx.currency,
            )
            .map_err(|e| errors.push(e));
            Some(ShippingDraft {
                id: s.id.clone(),
                kind: s.kind,
                name: name.ok()?,
                fee: fee.ok()?,
            })
        })
        .collect()
}

fn components(input: &Input, ctx: &Context, errors: &mut Vec<FieldError>) -> Vec<ComponentDraft> {
    let list = input.components.as_deref().unwrap_or_default();
    if list.is_empty() || list.len() > MAX_COMPONENTS {
        errors.push(FieldError::new(
            "components",
            "out_of_range",
            format!("a package holds 1..={MAX_COMPONENTS} components"),
        ));
        return Vec::new();
    }
    let mut drafts: Vec<ComponentDraft> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let field = |name: &str| format!("components[{i}].{name}");
        if c.product_id == ctx.product_id {
            errors.push(FieldError::new(
                &field("product_id"),
                "component_self",
                "a package cannot contain itself",
            ));
            continue;
        }
        if drafts
            .iter()
            .any(|d| d.product_id == c.product_id && d.variant_id == c.variant_id)
        {
            errors.push(FieldError::new(
                &field("product_id"),
                "duplicate_component",
                "is listed twice; raise its quantity instead",
            ));
            continue;
        }
        match i32::try_from(c.quantity)
            .ok()
            .filter(|q| (1..=100).contains(q))
        {
            Some(quantity) => drafts.push(ComponentDraft {
                product_id: c.product_id.clone(),
                variant_id: c.variant_id.clone(),
                quantity,
            }),
            None => errors.push(FieldError::new(
                &field("quantity"),
                "out_of_range",
                "must be 1..=100",
            )),
        }
    }
    drafts
}

/// Checks every rule that needs no database and reports all problems at once.
pub fn validate(input: Input, ctx: &Context) -> Result<Draft, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(product_type) = ProductType::parse(input.product_type.trim()) else {
        return Err(vec![FieldError::new(
            "type",
            "unknown_type",
            "must be TICKET, MERCH or PACKAGE",
        )]);
    };
    let name = text("name", &input.name, 1, 255).map_err(|e| errors.push(e));
    let description = match input.description.as_deref() {
        Some(d) => text("description", d, 0, 20_000)
            .map(Some)
            .map_err(|e| errors.push(e)),
        None => Ok(None),
    };
    let price = Money::parse("price", &input.price, &ctx.currency).map_err(|e| errors.push(e));
    let per_user_limit = limit("per_user_limit", input.per_user_limit).map_err(|e| errors.push(e));
    let per_order_limit =
        limit("per_order_limit", input.per_order_limit).map_err(|e| errors.push(e));
    if let (Ok(Some(user)), Ok(Some(order))) = (&per_user_limit, &per_order_limit)
        && order > user
    {
        errors.push(FieldError::new(
            "per_order_limit",
            "above_user_limit",
            "must not exceed per_user_limit",
        ));
    }
    let open = input.sale_open_at.unwrap_or(ctx.event_sale_open_at);
    let close = input.sale_close_at.unwrap_or(ctx.event_sale_close_at);
    if close <= open {
        errors.push(FieldError::new(
            "sale_close_at",
            "before_open",
            "must be after sale_open_at (the event's when omitted)",
        ));
    }
    if close > ctx.event_end_at {
        errors.push(FieldError::new(
            "sale_close_at",
            "after_end",
            "must not be after the event's end_at",
        ));
    }

    let mut draft_quantity = None;
    let mut draft_variants = Vec::new();
    let mut draft_components = Vec::new();
    let mut grade = None;
    let mut seating = None;
    let what = product_type.as_str();
    if product_type != ProductType::Ticket {
        for (field, set) in [
            ("performance_id", input.performance_id.is_some()),
            ("grade", input.grade.is_some()),
            ("seating", input.seating.is_some()),
        ] {
            if set {
                errors.push(not_allowed(field, what));
            }
        }
    }
    if product_type != ProductType::Merch && input.variants.is_some() {
        errors.push(not_allowed("variants", what));
    }
    if product_type != ProductType::Package {
        if input.components.is_some() {
            errors.push(not_allowed("components", what));
        }
        if input.kind.is_some() {
            errors.push(not_allowed("kind", what));
        }
    }
    if product_type == ProductType::Ticket && input.shipping_options.is_some() {
        errors.push(not_allowed("shipping_options", what));
    }
    match product_type {
        ProductType::Ticket => {
            let s = input.seating.unwrap_or_default();
            seating = Some(s);
            grade = text("grade", input.grade.as_deref().unwrap_or("GENERAL"), 1, 32)
                .map_err(|e| errors.push(e))
                .ok();
            // Reserved seats derive their quantity; a sent one is compared by the store.
            let min = if s == Seating::Reserved { 0 } else { 1 };
            match input.quantity {
                Some(raw) => {
                    draft_quantity = quantity("quantity", raw, min)
                        .map_err(|e| errors.push(e))
                        .ok()
                }
                None if s == Seating::General => errors.push(FieldError::new(
                    "quantity",
                    "required",
                    "is required for general admission",
                )),
                None => {}
            }
        }
        ProductType::Merch => {
            let (v, sum) = variants(&input, ctx, &mut errors);
            draft_variants = v;
            draft_quantity = sum;
        }
        ProductType::Package => {
            draft_components = components(&input, ctx, &mut errors);
            match input.quantity {
                Some(raw) => {
                    draft_quantity = quantity("quantity", raw, 1)
                        .map_err(|e| errors.push(e))
                        .ok()
                }
                None => errors.push(FieldError::new(
                    "quantity",
                    "required",
                    "is required for a package",
                )),
            }
        }
    }
    let draft_shipping = if product_type == ProductType::Ticket {
        Vec::new()
    } else {
        shipping(&input, ctx, &mut errors)
    };
    match (name, description, price, per_user_limit, per_order_limit) {
        (Ok(name), Ok(description), Ok(price), Ok(per_user_limit), Ok(per_order_limit))
            if errors.is_empty() =>
        {
            Ok(Draft {
                product_type,
                name,
                description,
                price,
                quantity: draft_quantity,
                sale_open_at: input.sale_open_at,
                sale_close_at: input.sale_close_at,
                per_user_limit,
                per_order_limit,
                status: input.status,
                performance_id: input.performance_id,
                grade,
                seating,
                kind: input.kind,
                variants: draft_variants,
                shipping: draft_shipping,
                components: draft_components,
            })
        }
        _ => Err(errors),
    }
}

/// A variant as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VariantView {
    /// Id (order lines name it as `variant_id`).
    pub id: String,
    /// Name.
    pub name: String,
    /// SKU.
    pub sku: String,
    /// Units configured.
    pub quantity: i64,
    /// Units left in stock.
    pub remaining: i64,
    /// Pre-order allowance.
    pub preorder_limit: Option<i32>,
    /// Pre-orders still possible.
    pub preorder_remaining: Option<i64>,
    /// When pre-ordered units ship.
    pub expected_ship_date: Option<String>,
}

/// A shipping option as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ShippingView {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: ShippingKind,
    /// Name.
    pub name: String,
    /// Fee.
    #[schema(value_type = String, example = "3000.00")]
    pub fee: Money,
}

/// A package component as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComponentView {
    /// Product.
    pub product_id: String,
    /// Variant (merchandise).
    pub variant_id: Option<String>,
    /// Units per package.
    pub quantity: i32,
}

/// A product as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0190a0b2-0000-7000-8000-000000000001", "event_id": "0190a0b2-0000-7000-8000-000000000000",
    "performance_id": "0190a0b2-0000-7000-8000-0000000000aa", "type": "TICKET", "kind": null, "name": "VIP석", "description": null,
    "price": "165000.00", "currency": "KRW", "quantity": 100, "remaining": 87, "grade": "VIP", "seating": "GENERAL",
    "sale_open_at": "2026-11-01T11:00:00Z", "sale_close_at": "2026-12-24T10:00:00Z", "per_user_limit": 4, "per_order_limit": null,
    "status": "ACTIVE", "sale_state": "ON_SALE", "variants": [], "shipping_options": [], "components": [],
    "created_at": "2026-10-01T00:00:00Z", "updated_at": "2026-10-01T00:00:00Z"}))]
pub struct ProductView {
    /// Id.
    pub id: String,
    /// Event.
    pub event_id: String,
    /// Tickets: performance.
    pub performance_id: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub product_type: ProductType,
    /// Packages: `PACKAGE` or `BUNDLE`.
    pub kind: Option<PackageKind>,
    /// Name (text; escape when rendering).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price.
    #[schema(value_type = String, example = "55000.00")]
    pub price: Money,
    /// The event's currency.
    pub currency: String,
    /// Configured quantity (merchandise: sum of the variants; reserved seats: seats of the grade).
    pub quantity: i64,
    /// Units that can still be sold.
    pub remaining: i64,
    /// Tickets: grade.
    pub grade: Option<String>,
    /// Tickets: seating.
    pub seating: Option<Seating>,
    /// Sales open (the event's unless set).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sale_open_at: OffsetDateTime,
    /// Sales close (the event's unless set).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sale_close_at: OffsetDateTime,
    /// Per-user limit.
    pub per_user_limit: Option<i32>,
    /// Per-order limit.
    pub per_order_limit: Option<i32>,
    /// Status.
    pub status: ProductStatus,
    /// Derived from the window, the event and `remaining`.
    pub sale_state: SaleState,
    /// Merchandise: variants.
    pub variants: Vec<VariantView>,
    /// Shipping options.
    pub shipping_options: Vec<ShippingView>,
    /// Packages: components.
    pub components: Vec<ComponentView>,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    /// By creation time.
    pub items: Vec<ProductView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Listing filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The event (required).
    pub event_id: Option<String>,
    /// `TICKET`, `MERCH` or `PACKAGE`.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<ProductType>)]
    pub product_type: Option<String>,
    /// 1..=100, default 50.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A "notify me" subscription.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"product_id": "0190a0b2-0000-7000-8000-000000000001", "created_at": "2026-11-01T11:00:05Z", "notified_at": null}))]
pub struct NotifyView {
    /// Product.
    pub product_id: String,
    /// When the subscription was made (its place in line).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the mail went out.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub notified_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        Context {
            product_id: "0190a0b2-0000-7000-8000-000000000001".into(),
            currency: Currency::parse("KRW").expect("code"),
            event_sale_open_at: now,
            event_sale_close_at: now + time::Duration::days(10),
            event_end_at: now + time::Duration::days(11),
        }
    }

    fn ticket() -> Input {
        Input {
            product_type: "TICKET".into(),
            name: "R석".into(),
            description: None,
            price: "55000".into(),
            quantity: Some(100),
            sale_open_at: None,
            sale_close_at: None,
            per_user_limit: None,
            per_order_limit: None,
            status: ProductStatus::Active,
            performance_id: None,
            grade: None,
            seating: None,
            kind: None,
            variants: None,
            shipping_options: None,
            components: None,
        }
    }

    fn codes(result: Result<Draft, Vec<FieldError>>) -> Vec<(String, String)> {
        result
            .expect_err("invalid")
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    #[test]
    fn the_seed_fields_make_a_general_admission_ticket() {
        let draft = validate(ticket(), &ctx()).expect("valid");
        assert_eq!(draft.grade.as_deref(), Some("GENERAL"));
        assert_eq!(draft.seating, Some(Seating::General));
        assert_eq!(draft.quantity, Some(100));
        assert_eq!(draft.price.to_string(), "55000.00");
    }

    #[test]
    fn bad_prices_quantities_and_types_are_named() {
        let mut input = ticket();
        input.price = "100.5".into();
        input.quantity = Some(0);
        assert_eq!(
            codes(validate(input, &ctx())),
            vec![
                ("price".into(), "fraction_not_allowed".into()),
                ("quantity".into(), "out_of_range".into())
            ]
        );
        let mut input = ticket();
        input.product_type = "COUPON".into();
        assert_eq!(
            codes(validate(input, &ctx())),
            vec![("type".into(), "unknown_type".into())]
        );
        let mut input = ticket();
        input.price = "-1".into();
        assert_eq!(codes(validate(input, &ctx()))[0].1, "invalid_amount");
    }

    #[test]
    fn merch_without_variants_gets_one_default_variant() {
        let mut input = ticket();
        input.product_type = "MERCH".into();
        input.quantity = Some(30);
        let draft = validate(input, &ctx()).expect("valid");
        assert_eq!(draft.variants.len(), 1);
        assert_eq!(draft.variants[0].name, DEFAULT_VARIANT);
        assert_eq!(draft.variants[0].sku, default_sku(&ctx().product_id));
        assert_eq!(draft.quantity, Some(30));
    }

    #[test]
    fn variants_are_checked_one_by_one() {
        let mut input = ticket();
        input.product_type = "MERCH".into();
        input.quantity = Some(99);
        let variant = |sku: &str, quantity, preorder_limit| VariantBody {
            id: None,
            name: "S".into(),
            sku: sku.into(),
            quantity,
            preorder_limit,
            expected_ship_date: None,
        };
        input.variants = Some(vec![
            variant("A", 10, None),
            variant("A", 5, None),
            variant("bad sku", 0, None),
            variant("C", 0, Some(10)),
        ]);
        let codes = codes(validate(input, &ctx()));
        assert!(codes.contains(&("variants[1].sku".into(), "duplicate_sku".into())));
        assert!(codes.contains(&("variants[2].sku".into(), "invalid_sku".into())));
        assert!(codes.contains(&("variants[2].quantity".into(), "out_of_range".into())));
        assert!(codes.contains(&("variants[3].expected_ship_date".into(), "required".into())));
    }

    #[test]
    fn packages_cannot_contain_themselves_and_tickets_take_no_package_fields() {
        let mut input = ticket();
        input.product_type = "PACKAGE".into();
        input.components = Some(vec![ComponentBody {
            product_id: ctx().product_id,
            variant_id: None,
            quantity: 1,
        }]);
        assert_eq!(
            codes(validate(input, &ctx())),
            vec![("components[0].product_id".into(), "component_self".into())]
        );
        let mut input = ticket();
        input.kind = Some(PackageKind::Bundle);
        input.variants = Some(Vec::new());
        let codes = codes(validate(input, &ctx()));
        assert!(codes.contains(&("variants".into(), "not_allowed".into())));
        assert!(codes.contains(&("kind".into(), "not_allowed".into())));
    }

    #[test]
    fn limits_and_windows_are_consistent() {
        let mut input = ticket();
        input.per_user_limit = Some(2);
        input.per_order_limit = Some(4);
        input.sale_close_at = Some(ctx().event_sale_open_at);
        let codes = codes(validate(input, &ctx()));
        assert!(codes.contains(&("per_order_limit".into(), "above_user_limit".into())));
        assert!(codes.contains(&("sale_close_at".into(), "before_open".into())));
    }
}
