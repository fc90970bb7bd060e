//! The answer account deletion asks for: does this buyer still have orders that need an owner?

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Query};

use super::model::OrderStatus;
use crate::{
    app::AppState,
    auth::deletion::LiveOrders,
    db::entities::{events, orders},
    error::AppResult,
    infra::clock::to_db,
};

/// Pending or confirmed orders for events that have not ended yet keep an account alive.
pub struct LiveOrdersInDb;

#[async_trait::async_trait]
impl LiveOrders for LiveOrdersInDb {
    async fn exist_for(&self, state: &AppState, user_id: &str) -> AppResult<bool> {
        let now = to_db(state.clock.now());
        let upcoming = Query::select()
            .column(events::Column::Id)
            .from(events::Entity)
            .and_where(events::Column::EndAt.gt(now))
            .to_owned();
        Ok(orders::Entity::find()
            .select_only()
            .column(orders::Column::Id)
            .filter(orders::Column::UserId.eq(user_id))
            .filter(orders::Column::Status.is_in([
                OrderStatus::Pending.as_str(),
                OrderStatus::Confirmed.as_str(),
            ]))
            .filter(orders::Column::EventId.in_subquery(upcoming))
            .into_tuple::<String>()
            .one(&state.db)
            .await?
            .is_some())
    }
}
