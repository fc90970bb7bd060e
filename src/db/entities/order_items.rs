//! The `order_items` table.

use sea_orm::entity::prelude::*;

/// One row of `order_items`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub order_id: String,
    pub event_id: String,
    pub position: i32,
    pub kind: String,
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub performance_id: Option<String>,
    pub shipping_option_id: Option<String>,
    pub name: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub price: i64,
    pub preorder: bool,
    pub seats: Option<String>,
    pub fulfillment: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub fulfilled_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
