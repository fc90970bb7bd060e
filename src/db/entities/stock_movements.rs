//! The `stock_movements` table.

use sea_orm::entity::prelude::*;

/// One row of `stock_movements`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_movements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub stock_id: String,
    pub order_id: Option<String>,
    pub kind: String,
    pub delta: i64,
    pub created_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
