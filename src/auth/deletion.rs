//! Account deletion: soft delete, anonymised, sessions ended, orders kept for accounting.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use time::Duration;

use super::{
    flows::{self, audit},
    model::status,
    recovery, sessions, users,
};
use crate::{
    app::AppState,
    db::{
        self,
        entities::{email_codes, user_identities, users as user_rows, webauthn_credentials},
    },
    error::{AppError, AppResult},
    infra::{
        clock::to_db,
        mail::{Mail, retention},
    },
};

/// Asks the orders module whether a user still has orders that must not lose their owner
/// (pending or confirmed, for events not yet held); `orders::live` answers it.
#[async_trait::async_trait]
pub trait LiveOrders: Send + Sync + 'static {
    /// Whether the user has live orders.
    async fn exist_for(&self, state: &AppState, user_id: &str) -> AppResult<bool>;
}

/// A sign-in this recent stands in for the password.
pub const RECENT_SIGN_IN: Duration = Duration::minutes(5);

/// Deletes the signed-in user's account after proof (password, or a sign-in within five minutes).
pub async fn delete_account(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    password: Option<String>,
) -> AppResult<()> {
    let user = users::find_by_id(&state.db, user_id)
        .await?
        .ok_or_else(AppError::unauthenticated)?;
    let now = state.clock.now();
    match password {
        Some(password) => {
            state
                .limits
                .check_account(
                    crate::infra::ratelimit::account_action::PASSWORD_CHECK,
                    &user.id,
                )
                .await?;
            if !state
                .passwords
                .verify(password, user.password.clone())
                .await?
            {
                return Err(AppError::unauthorized(
                    "invalid_credentials",
                    "The password is wrong.",
                ));
            }
        }
        None => {
            let started = sessions::started_at(&state.db, user_id, session_id).await?;
            if started.is_none_or(|t| now - t > RECENT_SIGN_IN) {
                return Err(AppError::forbidden(
                    "reauthentication_required",
                    "Confirm with your password, or sign in again and delete within five minutes.",
                ));
            }
        }
    }
    if state.live_orders.exist_for(state, user_id).await? {
        return Err(AppError::conflict(
            "live_orders_exist",
            "You have pending or confirmed orders for events that have not taken place yet; cancel them first.",
        ));
    }
    let families = db::write_tx(&state.db, |tx| {
        let user = user.clone();
        Box::pin(async move {
            if user.role == super::model::Role::Admin.as_str() && user.status == status::ACTIVE {
                let admins = crate::admin::users::lock_active_admins(tx).await?;
                if !admins.iter().any(|a| a != &user.id) {
                    return Err(AppError::conflict(
                        "last_admin",
                        "You are the last active administrator; promote another one before deleting this account.",
                    ));
                }
            }
            let anonymous = format!("deleted-{}@deleted.invalid", user.id);
            user_rows::ActiveModel {
                id: Set(user.id.clone()),
                email: Set(anonymous.clone()),
                email_normalized: Set(anonymous),
                password: Set(None),
                name: Set(None),
                nickname: Set(None),
                status: Set(status::DELETED.to_owned()),
                deleted_at: Set(Some(to_db(now))),
                updated_at: Set(to_db(now)),
                ..Default::default()
            }
            .update(tx)
            .await?;
            email_codes::Entity::delete_many()
                .filter(email_codes::Column::UserId.eq(&user.id))
                .exec(tx)
                .await?;
            // The provider accounts and passkeys may sign up again, as the address may.
            user_identities::Entity::delete_many()
                .filter(user_identities::Column::UserId.eq(&user.id))
                .exec(tx)
                .await?;
            webauthn_credentials::Entity::delete_many()
                .filter(webauthn_credentials::Column::UserId.eq(&user.id))
                .exec(tx)
                .await?;
            let families = recovery::revoke_all(tx, now, &user.id, None).await?;
            retention::forget_address(tx, &user.email).await?;
            // The farewell goes to the address the account had, before it was anonymised.
            let mail = Mail::AccountDeleted {
                name: user.name.clone().unwrap_or_default(),
            };
            flows::mail_user(tx, now, &user, &mail).await?;
            audit(
                tx,
                now,
                Some(&user.id),
                "user.deleted",
                "user",
                Some(&user.id),
                None,
            )
            .await?;
            Ok(families)
        })
    })
    .await?;
    flows::after_sessions_ended(state, &families).await;
    Ok(())
}
