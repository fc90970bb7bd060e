//! The `refunds` table.

use sea_orm::entity::prelude::*;

/// One row of `refunds`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub order_id: String,
    pub event_id: String,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
    pub amount: i64,
    pub fee: i64,
    pub reason: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: TimeDateTime,
    pub last_error: Option<String>,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
