//! Token signing keys: Ed25519, stored encrypted in the database with a state
//! (`NEXT` → `ACTIVE` → `RETIRED`), or one key from `JWT_KEY_FILE`.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{
    SigningKey, VerifyingKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use jsonwebtoken::EncodingKey;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::{
    db::{
        self,
        entities::signing_keys::{self, Column, Entity as Keys},
    },
    error::AppResult,
    infra::{
        clock::{from_db, to_db},
        rng::Rng,
        secrets::{Secrets, hex},
    },
};

/// A key added by rotation becomes the signing key after this delay (caches pick it up first).
pub const ACTIVATION_DELAY: Duration = Duration::minutes(5);
/// Retired keys still verify tokens for this long (longer than any access token lives).
pub const RETIRED_GRACE: Duration = Duration::hours(1);

/// Key states.
pub mod state {
    /// Published, not yet signing.
    pub const NEXT: &str = "NEXT";
    /// Signing.
    pub const ACTIVE: &str = "ACTIVE";
    /// Verifying only, until its grace ends.
    pub const RETIRED: &str = "RETIRED";
}

struct KeySet {
    signing: Option<(String, EncodingKey)>,
    // Decompressed once here, not on every check.
    verifying: HashMap<String, VerifyingKey>,
    jwks: serde_json::Value,
}

/// Where keys come from.
#[derive(Clone)]
enum Source {
    Database {
        db: DatabaseConnection,
        secrets: Arc<Secrets>,
    },
    File,
}

/// The keys this instance signs and verifies with.
pub struct KeyRing {
    set: RwLock<Arc<KeySet>>,
    source: Source,
    last_forced_reload: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Tokens with unknown `kid`s trigger at most one reload per this interval, so forged
/// tokens cannot turn into database load.
const FORCED_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

impl KeyRing {
    /// Loads keys from `JWT_KEY_FILE`.
    pub fn from_pem_file(path: &str) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("JWT_KEY_FILE: cannot read {path}: {e}"))?;
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| anyhow::anyhow!("JWT_KEY_FILE: not an Ed25519 PKCS#8 PEM key: {e}"))?;
        let kid = kid_for(&key);
        let set = build_set(vec![(kid.clone(), key, true)])?;
        Ok(Self {
            set: RwLock::new(Arc::new(set)),
            source: Source::File,
            last_forced_reload: std::sync::Mutex::new(None),
        })
    }

    /// Loads keys from the database, creating the first one if there is none.
    pub async fn from_database(
        db: DatabaseConnection,
        secrets: Arc<Secrets>,
        rng: &dyn Rng,
        now: OffsetDateTime,
    ) -> anyhow::Result<Self> {
        ensure_active_key(&db, &secrets, rng, now).await?;
        let ring = Self {
            set: RwLock::new(Arc::new(build_set(Vec::new())?)),
            source: Source::Database { db, secrets },
            last_forced_reload: std::sync::Mutex::new(None),
        };
        ring.reload(now).await?;
        Ok(ring)
    }

    /// Promotes due keys and reloads the set (every minute, and on an unknown `kid`).
    pub async fn reload(&self, now: OffsetDateTime) -> anyhow::Result<()> {
        let Source::Database { db, secrets } = &self.source else {
            return Ok(());
        };
        promote_due(db, now).await?;
        let rows = Keys::find().order_by_asc(Column::CreatedAt).all(db).await?;
        let mut keys = Vec::new();
        for row in rows {
            let live = match row.state.as_str() {
                state::RETIRED => row
                    .retired_at
                    .is_some_and(|t| from_db(t) + RETIRED_GRACE > now),
                _ => true,
            };
            if !live {
                continue;
            }
            let seed = secrets.decrypt(&row.private_key_enc)?;
            let seed: [u8; 32] = seed
                .try_into()
                .map_err(|_| anyhow::anyhow!("signing key {} is corrupt", row.kid))?;
            keys.push((
                row.kid,
                SigningKey::from_bytes(&seed),
                row.state == state::ACTIVE,
            ));
        }
        let set = build_set(keys)?;
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Reloads because a token named an unknown key, unless that happened moments ago.
    pub async fn reload_for_unknown_kid(&self, now: OffsetDateTime) -> anyhow::Result<()> {
        {
            let mut last = self
                .last_forced_reload
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < FORCED_RELOAD_INTERVAL) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        self.reload(now).await
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> Option<(String, EncodingKey)> {
        self.current().signing.clone()
    }

    /// The verification key for a `kid`.
    pub fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        self.current().verifying.get(kid).copied()
    }

    /// The public keys as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks.clone()
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn kid_for(key: &SigningKey) -> String {
    hex(&Sha256::digest(key.verifying_key().as_bytes())[..12])
}

fn build_set(keys: Vec<(String, SigningKey, bool)>) -> anyhow::Result<KeySet> {
    let mut signing = None;
    let mut verifying = HashMap::new();
    let mut jwks = Vec::new();
    for (kid, key, active) in keys {
        let public = key.verifying_key();
        verifying.insert(kid.clone(), public);
        if active {
            let der = key
                .to_pkcs8_der()
                .map_err(|e| anyhow::anyhow!("encode signing key: {e}"))?;
            signing = Some((kid.clone(), EncodingKey::from_ed_der(der.as_bytes())));
        }
        jwks.push(serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(public.as_bytes()),
        }));
    }
    Ok(KeySet {
        signing,
        verifying,
        jwks: serde_json::json!({ "keys": jwks }),
    })
}

