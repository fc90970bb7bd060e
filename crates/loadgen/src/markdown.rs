//! Renders a report as Markdown that can be pasted into BENCHMARKS.md.

use std::fmt::Write as _;

use crate::report::{OpReport, PhaseReport, Report};
use crate::sellout::SellOutSummary;

/// The whole report: a short header, one table row per operation, then notes.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail, so the fmt::Results below are ignored on purpose.
    let _ = writeln!(
        out,
        "### loadgen {} — {}\n",
        report.scenario, report.started_at
    );
    let _ = writeln!(out, "- Command: {}", code(&report.command_line));
    let machine = &report.machine;
    let _ = writeln!(
        out,
        "- Machine: {} · {} cores · {} RAM · kernel {}",
        machine.cpu_model,
        machine.cores,
        machine.memory_display(),
        machine.kernel
    );
    let load = match report.rate_per_s {
        Some(rate) => format!(
            "open model, {rate} req/s, at most {} in flight",
            report.users
        ),
        None => format!("closed model, {} users", report.users),
    };
    match &report.sell_out {
        Some(sale) => {
            let _ = write!(
                out,
                "- Load: closed model, {} workers · each of {} buyers tries once, no warm-up · {} build",
                sale.users, sale.buyers, report.build
            );
            if let Some(ceiling) = &sale.ceiling {
                let _ = write!(
                    out,
                    " · calibrate phases: {} users, warm-up {} s, measured {} s each",
                    ceiling.calibrate_users, report.warmup_s, report.duration_s
                );
            }
            out.push('\n');
        }
        None => {
            let _ = writeln!(
                out,
                "- Load: {load} · warm-up {} s · measured {} s per phase · {} build",
                report.warmup_s, report.duration_s, report.build
            );
        }
    }
    if !report.targets.is_empty() {
        let targets: Vec<String> = report.targets.iter().map(|t| code(t)).collect();
        let _ = writeln!(out, "- Targets: {}", targets.join(", "));
    }

    out.push_str(
        "\n| phase | operation | count | ok ops/s | errors | p50 ms | p90 ms | p99 ms | max ms |\n",
    );
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for phase in &report.phases {
        push_phase_rows(&mut out, phase);
    }

    for phase in &report.phases {
        push_minutes(&mut out, phase, report.duration_s);
    }

    if let Some(sale) = &report.sell_out {
        push_sell_out(&mut out, sale);
    }

    let notes = notes(report);
    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    if let Some(failure) = &report.failure {
        let _ = writeln!(out, "\n**Failed:** {}", failure);
    }
    out
}

/// The sell-out figures: outcomes, pace, ceiling and the database check.
fn push_sell_out(out: &mut String, sale: &SellOutSummary) {
    let pace = &sale.pace;
    out.push_str("\n| sell-out | value |\n|---|--:|\n");
    let mut row = |figure: String, value: String| {
        let _ = writeln!(out, "| {} | {} |", cell(&figure), cell(&value));
    };
    row(
        "tickets / buyers / workers".into(),
        format!("{} / {} / {}", sale.tickets, sale.buyers, sale.users),
    );
    row("confirmed orders".into(), sale.confirmed.to_string());
    row(
        "sold-out answers (409 `sold_out`, expected)".into(),
        sale.sold_out.to_string(),
    );
    row("failed purchases".into(), sale.failed.to_string());
    row(
        format!(
            "selling phase: first request → {} confirmed",
            if pace.sold >= u64::from(sale.tickets) {
                "last ticket"
            } else {
                "last order"
            }
        ),
        pace.selling_s.map_or("–".into(), |s| format!("{s:.3} s")),
    );
    row(
        "**confirmed orders/s, selling phase**".into(),
        format!("**{:.1}**", pace.selling_confirmed_per_s),
    );
    row(
        format!("confirmed orders/s, whole run ({:.3} s)", pace.run_s),
        format!("{:.1}", pace.overall_confirmed_per_s),
    );
    if let Some(ceiling) = &sale.ceiling {
        row(
            format!(
                "MariaDB hot-row `UPDATE`/s, calibrate in this run ({} connections)",
                ceiling.calibrate_users
            ),
            format!("{:.1}", ceiling.hot_row_updates_per_s),
        );
        row(
            "**selling-phase orders/s ÷ hot-row ceiling**".into(),
            format!("**{:.1} %**", ceiling.ratio * 100.0),
        );
    }
    match &sale.oversell {
        Some(check) => {
            let facts = &check.facts;
            row(
                format!("**oversell** (read from the {} database)", facts.backend),
                format!("**{}**", check.oversell),
            );
            row(
                "confirmed units / ticket rows / held by pending orders".into(),
                format!(
                    "{} / {} / {}",
                    facts.confirmed_units, facts.ticket_rows, facts.pending_units
                ),
            );
            row(
                "stock counter / ledger sum".into(),
                format!("{} / {}", facts.remaining, facts.ledger_sum),
            );
            if !check.problems.is_empty() {
                out.push_str("\nDatabase check problems:\n");
                for problem in &check.problems {
                    let _ = writeln!(out, "- {problem}");
                }
            }
        }
        None => row("**oversell**".into(), "not checked (see below)".into()),
    }
}

