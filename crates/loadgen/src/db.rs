//! Database connections: MariaDB for calibrate's scratch database, and MariaDB or SQLite for
//! reading a server's database after a run (sell-out's oversell check).

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

/// How long to wait for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for a `mysql://` URL; `mariadb://`, as the server accepts it, means the same.
pub fn mysql_options(url: &str) -> Result<MySqlConnectOptions> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_owned(),
    };
    MySqlConnectOptions::from_str(&url).with_context(|| format!("invalid MySQL URL {url:?}"))
}

/// One connection, or an error after [`CONNECT_TIMEOUT`].
pub async fn connect_mysql(options: &MySqlConnectOptions) -> Result<MySqlConnection> {
    tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(options))
        .await
        .context("connecting to MariaDB timed out")?
        .context("connecting to MariaDB")
}

/// Runs `sql` with text `binds` on one backend's connection and decodes the first column of
/// the first row as `Option<$t>` (the same code for each backend, whose types differ).
macro_rules! first_column {
    ($conn:expr, $sql:expr, $binds:expr, $t:ty) => {{
        let row = $binds
            .iter()
            .fold(sqlx::query($sql), |query, bind| query.bind(*bind))
            .fetch_optional($conn)
            .await
            .with_context(|| format!("running {}", $sql))?;
        row.map(|row| row.try_get::<Option<$t>, _>(0))
            .transpose()
            .with_context(|| format!("reading the result of {}", $sql))
            .map(Option::flatten)
    }};
}

/// A read connection to a boxoffice database, whichever backend the server uses.
pub enum Database {
    /// MariaDB / MySQL.
    MySql(MySqlConnection),
    /// SQLite, opened read-only so it cannot disturb the server's file.
    Sqlite(SqliteConnection),
}

impl Database {
    /// Connects to the server's `DATABASE_URL` (`mysql://`, `mariadb://` or `sqlite:`).
    pub async fn open(url: &str) -> Result<Self> {
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Ok(Self::MySql(connect_mysql(&mysql_options(url)?).await?));
        }
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("invalid SQLite URL {url:?}"))?
                .read_only(true)
                .create_if_missing(false);
            let conn =
                tokio::time::timeout(CONNECT_TIMEOUT, SqliteConnection::connect_with(&options))
                    .await
                    .context("opening the SQLite database timed out")?
                    .with_context(|| format!("opening {url}"))?;
            return Ok(Self::Sqlite(conn));
        }
        bail!("unsupported database URL {url:?}: use mysql://, mariadb:// or sqlite:")
    }

    /// `mariadb` or `sqlite`, for the report.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::MySql(_) => "mariadb",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The first column of the first row as an integer; `None` without a row or for NULL.
    /// Sums need `CAST(… AS SIGNED)`: MariaDB returns them as DECIMAL otherwise.
    pub async fn integer(&mut self, sql: &'static str, binds: &[&str]) -> Result<Option<i64>> {
        match self {
            Self::MySql(conn) => first_column!(conn, sql, binds, i64),
            Self::Sqlite(conn) => first_column!(conn, sql, binds, i64),
        }
    }

    /// The first column of the first row as text; `None` without a row or for NULL.
    pub async fn text(&mut self, sql: &'static str, binds: &[&str]) -> Result<Option<String>> {
        match self {
            Self::MySql(conn) => first_column!(conn, sql, binds, String),
            Self::Sqlite(conn) => first_column!(conn, sql, binds, String),
        }
    }

    /// Says goodbye; the server cleans up after a dropped socket anyway.
    pub async fn close(self) {
        let _ = match self {
            Self::MySql(conn) => conn.close().await,
            Self::Sqlite(conn) => conn.close().await,
        };
    }
}
