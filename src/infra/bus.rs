//! Pub/sub between instances: in process, or through Redis when configured.

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use tokio::sync::broadcast;

use crate::infra::redis::RedisHandle;

/// One message on a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Channel name without the deployment prefix.
    pub channel: String,
    /// Payload.
    pub payload: String,
}

/// Channel carrying revoked session ids.
pub const SESSION_REVOKED: &str = "session.revoked";

/// Publishes to every instance; each instance fans messages out to local subscribers.
#[derive(Clone)]
pub struct Bus {
    local: broadcast::Sender<Message>,
    redis: Option<RedisHandle>,
}

impl Bus {
    /// A bus that reaches this process only.
    pub fn memory() -> Self {
        let (local, _) = broadcast::channel(1024);
        Self { local, redis: None }
    }

    /// A bus over Redis pub/sub; a background task keeps the subscription alive.
    pub fn redis(handle: RedisHandle) -> Self {
        let (local, _) = broadcast::channel(1024);
        let bus = Self {
            local: local.clone(),
            redis: Some(handle.clone()),
        };
        tokio::spawn(subscribe_forever(handle, local));
        bus
    }

    /// Sends a message to every instance (this one included).
    pub async fn publish(&self, channel: &str, payload: &str) -> anyhow::Result<()> {
        match &self.redis {
            None => {
                // No receivers is not an error: nobody listens yet.
                let _ = self.local.send(Message {
                    channel: channel.to_owned(),
                    payload: payload.to_owned(),
                });
                Ok(())
            }
            Some(handle) => {
                let mut conn = handle.conn.clone();
                let _: i64 = conn.publish(handle.key(channel), payload).await?;
                Ok(())
            }
        }
    }

    /// Receives every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.local.subscribe()
    }
}

async fn subscribe_forever(handle: RedisHandle, local: broadcast::Sender<Message>) {
    let pattern = format!("{}*", handle.prefix);
    loop {
        match handle.client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.psubscribe(&pattern).await {
                    tracing::warn!(error = %e, "redis psubscribe failed");
                } else {
                    let mut stream = pubsub.on_message();
                    while let Some(msg) = stream.next().await {
                        let channel = msg.get_channel_name();
                        let Some(channel) = channel.strip_prefix(&handle.prefix) else {
                            continue;
                        };
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        let _ = local.send(Message {
                            channel: channel.to_owned(),
                            payload,
                        });
                    }
                    tracing::warn!("redis pub/sub connection closed; reconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "redis pub/sub connect failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
