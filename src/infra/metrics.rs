//! Prometheus metrics: request counts and latencies by route and status, plus domain counters.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once (the `metrics` facade is global by design).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                // Histograms (not summaries) for every duration, so instances can be aggregated.
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                    ],
                )
                .expect("non-empty bucket list")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist only in tests embedding us; then ours stays unused.
            let _ = metrics::set_global_recorder(recorder);
            keep_up(handle.clone());
            handle
        })
        .clone()
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds histogram samples into their buckets every few seconds on a thread of its own (the
/// recorder is process-wide; a task would die with the runtime that spawned it). Without it the
/// exporter keeps every sample until `/metrics` is scraped: an unscraped instance grew by about
/// 3 MiB a minute under load (the 10-minute soak), which looked like a leak.
fn keep_up(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; /metrics scrapes drain samples");
    }
}

/// Records `http_requests_total` and `http_request_duration_seconds` per route and status.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Counts a sign-up.
pub fn signup() {
    metrics::counter!("boxoffice_signups_total").increment(1);
}

/// Counts a sign-in attempt by result.
pub fn login(result: &'static str) {
    metrics::counter!("boxoffice_logins_total", "result" => result).increment(1);
}

/// Counts a mail delivery attempt by result.
pub fn mail(result: &'static str) {
    metrics::counter!("boxoffice_mails_total", "result" => result).increment(1);
}

/// Counts a token refresh by result.
pub fn refresh(result: &'static str) {
    metrics::counter!("boxoffice_token_refreshes_total", "result" => result).increment(1);
}
