//! Storage: connection by URL scheme, tuning per backend, migrations, entities and transaction helpers.

pub mod entities;
pub mod migration;

use std::{
    collections::HashMap,
    future::Future,
    path::PathBuf,
    pin::Pin,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::{config::ServiceUrl, error::AppResult};

/// Connects to SQLite or MariaDB/MySQL by URL scheme, tuned as DESIGN.md says.
pub async fn connect(
    url: &ServiceUrl,
    pool_max: Option<u32>,
) -> anyhow::Result<DatabaseConnection> {
    let raw = url.expose();
    let raw = if let Some(rest) = raw.strip_prefix("mariadb://") {
        format!("mysql://{rest}")
    } else {
        raw.to_owned()
    };
    let mut opts = ConnectOptions::new(raw.clone());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(if raw.starts_with("sqlite:") {
            30
        } else {
            5
        }));
    if raw.starts_with("sqlite:") {
        // WAL lets readers run beside the one writer; IMMEDIATE transactions queue on busy_timeout.
        opts.max_connections(pool_max.unwrap_or(8))
            .map_sqlx_sqlite_pool_opts(without_reaper)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            });
    } else {
        opts.max_connections(pool_max.unwrap_or(32))
            .map_sqlx_mysql_opts(|o| {
                // Room for every statement text the app uses, so the driver rarely closes one
                // (see `padded`). The server's `max_prepared_stmt_count` (16,382 by default)
                // must cover instances × pool size × this in the worst case.
                o.charset("utf8mb4")
                    .timezone(Some("+00:00".into()))
                    .statement_cache_capacity(STATEMENT_CACHE)
            })
            // READ COMMITTED as the session default, set once per connection: a per-transaction
            // `SET TRANSACTION ISOLATION LEVEL` would be one more round trip on every write.
            .map_sqlx_mysql_pool_opts(|o| {
                without_reaper(o).after_connect(|conn, _| {
                    Box::pin(async move {
                        use sea_orm::sqlx::Executor;
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .await
                            .map(|_| ())
                    })
                })
            });
    }
    let db = Database::connect(opts)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot connect to {url}: {e}"))?;
    Ok(db)
}

/// Prepared statements kept per MariaDB connection.
const STATEMENT_CACHE: usize = 250;

/// Pool options with no background maintenance task: no minimum size, no idle timeout, no
/// maximum lifetime. A pool that keeps the connections it once needed suits a box office: the
/// next opening should not start with dozens of handshakes and cold statement caches. And
/// sqlx 0.9.0's reaper could spin a runtime thread forever under churn (sqlx#3645, fixed in
/// 0.9.1, which we use): seen here as a test that hung at shutdown with one core busy, and as a
/// CI run whose last query starved. A dead connection is still replaced: see `ping_if_idle`.
fn without_reaper<DB: sea_orm::sqlx::Database>(
    options: sea_orm::sqlx::pool::PoolOptions<DB>,
) -> sea_orm::sqlx::pool::PoolOptions<DB> {
    ping_if_idle(
        options
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None),
    )
}

/// A connection back in the pool for less than this is lent without a ping.
const PING_IF_IDLE_FOR: Duration = Duration::from_millis(500);

/// How long after a statement found its connection dead every loan pings first.
const DISTRUST_FOR: Duration = Duration::from_secs(5);

/// Milliseconds after [`EPOCH`] until which pooled connections are distrusted (0: never).
static DISTRUST_UNTIL: AtomicU64 = AtomicU64::new(0);
static EPOCH: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);

