//! "Notify me": buyers subscribe to a sold-out product; when its remaining rises from zero the
//! first subscribers (oldest first, as many as there are units) get one mail through the outbox.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    sea_query::{Expr, Query},
};
use time::OffsetDateTime;

use super::{model::NotifyView, model::ProductStatus, store};
use crate::{
    app::AppState,
    auth::{AuthUser, model::status as user_status},
    catalog::access::Viewer,
    db::{
        self,
        entities::{events, notify_requests, package_components, products, users},
    },
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        mail::{self, Mail, MailLocale},
    },
};

/// At most this many mails per call, so one restock cannot make a huge transaction.
const MAX_MAILS: i64 = 500;

/// Of some products and the packages made of them, those with subscribers not yet mailed (sorted):
/// the ones a release must offer to [`notify_back_in_stock`]. Two reads, so a cancellation can
/// find out before it touches the stock counters that, usually, nobody is waiting.
pub async fn awaited<C: ConnectionTrait>(
    conn: &C,
    mut product_ids: Vec<String>,
) -> AppResult<Vec<String>> {
    product_ids.sort();
    product_ids.dedup();
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    let packages: Vec<String> = package_components::Entity::find()
        .select_only()
        .column(package_components::Column::PackageId)
        .filter(package_components::Column::ComponentProductId.is_in(product_ids.clone()))
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    product_ids.extend(packages);
    let mut waited: Vec<String> = notify_requests::Entity::find()
        .select_only()
        .column(notify_requests::Column::ProductId)
        .filter(notify_requests::Column::ProductId.is_in(product_ids))
        .filter(notify_requests::Column::NotifiedAt.is_null())
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    waited.sort();
    Ok(waited)
}

/// Mails the oldest pending subscribers of a product, as many as it has units left (none when
/// it is not `ACTIVE` or has nothing left), and marks them notified, inside the caller's
/// transaction. Call it after a change that may have taken the product's `remaining` from 0 to
/// more (a quantity raise, an order released or canceled; for a component, also for the packages
/// of [`store::dependent_packages`]). Returns how many mails were queued: when above zero, call
/// `state.mail_wake.notify_one()` after the commit.
pub async fn notify_back_in_stock<C: ConnectionTrait>(
    conn: &C,
    state: &AppState,
    product_id: &str,
    now: OffsetDateTime,
) -> AppResult<usize> {
    let Some(product) = products::Entity::find_by_id(product_id.to_owned())
        .one(conn)
        .await?
        .filter(|p| ProductStatus::from_db(&p.status) == ProductStatus::Active)
    else {
        return Ok(0);
    };
    let Some(event) = events::Entity::find_by_id(product.event_id.clone())
        .one(conn)
        .await?
    else {
        return Ok(0);
    };
    let remaining = store::views(conn, &event, vec![product.clone()], now)
        .await?
        .first()
        .map_or(0, |v| v.remaining);
    if remaining <= 0 {
        return Ok(0);
    }
    let active_users = Query::select()
        .column(users::Column::Id)
        .from(users::Entity)
        .and_where(users::Column::Status.eq(user_status::ACTIVE))
        .to_owned();
    let pending = notify_requests::Entity::find()
        .filter(notify_requests::Column::ProductId.eq(product_id))
        .filter(notify_requests::Column::NotifiedAt.is_null())
        .filter(notify_requests::Column::UserId.in_subquery(active_users))
        .order_by_asc(notify_requests::Column::CreatedAt)
        .order_by_asc(notify_requests::Column::Id)
        .limit(u64::try_from(remaining.min(MAX_MAILS)).unwrap_or(0))
        .all(conn)
        .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let recipients = users::Entity::find()
        .filter(users::Column::Id.is_in(pending.iter().map(|r| r.user_id.clone())))
        .all(conn)
        .await?;
    let url = format!(
        "{}/e/{}",
        state.config.public_url.as_str().trim_end_matches('/'),
        event.id
    );
    let mut sent = 0;
    for request in pending {
        // Conditional, so two transactions releasing stock at once mail each subscriber once.
        let claimed = notify_requests::Entity::update_many()
            .col_expr(notify_requests::Column::NotifiedAt, Expr::value(to_db(now)))
            .filter(notify_requests::Column::Id.eq(request.id.as_str()))
            .filter(notify_requests::Column::NotifiedAt.is_null())
            .exec(conn)
            .await?
            .rows_affected
            == 1;
        let Some(user) = recipients.iter().find(|u| u.id == request.user_id) else {
            continue;
        };
        if claimed {
            let mail = Mail::BackInStock {
                name: user.name.clone().unwrap_or_default(),
                product_name: product.name.clone(),
                event_title: event.title.clone(),
                url: url.clone(),
            };
            mail::enqueue(
                conn,
                now,
                &user.email,
                MailLocale::from_tag(&user.locale),
                &mail,
            )
            .await?;
            sent += 1;
        }
    }
    Ok(sent)
}

