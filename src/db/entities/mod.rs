//! SeaORM entities, one per table. Ids are stored as their canonical strings.

pub mod audit_log;
pub mod email_codes;
pub mod events;
pub mod ip_blocks;
pub mod login_attempts;
pub mod mail_outbox;
pub mod notify_requests;
pub mod package_components;
pub mod performances;
pub mod product_variants;
pub mod products;
pub mod seat_layouts;
pub mod seats;
pub mod security_events;
pub mod settings;
pub mod shipping_options;
pub mod signing_keys;
pub mod stock_counters;
pub mod stock_movements;
pub mod user_authorization;
pub mod users;
