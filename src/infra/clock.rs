//! Time comes from an injected clock so tests can control it.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// A source of the current time (UTC, microsecond precision).
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_micros(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock standing at the given time.
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(truncate_micros(at)))
    }
    /// A clock standing at the current real time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Both databases keep microseconds; anything finer would not round-trip.
pub fn truncate_micros(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.microsecond();
    t.replace_nanosecond(micros * 1000).unwrap_or(t)
}

/// Converts to the UTC wall time stored in the database.
pub fn to_db(t: OffsetDateTime) -> PrimitiveDateTime {
    let utc = t.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// Converts a stored UTC wall time back.
pub fn from_db(t: PrimitiveDateTime) -> OffsetDateTime {
    t.assume_utc()
}

/// Serde helpers writing RFC 3339 UTC.
pub use time::serde::rfc3339;
