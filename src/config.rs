//! Configuration: defaults, then `boxoffice.toml` (or `--config FILE`), then `BOXOFFICE_*` variables.

use std::{fmt, net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// A string that never appears in logs or debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A connection URL whose password is redacted when printed.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ServiceUrl(String);

impl ServiceUrl {
    /// Parses and keeps the URL as written.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.contains("://") {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!("`{value}` is not a URL (scheme://…)"))
        }
    }
    /// The full URL including credentials; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL scheme, lower case.
    pub fn scheme(&self) -> String {
        self.0
            .split("://")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

impl<'de> Deserialize<'de> for ServiceUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ServiceUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Replaces the password part of `scheme://user:pass@host` with `***`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `RATE_LIMITS` switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// Enforced.
    On,
    /// Disabled (benchmarks only).
    Off,
}

/// One OAuth provider's settings; a provider without a client id is off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthProvider {
    /// Client id issued by the provider.
    pub client_id: Option<String>,
    /// Client secret issued by the provider.
    pub client_secret: Option<Secret>,
    /// Override of the authorization endpoint.
    pub authorize_url: Option<String>,
    /// Override of the token endpoint.
    pub token_url: Option<String>,
    /// Override of the user-info endpoint.
    pub userinfo_url: Option<String>,
    /// Override of the JWKS endpoint.
    pub jwks_url: Option<String>,
    /// Override of the endpoint that revokes our grant on unlink.
    pub revoke_url: Option<String>,
}

/// OAuth providers by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Google (OpenID Connect).
    #[serde(default)]
    pub google: OAuthProvider,
    /// Naver.
    #[serde(default)]
    pub naver: OAuthProvider,
    /// Kakao.
    #[serde(default)]
    pub kakao: OAuthProvider,
}

/// The whole configuration (see the table in README.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bind address.
    pub listen: SocketAddr,
    /// Public origin for links, cookies and redirects.
    pub public_url: Url,
    /// Primary database.
    pub database_url: ServiceUrl,
    /// Read replica for anonymous catalog reads and reports.
    pub database_read_url: Option<ServiceUrl>,
    /// Pool size; by backend when unset.
    pub database_pool_max: Option<u32>,
    /// Most orders (or payment captures, or order reads) one group-commit batch writes; 1–64.
    pub order_batch_max: usize,
    /// Batches of one kind in the database at once, per instance; 1–8.
    pub order_batch_workers: usize,
    /// Redis; in-process memory backend when unset.
    pub redis_url: Option<ServiceUrl>,
    /// Prefix of every Redis key and channel (several deployments on one Redis).
    pub redis_key_prefix: String,
    /// SMTP relay; the outbox only when unset.
    pub smtp_url: Option<ServiceUrl>,
    /// Sender mailbox.
    pub mail_from: String,
    /// Comma-separated CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: String,
    /// Failed sign-ins from one IP within 15 minutes that block it automatically; 0 = off.
    pub ip_auto_block_failures: u32,
    /// How long an automatic IP block lasts, in minutes.
    pub ip_auto_block_minutes: u32,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Base64 secret of at least 32 bytes; generated and stored when unset.
    pub secret_key: Option<Secret>,
    /// Ed25519 PKCS#8 PEM file for signing tokens instead of database keys.
    pub jwt_key_file: Option<String>,
    /// OAuth providers.
    #[serde(default)]
    pub oauth: OAuthConfig,
    /// `on` or `off` (off only with bench mode).
    pub rate_limits: Switch,
    /// API requests per client IP per minute (in process, per instance).
    pub rate_limit_api_per_ip: u32,
    /// `POST /auth/*` requests per client IP per minute (shared through Redis).
    pub rate_limit_auth_per_ip: u32,
    /// Sign-in attempts per account per 15 minutes (shared through Redis).
    pub rate_limit_login_per_account: u32,
    /// Code and reset mails per address and kind per hour (shared through Redis).
    pub rate_limit_mail_per_account: u32,
    /// Enables bulk seeding for benchmarks.
    pub bench_mode: bool,
    /// Proof-of-work bits a queue join must show (`X-Queue-Challenge`); 0 = no challenge.
    pub queue_pow_bits: u32,
    /// Days finished mail stays in the outbox before it is deleted; 0 = kept for ever.
    pub mail_retention_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://localhost:8080").expect("static URL parses"),
            database_url: ServiceUrl("sqlite://boxoffice.db?mode=rwc".into()),
            database_read_url: None,
            database_pool_max: None,
            order_batch_max: crate::orders::batches::MAX_BATCH,
            order_batch_workers: 1,
            redis_url: None,
            redis_key_prefix: "bo:".into(),
            smtp_url: None,
            mail_from: "boxoffice <no-reply@localhost>".into(),
            trusted_proxies: String::new(),
            ip_auto_block_failures: 0,
            ip_auto_block_minutes: 15,
            log_format: LogFormat::Text,
            secret_key: None,
            jwt_key_file: None,
            oauth: OAuthConfig::default(),
            rate_limits: Switch::On,
            rate_limit_api_per_ip: 600,
            rate_limit_auth_per_ip: 60,
            rate_limit_login_per_account: 20,
            rate_limit_mail_per_account: 10,
            bench_mode: false,
            queue_pow_bits: 0,
            mail_retention_days: 30,
        }
    }
}

