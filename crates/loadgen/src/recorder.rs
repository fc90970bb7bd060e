//! Collects latencies and outcomes per operation.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::scenario::Status;

/// Highest latency the histograms resolve; anything slower is clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Everything observed for one operation.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of successful steps, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Steps that got the expected answer.
    pub ok: u64,
    /// Steps that got another answer, by label.
    pub by_status: BTreeMap<String, u64>,
    /// Steps that got no answer.
    pub transport_errors: u64,
    /// The first transport error, so a report can say what went wrong.
    pub first_transport_error: Option<String>,
}

impl OpStats {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            by_status: BTreeMap::new(),
            transport_errors: 0,
            first_transport_error: None,
        }
    }

    /// Steps that did not get the expected answer.
    pub fn errors(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.transport_errors
    }

    /// All recorded steps.
    pub fn count(&self) -> u64 {
        self.ok + self.errors()
    }
}

/// The steps of one slice of a phase's time (for reports over time).
#[derive(Debug)]
pub struct Tally {
    /// Steps that got the expected answer.
    pub ok: u64,
    /// Steps that did not.
    pub errors: u64,
    /// Latency of the successful steps, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: 0,
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 2)
                .expect("constant histogram bounds are valid"),
        }
    }

    fn add(&mut self, outcome: &anyhow::Result<Status>, latency: Duration) {
        if matches!(outcome, Ok(Status::Ok)) {
            self.ok += 1;
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_us.saturating_record(micros.max(1));
        } else {
            self.errors += 1;
        }
    }
}

/// A phase over time: all operations per second (the chart), and each operation per minute (so
/// a long run shows which operation drifted).
#[derive(Debug, Default)]
pub struct Timeline {
    /// Second since measuring began → every step finished in it.
    pub seconds: BTreeMap<u64, Tally>,
    /// (minute since measuring began, operation) → its steps finished in that minute.
    pub minutes: BTreeMap<(u64, &'static str), Tally>,
}

/// Per-operation statistics shared by all virtual users of a phase.
#[derive(Debug, Default)]
pub struct Recorder {
    ops: Mutex<BTreeMap<&'static str, OpStats>>,
    /// Where second 0 of the timeline starts; no timeline is kept until it is set.
    origin: Mutex<Option<std::time::Instant>>,
    timeline: Mutex<Timeline>,
}

impl Recorder {
    /// Counts one step; only successful steps feed the latency histogram.
    pub fn record(&self, op: &'static str, outcome: &anyhow::Result<Status>, latency: Duration) {
        self.record_in_timeline(op, outcome, latency);
        // A panicking worker cannot leave the map half-updated, so a poisoned lock is still usable.
        let mut ops = self.ops.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = ops.entry(op).or_insert_with(OpStats::new);
        match outcome {
            Ok(Status::Ok) => {
                stats.ok += 1;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                stats.latency_us.saturating_record(micros.max(1));
            }
            Ok(Status::Unexpected(label)) => {
                *stats.by_status.entry(label.clone()).or_default() += 1;
            }
            Err(error) => {
                stats.transport_errors += 1;
                if stats.first_transport_error.is_none() {
                    stats.first_transport_error = Some(crate::error_text::describe(error));
                }
            }
        }
    }

    /// Keeps a per-second timeline from `origin` on (steps are placed by when they finish).
    pub fn start_timeline(&self, origin: std::time::Instant) {
        *self.origin.lock().unwrap_or_else(PoisonError::into_inner) = Some(origin);
    }

    fn record_in_timeline(
        &self,
        op: &'static str,
        outcome: &anyhow::Result<Status>,
        latency: Duration,
    ) {
        let Some(origin) = *self.origin.lock().unwrap_or_else(PoisonError::into_inner) else {
            return;
        };
        let second = std::time::Instant::now()
            .saturating_duration_since(origin)
            .as_secs();
        let mut timeline = self.timeline.lock().unwrap_or_else(PoisonError::into_inner);
        timeline
            .seconds
            .entry(second)
            .or_insert_with(Tally::new)
            .add(outcome, latency);
        timeline
            .minutes
            .entry((second / 60, op))
            .or_insert_with(Tally::new)
            .add(outcome, latency);
    }

    /// Takes the timeline, oldest first.
    pub fn take_timeline(&self) -> Timeline {
        std::mem::take(&mut *self.timeline.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes what was recorded so far, leaving the recorder empty.
    pub fn take(&self) -> BTreeMap<&'static str, OpStats> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_ok_unexpected_and_transport() {
        let recorder = Recorder::default();
        recorder.record("op", &Ok(Status::Ok), Duration::from_micros(1500));
        recorder.record(
            "op",
            &Ok(Status::Unexpected("401".into())),
            Duration::from_millis(1),
        );
        recorder.record("op", &Err(anyhow::anyhow!("refused")), Duration::ZERO);
        recorder.record("op", &Err(anyhow::anyhow!("reset")), Duration::ZERO);
        let ops = recorder.take();
        let stats = &ops["op"];
        assert_eq!((stats.ok, stats.errors(), stats.count()), (1, 3, 4));
        assert_eq!(stats.by_status["401"], 1);
        assert_eq!(stats.first_transport_error.as_deref(), Some("refused"));
        assert_eq!(stats.latency_us.len(), 1);
        assert!(recorder.take().is_empty());
    }

    #[test]
    fn with_a_timeline_each_operation_is_also_tallied_by_minute() {
        let recorder = Recorder::default();
        recorder.record("before", &Ok(Status::Ok), Duration::from_millis(1));
        recorder.start_timeline(std::time::Instant::now());
        recorder.record("a", &Ok(Status::Ok), Duration::from_millis(2));
        recorder.record("a", &Ok(Status::Unexpected("500".into())), Duration::ZERO);
        recorder.record("b", &Ok(Status::Ok), Duration::from_millis(4));
        let timeline = recorder.take_timeline();
        assert_eq!(timeline.seconds[&0].ok + timeline.seconds[&0].errors, 3);
        let a = &timeline.minutes[&(0, "a")];
        assert_eq!((a.ok, a.errors), (1, 1));
        assert_eq!(timeline.minutes[&(0, "b")].ok, 1);
        assert!(
            !timeline.minutes.keys().any(|(_, op)| *op == "before"),
            "steps before the timeline started are not in it"
        );
    }
}
