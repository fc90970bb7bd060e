//! Storage of seat maps: replacing a layout in one write transaction, blocking and unblocking
//! seats with conditional updates, and the consistent reads behind the two documents.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IsolationLevel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionOptions,
    TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    layout::{self, GradeCount, Plan, PreparedDocument, SeatMapBody},
    state_doc::{self, Encoded, LayoutBytes, SeatState, Snapshot},
};
use crate::{
    app::AppState,
    auth::flows::audit_with_detail,
    catalog::access::{Viewer, manageable_event},
    db::{
        self,
        entities::{events, performances, seat_layouts, seats},
    },
    error::{AppError, AppResult, FieldError},
    infra::clock::to_db,
};

/// Rows per multi-row `INSERT`: 14 columns × 1000 rows stays under SQLite's 32,766 bound
/// parameters and far under MariaDB's packet size, and 50 statements carry 50,000 seats.
const INSERT_CHUNK: usize = 1000;
/// Labels per `IN (…)` lookup or update.
const LOOKUP_CHUNK: usize = 500;
/// Labels named in one audit record (the counts are always complete).
const AUDIT_LABELS: usize = 100;

/// What a layout upload produced.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"version": 2, "seat_count": 50000, "grades": [{"grade": "VIP", "seat_count": 2000}, {"grade": "R", "seat_count": 48000}]}))]
pub struct SeatMapSummary {
    /// The new layout version.
    pub version: i32,
    /// Seats in the layout.
    pub seat_count: i64,
    /// Seats per grade, in order of first appearance.
    pub grades: Vec<GradeCount>,
}

/// A plan with seat ids and its serialized document, shared by the transaction's attempts.
struct Prepared {
    plan: Plan,
    ids: Vec<String>,
    document: PreparedDocument,
}

/// Expands and serializes a body off the async threads (a stadium is tens of megabytes of work).
async fn prepare(
    body: SeatMapBody,
    capacity: i64,
    performance_id: String,
    event_id: String,
) -> AppResult<Prepared> {
    tokio::task::spawn_blocking(move || {
        let plan = layout::expand(&body, capacity).map_err(AppError::validation)?;
        let ids: Vec<String> = plan
            .seats
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let document = PreparedDocument::new(&plan, &ids, &performance_id, &event_id)
            .map_err(AppError::internal)?;
        if document.len() > layout::MAX_DOCUMENT {
            return Err(AppError::invalid_field(
                "seats",
                "layout_too_large",
                format!(
                    "the layout document would be {} bytes; at most {} (shorten labels or split the performance)",
                    document.len(),
                    layout::MAX_DOCUMENT
                ),
            ));
        }
        Ok(Prepared {
            plan,
            ids,
            document,
        })
    })
    .await
    .map_err(AppError::internal)?
}

/// Loads a performance of an event the viewer manages (404 otherwise).
async fn manageable_performance(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    performance_id: &str,
) -> AppResult<(events::Model, performances::Model)> {
    let event = manageable_event(state, viewer, event_id).await?;
    let performance = performances::Entity::find_by_id(performance_id.to_owned())
        .one(&state.db)
        .await?
        .filter(|p| p.event_id == event.id)
        .ok_or_else(AppError::not_found)?;
    Ok((event, performance))
}

fn duplicate_label() -> AppError {
    AppError::invalid_field(
        "sections",
        "duplicate_label",
        "two seats share a label (labels are compared as the database collates them)",
    )
}

/// Replaces a performance's seat map, unless any of its seats is held or sold.
pub async fn replace(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    performance_id: &str,
    body: SeatMapBody,
) -> AppResult<SeatMapSummary> {
    let (event, performance) =
        manageable_performance(state, viewer, event_id, performance_id).await?;
    let prepared = Arc::new(
        prepare(
            body,
            i64::from(performance.capacity),
            performance.id.clone(),
            event.id.clone(),
        )
        .await?,
    );
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    let (version, before) = db::write_tx(&state.db, |tx| {
        let (prepared, event, actor) = (prepared.clone(), event.clone(), actor.clone());
        let performance_id = performance.id.clone();
        Box::pin(
            async move { write_layout(tx, &prepared, &event, &performance_id, &actor, now).await },
        )
    })
    .await?;
    tracing::info!(performance_id = %performance.id, version, seats = prepared.ids.len(), before, "seat map replaced");
    state.seat_maps.forget(&performance.id);
    state.catalog_changed(&event.id).await;
    Ok(SeatMapSummary {
        version,
        seat_count: i64::try_from(prepared.ids.len()).unwrap_or(i64::MAX),
        grades: prepared.plan.grades.clone(),
    })
}

