//! The `product_variants` table.

use sea_orm::entity::prelude::*;

/// One row of `product_variants`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_variants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub product_id: String,
    pub event_id: String,
    pub name: String,
    pub sku: String,
    pub quantity: i32,
    pub stock_id: String,
    pub preorder_limit: Option<i32>,
    pub preorder_stock_id: Option<String>,
    pub expected_ship_date: Option<String>,
    pub position: i32,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
