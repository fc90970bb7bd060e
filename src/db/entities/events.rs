//! The `events` table.

use sea_orm::entity::prelude::*;

/// One row of `events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organizer_id: String,
    pub title: String,
    pub description: Option<String>,
    pub start_at: TimeDateTime,
    pub end_at: TimeDateTime,
    pub timezone: String,
    pub currency: String,
    pub venue_name: Option<String>,
    pub venue_address: Option<String>,
    pub sale_open_at: TimeDateTime,
    pub sale_close_at: TimeDateTime,
    pub image_url: Option<String>,
    pub order_hold_seconds: i32,
    pub cancel_policy: String,
    pub total_tickets: i32,
    pub status: String,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
