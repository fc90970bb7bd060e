//! The built-in `test` gateway: no money moves, the payload picks the outcome, so tests and the
//! demo can drive every path. Payload: `{"scenario": "SUCCESS" | "DECLINE" | "FAIL_AFTER_MS",
//! "ms": 1500, "amount": "55000.00", "refund_scenario": "FAIL"}` (all but `scenario` optional;
//! `ms` is the gateway's latency before it answers, whatever the scenario).

use std::time::Duration;

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::provider::{
    Captured, Charge, PaymentProvider, Prepared, ProviderError, Refunded, WebhookEvent,
};
use crate::{
    catalog::money::Money,
    infra::secrets::{hex, hmac},
};

/// Header carrying the hex HMAC-SHA256 of a webhook body.
pub const SIGNATURE_HEADER: &str = "x-test-signature";

/// The longest simulated gateway delay.
const MAX_DELAY_MS: u64 = 10_000;

/// Marks a capture whose refunds fail (to exercise refund retries).
const REFUND_FAILS: &str = ".refund-fails";

/// The `test` provider, signing webhooks with a key derived from `SECRET_KEY`.
pub struct TestProvider {
    key: [u8; 32],
}

impl TestProvider {
    /// A provider with this webhook key.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The signature header value of a webhook body (for tests and the demo page).
    pub fn sign(&self, body: &[u8]) -> String {
        hex(&hmac(&self.key, body))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Scenario {
    Success,
    Decline,
    FailAfterMs,
}

#[derive(Deserialize)]
struct Payload {
    scenario: Scenario,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    refund_scenario: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
enum Hook {
    Captured {
        order_id: String,
        provider_ref: String,
        amount: String,
    },
    Canceled {
        order_id: String,
        provider_ref: String,
    },
}

fn parse_amount(raw: &str) -> Option<Money> {
    let d: rust_decimal::Decimal = raw.parse().ok()?;
    let minor = (d * rust_decimal::Decimal::from(100)).trunc();
    i64::try_from(minor).ok().map(Money::from_minor)
}

#[async_trait::async_trait]
impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    async fn prepare(&self, charge: &Charge) -> Result<Prepared, ProviderError> {
        Ok(Prepared {
            client_params: json!({
                "order_id": charge.order_id,
                "amount": charge.amount.to_string(),
                "currency": charge.currency,
                "order_name": charge.order_name,
                "scenarios": ["SUCCESS", "DECLINE", "FAIL_AFTER_MS"],
            }),
        })
    }

    async fn confirm(&self, charge: &Charge, payload: &Value) -> Result<Captured, ProviderError> {
        let payload: Payload = serde_json::from_value(payload.clone())
            .map_err(|e| ProviderError::Invalid(e.to_string()))?;
        if let Some(amount) = payload.amount.as_deref()
            && parse_amount(amount) != Some(charge.amount)
        {
            return Err(ProviderError::Invalid(
                "amount does not match the order".into(),
            ));
        }
        // `ms` is the gateway's latency in every scenario (FAIL_AFTER_MS then times out).
        let ms = payload.ms.unwrap_or(0).min(MAX_DELAY_MS);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match payload.scenario {
            Scenario::Success => {
                let marker = if payload.refund_scenario.as_deref() == Some("FAIL") {
                    REFUND_FAILS
                } else {
                    ""
                };
                Ok(Captured {
                    provider_ref: format!("test_{}{marker}", charge.order_id),
                    amount: charge.amount,
                })
            }
            Scenario::Decline => Err(ProviderError::Declined("card declined (test)".into())),
            Scenario::FailAfterMs => Err(ProviderError::Unavailable(
                "gateway timed out (test)".into(),
            )),
        }
    }

    async fn refund(
        &self,
        provider_ref: &str,
        _amount: Money,
        key: &str,
    ) -> Result<Refunded, ProviderError> {
        if provider_ref.ends_with(REFUND_FAILS) {
            return Err(ProviderError::Unavailable("refund failed (test)".into()));
        }
        Ok(Refunded {
            refund_ref: format!("test_refund_{key}"),
        })
    }

    fn parse_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, ProviderError> {
        let given = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ProviderError::Invalid("missing signature".into()))?;
        let expected = self.sign(body);
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ProviderError::Invalid("bad signature".into()));
        }
        let hook: Hook =
            serde_json::from_slice(body).map_err(|e| ProviderError::Invalid(e.to_string()))?;
        Ok(match hook {
            Hook::Captured {
                order_id,
                provider_ref,
                amount,
            } => WebhookEvent::Captured {
                order_id,
                capture: Captured {
                    provider_ref,
                    amount: parse_amount(&amount)
                        .ok_or_else(|| ProviderError::Invalid("bad amount".into()))?,
                },
            },
            Hook::Canceled {
                order_id,
                provider_ref,
            } => WebhookEvent::Canceled {
                order_id,
                provider_ref,
            },
        })
    }
}
