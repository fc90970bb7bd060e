//! Drives a scenario's virtual users under the closed or the open model.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::Cli;
use crate::recorder::{OpStats, Recorder};
use crate::report::PhaseReport;
use crate::scenario::{Scenario, Step};
use crate::schedule::Schedule;

/// How long, how hard and how wide each phase runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Number of virtual users.
    pub users: u32,
    /// Open-model arrival rate; `None` for the closed model.
    pub rate: Option<f64>,
    /// Unrecorded lead-in of each phase.
    pub warmup: Duration,
    /// Recorded part of each phase.
    pub duration: Duration,
    /// Longest wait for one step's answer.
    pub timeout: Duration,
}

impl RunConfig {
    /// Takes the load settings from the command line.
    pub fn from_cli(cli: &Cli) -> Self {
        Self {
            users: cli.users,
            rate: cli.rate,
            warmup: cli.warmup,
            duration: cli.duration,
            timeout: cli.timeout,
        }
    }
}

/// What one phase measured.
#[derive(Debug)]
pub struct PhaseResult {
    /// Statistics per operation, over the measured window only.
    pub ops: BTreeMap<&'static str, OpStats>,
    /// Open model: requests due in the measured window.
    pub scheduled: Option<u64>,
    /// The measured window over time: every second, and each operation per minute.
    pub timeline: crate::recorder::Timeline,
}

/// Instants that bound a phase.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

/// Runs one phase of `scenario` and returns what the measured window saw.
pub async fn run<S: Scenario>(scenario: Arc<S>, config: &RunConfig) -> Result<PhaseResult> {
    let users = (0..config.users as usize)
        .map(|index| scenario.user(index))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("preparing virtual users for {}", scenario.name()))?;
    let recorder = Arc::new(Recorder::default());
    let start = Instant::now();
    let window = Window {
        start,
        measure_from: start + config.warmup,
        end: start + config.warmup + config.duration,
    };
    recorder.start_timeline(window.measure_from.into_std());
    let model = match config.rate {
        Some(rate) => format!(
            "open model, {rate} req/s, at most {} in flight",
            config.users
        ),
        None => format!("closed model, {} users", config.users),
    };
    eprintln!(
        "{}: {model}; warm-up {:?}, measuring {:?}",
        scenario.name(),
        config.warmup,
        config.duration
    );

    let next_slot = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for user in users {
        let scenario = Arc::clone(&scenario);
        let recorder = Arc::clone(&recorder);
        let timeout = config.timeout;
        match config.rate {
            None => workers.spawn(closed_loop(scenario, user, recorder, window, timeout)),
            Some(rate) => workers.spawn(open_loop(
                scenario,
                user,
                recorder,
                window,
                timeout,
                Schedule::new(rate),
                Arc::clone(&next_slot),
            )),
        };
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| anyhow!("a virtual user of {} died: {e}", scenario.name()))?;
    }

    let scheduled = config.rate.map(|rate| {
        Schedule::new(rate).slots_between(config.warmup, config.warmup + config.duration)
    });
    Ok(PhaseResult {
        ops: recorder.take(),
        scheduled,
        timeline: recorder.take_timeline(),
    })
}

/// Runs one phase and reports it; a phase that cannot start is reported as unavailable.
pub async fn measure<S: Scenario>(scenario: S, config: &RunConfig) -> PhaseReport {
    let name = scenario.name();
    match run(Arc::new(scenario), config).await {
        Ok(result) => PhaseReport::measured(name, result, config.duration),
        Err(error) => PhaseReport::unavailable(name, &error),
    }
}

/// Runs every job exactly once — job `i` is virtual user `i`, doing one step — spread over
/// `workers` concurrent loops that each take the next job as soon as their previous one is done.
/// Nothing is warm-up: every step is recorded. Returns what was recorded and how long all jobs
/// took, from the first start to the last answer.
pub async fn run_each<S: Scenario>(
    scenario: Arc<S>,
    jobs: usize,
    workers: u32,
    timeout: Duration,
) -> Result<(PhaseResult, Duration)> {
    let recorder = Arc::new(Recorder::default());
    let next_job = Arc::new(AtomicUsize::new(0));
    eprintln!(
        "{}: {jobs} jobs, each once, over {workers} workers",
        scenario.name()
    );
    let start = Instant::now();
    let mut loops = JoinSet::new();
    for _ in 0..workers {
        let scenario = Arc::clone(&scenario);
        let recorder = Arc::clone(&recorder);
        let next_job = Arc::clone(&next_job);
        loops.spawn(async move {
            loop {
                let job = next_job.fetch_add(1, Ordering::Relaxed);
                if job >= jobs {
                    return Ok::<(), anyhow::Error>(());
                }
                let mut user = scenario
                    .user(job)
                    .with_context(|| format!("preparing job {job} of {}", scenario.name()))?;
                let began = Instant::now();
                let (op, outcome) = bounded_step(&*scenario, &mut user, timeout).await;
                recorder.record(op, &outcome, began.elapsed());
            }
        });
    }
    while let Some(joined) = loops.join_next().await {
        joined.map_err(|e| anyhow!("a worker of {} died: {e}", scenario.name()))??;
    }
    let elapsed = start.elapsed();
    Ok((
        PhaseResult {
            ops: recorder.take(),
            scheduled: None,
            timeline: Default::default(),
        },
        elapsed,
    ))
}

