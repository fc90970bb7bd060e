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
// Swagger UI ships its own stylesheet and sets inline styles from script.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/// Adds CSP, `nosniff`, frame denial and referrer policy to every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let docs = req.uri().path().starts_with("/docs");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let csp = if docs { DOCS_CSP } else { API_CSP };
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

/// 404 for unknown routes.
pub async fn not_found() -> AppError {
    AppError::not_found()
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
    AppError::internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}
