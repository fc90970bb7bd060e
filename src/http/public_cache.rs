//! Anonymous catalog reads served from memory for up to a second, with `ETag`: a cache hit or
//! a 304 touches no database. Catalog writes drop the cache on every instance (pub/sub).

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use moka::sync::Cache;
use sha2::{Digest, Sha256};

use crate::{app::AppState, auth::extract::SESSION_COOKIE, infra::secrets::hex};

/// How stale a cached read may be; checkout decides stock, not this.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Bodies larger than this are not cached.
const MAX_BODY: usize = 4 * 1024 * 1024;

struct Cached {
    body: Bytes,
    etag: HeaderValue,
    content_type: Option<HeaderValue>,
}

/// The cache of anonymous reads, by URI.
#[derive(Clone)]
pub struct PublicCache(Cache<String, Arc<Cached>>);

impl Default for PublicCache {
    fn default() -> Self {
        Self::new()
    }
}

impl PublicCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self(
            Cache::builder()
                .max_capacity(20_000)
                .time_to_live(MAX_AGE)
                .build(),
        )
    }

    /// Drops everything (a catalog change on any instance).
    pub fn invalidate_all(&self) {
        self.0.invalidate_all();
    }
}

fn cacheable(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    method == Method::GET
        && (path == "/events"
            || path.starts_with("/events/")
            || path == "/products"
            || path.starts_with("/products/"))
        && !path.contains("/seats")
        && headers.get(header::AUTHORIZATION).is_none()
        && crate::auth::extract::cookie(headers, SESSION_COOKIE).is_none_or(|c| c.is_empty())
}

fn respond(entry: &Cached, if_none_match: Option<&HeaderValue>) -> Response {
    let fresh = if_none_match.is_some_and(|v| {
        v.to_str().is_ok_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == entry.etag.to_str().unwrap_or_default() || t.trim() == "*")
        })
    });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(entry.body.clone()));
        if let Some(ct) = &entry.content_type {
            r.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
        }
        r
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, entry.etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, Cookie"),
    );
    response
}

/// Middleware: answers cacheable reads from memory, fills the cache on a miss.
pub async fn serve(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !cacheable(req.method(), req.uri().path(), req.headers()) {
        return next.run(req).await;
    }
    let key = req.uri().to_string();
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    if let Some(hit) = state.public_cache.0.get(&key) {
        return respond(&hit, if_none_match.as_ref());
    }
    let response = next.run(req).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = format!("\"{}\"", &hex(&Sha256::digest(&bytes))[..32]);
    let Ok(etag) = HeaderValue::from_str(&etag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let entry = Arc::new(Cached {
        body: bytes,
        etag,
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
    });
    state.public_cache.0.insert(key, entry.clone());
    respond(&entry, if_none_match.as_ref())
}