fn view(row: &notify_requests::Model) -> NotifyView {
    NotifyView {
        product_id: row.product_id.clone(),
        created_at: from_db(row.created_at),
        notified_at: row.notified_at.map(from_db),
    }
}

/// Subscribes the user to a product they can see. Idempotent: a second call keeps the place in
/// line; after a mail went out, subscribing again queues the user anew.
pub async fn subscribe(
    state: &AppState,
    user: &AuthUser,
    product_id: &str,
) -> AppResult<NotifyView> {
    let viewer = Viewer::from(user);
    let (product, _) = store::visible(&state.db, Some(&viewer), product_id).await?;
    let now = state.clock.now();
    let user_id = user.user_id.clone();
    let row = db::write_tx(&state.db, |tx| {
        let (product, user_id) = (product.clone(), user_id.clone());
        Box::pin(async move {
            let backend = tx.get_database_backend();
            // The unique index (product, user) makes a repeated or concurrent call a no-op.
            let insert = match backend {
                sea_orm::DbBackend::MySql => "INSERT IGNORE INTO notify_requests (id, product_id, event_id, user_id, created_at, notified_at) VALUES (?, ?, ?, ?, ?, NULL)",
                _ => "INSERT INTO notify_requests (id, product_id, event_id, user_id, created_at, notified_at) VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING",
            };
            tx.execute_raw(Statement::from_sql_and_values(
                backend,
                insert,
                [
                    uuid::Uuid::now_v7().to_string().into(),
                    product.id.clone().into(),
                    product.event_id.clone().into(),
                    user_id.clone().into(),
                    to_db(now).into(),
                ],
            ))
            .await?;
            notify_requests::Entity::update_many()
                .col_expr(notify_requests::Column::NotifiedAt, Expr::value(Option::<time::PrimitiveDateTime>::None))
                .col_expr(notify_requests::Column::CreatedAt, Expr::value(to_db(now)))
                .filter(notify_requests::Column::ProductId.eq(product.id.as_str()))
                .filter(notify_requests::Column::UserId.eq(user_id.as_str()))
                .filter(notify_requests::Column::NotifiedAt.is_not_null())
                .exec(tx)
                .await?;
            notify_requests::Entity::find()
                .filter(notify_requests::Column::ProductId.eq(product.id.as_str()))
                .filter(notify_requests::Column::UserId.eq(user_id.as_str()))
                .one(tx)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("notify request vanished")))
        })
    })
    .await?;
    Ok(view(&row))
}

/// Ends a subscription (no-op when there is none).
pub async fn unsubscribe(state: &AppState, user: &AuthUser, product_id: &str) -> AppResult<()> {
    notify_requests::Entity::delete_many()
        .filter(notify_requests::Column::ProductId.eq(product_id))
        .filter(notify_requests::Column::UserId.eq(user.user_id.as_str()))
        .exec(&state.db)
        .await?;
    Ok(())
}
