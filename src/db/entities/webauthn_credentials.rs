//! The `webauthn_credentials` table: registered passkeys.

use sea_orm::entity::prelude::*;

/// One row of `webauthn_credentials`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub credential_id_hash: String,
    pub credential_id: String,
    pub name: String,
    pub passkey: String,
    pub sign_count: i64,
    pub authenticator_type: String,
    pub created_at: TimeDateTime,
    pub last_used_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
