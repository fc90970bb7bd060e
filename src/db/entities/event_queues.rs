//! The `event_queues` table.

use sea_orm::entity::prelude::*;

/// One row of `event_queues`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_queues")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    pub enabled: bool,
    pub capacity: i32,
    pub admit_per_second: i32,
    pub admission_ttl_seconds: i32,
    pub pre_queue_opens_at: Option<TimeDateTime>,
    pub vip_share_bp: i32,
    pub heartbeat_timeout_seconds: i32,
    pub max_joins_per_ip: Option<i32>,
    pub paused: bool,
    pub created_at: TimeDateTime,
    pub updated_at: TimeDateTime,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
