//! IP blocks: an in-process list of blocked networks, enforced on every request by a middleware,
//! kept in step across instances through pub/sub (and a periodic reload as a safety net), plus
//! the write side shared by the admin API and the automatic block after a burst of failures.

use std::{
    net::IpAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration as StdDuration,
};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ipnet::{IpNet, Ipv4Net};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Set, Statement, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tokio::sync::broadcast;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;

use super::events::{self, EventKind, Severity};
use crate::{
    app::AppState,
    auth::flows::audit_with_detail,
    db::{
        self,
        entities::{ip_blocks, login_attempts},
    },
    error::{AppError, AppResult, FieldError},
    http::ClientIp,
    infra::{
        bus::Message,
        clock::{from_db, to_db, truncate_micros},
    },
};

/// Bus channel announcing that the blocks changed; every instance reloads its list.
pub const CHANNEL: &str = "ip_blocks.changed";
/// Safety net: every instance reloads this often even without a message (a missed pub/sub
/// message, a block written by another tool).
pub const RELOAD_EVERY: StdDuration = StdDuration::from_secs(30);
/// Window in which failed sign-ins from one IP are counted for the automatic block.
pub const AUTO_BLOCK_WINDOW: Duration = Duration::minutes(15);
/// Longest accepted `reason`, in characters (the column is `VARCHAR(255)`).
pub const REASON_MAX: usize = 255;

/// Who created a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum BlockSource {
    /// An administrator.
    Manual,
    /// The automatic block after a burst of failed sign-ins.
    Auto,
}

impl BlockSource {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "MANUAL",
            Self::Auto => "AUTO",
        }
    }
}

/// One blocked network as held in memory.
#[derive(Clone, Debug)]
struct Entry {
    net: IpNet,
    expires_at: Option<OffsetDateTime>,
}

/// A complete list as loaded at one moment.
#[derive(Debug, Default)]
struct Snapshot {
    /// Order in which the load started: a slower, older load never replaces a newer one.
    seq: u64,
    entries: Vec<Entry>,
}

/// The blocked networks of this instance, replaced as a whole on every reload so a request
/// sees either the old or the new list, never half of each.
#[derive(Debug, Default)]
pub struct IpBlockList {
    current: RwLock<Arc<Snapshot>>,
    next_seq: AtomicU64,
}

impl IpBlockList {
    /// An empty list (nothing blocked).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `ip` is inside a block that has not expired at `now`. Expiry is checked here,
    /// against the injected clock, so an expired block stops applying without a reload.
    pub fn is_blocked(&self, ip: IpAddr, now: OffsetDateTime) -> bool {
        let snapshot = self.snapshot();
        if snapshot.entries.is_empty() {
            return false;
        }
        // A dual-stack listener reports IPv4 clients as `::ffff:a.b.c.d`; blocks are stored
        // in their IPv4 form, so look at both.
        let canonical = ip.to_canonical();
        snapshot.entries.iter().any(|e| {
            e.expires_at.is_none_or(|at| at > now)
                && (e.net.contains(&canonical) || e.net.contains(&ip))
        })
    }

    /// How many blocks are held (expired ones included until the next reload).
    pub fn len(&self) -> usize {
        self.snapshot().entries.len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads the live blocks from the database and swaps them in.
    pub async fn reload(&self, db: &DatabaseConnection, now: OffsetDateTime) -> AppResult<()> {
        // Taken before reading, so a load that started later (and saw at least as much)
        // wins over one that started earlier but finished last.
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst) + 1;
        let rows = ip_blocks::Entity::find()
            .filter(ip_blocks::Column::DeletedAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(ip_blocks::Column::ExpiresAt.is_null())
                    .add(ip_blocks::Column::ExpiresAt.gt(to_db(now))),
            )
            .all(db)
            .await?;
        let entries = rows
            .iter()
            .filter_map(|row| match parse_net(&row.cidr) {
                Ok(net) => Some(Entry {
                    net,
                    expires_at: row.expires_at.map(from_db),
                }),
                Err(_) => {
                    // Only rows written by hand can be malformed; skip them, keep the rest.
                    tracing::warn!(id = %row.id, cidr = %row.cidr, "ignoring malformed ip block");
                    None
                }
            })
            .collect();
        self.replace(Snapshot { seq, entries });
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock only means a writer panicked between two whole snapshots.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn replace(&self, next: Snapshot) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if next.seq > current.seq {
            *current = Arc::new(next);
        }
    }
}

