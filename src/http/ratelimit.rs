//! Per-IP rate limits on every API request, with `RateLimit-*` headers on the answer.

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    app::AppState,
    http::ClientIp,
    infra::ratelimit::{Decision, limits},
};

/// Infrastructure and documentation are never limited: probes and scrapers must always get
/// through, and they cost nothing worth protecting.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
        || path.starts_with("/docs")
        || path.starts_with("/static/")
}

/// The general per-IP limit (in process) on every API route, plus the stricter shared per-IP
/// limit on `POST /auth/*`. Answers 429 `rate_limited` when over; otherwise passes the request
/// on and describes the tightest limit that applied in `RateLimit-*`.
pub async fn limit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
    next: Next,
) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(api) = state.limits.check_api(ip) else {
        return next.run(req).await;
    };
    if !api.allowed {
        return refuse("api", &api);
    }
    let mut applied = api;
    // Every unsafe /auth/* request (sign-in, codes, password change, account deletion) costs
    // a hash or a code try, so all of them share the stricter limit.
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.uri().path().starts_with("/auth/")
        && let Some(auth) = state.limits.check_auth(ip).await
    {
        if !auth.allowed {
            return refuse("auth", &auth);
        }
        applied = applied.tighter(auth);
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in limits::headers(&applied) {
        // A handler's own limit (per account) already described itself: keep it.
        headers.entry(name).or_insert(value);
    }
    response
}

fn refuse(limit: &'static str, decision: &Decision) -> Response {
    metrics::counter!("boxoffice_rate_limited_total", "limit" => limit).increment(1);
    limits::refusal(decision).into_response()
}