/// A configuration problem, printed as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads defaults → the TOML file (given, or `boxoffice.toml` if present) → `BOXOFFICE_*`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("boxoffice.toml")),
        }
        figment = figment.merge(
            Env::prefixed("BOXOFFICE_")
                .filter(|key| !key.as_str().starts_with("test_"))
                .split("__"),
        );
        let config: Config = figment.extract().map_err(|e| ConfigError(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: &str, msg: String| Err(ConfigError(format!("{key}: {msg}")));
        match self.public_url.scheme() {
            "http" | "https" => {}
            other => return err("PUBLIC_URL", format!("scheme `{other}` is not http(s)")),
        }
        if self.public_url.host_str().is_none() {
            return err("PUBLIC_URL", "has no host".into());
        }
        match self.database_url.scheme().as_str() {
            "sqlite" | "mysql" | "mariadb" => {}
            other => return err("DATABASE_URL", format!("unsupported scheme `{other}`")),
        }
        if let Some(url) = &self.redis_url {
            match url.scheme().as_str() {
                "redis" | "rediss" | "redis+cluster" => {}
                other => return err("REDIS_URL", format!("unsupported scheme `{other}`")),
            }
        }
        if let Some(url) = &self.smtp_url {
            match url.scheme().as_str() {
                "smtp" | "smtps" => {}
                other => return err("SMTP_URL", format!("unsupported scheme `{other}`")),
            }
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return err(
                "MAIL_FROM",
                format!("`{}` is not a mailbox", self.mail_from),
            );
        }
        if let Err(e) = self.trusted_proxy_nets() {
            return err("TRUSTED_PROXIES", e);
        }
        if !(1..=10_080).contains(&self.ip_auto_block_minutes) {
            return err(
                "IP_AUTO_BLOCK_MINUTES",
                "must be between 1 and 10080 (a week)".into(),
            );
        }
        if let Some(secret) = &self.secret_key {
            match crate::infra::secrets::decode_secret_key(secret.expose()) {
                Ok(_) => {}
                Err(e) => return err("SECRET_KEY", e),
            }
        }
        if self.database_pool_max == Some(0) {
            return err("DATABASE_POOL_MAX", "must be at least 1".into());
        }
        if !(1..=crate::orders::batches::MAX_BATCH).contains(&self.order_batch_max) {
            return err(
                "ORDER_BATCH_MAX",
                format!(
                    "must be between 1 and {}",
                    crate::orders::batches::MAX_BATCH
                ),
            );
        }
        if !(1..=8).contains(&self.order_batch_workers) {
            return err("ORDER_BATCH_WORKERS", "must be between 1 and 8".into());
        }
        for (key, value) in [
            ("RATE_LIMIT_API_PER_IP", self.rate_limit_api_per_ip),
            ("RATE_LIMIT_AUTH_PER_IP", self.rate_limit_auth_per_ip),
            (
                "RATE_LIMIT_LOGIN_PER_ACCOUNT",
                self.rate_limit_login_per_account,
            ),
            (
                "RATE_LIMIT_MAIL_PER_ACCOUNT",
                self.rate_limit_mail_per_account,
            ),
        ] {
            if value == 0 {
                return err(
                    key,
                    "must be at least 1 (use RATE_LIMITS=off in bench mode)".into(),
                );
            }
        }
        if self.mail_retention_days > 3650 {
            return err(
                "MAIL_RETENTION_DAYS",
                "must be at most 3650 (0 keeps mail for ever)".into(),
            );
        }
        if self.rate_limits == Switch::Off && !self.bench_mode {
            return err(
                "RATE_LIMITS",
                "`off` is accepted only with BENCH_MODE=true".into(),
            );
        }
        if self.bench_mode && !is_local_host(&self.public_url) {
            return err(
                "BENCH_MODE",
                "refused with a public PUBLIC_URL (use localhost)".into(),
            );
        }
        Ok(())
    }

    /// The parsed `TRUSTED_PROXIES` list.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{s}` is not a CIDR"))
            })
            .collect()
    }

    /// Whether cookies must be `Secure`.
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The public origin without a trailing slash.
    pub fn origin(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }
}

