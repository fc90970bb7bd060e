//! The `performances` table.

use sea_orm::entity::prelude::*;

/// One row of `performances`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "performances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub start_at: TimeDateTime,
    pub doors_open_at: Option<TimeDateTime>,
    pub capacity: i32,
    pub per_user_limit: Option<i32>,
    pub layout_version: i32,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
