//! The `user_authorization` table.

use sea_orm::entity::prelude::*;

/// One row of `user_authorization`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_authorization")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub kind: String,
    pub refresh_token_hash: String,
    pub auth_method: String,
    pub created_at: TimeDateTime,
    pub expires_at: TimeDateTime,
    pub used_at: Option<TimeDateTime>,
    pub last_used_at: Option<TimeDateTime>,
    pub revoked_at: Option<TimeDateTime>,
    pub revoke_reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