/// Closed model: the next request leaves as soon as the previous answer is in.
async fn closed_loop<S: Scenario>(
    scenario: Arc<S>,
    mut user: S::User,
    recorder: Arc<Recorder>,
    window: Window,
    timeout: Duration,
) {
    loop {
        let began = Instant::now();
        if began >= window.end {
            break;
        }
        let (op, outcome) = bounded_step(&*scenario, &mut user, timeout).await;
        if began >= window.measure_from {
            recorder.record(op, &outcome, began.elapsed());
        }
    }
}

/// Open model: each user takes the next due slot; latency counts from when the slot was due,
/// so time spent waiting for a free user is charged to the system, not silently dropped.
async fn open_loop<S: Scenario>(
    scenario: Arc<S>,
    mut user: S::User,
    recorder: Arc<Recorder>,
    window: Window,
    timeout: Duration,
    schedule: Schedule,
    next_slot: Arc<AtomicU64>,
) {
    loop {
        let due = window.start + schedule.offset(next_slot.fetch_add(1, Ordering::Relaxed));
        if due >= window.end {
            break;
        }
        tokio::time::sleep_until(due).await;
        // Starting after the end would stretch the phase; the report counts these as missed.
        if Instant::now() >= window.end {
            break;
        }
        let (op, outcome) = bounded_step(&*scenario, &mut user, timeout).await;
        if due >= window.measure_from {
            recorder.record(op, &outcome, due.elapsed());
        }
    }
}

async fn bounded_step<S: Scenario>(scenario: &S, user: &mut S::User, timeout: Duration) -> Step {
    match tokio::time::timeout(timeout, scenario.step(user)).await {
        Ok(step) => step,
        Err(_) => (
            scenario.name(),
            Err(anyhow!("no answer within {timeout:?}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Status;

    struct Sleepy;

    impl Scenario for Sleepy {
        type User = ();

        fn name(&self) -> &'static str {
            "sleepy"
        }

        fn user(&self, _index: usize) -> Result<()> {
            Ok(())
        }

        async fn step(&self, _user: &mut ()) -> Step {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ("nap", Ok(Status::Ok))
        }
    }

    fn config(rate: Option<f64>) -> RunConfig {
        RunConfig {
            users: 2,
            rate,
            warmup: Duration::from_millis(100),
            duration: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_model_sends_every_due_request() {
        let result = run(Arc::new(Sleepy), &config(Some(50.0)))
            .await
            .expect("run");
        assert_eq!(result.scheduled, Some(50));
        assert_eq!(result.ops["nap"].ok, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn open_model_charges_queueing_to_latency() {
        // Two users that take 10 ms each cannot keep up with 1000/s: latency must grow.
        let result = run(Arc::new(Sleepy), &config(Some(1000.0)))
            .await
            .expect("run");
        let stats = &result.ops["nap"];
        assert!(stats.ok < 1000);
        assert!(
            stats.latency_us.max() > 100_000,
            "max {} us",
            stats.latency_us.max()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn run_each_does_every_job_once_and_stops() {
        // Ten 10 ms jobs over three workers: four rounds.
        let (result, elapsed) = run_each(Arc::new(Sleepy), 10, 3, Duration::from_secs(1))
            .await
            .expect("run");
        assert_eq!(result.ops["nap"].ok, 10);
        assert_eq!(result.ops["nap"].count(), 10);
        assert!(
            (Duration::from_millis(40)..Duration::from_millis(45)).contains(&elapsed),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn closed_model_excludes_warmup() {
        let result = run(Arc::new(Sleepy), &config(None)).await.expect("run");
        // Two users, 10 ms per step, 1 s measured.
        let ok = result.ops["nap"].ok;
        assert!((190..=202).contains(&ok), "ok = {ok}");
        assert_eq!(result.scheduled, None);
    }
}