/// Refuses requests from blocked addresses with 403 `ip_blocked`, except the health checks
/// (blocking a monitoring network must not take the service out of its load balancer).
pub async fn enforce(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || path == "/readyz" || !state.ip_blocks.is_blocked(ip, state.clock.now())
    {
        return next.run(req).await;
    }
    metrics::counter!("boxoffice_requests_blocked_total").increment(1);
    AppError::forbidden("ip_blocked", "Requests from your network are blocked.").into_response()
}

/// Keeps this instance's list fresh: reloads on every `ip_blocks.changed` message and every
/// [`RELOAD_EVERY`]. `rx` is subscribed before the first load so no change can slip between.
pub async fn keep_fresh(state: AppState, mut rx: broadcast::Receiver<Message>) {
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(m) if m.channel == CHANNEL => {}
                Ok(_) => continue,
                // Missed messages may have been ours: reload to be safe.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {}
        }
        // Several changes in a row need one reload, not one each.
        while rx.try_recv().is_ok() {}
        if let Err(e) = state.ip_blocks.reload(&state.db, state.clock.now()).await {
            tracing::warn!(error = %e, "ip block reload failed; keeping the previous list");
        }
    }
}

/// Parses a network: `a.b.c.d/n`, `x::/n`, or a bare address (meaning `/32` or `/128`).
/// Host bits are cleared and IPv4-mapped IPv6 networks become IPv4 ones, so the stored form
/// is canonical.
pub fn parse_net(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    let net = raw
        .parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "`{}` is not an IP address or CIDR",
                crate::error::truncate(raw, 64)
            )
        })?;
    Ok(canonical_net(net).trunc())
}

fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Ok(mapped) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    net
}

/// Validates a network to block: parseable and not the whole Internet.
pub fn parse_cidr(raw: &str) -> Result<IpNet, FieldError> {
    let net = parse_net(raw).map_err(|m| FieldError::new("cidr", "invalid_cidr", m))?;
    if net.prefix_len() == 0 {
        return Err(FieldError::new(
            "cidr",
            "too_broad",
            "would block every address; block a smaller network",
        ));
    }
    Ok(net)
}

fn parse_reason(raw: &str) -> Result<String, FieldError> {
    let reason: String = raw.trim().nfc().collect();
    if reason.is_empty() {
        return Err(FieldError::new("reason", "required", "must not be empty"));
    }
    if reason.chars().count() > REASON_MAX {
        return Err(FieldError::new(
            "reason",
            "too_long",
            format!("must be at most {REASON_MAX} characters"),
        ));
    }
    if reason.chars().any(crate::infra::text::is_forbidden) {
        return Err(FieldError::new(
            "reason",
            "invalid_characters",
            crate::infra::text::FORBIDDEN_MESSAGE,
        ));
    }
    Ok(reason)
}

fn covers(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip) || net.contains(&ip.to_canonical())
}

/// A block to create, with who asks and from where.
#[derive(Clone, Debug)]
pub struct BlockRequest<'a> {
    /// Network or bare address.
    pub cidr: &'a str,
    /// Why (1..=255 characters).
    pub reason: &'a str,
    /// Manual or automatic.
    pub source: BlockSource,
    /// The administrator, for manual blocks.
    pub created_by: Option<&'a str>,
    /// End of the block; `None` blocks until deleted.
    pub expires_at: Option<OffsetDateTime>,
    /// The requesting administrator's address: a block containing it is refused, since it
    /// would lock that administrator out.
    pub requester_ip: Option<IpAddr>,
}

/// Creates a block (see [`block_with`]); used by the admin API and the automatic block.
pub async fn block(
    state: &AppState,
    cidr: &str,
    reason: &str,
    source: BlockSource,
    created_by: Option<&str>,
    expires_at: Option<OffsetDateTime>,
) -> AppResult<ip_blocks::Model> {
    block_with(
        state,
        BlockRequest {
            cidr,
            reason,
            source,
            created_by,
            expires_at,
            requester_ip: None,
        },
    )
    .await
}

