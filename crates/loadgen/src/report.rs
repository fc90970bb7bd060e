//! The run report: its shape, how it is built from recorded stats, and where it is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::cli::Cli;
use crate::machine::Machine;
use crate::recorder::OpStats;
use crate::runner::PhaseResult;
use crate::sellout::SellOutSummary;

/// What a scenario hands back for the report.
#[derive(Debug, Default)]
pub struct RunOutput {
    /// One entry per phase, in the order they ran.
    pub phases: Vec<PhaseReport>,
    /// Caveats a reader of the numbers should know.
    pub notes: Vec<String>,
    /// The sell-out scenario's figures.
    pub sell_out: Option<SellOutSummary>,
    /// Why the run failed its own check (e.g. oversell); the report is still written, then the
    /// process exits with an error.
    pub failure: Option<String>,
    /// The server's resident memory over the run: (seconds since start, MiB).
    pub rss_mib: Vec<(u64, f64)>,
}

/// A whole run, as written to JSON and rendered to Markdown.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The command line, shell-quoted.
    pub command_line: String,
    /// Start of the run, RFC 3339 UTC to the second.
    pub started_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// `release` or `debug`: a debug loadgen understates every ceiling.
    pub build: &'static str,
    /// `closed` or `open`.
    pub load_model: &'static str,
    /// Virtual users.
    pub users: u32,
    /// Open-model arrival rate in requests per second.
    pub rate_per_s: Option<f64>,
    /// Unrecorded seconds at the start of each phase.
    pub warmup_s: f64,
    /// Recorded seconds of each phase.
    pub duration_s: f64,
    /// Seconds after which a step without an answer became a transport error.
    pub timeout_s: f64,
    /// Service instances the users were spread over.
    pub targets: Vec<String>,
    /// Per-phase results.
    pub phases: Vec<PhaseReport>,
    /// Caveats.
    pub notes: Vec<String>,
    /// The sell-out scenario's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sell_out: Option<SellOutSummary>,
    /// Why the run failed its own check, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The server's resident memory over the run: (seconds since start, MiB).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rss_mib: Vec<(u64, f64)>,
}

impl Report {
    /// Assembles the report of a finished run.
    pub fn new(
        cli: &Cli,
        command_line: String,
        started: OffsetDateTime,
        machine: Machine,
        output: RunOutput,
    ) -> Result<Self> {
        Ok(Self {
            scenario: cli.scenario.as_str().to_owned(),
            command_line,
            started_at: started
                .format(format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
                ))
                .context("formatting the start time")?,
            machine,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            load_model: if cli.rate.is_some() { "open" } else { "closed" },
            users: cli.users,
            rate_per_s: cli.rate,
            warmup_s: cli.warmup.as_secs_f64(),
            duration_s: cli.duration.as_secs_f64(),
            timeout_s: cli.timeout.as_secs_f64(),
            targets: cli.targets.clone(),
            phases: output.phases,
            notes: output.notes,
            sell_out: output.sell_out,
            failure: output.failure,
            rss_mib: output.rss_mib,
        })
    }
}

/// One phase: either measured operations or the reason it could not run.
#[derive(Debug, Serialize)]
pub struct PhaseReport {
    /// Phase name.
    pub name: String,
    /// Why the phase did not run, if it did not.
    pub unavailable: Option<String>,
    /// Open model: requests due in the measured window.
    pub scheduled: Option<u64>,
    /// Open model: due requests never started because every user was busy until the end.
    pub missed: Option<u64>,
    /// Measured operations.
    pub operations: Vec<OpReport>,
    /// Each second of the measured window (all operations together); charted as SVG.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<SecondReport>,
    /// Each operation in each minute of the measured window, minute by minute.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub minutes: Vec<MinuteReport>,
}

