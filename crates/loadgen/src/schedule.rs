//! Fixed-interval arrival times of the open model.

use std::time::Duration;

/// Request slot `k` is due `k / rate` seconds after the phase starts.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
}

impl Schedule {
    /// A schedule of `rate` requests per second; the CLI guarantees it is positive and finite.
    pub fn new(rate: f64) -> Self {
        Self { rate }
    }

    /// When slot `k` is due, relative to the start of the phase.
    pub fn offset(&self, slot: u64) -> Duration {
        // Computed from the slot number rather than accumulated, so rounding never drifts.
        Duration::from_secs_f64(slot as f64 / self.rate)
    }

    /// How many slots are due in `[from, to)`.
    pub fn slots_between(&self, from: Duration, to: Duration) -> u64 {
        self.first_slot_at_or_after(to)
            .saturating_sub(self.first_slot_at_or_after(from))
    }

    fn first_slot_at_or_after(&self, at: Duration) -> u64 {
        // The float estimate can be off by one at exact boundaries; settle it with `offset`,
        // the same function the runner uses, so the counts agree with what was sent.
        let mut slot = (at.as_secs_f64() * self.rate).ceil() as u64;
        while slot > 0 && self.offset(slot - 1) >= at {
            slot -= 1;
        }
        while self.offset(slot) < at {
            slot += 1;
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_evenly_spaced() {
        let schedule = Schedule::new(4.0);
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_millis(250));
        assert_eq!(schedule.offset(10), Duration::from_millis(2500));
    }

    #[test]
    fn counts_slots_in_half_open_windows() {
        let schedule = Schedule::new(10.0);
        let s = Duration::from_secs;
        assert_eq!(schedule.slots_between(s(0), s(1)), 10);
        assert_eq!(schedule.slots_between(s(2), s(5)), 30);
        assert_eq!(schedule.slots_between(s(0), s(0)), 0);
        let odd = Schedule::new(3.0);
        assert_eq!(
            odd.slots_between(s(0), s(2)) + odd.slots_between(s(2), s(7)),
            21
        );
        assert_eq!(odd.slots_between(Duration::from_millis(100), s(1)), 2);
    }
}
