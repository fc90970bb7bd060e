//! Security monitoring: events for administrators.

pub mod events;
