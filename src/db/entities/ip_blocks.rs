//! The `ip_blocks` table.

use sea_orm::entity::prelude::*;

/// One row of `ip_blocks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ip_blocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub cidr: String,
    pub reason: String,
    pub source: String,
    pub created_by: Option<String>,
    pub created_at: TimeDateTime,
    pub expires_at: Option<TimeDateTime>,
    pub deleted_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
