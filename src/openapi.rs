//! OpenAPI document generated from the handlers, Swagger UI (offline), health and metrics.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use utoipa_swagger_ui::SwaggerUi;

use crate::{app::AppState, http::ApiJson};

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Tickets, merchandise and packages, with a fair waiting room.\n\nRate limits: any API route may answer 429 `rate_limited` (problem+json) with `Retry-After`; limited responses carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds)."),
    modifiers(&SecuritySchemes),
    tags((name = "auth", description = "Accounts, sign-in and tokens"), (name = "catalog", description = "Events, performances, seat maps and products"), (name = "orders", description = "Checkout, payment, cancellation, refunds, tickets and check-in"), (name = "admin", description = "Administration: users, audit log, security events, IP blocks"), (name = "queue", description = "Waiting room: settings, join, status, WebSocket, operator view"), (name = "ops", description = "Health and metrics"))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("bo_session"))),
        );
    }
}

/// Every documented route.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::auth::router())
        .merge(crate::catalog::router())
        .merge(crate::admin::router())
        .merge(crate::orders::router())
        .merge(crate::queue::router())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `/openapi.json` and Swagger UI at `/docs`, served from the binary.
pub fn docs_router(openapi: utoipa::openapi::OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", openapi))
}

/// `/metrics` (Prometheus text format; not part of the API document).
pub fn infra_router() -> Router<AppState> {
    let handle = crate::infra::metrics::handle();
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }
        }),
    )
}

/// Liveness.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> ApiJson<Health> {
    ApiJson(Health { status: "ok" })
}

/// Readiness.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// Whether the database answers.
    database: bool,
    /// `ok`, `down` or `not_configured` (never fails readiness).
    redis: &'static str,
}

/// Ready when the database answers; Redis state is reported, never decisive.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = crate::db::ping(&state.db).await;
    let redis = match &state.redis {
        None => "not_configured",
        Some(r) if r.ping().await => "ok",
        Some(_) => "down",
    };
    metrics::gauge!("boxoffice_database_up").set(if database { 1.0 } else { 0.0 });
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, ApiJson(Ready { database, redis }))
}
