//! The shape every payment gateway takes (Toss Payments, KakaoPay and the built-in `test`
//! provider): prepare a payment the buyer completes with the gateway, confirm (capture) it with
//! what the gateway handed back, refund an amount, and read signed callbacks. Card numbers never
//! reach us: the buyer gives them to the gateway.

use std::{collections::HashMap, sync::Arc};

use axum::http::HeaderMap;
use serde_json::Value;

use crate::catalog::money::Money;

/// What a provider needs to know about the order being paid.
#[derive(Clone, Debug)]
pub struct Charge {
    /// Our order id (the gateway's `orderId`).
    pub order_id: String,
    /// The amount to capture.
    pub amount: Money,
    /// ISO 4217 currency.
    pub currency: String,
    /// A short name for the gateway's page ("R석 외 2건").
    pub order_name: String,
}

/// What the buyer's page needs to open the gateway.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Parameters for the gateway's client SDK (never secrets).
    pub client_params: Value,
}

/// A captured payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// The gateway's reference (Toss `paymentKey`, KakaoPay `tid`).
    pub provider_ref: String,
    /// The amount captured.
    pub amount: Money,
}

/// A refund the gateway accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refunded {
    /// The gateway's reference of the refund.
    pub refund_ref: String,
}

/// What a gateway callback says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A payment was captured (for example after a redirect the buyer never came back from).
    Captured {
        /// Our order id.
        order_id: String,
        /// The capture.
        capture: Captured,
    },
    /// A payment was canceled or refunded at the gateway.
    Canceled {
        /// Our order id.
        order_id: String,
        /// The gateway's payment reference.
        provider_ref: String,
    },
}

/// Why a gateway call did not succeed. Provider text never reaches the buyer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The gateway declined (card refused, limit, fraud check): final.
    #[error("declined: {0}")]
    Declined(String),
    /// The payload did not come from this gateway or does not match the order.
    #[error("invalid payload: {0}")]
    Invalid(String),
    /// The gateway failed or did not answer in time: the outcome is unknown, retry later.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
}

/// One payment gateway.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Its name in URLs and records (`test`, `toss`, `kakaopay`).
    fn name(&self) -> &'static str;
    /// Starts a payment: what the buyer's page needs to open the gateway.
    async fn prepare(&self, charge: &Charge) -> Result<Prepared, ProviderError>;
    /// Captures the payment the buyer completed, from what the gateway handed back.
    /// Must be idempotent per order at the gateway (Toss and KakaoPay are).
    async fn confirm(&self, charge: &Charge, payload: &Value) -> Result<Captured, ProviderError>;
    /// Refunds `amount` of a capture. `key` makes retries safe (one refund per key).
    async fn refund(
        &self,
        provider_ref: &str,
        amount: Money,
        key: &str,
    ) -> Result<Refunded, ProviderError>;
    /// Checks a callback's signature and reads it.
    fn parse_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError>;
}

/// The configured providers, by name; `test` is always there and is the default.
#[derive(Clone)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn PaymentProvider>>,
    default: &'static str,
}

impl Providers {
    /// The given providers; the first is the default.
    pub fn new(providers: Vec<Arc<dyn PaymentProvider>>) -> Self {
        let default = providers.first().map_or("test", |p| p.name());
        Self {
            by_name: providers.into_iter().map(|p| (p.name(), p)).collect(),
            default,
        }
    }

    /// A provider by name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.by_name.get(name).cloned()
    }

    /// The default provider.
    pub fn default_provider(&self) -> Arc<dyn PaymentProvider> {
        self.by_name
            .get(self.default)
            .cloned()
            .expect("the default provider is registered")
    }
}
