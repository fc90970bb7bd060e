//! The `seat_layouts` table.

use sea_orm::entity::prelude::*;

/// One row of `seat_layouts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seat_layouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub performance_id: String,
    pub event_id: String,
    pub version: i32,
    pub seat_count: i32,
    pub document: String,
    pub created_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
