//! Randomness comes from an injected source so tests can control it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

/// A source of cryptographically secure random bytes.
pub trait Rng: Send + Sync + 'static {
    /// Fills the buffer.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's generator.
#[derive(Debug, Default)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// A random opaque token: `bytes` of entropy, base64url.
pub fn token(rng: &dyn Rng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A uniformly random 6-digit code, zero-padded.
pub fn six_digit_code(rng: &dyn Rng) -> String {
    // Rejection sampling keeps the distribution uniform.
    loop {
        let mut buf = [0u8; 4];
        rng.fill(&mut buf);
        let n = u32::from_le_bytes(buf);
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_six_digits() {
        for _ in 0..100 {
            let code = six_digit_code(&OsRng);
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
    }
}
