//! One buyer's attempt: create an order for one ticket, start its payment, confirm it with the
//! test gateway — or learn that the tickets are gone.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::{Value, json};

use crate::http;
use crate::recorder::{OpStats, Recorder};
use crate::scenario::{Scenario, Status, Step};

/// Operation names in the report; the digits keep the steps in order in the table.
pub const CREATE: &str = "1 POST /orders → 201";
/// See [`CREATE`].
pub const PAY: &str = "2 POST /orders/{id}/pay → 200";
/// See [`CREATE`].
pub const CONFIRM: &str = "3 POST /orders/{id}/pay/confirm → 200 CONFIRMED";
/// The whole purchase, create to confirmation, of the buyers who got a ticket.
pub const PURCHASE: &str = "purchase: create + pay + confirm";
/// Buyers who came too late: an expected outcome, not an error.
pub const SOLD_OUT: &str = "sold out: POST /orders → 409 sold_out";

/// The three requests of a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `POST /orders`.
    Create,
    /// `POST /orders/{id}/pay`.
    Pay,
    /// `POST /orders/{id}/pay/confirm`.
    Confirm,
}

impl Stage {
    /// Operation name in the report.
    pub fn op(self) -> &'static str {
        match self {
            Self::Create => CREATE,
            Self::Pay => PAY,
            Self::Confirm => CONFIRM,
        }
    }

    /// Short name, for the purchase's error labels.
    fn short(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Pay => "pay",
            Self::Confirm => "confirm",
        }
    }
}

/// What an answer means for the buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST /orders` → 201: the new order's id.
    Created(String),
    /// `POST /orders` → 409 `sold_out`: the tickets are gone.
    SoldOut,
    /// `…/pay` → 200: the payment has started.
    PaymentStarted,
    /// `…/pay/confirm` → 200 with the order `CONFIRMED`.
    Confirmed,
    /// Anything else, labelled by status and error code (`409 limit_exceeded`).
    Failed(String),
}

/// Classifies the answer to one stage of a purchase.
pub fn classify(stage: Stage, status: StatusCode, body: &str) -> Answer {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (stage, status.as_u16()) {
        (Stage::Create, 201) => match field("id") {
            Some(id) => Answer::Created(id),
            None => Answer::Failed("201 without an order id".to_owned()),
        },
        (Stage::Create, 409) if field("code").as_deref() == Some("sold_out") => Answer::SoldOut,
        (Stage::Pay, 200) => Answer::PaymentStarted,
        (Stage::Confirm, 200) => match field("status").as_deref() {
            Some("CONFIRMED") => Answer::Confirmed,
            Some(other) => Answer::Failed(format!("200 but {other}")),
            None => Answer::Failed("200 without a status".to_owned()),
        },
        (_, code) => Answer::Failed(match field("code") {
            Some(problem) => format!("{code} {problem}"),
            None => code.to_string(),
        }),
    }
}

/// The purchase scenario: buyer `i` uses line `i` of the tokens file and makes one attempt.
pub struct Purchase {
    client: Client,
    /// `…/orders` of each target; buyers go round-robin over them.
    orders: Vec<Url>,
    tokens: Vec<String>,
    create_body: Value,
    confirm_body: Value,
    /// Per-request latency and outcome of each stage.
    steps: Recorder,
    /// When the first buyer started.
    first_request: OnceLock<Instant>,
    /// Offsets from the first request of each confirmation.
    confirmations: Mutex<Vec<Duration>>,
}

/// One buyer: its target's orders URL and its access token.
pub struct Buyer {
    orders: Url,
    token: String,
}

impl Purchase {
    /// Prepares the requests for `tokens.len()` buyers of `product_id`.
    pub fn new(
        client: Client,
        targets: &[String],
        product_id: &str,
        tokens: Vec<String>,
    ) -> Result<Self> {
        let orders = targets
            .iter()
            .map(|target| http::endpoint(target, "/orders"))
            .collect::<Result<Vec<_>>>()?;
        anyhow::ensure!(!orders.is_empty(), "no --target given");
        Ok(Self {
            client,
            orders,
            tokens,
            create_body: json!({"items": [{"product_id": product_id, "quantity": 1}]}),
            confirm_body: json!({"provider_payload": {"scenario": "SUCCESS"}}),
            steps: Recorder::default(),
            first_request: OnceLock::new(),
            confirmations: Mutex::new(Vec::new()),
        })
    }