/// The body of the replacing transaction; returns the new version and the old seat count.
async fn write_layout<C: ConnectionTrait>(
    tx: &C,
    prepared: &Prepared,
    event: &events::Model,
    performance_id: &str,
    actor: &str,
    now: OffsetDateTime,
) -> AppResult<(i32, u64)> {
    // Bumping the version first locks the performance row, so two uploads for the same
    // performance run one after the other on MariaDB (SQLite has one writer anyway).
    let bumped = performances::Entity::update_many()
        .col_expr(
            performances::Column::LayoutVersion,
            Expr::col(performances::Column::LayoutVersion).add(1),
        )
        .col_expr(performances::Column::UpdatedAt, Expr::value(to_db(now)))
        .filter(performances::Column::Id.eq(performance_id))
        .filter(performances::Column::EventId.eq(event.id.as_str()))
        .exec(tx)
        .await?;
    if bumped.rows_affected != 1 {
        return Err(AppError::not_found());
    }
    let performance = performances::Entity::find_by_id(performance_id.to_owned())
        .one(tx)
        .await?
        .ok_or_else(AppError::not_found)?;
    let count = prepared.ids.len();
    if i64::try_from(count).unwrap_or(i64::MAX) > i64::from(performance.capacity) {
        return Err(AppError::invalid_field(
            "seats",
            "exceeds_capacity",
            format!(
                "{count} seats, but the performance's capacity is {}",
                performance.capacity
            ),
        ));
    }
    // Delete only free seats, then look for any left: a seat a checkout holds is never deleted,
    // even if the checkout commits between a check and the delete (the delete waits for its
    // row lock and then skips the row, and the count below sees it).
    let deleted = seats::Entity::delete_many()
        .filter(seats::Column::PerformanceId.eq(performance_id))
        .filter(
            seats::Column::State
                .is_in([SeatState::Available.as_str(), SeatState::Blocked.as_str()]),
        )
        .exec(tx)
        .await?
        .rows_affected;
    let in_use = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(performance_id))
        .count(tx)
        .await?;
    if in_use > 0 {
        return Err(AppError::conflict(
            "seats_in_use",
            format!(
                "{in_use} seats are held or sold; the seat map can no longer be replaced (use PATCH to block or unblock seats)"
            ),
        ));
    }
    let updated_at = to_db(now);
    for (chunk_index, chunk) in prepared.plan.seats.chunks(INSERT_CHUNK).enumerate() {
        let offset = chunk_index * INSERT_CHUNK;
        let rows = chunk.iter().enumerate().map(|(i, s)| seats::ActiveModel {
            id: Set(prepared.ids[offset + i].clone()),
            event_id: Set(event.id.clone()),
            performance_id: Set(performance_id.to_owned()),
            label: Set(s.label.clone()),
            section: Set(s.section.clone()),
            row_label: Set(s.row.clone()),
            seat_label: Set(s.seat.clone()),
            grade: Set(s.grade.clone()),
            x: Set(s.x),
            y: Set(s.y),
            position: Set(i32::try_from(offset + i).unwrap_or(i32::MAX)),
            state: Set(SeatState::Available.as_str().to_owned()),
            order_id: Set(None),
            updated_at: Set(updated_at),
        });
        seats::Entity::insert_many(rows)
            .exec_without_returning(tx)
            .await
            .map_err(|e| {
                // Labels equal only under MariaDB's collation (accents, say) end up here.
                if db::unique_violation(&e).is_some() {
                    duplicate_label()
                } else {
                    AppError::from(e)
                }
            })?;
    }
    seat_layouts::Entity::delete_by_id(performance_id.to_owned())
        .exec(tx)
        .await?;
    seat_layouts::Entity::insert(seat_layouts::ActiveModel {
        performance_id: Set(performance_id.to_owned()),
        event_id: Set(event.id.clone()),
        version: Set(performance.layout_version),
        seat_count: Set(i32::try_from(count).unwrap_or(i32::MAX)),
        document: Set(prepared.document.finish(performance.layout_version)),
        created_at: Set(updated_at),
    })
    .exec_without_returning(tx)
    .await?;
    let grades: serde_json::Map<String, serde_json::Value> = prepared
        .plan
        .grades
        .iter()
        .map(|g| (g.grade.clone(), g.seat_count.into()))
        .collect();
    audit_with_detail(
        tx,
        now,
        Some(actor),
        "seat_map.replaced",
        "performance",
        Some(performance_id),
        None,
        Some(serde_json::json!({
            "event_id": event.id,
            "before": {"version": performance.layout_version - 1, "seat_count": deleted},
            "after": {"version": performance.layout_version, "seat_count": count, "grades": grades},
        })),
    )
    .await?;
    Ok((performance.layout_version, deleted))
}

