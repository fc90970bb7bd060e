//! MariaDB hot-row ceiling: every worker decrements the same row, as a sold-out rush would.

use anyhow::{Context, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::{Connection, raw_sql};

use crate::db;
use crate::report::{PhaseReport, RunOutput};
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Status, Step};

pub(crate) const PHASE: &str = "mariadb_hot_row_update";
const DATABASE: &str = "loadgen_calibrate";
/// Large enough that no run can exhaust it, so every UPDATE must affect exactly one row.
const INITIAL_STOCK: i64 = i64::MAX / 2;

/// Creates the scratch database, hammers the hot row, and drops the database again.
pub async fn measure(url: &str, config: &RunConfig, output: &mut RunOutput) {
    let server = match db::mysql_options(url) {
        Ok(options) => options,
        Err(error) => {
            output.phases.push(PhaseReport::unavailable(PHASE, &error));
            return;
        }
    };
    let mut admin = match db::connect_mysql(&server).await {
        Ok(conn) => conn,
        Err(error) => {
            output.phases.push(PhaseReport::unavailable(PHASE, &error));
            return;
        }
    };

    let phase = match prepare(&mut admin, &server, config).await {
        Ok(pool) => {
            let report = runner::measure(HotRow { pool: pool.clone() }, config).await;
            pool.close().await;
            report
        }
        Err(error) => PhaseReport::unavailable(PHASE, &error),
    };
    output.phases.push(phase);

    if let Err(error) = raw_sql("DROP DATABASE IF EXISTS loadgen_calibrate")
        .execute(&mut admin)
        .await
    {
        output.notes.push(format!(
            "could not drop the scratch database {DATABASE}: {error}"
        ));
    }
    // The server cleans up after a dropped socket anyway, so a failed goodbye changes nothing.
    let _ = admin.close().await;
}

/// Makes a fresh database with the one-row table, and a pool of one connection per user.
async fn prepare(
    admin: &mut MySqlConnection,
    server: &MySqlConnectOptions,
    config: &RunConfig,
) -> Result<MySqlPool> {
    raw_sql("DROP DATABASE IF EXISTS loadgen_calibrate")
        .execute(&mut *admin)
        .await
        .context("dropping a leftover scratch database")?;
    raw_sql("CREATE DATABASE loadgen_calibrate")
        .execute(&mut *admin)
        .await
        .context("creating the scratch database")?;

    let pool = MySqlPoolOptions::new()
        .max_connections(config.users)
        .min_connections(config.users)
        // One fixed set of connections for the whole measurement: no reaper task closing or
        // opening any (and sqlx 0.9.0's could spin a core under churn, sqlx#3645).
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(config.timeout)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // boxoffice runs its write transactions at READ COMMITTED; calibrate under the same rules.
                raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .connect_with(server.clone().database(DATABASE))
        .await
        .context("opening the connection pool")?;

    raw_sql("CREATE TABLE stock (id INT PRIMARY KEY, remaining BIGINT NOT NULL) ENGINE=InnoDB")
        .execute(&pool)
        .await
        .context("creating the stock table")?;
    sqlx::query("INSERT INTO stock (id, remaining) VALUES (1, ?)")
        .bind(INITIAL_STOCK)
        .execute(&pool)
        .await
        .context("inserting the hot row")?;
    Ok(pool)
}

/// Autocommit decrement of one shared row.
struct HotRow {
    pool: MySqlPool,
}

impl Scenario for HotRow {
    type User = MySqlPool;

    fn name(&self) -> &'static str {
        PHASE
    }

    fn user(&self, _index: usize) -> Result<MySqlPool> {
        Ok(self.pool.clone())
    }

    async fn step(&self, pool: &mut MySqlPool) -> Step {
        let updated = sqlx::query(
            "UPDATE stock SET remaining = remaining - 1 WHERE id = 1 AND remaining > 0",
        )
        .execute(&*pool)
        .await;
        let outcome = match updated {
            Ok(done) if done.rows_affected() == 1 => Ok(Status::Ok),
            Ok(done) => Ok(Status::Unexpected(format!(
                "affected {} rows",
                done.rows_affected()
            ))),
            // Deadlocks and lock-wait timeouts are answers from the server; label them by code.
            Err(sqlx::Error::Database(db)) => Ok(Status::Unexpected(
                db.code()
                    .map_or_else(|| "database error".to_owned(), |c| c.into_owned()),
            )),
            Err(error) => Err(error.into()),
        };
        ("UPDATE hot row", outcome)
    }
}
