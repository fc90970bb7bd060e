//! How fast the tickets sold: over the selling phase and over the whole run.

use std::time::Duration;

use serde::Serialize;

/// Confirmed orders per second, two ways.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pace {
    /// Orders confirmed by the end of the selling phase (at most the tickets on sale).
    pub sold: u64,
    /// Seconds from the first request to the confirmation that sold the last ticket — or to the
    /// last confirmation, when not every ticket sold; `None` when nothing was confirmed.
    pub selling_s: Option<f64>,
    /// `sold` / `selling_s`: the rate buyers got tickets while there were tickets.
    pub selling_confirmed_per_s: f64,
    /// Seconds from the first request until every buyer had made their attempt.
    pub run_s: f64,
    /// All confirmed orders over `run_s`, sold-out answers included in the time.
    pub overall_confirmed_per_s: f64,
}

/// Computes the pace from when each order was confirmed (offsets from the first request, in
/// any order), the tickets on sale, and how long the whole run took.
pub fn pace(confirmations: &[Duration], tickets: u64, run: Duration) -> Pace {
    let mut sorted = confirmations.to_vec();
    sorted.sort_unstable();
    let sold = (sorted.len() as u64).min(tickets);
    let selling_end = sold
        .checked_sub(1)
        .and_then(|last| sorted.get(usize::try_from(last).ok()?))
        .copied();
    let per_s = |count: u64, over: Duration| {
        if over.is_zero() {
            0.0
        } else {
            count as f64 / over.as_secs_f64()
        }
    };
    Pace {
        sold,
        selling_s: selling_end.map(|end| end.as_secs_f64()),
        selling_confirmed_per_s: selling_end.map_or(0.0, |end| per_s(sold, end)),
        run_s: run.as_secs_f64(),
        overall_confirmed_per_s: per_s(sorted.len() as u64, run),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn selling_phase_ends_with_the_last_ticket() {
        // Four tickets; the fourth confirmation (in time, not in arrival order) is at 2 s.
        let confirmations = ms(&[1500, 500, 2000, 1000]);
        let pace = pace(&confirmations, 4, Duration::from_secs(4));
        assert_eq!(pace.sold, 4);
        assert_eq!(pace.selling_s, Some(2.0));
        assert!((pace.selling_confirmed_per_s - 2.0).abs() < 1e-9);
        assert!((pace.overall_confirmed_per_s - 1.0).abs() < 1e-9);
    }

    #[test]
    fn confirmations_beyond_the_tickets_do_not_stretch_the_selling_phase() {
        // An oversold run: the fifth confirmation does not belong to the selling phase.
        let pace = pace(&ms(&[100, 200, 300, 5000]), 3, Duration::from_secs(5));
        assert_eq!(pace.sold, 3);
        assert_eq!(pace.selling_s, Some(0.3));
        assert!((pace.overall_confirmed_per_s - 0.8).abs() < 1e-9);
    }

    #[test]
    fn unsold_tickets_end_the_phase_at_the_last_confirmation_and_none_means_zero() {
        let partial = pace(&ms(&[250, 500]), 10, Duration::from_secs(1));
        assert_eq!((partial.sold, partial.selling_s), (2, Some(0.5)));
        assert!((partial.selling_confirmed_per_s - 4.0).abs() < 1e-9);
        let none = pace(&[], 10, Duration::from_secs(1));
        assert_eq!((none.sold, none.selling_s), (0, None));
        assert_eq!(none.selling_confirmed_per_s, 0.0);
        assert_eq!(none.overall_confirmed_per_s, 0.0);
    }
}
