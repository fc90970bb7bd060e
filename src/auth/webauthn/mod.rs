//! Passkeys (WebAuthn / FIDO2): registration, identified and discoverable sign-in, management.
//! Relying party id and origin come from `PUBLIC_URL`.

pub mod ceremony;
pub mod handlers;
pub mod store;

use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::{config::Config, error::AppResult};

/// The relying party, when `PUBLIC_URL` allows one (a host name, not an IP address).
pub struct Passkeys(Option<Webauthn>);

impl Passkeys {
    /// Builds the relying party from `PUBLIC_URL`; an IP host leaves passkeys off.
    pub fn from_config(config: &Config) -> Self {
        let origin = &config.public_url;
        let built = origin.domain().and_then(|rp_id| {
            WebauthnBuilder::new(rp_id, origin)
                .and_then(|b| b.rp_name("boxoffice").build())
                .ok()
        });
        if built.is_none() {
            tracing::warn!("PUBLIC_URL is not a host name: passkeys are off");
        }
        Self(built)
    }

    /// The relying party, or 503 `passkeys_unavailable`.
    pub fn get(&self) -> AppResult<&Webauthn> {
        self.0.as_ref().ok_or_else(ceremony::unavailable)
    }
}
