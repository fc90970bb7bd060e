//! The `products` table.

use sea_orm::entity::prelude::*;

/// One row of `products`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub performance_id: Option<String>,
    #[sea_orm(column_name = "type")]
    pub product_type: String,
    pub kind: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub price: i64,
    pub quantity: i32,
    pub grade: Option<String>,
    pub seating: Option<String>,
    pub stock_id: Option<String>,
    pub sale_open_at: Option<TimeDateTime>,
    pub sale_close_at: Option<TimeDateTime>,
    pub per_user_limit: Option<i32>,
    pub per_order_limit: Option<i32>,
    pub status: String,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
