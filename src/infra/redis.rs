//! The Redis connection shared by the features that need one.

use std::time::Duration;

use redis::{Client, aio::ConnectionManager};

use crate::config::ServiceUrl;

/// A Redis connection with the key and channel prefix of this deployment (or test).
#[derive(Clone)]
pub struct RedisHandle {
    /// For dedicated connections (pub/sub).
    pub client: Client,
    /// Multiplexed, reconnecting connection for commands.
    pub conn: ConnectionManager,
    /// Prefix of every key and channel.
    pub prefix: String,
}

impl RedisHandle {
    /// Connects. A bad URL fails; an unreachable Redis is a warning: the connection is made
    /// lazily and retried, `/readyz` reports Redis `down`, and rate limits run in process
    /// meanwhile (Redis never decides whether this instance can serve).
    pub async fn connect(url: &ServiceUrl, prefix: &str) -> anyhow::Result<Self> {
        if url.scheme() == "redis+cluster" {
            anyhow::bail!("REDIS_URL: redis+cluster:// is not supported by this build yet");
        }
        let client = Client::open(url.expose())?;
        let config = || {
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(2)))
        };
        // One plain attempt first: the manager's own start retries with back-off for seconds.
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await;
        let eager = match probe {
            Ok(Ok(_)) => tokio::time::timeout(
                Duration::from_secs(5),
                ConnectionManager::new_with_config(client.clone(), config()),
            )
            .await
            .map_err(|_| "no answer within 5 s".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 2 s".to_owned()),
        };
        let conn = match eager {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(redis = %url, %error, "Redis unreachable at start; will keep trying");
                ConnectionManager::new_lazy_with_config(client.clone(), config())?
            }
        };
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
        })
    }

    /// A key under this deployment's prefix.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Whether Redis answers a PING within a second (a probe must not hang while it reconnects).
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let pong = tokio::time::timeout(
            Duration::from_secs(1),
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        matches!(pong, Ok(Ok(_)))
    }
}
