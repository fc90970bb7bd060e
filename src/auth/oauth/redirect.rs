//! The browser side of the redirect: where we may send the user back to, and the short-lived
//! signed cookie that binds `state` to the browser that started the sign-in.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use time::{Duration, OffsetDateTime};
use url::Url;

use crate::{
    error::{AppError, AppResult},
    infra::secrets::{constant_time_eq, hmac},
};

/// Name of the state cookie.
pub const STATE_COOKIE: &str = "bo_oauth";
/// How long a redirect may take.
pub const STATE_TTL: Duration = Duration::minutes(10);

/// Checks `return_to`: a path on our own origin (or a full URL of it, reduced to its path).
/// Anything that could leave the origin (`//host`, `/\host`, another scheme or host) is refused.
pub fn return_to(raw: Option<&str>, public_url: &Url) -> AppResult<String> {
    let invalid = || {
        AppError::invalid_field(
            "return_to",
            "invalid",
            "must be a path on this site, like /account",
        )
    };
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok("/".to_owned());
    };
    if raw.len() > 1000 || raw.chars().any(|c| c.is_control() || c == '\\') {
        return Err(invalid());
    }
    let url = public_url.join(raw).map_err(|_| invalid())?;
    if url.origin() != public_url.origin() || raw.starts_with("//") {
        return Err(invalid());
    }
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    Ok(path)
}

/// The cookie value: `state.expiry.mac`.
pub fn sign(key: &[u8; 32], state: &str, now: OffsetDateTime) -> String {
    let expires = (now + STATE_TTL).unix_timestamp();
    let payload = format!("{state}.{expires}");
    let mac = URL_SAFE_NO_PAD.encode(hmac(key, payload.as_bytes()));
    format!("{payload}.{mac}")
}

/// Whether the cookie is ours, unexpired and names this `state`.
pub fn matches(key: &[u8; 32], cookie: &str, state: &str, now: OffsetDateTime) -> bool {
    let mut parts = cookie.rsplitn(2, '.');
    let (Some(mac), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    let expected = URL_SAFE_NO_PAD.encode(hmac(key, payload.as_bytes()));
    if !constant_time_eq(mac, &expected) {
        return false;
    }
    let Some((cookie_state, expires)) = payload.rsplit_once('.') else {
        return false;
    };
    let fresh = expires
        .parse::<i64>()
        .is_ok_and(|e| e > now.unix_timestamp());
    fresh && constant_time_eq(cookie_state, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Url {
        Url::parse("https://tickets.example.com").expect("url")
    }

    #[test]
    fn return_to_stays_on_our_origin() {
        assert_eq!(return_to(None, &origin()).expect("default"), "/");
        assert_eq!(
            return_to(Some("/account?tab=1"), &origin()).expect("path"),
            "/account?tab=1"
        );
        assert_eq!(
            return_to(Some("https://tickets.example.com/e/1"), &origin()).expect("own url"),
            "/e/1"
        );
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "http://tickets.example.com/",
            "/a\nb",
        ] {
            assert!(
                return_to(Some(bad), &origin()).is_err(),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn state_cookies_bind_one_state_until_expiry() {
        let key = [3u8; 32];
        let now = OffsetDateTime::now_utc();
        let cookie = sign(&key, "abc", now);
        assert!(matches(&key, &cookie, "abc", now));
        assert!(!matches(&key, &cookie, "abd", now));
        assert!(!matches(&[4u8; 32], &cookie, "abc", now));
        assert!(!matches(&key, &cookie, "abc", now + STATE_TTL));
        assert!(!matches(&key, "abc", "abc", now));
    }
}
