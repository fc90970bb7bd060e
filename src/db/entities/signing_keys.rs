//! The `signing_keys` table.

use sea_orm::entity::prelude::*;

/// One row of `signing_keys`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub state: String,
    pub active_marker: Option<i32>,
    pub public_key: String,
    pub private_key_enc: String,
    pub created_at: TimeDateTime,
    pub activates_at: TimeDateTime,
    pub retired_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
