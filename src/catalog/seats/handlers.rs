//! HTTP handlers for seat maps: upload, block/unblock, and the two read documents.

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    layout::{LayoutDocument, SeatMapBody},
    state_doc::{Encoded, Snapshot, StateDocument},
    store::{self, SeatBlockBody, SeatBlockResult, SeatMapSummary},
};
use crate::{
    app::AppState,
    auth::{AuthUser, RequireRole, extract::Organizer},
    catalog::{
        access::{Viewer, can_see},
        model::EventStatus,
    },
    error::{AppError, AppResult, Problem},
    http::{ApiJson, ApiQuery},
};

/// `Cache-Control` of a layout asked for by version: that version never changes.
const IMMUTABLE: &str = "max-age=31536000, immutable";
/// `Cache-Control` of the current layout: it changes only when the organizer uploads a new one.
const CURRENT_LAYOUT: &str = "max-age=10";
/// `Cache-Control` of the state document: rebuilt at most once a second anyway.
const STATE: &str = "max-age=1";

/// Replaces a performance's seat map (organizer of the event or admin).
///
/// Up to 8 MiB, so a 50,000-seat stadium fits in one request, most easily as generator blocks.
/// Seat labels are `section-row-seat`, unique per performance (compared case-insensitively).
/// Refused with 409 `seats_in_use` once any seat is held or sold; then only `PATCH`
/// (block/unblock) applies.
#[utoipa::path(put, path = "/events/{id}/performances/{pid}/seats", tag = "catalog",
    params(("id" = String, Path, description = "Event id"), ("pid" = String, Path, description = "Performance id")),
    request_body = SeatMapBody, security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Stored as the next layout version", body = SeatMapSummary),
        (status = 403, description = "`forbidden`: buyers cannot change seat maps", body = Problem),
        (status = 404, description = "`not_found`: no such performance, or another organizer's event", body = Problem),
        (status = 409, description = "`seats_in_use`: a seat is held or sold", body = Problem),
        (status = 413, description = "`payload_too_large`: the body exceeds 8 MiB", body = Problem),
        (status = 422, description = "`validation_failed`: invalid labels or blocks, `duplicate_label`, `exceeds_capacity` (more seats than the performance's capacity), `too_many_seats`", body = Problem),
    ))]
pub async fn replace_seats(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path((id, pid)): Path<(String, String)>,
    ApiJson(body): ApiJson<SeatMapBody>,
) -> AppResult<ApiJson<SeatMapSummary>> {
    Ok(ApiJson(
        store::replace(&state, &Viewer::from(&user), &id, &pid, body).await?,
    ))
}

/// Blocks and unblocks seats by label, all or nothing.
///
/// `block` turns `AVAILABLE` seats into `BLOCKED` (production holds, wheelchair places),
/// `unblock` turns `BLOCKED` seats back into `AVAILABLE`. If any label is unknown or in another
/// state, nothing changes.
#[utoipa::path(patch, path = "/events/{id}/performances/{pid}/seats", tag = "catalog",
    params(("id" = String, Path, description = "Event id"), ("pid" = String, Path, description = "Performance id")),
    request_body = SeatBlockBody, security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Every named seat changed", body = SeatBlockResult),
        (status = 403, description = "`forbidden`", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 409, description = "`seat_unavailable`: nothing changed; `errors` lists each seat in the wrong state (`field` block/unblock, `code` its current state in lower case, `message` its label)", body = Problem),
        (status = 422, description = "`validation_failed`: `unknown_seat` (label in `message`), `also_blocked`, `required`", body = Problem),
    ))]
pub async fn patch_seats(
    State(state): State<AppState>,
    RequireRole(user, _): RequireRole<Organizer>,
    Path((id, pid)): Path<(String, String)>,
    ApiJson(body): ApiJson<SeatBlockBody>,
) -> AppResult<ApiJson<SeatBlockResult>> {
    Ok(ApiJson(
        store::change_blocks(&state, &Viewer::from(&user), &id, &pid, body).await?,
    ))
}

/// Which layout version to fetch.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LayoutQuery {
    /// A layout version (from the state document); answered with a one-year immutable cache.
    /// Only the current version is kept: an older one is 404.
    version: Option<i32>,
}

/// The seat layout of a performance, immutable per version.
///
/// Every seat's id, label, section, row, seat, grade and drawing position, in layout order (a
/// seat's index is its position in the state document). With `?version=` it is cached for a
/// year; without, briefly. Gzip when accepted. Drafts only for who manages them.
#[utoipa::path(get, path = "/events/{id}/performances/{pid}/seats/layout", tag = "catalog",
    params(("id" = String, Path, description = "Event id"), ("pid" = String, Path, description = "Performance id"), LayoutQuery),
    responses(
        (status = 200, description = "The layout", body = LayoutDocument, headers(
            ("ETag" = String, description = "The version, quoted (`\"3\"`; `\"3-gz\"` for the gzip form)"),
            ("Cache-Control" = String, description = "`public, max-age=31536000, immutable` with `?version=`, `public, max-age=10` without (`private` for drafts)"))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 404, description = "`not_found`: no such performance or seat map, a version not kept, or a draft you do not manage", body = Problem),
    ))]
