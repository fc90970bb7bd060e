//! What a buyer sends to `POST /orders`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::orders::view::ShippingAddress;

/// `POST /orders`: lines of one event, and an address when a delivery option is chosen.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [
    {"product_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1a01", "quantity": 2},
    {"product_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1a02", "quantity": 2, "seat_ids": ["0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1b01", "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1b02"]},
    {"product_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1a03", "quantity": 1, "variant_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1c01", "shipping_option_id": "0192f0a1-7c2e-7b3d-9a40-5d1f3c2b1d01"}
], "shipping_address": {"recipient": "김민지", "phone": "010-1234-5678", "postcode": "06236", "address_lines": ["서울특별시 강남구 테헤란로 123", "4층"]}}))]
pub struct OrderRequest {
    /// 1 to 20 lines.
    pub items: Vec<ItemRequest>,
    /// Required when a `DELIVERY` shipping option is chosen.
    #[serde(default)]
    pub shipping_address: Option<ShippingAddress>,
}

/// One line of an order request.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// A ticket, merchandise or package product.
    pub product_id: String,
    /// Units, 1 to 50 (reserved seats: the number of `seat_ids`).
    pub quantity: i64,
    /// Reserved-seat tickets: the seats, of the product's performance and grade.
    #[serde(default)]
    pub seat_ids: Option<Vec<String>>,
    /// Merchandise: the variant (may be left out when there is only one).
    #[serde(default)]
    pub variant_id: Option<String>,
    /// Merchandise and packages with shipping options: the chosen one.
    #[serde(default)]
    pub shipping_option_id: Option<String>,
}
