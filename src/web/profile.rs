//! The signed-in person's own account: `/account` (profile, language, password), and its pages
//! for sessions, sign-in history, passkeys, linked identities and deleting the account. Data is
//! read for the session's own user only; every change goes through the `/auth/*` API.

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{
    context::{Ctx, PageResult, encode, render},
    format,
    i18n::Lang,
};
use crate::{
    app::AppState,
    auth::{attempts, identities, sessions, users, webauthn::store::CredentialView},
    error::AppError,
};

crate::texts! {
    /// Texts of the account pages.
    pub struct ProfileTexts {
        account: "내 계정", "My account";
        profile: "프로필", "Profile";
        email: "이메일", "E-mail";
        name: "이름", "Name";
        nickname: "닉네임", "Nickname";
        language: "언어", "Language";
        save: "저장", "Save";
        password: "비밀번호 변경", "Change password";
        current_password: "현재 비밀번호", "Current password";
        new_password: "새 비밀번호", "New password";
        change: "변경", "Change";
        changed: "바꿨습니다. 다른 기기의 세션은 모두 종료되었습니다.", "Changed. Your other sessions have been ended.";
        security: "보안", "Security";
        sessions: "로그인된 기기", "Signed-in devices";
        history: "로그인 기록", "Sign-in history";
        passkeys: "패스키", "Passkeys";
        identities: "연결된 계정", "Linked accounts";
        delete: "계정 삭제", "Delete account";
        device: "기기", "Device";
        ip: "IP", "IP";
        started: "시작", "Started";
        last_used: "마지막 사용", "Last used";
        method: "방법", "Method";
        this_device: "지금 이 기기", "This device";
        revoke: "로그아웃시키기", "Sign out";
        revoke_others: "다른 기기 모두 로그아웃", "Sign out everywhere else";
        time: "시각", "Time";
        result: "결과", "Result";
        ok: "성공", "Success";
        failed: "실패", "Failed";
        more: "더 보기", "More";
        none: "없습니다.", "None.";
        add_passkey: "이 기기에 패스키 추가", "Add a passkey on this device";
        passkey_name: "이름 (예: 내 휴대폰)", "Name (e.g. my phone)";
        passkey_added: "패스키를 추가했습니다.", "Passkey added.";
        rename: "이름 바꾸기", "Rename";
        remove: "삭제", "Remove";
        remove_confirm: "정말 삭제하시겠습니까?", "Remove it?";
        never: "사용한 적 없음", "Never";
        link: "연결하기", "Link";
        unlink: "연결 해제", "Unlink";
        provider: "서비스", "Provider";
        delete_help: "계정을 삭제하면 개인 정보가 지워지고 다시 로그인할 수 없습니다. 결제 대기 중이거나 다가오는 공연의 주문이 있으면 먼저 취소하거나 공연이 끝난 뒤 삭제할 수 있습니다. 지난 주문 기록은 익명으로 보관됩니다.", "Deleting your account erases your personal data and you can no longer sign in. If you have orders awaiting payment or for upcoming events, cancel them first or delete after the event. Past orders are kept anonymously.";
        delete_password: "확인을 위해 비밀번호를 입력하세요 (패스키·소셜 로그인만 쓰신다면 방금 로그인한 경우 비워 두셔도 됩니다)", "Enter your password to confirm (if you only use passkeys or social sign-in and just signed in, leave it empty)";
        delete_confirm: "계정을 삭제합니다. 되돌릴 수 없습니다.", "This deletes your account and cannot be undone.";
        korean: "한국어", "Korean";
        english: "English", "English";
    }
}

async fn me(
    state: &AppState,
    ctx: &Ctx,
) -> Result<crate::db::entities::users::Model, super::context::PageError> {
    let user = ctx.require_user()?;
    Ok(users::find_by_id(&state.db, &user.user_id)
        .await?
        .ok_or_else(AppError::unauthenticated)?)
}

fn when(lang: Lang, at: time::OffsetDateTime) -> String {
    format::datetime(lang, at, "Asia/Seoul")
}

#[derive(Template)]
#[template(path = "web/account/home.html")]
struct HomePage {
    ctx: Ctx,
    p: &'static ProfileTexts,
    email: String,
    name: String,
    nickname: String,
    locale: String,
    has_password: bool,
}

/// `GET /account`.
pub async fn home(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let me = me(&state, &ctx).await?;
    render(&HomePage {
        p: ProfileTexts::of(ctx.lang),
        email: me.email.clone(),
        name: me.name.clone().unwrap_or_default(),
        nickname: me.nickname.clone().unwrap_or_default(),
        locale: me.locale.clone(),
        has_password: me.password.is_some(),
        ctx,
    })
}