fn push_phase_rows(out: &mut String, phase: &PhaseReport) {
    if let Some(reason) = &phase.unavailable {
        let _ = writeln!(
            out,
            "| {} | unavailable: {} | – | – | – | – | – | – | – |",
            cell(&phase.name),
            cell(reason)
        );
        return;
    }
    if phase.operations.is_empty() {
        let _ = writeln!(
            out,
            "| {} | no requests completed | 0 | 0 | 0 | – | – | – | – |",
            cell(&phase.name)
        );
    }
    for op in &phase.operations {
        let latency = match op.latency_ms {
            Some(l) => [l.p50, l.p90, l.p99, l.max].map(|ms| format!("{ms:.3}")),
            None => ["–"; 4].map(str::to_owned),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} |",
            cell(&phase.name),
            cell(&op.name),
            op.count,
            op.throughput_ops_s,
            op.errors,
            latency.join(" | ")
        );
    }
}

/// A phase of two minutes or more, minute by minute: each operation's rate and p99, so a drift
/// shows in which operation it is. `measured_s` bounds the last, partial minute.
fn push_minutes(out: &mut String, phase: &PhaseReport, measured_s: f64) {
    // Steps that finish after the window (the last answers) stay in the JSON, not in the table.
    let minutes: std::collections::BTreeSet<u64> = phase
        .minutes
        .iter()
        .map(|m| m.minute)
        .filter(|&minute| (minute as f64) * 60.0 < measured_s)
        .collect();
    if minutes.len() < 2 {
        return;
    }
    let ops: Vec<&str> = phase.operations.iter().map(|o| o.name.as_str()).collect();
    let _ = write!(out, "\n{} by minute:\n\n| minute |", cell(&phase.name));
    for op in &ops {
        let _ = write!(out, " {0} ok/s | {0} p99 ms |", cell(op));
    }
    out.push_str(" errors |\n|--:|");
    out.push_str(&"--:|--:|".repeat(ops.len()));
    out.push_str("--:|\n");
    for minute in minutes {
        let seconds = (measured_s - 60.0 * minute as f64).clamp(1.0, 60.0);
        let _ = write!(out, "| {} |", minute + 1);
        let mut errors = 0;
        for op in &ops {
            match phase
                .minutes
                .iter()
                .find(|m| m.minute == minute && m.operation == *op)
            {
                Some(m) => {
                    errors += m.errors;
                    let p99 = if m.ok > 0 {
                        format!("{:.1}", m.p99)
                    } else {
                        "–".into()
                    };
                    let _ = write!(out, " {:.0} | {p99} |", m.ok as f64 / seconds);
                }
                None => out.push_str(" 0 | – |"),
            }
        }
        let _ = writeln!(out, " {errors} |");
    }
}