/// Seats of a performance, counted after locking its row (on MariaDB; SQLite's write
/// transaction excludes other writers), so a concurrent upload cannot add seats beyond a
/// capacity being lowered: uploads lock the same row first.
pub async fn seat_count_locked<C: ConnectionTrait>(tx: &C, performance_id: &str) -> AppResult<i64> {
    performances::Entity::find_by_id(performance_id.to_owned())
        .lock_exclusive()
        .one(tx)
        .await?
        .ok_or_else(AppError::not_found)?;
    let count = seats::Entity::find()
        .filter(seats::Column::PerformanceId.eq(performance_id))
        .count(tx)
        .await?;
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

/// Seats to withhold from sale or give back, by label.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"block": ["Floor-A-1", "Floor-A-2"], "unblock": ["North-C-14"]}))]
pub struct SeatBlockBody {
    /// Labels of `AVAILABLE` seats to make `BLOCKED`.
    #[serde(default)]
    pub block: Vec<String>,
    /// Labels of `BLOCKED` seats to make `AVAILABLE`.
    #[serde(default)]
    pub unblock: Vec<String>,
}

/// What a block/unblock request changed.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"blocked": 2, "unblocked": 1}))]
pub struct SeatBlockResult {
    /// Seats now blocked.
    pub blocked: i64,
    /// Seats now available again.
    pub unblocked: i64,
}

/// Checks and de-duplicates the two label lists (order kept).
fn check_block_body(body: SeatBlockBody) -> AppResult<(Vec<String>, Vec<String>)> {
    fn dedup(labels: Vec<String>) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        labels
            .into_iter()
            .filter(|l| seen.insert(l.clone()))
            .collect()
    }
    let (block, unblock) = (dedup(body.block), dedup(body.unblock));
    if block.is_empty() && unblock.is_empty() {
        return Err(AppError::invalid_field(
            "block",
            "required",
            "name at least one seat to block or unblock",
        ));
    }
    if block.len() + unblock.len() > layout::MAX_SEATS {
        return Err(AppError::invalid_field(
            "block",
            "too_many_seats",
            format!("at most {} labels per request", layout::MAX_SEATS),
        ));
    }
    let blocking: std::collections::HashSet<&String> = block.iter().collect();
    let both: Vec<FieldError> = unblock
        .iter()
        .filter(|l| blocking.contains(l))
        .take(20)
        .map(|l| FieldError::new("unblock", "also_blocked", l.clone()))
        .collect();
    if !both.is_empty() {
        return Err(AppError::validation(both));
    }
    Ok((block, unblock))
}

