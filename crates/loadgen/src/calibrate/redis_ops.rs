//! Raw Redis ceilings: ZADD of unique members and GET of one key over one multiplexed connection.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};

use crate::report::{PhaseReport, RunOutput};
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Status, Step};

/// Runs `redis_zadd` then `redis_get`, and deletes the keys they used.
pub async fn measure(url: &str, prefix: &str, config: &RunConfig, output: &mut RunOutput) {
    let conn = match connect(url, config.timeout).await {
        Ok(conn) => conn,
        Err(error) => {
            output
                .phases
                .push(PhaseReport::unavailable("redis_zadd", &error));
            output
                .phases
                .push(PhaseReport::unavailable("redis_get", &error));
            return;
        }
    };
    let zset_key = format!("{prefix}zset");
    let string_key = format!("{prefix}string");

    let zadd = Zadd {
        conn: conn.clone(),
        key: zset_key.clone(),
    };
    output.phases.push(runner::measure(zadd, config).await);

    let seeded: RedisResult<()> = redis::cmd("SET")
        .arg(&string_key)
        .arg("calibration value")
        .query_async(&mut conn.clone())
        .await;
    match seeded {
        Ok(()) => {
            let get = Get {
                conn: conn.clone(),
                key: string_key.clone(),
            };
            output.phases.push(runner::measure(get, config).await);
        }
        Err(error) => {
            let error = anyhow::Error::new(error).context("SET of the key to read");
            output
                .phases
                .push(PhaseReport::unavailable("redis_get", &error));
        }
    }

    let deleted: RedisResult<i64> = redis::cmd("DEL")
        .arg(&zset_key)
        .arg(&string_key)
        .query_async(&mut conn.clone())
        .await;
    if let Err(error) = deleted {
        output
            .notes
            .push(format!("could not delete the {prefix}* keys: {error}"));
    }
}

async fn connect(url: &str, timeout: Duration) -> Result<ConnectionManager> {
    let client = Client::open(url).with_context(|| format!("invalid Redis URL {url:?}"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    let connecting = ConnectionManager::new_with_config(client, config);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .context("connecting to Redis timed out")?
        .with_context(|| format!("connecting to Redis at {url}"))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .context("PING")?;
    Ok(conn)
}

/// Error replies are answers (labelled by their code); anything else means no answer.
fn outcome<T>(result: RedisResult<T>, check: impl FnOnce(T) -> Status) -> Result<Status> {
    match result {
        Ok(value) => Ok(check(value)),
        Err(error) => match error.code() {
            Some(code) => Ok(Status::Unexpected(code.to_owned())),
            None => Err(error.into()),
        },
    }
}

/// `ZADD key n user:n`, so every call adds a new member and the set keeps growing like a real queue.
struct Zadd {
    conn: ConnectionManager,
    key: String,
}

/// A ZADD user's connection handle and member counter.
struct ZaddUser {
    conn: ConnectionManager,
    index: usize,
    next: u64,
}

impl Scenario for Zadd {
    type User = ZaddUser;

    fn name(&self) -> &'static str {
        "redis_zadd"
    }

    fn user(&self, index: usize) -> Result<ZaddUser> {
        Ok(ZaddUser {
            conn: self.conn.clone(),
            index,
            next: 0,
        })
    }

    async fn step(&self, user: &mut ZaddUser) -> Step {
        user.next += 1;
        let member = format!("{}:{}", user.index, user.next);
        let added: RedisResult<i64> = redis::cmd("ZADD")
            .arg(&self.key)
            .arg(user.next)
            .arg(member)
            .query_async(&mut user.conn)
            .await;
        let check = |added| match added {
            1 => Status::Ok,
            n => Status::Unexpected(format!("added {n}")),
        };
        ("ZADD", outcome(added, check))
    }
}

/// `GET key` of one small string.
struct Get {
    conn: ConnectionManager,
    key: String,
}

impl Scenario for Get {
    type User = ConnectionManager;

    fn name(&self) -> &'static str {
        "redis_get"
    }

    fn user(&self, _index: usize) -> Result<ConnectionManager> {
        Ok(self.conn.clone())
    }

    async fn step(&self, conn: &mut ConnectionManager) -> Step {
        let value: RedisResult<Option<Vec<u8>>> =
            redis::cmd("GET").arg(&self.key).query_async(conn).await;
        let check = |value: Option<Vec<u8>>| match value {
            Some(_) => Status::Ok,
            None => Status::Unexpected("nil".to_owned()),
        };
        ("GET", outcome(value, check))
    }
}