fn notes(report: &Report) -> Vec<String> {
    let mut notes = report.notes.clone();
    for phase in &report.phases {
        if let (Some(due), Some(missed)) = (phase.scheduled, phase.missed)
            && missed > 0
        {
            notes.push(format!(
                "{}: {missed} of {due} due requests never started (all users busy): the target rate was not sustained.",
                phase.name
            ));
        }
        for op in &phase.operations {
            if let Some(detail) = error_detail(op) {
                notes.push(format!("{} / {}: {detail}", phase.name, op.name));
            }
        }
    }
    notes
}

fn error_detail(op: &OpReport) -> Option<String> {
    let mut parts: Vec<String> = op
        .errors_by_status
        .iter()
        .map(|(status, n)| format!("{status} ×{n}"))
        .collect();
    if op.transport_errors > 0 {
        let first = op.first_transport_error.as_deref().unwrap_or("?");
        parts.push(format!(
            "transport ×{} (first: {first})",
            op.transport_errors
        ));
    }
    (!parts.is_empty()).then(|| format!("errors: {}", parts.join(", ")))
}

/// Keeps a value inside its table cell.
fn cell(text: &str) -> String {
    text.replace('|', r"\|").replace(['\r', '\n'], " ")
}

/// An inline code span that survives backticks in the text.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::report::{Latency, PhaseReport};
    use std::collections::BTreeMap;

    pub(crate) fn report() -> Report {
        Report {
            scenario: "calibrate".into(),
            command_line: "loadgen calibrate --users 8".into(),
            started_at: "2026-01-02T03:04:05Z".into(),
            build: "release",
            machine: Machine {
                cpu_model: "Test CPU".into(),
                cores: 2,
                memory_total_kib: Some(24 * 1024 * 1024),
                kernel: "6.1.0".into(),
            },
            load_model: "closed",
            users: 8,
            rate_per_s: None,
            warmup_s: 2.0,
            duration_s: 3.0,
            timeout_s: 10.0,
            targets: vec![],
            phases: vec![
                PhaseReport {
                    name: "redis_get".into(),
                    unavailable: None,
                    scheduled: None,
                    missed: None,
                    operations: vec![OpReport {
                        name: "GET".into(),
                        count: 30_002,
                        ok: 30_000,
                        throughput_ops_s: 10_000.0,
                        errors: 2,
                        errors_by_status: BTreeMap::from([("WRONGTYPE".to_owned(), 2)]),
                        transport_errors: 0,
                        first_transport_error: None,
                        latency_ms: Some(Latency {
                            p50: 0.5,
                            p90: 0.9,
                            p99: 1.25,
                            max: 7.0,
                            mean: 0.6,
                        }),
                    }],
                    timeline: Vec::new(),
                    minutes: Vec::new(),
                },
                PhaseReport::unavailable(
                    "mariadb_hot_row_update",
                    &anyhow::anyhow!("refused | down"),
                ),
            ],
            notes: vec!["shared cores".into()],
            sell_out: None,
            failure: None,
            rss_mib: Vec::new(),
        }
    }

    #[test]
    fn renders_the_sell_out_figures_and_the_failure() {
        use crate::sellout::{Ceiling, OversellCheck, Pace, StockFacts};
        let mut report = report();
        report.scenario = "sell-out".into();
        report.sell_out = Some(SellOutSummary {
            event_id: "e".into(),
            product_id: "p".into(),
            tickets: 10_000,
            buyers: 20_000,
            users: 64,
            confirmed: 10_000,
            sold_out: 9_998,
            failed: 2,
            pace: Pace {
                sold: 10_000,
                selling_s: Some(4.0),
                selling_confirmed_per_s: 2_500.0,
                run_s: 6.5,
                overall_confirmed_per_s: 1_538.46,
            },
            ceiling: Some(Ceiling {
                hot_row_updates_per_s: 8_000.0,
                calibrate_users: 16,
                ratio: 0.3125,
            }),
            oversell: Some(OversellCheck::judge(StockFacts {
                backend: "mariadb",
                tickets: 10_000,
                confirmed_units: 10_001,
                pending_units: 0,
                remaining: -1,
                ledger_sum: -1,
                ticket_rows: 10_001,
            })),
        });
        report.failure = Some("oversell check failed".into());
        let md = render(&report);
        assert!(md.contains(
            "- Load: closed model, 64 workers · each of 20000 buyers tries once, no warm-up · release build · calibrate phases: 16 users, warm-up 2 s, measured 3 s each\n"
        ));
        for row in [
            "| tickets / buyers / workers | 10000 / 20000 / 64 |",
            "| sold-out answers (409 `sold_out`, expected) | 9998 |",
            "| failed purchases | 2 |",
            "| selling phase: first request → last ticket confirmed | 4.000 s |",
            "| **confirmed orders/s, selling phase** | **2500.0** |",
            "| confirmed orders/s, whole run (6.500 s) | 1538.5 |",
            "| MariaDB hot-row `UPDATE`/s, calibrate in this run (16 connections) | 8000.0 |",
            "| **selling-phase orders/s ÷ hot-row ceiling** | **31.2 %** |",
            "| **oversell** (read from the mariadb database) | **1** |",
            "| stock counter / ledger sum | -1 / -1 |",
        ] {
            assert!(md.contains(&format!("{row}\n")), "missing {row} in\n{md}");
        }
        assert!(md.contains("- 10001 units confirmed for 10000 tickets: oversold by 1\n"));
        assert!(md.ends_with("\n**Failed:** oversell check failed\n"));
    }

    #[test]
    fn renders_a_pasteable_table() {
        let md = render(&report());
        assert!(md.contains(
            "- Load: closed model, 8 users · warm-up 2 s · measured 3 s per phase · release build\n"
        ));
        assert!(md.contains("- Machine: Test CPU · 2 cores · 24.0 GiB RAM · kernel 6.1.0"));
        assert!(md.contains(
            "| redis_get | GET | 30002 | 10000.0 | 2 | 0.500 | 0.900 | 1.250 | 7.000 |\n"
        ));
        assert!(md.contains("| mariadb_hot_row_update | unavailable: refused \\| down | – |"));
        assert!(md.contains("- redis_get / GET: errors: WRONGTYPE ×2\n"));
        assert!(md.contains("- shared cores\n"));
        // Every table row has the same number of columns as the header.
        let columns = |line: &str| line.matches('|').count() - line.matches(r"\|").count();
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|row| columns(row) == columns(rows[0])));
        assert!(
            !md.contains("by minute"),
            "a short phase has no minute table"
        );
    }

    #[test]
    fn a_long_phase_gets_each_operations_rate_and_p99_by_minute() {
        use crate::report::MinuteReport;
        let mut report = report();
        report.duration_s = 90.0;
        let phase = &mut report.phases[0];
        phase.name = "soak".into();
        let minute = |minute, operation: &str, ok, errors, p99| MinuteReport {
            minute,
            operation: operation.into(),
            ok,
            errors,
            p50: 1.0,
            p99,
        };
        phase.minutes = vec![
            minute(0, "GET", 6_000, 0, 2.0),
            minute(1, "GET", 3_000, 2, 9.25),
            // Answers that arrived after the 90 measured seconds.
            minute(2, "GET", 5, 0, 1.0),
        ];
        let md = render(&report);
        assert!(md.contains("\nsoak by minute:\n\n| minute | GET ok/s | GET p99 ms | errors |\n|--:|--:|--:|--:|\n"), "{md}");
        assert!(md.contains("| 1 | 100 | 2.0 | 0 |\n"), "{md}");
        // The last minute lasted 30 s of the 90 measured.
        assert!(md.contains("| 2 | 100 | 9.2 | 2 |\n"), "{md}");
        assert!(!md.contains("| 3 |"), "no row after the window: {md}");
    }
}
