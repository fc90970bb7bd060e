//! Merchandise fulfilment: a merchandise line (or a package line with a delivery or pick-up
//! option) of a confirmed order is `PENDING` until the organizer marks it `SHIPPED` (carrier,
//! tracking number; the buyer is mailed) or `PICKED_UP`. Only forward, only on confirmed orders.
//! A line stored with no fulfilment reads as `PENDING` once its order is confirmed.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    model::{LineKind, OrderStatus},
    view::{self, OrderView},
};
use crate::{
    app::AppState,
    auth::flows,
    catalog::{
        access::{self, Viewer},
        model::text,
    },
    db::{
        self,
        entities::{events, order_items, orders, users},
    },
    error::{AppError, AppResult, FieldError},
    infra::{clock::to_db, mail::Mail},
};

/// Where a merchandise line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FulfillmentStatus {
    /// Waiting to be shipped or picked up.
    Pending,
    /// Handed to a carrier.
    Shipped,
    /// Collected at the venue.
    PickedUp,
}

impl FulfillmentStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Shipped => "SHIPPED",
            Self::PickedUp => "PICKED_UP",
        }
    }

    /// From the stored name (`None` for anything else).
    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "SHIPPED" => Some(Self::Shipped),
            "PICKED_UP" => Some(Self::PickedUp),
            _ => None,
        }
    }

    /// Only forward: pending → shipped | picked up.
    pub fn can_become(self, next: Self) -> bool {
        self == Self::Pending && next != Self::Pending
    }
}

/// Whether a line goes through fulfilment: merchandise, and packages sold with a delivery or
/// pick-up option (checkout asks for one when a package holds merchandise).
pub fn applies(line: &order_items::Model) -> bool {
    match LineKind::from_db(&line.kind) {
        LineKind::Merch => true,
        LineKind::Package => line.shipping_option_id.is_some(),
        _ => false,
    }
}

/// The line's fulfilment as shown: its stored value, or `PENDING` for a line that goes through
/// fulfilment on a confirmed order.
pub fn effective(
    line: &order_items::Model,
    order_status: OrderStatus,
) -> Option<FulfillmentStatus> {
    match line
        .fulfillment
        .as_deref()
        .and_then(FulfillmentStatus::from_db)
    {
        Some(s) => Some(s),
        None if applies(line) && order_status == OrderStatus::Confirmed => {
            Some(FulfillmentStatus::Pending)
        }
        None => None,
    }
}

/// Whether the line was shipped or picked up already.
pub fn is_done(line: &order_items::Model) -> bool {
    matches!(
        line.fulfillment
            .as_deref()
            .and_then(FulfillmentStatus::from_db),
        Some(FulfillmentStatus::Shipped | FulfillmentStatus::PickedUp)
    )
}

/// `PUT /events/{id}/orders/{order_id}/items/{item_id}/fulfillment`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "SHIPPED", "carrier": "CJ대한통운", "tracking_number": "6543-2109-8765"}))]
pub struct FulfillmentBody {
    /// `SHIPPED` or `PICKED_UP`.
    pub status: FulfillmentStatus,
    /// Required with `SHIPPED` (1..=64 characters).
    pub carrier: Option<String>,
    /// Required with `SHIPPED` (1..=128 characters).
    pub tracking_number: Option<String>,
}

/// A checked fulfilment change.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Change {
    status: FulfillmentStatus,
    carrier: Option<String>,
    tracking: Option<String>,
}

fn validate(body: FulfillmentBody) -> AppResult<Change> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut field = |name: &str, raw: Option<&str>, max: usize| match raw {
        Some(v) => text(name, v, 1, max).map_err(|e| errors.push(e)).ok(),
        None => {
            errors.push(FieldError::new(
                name,
                "required",
                "is required when SHIPPED",
            ));
            None
        }
    };
    let change = match body.status {
        FulfillmentStatus::Shipped => {
            let carrier = field("carrier", body.carrier.as_deref(), 64);
            let tracking = field("tracking_number", body.tracking_number.as_deref(), 128);
            Change {
                status: body.status,
                carrier,
                tracking,
            }
        }
        FulfillmentStatus::PickedUp => Change {
            status: body.status,
            carrier: None,
            tracking: None,
        },
        FulfillmentStatus::Pending => {
            return Err(AppError::conflict(
                "invalid_transition",
                "Fulfilment only moves forward: to SHIPPED or PICKED_UP.",
            ));
        }
    };
    if errors.is_empty() {
        Ok(change)
    } else {
        Err(AppError::validation(errors))
    }
}

fn not_forward() -> AppError {
    AppError::conflict(
        "invalid_transition",
        "Only pending merchandise of a confirmed order can be shipped or picked up.",
    )
}

