//! Korean and English page texts: the language of a request, and a `texts!` macro that lets each
//! page module declare its own strings in both languages next to the code that shows them.

use axum::http::{HeaderMap, header};

use crate::auth::extract::cookie;
pub use crate::auth::model::Locale as Lang;

/// Cookie remembering the chosen language (set by the switch and on sign-in).
pub const LANG_COOKIE: &str = "lang";

/// The language of a request: the `lang` cookie, else the best of `Accept-Language`, else Korean.
pub fn negotiate(headers: &HeaderMap) -> Lang {
    cookie_lang(headers).unwrap_or_else(|| accept_language(headers).unwrap_or(Lang::Ko))
}

/// The language the `lang` cookie asks for, if any.
pub fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v).ok())
}

/// The first of Korean or English in `Accept-Language` by quality.
pub fn accept_language(headers: &HeaderMap) -> Option<Lang> {
    let raw = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(f32, Lang)> = None;
    for part in raw.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or_default();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Ok(lang) = Lang::parse(tag)
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// The `lang=` cookie for a choice (a year; readable by scripts is harmless).
pub fn lang_cookie(lang: Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        tag(lang)
    )
}

/// `ko` or `en`.
pub fn tag(lang: Lang) -> &'static str {
    match lang {
        Lang::Ko => "ko",
        Lang::En => "en",
    }
}

/// Declares a struct of `&'static str` fields with a Korean and an English instance:
/// `texts! { pub struct Nav { home: "홈", "Home"; } }` → `Nav::of(lang).home`.
#[macro_export]
macro_rules! texts {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($field:ident: $ko:expr, $en:expr;)* }) => {
        $(#[$meta])*
        #[allow(missing_docs)]
        $vis struct $name { $(pub $field: &'static str,)* }
        impl $name {
            /// The texts in `lang`.
            pub fn of(lang: $crate::web::i18n::Lang) -> &'static Self {
                const KO: $name = $name { $($field: $ko,)* };
                const EN: $name = $name { $($field: $en,)* };
                match lang {
                    $crate::web::i18n::Lang::Ko => &KO,
                    $crate::web::i18n::Lang::En => &EN,
                }
            }
        }
    };
}

texts! {
    /// Texts of the frame every page shares.
    pub struct Common {
        site: "boxoffice", "boxoffice";
        skip: "본문으로 건너뛰기", "Skip to content";
        events: "공연·이벤트", "Events";
        my_orders: "내 주문", "My orders";
        account: "내 계정", "Account";
        manage: "관리", "Manage";
        admin: "운영", "Admin";
        sign_in: "로그인", "Sign in";
        sign_up: "회원가입", "Sign up";
        sign_out: "로그아웃", "Sign out";
        other_lang: "English", "한국어";
        other_lang_tag: "en", "ko";
        needs_js: "이 화면은 실시간으로 동작하므로 JavaScript가 필요합니다. 브라우저에서 JavaScript를 켜 주세요.", "This page is live and needs JavaScript. Please turn JavaScript on in your browser.";
        working: "처리 중…", "Working…";
        saved: "저장했습니다.", "Saved.";
        footer: "boxoffice — 공정한 대기열과 정확한 재고", "boxoffice — a fair queue and stock that adds up";
        error_generic: "요청을 처리하지 못했습니다.", "The request could not be completed.";
        error_network: "서버에 연결하지 못했습니다. 잠시 후 다시 시도해 주세요.", "Could not reach the server. Please try again shortly.";
    }
}

/// A friendly sentence for a stable error code, in `lang` (`None`: show the API's own detail).
pub fn error_message(lang: Lang, code: &str) -> Option<&'static str> {
    let (ko, en) = match code {
        "not_found" => (
            "찾으시는 페이지가 없습니다.",
            "We could not find that page.",
        ),
        "forbidden" => (
            "이 페이지를 볼 권한이 없습니다.",
            "You are not allowed to see this page.",
        ),
        "unauthenticated" => ("로그인이 필요합니다.", "Please sign in first."),
        "csrf_failed" => (
            "보안 토큰이 맞지 않습니다. 페이지를 새로 고친 뒤 다시 시도해 주세요.",
            "The security token did not match. Reload the page and try again.",
        ),
        "rate_limited" => ("요청이 너무 많습니다.", "Too many requests."),
        "ip_blocked" => (
            "이 네트워크에서의 접근이 차단되었습니다.",
            "Access from this network is blocked.",
        ),
        "invalid_credentials" => (
            "이메일 또는 비밀번호가 맞지 않습니다.",
            "The e-mail or password is wrong.",
        ),
        "account_locked" => (
            "로그인 실패가 많아 잠시 잠겼습니다.",
            "Too many failed sign-ins; the account is locked for a while.",
        ),
        "email_not_verified" => (
            "먼저 이메일 인증을 마쳐 주세요.",
            "Please confirm your e-mail address first.",
        ),
        "email_taken" => (
            "이미 가입된 이메일입니다.",
            "That e-mail address is already registered.",
        ),
        "validation_failed" => (
            "입력한 내용을 확인해 주세요.",
            "Please check what you entered.",
        ),
        "sold_out" => ("매진되었습니다.", "Sold out."),
        "seat_unavailable" => (
            "선택한 좌석을 이미 다른 분이 잡았습니다.",
            "Someone else has just taken those seats.",
        ),
        "limit_exceeded" => (
            "1인 구매 한도를 넘었습니다.",
            "That is more than the per-person limit.",
        ),
        "sale_not_open" => (
            "아직 판매가 시작되지 않았습니다.",
            "The sale has not opened yet.",
        ),
        "sale_closed" => ("판매가 종료되었습니다.", "The sale has closed."),
        "event_canceled" => ("취소된 공연입니다.", "This event has been canceled."),
        "admission_required" => (
            "대기열을 거쳐 입장해야 구매할 수 있습니다.",
            "Please go through the waiting room first.",
        ),
        "order_expired" => ("주문 유효 시간이 지났습니다.", "This order has expired."),
        "cancel_not_allowed" => (
            "취소 가능 기간이 지났습니다.",
            "This order can no longer be canceled.",
        ),
        "invalid_transition" => (
            "지금 상태에서는 할 수 없는 작업입니다.",
            "That is not possible in the order's current state.",
        ),
        "queue_not_open" => (
            "대기열이 아직 열리지 않았습니다.",
            "The waiting room is not open yet.",
        ),
        "queue_not_enabled" => (
            "이 공연은 대기열 없이 바로 구매할 수 있습니다.",
            "This event sells without a waiting room.",
        ),
        "payload_too_large" => ("보낸 내용이 너무 큽니다.", "What you sent is too large."),
        "internal_error" => (
            "일시적인 오류가 발생했습니다.",
            "Something went wrong on our side.",
        ),
        "service_unavailable" => (
            "잠시 서비스를 이용할 수 없습니다.",
            "The service is briefly unavailable.",
        ),
        _ => return None,
    };
    Some(match lang {
        Lang::Ko => ko,
        Lang::En => en,
    })
}

