//! HTTP plumbing shared by every feature: extractors, middleware, fallbacks.

pub mod client_ip;
pub mod extract;
pub mod middleware;
pub mod page;
pub mod public_cache;
pub mod ratelimit;

pub use client_ip::ClientIp;
pub use extract::{ApiJson, ApiQuery};