/// Blocks and unblocks seats: all of them or, if any is unknown or in the wrong state, none.
pub async fn change_blocks(
    state: &AppState,
    viewer: &Viewer,
    event_id: &str,
    performance_id: &str,
    body: SeatBlockBody,
) -> AppResult<SeatBlockResult> {
    let (block, unblock) = check_block_body(body)?;
    let (event, performance) =
        manageable_performance(state, viewer, event_id, performance_id).await?;
    let (block, unblock) = (Arc::new(block), Arc::new(unblock));
    let now = state.clock.now();
    let actor = viewer.user_id.clone();
    let result = db::write_tx(&state.db, |tx| {
        let (block, unblock, actor) = (block.clone(), unblock.clone(), actor.clone());
        let (event_id, performance_id) = (event.id.clone(), performance.id.clone());
        Box::pin(async move {
            let rows = lock_by_label(tx, &performance_id, block.iter().chain(unblock.iter())).await?;
            let mut unknown = Vec::new();
            let mut wrong = Vec::new();
            for (field, labels, from) in [
                ("block", &block, SeatState::Available),
                ("unblock", &unblock, SeatState::Blocked),
            ] {
                for label in labels.iter() {
                    match rows.get(label) {
                        None => unknown.push(FieldError::new(field, "unknown_seat", label.clone())),
                        Some((_, current)) if *current != from => wrong.push(FieldError::new(
                            field,
                            &current.as_str().to_lowercase(),
                            label.clone(),
                        )),
                        Some(_) => {}
                    }
                }
            }
            if !unknown.is_empty() {
                unknown.truncate(20);
                return Err(AppError::validation(unknown));
            }
            if !wrong.is_empty() {
                let total = wrong.len();
                wrong.truncate(20);
                let named: Vec<&str> = wrong.iter().map(|e| e.message.as_str()).collect();
                let more = if total > named.len() {
                    format!(" and {} more", total - named.len())
                } else {
                    String::new()
                };
                return Err(AppError::conflict(
                    "seat_unavailable",
                    format!(
                        "Nothing was changed: {}{more} are not in the state this change needs (block takes AVAILABLE seats, unblock BLOCKED ones).",
                        named.join(", ")
                    ),
                )
                .with_errors(wrong));
            }
            let ids = |labels: &[String]| -> Vec<String> {
                labels.iter().filter_map(|l| rows.get(l).map(|(id, _)| id.clone())).collect()
            };
            let blocked = set_state(tx, &performance_id, &ids(&block), SeatState::Available, SeatState::Blocked, now).await?;
            let unblocked = set_state(tx, &performance_id, &ids(&unblock), SeatState::Blocked, SeatState::Available, now).await?;
            if blocked != block.len() as u64 || unblocked != unblock.len() as u64 {
                // Unreachable with the rows locked above; refuse rather than half-apply.
                return Err(AppError::conflict(
                    "seat_unavailable",
                    "Some seats changed state meanwhile; nothing was changed. Try again.",
                ));
            }
            audit_with_detail(
                tx,
                now,
                Some(&actor),
                "seat_map.blocks_changed",
                "performance",
                Some(&performance_id),
                None,
                Some(serde_json::json!({
                    "event_id": event_id,
                    "blocked": blocked, "unblocked": unblocked,
                    "block": block.iter().take(AUDIT_LABELS).collect::<Vec<_>>(),
                    "unblock": unblock.iter().take(AUDIT_LABELS).collect::<Vec<_>>(),
                })),
            )
            .await?;
            Ok(SeatBlockResult {
                blocked: i64::try_from(blocked).unwrap_or(i64::MAX),
                unblocked: i64::try_from(unblocked).unwrap_or(i64::MAX),
            })
        })
    })
    .await?;
    state.seat_maps.forget(&performance.id);
    state.catalog_changed(&event.id).await;
    Ok(result)
}

/// The performance's seats with these exact labels (id and state), locked for update on
/// MariaDB (SQLite's IMMEDIATE transaction already excludes other writers).
async fn lock_by_label<'a, C: ConnectionTrait>(
    tx: &C,
    performance_id: &str,
    labels: impl Iterator<Item = &'a String>,
) -> AppResult<HashMap<String, (String, SeatState)>> {
    let labels: Vec<&String> = labels.collect();
    let mut found = HashMap::with_capacity(labels.len());
    for chunk in labels.chunks(LOOKUP_CHUNK) {
        let rows: Vec<(String, String, String)> = seats::Entity::find()
            .select_only()
            .columns([
                seats::Column::Id,
                seats::Column::Label,
                seats::Column::State,
            ])
            .filter(seats::Column::PerformanceId.eq(performance_id))
            .filter(seats::Column::Label.is_in(chunk.iter().map(|l| l.as_str())))
            .order_by_asc(seats::Column::Id)
            .lock_exclusive()
            .into_tuple()
            .all(tx)
            .await?;
        // MariaDB compares labels case-insensitively; only an exact match names a seat.
        for (id, label, state) in rows {
            found.insert(label, (id, SeatState::from_db(&state)));
        }
    }
    Ok(found)
}