/// Validates and stores a block, writes the audit record, applies it on this instance at once
/// and tells the other instances.
///
/// 422 `validation_failed` for a bad CIDR, the whole Internet, a bad reason or an expiry in the
/// past; 409 `would_block_self` when the block contains the requester's address.
pub async fn block_with(state: &AppState, req: BlockRequest<'_>) -> AppResult<ip_blocks::Model> {
    let now = state.clock.now();
    let mut errors = Vec::new();
    let net = parse_cidr(req.cidr).map_err(|e| errors.push(e)).ok();
    let reason = parse_reason(req.reason).map_err(|e| errors.push(e)).ok();
    let expires_at = req.expires_at.map(truncate_micros);
    if expires_at.is_some_and(|at| at <= now) {
        errors.push(FieldError::new(
            "expires_at",
            "in_the_past",
            "must be in the future",
        ));
    }
    let (Some(net), Some(reason)) = (net, reason) else {
        return Err(AppError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    if req.requester_ip.is_some_and(|ip| covers(&net, ip)) {
        return Err(AppError::conflict(
            "would_block_self",
            "This block contains your own address and would lock you out.",
        ));
    }
    let new = NewBlock {
        net,
        reason,
        source: req.source,
        created_by: req.created_by.map(str::to_owned),
        expires_at,
    };
    let requester_ip = req.requester_ip;
    let row = db::write_tx(&state.db, |tx| {
        let new = new.clone();
        Box::pin(async move { insert_block(tx, now, &new, requester_ip).await })
    })
    .await?;
    changed(state).await;
    Ok(row)
}

/// Ends a block early (soft delete, kept for the record). 404 if it does not exist or was
/// already deleted.
pub async fn unblock(
    state: &AppState,
    id: &str,
    actor: Option<&str>,
    actor_ip: Option<IpAddr>,
) -> AppResult<()> {
    let now = state.clock.now();
    db::write_tx(&state.db, |tx| {
        let (id, actor) = (id.to_owned(), actor.map(str::to_owned));
        Box::pin(async move {
            let row = ip_blocks::Entity::find_by_id(id.clone())
                .one(tx)
                .await?
                .filter(|r| r.deleted_at.is_none())
                .ok_or_else(AppError::not_found)?;
            // The affected-row count decides between two concurrent deletes.
            let done = ip_blocks::Entity::update_many()
                .col_expr(ip_blocks::Column::DeletedAt, Expr::value(Some(to_db(now))))
                .filter(ip_blocks::Column::Id.eq(&id))
                .filter(ip_blocks::Column::DeletedAt.is_null())
                .exec(tx)
                .await?;
            if done.rows_affected != 1 {
                return Err(AppError::not_found());
            }
            audit_with_detail(
                tx,
                now,
                actor.as_deref(),
                "admin.ip_block.delete",
                "ip_block",
                Some(&id),
                actor_ip,
                Some(serde_json::json!({
                    "cidr": row.cidr,
                    "reason": row.reason,
                    "source": row.source,
                })),
            )
            .await
        })
    })
    .await?;
    changed(state).await;
    Ok(())
}

/// Applies the current blocks here at once, then tells every instance to reload.
async fn changed(state: &AppState) {
    if let Err(e) = state.ip_blocks.reload(&state.db, state.clock.now()).await {
        tracing::warn!(error = %e, "ip block reload failed after a change");
    }
    if let Err(e) = state.bus.publish(CHANNEL, "changed").await {
        // Other instances still catch up within RELOAD_EVERY.
        tracing::warn!(error = %e, "could not publish ip block change");
    }
}

#[derive(Clone, Debug)]
struct NewBlock {
    net: IpNet,
    reason: String,
    source: BlockSource,
    created_by: Option<String>,
    expires_at: Option<OffsetDateTime>,
}

async fn insert_block<C: ConnectionTrait>(
    conn: &C,
    now: OffsetDateTime,
    new: &NewBlock,
    requester_ip: Option<IpAddr>,
) -> AppResult<ip_blocks::Model> {
    let row = ip_blocks::Model {
        id: uuid::Uuid::now_v7().to_string(),
        cidr: new.net.to_string(),
        reason: new.reason.clone(),
        source: new.source.as_str().to_owned(),
        created_by: new.created_by.clone(),
        created_at: to_db(now),
        expires_at: new.expires_at.map(to_db),
        deleted_at: None,
    };
    ip_blocks::Entity::insert(ip_blocks::ActiveModel {
        id: Set(row.id.clone()),
        cidr: Set(row.cidr.clone()),
        reason: Set(row.reason.clone()),
        source: Set(row.source.clone()),
        created_by: Set(row.created_by.clone()),
        created_at: Set(row.created_at),
        expires_at: Set(row.expires_at),
        deleted_at: Set(None),
    })
    .exec(conn)
    .await?;
    let action = match new.source {
        BlockSource::Manual => "admin.ip_block.create",
        BlockSource::Auto => "security.ip_block.auto_create",
    };
    audit_with_detail(
        conn,
        now,
        new.created_by.as_deref(),
        action,
        "ip_block",
        Some(&row.id),
        requester_ip,
        Some(serde_json::json!({
            "cidr": row.cidr,
            "reason": row.reason,
            "source": row.source,
            "expires_at": new.expires_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        })),
    )
    .await?;
    Ok(row)
}

/// Blocks `ip` for `IP_AUTO_BLOCK_MINUTES` once it has `IP_AUTO_BLOCK_FAILURES` failed sign-ins
/// (`login_attempts.result <> 'SUCCESS'`) in the last 15 minutes, and records an
/// `IP_AUTO_BLOCKED` event. Call after recording a failed attempt; returns the new block, or
/// `None` (feature off, below the threshold, already blocked, or a trusted proxy).
///
/// Exactly one block is created however many instances cross the threshold together: a guard
/// row per address (`ip_auto_blocks`) is claimed by a conditional `UPDATE` or an
/// insert-if-absent, and the affected-row count decides. The guard also keeps an address an administrator unblocked early from being
/// re-blocked by the same burst before the automatic block would have ended.
pub async fn maybe_auto_block(
    state: &AppState,
    ip: IpAddr,
    now: OffsetDateTime,
) -> AppResult<Option<ip_blocks::Model>> {
    let threshold = state.config.ip_auto_block_failures;
    if threshold == 0 {
        return Ok(None);
    }
    let canonical = ip.to_canonical();
    if state.trusted_proxies.iter().any(|p| p.contains(&canonical)) {
        // Failures "from" a proxy mean its clients' addresses are not being forwarded;
        // blocking it would block all of them, so leave it to an administrator.
        tracing::warn!(%ip, "not auto-blocking a trusted proxy; check X-Forwarded-For");
        return Ok(None);
    }
    if state.ip_blocks.is_blocked(canonical, now) {
        return Ok(None);
    }
    let forms: Vec<String> = {
        let mut forms = vec![canonical.to_string(), ip.to_string()];
        forms.dedup();
        forms
    };
    let failures = login_attempts::Entity::find()
        .filter(login_attempts::Column::Ip.is_in(forms))
        .filter(login_attempts::Column::CreatedAt.gt(to_db(now - AUTO_BLOCK_WINDOW)))
        .filter(login_attempts::Column::Result.ne("SUCCESS"))
        .count(&state.db)
        .await?;
    if failures < u64::from(threshold) {
        return Ok(None);
    }
    let minutes = i64::from(state.config.ip_auto_block_minutes);
    let until = now + Duration::minutes(minutes);
    let new = NewBlock {
        net: IpNet::from(canonical),
        reason: format!(
            "{failures} failed sign-ins in {} minutes",
            AUTO_BLOCK_WINDOW.whole_minutes()
        ),
        source: BlockSource::Auto,
        created_by: None,
        expires_at: Some(until),
    };
    let created = db::write_tx(&state.db, |tx| {
        let new = new.clone();
        Box::pin(async move {
            if !claim_guard(tx, canonical, now, until).await? {
                return Ok(None);
            }
            let row = insert_block(tx, now, &new, None).await?;
            events::record(
                tx,
                now,
                EventKind::IpAutoBlocked,
                Severity::High,
                None,
                Some(&canonical.to_string()),
                serde_json::json!({
                    "block_id": row.id,
                    "failures": failures,
                    "window_minutes": AUTO_BLOCK_WINDOW.whole_minutes(),
                    "block_minutes": minutes,
                }),
            )
            .await?;
            Ok(Some(row))
        })
    })
    .await?;
    if created.is_some() {
        tracing::warn!(%ip, failures, minutes, "ip blocked automatically");
        changed(state).await;
    }
    Ok(created)
}

/// Claims the per-address guard until `until`; false if another caller holds it now.
///
/// The expired-guard `UPDATE` runs first and the insert second, so no transaction upgrades a
/// shared lock (which `INSERT IGNORE` takes on a duplicate) to an exclusive one: concurrent
/// claims queue on MariaDB instead of deadlocking.
async fn claim_guard<C: ConnectionTrait>(
    conn: &C,
    ip: IpAddr,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> AppResult<bool> {
    let backend = conn.get_database_backend();
    let renewed = db::exec_one(
        conn,
        Statement::from_sql_and_values(
            backend,
            "UPDATE ip_auto_blocks SET blocked_until = ?, updated_at = ? \
             WHERE ip = ? AND blocked_until <= ?",
            [
                to_db(until).into(),
                to_db(now).into(),
                ip.to_string().into(),
                to_db(now).into(),
            ],
        ),
    )
    .await?;
    if renewed {
        return Ok(true);
    }
    let insert = match backend {
        DbBackend::MySql => {
            "INSERT IGNORE INTO ip_auto_blocks (ip, blocked_until, updated_at) VALUES (?, ?, ?)"
        }
        _ => {
            "INSERT INTO ip_auto_blocks (ip, blocked_until, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (ip) DO NOTHING"
        }
    };
    db::exec_one(
        conn,
        Statement::from_sql_and_values(
            backend,
            insert,
            [
                ip.to_string().into(),
                to_db(until).into(),
                to_db(now).into(),
            ],
        ),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, Option<OffsetDateTime>)]) -> IpBlockList {
        let list = IpBlockList::new();
        list.replace(Snapshot {
            seq: 1,
            entries: entries
                .iter()
                .map(|(cidr, expires_at)| Entry {
                    net: parse_net(cidr).expect("cidr"),
                    expires_at: *expires_at,
                })
                .collect(),
        });
        list
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_bare_address_means_a_single_host() {
        assert_eq!(
            parse_net("203.0.113.7").expect("v4").to_string(),
            "203.0.113.7/32"
        );
        assert_eq!(
            parse_net("2001:db8::1").expect("v6").to_string(),
            "2001:db8::1/128"
        );
    }

    #[test]
    fn host_bits_are_cleared_and_mapped_networks_become_ipv4() {
        assert_eq!(
            parse_net(" 10.1.2.3/8 ").expect("v4").to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_net("::ffff:198.51.100.0/120")
                .expect("mapped")
                .to_string(),
            "198.51.100.0/24"
        );
    }

    #[test]
    fn the_whole_internet_and_garbage_are_refused() {
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "::ffff:0.0.0.0/96",
            "1.2.3.4/33",
            "nope",
            "",
            "1.2.3/24",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn blocks_match_addresses_inside_them_in_either_form() {
        let now = OffsetDateTime::now_utc();
        let blocks = list(&[("203.0.113.0/24", None), ("2001:db8::/32", None)]);
        assert!(blocks.is_blocked(ip("203.0.113.9"), now));
        assert!(blocks.is_blocked(ip("::ffff:203.0.113.9"), now));
        assert!(blocks.is_blocked(ip("2001:db8::5"), now));
        assert!(!blocks.is_blocked(ip("198.51.100.1"), now));
    }

    #[test]
    fn an_expired_block_stops_applying_without_a_reload() {
        let now = OffsetDateTime::now_utc();
        let blocks = list(&[("203.0.113.0/24", Some(now + Duration::minutes(5)))]);
        assert!(blocks.is_blocked(ip("203.0.113.9"), now));
        assert!(!blocks.is_blocked(ip("203.0.113.9"), now + Duration::minutes(5)));
    }

    #[test]
    fn an_older_load_never_replaces_a_newer_one() {
        let blocks = list(&[("203.0.113.0/24", None)]);
        blocks.replace(Snapshot {
            seq: 0,
            entries: Vec::new(),
        });
        assert_eq!(blocks.len(), 1);
        blocks.replace(Snapshot {
            seq: 2,
            entries: Vec::new(),
        });
        assert!(blocks.is_empty());
    }
}
