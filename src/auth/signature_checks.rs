//! Ed25519 signature checks in batches. At a ticket opening every buyer shows this instance a
//! token it has not seen yet, and checking each signature alone is the largest cost of a queue
//! join. Checks that arrive together are verified together (`ed25519_dalek::verify_batch`: one
//! multiscalar multiplication, about half the work per signature); a batch with a bad signature
//! in it is checked again one by one, so each token gets its own verdict. A lone check is
//! verified alone at once: the batch only forms under a crowd (see `infra::batch`).

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::{
    error::AppResult,
    infra::batch::{Batcher, FlushFuture},
};

/// Beyond this many signatures a batch saves little more and holds a worker thread longer.
const MAX_BATCH: usize = 64;

/// One signature to check: the signed bytes, the signature and the key it claims.
pub struct Check {
    /// The signed bytes (a JWS's `header.payload`).
    pub message: Vec<u8>,
    /// The signature over them.
    pub signature: Signature,
    /// The public key it must verify under.
    pub key: VerifyingKey,
}

/// Verifies Ed25519 signatures, batching those that arrive together.
pub struct SignatureChecks {
    batcher: Batcher<Check, bool>,
}

impl SignatureChecks {
    /// Starts the checking worker. Call inside the Tokio runtime.
    pub fn spawn() -> Self {
        Self {
            batcher: Batcher::spawn("ed25519", MAX_BATCH, 1, flush),
        }
    }

    /// Whether the signature is valid (an error only when the service is shutting down).
    pub async fn valid(&self, check: Check) -> AppResult<bool> {
        self.batcher.run(check).await
    }
}

fn flush(checks: Vec<Check>) -> FlushFuture<bool> {
    // About 20 µs of CPU per signature, on the worker's thread: a batch is over in a
    // millisecond or two, cheaper than a hop to the blocking pool.
    Box::pin(async move { verdicts(&checks).into_iter().map(Ok).collect() })
}

/// One verdict per check, in order.
fn verdicts(checks: &[Check]) -> Vec<bool> {
    if checks.len() > 1 {
        let messages: Vec<&[u8]> = checks.iter().map(|c| c.message.as_slice()).collect();
        let signatures: Vec<Signature> = checks.iter().map(|c| c.signature).collect();
        let keys: Vec<VerifyingKey> = checks.iter().map(|c| c.key).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return vec![true; checks.len()];
        }
    }
    checks
        .iter()
        .map(|c| c.key.verify(&c.message, &c.signature).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn signed(key: &SigningKey, message: &str) -> Check {
        Check {
            message: message.as_bytes().to_vec(),
            signature: key.sign(message.as_bytes()),
            key: key.verifying_key(),
        }
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_batch_of_good_signatures_is_accepted_whole() {
        let checks: Vec<_> = (0..10)
            .map(|i| signed(&key(1), &format!("token {i}")))
            .collect();
        assert_eq!(verdicts(&checks), vec![true; 10]);
    }

    #[test]
    fn a_forged_signature_in_a_batch_fails_alone() {
        let mut checks: Vec<_> = (0..6)
            .map(|i| signed(&key(1), &format!("token {i}")))
            .collect();
        // Signed by another key, claiming ours.
        checks[2].signature = key(2).sign(b"token 2");
        // A signature moved onto other bytes.
        checks[4].message = b"token 4, promoted to admin".to_vec();
        assert_eq!(
            verdicts(&checks),
            vec![true, true, false, true, false, true]
        );
    }

    #[test]
    fn a_lone_check_is_verified_alone() {
        let mut check = signed(&key(3), "alone");
        assert_eq!(verdicts(std::slice::from_ref(&check)), vec![true]);
        check.message = b"changed".to_vec();
        assert_eq!(verdicts(&[check]), vec![false]);
    }

    #[tokio::test]
    async fn concurrent_checks_each_get_their_own_verdict() {
        let checks = std::sync::Arc::new(SignatureChecks::spawn());
        let runs: Vec<_> = (0..100)
            .map(|i| {
                let checks = checks.clone();
                tokio::spawn(async move {
                    let mut check = signed(&key(1), &format!("token {i}"));
                    if i % 7 == 0 {
                        check.message.push(b'!');
                    }
                    (i, checks.valid(check).await.expect("running"))
                })
            })
            .collect();
        for run in runs {
            let (i, valid) = run.await.expect("task");
            assert_eq!(valid, i % 7 != 0, "check {i}");
        }
    }
}
