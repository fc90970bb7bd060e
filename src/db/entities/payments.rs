//! The `payments` table.

use sea_orm::entity::prelude::*;

/// One row of `payments`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub order_id: String,
    pub event_id: String,
    pub provider: String,
    pub amount: i64,
    pub status: String,
    pub provider_ref: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