fn is_local_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Figment errors may span several lines; start-up prints one.
fn one_line(e: &figment::Error) -> String {
    let mut parts = Vec::new();
    for err in e.clone() {
        let key = err
            .path
            .iter()
            .map(|p| p.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("__");
        let source = err
            .metadata
            .as_ref()
            .map(|m| format!(" (from {})", m.name))
            .unwrap_or_default();
        if key.is_empty() {
            parts.push(format!("{}{source}", err.kind));
        } else {
            parts.push(format!("{key}: {}{source}", err.kind));
        }
    }
    parts.join("; ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("mysql://root:hunter2@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn rate_limits_off_needs_bench_mode() {
        let config = Config {
            rate_limits: Switch::Off,
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_zero_rate_limit_is_refused_with_its_key() {
        let config = Config {
            rate_limit_auth_per_ip: 0,
            ..Config::default()
        };
        let error = config.validate().expect_err("zero is refused");
        assert!(
            error.to_string().contains("RATE_LIMIT_AUTH_PER_IP"),
            "{error}"
        );
    }

    #[test]
    fn batch_sizes_and_workers_outside_their_range_are_refused_with_their_key() {
        for (config, key) in [
            (
                Config {
                    order_batch_max: 0,
                    ..Config::default()
                },
                "ORDER_BATCH_MAX",
            ),
            (
                Config {
                    order_batch_max: 65,
                    ..Config::default()
                },
                "ORDER_BATCH_MAX",
            ),
            (
                Config {
                    order_batch_workers: 0,
                    ..Config::default()
                },
                "ORDER_BATCH_WORKERS",
            ),
            (
                Config {
                    order_batch_workers: 9,
                    ..Config::default()
                },
                "ORDER_BATCH_WORKERS",
            ),
        ] {
            let error = config.validate().expect_err("out of range");
            assert!(error.to_string().contains(key), "{error}");
        }
        let one = Config {
            order_batch_max: 1,
            ..Config::default()
        };
        assert!(one.validate().is_ok(), "1 turns group commit off");
    }

    #[test]
    fn mail_retention_is_zero_for_ever_or_at_most_ten_years() {
        let days = |mail_retention_days| Config {
            mail_retention_days,
            ..Config::default()
        };
        assert!(days(0).validate().is_ok(), "0 keeps mail for ever");
        assert!(days(3650).validate().is_ok());
        let error = days(3651).validate().expect_err("out of range");
        assert!(error.to_string().contains("MAIL_RETENTION_DAYS"), "{error}");
    }
}
