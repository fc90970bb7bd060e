//! The waiting room: a fair queue per event with a VIP lane, live positions over WebSocket,
//! abandonment detection and admission by capacity and rate, enforced at checkout.

pub mod admin;
pub mod buyer;
pub mod challenge;
pub mod gate;
pub mod handlers;
pub mod hub;
pub mod instance;
pub mod memory;
pub mod messages;
pub mod pace;
pub mod ranked;
pub mod redis;
pub mod room;
pub mod settings;
pub mod ticker;
pub mod tokens;
pub mod ws;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::watch;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::infra::redis::RedisHandle;

pub use memory::MemoryRoom;
pub use redis::RedisRoom;
pub use room::WaitingRoom;

/// The waiting room backend for this deployment: Redis when configured, else in process.
pub fn build(redis: Option<&RedisHandle>) -> Arc<dyn WaitingRoom> {
    match redis {
        Some(handle) => Arc::new(RedisRoom::new(handle.clone())),
        None => Arc::new(MemoryRoom::new()),
    }
}

/// The waiting room's per-instance parts, held in the application state.
pub struct Queue {
    /// The shared queue storage.
    pub room: Arc<dyn WaitingRoom>,
    /// Cached per-event rules.
    pub rules: settings::RulesCache,
    /// This instance's sockets.
    pub hub: hub::Hub,
    /// What a join must prove first.
    pub challenge: Arc<dyn challenge::ChallengeProvider>,
    /// This instance's name in the ticker lease.
    pub holder: String,
    /// Whether this instance holds the ticker lease now.
    pub leader: AtomicBool,
    /// Set when queue settings changed, so the ticker re-reads the enabled events.
    pub events_dirty: AtomicBool,
    /// Users whose wait this instance already recorded (status calls repeat).
    pub waits_seen: moka::sync::Cache<String, ()>,
    /// Socket ticket nonces already used, when there is no Redis.
    used_tickets: moka::sync::Cache<String, ()>,
    redis: Option<RedisHandle>,
    shutdown: watch::Sender<bool>,
}

impl Queue {
    /// The queue parts over a storage backend.
    pub fn new(
        room: Arc<dyn WaitingRoom>,
        redis: Option<RedisHandle>,
        challenge: Arc<dyn challenge::ChallengeProvider>,
    ) -> Self {
        Self {
            room,
            rules: Default::default(),
            hub: Default::default(),
            challenge,
            holder: uuid::Uuid::now_v7().to_string(),
            leader: AtomicBool::new(false),
            events_dirty: AtomicBool::new(false),
            waits_seen: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(Duration::from_secs(7200))
                .build(),
            used_tickets: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            redis,
            shutdown: watch::channel(false).0,
        }
    }

    /// Whether this instance runs the admission ticker now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Resolves when the queue shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Whether `shut_down` has begun: no new sockets from then on.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Stops the ticker and the loops and closes every socket with `{type: "closed", reason:
    /// "shutdown"}`; waits (up to 2 s) for the sockets to say goodbye.
    pub async fn shut_down(&self) {
        self.shutdown.send_replace(true);
        self.leader.store(false, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.hub.open_sockets() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Marks a socket ticket used; false if it was used before (on any instance, with Redis).
    pub async fn consume_ticket(&self, nonce: &str, ttl_ms: i64) -> Result<bool, room::RoomError> {
        match &self.redis {
            None => {
                let entry = self.used_tickets.entry(nonce.to_owned()).or_insert(());
                Ok(entry.is_fresh())
            }
            Some(redis) => {
                let mut conn = redis.conn.clone();
                let set: Option<String> = ::redis::cmd("SET")
                    .arg(redis.key(&format!("queue:ws-ticket:{nonce}")))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms.max(1))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| room::RoomError::Unavailable(e.to_string()))?;
                Ok(set.is_some())
            }
        }
    }
}

/// Starts the ticker and the per-instance loops.
pub fn start(state: &crate::app::AppState) {
    tokio::spawn(ticker::run(state.clone()));
    tokio::spawn(instance::listen(state.clone()));
    tokio::spawn(instance::maintain(state.clone()));
}

/// The buyer, organizer and operator routes of the waiting room.
pub fn router() -> OpenApiRouter<crate::app::AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::put_queue, handlers::get_queue))
        .routes(routes!(handlers::pause))
        .routes(routes!(handlers::resume))
        .routes(routes!(handlers::put_vips))
        .routes(routes!(handlers::join))
        .routes(routes!(handlers::status))
        .routes(routes!(handlers::leave))
        .routes(routes!(handlers::socket_ticket))
        .routes(routes!(ws::socket))
        // The same socket over HTTP/2 opens with an extended CONNECT (RFC 8441).
        .route(
            "/queue/ws",
            axum::routing::on(axum::routing::MethodFilter::CONNECT, ws::socket),
        )
        .routes(routes!(handlers::stats))
}

/// Raises this process's open-file limit to its hard limit: every socket is a descriptor.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}
