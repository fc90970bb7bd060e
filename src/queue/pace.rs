//! The admission arithmetic of one tick, as plain functions. `lua/tick.lua` repeats it step
//! for step (same operations on the same doubles), so both backends admit the same people.

use super::room::RoomRules;

/// Waiters examined per tick when expiring slots or dropping silent waiters, so one tick stays
/// short however many went quiet at once; the rest go in the next ticks.
pub const SWEEP_LIMIT: usize = 10_000;

/// How long a per-IP join counter lives after the first join it counts.
pub const JOIN_COUNTER_TTL_MS: i64 = 24 * 3600 * 1000;

/// The rate credit after a tick at `now_ms`, before anyone is admitted.
///
/// Credit accrues from the later of the last tick and the opening, at `admit_per_second`, and
/// is capped at one second's worth: a gap (a dead leader, a slow tick) never turns into a
/// burst. Before opening and while paused there is no credit at all, so resuming starts from
/// nothing instead of releasing what accrued during the pause.
pub fn credit(rules: &RoomRules, credit: f64, last_tick_ms: Option<i64>, now_ms: i64) -> f64 {
    if rules.paused || now_ms < rules.sale_opens_at_ms {
        return 0.0;
    }
    let from = last_tick_ms.map_or(rules.sale_opens_at_ms, |last| {
        last.max(rules.sale_opens_at_ms)
    });
    let elapsed = (now_ms - from).max(0);
    let rate = f64::from(rules.admit_per_second);
    (credit + rate * elapsed as f64 / 1000.0).min(rate)
}

/// How many to admit now: whole credits, within the free capacity.
pub fn admissible(rules: &RoomRules, credit: f64, active: u64) -> u64 {
    let room = u64::from(rules.capacity).saturating_sub(active);
    // Credit is in [0, admit_per_second], so the cast cannot wrap.
    room.min(credit.floor().max(0.0) as u64)
}

/// Splits `n` admissions between the lanes: the VIP lane gets `ceil(n * vip_share)` while it has
/// waiters, and whatever one lane cannot use goes to the other. Returns `(vip, normal)`.
pub fn split(n: u64, vip_share: f64, vip_waiting: u64, normal_waiting: u64) -> (u64, u64) {
    let share = vip_share.clamp(0.0, 1.0);
    let vip_quota = ((n as f64 * share).ceil() as u64).min(n);
    let vip = vip_quota.min(vip_waiting);
    let normal = (n - vip).min(normal_waiting);
    let vip = (n - normal).min(vip_waiting);
    (vip, normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RoomRules {
        RoomRules {
            capacity: 100,
            admit_per_second: 10,
            admission_ttl_ms: 600_000,
            sale_opens_at_ms: 1_000,
            vip_share: 0.3,
            heartbeat_timeout_ms: 30_000,
            max_joins_per_ip: None,
            paused: false,
        }
    }

    #[test]
    fn credit_accrues_from_opening_and_is_capped_at_one_second() {
        let r = rules();
        assert_eq!(credit(&r, 0.0, None, 500), 0.0);
        assert_eq!(credit(&r, 0.0, None, 1_500), 5.0);
        assert_eq!(credit(&r, 0.0, Some(900), 1_100), 1.0);
        assert_eq!(credit(&r, 2.0, Some(1_000), 60_000), 10.0);
        assert_eq!(
            credit(&RoomRules { paused: true, ..r }, 9.0, Some(1_000), 2_000),
            0.0
        );
    }

    #[test]
    fn admissions_stay_within_capacity() {
        let r = rules();
        assert_eq!(admissible(&r, 7.9, 0), 7);
        assert_eq!(admissible(&r, 10.0, 97), 3);
        assert_eq!(admissible(&r, 10.0, 150), 0);
    }

    #[test]
    fn the_vip_share_is_rounded_up_and_unused_share_flows_to_the_other_lane() {
        assert_eq!(split(10, 0.3, 100, 100), (3, 7));
        assert_eq!(split(10, 0.25, 100, 100), (3, 7));
        assert_eq!(split(10, 0.3, 1, 100), (1, 9));
        assert_eq!(split(10, 0.3, 100, 2), (8, 2));
        assert_eq!(split(10, 0.0, 100, 100), (0, 10));
        assert_eq!(split(10, 1.0, 4, 100), (4, 6));
        assert_eq!(split(10, 0.3, 0, 0), (0, 0));
    }
}
