//! The event's products (tickets, merchandise, packages): list, create, edit, delete.

use askama::Template;
use axum::extract::{Path, State};

use super::{Tab, managed, organizer, tabs, texts::ManageTexts};
use crate::{
    app::AppState,
    catalog::products::{
        self,
        model::{ListQuery, ProductType, ProductView, Seating},
    },
    web::{
        context::{Ctx, PageResult, render},
        format,
    },
};

/// One product as the organizer sees it.
pub struct ProductRow {
    id: String,
    name: String,
    detail: String,
    price_text: String,
    price: String,
    quantity: i64,
    remaining: i64,
    status: &'static str,
    /// `(field name, label, JSON)` of the list fields this type has (variants, shipping options,
    /// components), in the shape the API takes back.
    lists: Vec<(&'static str, &'static str, String)>,
    statuses: Vec<(&'static str, bool)>,
    fixed_quantity: bool,
}

#[derive(Template)]
#[template(path = "web/manage/products.html")]
struct ProductsPage {
    ctx: Ctx,
    m: &'static ManageTexts,
    tabs: Vec<Tab>,
    event_id: String,
    event_title: String,
    groups: Vec<(&'static str, Vec<ProductRow>)>,
    performances: Vec<(String, String)>,
}

/// `GET /manage/events/{id}/products`.
pub async fn page(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let viewer = organizer(&ctx)?;
    let e = managed(&state, &viewer, &id).await?;
    let items = products::store::list(
        &state,
        Some(&viewer),
        ListQuery {
            event_id: Some(e.id.clone()),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await?
    .items;
    let lang = ctx.lang;
    let m = ManageTexts::of(lang);
    let row = |p: &ProductView| {
        let detail = match p.product_type {
            ProductType::Ticket => {
                let seating = match p.seating {
                    Some(Seating::Reserved) => m.reserved,
                    _ => m.general,
                };
                match &p.grade {
                    Some(g) => format!("{g} · {seating}"),
                    None => seating.to_owned(),
                }
            }
            ProductType::Merch => p
                .variants
                .iter()
                .map(|v| format!("{} ({})", v.name, v.remaining))
                .collect::<Vec<_>>()
                .join(" · "),
            ProductType::Package => p
                .components
                .iter()
                .map(|c| format!("{} × {}", c.product_id, c.quantity))
                .collect::<Vec<_>>()
                .join(" · "),
        };
        let pretty = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default();
        let lists = match p.product_type {
            ProductType::Ticket => Vec::new(),
            ProductType::Merch => vec![
                (
                    "variants",
                    m.variants,
                    pretty(serde_json::Value::Array(
                        p.variants
                            .iter()
                            .map(|v| {
                                serde_json::json!({
                                    "id": v.id, "name": v.name, "sku": v.sku,
                                    "quantity": v.quantity, "preorder_limit": v.preorder_limit,
                                    "expected_ship_date": v.expected_ship_date,
                                })
                            })
                            .collect(),
                    )),
                ),
                (
                    "shipping_options",
                    m.shipping,
                    pretty(serde_json::Value::Array(
                        p.shipping_options
                            .iter()
                            .map(|o| {
                                serde_json::json!({
                                    "id": o.id, "kind": o.kind, "name": o.name,
                                    "fee": o.fee.to_string(),
                                })
                            })
                            .collect(),
                    )),
                ),
            ],
            ProductType::Package => vec![(
                "components",
                m.components,
                pretty(serde_json::Value::Array(
                    p.components
                        .iter()
                        .map(|c| {
                            serde_json::json!({
                                "product_id": c.product_id, "variant_id": c.variant_id,
                                "quantity": c.quantity,
                            })
                        })
                        .collect(),
                )),
            )],
        };
        ProductRow {
            lists,
            id: p.id.clone(),
            name: p.name.clone(),
            detail,
            price_text: format::money(lang, p.price, &e.currency),
            price: p.price.to_string(),
            quantity: p.quantity,
            remaining: p.remaining,
            status: p.status.as_str(),
            statuses: ["ACTIVE", "HIDDEN", "ARCHIVED"]
                .into_iter()
                .map(|s| (s, s == p.status.as_str()))
                .collect(),
            fixed_quantity: p.seating == Some(Seating::Reserved) || !p.variants.is_empty(),
        }
    };
    let of = |t: ProductType| {
        items
            .iter()
            .filter(|p| p.product_type == t)
            .map(row)
            .collect::<Vec<_>>()
    };
    let groups = vec![
        (m.tickets, of(ProductType::Ticket)),
        (m.merch, of(ProductType::Merch)),
        (m.packages, of(ProductType::Package)),
    ];
    let performances = e
        .performances
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                format::datetime(lang, p.start_at, &e.timezone),
            )
        })
        .collect();
    render(&ProductsPage {
        m,
        tabs: tabs(m, &e.id, "/products"),
        event_id: e.id.clone(),
        event_title: e.title.clone(),
        groups,
        performances,
        ctx,
    })
}
