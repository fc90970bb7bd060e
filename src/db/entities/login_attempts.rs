//! The `login_attempts` table.

use sea_orm::entity::prelude::*;

/// One row of `login_attempts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: Option<String>,
    pub email_normalized: Option<String>,
    pub ip: Option<String>,
    pub ip_prefix: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    pub result: String,
    pub created_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
