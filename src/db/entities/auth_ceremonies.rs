//! The `auth_ceremonies` table: short-lived, single-use sign-in ceremony state.

use sea_orm::entity::prelude::*;

/// One row of `auth_ceremonies`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub user_id: Option<String>,
    pub data: String,
    pub expires_at: TimeDateTime,
    pub created_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
