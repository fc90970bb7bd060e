//! The `users` table.

use sea_orm::entity::prelude::*;

/// One row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub email: String,
    pub email_normalized: String,
    pub password: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub role: String,
    pub vip: bool,
    pub status: String,
    pub locale: String,
    pub email_verified_at: Option<TimeDateTime>,
    pub failed_login_count: i32,
    pub failed_login_window_start: Option<TimeDateTime>,
    pub locked_until: Option<TimeDateTime>,
    pub last_login_at: Option<TimeDateTime>,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
    pub deleted_at: Option<TimeDateTime>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
