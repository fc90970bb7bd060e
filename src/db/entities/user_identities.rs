//! The `user_identities` table: accounts at OAuth providers linked to our users.

use sea_orm::entity::prelude::*;

/// One row of `user_identities`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub refresh_token_enc: Option<String>,
    pub created_at: TimeDateTime,
    pub last_used_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
