//! The `tickets` table.

use sea_orm::entity::prelude::*;

/// One row of `tickets`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub order_id: String,
    pub order_item_id: String,
    pub product_id: String,
    pub performance_id: Option<String>,
    pub seat_id: Option<String>,
    pub seat_label: Option<String>,
    pub code: String,
    pub status: String,
    pub used_at: Option<TimeDateTime>,
    pub checked_in_by: Option<String>,
    pub created_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
