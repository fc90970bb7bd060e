//! Signed queue tokens: an HMAC over user, event and expiry, so hot queue calls need no JWT
//! verification and no lookup. One key (`Secrets::queue_token`), a distinct kind per purpose so
//! a token of one kind is never accepted as another.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::infra::secrets::{constant_time_eq, hmac};

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `queue_token`: proves a place in an event's queue (status, leave, ws-ticket).
    Queue,
    /// `admission_token`: proves an admission slot (checkout).
    Admission,
    /// WebSocket ticket: single use, 30 s.
    Socket,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Queue => "q1",
            Kind::Admission => "a1",
            Kind::Socket => "w1",
        }
    }
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The user.
    pub user_id: String,
    /// The event.
    pub event_id: String,
    /// Absolute expiry, ms since the epoch.
    pub expires_at_ms: i64,
    /// Free-form extra (a nonce for socket tickets), empty otherwise.
    pub extra: String,
}

/// Signs claims as a token of `kind`.
pub fn sign(key: &[u8; 32], kind: Kind, claims: &Claims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(format!(
        "{}|{}|{}|{}",
        claims.user_id, claims.event_id, claims.expires_at_ms, claims.extra
    ));
    let head = format!("{}.{payload}", kind.tag());
    let sig = URL_SAFE_NO_PAD.encode(hmac(key, head.as_bytes()));
    format!("{head}.{sig}")
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token of this kind, or the signature does not match.
    Invalid,
    /// Signed by us but past its expiry.
    Expired,
}

/// Verifies a token of `kind` at `now_ms`.
pub fn verify(key: &[u8; 32], kind: Kind, token: &str, now_ms: i64) -> Result<Claims, Refusal> {
    // Bounded before any work: these arrive from anyone.
    if token.len() > 600 {
        return Err(Refusal::Invalid);
    }
    let (head, sig) = token.rsplit_once('.').ok_or(Refusal::Invalid)?;
    let (tag, payload) = head.split_once('.').ok_or(Refusal::Invalid)?;
    if tag != kind.tag() {
        return Err(Refusal::Invalid);
    }
    let expected = URL_SAFE_NO_PAD.encode(hmac(key, head.as_bytes()));
    if !constant_time_eq(sig, &expected) {
        return Err(Refusal::Invalid);
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Refusal::Invalid)?;
    let mut parts = decoded.splitn(4, '|');
    let (Some(user_id), Some(event_id), Some(exp), Some(extra)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Invalid);
    };
    let expires_at_ms = exp.parse::<i64>().map_err(|_| Refusal::Invalid)?;
    if expires_at_ms <= now_ms {
        return Err(Refusal::Expired);
    }
    Ok(Claims {
        user_id: user_id.to_owned(),
        event_id: event_id.to_owned(),
        expires_at_ms,
        extra: extra.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            user_id: "u1".into(),
            event_id: "e1".into(),
            expires_at_ms: 1_000,
            extra: String::new(),
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let key = [7u8; 32];
        let token = sign(&key, Kind::Queue, &claims());
        assert_eq!(verify(&key, Kind::Queue, &token, 999), Ok(claims()));
        assert_eq!(
            verify(&key, Kind::Queue, &token, 1_000),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_token_of_one_kind_or_key_is_not_accepted_as_another() {
        let key = [7u8; 32];
        let token = sign(&key, Kind::Queue, &claims());
        assert_eq!(
            verify(&key, Kind::Admission, &token, 0),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            verify(&[8u8; 32], Kind::Queue, &token, 0),
            Err(Refusal::Invalid)
        );
        let forged = token.replacen("q1.", "q1.x", 1);
        assert_eq!(verify(&key, Kind::Queue, &forged, 0), Err(Refusal::Invalid));
        assert_eq!(
            verify(&key, Kind::Queue, "garbage", 0),
            Err(Refusal::Invalid)
        );
    }
}