/// Codes shown by scripts, with their sentences, as a JSON object for the page's data block.
pub fn error_messages_json(lang: Lang) -> String {
    const CODES: [&str; 26] = [
        "not_found",
        "forbidden",
        "unauthenticated",
        "csrf_failed",
        "rate_limited",
        "ip_blocked",
        "invalid_credentials",
        "account_locked",
        "email_not_verified",
        "email_taken",
        "validation_failed",
        "sold_out",
        "seat_unavailable",
        "limit_exceeded",
        "sale_not_open",
        "sale_closed",
        "event_canceled",
        "admission_required",
        "order_expired",
        "cancel_not_allowed",
        "invalid_transition",
        "queue_not_open",
        "queue_not_enabled",
        "payload_too_large",
        "internal_error",
        "service_unavailable",
    ];
    let mut map = serde_json::Map::new();
    for code in CODES {
        if let Some(text) = error_message(lang, code) {
            map.insert(code.to_owned(), text.into());
        }
    }
    let common = Common::of(lang);
    map.insert("_generic".into(), common.error_generic.into());
    map.insert("_network".into(), common.error_network.into());
    map.insert("_working".into(), common.working.into());
    map.insert("_saved".into(), common.saved.into());
    // No `<` inside a script data block (it could end the block or open a comment).
    serde_json::Value::Object(map)
        .to_string()
        .replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_lang_cookie_wins_over_accept_language() {
        let h = headers(&[("cookie", "lang=en"), ("accept-language", "ko-KR,ko;q=0.9")]);
        assert_eq!(negotiate(&h), Lang::En);
    }

    #[test]
    fn accept_language_picks_the_highest_quality_supported_language() {
        let h = headers(&[("accept-language", "fr-FR, en;q=0.8, ko;q=0.5")]);
        assert_eq!(negotiate(&h), Lang::En);
        let h = headers(&[("accept-language", "ja, de")]);
        assert_eq!(negotiate(&h), Lang::Ko);
    }

    #[test]
    fn every_listed_error_code_has_a_sentence_in_both_languages() {
        let ko: serde_json::Value = serde_json::from_str(&error_messages_json(Lang::Ko)).unwrap();
        let en: serde_json::Value = serde_json::from_str(&error_messages_json(Lang::En)).unwrap();
        assert_eq!(ko.as_object().unwrap().len(), en.as_object().unwrap().len());
        assert!(ko.as_object().unwrap().len() > 25);
    }
}
