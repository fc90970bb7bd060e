//! SeaORM entities, one per table. Ids are stored as their canonical strings.

pub mod audit_log;
pub mod email_codes;
pub mod ip_blocks;
pub mod login_attempts;
pub mod mail_outbox;
pub mod security_events;
pub mod settings;
pub mod signing_keys;
pub mod user_authorization;
pub mod users;
