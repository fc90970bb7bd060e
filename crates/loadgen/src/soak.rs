//! The `soak` scenario: mixed traffic for a long time (10 minutes by default) — anonymous catalog
//! reads, signed-in reads of one's orders, and buyers placing and canceling orders — to show that
//! throughput, p99 and the server's memory stay flat. Every second is kept and charted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode, Url};
use serde_json::json;

use crate::cli::Cli;
use crate::http;
use crate::organizer;
use crate::report::RunOutput;
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Status, Step};
use crate::tokens::{self, TokenLine};

/// Sets up an event with a large general-admission ticket through the first target, then runs
/// the mix on every target while sampling the server's memory.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("soak needs --target URL of a running boxoffice");
    };
    let Some(tokens_path) = cli.tokens.as_deref() else {
        bail!("soak needs --tokens FILE of seeded buyers (boxoffice bench seed)");
    };
    let buyers = tokens::load(tokens_path)?;
    if buyers.is_empty() {
        bail!("soak: {} holds no buyers", tokens_path.display());
    }
    let token = organizer::read_token(cli.organizer_token_file.as_deref(), "soak")?;
    let client = http::client(config.users, config.timeout)?;
    let event =
        organizer::published_event(&client, first, &token, "loadgen soak", 1_000_000, json!({}))
            .await?;
    let product = organizer::product(
        &client,
        first,
        &token,
        &json!({"event_id": event.id, "type": "TICKET", "name": "Soak", "price": "10000", "quantity": 1_000_000}),
    )
    .await?;
    let product_id = product["id"].as_str().context("product id")?.to_owned();
    let targets = cli
        .targets
        .iter()
        .map(|t| Url::parse(t).with_context(|| format!("target {t}")))
        .collect::<Result<Vec<_>>>()?;
    let buyer_count = buyers.len();
    let mix = Mix {
        client,
        targets,
        buyers: Arc::new(buyers),
        event_id: event.id.clone(),
        product_id,
    };

    let started = std::time::Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = cli.server_pid.map(|pid| {
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                if let Some(mib) = crate::queue::rss_mib(pid) {
                    samples
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((started.elapsed().as_secs(), mib));
                }
            }
        })
    });
    let mut output = RunOutput::default();
    output.phases.push(runner::measure(mix, config).await);
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    output.rss_mib = std::mem::take(
        &mut *samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    output.notes.push(format!(
        "mix per virtual user, in turn: GET /events, GET /events/{{id}}, GET /orders (signed in), POST /orders + PUT /orders/{{id}}/cancel; {} seeded buyers over {} target(s)",
        buyer_count,
        cli.targets.len()
    ));
    if let (Some(first), Some(last)) = (output.rss_mib.first(), output.rss_mib.last()) {
        output.notes.push(format!(
            "server RSS {:.0} MiB after {} s, {:.0} MiB after {} s",
            first.1, first.0, last.1, last.0
        ));
    }
    Ok(output)
}

/// The mixed traffic.
struct Mix {
    client: Client,
    targets: Vec<Url>,
    buyers: Arc<Vec<TokenLine>>,
    event_id: String,
    product_id: String,
}

/// One virtual user: its target, its buyer and where it is in the mix.
struct User {
    base: Url,
    token: String,
    turn: u64,
}

impl Scenario for Mix {
    type User = User;

    fn name(&self) -> &'static str {
        "soak"
    }

    fn user(&self, index: usize) -> Result<User> {
        Ok(User {
            base: self.targets[index % self.targets.len()].clone(),
            token: self.buyers[index % self.buyers.len()].access_token.clone(),
            turn: index as u64,
        })
    }

    async fn step(&self, user: &mut User) -> Step {
        user.turn += 1;
        let url = |path: &str| user.base.join(path);
        match user.turn % 4 {
            0 => (
                "GET /events",
                get(&self.client, url("/events?limit=20"), None).await,
            ),
            1 => (
                "GET /events/{id}",
                get(
                    &self.client,
                    url(&format!("/events/{}", self.event_id)),
                    None,
                )
                .await,
            ),
            2 => (
                "GET /orders",
                get(&self.client, url("/orders?limit=10"), Some(&user.token)).await,
            ),
            _ => ("order + cancel", self.order_and_cancel(user).await),
        }
    }
}

async fn get<E: std::error::Error + Send + Sync + 'static>(
    client: &Client,
    url: Result<Url, E>,
    token: Option<&str>,
) -> anyhow::Result<Status> {
    let mut request = client.get(url?);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    http::expect(request.send().await, StatusCode::OK).await
}

impl Mix {
    /// Places an order for one ticket and cancels it again, so stock and the buyer's limits stay
    /// where they were however long the soak runs.
    async fn order_and_cancel(&self, user: &User) -> anyhow::Result<Status> {
        let created = self
            .client
            .post(user.base.join("/orders")?)
            .bearer_auth(&user.token)
            .json(&json!({"items": [{"product_id": self.product_id, "quantity": 1}]}))
            .send()
            .await?;
        if created.status() != StatusCode::CREATED {
            return Ok(http::status_check(created.status(), StatusCode::CREATED));
        }
        let order: serde_json::Value = created.json().await?;
        let id = order["id"].as_str().context("order id")?;
        let canceled = self
            .client
            .put(user.base.join(&format!("/orders/{id}/cancel"))?)
            .bearer_auth(&user.token)
            .json(&json!({}))
            .send()
            .await;
        http::expect(canceled, StatusCode::OK).await
    }
}
