//! Passwords: policy, and Argon2id hashing off the async runtime, bounded by a semaphore.

use std::{collections::HashSet, sync::Arc};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
    password_hash::SaltString,
};
use tokio::sync::Semaphore;

use crate::{
    error::{AppError, AppResult, FieldError},
    infra::rng::Rng,
};

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 10;
/// Longest accepted password, in characters.
pub const MAX_LEN: usize = 128;

const COMMON: &str = include_str!("common_passwords.txt");

/// Hashes and checks passwords; at most one hash per core runs at a time.
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    dummy_hash: String,
    common: HashSet<String>,
}

/// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// Prepares the hasher, including the dummy hash used for unknown accounts.
    pub fn new(rng: &dyn Rng) -> anyhow::Result<Self> {
        let permits = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let dummy_hash = hash_blocking(rng, "dummy password for unknown accounts")?;
        let common = COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect();
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash,
            common,
        })
    }

    /// Checks length, the account's own address and the common-password list.
    pub fn check_policy(&self, password: &str, email_normalized: &str) -> Result<(), FieldError> {
        let chars = password.chars().count();
        let field = |code: &str, msg: &str| FieldError::new("password", code, msg);
        if chars < MIN_LEN {
            return Err(field("too_short", "must be at least 10 characters"));
        }
        if chars > MAX_LEN {
            return Err(field("too_long", "must be at most 128 characters"));
        }
        if password.contains('\0') {
            return Err(field("invalid_characters", "must not contain NUL"));
        }
        let lower = password.to_lowercase();
        if lower == email_normalized
            || lower == email_normalized.split('@').next().unwrap_or_default()
        {
            return Err(field("same_as_email", "must not be your e-mail address"));
        }
        if self.common.contains(&lower) {
            return Err(field("too_common", "is too common; choose another"));
        }
        Ok(())
    }

    /// Hashes a new password.
    pub async fn hash(&self, rng: Arc<dyn Rng>, password: String) -> AppResult<String> {
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        tokio::task::spawn_blocking(move || hash_blocking(rng.as_ref(), &password))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(AppError::internal)
    }

    /// Checks a password against a stored hash; with no hash it checks a dummy so
    /// unknown accounts take as long as wrong passwords.
    pub async fn verify(&self, password: String, stored: Option<String>) -> AppResult<bool> {
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(ok && known)
    }
}

fn hash_blocking(rng: &dyn Rng, password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::rng::OsRng;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hasher = PasswordHasher::new(&OsRng).expect("hasher");
        let rng: Arc<dyn Rng> = Arc::new(OsRng);
        let hash = hasher
            .hash(rng, "correct horse battery".into())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse battery".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse battery".into(), Some(hash))
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("dummy password for unknown accounts".into(), None)
                .await
                .expect("verify")
        );
    }

    #[test]
    fn policy_refuses_short_common_and_own_address() {
        let hasher = PasswordHasher::new(&OsRng).expect("hasher");
        assert!(hasher.check_policy("short", "a@b.co").is_err());
        assert!(hasher.check_policy("Password123", "a@b.co").is_err());
        assert!(
            hasher
                .check_policy("kim@example.com", "kim@example.com")
                .is_err()
        );
        assert!(hasher.check_policy(&"x".repeat(129), "a@b.co").is_err());
        assert!(
            hasher
                .check_policy("조용한 바다 위의 달빛", "a@b.co")
                .is_ok()
        );
    }
}
