//! `Idempotency-Key` on `POST /orders` and `POST /orders/{id}/pay*` (DESIGN.md): per user and
//! route, kept 24 h. The first request claims the key with a unique insert; a replay gets the
//! stored status and body; the same key with another body → 422 `idempotency_key_reused`; while
//! the first is in flight → 409 `idempotency_key_in_use`. Server errors release the key so the
//! client may retry.
//!
//! A server error can hide work that was done: an I/O error on `COMMIT` answers 503 although the
//! order may be in the database. Work whose result can be looked up ([`run_recoverable`]) is
//! therefore given the claim's id to name what it creates (the order's id), and before a key is
//! released after an error whose commit is in doubt, or while a retry finds it in flight, the
//! result is looked up by that id: found, it becomes the key's stored answer (201), so a retry never places a second
//! order. If even the look-up fails, the key stays claimed — a retry hears
//! `idempotency_key_in_use` until the claim is abandoned — rather than be released blindly.

use std::future::Future;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::{
    app::AppState,
    db::{self, entities::idempotency_keys},
    error::{AppError, AppResult},
    infra::{
        clock::{from_db, to_db},
        secrets::hex,
    },
};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// How long a key is remembered.
const TTL: Duration = Duration::hours(24);

/// An in-flight claim older than this was abandoned (its instance died): it may be taken over.
const ABANDONED_AFTER: Duration = Duration::seconds(60);

/// Largest stored response; a bigger one is not kept (the key is released instead).
const MAX_STORED: usize = 256 * 1024;

/// Runs `work` at most once per `(user, route, Idempotency-Key)`; without the header it just runs.
/// `request` is what identifies the body (hashed with the route). For work that is idempotent
/// on its own (paying an order), so a server error may simply release the key.
pub async fn run<T, F, Fut>(
    state: &AppState,
    user_id: &str,
    route: &str,
    headers: &HeaderMap,
    request: &impl Serialize,
    success: StatusCode,
    work: F,
) -> Response
where
    T: Serialize,
    F: FnOnce() -> Fut,
    Fut: Future<Output = AppResult<T>>,
{
    let nothing = |_: String| async { AppResult::<Option<T>>::Ok(None) };
    run_recoverable(
        state,
        user_id,
        route,
        headers,
        request,
        success,
        |_| work(),
        nothing,
    )
    .await
}

