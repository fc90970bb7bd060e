//! Payments: the gateway trait, the built-in `test` gateway, and the pay/confirm/webhook flow.

pub mod flow;
pub mod handlers;
pub mod provider;
pub mod recent;
pub mod settle_batch;
pub mod test_provider;

pub use provider::{PaymentProvider, Providers};