/// A row of a table.
pub struct Row {
    id: String,
    cells: Vec<String>,
    current: bool,
}

#[derive(Template)]
#[template(path = "web/account/sessions.html")]
struct SessionsPage {
    ctx: Ctx,
    p: &'static ProfileTexts,
    rows: Vec<Row>,
}

/// `GET /account/sessions`.
pub async fn sessions_page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let user = ctx.require_user()?.clone();
    let now = state.clock.now();
    let rows = sessions::list(&state.db, now, &user.user_id, &user.session_id)
        .await?
        .into_iter()
        .map(|s| Row {
            cells: vec![
                s.device,
                s.ip.unwrap_or_default(),
                s.method,
                when(ctx.lang, s.created_at),
                when(ctx.lang, s.last_used_at),
            ],
            current: s.current,
            id: s.id,
        })
        .collect();
    render(&SessionsPage {
        p: ProfileTexts::of(ctx.lang),
        rows,
        ctx,
    })
}

/// `?cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct Cursor {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "web/account/history.html")]
struct HistoryPage {
    ctx: Ctx,
    p: &'static ProfileTexts,
    rows: Vec<(String, String, String, String, bool)>,
    next: Option<String>,
}

/// `GET /account/history`: the account's own sign-in attempts, newest first.
pub async fn history(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<Cursor>,
) -> PageResult {
    let user = ctx.require_user()?.clone();
    let (entries, next) = attempts::history(
        &state,
        &user.user_id,
        30,
        q.cursor.as_deref().filter(|c| !c.is_empty()),
    )
    .await?;
    let rows = entries
        .into_iter()
        .map(|e| {
            let ok = e.result == "SUCCESS";
            (
                when(ctx.lang, e.time),
                e.method,
                e.ip.unwrap_or_default(),
                e.device,
                ok,
            )
        })
        .collect();
    render(&HistoryPage {
        p: ProfileTexts::of(ctx.lang),
        rows,
        next: next.map(|c| format!("/account/history?cursor={}", encode(&c))),
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/account/passkeys.html")]
struct PasskeysPage {
    ctx: Ctx,
    p: &'static ProfileTexts,
    rows: Vec<Row>,
}

/// `GET /account/passkeys`.
pub async fn passkeys(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let user = ctx.require_user()?.clone();
    let p = ProfileTexts::of(ctx.lang);
    let rows = crate::auth::webauthn::store::of_user(&state.db, &user.user_id)
        .await?
        .into_iter()
        .map(CredentialView::from)
        .map(|c| Row {
            cells: vec![
                c.name,
                when(ctx.lang, c.created_at),
                c.last_used_at
                    .map_or_else(|| p.never.to_owned(), |t| when(ctx.lang, t)),
            ],
            current: false,
            id: c.id,
        })
        .collect();
    render(&PasskeysPage { p, rows, ctx })
}

#[derive(Template)]
#[template(path = "web/account/identities.html")]
struct IdentitiesPage {
    ctx: Ctx,
    p: &'static ProfileTexts,
    rows: Vec<Row>,
    providers: Vec<&'static str>,
}

/// `GET /account/identities`: linked Google/Naver/Kakao accounts.
pub async fn identities_page(State(state): State<AppState>, ctx: Ctx) -> PageResult {
    let user = ctx.require_user()?.clone();
    let rows: Vec<Row> = identities::list(&state.db, &user.user_id)
        .await?
        .into_iter()
        .map(|i| Row {
            cells: vec![
                i.provider,
                i.email.unwrap_or_default(),
                when(ctx.lang, i.created_at),
            ],
            current: false,
            id: i.id,
        })
        .collect();
    let providers = state
        .oauth
        .configured()
        .map(|p| p.id.as_str())
        .filter(|id| {
            !rows
                .iter()
                .any(|r| r.cells.first().is_some_and(|c| c == id))
        })
        .collect();
    render(&IdentitiesPage {
        p: ProfileTexts::of(ctx.lang),
        rows,
        providers,
        ctx,
    })
}

#[derive(Template)]
#[template(path = "web/account/delete.html")]
struct DeletePage {
    ctx: Ctx,
    p: &'static ProfileTexts,
}

/// `GET /account/delete`.
pub async fn delete(ctx: Ctx) -> PageResult {
    ctx.require_user()?;
    render(&DeletePage {
        p: ProfileTexts::of(ctx.lang),
        ctx,
    })
}
