//! The waiting room's storage contract: one `WaitingRoom` trait, implemented in process
//! (`memory.rs`, the embedded default) and in Redis (`redis.rs`, one Lua script per hot call).
//!
//! Everything time- or chance-dependent comes in from Rust (`now_ms`, `random`), so both
//! backends behave identically under the injected clock and rng, and one conformance suite
//! (`conformance.rs`) runs against both.

use async_trait::async_trait;

/// Scores at or above this belong to people who joined after sale opening (FIFO by sequence);
/// scores below it are the random 52-bit draws of the pre-queue.
pub const OPEN_SCORE_BASE: u64 = 1 << 52;

/// Which line a waiter stands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Lane {
    /// Everyone.
    Normal,
    /// Users with the vip flag or on the event's VIP list.
    Vip,
}

impl Lane {
    /// Both lanes, VIP first (the order admission looks at them).
    pub const ALL: [Lane; 2] = [Lane::Vip, Lane::Normal];

    /// Short key fragment (`n` / `v`).
    pub fn tag(self) -> &'static str {
        match self {
            Lane::Normal => "n",
            Lane::Vip => "v",
        }
    }
}

/// The per-event rules a backend needs for one call (cached per instance, passed in by the
/// caller so scripts never read configuration of their own).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomRules {
    /// Shoppers admitted at once.
    pub capacity: u32,
    /// Highest admissions per second.
    pub admit_per_second: u32,
    /// Lifetime of an admission slot, from the moment of admission.
    pub admission_ttl_ms: i64,
    /// When the sale opens (ms since the epoch): joins before it get a random score, and
    /// nobody is admitted before it.
    pub sale_opens_at_ms: i64,
    /// Share of admissions reserved for the VIP lane while it has waiters (0.0–1.0).
    pub vip_share: f64,
    /// A waiter silent for this long is dropped.
    pub heartbeat_timeout_ms: i64,
    /// Joins allowed from one client IP per event (`None`: unlimited).
    pub max_joins_per_ip: Option<u32>,
    /// Paused: nobody is admitted; joins and status keep working.
    pub paused: bool,
}

/// Where someone stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// In a lane. `position` is 1-based within the lane; `None` while the pre-queue lasts
    /// (before sale opening nobody's order may leak).
    Waiting {
        /// The lane.
        lane: Lane,
        /// Exact 1-based rank in the lane, `None` before opening.
        position: Option<u64>,
        /// The member's score (for deriving `ahead` from published heads).
        score: u64,
    },
    /// Holding an admission slot until `expires_at_ms`.
    Admitted {
        /// The lane they came from.
        lane: Lane,
        /// Absolute end of the slot.
        expires_at_ms: i64,
    },
}

/// The answer to `join`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// Where the user stands now.
    pub standing: Standing,
    /// False when the user already had a place (joining twice returns the same place).
    pub new: bool,
}

/// Why a call could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// `max_joins_per_ip` reached for this IP and event.
    #[error("too many joins from this address")]
    TooManyJoins,
    /// The backend (Redis) did not answer; the HTTP layer maps this to 503 `queue_unavailable`.
    #[error("waiting room backend unavailable: {0}")]
    Unavailable(String),
}

/// Result of one admission tick for one event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tick {
    /// Users admitted in this tick, with their lane and slot expiry.
    pub admitted: Vec<(String, Lane, i64)>,
    /// Waiters dropped for missing heartbeats.
    pub abandoned: Vec<String>,
    /// Slots that ran out in this tick (no order paid in time).
    pub expired: Vec<String>,
    /// Progress to publish: per lane, the lowest waiting score (`None`: lane empty) and the
    /// number waiting.
    pub heads: Vec<(Lane, Option<u64>, u64)>,
    /// Slots active after the tick.
    pub active: u64,
    /// Admissions since the queue was created (for `ahead` arithmetic and metrics).
    pub admitted_total: u64,
}

/// Counters for the operator's view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomStats {
    /// Waiting per lane.
    pub waiting: Vec<(Lane, u64)>,
    /// Slots active now (unexpired).
    pub active: u64,
    /// Admissions since creation.
    pub admitted_total: u64,
    /// Waiters dropped for silence since creation.
    pub abandoned_total: u64,
    /// Voluntary leaves since creation.
    pub left_total: u64,
}

/// One event's queue storage. All methods are a single round trip on Redis.
#[async_trait]
pub trait WaitingRoom: Send + Sync + 'static {
    /// Puts `user` in `lane` (or returns their existing place, waiting or admitted).
    /// `random` is a 52-bit draw used as the score before opening; after opening the score is
    /// `OPEN_SCORE_BASE + per-lane sequence`. Counts the join against `ip` (only new joins).
    /// Records a heartbeat.
    #[allow(clippy::too_many_arguments)]
    async fn join(
        &self,
        event_id: &str,
        user_id: &str,
        lane: Lane,
        ip: &str,
        rules: &RoomRules,
        now_ms: i64,
        random: u64,
    ) -> Result<Joined, RoomError>;

    /// Where `user` stands (`None`: not in the queue and not admitted, e.g. dropped or
    /// expired). A waiting user's heartbeat is refreshed when older than a third of the
    /// timeout. An admitted user whose slot ran out reads as `None`.
    async fn status(
        &self,
        event_id: &str,
        user_id: &str,
        rules: &RoomRules,
        now_ms: i64,
    ) -> Result<Option<Standing>, RoomError>;

    /// Removes the user's place or admission slot. True if there was one.
    async fn leave(&self, event_id: &str, user_id: &str) -> Result<bool, RoomError>;

    /// Refreshes the heartbeat of waiters that hold open sockets (one round trip per batch).
    async fn heartbeat(
        &self,
        event_id: &str,
        user_ids: &[String],
        now_ms: i64,
    ) -> Result<(), RoomError>;

    /// One admission step: expires slots, drops waiters silent for longer than the timeout,
    /// then admits `min(capacity - active, admissible by rate since the last tick)` from the
    /// heads of the lanes, the VIP lane getting `ceil(n * vip_share)` while it has waiters and
    /// unused share going to the other lane. The rate credit is stored with the queue, so a new
    /// leader continues where the old one stopped (no burst after failover), and is capped at
    /// one second's worth. Nothing is admitted before opening or while paused.
    async fn tick(&self, event_id: &str, rules: &RoomRules, now_ms: i64)
    -> Result<Tick, RoomError>;

    /// Expiry of `user`'s active slot, if they hold one.
    async fn admission(
        &self,
        event_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, RoomError>;

    /// Ends `user`'s admission slot (order paid, canceled or expired). True if there was one.
    async fn release(&self, event_id: &str, user_id: &str) -> Result<bool, RoomError>;

    /// Operator counters.
    async fn stats(&self, event_id: &str, now_ms: i64) -> Result<RoomStats, RoomError>;

    /// Takes or keeps the cluster-wide ticker lease for `holder` (expires after `ttl_ms`
    /// unless renewed). True while `holder` leads.
    async fn lead(&self, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool, RoomError>;
}