/// The organizer (or an admin) marks a line shipped or picked up.
pub async fn update(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    order_id: &str,
    item_id: &str,
    body: FulfillmentBody,
) -> AppResult<OrderView> {
    let change = validate(body)?;
    let event = access::manageable_event(state, viewer, event_id).await?;
    let actor = viewer.user_id.clone();
    db::write_tx(&state.db, |tx| {
        let (state, event, change, actor) =
            (state.clone(), event.clone(), change.clone(), actor.clone());
        let (order_id, item_id) = (order_id.to_owned(), item_id.to_owned());
        Box::pin(async move {
            let now = state.clock.now();
            let order = orders::Entity::find_by_id(order_id.clone())
                .one(tx)
                .await?
                .filter(|o| o.event_id == event.id)
                .ok_or_else(AppError::not_found)?;
            let line = order_items::Entity::find_by_id(item_id.clone())
                .one(tx)
                .await?
                .filter(|l| l.order_id == order.id)
                .ok_or_else(AppError::not_found)?;
            if !applies(&line) {
                return Err(AppError::conflict(
                    "invalid_transition",
                    "This line has no fulfilment (tickets and shipping fees).",
                ));
            }
            // Lock the order while it is confirmed: a concurrent refund waits for this
            // transaction (and then sees the shipment) or has already moved it (then 409).
            let confirmed = orders::Entity::update_many()
                .col_expr(orders::Column::UpdatedAt, Expr::value(to_db(now)))
                .filter(orders::Column::Id.eq(order.id.clone()))
                .filter(orders::Column::Status.eq(OrderStatus::Confirmed.as_str()))
                .exec(tx)
                .await?
                .rows_affected
                == 1;
            if !confirmed {
                return Err(not_forward());
            }
            let moved = order_items::Entity::update_many()
                .col_expr(
                    order_items::Column::Fulfillment,
                    Expr::value(change.status.as_str()),
                )
                .col_expr(
                    order_items::Column::Carrier,
                    Expr::value(change.carrier.clone()),
                )
                .col_expr(
                    order_items::Column::TrackingNumber,
                    Expr::value(change.tracking.clone()),
                )
                .col_expr(order_items::Column::FulfilledAt, Expr::value(to_db(now)))
                .filter(order_items::Column::Id.eq(line.id.clone()))
                .filter(
                    sea_orm::Condition::any()
                        .add(order_items::Column::Fulfillment.is_null())
                        .add(
                            order_items::Column::Fulfillment
                                .eq(FulfillmentStatus::Pending.as_str()),
                        ),
                )
                .exec(tx)
                .await?
                .rows_affected
                == 1;
            if !moved {
                return Err(not_forward());
            }
            flows::audit_with_detail(
                tx,
                now,
                Some(&actor),
                "order.fulfilled",
                "order",
                Some(&order.id),
                None,
                Some(serde_json::json!({
                    "item_id": line.id, "status": change.status.as_str(),
                    "carrier": change.carrier, "tracking_number": change.tracking,
                })),
            )
            .await?;
            if change.status == FulfillmentStatus::Shipped {
                mail_shipped(tx, &order, &event, &line, &change, now).await?;
            }
            Ok(())
        })
    })
    .await?;
    state.mail_wake.notify_one();
    view::load(&state.db, order_id)
        .await?
        .ok_or_else(AppError::not_found)
}

async fn mail_shipped<C: ConnectionTrait>(
    conn: &C,
    order: &orders::Model,
    event: &events::Model,
    line: &order_items::Model,
    change: &Change,
    now: time::OffsetDateTime,
) -> AppResult<()> {
    let Some(user) = users::Entity::find_by_id(order.user_id.clone())
        .one(conn)
        .await?
        .filter(|u| u.deleted_at.is_none())
    else {
        return Ok(());
    };
    let mail = Mail::MerchShipped {
        name: user.name.clone().unwrap_or_default(),
        event_title: event.title.clone(),
        product_name: line.name.clone(),
        carrier: change.carrier.clone().unwrap_or_default(),
        tracking_number: change.tracking.clone().unwrap_or_default(),
    };
    flows::mail_user(conn, now, &user, &mail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fulfilment_only_moves_forward() {
        use FulfillmentStatus::*;
        assert!(Pending.can_become(Shipped));
        assert!(Pending.can_become(PickedUp));
        assert!(!Shipped.can_become(PickedUp));
        assert!(!PickedUp.can_become(Shipped));
        assert!(!Pending.can_become(Pending));
    }

    #[test]
    fn shipping_needs_a_carrier_and_a_tracking_number() {
        let body = |carrier: Option<&str>, tracking: Option<&str>| FulfillmentBody {
            status: FulfillmentStatus::Shipped,
            carrier: carrier.map(str::to_owned),
            tracking_number: tracking.map(str::to_owned),
        };
        let err = validate(body(None, Some("1"))).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        assert!(validate(body(Some("CJ"), Some(" "))).is_err());
        assert_eq!(
            validate(body(Some(" CJ "), Some("123"))).expect("ok"),
            Change {
                status: FulfillmentStatus::Shipped,
                carrier: Some("CJ".into()),
                tracking: Some("123".into())
            }
        );
        let back = FulfillmentBody {
            status: FulfillmentStatus::Pending,
            carrier: None,
            tracking_number: None,
        };
        assert_eq!(validate(back).unwrap_err().code(), "invalid_transition");
    }
}