fn new_key_row(
    secrets: &Secrets,
    rng: &dyn Rng,
    now: OffsetDateTime,
    key_state: &str,
    activates_at: OffsetDateTime,
) -> signing_keys::ActiveModel {
    let mut seed = [0u8; 32];
    rng.fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    signing_keys::ActiveModel {
        kid: Set(kid_for(&key)),
        state: Set(key_state.to_owned()),
        active_marker: Set((key_state == state::ACTIVE).then_some(1)),
        public_key: Set(URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())),
        private_key_enc: Set(secrets.encrypt(rng, &seed)),
        created_at: Set(to_db(now)),
        activates_at: Set(to_db(activates_at)),
        retired_at: Set(None),
    }
}

/// Inserts the first `ACTIVE` key; a racing instance loses on the unique marker and re-reads.
async fn ensure_active_key(
    db: &DatabaseConnection,
    secrets: &Secrets,
    rng: &dyn Rng,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let active = Keys::find()
        .filter(Column::State.eq(state::ACTIVE))
        .one(db)
        .await?;
    if active.is_some() {
        return Ok(());
    }
    match new_key_row(secrets, rng, now, state::ACTIVE, now)
        .insert(db)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if db::unique_violation(&e) == Some("ux_signing_keys_active") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Adds a `NEXT` key that signs after [`ACTIVATION_DELAY`]; returns its `kid`.
pub async fn rotate(
    db: &DatabaseConnection,
    secrets: &Secrets,
    rng: &dyn Rng,
    now: OffsetDateTime,
) -> anyhow::Result<String> {
    let row = new_key_row(secrets, rng, now, state::NEXT, now + ACTIVATION_DELAY)
        .insert(db)
        .await?;
    Ok(row.kid)
}

/// Makes the oldest due `NEXT` key active and retires the previous one. Safe on every instance.
async fn promote_due(db: &DatabaseConnection, now: OffsetDateTime) -> AppResult<()> {
    let due = Keys::find()
        .filter(Column::State.eq(state::NEXT))
        .filter(Column::ActivatesAt.lte(to_db(now)))
        .order_by_asc(Column::ActivatesAt)
        .one(db)
        .await?;
    let Some(next) = due else { return Ok(()) };
    db::write_tx(db, move |tx| {
        let kid = next.kid.clone();
        Box::pin(async move {
            Keys::update_many()
                .col_expr(Column::State, Expr::value(state::RETIRED))
                .col_expr(Column::ActiveMarker, Expr::value(Option::<i32>::None))
                .col_expr(Column::RetiredAt, Expr::value(Some(to_db(now))))
                .filter(Column::State.eq(state::ACTIVE))
                .filter(Column::Kid.ne(kid.as_str()))
                .exec(tx)
                .await?;
            Keys::update_many()
                .col_expr(Column::State, Expr::value(state::ACTIVE))
                .col_expr(Column::ActiveMarker, Expr::value(Some(1)))
                .filter(Column::Kid.eq(kid.as_str()))
                .filter(Column::State.eq(state::NEXT))
                .exec(tx)
                .await?;
            Ok(())
        })
    })
    .await
}