/// Like [`run`], for work that creates something: `work` gets the id to give it when a key is
/// sent (`None` without one), and `recover` finds it by that id (`Ok(None)`: nothing was made).
#[allow(clippy::too_many_arguments)] // one call site per route; a struct would only rename them
pub async fn run_recoverable<T, F, Fut, R, RFut>(
    state: &AppState,
    user_id: &str,
    route: &str,
    headers: &HeaderMap,
    request: &impl Serialize,
    success: StatusCode,
    work: F,
    recover: R,
) -> Response
where
    T: Serialize,
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = AppResult<T>>,
    R: Fn(String) -> RFut,
    RFut: Future<Output = AppResult<Option<T>>>,
{
    let respond = |result: AppResult<T>| match result {
        Ok(value) => (success, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    };
    let key = match key_of(headers) {
        Ok(None) => return respond(work(None).await),
        Ok(Some(key)) => key,
        Err(e) => return e.into_response(),
    };
    let body = serde_json::to_vec(request).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    let hash = hex(&hasher.finalize());
    let now = state.clock.now();
    let claim = match claim(&state.db, user_id, route, &key, &hash, now, &recover).await {
        Ok(claim) => claim,
        Err(e) => return e.into_response(),
    };
    let id = match claim {
        Claim::Replay { status, body } => return replay(status, body),
        Claim::Recovered { id, value } => {
            let mut response = finish(&state.db, &id, respond(Ok(value))).await;
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return response;
        }
        Claim::Mine(id) => id,
    };
    let result = match work(Some(id.clone())).await {
        Err(e) if e.commit_outcome_unknown() => match recover(id.clone()).await {
            // The error came after the work was done (its commit's answer was lost).
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(e),
            Err(lookup) => {
                tracing::warn!(error = %lookup, "outcome unknown; the idempotency key stays claimed");
                return e.into_response();
            }
        },
        other => other,
    };
    finish(&state.db, &id, respond(result)).await
}

enum Claim<T> {
    Mine(String),
    Replay {
        status: u16,
        body: String,
    },
    /// An in-flight claim whose work turned out to be done.
    Recovered {
        id: String,
        value: T,
    },
}

fn key_of(headers: &HeaderMap) -> AppResult<Option<String>> {
    let Some(raw) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bad = || {
        AppError::invalid_field(
            "Idempotency-Key",
            "invalid_idempotency_key",
            "must be 1–255 visible ASCII characters",
        )
    };
    let key = raw.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

async fn claim<T, R, RFut>(
    db: &DatabaseConnection,
    user_id: &str,
    route: &str,
    key: &str,
    hash: &str,
    now: OffsetDateTime,
    recover: &R,
) -> AppResult<Claim<T>>
where
    R: Fn(String) -> RFut,
    RFut: Future<Output = AppResult<Option<T>>>,
{
    // Two rounds at most: the second after clearing an expired or abandoned record.
    for _ in 0..2 {
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = idempotency_keys::ActiveModel {
            id: Set(id.clone()),
            user_id: Set(user_id.to_owned()),
            route: Set(route.to_owned()),
            idem_key: Set(key.to_owned()),
            request_hash: Set(hash.to_owned()),
            status_code: Set(None),
            response: Set(None),
            created_at: Set(to_db(now)),
            expires_at: Set(to_db(now + TTL)),
        }
        .insert(db)
        .await;
        match inserted {
            Ok(_) => return Ok(Claim::Mine(id)),
            Err(e) if db::unique_violation(&e) == Some("ux_idempotency_keys_key") => {}
            Err(e) => return Err(e.into()),
        }
        let Some(existing) = idempotency_keys::Entity::find()
            .filter(idempotency_keys::Column::UserId.eq(user_id))
            .filter(idempotency_keys::Column::Route.eq(route))
            .filter(idempotency_keys::Column::IdemKey.eq(key))
            .one(db)
            .await?
        else {
            continue;
        };
        let in_flight = existing.status_code.is_none();
        if in_flight && existing.request_hash == hash && from_db(existing.expires_at) > now {
            // Its work may be done although its answer was lost (or is about to be stored).
            if let Some(value) = recover(existing.id.clone()).await? {
                return Ok(Claim::Recovered {
                    id: existing.id,
                    value,
                });
            }
        }
        let stale = in_flight && from_db(existing.created_at) + ABANDONED_AFTER <= now;
        if from_db(existing.expires_at) <= now || stale {
            // Conditional on the row we saw, so two takers cannot both win.
            idempotency_keys::Entity::delete_many()
                .filter(idempotency_keys::Column::Id.eq(existing.id.clone()))
                .filter(idempotency_keys::Column::CreatedAt.eq(existing.created_at))
                .exec(db)
                .await?;
            continue;
        }
        if existing.request_hash != hash {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            ));
        }
        return match (existing.status_code, existing.response) {
            (Some(status), Some(body)) => Ok(Claim::Replay {
                status: u16::try_from(status).unwrap_or(500),
                body,
            }),
            _ => Err(AppError::conflict(
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed.",
            )),
        };
    }
    Err(AppError::conflict(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed.",
    ))
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Stores the outcome (or releases the key after a server error) and returns the response.
async fn finish(db: &DatabaseConnection, id: &str, response: Response) -> Response {
    let status = response.status();
    let release = || async {
        if let Err(e) = idempotency_keys::Entity::delete_by_id(id.to_owned())
            .exec(db)
            .await
        {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    };
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        release().await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED).await {
        Ok(bytes) => bytes,
        Err(_) => {
            release().await;
            return AppError::internal(anyhow::anyhow!("response too large to keep"))
                .into_response();
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let stored = idempotency_keys::Entity::update_many()
        .col_expr(
            idempotency_keys::Column::StatusCode,
            Expr::value(i32::from(status.as_u16())),
        )
        .col_expr(idempotency_keys::Column::Response, Expr::value(text))
        .filter(idempotency_keys::Column::Id.eq(id))
        .exec(db)
        .await;
    if let Err(e) = stored {
        // The work is done and answered; a later replay will find the key in flight until it is
        // abandoned, which is the safe side.
        tracing::warn!(error = %e, "could not store an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Forgets keys past their 24 hours (called by the expiry sweeper); returns how many.
pub async fn purge_expired(db: &DatabaseConnection, now: OffsetDateTime) -> AppResult<u64> {
    Ok(idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::ExpiresAt.lte(to_db(now)))
        .exec(db)
        .await?
        .rows_affected)
}
