//! The administrator's pages: accounts, security events, IP blocks, the mail outbox (never the
//! bodies, which hold sign-in codes), the audit log and the waiting rooms in use.

use askama::Template;
use axum::extract::{Query, State};
use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
use serde::Deserialize;

use super::texts::AdminTexts;
use crate::{
    admin::{
        PageRequest,
        audit::{self, AuditFilter},
        ip_blocks::{self, BlockState},
        security_events::{self, EventFilter},
        users::{self, AdminUser, UserFilter},
    },
    app::AppState,
    auth::model::Role,
    catalog::access::Viewer,
    db::entities::{event_queues, events as event_rows, mail_outbox},
    error::AppError,
    infra::clock::from_db,
    web::{
        context::{Ctx, PageResult, encode, render},
        format,
    },
};

/// Rows per admin page.
const PAGE: u64 = 50;
/// Times on admin pages are shown in Korean time (the service's home).
const TZ: &str = "Asia/Seoul";

/// `?q=&cursor=` (unknown or empty values ignored).
#[derive(Debug, Default, Deserialize)]
pub struct AdminParams {
    q: Option<String>,
    cursor: Option<String>,
}

/// A table cell row: plain texts in column order.
pub type Cells = Vec<String>;

/// An account row with its edit form values.
pub struct UserRow {
    id: String,
    email: String,
    name: String,
    roles: Vec<(&'static str, bool)>,
    vip: bool,
    statuses: Vec<(&'static str, &'static str, bool)>,
    deleted: bool,
    created: String,
    last_login: String,
}

/// An IP block row.
pub struct BlockRow {
    id: String,
    cells: Cells,
}

#[derive(Template)]
#[template(path = "web/manage/admin.html")]
struct AdminPage {
    ctx: Ctx,
    a: &'static AdminTexts,
    tab_users: bool,
    tab_blocks: bool,
    tabs: Vec<(&'static str, &'static str, bool)>,
    q: String,
    users: Vec<UserRow>,
    blocks: Vec<BlockRow>,
    head: Vec<&'static str>,
    rows: Vec<Cells>,
    note: Option<&'static str>,
    next: Option<String>,
}

impl AdminPage {
    fn new(ctx: Ctx, tab: &'static str) -> Self {
        let a = AdminTexts::of(ctx.lang);
        Self {
            tabs: vec![
                ("", a.users, "users"),
                ("/security", a.security, "security"),
                ("/ip-blocks", a.ip_blocks, "ip-blocks"),
                ("/mail", a.mail, "mail"),
                ("/audit", a.audit, "audit"),
                ("/queues", a.queues, "queues"),
            ]
            .into_iter()
            .map(|(suffix, label, key)| (suffix, label, key == tab))
            .collect(),
            a,
            tab_users: tab == "users",
            tab_blocks: tab == "ip-blocks",
            q: String::new(),
            users: Vec::new(),
            blocks: Vec::new(),
            head: Vec::new(),
            rows: Vec::new(),
            note: None,
            next: None,
            ctx,
        }
    }
}

fn page_of(params: &AdminParams) -> Result<PageRequest, AppError> {
    PageRequest::parse(
        Some(PAGE),
        params.cursor.as_deref().filter(|c| !c.is_empty()),
    )
}

fn when(ctx: &Ctx, at: time::OffsetDateTime) -> String {
    format::datetime(ctx.lang, at, TZ)
}

fn next_link(path: &str, cursor: Option<String>, q: &str) -> Option<String> {
    cursor.map(|c| {
        let mut url = format!("{path}?cursor={}", encode(&c));
        if !q.is_empty() {
            url.push_str(&format!("&q={}", encode(q)));
        }
        url
    })
}

fn detail(value: Option<serde_json::Value>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// `GET /manage/admin`: accounts with search, role, VIP and status.
pub async fn users(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(params): Query<AdminParams>,
) -> PageResult {
    ctx.require_role(Role::Admin)?;
    let filter = UserFilter::parse(params.q.as_deref(), None, None)?;
    let (rows, next) = users::list(&state, &filter, &page_of(&params)?).await?;
    let mut page = AdminPage::new(ctx, "users");
    let a = page.a;
    page.users = rows
        .iter()
        .map(AdminUser::from)
        .map(|u| UserRow {
            roles: ["USER", "ORGANIZER", "ADMIN"]
                .into_iter()
                .map(|r| (r, r == u.role.as_str()))
                .collect(),
            statuses: [("ACTIVE", a.active), ("DISABLED", a.disabled)]
                .into_iter()
                .map(|(s, label)| (s, label, s == u.status.as_str()))
                .collect(),
            deleted: u.status.as_str() == "DELETED",
            created: when(&page.ctx, u.created_at),
            last_login: u
                .last_login_at
                .map(|t| when(&page.ctx, t))
                .unwrap_or_default(),
            id: u.id,
            email: u.email,
            name: u.name.or(u.nickname).unwrap_or_default(),
            vip: u.vip,
        })
        .collect();
    page.q = params.q.clone().unwrap_or_default();
    page.next = next_link("/manage/admin", next, &page.q);
    render(&page)
}

/// `GET /manage/admin/security`: security events, newest first.
pub async fn security(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(params): Query<AdminParams>,
) -> PageResult {
    ctx.require_role(Role::Admin)?;
    let (items, next) =
        security_events::list(&state, &EventFilter::default(), &page_of(&params)?).await?;
    let mut page = AdminPage::new(ctx, "security");
    let a = page.a;
    page.head = vec![a.when, a.kind, a.severity, a.user, a.ip, a.detail];
    page.rows = items
        .into_iter()
        .map(|e| {
            vec![
                when(&page.ctx, e.created_at),
                e.kind,
                e.severity,
                e.user_id.unwrap_or_default(),
                e.ip.unwrap_or_default(),
                detail(e.detail),
            ]
        })
        .collect();
    page.next = next_link("/manage/admin/security", next, "");
    render(&page)
}

/// `GET /manage/admin/ip-blocks`: active blocks, add and lift.
pub async fn ip_blocks(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(params): Query<AdminParams>,
) -> PageResult {
    ctx.require_role(Role::Admin)?;
    let (items, next) = ip_blocks::list(&state, BlockState::Active, &page_of(&params)?).await?;
    let mut page = AdminPage::new(ctx, "ip-blocks");
    let a = page.a;
    page.head = vec![a.cidr, a.reason, a.source, a.when, a.expires];
    page.blocks = items
        .into_iter()
        .map(|b| BlockRow {
            cells: vec![
                b.cidr,
                b.reason,
                b.source,
                when(&page.ctx, b.created_at),
                b.expires_at
                    .map(|t| when(&page.ctx, t))
                    .unwrap_or_else(|| a.never.to_owned()),
            ],
            id: b.id,
        })
        .collect();
    page.next = next_link("/manage/admin/ip-blocks", next, "");
    render(&page)
}

/// Most outbox rows shown.
const MAIL_LIMIT: u64 = 100;

/// `GET /manage/admin/mail`: the outbox without bodies or parameters (they hold codes).
pub async fn mail(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    ctx.require_role(Role::Admin)?;
    let rows = mail_outbox::Entity::find()
        .order_by_desc(mail_outbox::Column::CreatedAt)
        .order_by_desc(mail_outbox::Column::Id)
        .limit(MAIL_LIMIT)
        .all(&state.db)
        .await
        .map_err(AppError::from)?;
    let mut page = AdminPage::new(ctx, "mail");
    let a = page.a;
    page.head = vec![
        a.when,
        a.to,
        a.subject,
        a.status,
        a.attempts,
        a.sent,
        a.last_error,
    ];
    page.note = Some(a.mail_note);
    page.rows = rows
        .into_iter()
        .map(|r| {
            vec![
                when(&page.ctx, from_db(r.created_at)),
                r.to_address,
                format!("{} ({})", r.template, r.locale),
                r.status,
                r.attempts.to_string(),
                r.sent_at
                    .map(|t| when(&page.ctx, from_db(t)))
                    .unwrap_or_default(),
                r.last_error.unwrap_or_default(),
            ]
        })
        .collect();
    render(&page)
}

/// `GET /manage/admin/audit`: the audit log, newest first.
pub async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(params): Query<AdminParams>,
) -> PageResult {
    ctx.require_role(Role::Admin)?;
    let (items, next) = audit::list(&state, &AuditFilter::default(), &page_of(&params)?).await?;
    let mut page = AdminPage::new(ctx, "audit");
    let a = page.a;
    page.head = vec![a.when, a.actor, a.action, a.target, a.ip, a.detail];
    page.rows = items
        .into_iter()
        .map(|e| {
            vec![
                when(&page.ctx, e.created_at),
                e.actor_user_id.unwrap_or_else(|| a.system.to_owned()),
                e.action,
                format!("{} {}", e.target_type, e.target_id.unwrap_or_default()),
                e.ip.unwrap_or_default(),
                detail(e.detail),
            ]
        })
        .collect();
    page.next = next_link("/manage/admin/audit", next, "");
    render(&page)
}

/// Most waiting rooms shown.
const QUEUE_LIMIT: u64 = 100;

/// `GET /manage/admin/queues`: every event with a waiting room and its figures.
pub async fn queues(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let admin = Viewer::from(ctx.require_role(Role::Admin)?);
    let queues = event_queues::Entity::find()
        .limit(QUEUE_LIMIT)
        .all(&state.db)
        .await
        .map_err(AppError::from)?;
    let mut page = AdminPage::new(ctx, "queues");
    let a = page.a;
    page.head = vec![a.event, a.status, a.waiting, a.shopping, a.admitted, a.rate];
    let mut rows = Vec::new();
    for q in queues {
        let title = event_rows::Entity::find_by_id(q.event_id.clone())
            .one(&state.db)
            .await
            .map_err(AppError::from)?
            .map_or_else(|| q.event_id.clone(), |e| e.title);
        let row = match crate::queue::admin::stats(&state, &admin, &q.event_id).await {
            Ok(s) => vec![
                title,
                if s.paused { a.paused } else { a.active }.to_owned(),
                s.waiting.values().sum::<u64>().to_string(),
                s.active.to_string(),
                s.admitted_total.to_string(),
                format!("{:.1}", s.admission_rate),
            ],
            Err(_) => vec![
                title,
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
            ],
        };
        rows.push(row);
    }
    page.rows = rows;
    if page.rows.is_empty() {
        page.note = Some(a.no_queues);
    }
    render(&page)
}
