//! The `mail_outbox` table.

use sea_orm::entity::prelude::*;

/// One row of `mail_outbox`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub to_address: String,
    pub template: String,
    pub locale: String,
    pub params: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: TimeDateTime,
    pub locked_until: Option<TimeDateTime>,
    pub last_error: Option<String>,
    pub created_at: TimeDateTime,
    pub sent_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
