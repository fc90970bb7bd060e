//! How long the outbox remembers finished mail. A delivered row keeps who was written to, which
//! template and when: personal data the service needs only while someone may ask "did my mail
//! go out?". Without a limit the table grows with every order (about 100 MiB in a 10-minute
//! soak), so finished rows are deleted once they are older than `MAIL_RETENTION_DAYS`.

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use time::{Duration, OffsetDateTime};

use super::status;
use crate::{
    db::entities::mail_outbox::{Column, Entity as Outbox},
    error::AppResult,
    infra::clock::to_db,
};

/// Rows deleted per statement, so a first purge of a large table never holds many locks at once.
const BATCH: u64 = 1_000;

/// Deletes finished mail older than `keep`: delivered rows by when they went out, given-up rows
/// by when they were written. Pending mail is never touched. Returns how many rows went.
pub async fn purge_finished<C: ConnectionTrait>(
    db: &C,
    now: OffsetDateTime,
    keep: Duration,
) -> AppResult<u64> {
    let cutoff = to_db(now - keep);
    let due = Condition::any()
        .add(
            Condition::all()
                .add(Column::Status.is_in([status::SENT, status::LOGGED]))
                .add(Column::SentAt.lte(cutoff)),
        )
        .add(
            Condition::all()
                .add(Column::Status.eq(status::FAILED))
                .add(Column::CreatedAt.lte(cutoff)),
        );
    let mut purged = 0;
    loop {
        // Ids first, then delete by id: MariaDB refuses `LIMIT` inside an `IN (SELECT …)`, and
        // SQLite has no `DELETE … LIMIT`.
        let ids: Vec<String> = Outbox::find()
            .select_only()
            .column(Column::Id)
            .filter(due.clone())
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(purged);
        }
        let found = ids.len() as u64;
        purged += Outbox::delete_many()
            .filter(Column::Id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
        if found < BATCH {
            return Ok(purged);
        }
    }
}

/// Deletes the finished mail sent to `address` (an account being deleted), whatever its age.
/// Pending mail stays: the farewell is written in the same transaction and must still go out.
pub async fn forget_address<C: ConnectionTrait>(db: &C, address: &str) -> AppResult<u64> {
    let finished = Outbox::delete_many()
        .filter(Column::ToAddress.eq(address))
        .filter(Column::Status.ne(status::PENDING));
    Ok(finished.exec(db).await?.rows_affected)
}
