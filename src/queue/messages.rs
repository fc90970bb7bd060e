//! What instances tell each other about queues over the bus, and what sockets are sent.

use serde::{Deserialize, Serialize};

use super::room::Lane;

/// Once a second per event from the ticker: heads, counts and totals.
pub const PROGRESS: &str = "queue.progress";
/// Immediately after a tick that admitted someone.
pub const ADMITTED: &str = "queue.admitted";
/// Users whose place or slot ended (expired, dropped for silence, left, released by an order).
pub const GONE: &str = "queue.gone";
/// Wait-time samples an instance observed (admitted users whose join time it knew).
pub const WAITS: &str = "queue.waits";

/// One event's progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The event.
    pub event_id: String,
    /// Per lane: lowest waiting score (`None`: empty) and number waiting.
    pub heads: Vec<(Lane, Option<u64>, u64)>,
    /// Admissions since the queue was created.
    pub admitted_total: u64,
    /// Slots active now.
    pub active: u64,
    /// Admission paused.
    pub paused: bool,
    /// The sale has opened (positions are shown).
    pub open: bool,
    /// Expected admissions per second, VIP lane then normal lane (for `eta_seconds`).
    pub lane_rates: (f64, f64),
    /// Admissions per second over the last 10 seconds.
    pub rate: f64,
}

impl Progress {
    /// Expected admissions per second of a lane.
    pub fn lane_rate(&self, lane: Lane) -> f64 {
        match lane {
            Lane::Vip => self.lane_rates.0,
            Lane::Normal => self.lane_rates.1,
        }
    }

    /// Head score and count of a lane.
    pub fn head(&self, lane: Lane) -> (Option<u64>, u64) {
        self.heads
            .iter()
            .find(|(l, _, _)| *l == lane)
            .map(|(_, h, n)| (*h, *n))
            .unwrap_or((None, 0))
    }
}

/// Users admitted in one tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Admitted {
    /// The event.
    pub event_id: String,
    /// User, lane and slot expiry (ms).
    pub users: Vec<(String, Lane, i64)>,
}

/// Why a place or slot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// The admission slot ran out.
    Expired,
    /// Silent for longer than the heartbeat timeout.
    Abandoned,
    /// Left voluntarily.
    Left,
    /// The slot was used up by an order (paid, canceled or expired).
    Released,
}

impl GoneReason {
    /// The `reason` of a `closed` socket message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Abandoned => "abandoned",
            Self::Left => "left",
            Self::Released => "released",
        }
    }
}

/// Users whose place or slot ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gone {
    /// The event.
    pub event_id: String,
    /// The users.
    pub users: Vec<String>,
    /// Why.
    pub reason: GoneReason,
}

/// Wait-time samples (ms from joining, or from the sale opening for the pre-queue, to
/// admission).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waits {
    /// The event.
    pub event_id: String,
    /// Samples in ms.
    pub samples: Vec<u64>,
}

/// A message to a socket.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Push {
    /// The member's position moved.
    Position {
        /// 1-based position in the lane.
        position: u64,
        /// People ahead.
        ahead: u64,
        /// Estimated seconds until admission.
        eta_seconds: Option<u64>,
    },
    /// Admitted: check out with this token until it expires.
    Admitted {
        /// Send as `X-Admission-Token` on `POST /orders`.
        admission_token: String,
        /// End of the slot (RFC 3339).
        admission_expires_at: String,
    },
    /// Admission is paused.
    Paused,
    /// The admission slot ran out.
    Expired,
    /// The socket is closing.
    Closed {
        /// `shutdown`, `left`, `abandoned`, `released`, `not_in_queue`, `queue_disabled`.
        reason: String,
    },
}

impl Push {
    /// The JSON text sent.
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// ETA in whole seconds for `ahead` people at `rate` per second.
pub fn eta(ahead: u64, rate: f64) -> Option<u64> {
    (rate > 0.0).then(|| (ahead as f64 / rate).ceil() as u64)
}
