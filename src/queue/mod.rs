//! The waiting room: a fair queue per event with a VIP lane, live positions over WebSocket,
//! abandonment detection and admission by capacity and rate, enforced at checkout.

pub mod memory;
pub mod pace;
pub mod ranked;
pub mod redis;
pub mod room;

use std::sync::Arc;

use crate::infra::redis::RedisHandle;

pub use memory::MemoryRoom;
pub use redis::RedisRoom;
pub use room::WaitingRoom;

/// The waiting room backend for this deployment: Redis when configured, else in process.
pub fn build(redis: Option<&RedisHandle>) -> Arc<dyn WaitingRoom> {
    match redis {
        Some(handle) => Arc::new(RedisRoom::new(handle.clone())),
        None => Arc::new(MemoryRoom::new()),
    }
}
