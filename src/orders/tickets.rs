//! Tickets: one row per admission, issued when an order is paid. Each carries a random 128-bit
//! code and a signed QR payload (`BO1.<code>.<tag>`) that check-in verifies without a database
//! lookup. The QR image is rendered as SVG when the buyer asks for it, never while paying.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use qrcode::{EcLevel, QrCode, render::svg};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{model::LineKind, view::SeatRef};
use crate::{
    app::AppState,
    auth::AuthUser,
    catalog::products::model::ProductType,
    db::entities::{order_items, orders, package_components, products, tickets},
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        rng::Rng,
        secrets::{constant_time_eq, hex, hmac},
    },
};

/// Version prefix of the QR payload, so the format can change without ambiguity.
const PAYLOAD_PREFIX: &str = "BO1";
/// Bytes of the code (128 bits).
const CODE_BYTES: usize = 16;
/// Bytes of the HMAC kept in the payload (128 bits: forging one is as hard as guessing a code).
const TAG_BYTES: usize = 16;

/// Where a ticket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TicketStatus {
    /// Admits its holder once.
    Valid,
    /// Already admitted.
    Used,
    /// The order was refunded or canceled.
    Void,
}

impl TicketStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::Used => "USED",
            Self::Void => "VOID",
        }
    }

    /// From the stored name; anything unknown is treated as void (it admits nobody).
    pub fn from_db(s: &str) -> Self {
        match s {
            "VALID" => Self::Valid,
            "USED" => Self::Used,
            _ => Self::Void,
        }
    }
}

/// A fresh ticket code: 128 random bits as lower-case hex.
pub fn new_code(rng: &dyn Rng) -> String {
    let mut bytes = [0u8; CODE_BYTES];
    rng.fill(&mut bytes);
    hex(&bytes)
}

/// Whether a string has the shape of a ticket code (32 lower-case hex digits).
pub fn is_code(s: &str) -> bool {
    s.len() == CODE_BYTES * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn tag(key: &[u8; 32], code: &str) -> String {
    URL_SAFE_NO_PAD.encode(&hmac(key, code.as_bytes())[..TAG_BYTES])
}

/// The signed QR payload of a code: `BO1.<code>.<base64url(HMAC-SHA256(key, code)[..16])>`.
pub fn qr_payload(key: &[u8; 32], code: &str) -> String {
    format!("{PAYLOAD_PREFIX}.{code}.{}", tag(key, code))
}

/// The code inside a payload whose signature holds; `None` for anything forged or malformed.
/// Pure computation: no database is involved.
pub fn verify_payload(key: &[u8; 32], payload: &str) -> Option<String> {
    let mut parts = payload.trim().split('.');
    let (Some(prefix), Some(code), Some(given), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (prefix == PAYLOAD_PREFIX && is_code(code) && constant_time_eq(given, &tag(key, code)))
        .then(|| code.to_owned())
}

/// What staff scanned or typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A QR payload whose signature holds.
    Signed(String),
    /// A bare code typed by hand (must be looked up to be believed).
    Typed(String),
    /// Neither: forged, truncated or garbage.
    Invalid,
}

impl Scanned {
    /// Reads the input without touching the database.
    pub fn read(key: &[u8; 32], input: &str) -> Self {
        let input = input.trim();
        if input.contains('.') {
            return verify_payload(key, input).map_or(Self::Invalid, Self::Signed);
        }
        let lower = input.to_ascii_lowercase();
        if is_code(&lower) {
            Self::Typed(lower)
        } else {
            Self::Invalid
        }
    }

    /// The code to look up, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Signed(c) | Self::Typed(c) => Some(c),
            Self::Invalid => None,
        }
    }
}

