//! The Redis connection shared by the features that need one.

use std::time::Duration;

use redis::{
    Client, Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

use crate::config::ServiceUrl;

/// A Redis connection with the key and channel prefix of this deployment (or test).
#[derive(Clone)]
pub struct RedisHandle {
    /// For dedicated connections (pub/sub).
    pub client: Client,
    /// Multiplexed, reconnecting connection for commands (one server or a cluster).
    pub conn: RedisConn,
    /// Prefix of every key and channel.
    pub prefix: String,
}

impl RedisHandle {
    /// Connects. A bad URL fails; an unreachable Redis is a warning: the connection is made
    /// lazily and retried, `/readyz` reports Redis `down`, and rate limits run in process
    /// meanwhile (Redis never decides whether this instance can serve).
    pub async fn connect(url: &ServiceUrl, prefix: &str) -> anyhow::Result<Self> {
        if url.scheme() == "redis+cluster" {
            return Self::connect_cluster(url, prefix).await;
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
            conn: RedisConn::Single(conn),
            prefix: prefix.to_owned(),
        })
    }

    /// `redis+cluster://[user:pass@]h1:p1,h2:p2,...`: commands go through a cluster connection
    /// that follows slots and redirects; pub/sub uses one node (cluster pub/sub reaches every
    /// node). Every multi-key script keeps its keys in one slot (the queue's `{ev:ID}` tag).
    async fn connect_cluster(url: &ServiceUrl, prefix: &str) -> anyhow::Result<Self> {
        let nodes = cluster_nodes(url.expose())?;
        let cluster = ClusterClient::builder(nodes.clone())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()?;
        let conn = tokio::time::timeout(Duration::from_secs(5), cluster.get_async_connection())
            .await
            .map_err(|_| anyhow::anyhow!("REDIS_URL: the cluster did not answer within 5 s"))?
            .map_err(|e| anyhow::anyhow!("REDIS_URL: cannot reach the cluster: {e}"))?;
        let first = nodes
            .first()
            .ok_or_else(|| anyhow::anyhow!("REDIS_URL: no cluster nodes"))?;
        Ok(Self {
            client: Client::open(first.as_str())?,
            conn: RedisConn::Cluster(conn),
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

/// A command connection to one Redis or to a Redis Cluster.
#[derive(Clone)]
pub enum RedisConn {
    /// One server (reconnecting).
    Single(ConnectionManager),
    /// A cluster (slot-aware, follows redirects).
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The node URLs of `redis+cluster://[user:pass@]h1:p1,h2:p2` (`rediss+cluster://` is not offered).
fn cluster_nodes(raw: &str) -> anyhow::Result<Vec<String>> {
    let rest = raw
        .strip_prefix("redis+cluster://")
        .ok_or_else(|| anyhow::anyhow!("REDIS_URL: expected redis+cluster://"))?;
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.split(['/', '?']).next().unwrap_or_default();
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}"))
        .collect();
    if nodes.is_empty() {
        anyhow::bail!("REDIS_URL: redis+cluster:// names no nodes");
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_every_node_with_the_same_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/").unwrap(),
            vec!["redis://u:p@10.0.0.1:7000", "redis://u:p@10.0.0.2:7001"]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000").unwrap(),
            vec!["redis://127.0.0.1:7000"]
        );
        assert!(cluster_nodes("redis+cluster://").is_err());
    }
}