/// `UPDATE seats SET state = to WHERE id IN (…) AND state = from`, in sorted id order.
async fn set_state<C: ConnectionTrait>(
    tx: &C,
    performance_id: &str,
    ids: &[String],
    from: SeatState,
    to: SeatState,
    now: OffsetDateTime,
) -> AppResult<u64> {
    let mut ids = ids.to_vec();
    ids.sort();
    let mut changed = 0;
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        changed += seats::Entity::update_many()
            .col_expr(seats::Column::State, Expr::value(to.as_str()))
            .col_expr(seats::Column::UpdatedAt, Expr::value(to_db(now)))
            .filter(seats::Column::PerformanceId.eq(performance_id))
            .filter(seats::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .filter(seats::Column::State.eq(from.as_str()))
            .exec(tx)
            .await?
            .rows_affected;
    }
    Ok(changed)
}

/// Reads a performance's event, layout version and seat states as one consistent snapshot.
pub async fn load_snapshot(
    db: DatabaseConnection,
    performance_id: String,
) -> AppResult<Option<Snapshot>> {
    let performance_id = performance_id.as_str();
    // One transaction, so the version, the seat count and the states belong together even while
    // a new layout is being written (REPEATABLE READ on MariaDB; SQLite readers see one WAL
    // snapshot).
    let backend = db.get_database_backend();
    let options = match backend {
        DbBackend::MySql => TransactionOptions {
            isolation_level: Some(IsolationLevel::RepeatableRead),
            ..Default::default()
        },
        _ => TransactionOptions::default(),
    };
    let tx = db.begin_with_options(options).await?;
    let Some(performance) = performances::Entity::find_by_id(performance_id.to_owned())
        .one(&tx)
        .await?
    else {
        return Ok(None);
    };
    let Some(event) = events::Entity::find_by_id(performance.event_id.clone())
        .one(&tx)
        .await?
    else {
        return Ok(None);
    };
    let layout: Option<(i32, i32)> = seat_layouts::Entity::find_by_id(performance_id.to_owned())
        .select_only()
        .columns([
            seat_layouts::Column::Version,
            seat_layouts::Column::SeatCount,
        ])
        .into_tuple()
        .one(&tx)
        .await?;
    let taken = match layout {
        Some(_) => taken_seats(&tx, backend, performance_id).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    let state = match layout {
        Some((version, seat_count)) => Some(
            state_doc::encode_state(version, usize::try_from(seat_count).unwrap_or(0), &taken)
                .map_err(AppError::internal)?,
        ),
        None => None,
    };
    Ok(Some(Snapshot {
        event,
        version: layout.map_or(performance.layout_version, |(v, _)| v),
        state,
    }))
}

/// Positions and states of the seats that are not available: every other seat is 0 in the
/// document. Answered from `ix_seats_state` alone, and the state comes back as its 2-bit code,
/// so a mostly free stadium costs a few rows, a sold-out one 50,000 small integers.
async fn taken_seats<C: ConnectionTrait>(
    tx: &C,
    backend: DbBackend,
    performance_id: &str,
) -> AppResult<Vec<(usize, SeatState)>> {
    let rows = tx
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT position, CASE state WHEN 'HELD' THEN 1 WHEN 'SOLD' THEN 2 ELSE 3 END AS code \
             FROM seats WHERE performance_id = ? AND state IN ('BLOCKED', 'HELD', 'SOLD')",
            [performance_id.into()],
        ))
        .await?;
    let mut taken = Vec::with_capacity(rows.len());
    for row in rows {
        let position: i32 = row.try_get_by_index(0)?;
        let code: i64 = row.try_get_by_index(1)?;
        let state = match code {
            1 => SeatState::Held,
            2 => SeatState::Sold,
            _ => SeatState::Blocked,
        };
        if let Ok(position) = usize::try_from(position) {
            taken.push((position, state));
        }
    }
    Ok(taken)
}

/// Loads the stored layout document if it is of this version, compressed once for all readers.
pub async fn load_layout(
    db: &DatabaseConnection,
    performance_id: &str,
    version: i32,
) -> AppResult<Option<LayoutBytes>> {
    let Some(row) = seat_layouts::Entity::find_by_id(performance_id.to_owned())
        .one(db)
        .await?
        .filter(|r| r.version == version)
    else {
        return Ok(None);
    };
    let event_id = row.event_id.clone();
    let encoded = tokio::task::spawn_blocking(move || {
        Encoded::new(row.document.into_bytes(), row.version.to_string())
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)?;
    Ok(Some(LayoutBytes {
        event_id,
        version,
        encoded,
    }))
}
