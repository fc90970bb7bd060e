//! An SVG chart of a run over time: throughput and p50/p99 latency of every phase that kept a
//! timeline, and the server's resident memory when it was sampled. Hand-written SVG, no library.

use std::fmt::Write;

use crate::report::Report;

const W: f64 = 900.0;
const H: f64 = 260.0;
const PAD: f64 = 48.0;

/// The chart, or `None` when no phase has a timeline.
pub fn render(report: &Report) -> Option<String> {
    let phases: Vec<_> = report
        .phases
        .iter()
        .filter(|p| !p.timeline.is_empty())
        .collect();
    if phases.is_empty() {
        return None;
    }
    let panels = 2 + usize::from(!report.rss_mib.is_empty());
    let height = H * panels as f64 + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{PAD}" y="24" font-size="15" font-weight="bold">{} — {}</text>
"#,
        escape(&report.scenario),
        escape(&report.started_at)
    );
    let t_max = phases
        .iter()
        .flat_map(|p| p.timeline.iter().map(|s| s.t))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let colours = ["#4338ca", "#db2777", "#059669", "#d97706"];

    // Panel 1: successful steps per second.
    let ok_max = phases
        .iter()
        .flat_map(|p| p.timeline.iter().map(|s| s.ok))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    panel(&mut svg, 40.0, "ok steps / s", ok_max, t_max);
    for (i, phase) in phases.iter().enumerate() {
        let points = phase
            .timeline
            .iter()
            .map(|s| (s.t as f64, s.ok as f64))
            .collect::<Vec<_>>();
        line(
            &mut svg,
            40.0,
            &points,
            ok_max,
            t_max,
            colours[i % 4],
            &phase.name,
        );
    }

    // Panel 2: p50 (dashed) and p99 latency.
    let lat_max = phases
        .iter()
        .flat_map(|p| p.timeline.iter().map(|s| s.p99))
        .fold(1.0_f64, f64::max);
    panel(
        &mut svg,
        40.0 + H,
        "latency ms (p99 solid, p50 dashed)",
        lat_max,
        t_max,
    );
    for (i, phase) in phases.iter().enumerate() {
        let p99 = phase
            .timeline
            .iter()
            .map(|s| (s.t as f64, s.p99))
            .collect::<Vec<_>>();
        let p50 = phase
            .timeline
            .iter()
            .map(|s| (s.t as f64, s.p50))
            .collect::<Vec<_>>();
        line(&mut svg, 40.0 + H, &p99, lat_max, t_max, colours[i % 4], "");
        dashed(&mut svg, 40.0 + H, &p50, lat_max, t_max, colours[i % 4]);
    }

    // Panel 3: the server's RSS.
    if !report.rss_mib.is_empty() {
        let rss_max = report
            .rss_mib
            .iter()
            .map(|(_, m)| *m)
            .fold(1.0_f64, f64::max);
        let points: Vec<(f64, f64)> = report
            .rss_mib
            .iter()
            .map(|(t, m)| (*t as f64, *m))
            .collect();
        panel(&mut svg, 40.0 + 2.0 * H, "server RSS MiB", rss_max, t_max);
        line(
            &mut svg,
            40.0 + 2.0 * H,
            &points,
            rss_max,
            t_max,
            "#111827",
            "RSS",
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

fn x(t: f64, t_max: f64) -> f64 {
    PAD + (W - 2.0 * PAD) * t / t_max
}

fn y(top: f64, v: f64, v_max: f64) -> f64 {
    top + H - 30.0 - (H - 50.0) * (v / v_max).min(1.0)
}

fn panel(svg: &mut String, top: f64, title: &str, v_max: f64, t_max: f64) {
    let (x0, x1) = (x(0.0, t_max), x(t_max, t_max));
    let (y0, y1) = (y(top, 0.0, v_max), y(top, v_max, v_max));
    let _ = write!(
        svg,
        r##"<text x="{PAD}" y="{:.1}" fill="#374151">{}</text>
<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y0:.1}" stroke="#9ca3af"/>
<line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="#9ca3af"/>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#6b7280">{}</text>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#6b7280">0</text>
<text x="{x1:.1}" y="{:.1}" text-anchor="end" fill="#6b7280">{} s</text>
"##,
        top + 12.0,
        escape(title),
        x0 - 4.0,
        y1 + 4.0,
        round(v_max),
        x0 - 4.0,
        y0 + 4.0,
        y0 + 16.0,
        t_max
    );
}

fn path(points: &[(f64, f64)], top: f64, v_max: f64, t_max: f64) -> String {
    points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t, t_max), y(top, *v, v_max)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn line(
    svg: &mut String,
    top: f64,
    points: &[(f64, f64)],
    v_max: f64,
    t_max: f64,
    colour: &str,
    label: &str,
) {
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
        path(points, top, v_max, t_max)
    );
    if let (false, Some((t, v))) = (label.is_empty(), points.last()) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            (x(*t, t_max) - 120.0).max(PAD),
            y(top, *v, v_max) - 6.0,
            escape(label)
        );
    }
}

fn dashed(svg: &mut String, top: f64, points: &[(f64, f64)], v_max: f64, t_max: f64, colour: &str) {
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="1" stroke-dasharray="4 3" points="{}"/>"#,
        path(points, top, v_max, t_max)
    );
}

fn round(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{PhaseReport, SecondReport};

    #[test]
    fn a_timeline_becomes_an_svg_with_throughput_latency_and_memory() {
        let mut report = crate::markdown::tests::report();
        assert!(
            render(&report).is_none(),
            "nothing to chart without a timeline"
        );
        let mut phase = PhaseReport::unavailable("soak", &anyhow::anyhow!("x"));
        phase.unavailable = None;
        phase.timeline = (0..10)
            .map(|t| SecondReport {
                t,
                ok: 100 + t,
                errors: 0,
                p50: 1.0,
                p99: 4.0 + t as f64,
            })
            .collect();
        report.phases.push(phase);
        report.rss_mib = vec![(5, 80.0), (10, 81.0)];
        let svg = render(&report).expect("a chart");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            4,
            "ok/s, p99, p50 and RSS"
        );
    }
}
