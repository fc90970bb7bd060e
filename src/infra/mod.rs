//! Infrastructure shared by the features: time, randomness, secrets, pub/sub, mail, metrics,
//! group commit.

pub mod batch;
pub mod bus;
pub mod clock;
pub mod gauges;
pub mod mail;
pub mod metrics;
pub mod ratelimit;
pub mod redis;
pub mod rng;
pub mod secrets;
pub mod text;
