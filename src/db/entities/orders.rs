//! The `orders` table.

use sea_orm::entity::prelude::*;

/// One row of `orders`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub event_id: String,
    pub user_id: String,
    pub status: String,
    pub currency: String,
    pub subtotal: i64,
    pub shipping_fee: i64,
    pub total: i64,
    pub cancel_policy: String,
    pub shipping_address: Option<String>,
    pub expires_at: TimeDateTime,
    pub payment_provider: Option<String>,
    pub payment_ref: Option<String>,
    pub paid_amount: Option<i64>,
    pub cancel_reason: Option<String>,
    pub cancel_note: Option<String>,
    pub cancel_fee: Option<i64>,
    pub refund_amount: Option<i64>,
    pub confirmed_at: Option<TimeDateTime>,
    pub canceled_at: Option<TimeDateTime>,
    pub refunded_at: Option<TimeDateTime>,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
