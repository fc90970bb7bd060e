//! Account types: parsed at the edge, trusted inside.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;
use validator::ValidateEmail;

use crate::{db::entities::users, error::FieldError, infra::clock::from_db};

/// A user's id (UUID v7).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address as given and in its normalized (lookup) form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    original: String,
    normalized: String,
}

impl Email {
    /// Longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses an address: trimmed, NFC, lower-cased for lookups.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let original: String = raw.trim().nfc().collect();
        let invalid = |msg: &str| FieldError::new("email", "invalid_email", msg);
        if original.is_empty() {
            return Err(invalid("is required"));
        }
        if original.len() > Self::MAX_LEN {
            return Err(invalid("is longer than 254 bytes"));
        }
        if original
            .chars()
            .any(|c| crate::infra::text::is_forbidden(c) || c.is_whitespace())
        {
            return Err(invalid("contains spaces or control characters"));
        }
        if !original.validate_email() {
            return Err(invalid("is not an e-mail address"));
        }
        let normalized = original.to_lowercase();
        Ok(Self {
            original,
            normalized,
        })
    }

    /// As the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The lookup form.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// What a user may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// A buyer.
    User,
    /// Manages their own events.
    Organizer,
    /// Manages everything.
    Admin,
}

impl Role {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Organizer => "ORGANIZER",
            Self::Admin => "ADMIN",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "USER" => Ok(Self::User),
            "ORGANIZER" => Ok(Self::Organizer),
            "ADMIN" => Ok(Self::Admin),
            other => Err(format!("unknown role `{other}` (USER, ORGANIZER, ADMIN)")),
        }
    }
}

/// Account status.
pub mod status {
    /// Usable.
    pub const ACTIVE: &str = "ACTIVE";
    /// Disabled by an administrator: cannot sign in or refresh.
    pub const DISABLED: &str = "DISABLED";
    /// Soft-deleted.
    pub const DELETED: &str = "DELETED";
}

/// Interface and mail language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// Korean (default).
    Ko,
    /// English.
    En,
}

impl Locale {
    /// Parses `ko` / `en` (any case, region ignored).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let tag = raw.trim().to_ascii_lowercase();
        match tag.split(['-', '_']).next().unwrap_or_default() {
            "ko" => Ok(Self::Ko),
            "en" => Ok(Self::En),
            _ => Err(FieldError::new(
                "locale",
                "invalid_locale",
                "must be `ko` or `en`",
            )),
        }
    }
    /// The stored tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ko => "ko",
            Self::En => "en",
        }
    }
}

/// Validates a display name: trimmed, 1..=max characters, no control characters.
pub fn parse_name(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let value: String = raw.trim().nfc().collect();
    if value.is_empty() {
        return Err(FieldError::new(field, "required", "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(crate::infra::text::is_forbidden) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            crate::infra::text::FORBIDDEN_MESSAGE,
        ));
    }
    Ok(value)
}

/// A user as the API shows it (never the password hash).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Address as given.
    pub email: String,
    /// Full name.
    pub name: Option<String>,
    /// Public nickname.
    pub nickname: Option<String>,
    /// Role.
    pub role: Role,
    /// VIP lane in waiting rooms.
    pub vip: bool,
    /// Language.
    pub locale: Locale,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// When the address was confirmed.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub email_verified_at: Option<OffsetDateTime>,
    /// Sign-up time.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&users::Model> for UserView {
    fn from(u: &users::Model) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            nickname: u.nickname.clone(),
            role: u.role.parse().unwrap_or(Role::User),
            vip: u.vip,
            locale: Locale::parse(&u.locale).unwrap_or(Locale::Ko),
            email_verified: u.email_verified_at.is_some(),
            email_verified_at: u.email_verified_at.map(from_db),
            created_at: from_db(u.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_for_lookup() {
        let e = Email::parse("  Kim.MinJi@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "Kim.MinJi@Example.COM");
        assert_eq!(e.normalized(), "kim.minji@example.com");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "no-at-sign",
            "a@b@c",
            "nul\0@x.com",
            "sp ace@x.com",
            &"a".repeat(300),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn roles_parse_in_any_case() {
        assert_eq!("organizer".parse::<Role>(), Ok(Role::Organizer));
        assert!("root".parse::<Role>().is_err());
    }
}