    /// What each stage recorded, leaving it empty.
    pub fn take_steps(&self) -> std::collections::BTreeMap<&'static str, OpStats> {
        self.steps.take()
    }

    /// Offsets from the first request at which orders were confirmed, in no particular order.
    pub fn confirmations(&self) -> Vec<Duration> {
        self.confirmations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends one stage's request, records it, and says what it meant; `Err` (a label for the
    /// purchase) when no answer came.
    async fn call(&self, stage: Stage, request: RequestBuilder) -> Result<Answer, String> {
        let began = Instant::now();
        let answer = async {
            let response = request.send().await?;
            let status = response.status();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>(classify(stage, status, &body))
        }
        .await;
        let elapsed = began.elapsed();
        match answer {
            // Sold-out answers have their own row at the purchase level.
            Ok(Answer::SoldOut) => Ok(Answer::SoldOut),
            Ok(Answer::Failed(label)) => {
                let outcome = Ok(Status::Unexpected(label.clone()));
                self.steps.record(stage.op(), &outcome, elapsed);
                Ok(Answer::Failed(label))
            }
            Ok(answer) => {
                self.steps.record(stage.op(), &Ok(Status::Ok), elapsed);
                Ok(answer)
            }
            Err(error) => {
                self.steps
                    .record(stage.op(), &Err(anyhow::Error::new(error)), elapsed);
                Err(format!("{}: no answer", stage.short()))
            }
        }
    }
}

impl Scenario for Purchase {
    type User = Buyer;

    fn name(&self) -> &'static str {
        "sell-out"
    }

    fn user(&self, index: usize) -> Result<Buyer> {
        let token = self
            .tokens
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("no token line for buyer {index}"))?;
        Ok(Buyer {
            orders: self.orders[index % self.orders.len()].clone(),
            token: token.clone(),
        })
    }

    async fn step(&self, buyer: &mut Buyer) -> Step {
        let first = *self.first_request.get_or_init(Instant::now);
        let stopped = |stage: Stage, label: String| {
            (
                PURCHASE,
                Ok(Status::Unexpected(format!("{}: {label}", stage.short()))),
            )
        };
        let create = self
            .client
            .post(buyer.orders.clone())
            .bearer_auth(&buyer.token)
            .json(&self.create_body);
        let order = match self.call(Stage::Create, create).await {
            Ok(Answer::Created(id)) => id,
            Ok(Answer::SoldOut) => return (SOLD_OUT, Ok(Status::Ok)),
            Ok(Answer::Failed(label)) => return stopped(Stage::Create, label),
            Ok(other) => return stopped(Stage::Create, format!("{other:?}")),
            Err(no_answer) => return (PURCHASE, Ok(Status::Unexpected(no_answer))),
        };
        let pay_url = format!("{}/{order}/pay", buyer.orders);
        for (stage, url, body) in [
            (Stage::Pay, pay_url.clone(), json!({})),
            (
                Stage::Confirm,
                format!("{pay_url}/confirm"),
                self.confirm_body.clone(),
            ),
        ] {
            let request = self.client.post(url).bearer_auth(&buyer.token).json(&body);
            match self.call(stage, request).await {
                Ok(Answer::PaymentStarted | Answer::Confirmed) => {}
                Ok(Answer::Failed(label)) => return stopped(stage, label),
                Ok(other) => return stopped(stage, format!("{other:?}")),
                Err(no_answer) => return (PURCHASE, Ok(Status::Unexpected(no_answer))),
            }
        }
        self.confirmations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(first.elapsed());
        (PURCHASE, Ok(Status::Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBLEM: &str =
        r#"{"type":"about:blank","title":"Conflict","status":409,"code":"sold_out","detail":"x"}"#;

    #[test]
    fn classifies_each_stage() {
        assert_eq!(
            classify(
                Stage::Create,
                StatusCode::CREATED,
                r#"{"id":"o1","status":"PENDING"}"#
            ),
            Answer::Created("o1".into())
        );
        assert_eq!(
            classify(Stage::Create, StatusCode::CONFLICT, PROBLEM),
            Answer::SoldOut
        );
        assert_eq!(
            classify(Stage::Pay, StatusCode::OK, r#"{"provider":"test"}"#),
            Answer::PaymentStarted
        );
        assert_eq!(
            classify(Stage::Confirm, StatusCode::OK, r#"{"status":"CONFIRMED"}"#),
            Answer::Confirmed
        );
    }

    #[test]
    fn labels_everything_else_by_status_and_code() {
        let limit = PROBLEM.replace("sold_out", "limit_exceeded");
        assert_eq!(
            classify(Stage::Create, StatusCode::CONFLICT, &limit),
            Answer::Failed("409 limit_exceeded".into())
        );
        // sold_out is only expected when creating; at confirmation it is a failure.
        assert_eq!(
            classify(Stage::Confirm, StatusCode::CONFLICT, PROBLEM),
            Answer::Failed("409 sold_out".into())
        );
        assert_eq!(
            classify(Stage::Pay, StatusCode::BAD_GATEWAY, "<html>"),
            Answer::Failed("502".into())
        );
        assert_eq!(
            classify(Stage::Confirm, StatusCode::OK, r#"{"status":"PENDING"}"#),
            Answer::Failed("200 but PENDING".into())
        );
        assert_eq!(
            classify(Stage::Create, StatusCode::CREATED, "{}"),
            Answer::Failed("201 without an order id".into())
        );
    }
}
