//! The hold sweeper: a PENDING order past `expires_at` becomes CANCELED (`EXPIRED`) and its
//! stock returns — exactly once, whichever instance gets there first, because the transition is
//! one conditional statement and the release runs only for the instance whose statement moved it.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    effects::{self, Stamp},
    hooks::{Lifecycle, OrderChange},
    idempotency,
    model::{CancelReason, OrderStatus, movement},
};
use crate::{
    app::AppState,
    db::{self, entities::orders},
    error::AppResult,
    infra::{clock::to_db, mail::retention},
};

/// Orders looked at per sweep; the next sweep takes the rest.
const BATCH: u64 = 500;

/// Cancels one expired order if nobody has yet; returns whether this call did.
pub async fn expire(state: &AppState, order: &orders::Model) -> AppResult<bool> {
    let now = state.clock.now();
    let (moved, mails) = db::write_tx(&state.db, |tx| {
        let state = state.clone();
        let order = order.clone();
        Box::pin(async move {
            let moved = effects::transition(
                tx,
                &order.id,
                OrderStatus::Pending,
                OrderStatus::Canceled,
                Stamp {
                    reason: Some(CancelReason::Expired),
                    only_if_expired: true,
                    ..Stamp::default()
                },
                now,
            )
            .await?;
            let mails = if moved {
                effects::release(tx, &state, &order, movement::RELEASE, now).await?
            } else {
                0
            };
            Ok((moved, mails))
        })
    })
    .await?;
    if mails > 0 {
        state.mail_wake.notify_one();
    }
    if moved {
        metrics::counter!("boxoffice_orders_total", "result" => "expired").increment(1);
        state
            .order_hooks
            .announce(
                state,
                &[OrderChange {
                    what: Lifecycle::Expired,
                    order_id: order.id.clone(),
                    event_id: order.event_id.clone(),
                    user_id: order.user_id.clone(),
                    status: OrderStatus::Canceled,
                }],
            )
            .await;
    }
    Ok(moved)
}

/// One sweep: expires every due order (up to a batch); returns how many this call expired.
pub async fn sweep(state: &AppState) -> AppResult<usize> {
    let now = state.clock.now();
    let due = orders::Entity::find()
        .filter(orders::Column::Status.eq(OrderStatus::Pending.as_str()))
        .filter(orders::Column::ExpiresAt.lte(to_db(now)))
        .order_by_asc(orders::Column::ExpiresAt)
        .limit(BATCH)
        .all(&state.db)
        .await?;
    let mut expired = 0;
    for order in &due {
        if expire(state, order).await? {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Sweeps every second; each minute it also forgets idempotency keys past their 24 hours and
/// finished mail past `MAIL_RETENTION_DAYS`.
pub async fn sweep_forever(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        match sweep(&state).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired order holds released"),
            Err(e) => tracing::warn!(error = %e, "order expiry sweep failed"),
        }
        if n.is_multiple_of(60)
            && let Err(e) = idempotency::purge_expired(&state.db, state.clock.now()).await
        {
            tracing::warn!(error = %e, "idempotency key purge failed");
        }
        if n.is_multiple_of(60) && state.config.mail_retention_days > 0 {
            let keep = time::Duration::days(state.config.mail_retention_days.into());
            match retention::purge_finished(&state.db, state.clock.now(), keep).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "finished mail past its retention deleted"),
                Err(e) => tracing::warn!(error = %e, "mail retention purge failed"),
            }
        }
    }
}
