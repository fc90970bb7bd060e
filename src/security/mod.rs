//! Security monitoring: events for administrators.

pub mod events;
pub mod token_reuse;
