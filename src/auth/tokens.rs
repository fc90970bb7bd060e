//! Access tokens (EdDSA JWS, 15 minutes) and their per-instance verification cache.

use std::{sync::Arc, time::Duration as StdDuration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::Signature;
use jsonwebtoken::{Algorithm, Header};
use moka::sync::Cache;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    keys::KeyRing,
    model::Role,
    signature_checks::{Check, SignatureChecks},
};
use crate::{
    error::{AppError, AppResult},
    infra::secrets::token_digest,
};

/// Access token lifetime in seconds.
pub const ACCESS_TTL_SECONDS: i64 = 15 * 60;

/// What an access token says. No personal data: tokens are signed, not encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session family id.
    pub sid: String,
    /// Role at issue time.
    pub role: Role,
    /// VIP flag at issue time.
    pub vip: bool,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
}

/// Signs access tokens and verifies them, checking each signature once per instance.
pub struct Tokens {
    keys: Arc<KeyRing>,
    /// Keyed by the token's SHA-256, so the cache holds no usable token.
    verified: Cache<[u8; 32], Arc<Claims>>,
    signatures: SignatureChecks,
}

impl Tokens {
    /// A token service over the given keys. Call inside the Tokio runtime.
    pub fn new(keys: Arc<KeyRing>) -> Self {
        Self {
            keys,
            signatures: SignatureChecks::spawn(),
            verified: Cache::builder()
                .max_capacity(200_000)
                .time_to_live(StdDuration::from_secs(ACCESS_TTL_SECONDS as u64))
                .build(),
        }
    }

    /// The key ring (JWKS, reloads).
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// Issues an access token for a session.
    pub fn issue(
        &self,
        user_id: &str,
        sid: &str,
        role: Role,
        vip: bool,
        now: OffsetDateTime,
    ) -> AppResult<String> {
        let (kid, key) = self
            .keys
            .signing_key()
            .ok_or_else(|| AppError::unavailable("No signing key is active yet."))?;
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            sid: sid.to_owned(),
            role,
            vip,
            iat,
            exp: iat + ACCESS_TTL_SECONDS,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| AppError::internal(anyhow::anyhow!(e)))
    }

    /// Verifies a token's signature (once per instance) and expiry (against the injected clock).
    pub async fn verify(&self, token: &str, now: OffsetDateTime) -> AppResult<Arc<Claims>> {
        let cache_key = token_digest(token);
        let claims = match self.verified.get(&cache_key) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_signature(token, now).await?);
                self.verified.insert(cache_key, claims.clone());
                claims
            }
        };
        if claims.exp <= now.unix_timestamp() {
            return Err(AppError::unauthorized(
                "token_expired",
                "The access token has expired; refresh it.",
            ));
        }
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str, now: OffsetDateTime) -> AppResult<Claims> {
        let invalid =
            || AppError::unauthorized("unauthenticated", "The access token is not valid.");
        // JWS compact form, `header.payload.signature`; jsonwebtoken checks one signature at a
        // time, so the parts are taken apart here and the signature goes to the batch checker.
        let (signed, signature) = token.rsplit_once('.').ok_or_else(invalid)?;
        let (_, payload) = signed.split_once('.').ok_or_else(invalid)?;
        if payload.contains('.') {
            return Err(invalid());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid());
        }
        let kid = header.kid.ok_or_else(invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(invalid)?;
        let key = match self.keys.verifying_key(&kid) {
            Some(key) => key,
            None => {
                // A key rotated in on another instance: reload once before refusing.
                if let Err(e) = self.keys.reload_for_unknown_kid(now).await {
                    tracing::warn!(error = %e, "key reload failed");
                }
                self.keys.verifying_key(&kid).ok_or_else(invalid)?
            }
        };
        let check = Check {
            message: signed.as_bytes().to_vec(),
            signature,
            key,
        };
        if !self.signatures.valid(check).await? {
            return Err(invalid());
        }
        // Expiry is checked against the injected clock by the caller; `sub` and `exp` are
        // required by the type.
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        serde_json::from_slice(&payload).map_err(|_| invalid())
    }
}
