//! The `email_codes` table.

use sea_orm::entity::prelude::*;

/// One row of `email_codes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: TimeDateTime,
    pub sent_at: TimeDateTime,
    pub consumed_at: Option<TimeDateTime>,
    pub created_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
