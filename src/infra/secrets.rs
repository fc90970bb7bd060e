//! Keys derived from `SECRET_KEY` (HKDF-SHA256), one per purpose.

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD},
};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit},
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::infra::rng::Rng;

/// Decodes a configured secret: base64 (standard or url-safe), at least 32 bytes.
pub fn decode_secret_key(value: &str) -> Result<Vec<u8>, String> {
    let value = value.trim();
    let bytes = STANDARD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .or_else(|_| URL_SAFE_NO_PAD.decode(value))
        .map_err(|_| "is not base64".to_owned())?;
    if bytes.len() < 32 {
        return Err(format!("has {} bytes; at least 32 are needed", bytes.len()));
    }
    Ok(bytes)
}

/// Encodes a freshly generated secret for storage.
pub fn encode_secret_key(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The purpose-bound keys.
#[derive(Clone)]
pub struct Secrets {
    csrf: [u8; 32],
    email_code: [u8; 32],
    at_rest: [u8; 32],
    /// For the queue tokens of the waiting room.
    pub queue_token: [u8; 32],
    /// For ticket QR codes.
    pub ticket_code: [u8; 32],
    /// For signed cookies (OAuth state).
    pub cookie: [u8; 32],
    /// Signs the built-in test payment provider's webhooks.
    pub test_payments: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

impl Secrets {
    /// Derives every key from the master secret.
    pub fn derive(master: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"boxoffice/v1"), master);
        let key = |info: &str| {
            let mut out = [0u8; 32];
            // 32 bytes is always a valid HKDF-SHA256 output length.
            hk.expand(info.as_bytes(), &mut out)
                .expect("32-byte HKDF output");
            out
        };
        Self {
            csrf: key("csrf"),
            email_code: key("email-code"),
            at_rest: key("at-rest"),
            queue_token: key("queue-token"),
            ticket_code: key("ticket-code"),
            cookie: key("cookie"),
            test_payments: key("test-payments"),
        }
    }

    /// The CSRF token of a browser session.
    pub fn csrf_token(&self, session_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac(&self.csrf, session_id.as_bytes()))
    }

    /// A keyed hash of a short code: a bare hash of 10^6 values is reversible.
    pub fn hash_code(&self, scope: &str, code: &str) -> String {
        hex(&hmac(
            &self.email_code,
            format!("{scope}\0{code}").as_bytes(),
        ))
    }

    /// Encrypts a value for storage (XChaCha20-Poly1305, random nonce).
    pub fn encrypt(&self, rng: &dyn Rng, plaintext: &[u8]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.at_rest).into());
        let mut nonce = [0u8; 24];
        rng.fill(&mut nonce);
        // Encryption with a valid key and nonce cannot fail.
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("AEAD encryption");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        STANDARD.encode(out)
    }

    /// Decrypts a value written by [`Secrets::encrypt`].
    pub fn decrypt(&self, stored: &str) -> anyhow::Result<Vec<u8>> {
        let raw = STANDARD.decode(stored)?;
        anyhow::ensure!(raw.len() > 24, "ciphertext too short");
        let (nonce, ciphertext) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.at_rest).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| anyhow::anyhow!("cannot decrypt: wrong SECRET_KEY?"))
    }
}

/// HMAC-SHA256.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// SHA-256 of a token, hex: how opaque tokens are stored.
pub fn hash_token(token: &str) -> String {
    hex(&token_digest(token))
}

/// SHA-256 of a token, raw: a lookup key that holds no usable token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Constant-time string equality.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::rng::OsRng;

    #[test]
    fn encryption_round_trips() {
        let secrets = Secrets::derive(&[7u8; 32]);
        let stored = secrets.encrypt(&OsRng, b"private key");
        assert_eq!(secrets.decrypt(&stored).expect("decrypts"), b"private key");
        let other = Secrets::derive(&[8u8; 32]);
        assert!(other.decrypt(&stored).is_err());
    }

    #[test]
    fn short_secret_keys_are_refused() {
        assert!(decode_secret_key(&STANDARD.encode([1u8; 16])).is_err());
        assert!(decode_secret_key(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(decode_secret_key("not base64!").is_err());
    }
}