fn millis_since_epoch() -> u64 {
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Notes a failed statement: if its connection was found dead, the others that were pooled with
/// it probably are too (the database restarted, or the network dropped them all), so for a while
/// every loan pings first and a dead connection is replaced instead of failing one more request.
/// Process-wide rather than per pool: a needless ping costs a round trip, a missed one a 503.
pub fn note_failure(err: &DbErr) {
    if connection_lost(err) {
        let until = millis_since_epoch().saturating_add(DISTRUST_FOR.as_millis() as u64);
        DISTRUST_UNTIL.fetch_max(until, Ordering::Relaxed);
    }
}

fn distrusted() -> bool {
    DISTRUST_UNTIL.load(Ordering::Relaxed) > millis_since_epoch()
}

/// The pool pings a connection before lending it only if it sat idle for `PING_IF_IDLE_FOR`
/// (HikariCP's "alive bypass window"). sqlx's default pings before every loan, and it also pings
/// every connection it takes back: under a sale that was two extra round trips, each waking the
/// database, per transaction. A connection used a moment ago was alive then, and sqlx's ping on
/// release has just checked it again; one that died since fails its next statement, which answers
/// 503 `service_unavailable` (see `is_unavailable`), and is dropped by that ping on release — and
/// then, for a few seconds, every loan pings (`note_failure`), so a database restart costs one
/// such 503 rather than one per pooled connection.
fn ping_if_idle<DB: sea_orm::sqlx::Database>(
    options: sea_orm::sqlx::pool::PoolOptions<DB>,
) -> sea_orm::sqlx::pool::PoolOptions<DB> {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR || distrusted() {
                    sea_orm::sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// A boxed future borrowing the transaction, as transaction closures return.
pub type TxFuture<'a, T> = Pin<Box<dyn Future<Output = AppResult<T>> + Send + 'a>>;

/// How many times a write transaction is retried on deadlock, lock wait timeout or busy.
const MAX_ATTEMPTS: u32 = 5;

/// Runs `f` in a write transaction (IMMEDIATE on SQLite, READ COMMITTED on MariaDB),
/// retrying a bounded number of times with jitter when the database reports contention.
pub async fn write_tx<T, F>(db: &DatabaseConnection, mut f: F) -> AppResult<T>
where
    T: Send,
    F: for<'a> FnMut(&'a DatabaseTransaction) -> TxFuture<'a, T> + Send,
{
    let gate = sqlite_writer(db);
    let started = std::time::Instant::now();
    let _timer = Timer(started);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result: AppResult<T> = async {
            let _turn = match &gate {
                Some(gate) => Some(
                    tokio::time::timeout(WRITER_WAIT, gate.acquire())
                        .await
                        .map_err(|_| {
                            crate::error::AppError::unavailable("The database is busy; try again.")
                        })?
                        .map_err(crate::error::AppError::internal)?,
                ),
                None => None,
            };
            let tx = begin(db).await?;
            let value = f(&tx).await?;
            tx.commit().await.map_err(|e| {
                let unknown = connection_lost(&e);
                crate::error::AppError::from(e).with_commit_unknown(unknown)
            })?;
            Ok(value)
        }
        .await;
        match result {
            Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                let jitter = rand::random::<u64>() % (5 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(2 * u64::from(attempt) + jitter)).await;
            }
            other => return other,
        }
    }
}

/// Begins a write transaction. A pooled connection that died since its last use (it is lent
/// without a ping when it was idle only briefly, see `ping_if_idle`) fails at `BEGIN`, before
/// anything was written: it is dropped and `BEGIN` is tried on the next one, at most once per
/// connection the pool holds (after a database restart every idle one is dead), then on a new one.
async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = || write_options(db.get_database_backend());
    let pooled = match db.get_database_backend() {
        DbBackend::MySql => db.get_mysql_connection_pool().size(),
        _ => 0,
    };
    let mut tries = 0;
    loop {
        match db.begin_with_options(options()).await {
            Err(e) if connection_lost(&e) && tries <= pooled => {
                note_failure(&e);
                tries += 1;
                tracing::info!(error = %e, "a pooled connection was gone at BEGIN; trying another");
            }
            other => return other,
        }
    }
}

/// Records a write transaction's time, retries included, however it ends.
struct Timer(std::time::Instant);

impl Drop for Timer {
    fn drop(&mut self) {
        metrics::histogram!("boxoffice_db_transaction_seconds")
            .record(self.0.elapsed().as_secs_f64());
    }
}

/// The longest a write waits for its turn on SQLite before answering 503.
const WRITER_WAIT: Duration = Duration::from_secs(30);

/// SQLite admits one writer per database file. Writers of this process take turns on one
/// permit per file (first come, first served) instead of all holding pooled connections and
/// polling in SQLite's busy handler, which under a crowd wastes the lock's free time and runs
/// into the pool's acquire timeout. Keyed by file because the lock SQLite enforces is per file.
static SQLITE_WRITERS: LazyLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn sqlite_writer(db: &DatabaseConnection) -> Option<Arc<Semaphore>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut writers = SQLITE_WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    Some(
        writers
            .entry(file)
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone(),
    )
}

fn write_options(backend: DbBackend) -> TransactionOptions {
    match backend {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        // READ COMMITTED is each MariaDB connection's session default (see `connect`).
        _ => TransactionOptions::default(),
    }
}

/// Unique indexes by name, with the column list SQLite reports instead of the name.
const UNIQUE_INDEXES: &[(&str, &str)] = &[
    ("ux_users_email_normalized", "users.email_normalized"),
    (
        "ux_user_authorization_token",
        "user_authorization.refresh_token_hash",
    ),
    ("ux_signing_keys_active", "signing_keys.active_marker"),
    (
        "ux_email_codes_user_purpose",
        "email_codes.user_id, email_codes.purpose",
    ),
    ("PRIMARY", "settings.name"),
    ("ux_tickets_code", "tickets.code"),
    (
        "ux_idempotency_keys_key",
        "idempotency_keys.user_id, idempotency_keys.route, idempotency_keys.idem_key",
    ),
    ("ux_refunds_order", "refunds.order_id"),
    (
        "ux_user_identities_subject",
        "user_identities.provider, user_identities.subject",
    ),
    (
        "ux_webauthn_credentials_credential",
        "webauthn_credentials.credential_id_hash",
    ),
];

