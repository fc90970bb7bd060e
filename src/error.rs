//! One error type for every handler, rendered as `application/problem+json`.

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The result of anything that can fail with an API error.
pub type AppResult<T> = Result<T, AppError>;

/// One invalid field of a request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON field name.
    pub field: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The problem+json body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Invalid fields, for `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members of specific problems (e.g. `link_token`), at the top level.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// An API error: a status, a stable code and a safe message.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    internal: Option<anyhow::Error>,
    retryable: bool,
    /// The connection broke during `COMMIT`: the transaction may have committed.
    commit_unknown: bool,
    // Boxed: rarely present, and every `Result` carries this type.
    extras: Option<Box<Extras>>,
}

/// The rarely used parts of an error.
#[derive(Debug, Default)]
struct Extras {
    headers: Vec<(HeaderName, HeaderValue)>,
    extensions: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    /// An error with the given status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            internal: None,
            retryable: false,
            commit_unknown: false,
            extras: None,
        }
    }

    /// Marks an error whose transaction may have committed (the answer to `COMMIT` was lost).
    pub fn with_commit_unknown(mut self, unknown: bool) -> Self {
        self.commit_unknown = unknown;
        self
    }

    /// Whether the work this error reports may have been committed after all.
    pub fn commit_outcome_unknown(&self) -> bool {
        self.commit_unknown
    }

    /// Adds an extension member to the problem body (a token the client needs next).
    pub fn with_extension(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extras
            .get_or_insert_with(Default::default)
            .extensions
            .insert(name.to_owned(), value.into());
        self
    }

    /// Adds a response header (e.g. `RateLimit-*` on a 429).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.extras
            .get_or_insert_with(Default::default)
            .headers
            .push((name, value));
        self
    }

    /// 400 `malformed_body`.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_body", detail)
    }
    /// 400 with a specific code.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    /// 401 with a specific code.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }
    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::unauthorized("unauthenticated", "Sign in to continue.")
    }
    /// 403 with a specific code.
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }
    /// 404 `not_found`: also for objects that exist but belong to someone else.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such resource.")
    }
    /// 409 with a specific code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    /// 422 `validation_failed` with the invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        err.errors = errors;
        err
    }
    /// 422 `validation_failed` for one field.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }
    /// Adds per-item details (for example the seats a 409 is about) in `errors`.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
    /// 429 with a specific code and `Retry-After`.
    pub fn too_many(code: &'static str, detail: impl Into<String>, retry_after: u64) -> Self {
        let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
        err.retry_after = Some(retry_after.max(1));
        err
    }
    /// 503 `service_unavailable`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            detail,
        );
        err.retry_after = Some(1);
        err
    }
    /// 500: the cause is logged, never shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. Quote the request id when reporting it.",
        );
        err.internal = Some(cause.into());
        err
    }

    /// Whether a write transaction may be retried (deadlock, lock wait, busy).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    fn title(&self) -> String {
        self.status.canonical_reason().unwrap_or("Error").to_owned()
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            tracing::error!(error = ?cause, code = self.code, "request failed");
        }
        metrics::counter!("boxoffice_errors_total", "code" => self.code).increment(1);
        let body = Problem {
            kind: format!(
                "https://boxoffice.dev/problems/{}",
                self.code.replace('_', "-")
            ),
            title: self.title(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
            extensions: self
                .extras
                .as_ref()
                .map(|e| e.extensions.clone())
                .unwrap_or_default(),
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in self.extras.map(|e| e.headers).unwrap_or_default() {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as application/json.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                truncate(&text, 300),
            ),
            _ => Self::malformed(truncate(&text, 300)),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            truncate(&rejection.body_text(), 300),
        )
    }
}

impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> Self {
        Self::not_found()
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if let Some(mapped) = crate::db::unique_violation(&err).and_then(constraint_error) {
            return mapped;
        }
        if crate::db::is_unavailable(&err) {
            crate::db::note_failure(&err);
            tracing::warn!(error = %err, "database unavailable");
            let mut mapped = Self::unavailable("The database is busy or unreachable; try again.");
            mapped.retryable = crate::db::is_retryable(&err);
            return mapped;
        }
        Self::internal(err)
    }
}

/// API errors for unique indexes whose violation is a user-visible conflict, by index name.
fn constraint_error(index: &str) -> Option<AppError> {
    match index {
        "ux_users_email_normalized" => Some(AppError::conflict(
            "email_taken",
            "An account with this e-mail address already exists.",
        )),
        _ => None,
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

/// Cuts a message to a bounded length on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