/// One operation in one minute of a phase.
#[derive(Debug, Serialize)]
pub struct MinuteReport {
    /// Minutes since measuring began (0 = the first minute).
    pub minute: u64,
    /// Operation name.
    pub operation: String,
    /// Successful steps in this minute.
    pub ok: u64,
    /// Failed steps in this minute.
    pub errors: u64,
    /// Median latency of the successful steps, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

/// One second of a phase.
#[derive(Debug, Serialize)]
pub struct SecondReport {
    /// Seconds since measuring began.
    pub t: u64,
    /// Successful steps in this second.
    pub ok: u64,
    /// Failed steps in this second.
    pub errors: u64,
    /// Median latency of the successful steps, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

impl PhaseReport {
    /// A phase that ran; throughput is over `measured`.
    pub fn measured(name: &str, result: PhaseResult, measured: Duration) -> Self {
        let operations: Vec<OpReport> = result
            .ops
            .iter()
            .map(|(op, stats)| OpReport::new(op, stats, measured))
            .collect();
        let started: u64 = operations.iter().map(|op| op.count).sum();
        let ms = |us: u64| us as f64 / 1000.0;
        let minutes = result
            .timeline
            .minutes
            .iter()
            .map(|((minute, op), s)| MinuteReport {
                minute: *minute,
                operation: (*op).to_owned(),
                ok: s.ok,
                errors: s.errors,
                p50: ms(s.latency_us.value_at_quantile(0.5)),
                p99: ms(s.latency_us.value_at_quantile(0.99)),
            })
            .collect();
        let timeline = result
            .timeline
            .seconds
            .iter()
            .map(|(t, s)| SecondReport {
                t: *t,
                ok: s.ok,
                errors: s.errors,
                p50: ms(s.latency_us.value_at_quantile(0.5)),
                p99: ms(s.latency_us.value_at_quantile(0.99)),
            })
            .collect();
        Self {
            name: name.to_owned(),
            unavailable: None,
            scheduled: result.scheduled,
            missed: result.scheduled.map(|due| due.saturating_sub(started)),
            operations,
            timeline,
            minutes,
        }
    }

    /// A phase that could not run.
    pub fn unavailable(name: &str, reason: &anyhow::Error) -> Self {
        Self {
            name: name.to_owned(),
            unavailable: Some(crate::error_text::describe(reason)),
            scheduled: None,
            missed: None,
            operations: Vec::new(),
            timeline: Vec::new(),
            minutes: Vec::new(),
        }
    }
}

/// Counts and latency of one operation.
#[derive(Debug, Serialize)]
pub struct OpReport {
    /// Operation name.
    pub name: String,
    /// Steps recorded (ok + errors).
    pub count: u64,
    /// Steps with the expected answer.
    pub ok: u64,
    /// Successful operations per second of measured time.
    pub throughput_ops_s: f64,
    /// Steps without the expected answer.
    pub errors: u64,
    /// Unexpected answers by status or error code.
    pub errors_by_status: BTreeMap<String, u64>,
    /// Steps with no answer.
    pub transport_errors: u64,
    /// The first transport error seen.
    pub first_transport_error: Option<String>,
    /// Latency of successful steps; absent when none succeeded.
    pub latency_ms: Option<Latency>,
}

impl OpReport {
    /// Summarises `stats` over `measured` seconds.
    pub fn new(name: &str, stats: &OpStats, measured: Duration) -> Self {
        let hist = &stats.latency_us;
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            name: name.to_owned(),
            count: stats.count(),
            ok: stats.ok,
            throughput_ops_s: stats.ok as f64 / measured.as_secs_f64(),
            errors: stats.errors(),
            errors_by_status: stats.by_status.clone(),
            transport_errors: stats.transport_errors,
            first_transport_error: stats.first_transport_error.clone(),
            latency_ms: (!hist.is_empty()).then(|| Latency {
                p50: ms(hist.value_at_quantile(0.50)),
                p90: ms(hist.value_at_quantile(0.90)),
                p99: ms(hist.value_at_quantile(0.99)),
                max: ms(hist.max()),
                mean: hist.mean() / 1000.0,
            }),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Writes `<dir>/<YYYYMMDDTHHMMSSZ>-<scenario>.json` and `.md`; returns both paths.
pub fn write(
    report: &Report,
    markdown: &str,
    dir: &Path,
    started: OffsetDateTime,
) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = started
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .context("formatting the file timestamp")?;
    let stem = dir.join(format!("{stamp}-{}", report.scenario));
    let json_path = stem.with_extension("json");
    let md_path = stem.with_extension("md");
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&md_path, markdown).with_context(|| format!("writing {}", md_path.display()))?;
    if let Some(svg) = crate::chart::render(report) {
        let svg_path = stem.with_extension("svg");
        std::fs::write(&svg_path, svg)
            .with_context(|| format!("writing {}", svg_path.display()))?;
    }
    Ok((json_path, md_path))
}
