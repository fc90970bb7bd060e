//! Demo data for `serve --demo`: accounts to try the service with, created once.

use sea_orm::{EntityTrait, PaginatorTrait};

use crate::{
    app::AppState,
    auth::{
        model::{Email, Locale, Role},
        users::{self, NewUser},
    },
    db::entities::users as user_rows,
    infra::rng,
};

/// Seeds an admin, an organizer and a buyer when there are no users; prints their
/// credentials once.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    if user_rows::Entity::find().count(&state.db).await? > 0 {
        return Ok(());
    }
    let accounts = [
        ("admin@boxoffice.local", "관리자", Role::Admin),
        ("organizer@boxoffice.local", "주최자", Role::Organizer),
        ("buyer@boxoffice.local", "구매자", Role::User),
    ];
    println!("demo accounts (shown once):");
    for (email, name, role) in accounts {
        let password = rng::token(state.rng.as_ref(), 12);
        let hash = state
            .passwords
            .hash(state.rng.clone(), password.clone())
            .await?;
        let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        users::insert(
            &state.db,
            state.clock.now(),
            NewUser {
                email: &email,
                password_hash: Some(hash),
                name: Some(name.to_owned()),
                nickname: None,
                locale: Locale::Ko,
                role,
                vip: false,
                verified: true,
            },
        )
        .await?;
        println!(
            "  {:<10} {:<28} {}",
            role.as_str(),
            email.as_str(),
            password
        );
    }
    Ok(())
}