/// The QR code of a payload as a standalone SVG document.
pub fn qr_svg(payload: &str) -> AppResult<String> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(|e| AppError::internal(anyhow::anyhow!("QR encoding failed: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// One admission a paid order grants, before it gets a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The order line it comes from.
    pub order_item_id: String,
    /// The ticket product (a package's component for package lines).
    pub product_id: String,
    /// Its performance.
    pub performance_id: Option<String>,
    /// The seat, for reserved seating.
    pub seat: Option<SeatRef>,
}

/// The admissions of an order's lines: one per unit of a ticket line (one per seat when
/// seated) and, for package lines, one per ticket component unit × package quantity.
/// `components` maps a package id to its components with their product rows.
pub fn admissions(
    lines: &[order_items::Model],
    components: &HashMap<String, Vec<(package_components::Model, products::Model)>>,
) -> Vec<Admission> {
    let mut out = Vec::new();
    for line in lines {
        let Some(product_id) = &line.product_id else {
            continue;
        };
        match LineKind::from_db(&line.kind) {
            LineKind::Ticket => {
                let seats: Vec<SeatRef> = line
                    .seats
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                if seats.is_empty() {
                    for _ in 0..line.quantity.max(0) {
                        out.push(Admission {
                            order_item_id: line.id.clone(),
                            product_id: product_id.clone(),
                            performance_id: line.performance_id.clone(),
                            seat: None,
                        });
                    }
                } else {
                    out.extend(seats.into_iter().map(|seat| Admission {
                        order_item_id: line.id.clone(),
                        product_id: product_id.clone(),
                        performance_id: line.performance_id.clone(),
                        seat: Some(seat),
                    }));
                }
            }
            LineKind::Package => {
                for (component, product) in components.get(product_id).into_iter().flatten() {
                    if ProductType::parse(&product.product_type) != Some(ProductType::Ticket) {
                        continue;
                    }
                    for _ in 0..(component.quantity.max(0) * line.quantity.max(0)) {
                        out.push(Admission {
                            order_item_id: line.id.clone(),
                            product_id: product.id.clone(),
                            performance_id: product.performance_id.clone(),
                            seat: None,
                        });
                    }
                }
            }
            LineKind::Merch | LineKind::Shipping => {}
        }
    }
    out
}

/// The components (with their products) of the packages on these lines.
async fn package_contents<C: ConnectionTrait>(
    conn: &C,
    lines: &[order_items::Model],
) -> AppResult<HashMap<String, Vec<(package_components::Model, products::Model)>>> {
    let packages: Vec<String> = lines
        .iter()
        .filter(|l| LineKind::from_db(&l.kind) == LineKind::Package)
        .filter_map(|l| l.product_id.clone())
        .collect();
    let mut out: HashMap<String, Vec<_>> = HashMap::new();
    if packages.is_empty() {
        return Ok(out);
    }
    let components = package_components::Entity::find()
        .filter(package_components::Column::PackageId.is_in(packages))
        .order_by_asc(package_components::Column::Id)
        .all(conn)
        .await?;
    let products: HashMap<String, products::Model> = products::Entity::find()
        .filter(
            products::Column::Id.is_in(
                components
                    .iter()
                    .map(|c| c.component_product_id.clone())
                    .collect::<Vec<_>>(),
            ),
        )
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    for component in components {
        if let Some(product) = products.get(&component.component_product_id) {
            out.entry(component.package_id.clone())
                .or_default()
                .push((component, product.clone()));
        }
    }
    Ok(out)
}

/// Issues the tickets of just-confirmed orders (each with its `lines`) inside the confirming
/// transaction; returns how many. Call it only after the transition to `CONFIRMED` moved them,
/// so it runs once per order.
pub async fn issue<C: ConnectionTrait>(
    conn: &C,
    rng: &dyn Rng,
    orders: &[(&orders::Model, &[order_items::Model])],
    now: OffsetDateTime,
) -> AppResult<usize> {
    let all_lines: Vec<order_items::Model> = orders
        .iter()
        .flat_map(|(_, lines)| lines.iter().cloned())
        .collect();
    let components = package_contents(conn, &all_lines).await?;
    let rows: Vec<tickets::ActiveModel> = orders
        .iter()
        .flat_map(|(order, lines)| {
            admissions(lines, &components)
                .into_iter()
                .map(move |a| tickets::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    event_id: Set(order.event_id.clone()),
                    order_id: Set(order.id.clone()),
                    order_item_id: Set(a.order_item_id),
                    product_id: Set(a.product_id),
                    performance_id: Set(a.performance_id),
                    seat_id: Set(a.seat.as_ref().map(|s| s.id.clone())),
                    seat_label: Set(a.seat.map(|s| s.label)),
                    code: Set(new_code(rng)),
                    status: Set(TicketStatus::Valid.as_str().to_owned()),
                    used_at: Set(None),
                    checked_in_by: Set(None),
                    created_at: Set(to_db(now)),
                })
        })
        .collect();
    let count = rows.len();
    crate::db::insert_all::<tickets::Entity, _>(conn, rows).await?;
    Ok(count)
}

/// Voids the still-valid tickets of an order: call it inside the transaction that refunds or
/// cancels a paid order. Used tickets stay `USED` (the admission happened). Returns how many
/// were voided.
pub async fn void_for_order<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    now: OffsetDateTime,
) -> AppResult<u64> {
    let voided = tickets::Entity::update_many()
        .col_expr(
            tickets::Column::Status,
            Expr::value(TicketStatus::Void.as_str()),
        )
        .filter(tickets::Column::OrderId.eq(order_id))
        .filter(tickets::Column::Status.eq(TicketStatus::Valid.as_str()))
        .exec(conn)
        .await?
        .rows_affected;
    tracing::debug!(order_id, voided, at = %now, "tickets voided");
    Ok(voided)
}

