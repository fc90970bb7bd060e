//! Security monitoring: events for administrators, IP blocks.

pub mod events;
pub mod ip_blocks;
pub mod token_reuse;
