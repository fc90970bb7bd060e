//! Errors a person sees: on page paths (and unknown paths a browser asks for) a problem+json
//! answer from anywhere in the stack — handler, rate limit, IP block, panic — becomes a page in the
//! reader's language with the same status, the wait for a 429 and the request id for a 500.

use askama::Template;
use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    assets,
    i18n::{self, Common, Lang},
};
use crate::http::middleware::{PAGE_CSP, Unrouted};

/// Paths served as pages (never JSON).
pub fn is_page_path(path: &str) -> bool {
    path == "/"
        || path == "/lang"
        || ["/e/", "/account", "/checkout", "/manage"]
            .iter()
            .any(|p| path.starts_with(p))
}

fn accepts_html(req: &Request) -> bool {
    req.method() == Method::GET
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

crate::texts! {
    /// Texts of the error pages.
    pub struct ErrorTexts {
        title_404: "페이지를 찾을 수 없습니다", "Page not found";
        title_403: "접근할 수 없습니다", "Not allowed";
        title_429: "잠시 후 다시 시도해 주세요", "Please wait a moment";
        title_500: "문제가 생겼습니다", "Something went wrong";
        title_other: "요청을 처리하지 못했습니다", "The request could not be completed";
        wait_before: "다시 시도하기까지", "You can try again in";
        seconds: "초", "seconds";
        request_id: "요청 번호", "Request id";
        request_id_help: "문의하실 때 이 번호를 알려 주세요.", "Please quote this number if you contact us.";
        home: "첫 화면으로", "Back to the events";
        sign_in: "로그인하기", "Sign in";
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    lang: &'static str,
    t: &'static Common,
    e: &'static ErrorTexts,
    css: String,
    status: u16,
    title: &'a str,
    message: String,
    retry_after: Option<String>,
    request_id: Option<String>,
    signed_out: bool,
}

/// Turns problem+json answers to browsers on page paths into friendly pages.
pub async fn friendly(req: Request, next: Next) -> Response {
    let page = is_page_path(req.uri().path());
    let html = accepts_html(&req);
    if !page && !html {
        return next.run(req).await;
    }
    let lang = i18n::negotiate(req.headers());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(req).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    let convert = is_problem && (page || response.extensions().get::<Unrouted>().is_some());
    if !convert {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = problem["code"].as_str().unwrap_or_default();
    let detail = problem["detail"].as_str().unwrap_or_default();
    let retry_after = parts
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = parts.status;
    let body = render(lang, status, code, detail, retry_after.clone(), request_id);
    let mut out = (status, body).into_response();
    // Keep what the stack decided (security headers, Retry-After, cookies), but not the length
    // or type of the JSON it replaced.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::CONTENT_SECURITY_POLICY
        {
            out.headers_mut().append(name, value.clone());
        }
    }
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Also for an unknown path or a panic, which left with the API's policy or none.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out
}

fn render(
    lang: Lang,
    status: StatusCode,
    code: &str,
    detail: &str,
    retry_after: Option<String>,
    request_id: Option<String>,
) -> Body {
    let e = ErrorTexts::of(lang);
    let title = match status.as_u16() {
        404 => e.title_404,
        401 | 403 => e.title_403,
        429 => e.title_429,
        500..=599 => e.title_500,
        _ => e.title_other,
    };
    let message = i18n::error_message(lang, code)
        .map(str::to_owned)
        .unwrap_or_else(|| detail.to_owned());
    let page = ErrorPage {
        lang: i18n::tag(lang),
        t: Common::of(lang),
        e,
        css: assets::url("app.css"),
        status: status.as_u16(),
        title,
        message,
        retry_after,
        request_id: request_id.filter(|_| status.is_server_error()),
        signed_out: status == StatusCode::UNAUTHORIZED,
    };
    Body::from(
        page.render()
            .unwrap_or_else(|_| format!("{} {title}", status.as_u16())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn page(
        lang: Lang,
        status: StatusCode,
        code: &str,
        wait: Option<&str>,
        id: Option<&str>,
    ) -> String {
        let body = render(
            lang,
            status,
            code,
            "detail from the API",
            wait.map(str::to_owned),
            id.map(str::to_owned),
        );
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn too_many_requests_says_how_long_to_wait_in_the_readers_language() {
        let html = page(
            Lang::Ko,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some("7"),
            None,
        )
        .await;
        assert!(html.contains("잠시 후 다시 시도해 주세요"));
        assert!(html.contains("<strong>7</strong> 초"));
        let html = page(
            Lang::En,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some("7"),
            None,
        )
        .await;
        assert!(html.contains("You can try again in <strong>7</strong> seconds"));
    }

    #[tokio::test]
    async fn a_server_error_shows_the_request_id_and_no_internals() {
        let html = page(
            Lang::En,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            None,
            Some("req-123"),
        )
        .await;
        assert!(html.contains("Something went wrong"));
        assert!(html.contains("<code>req-123</code>"));
        assert!(
            !html.contains("detail from the API"),
            "the sentence for the code, not the detail"
        );
        // Client errors do not show an id.
        let html = page(
            Lang::En,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
            Some("req-9"),
        )
        .await;
        assert!(!html.contains("req-9"));
    }
}