/// A ticket as its buyer sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// Ticket id.
    pub id: String,
    /// The 128-bit code (hex), for typing in by hand.
    pub code: String,
    /// The signed string inside the QR code (absent once void).
    pub qr_payload: Option<String>,
    /// The QR code as an SVG document (absent once void).
    pub qr_svg: Option<String>,
    /// `VALID`, `USED` or `VOID`.
    pub status: TicketStatus,
    /// When it was scanned at the entrance.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub used_at: Option<OffsetDateTime>,
    /// The ticket product.
    pub product_id: String,
    /// Its performance.
    pub performance_id: Option<String>,
    /// The seat, for reserved seating.
    pub seat_label: Option<String>,
    /// What it admits to (the line's name; a package's component is named after both).
    pub name: String,
}

/// Names of tickets: the line's name, or "package · component" for package components.
async fn names<C: ConnectionTrait>(
    conn: &C,
    rows: &[tickets::Model],
) -> AppResult<HashMap<String, String>> {
    let mut item_ids: Vec<String> = rows.iter().map(|t| t.order_item_id.clone()).collect();
    item_ids.sort();
    item_ids.dedup();
    let lines: HashMap<String, order_items::Model> = order_items::Entity::find()
        .filter(order_items::Column::Id.is_in(item_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|l| (l.id.clone(), l))
        .collect();
    let mut component_ids: Vec<String> = rows
        .iter()
        .filter(|t| {
            lines
                .get(&t.order_item_id)
                .is_some_and(|l| l.product_id.as_deref() != Some(&t.product_id))
        })
        .map(|t| t.product_id.clone())
        .collect();
    component_ids.sort();
    component_ids.dedup();
    let component_names: HashMap<String, String> = if component_ids.is_empty() {
        HashMap::new()
    } else {
        products::Entity::find()
            .filter(products::Column::Id.is_in(component_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect()
    };
    Ok(rows
        .iter()
        .map(|t| {
            let line = lines.get(&t.order_item_id);
            let name = match (line, component_names.get(&t.product_id)) {
                (Some(l), Some(component)) if l.product_id.as_deref() != Some(&t.product_id) => {
                    format!("{} · {component}", l.name)
                }
                (Some(l), _) => l.name.clone(),
                (None, _) => String::new(),
            };
            (t.id.clone(), name)
        })
        .collect())
}

/// The tickets of the caller's own order (someone else's is 404), with QR codes rendered now.
pub async fn list_for_order(
    state: &AppState,
    user: &AuthUser,
    order_id: &str,
) -> AppResult<Vec<TicketView>> {
    crate::orders::history::own_order(state, &user.user_id, order_id).await?;
    let rows = tickets::Entity::find()
        .filter(tickets::Column::OrderId.eq(order_id))
        .order_by_asc(tickets::Column::Id)
        .all(&state.db)
        .await?;
    let names = names(&state.db, &rows).await?;
    let key = state.secrets.ticket_code;
    // Encoding ten QR codes takes a few milliseconds of CPU: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        rows.into_iter()
            .map(|t| {
                let status = TicketStatus::from_db(&t.status);
                let (qr_payload, qr_svg) = if status == TicketStatus::Void {
                    (None, None)
                } else {
                    let payload = qr_payload(&key, &t.code);
                    let svg = qr_svg(&payload)?;
                    (Some(payload), Some(svg))
                };
                Ok(TicketView {
                    name: names.get(&t.id).cloned().unwrap_or_default(),
                    id: t.id,
                    code: t.code,
                    qr_payload,
                    qr_svg,
                    status,
                    used_at: t.used_at.map(from_db),
                    product_id: t.product_id,
                    performance_id: t.performance_id,
                    seat_label: t.seat_label,
                })
            })
            .collect::<AppResult<Vec<_>>>()
    })
    .await
    .map_err(|e| AppError::internal(anyhow::anyhow!("QR rendering task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::rng::OsRng;

    const KEY: [u8; 32] = [9u8; 32];

    #[test]
    fn codes_are_128_bit_lower_hex() {
        let code = new_code(&OsRng);
        assert!(is_code(&code), "{code}");
        assert_ne!(code, new_code(&OsRng));
    }

    #[test]
    fn a_signed_payload_verifies_and_a_forged_one_does_not() {
        let code = new_code(&OsRng);
        let payload = qr_payload(&KEY, &code);
        assert!(payload.starts_with("BO1."));
        assert_eq!(verify_payload(&KEY, &payload), Some(code.clone()));
        assert_eq!(verify_payload(&[8u8; 32], &payload), None, "other key");
        let other = new_code(&OsRng);
        let tag = payload.rsplit('.').next().expect("tag");
        assert_eq!(
            verify_payload(&KEY, &format!("BO1.{other}.{tag}")),
            None,
            "a tag moved to another code"
        );
        for bad in [
            "",
            "BO1",
            "BO1..",
            &format!("BO2.{code}.{tag}"),
            &format!("{payload}.x"),
            &format!("BO1.{}.{tag}", code.to_uppercase()),
        ] {
            assert_eq!(verify_payload(&KEY, bad), None, "{bad}");
        }
    }

    #[test]
    fn staff_may_type_the_bare_code_in_any_case() {
        let code = new_code(&OsRng);
        assert_eq!(
            Scanned::read(&KEY, &code.to_uppercase()),
            Scanned::Typed(code.clone())
        );
        assert_eq!(
            Scanned::read(&KEY, &qr_payload(&KEY, &code)),
            Scanned::Signed(code)
        );
        assert_eq!(Scanned::read(&KEY, "hello"), Scanned::Invalid);
        assert_eq!(Scanned::read(&KEY, "BO1.zz.zz"), Scanned::Invalid);
    }

    #[test]
    fn the_qr_code_is_an_svg_document() {
        let svg = qr_svg(&qr_payload(&KEY, &new_code(&OsRng))).expect("renders");
        assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
    }

    fn line(kind: &str, product: &str, quantity: i32, seats: Option<&str>) -> order_items::Model {
        order_items::Model {
            id: format!("line-{product}"),
            order_id: "o".into(),
            event_id: "e".into(),
            position: 0,
            kind: kind.into(),
            product_id: Some(product.into()),
            variant_id: None,
            performance_id: Some("perf".into()),
            shipping_option_id: None,
            name: product.into(),
            quantity,
            unit_price: 100,
            price: 100 * i64::from(quantity),
            preorder: false,
            seats: seats.map(str::to_owned),
            fulfillment: None,
            carrier: None,
            tracking_number: None,
            fulfilled_at: None,
        }
    }

    fn product(id: &str, kind: &str) -> products::Model {
        let at = to_db(OffsetDateTime::UNIX_EPOCH);
        products::Model {
            id: id.into(),
            event_id: "e".into(),
            performance_id: Some("perf2".into()),
            product_type: kind.into(),
            kind: None,
            name: id.into(),
            description: None,
            price: 0,
            quantity: 10,
            grade: None,
            seating: None,
            stock_id: None,
            sale_open_at: None,
            sale_close_at: None,
            per_user_limit: None,
            per_order_limit: None,
            status: "ON_SALE".into(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn admissions_count_units_seats_and_package_ticket_components() {
        let lines = vec![
            line("TICKET", "ga", 3, None),
            line(
                "TICKET",
                "r",
                2,
                Some(r#"[{"id":"s1","label":"A-1-1"},{"id":"s2","label":"A-1-2"}]"#),
            ),
            line("MERCH", "tee", 4, None),
            line("PACKAGE", "pkg", 2, None),
            order_items::Model {
                product_id: None,
                ..line("SHIPPING", "ship", 1, None)
            },
        ];
        let component = |id: &str, product: &str, quantity| package_components::Model {
            id: id.into(),
            package_id: "pkg".into(),
            event_id: "e".into(),
            component_product_id: product.into(),
            component_variant_id: None,
            quantity,
        };
        let components = HashMap::from([(
            "pkg".to_owned(),
            vec![
                (component("c1", "vip", 2), product("vip", "TICKET")),
                (component("c2", "cap", 1), product("cap", "MERCH")),
            ],
        )]);
        let got = admissions(&lines, &components);
        let count = |p: &str| got.iter().filter(|a| a.product_id == p).count();
        assert_eq!(count("ga"), 3);
        assert_eq!(count("r"), 2);
        assert_eq!(count("vip"), 4, "2 per package × 2 packages");
        assert_eq!(got.len(), 9, "merchandise and shipping admit nobody");
        let seats: Vec<_> = got
            .iter()
            .filter_map(|a| a.seat.as_ref().map(|s| s.label.as_str()))
            .collect();
        assert_eq!(seats, ["A-1-1", "A-1-2"]);
        assert!(
            got.iter()
                .filter(|a| a.product_id == "vip")
                .all(|a| a.performance_id.as_deref() == Some("perf2")
                    && a.order_item_id == "line-pkg")
        );
    }
}

/// HTTP handlers.
pub mod handlers {
    use axum::extract::State;

    use super::TicketView;
    use crate::{
        app::AppState,
        auth::AuthUser,
        error::{AppResult, Problem},
        http::{ApiJson, extract::ApiPath},
    };

    /// The tickets of one of your orders, with their codes and QR codes (SVG). Issued when the
    /// order is paid; a void ticket (refunded or canceled order) has no QR code.
    #[utoipa::path(get, path = "/orders/{id}/tickets", tag = "orders", params(("id" = String, Path)),
        security(("bearer" = []), ("cookie" = [])),
        responses(
            (status = 200, body = Vec<TicketView>),
            (status = 401, description = "`unauthenticated`", body = Problem),
            (status = 404, description = "`not_found`: no such order, or someone else's", body = Problem),
        ))]
    pub async fn list(
        State(state): State<AppState>,
        user: AuthUser,
        ApiPath(id): ApiPath<String>,
    ) -> AppResult<ApiJson<Vec<TicketView>>> {
        Ok(ApiJson(super::list_for_order(&state, &user, &id).await?))
    }
}