pub async fn get_layout(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path((id, pid)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<LayoutQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let snapshot = visible_snapshot(&state, user.as_ref(), &id, &pid).await?;
    let version = query.version.unwrap_or(snapshot.version);
    // Only the current version is kept; a newer one than this instance's snapshot knows may
    // already be stored (asked for by a client that read another instance's state document).
    if version < 1 || version < snapshot.version {
        return Err(AppError::not_found());
    }
    let db = state.db.clone();
    let layout = state
        .seat_maps
        .layout(&pid, version, || store::load_layout(&db, &pid, version))
        .await?
        .filter(|l| l.event_id == id && l.version == version)
        .ok_or_else(AppError::not_found)?;
    let max_age = if query.version.is_some() {
        IMMUTABLE
    } else {
        CURRENT_LAYOUT
    };
    Ok(send(&headers, &layout.encoded, &snapshot, max_age))
}

/// Every seat's state, 2 bits per seat in layout order.
///
/// `data` is standard base64 of the packed states (`encoding: 2bit-base64`): 0 `AVAILABLE`,
/// 1 `HELD`, 2 `SOLD`, 3 `BLOCKED`; the seat at position `i` is
/// `(byte[i >> 2] >> ((i & 3) * 2)) & 3`. Rebuilt at most once a second per instance and
/// served from memory (gzip when accepted): it lags the database by about a second (at most
/// 1.25 s: the previous document is served while the next one is read). Drafts only for who
/// manages them.
#[utoipa::path(get, path = "/events/{id}/performances/{pid}/seats/state", tag = "catalog",
    params(("id" = String, Path, description = "Event id"), ("pid" = String, Path, description = "Performance id")),
    responses(
        (status = 200, description = "The seat states", body = StateDocument, headers(
            ("ETag" = String, description = "Content hash, quoted (`-gz` suffix for the gzip form)"),
            ("Cache-Control" = String, description = "`public, max-age=1` (`private` for drafts)"))),
        (status = 304, description = "`If-None-Match` matched"),
        (status = 404, description = "`not_found`: no such performance or seat map, or a draft you do not manage", body = Problem),
    ))]
pub async fn get_state(
    State(state): State<AppState>,
    user: Option<AuthUser>,
    Path((id, pid)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let snapshot = visible_snapshot(&state, user.as_ref(), &id, &pid).await?;
    let encoded = snapshot.state.as_ref().ok_or_else(AppError::not_found)?;
    Ok(send(&headers, encoded, &snapshot, STATE))
}

/// The performance's snapshot if it belongs to this event and the viewer may see the event.
async fn visible_snapshot(
    state: &AppState,
    user: Option<&AuthUser>,
    event_id: &str,
    performance_id: &str,
) -> AppResult<Arc<Snapshot>> {
    let (db, id) = (state.db.clone(), performance_id.to_owned());
    let snapshot = state
        .seat_maps
        .snapshot(performance_id, move || store::load_snapshot(db, id))
        .await?
        .ok_or_else(AppError::not_found)?;
    let viewer = user.map(Viewer::from);
    if snapshot.event.id != event_id || !can_see(viewer.as_ref(), &snapshot.event) {
        return Err(AppError::not_found());
    }
    Ok(snapshot)
}

/// Sends a prepared document: 304 when the client has it, gzip when accepted.
fn send(headers: &HeaderMap, doc: &Encoded, snapshot: &Snapshot, max_age: &str) -> Response {
    let gzip = accepts_gzip(headers);
    let tag = if gzip {
        format!("\"{}-gz\"", doc.tag)
    } else {
        format!("\"{}\"", doc.tag)
    };
    // Drafts are seen only by who manages them: no shared cache may keep them.
    let scope = if EventStatus::from_db(&snapshot.event.status) == EventStatus::Draft {
        "private"
    } else {
        "public"
    };
    let mut response = if client_has(headers, &doc.tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if gzip {
            doc.gzip.clone()
        } else {
            doc.json.clone()
        };
        let mut response = Response::new(Body::from(body));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{scope}, {max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with a non-zero quality).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let quality = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && quality > 0.0
        })
}

/// Whether `If-None-Match` names either form of the document (or `*`).
pub fn client_has(headers: &HeaderMap, tag: &str) -> bool {
    let plain = format!("\"{tag}\"");
    let gz = format!("\"{tag}-gz\"");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == plain || t == gz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn gzip_is_accepted_unless_refused_by_quality() {
        assert!(accepts_gzip(&with(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )));
        assert!(accepts_gzip(&with(
            header::ACCEPT_ENCODING,
            "br;q=1.0, GZIP;q=0.5"
        )));
        assert!(accepts_gzip(&with(header::ACCEPT_ENCODING, "*")));
        assert!(!accepts_gzip(&with(header::ACCEPT_ENCODING, "gzip;q=0")));
        assert!(!accepts_gzip(&with(
            header::ACCEPT_ENCODING,
            "br, identity"
        )));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn either_form_of_the_tag_matches() {
        assert!(client_has(&with(header::IF_NONE_MATCH, "\"3\""), "3"));
        assert!(client_has(
            &with(header::IF_NONE_MATCH, "\"x\", W/\"3-gz\""),
            "3"
        ));
        assert!(client_has(&with(header::IF_NONE_MATCH, "*"), "3"));
        assert!(!client_has(&with(header::IF_NONE_MATCH, "\"4\""), "3"));
        assert!(!client_has(&HeaderMap::new(), "3"));
    }
}
