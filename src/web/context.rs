//! What every page knows about its request (language, signed-in browser user, CSRF token, path)
//! and how a page handler answers: HTML, a redirect, or an API error shown as a friendly page.

use axum::{
    extract::{FromRequestParts, OriginalUri},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{Html, IntoResponse, Redirect, Response},
};

use super::{
    assets,
    i18n::{self, Common, Lang},
};
use crate::{
    app::AppState,
    auth::{AuthUser, extract, model::Role},
    error::AppError,
};

/// The request as a page sees it.
pub struct Ctx {
    /// Language of the page.
    pub lang: Lang,
    /// The browser session's user (pages ignore bearer tokens).
    pub user: Option<AuthUser>,
    /// The session's CSRF token, empty when signed out.
    pub csrf: String,
    /// Path and query of this page (the `next` of a sign-in).
    pub here: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // A stale or revoked cookie makes the page signed-out, not an error.
        let user = extract::authenticate_cookie(parts, state)
            .await
            .ok()
            .flatten();
        let lang = match (i18n::cookie_lang(&parts.headers), &user) {
            (Some(lang), _) => lang,
            // Signed in on a new browser: the profile's language, not the browser's.
            (None, Some(user)) => {
                match crate::auth::users::find_by_id(&state.db, &user.user_id).await {
                    Ok(Some(row)) => Lang::parse(&row.locale).unwrap_or(Lang::Ko),
                    _ => i18n::negotiate(&parts.headers),
                }
            }
            (None, None) => i18n::negotiate(&parts.headers),
        };
        let csrf = user
            .as_ref()
            .map(|u| state.secrets.csrf_token(&u.session_id))
            .unwrap_or_default();
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let here = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        Ok(Self {
            lang,
            user,
            csrf,
            here,
        })
    }
}

impl Ctx {
    /// Shared texts in the page's language.
    pub fn t(&self) -> &'static Common {
        Common::of(self.lang)
    }

    /// `ko` or `en`, for `<html lang>`.
    pub fn lang_tag(&self) -> &'static str {
        i18n::tag(self.lang)
    }

    /// Hashed URL of an asset.
    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    /// Error sentences for scripts (a JSON data block).
    pub fn messages_json(&self) -> String {
        i18n::error_messages_json(self.lang)
    }

    /// Whether someone is signed in.
    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }

    /// Whether the user may use the organizer pages.
    pub fn is_organizer(&self) -> bool {
        self.user
            .as_ref()
            .is_some_and(|u| u.role >= Role::Organizer)
    }

    /// Whether the user may use the admin pages.
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role >= Role::Admin)
    }

    /// The link that switches language and comes back here.
    pub fn switch_lang_url(&self) -> String {
        let to = match self.lang {
            Lang::Ko => "en",
            Lang::En => "ko",
        };
        format!("/lang?to={to}&next={}", encode(&self.here))
    }

    /// The sign-in link that returns here.
    pub fn sign_in_url(&self) -> String {
        format!("/account/sign-in?next={}", encode(&self.here))
    }

    /// The signed-in user, or a redirect to the sign-in page that comes back here.
    pub fn require_user(&self) -> Result<&AuthUser, PageError> {
        self.user
            .as_ref()
            .ok_or_else(|| PageError::Redirect(self.sign_in_url()))
    }

    /// The user when at least `role`; signed-out → sign-in, too low → 403 page.
    pub fn require_role(&self, role: Role) -> Result<&AuthUser, PageError> {
        let user = self.require_user()?;
        if user.role < role {
            return Err(AppError::forbidden("forbidden", "Your role does not allow this.").into());
        }
        Ok(user)
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Only same-site paths may be a `next` (no open redirects). Browsers drop tabs and newlines
/// from URLs, so `/\t/evil.example` would become `//evil.example`: any control character or space
/// is refused, and so are braces, which page scripts fill from form fields.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.chars().any(|c| {
                    c.is_control() || c.is_whitespace() || matches!(c, '\\' | '{' | '}')
                }) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// JSON for a `<script type="application/json">` block: every `<` escaped, so no text inside can
/// end the block or open a comment.
pub fn json_block<T: serde::Serialize>(value: &T) -> Result<String, PageError> {
    serde_json::to_string(value)
        .map(|json| json.replace('<', "\\u003c"))
        .map_err(|e| PageError::App(AppError::internal(anyhow::anyhow!(e))))
}

/// Why a page did not render.
#[derive(Debug)]
pub enum PageError {
    /// An API error, shown by `errors::friendly` as a page in the user's language.
    App(AppError),
    /// Go elsewhere first (sign in).
    Redirect(String),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::App(AppError::internal(anyhow::anyhow!("template: {e}")))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::App(e) => e.into_response(),
            Self::Redirect(to) => Redirect::to(&to).into_response(),
        }
    }
}

/// What page handlers return.
pub type PageResult = Result<Response, PageError>;

/// Renders a template as a page that no shared cache keeps (it may name the user).
pub fn render(page: &impl askama::Template) -> PageResult {
    let html = page.render()?;
    let mut response = (StatusCode::OK, Html(html)).into_response();
    let headers = response.headers_mut();
    // Pages can hold tickets, orders and other people's data (organizers): never stored, not
    // even by the browser's back/forward cache on a shared computer.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Accept-Language"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_only_ever_a_local_path() {
        assert_eq!(safe_next(Some("/e/1?x=2")), "/e/1?x=2");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        for sneaky in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/?p={password}",
        ] {
            assert_eq!(safe_next(Some(sneaky)), "/", "{sneaky:?}");
        }
    }

    #[test]
    fn a_json_block_cannot_be_closed_or_commented_from_inside() {
        let block = json_block(&serde_json::json!({"name": "</script><!--<script>"})).unwrap();
        assert!(!block.contains('<'));
    }
}
