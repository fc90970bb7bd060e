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

/// Per-operation statistics shared by all virtual users of a phase.
#[derive(Debug, Default)]
pub struct Recorder {
    ops: Mutex<BTreeMap<&'static str, OpStats>>,
}

impl Recorder {
    /// Counts one step; only successful steps feed the latency histogram.
    pub fn record(&self, op: &'static str, outcome: &anyhow::Result<Status>, latency: Duration) {
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
}
