//! Cross-cutting middleware: security headers, panics, fallbacks.

use std::any::Any;

use axum::{
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::AppError;

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// Pages: every script and style from us (images also from organizers' https poster URLs); no inline script or style; fetch and the
/// waiting room's WebSocket to us only.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; font-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
// Swagger UI ships its own stylesheet and sets inline styles from script.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/// Adds CSP, `nosniff`, frame denial and referrer policy to every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let csp = if path.starts_with("/docs") {
        DOCS_CSP
    } else if crate::web::errors::is_page_path(path) || path.starts_with("/static/") {
        PAGE_CSP
    } else {
        API_CSP
    };
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(csp));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    response
}

/// Marks the 404 of a path no route knows, so a browser asking for it gets the friendly page.
#[derive(Clone, Copy, Debug)]
pub struct Unrouted;

/// 404 for unknown routes.
pub async fn not_found() -> Response {
    let mut response = AppError::not_found().into_response();
    response.extensions_mut().insert(Unrouted);
    response
}

/// 405 for a known route with the wrong method.
pub async fn method_not_allowed(method: Method) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here."),
    )
}

/// A panic becomes a 500 problem (and is logged), never a dropped connection.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    metrics::counter!("boxoffice_panics_total").increment(1);
    AppError::internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}
