//! The `seats` table.

use sea_orm::entity::prelude::*;

/// One row of `seats`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub performance_id: String,
    pub label: String,
    pub section: String,
    pub row_label: String,
    pub seat_label: String,
    pub grade: String,
    pub x: i32,
    pub y: i32,
    pub position: i32,
    pub state: String,
    pub order_id: Option<String>,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
