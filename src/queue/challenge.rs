//! A hook that may demand work from a client before it takes a place in the queue (and so
//! before it can be admitted): nothing by default, or a proof of work that makes mass joins by
//! scripted accounts cost CPU time.

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

/// Header carrying the client's answer to the proof-of-work challenge.
pub const POW_HEADER: &str = "x-queue-challenge";

/// Decides whether a join may proceed.
pub trait ChallengeProvider: Send + Sync + 'static {
    /// Ok to let the join through; an error (403 `challenge_required`) tells the client what to
    /// solve.
    fn check(&self, headers: &HeaderMap, user_id: &str, event_id: &str) -> AppResult<()>;
}

/// Lets everyone through.
pub struct NoChallenge;

impl ChallengeProvider for NoChallenge {
    fn check(&self, _: &HeaderMap, _: &str, _: &str) -> AppResult<()> {
        Ok(())
    }
}

/// Hashcash-style: `X-Queue-Challenge: <nonce>` such that
/// `SHA-256("{user_id}:{event_id}:{nonce}")` starts with `bits` zero bits. Bound to user and
/// event so one answer cannot be shared; verifying costs one hash.
pub struct ProofOfWork {
    /// Leading zero bits required (each bit doubles the client's expected work).
    pub bits: u32,
}

impl ProofOfWork {
    /// Whether `nonce` solves the challenge for this user and event.
    pub fn solves(&self, user_id: &str, event_id: &str, nonce: &str) -> bool {
        let digest = Sha256::digest(format!("{user_id}:{event_id}:{nonce}").as_bytes());
        leading_zero_bits(&digest) >= self.bits
    }
}

impl ChallengeProvider for ProofOfWork {
    fn check(&self, headers: &HeaderMap, user_id: &str, event_id: &str) -> AppResult<()> {
        let answer = headers
            .get(POW_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 64);
        match answer {
            Some(nonce) if self.solves(user_id, event_id, nonce) => Ok(()),
            _ => Err(AppError::new(
                StatusCode::FORBIDDEN,
                "challenge_required",
                format!(
                    "Send `{POW_HEADER}: <nonce>` where SHA-256(\"{user_id}:{event_id}:<nonce>\") starts with {} zero bits.",
                    self.bits
                ),
            )),
        }
    }
}

fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut bits = 0;
    for b in bytes {
        if *b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// The provider configured by `QUEUE_POW_BITS` (0: none).
pub fn configured(bits: u32) -> std::sync::Arc<dyn ChallengeProvider> {
    if bits == 0 {
        std::sync::Arc::new(NoChallenge)
    } else {
        std::sync::Arc::new(ProofOfWork { bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solved_proof_of_work_is_accepted_and_an_unsolved_one_refused() {
        let pow = ProofOfWork { bits: 8 };
        let nonce = (0u64..)
            .map(|n| n.to_string())
            .find(|n| pow.solves("u", "e", n))
            .unwrap_or_default();
        let mut headers = HeaderMap::new();
        assert!(pow.check(&headers, "u", "e").is_err());
        headers.insert(POW_HEADER, nonce.parse().expect("header value"));
        assert!(pow.check(&headers, "u", "e").is_ok());
        assert!(
            pow.check(&headers, "other-user", "e").is_err()
                || pow.solves("other-user", "e", &nonce)
        );
    }
}