/// The name of the unique index an insert or update violated, if that is what failed.
pub fn unique_violation(err: &DbErr) -> Option<&'static str> {
    let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() else {
        return None;
    };
    UNIQUE_INDEXES
        .iter()
        .find(|(name, sqlite_columns)| {
            message.contains(&format!("'{name}'"))
                || message.contains(&format!(".{name}'"))
                || message.ends_with(sqlite_columns)
                || message.contains(&format!("{sqlite_columns} "))
        })
        .map(|(name, _)| *name)
        .or(Some("unknown"))
}

/// Contention the transaction can be retried after: deadlock, lock wait timeout, SQLite busy.
pub fn is_retryable(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("1213")
        || text.contains("1205")
        || text.contains("Deadlock found")
        || text.contains("Lock wait timeout")
        || text.contains("database is locked")
        || text.contains("SQLITE_BUSY")
}

/// The database cannot serve now (unreachable, connection lost mid-statement, pool exhausted,
/// still busy after retries).
pub fn is_unavailable(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(_) | DbErr::Conn(_))
        || connection_lost(err)
        || is_retryable(err)
}

/// A statement that failed because its connection broke (the server went away or the network
/// cut it), not because of the statement.
fn connection_lost(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            **e,
            Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed
        ),
        _ => false,
    }
}

/// Whether the database answers.
pub async fn ping(db: &DatabaseConnection) -> bool {
    tokio::time::timeout(Duration::from_secs(2), db.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false)
}

/// The most rows or ids one batched statement names.
pub const MAX_LIST: usize = 64;

/// Pads a list of statement parameters (ids for `IN (…)`, `CASE` arms) with copies of its last
/// item up to the next power of two. Batches come in every size, and every distinct statement
/// text is a statement the MariaDB driver prepares and caches per connection; when its cache
/// overflows it closes one with a packet the server never answers. Under sqlx 0.9.0, which did
/// not set `TCP_NODELAY`, the next statement then waited for the server's delayed ACK — 40 ms
/// per eviction, measured as an idle machine in the middle of a sell-out; 0.9.1 sets it, and
/// each eviction still costs a statement prepared again. Powers of two keep it to seven texts
/// per statement.
pub fn padded<T: Clone>(mut items: Vec<T>) -> Vec<T> {
    if let Some(last) = items.last().cloned() {
        let size = items.len().next_power_of_two();
        items.resize(size, last);
    }
    items
}

/// Inserts rows with multi-row statements of a power-of-two number of rows, at most
/// [`MAX_LIST`] each (far below any backend's bind-parameter limit, and few distinct statement
/// texts, see [`padded`]), without reading them back.
pub async fn insert_all<E, M>(conn: &impl ConnectionTrait, rows: Vec<M>) -> AppResult<()>
where
    E: sea_orm::EntityTrait,
    M: sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: Send,
{
    let mut left = rows.len();
    let mut rows = rows.into_iter().map(M::into_active_model);
    while left > 0 {
        let size = MAX_LIST.min(1 << left.ilog2());
        let chunk: Vec<E::ActiveModel> = rows.by_ref().take(size).collect();
        left -= chunk.len();
        E::insert_many(chunk).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Executes a statement and reports whether it changed exactly one row.
pub async fn exec_one<C: ConnectionTrait>(conn: &C, stmt: sea_orm::Statement) -> AppResult<bool> {
    Ok(conn.execute_raw(stmt).await?.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::{DbErr, RuntimeErr, sqlx};

    use super::{is_unavailable, padded};

    fn failed_statement(error: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))
    }

    #[test]
    fn a_statement_whose_connection_broke_means_the_database_is_unavailable() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_unavailable(&failed_statement(sqlx::Error::Io(reset))));
        assert!(is_unavailable(&failed_statement(sqlx::Error::PoolTimedOut)));
        assert!(!is_unavailable(&failed_statement(sqlx::Error::RowNotFound)));
        assert!(!is_unavailable(&DbErr::Custom("a bug".into())));
    }

    #[test]
    fn padded_lists_grow_to_the_next_power_of_two_by_repeating_the_last_item() {
        assert_eq!(padded(Vec::<u8>::new()), Vec::<u8>::new());
        assert_eq!(padded(vec![1]), vec![1]);
        assert_eq!(padded(vec![1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(vec![7; 33]).len(), 64);
    }
}
