//! The `catalog` scenario: what a crowd reads before a ticket opening — the event list, a
//! product, and the seat-state document of a 50,000-seat stadium — all anonymous, so all
//! served from the service's per-second caches.

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode, Url};
use serde_json::json;

use crate::cli::Cli;
use crate::http;
use crate::organizer;
use crate::report::RunOutput;
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Step};
use crate::seats::Setup;

/// Creates a stadium event with a ticket product through the first target, then measures the
/// three reads on every target.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("catalog needs --target URL of a running boxoffice");
    };
    let token = organizer::read_token(cli.organizer_token_file.as_deref(), "catalog")?;
    let token = token.as_str();
    let client = http::client(config.users, config.timeout)?;
    let setup = Setup::create(&client, first, token, cli.seats).await?;
    let standing = json!({"event_id": setup.event_id, "type": "TICKET", "name": "Standing", "price": "99000", "quantity": 1});
    // The stadium's capacity is all seats: a standing product does not fit; use a merch item.
    let tshirt = json!({"event_id": setup.event_id, "type": "MERCH", "name": "Tour T-shirt", "price": "39000", "quantity": 1000});
    let product = match organizer::product(&client, first, token, &standing).await {
        Ok(p) => p,
        Err(_) => organizer::product(&client, first, token, &tshirt).await?,
    };
    let product_id = product["id"].as_str().context("product id")?.to_owned();
    let mut output = RunOutput::default();
    output.notes.push(format!(
        "setup: a published event with a {}-seat map (uploaded in {} ms) and one product; every read is anonymous",
        cli.seats,
        setup.upload.as_millis()
    ));
    for (name, op, path) in [
        ("events", "GET /events", "/events?limit=20".to_owned()),
        (
            "product",
            "GET /products/{id}",
            format!("/products/{product_id}"),
        ),
        ("seat_state", "GET …/seats/state", setup.state_path.clone()),
    ] {
        let urls = cli
            .targets
            .iter()
            .map(|t| http::endpoint(t, &path))
            .collect::<Result<Vec<_>>>()?;
        let phase = Read {
            name,
            op,
            client: client.clone(),
            urls,
        };
        output.phases.push(runner::measure(phase, config).await);
    }
    output.notes.push(
        "reads are answered from per-instance caches (catalog: 1 s, invalidated on change; seat state: rebuilt at most once a second)"
            .to_owned(),
    );
    Ok(output)
}

/// One anonymous GET, round-robin over the targets.
struct Read {
    name: &'static str,
    op: &'static str,
    client: Client,
    urls: Vec<Url>,
}

impl Scenario for Read {
    type User = Url;

    fn name(&self) -> &'static str {
        self.name
    }

    fn user(&self, index: usize) -> Result<Url> {
        Ok(self.urls[index % self.urls.len()].clone())
    }

    async fn step(&self, url: &mut Url) -> Step {
        (
            self.op,
            http::expect(self.client.get(url.clone()).send().await, StatusCode::OK).await,
        )
    }
}
