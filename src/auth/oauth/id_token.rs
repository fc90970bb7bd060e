//! OpenID Connect ID tokens (Google): signature against the provider's JWKS, then `iss`,
//! `aud`, `exp` (by our clock) and `nonce`.

use std::{sync::Arc, time::Duration as StdDuration};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use moka::sync::Cache;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use super::providers::errors;
use crate::{error::AppResult, infra::secrets::constant_time_eq};

/// Issuers Google signs as.
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock difference tolerated on `exp`.
const LEEWAY_SECONDS: i64 = 60;

/// Key sets by URL, kept an hour; an unknown `kid` fetches again (keys rotate).
pub struct JwksCache(Cache<String, Arc<JwkSet>>);

impl Default for JwksCache {
    fn default() -> Self {
        Self(
            Cache::builder()
                .max_capacity(16)
                .time_to_live(StdDuration::from_secs(3600))
                .build(),
        )
    }
}

/// The claims we use.
#[derive(Debug)]
pub struct IdClaims {
    /// The provider's user id.
    pub sub: String,
    /// Address.
    pub email: Option<String>,
    /// Whether the provider vouches for the address.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    exp: i64,
    nonce: Option<String>,
    email: Option<String>,
    // A boolean, though older tokens sent the string "true".
    #[serde(default)]
    email_verified: serde_json::Value,
    name: Option<String>,
}

async fn key_set(
    cache: &JwksCache,
    http: &reqwest::Client,
    url: &Url,
    kid: &str,
) -> AppResult<Arc<JwkSet>> {
    if let Some(set) = cache.0.get(url.as_str())
        && set.find(kid).is_some()
    {
        return Ok(set);
    }
    let response = http.get(url.clone()).send().await.map_err(|e| {
        tracing::warn!(
            timeout = e.is_timeout(),
            connect = e.is_connect(),
            "JWKS request failed"
        );
        errors::provider_unavailable()
    })?;
    if !response.status().is_success() {
        tracing::warn!(status = response.status().as_u16(), "JWKS request refused");
        return Err(errors::provider_error());
    }
    let set: JwkSet = response.json().await.map_err(|_| {
        tracing::warn!("JWKS unreadable");
        errors::provider_error()
    })?;
    let set = Arc::new(set);
    cache.0.insert(url.as_str().to_owned(), set.clone());
    Ok(set)
}

/// Verifies an ID token; every failure is 401 `oauth_token_invalid`.
pub async fn verify(
    cache: &JwksCache,
    http: &reqwest::Client,
    jwks_url: &Url,
    token: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: OffsetDateTime,
) -> AppResult<IdClaims> {
    let bad = || errors::token_invalid("The provider's ID token is not valid.");
    let header = jsonwebtoken::decode_header(token).map_err(|_| bad())?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(bad());
    }
    let kid = header.kid.ok_or_else(bad)?;
    let set = key_set(cache, http, jwks_url, &kid).await?;
    let jwk = set.find(&kid).ok_or_else(bad)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| bad())?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&GOOGLE_ISSUERS);
    // Expiry is checked below against the injected clock, not the system's.
    validation.validate_exp = false;
    validation.required_spec_claims = ["sub", "exp", "iss", "aud"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let claims = jsonwebtoken::decode::<RawClaims>(token, &key, &validation)
        .map_err(|_| bad())?
        .claims;
    if claims.exp + LEEWAY_SECONDS <= now.unix_timestamp() {
        return Err(errors::token_invalid(
            "The provider's ID token has expired; start again.",
        ));
    }
    if let Some(expected) = nonce
        && !claims
            .nonce
            .as_deref()
            .is_some_and(|got| constant_time_eq(got, expected))
    {
        return Err(errors::token_invalid(
            "The provider's ID token does not belong to this sign-in.",
        ));
    }
    let email_verified = match &claims.email_verified {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => s == "true",
        _ => false,
    };
    Ok(IdClaims {
        sub: claims.sub,
        email: claims.email,
        email_verified,
        name: claims.name,
    })
}
