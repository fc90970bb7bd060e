//! The `seats` scenario: a published event with a generated N-seat map, then buyers reading its
//! state document (plain and gzip) and its versioned layout, as a seat-selection page does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Client, StatusCode, Url, header};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::http;
use crate::organizer::{self, ok_json};
use crate::report::RunOutput;
use crate::runner::{self, RunConfig};
use crate::scenario::{Scenario, Step};

/// Seats per generated block (100 rows of 50).
const BLOCK: u32 = 5_000;

/// Creates the event and map through the first target, then measures the reads on every target.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("seats needs --target URL of a running boxoffice");
    };
    let client = http::client(config.users, config.timeout)?;
    let mut output = RunOutput::default();
    let setup = match &cli.seats_path {
        Some(base) => Setup::existing(&client, first, base).await?,
        None => {
            let token = organizer::read_token(
                cli.organizer_token_file.as_deref(),
                "seats (without --seats-path of an existing map)",
            )?;
            let setup = Setup::create(&client, first, &token, cli.seats).await?;
            output.notes.push(format!(
                "setup: PUT of a {}-seat generated map took {} ms (one request, one write transaction)",
                cli.seats,
                setup.upload.as_millis()
            ));
            setup
        }
    };
    output
        .notes
        .push(format!("measured map: {}", setup.state_path));
    for (what, path, gzip) in [
        ("state", setup.state_path.as_str(), false),
        ("state (gzip)", setup.state_path.as_str(), true),
        ("layout (gzip)", setup.layout_path.as_str(), true),
        ("layout", setup.layout_path.as_str(), false),
    ] {
        let bytes = size(&client, first, path, gzip).await?;
        output.notes.push(format!("{what}: {bytes} bytes"));
    }
    output
        .notes
        .push(cold_state(&client, first, &setup.state_path).await?);

    for (name, path, gzip) in [
        ("state", &setup.state_path, false),
        ("state_gzip", &setup.state_path, true),
        ("layout_gzip", &setup.layout_path, true),
    ] {
        let urls = cli
            .targets
            .iter()
            .map(|t| http::endpoint(t, path))
            .collect::<Result<Vec<_>>>()?;
        let phase = Read {
            name,
            client: client.clone(),
            urls,
            gzip,
        };
        output.phases.push(runner::measure(phase, config).await);
    }
    output.notes.push(
        "state: answered from a per-instance snapshot rebuilt at most once a second in the background; under steady load no reader waits for a rebuild."
            .to_owned(),
    );
    Ok(output)
}

/// The event, performance and paths created for the run.
pub(crate) struct Setup {
    /// The published event.
    pub(crate) event_id: String,
    /// `…/seats/state` of its performance.
    pub(crate) state_path: String,
    layout_path: String,
    /// How long the map upload took.
    pub(crate) upload: Duration,
}

impl Setup {
    /// Uses a map that exists already (its current version, from the state document).
    async fn existing(client: &Client, target: &str, base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/');
        let state_path = format!("{base}/state");
        let state = ok_json(
            client
                .get(http::endpoint(target, &state_path)?)
                .send()
                .await,
            StatusCode::OK,
            "GET …/seats/state",
        )
        .await?;
        let version = state["version"].as_i64().context("version")?;
        let event_id = base
            .trim_start_matches("/events/")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            event_id,
            layout_path: format!("{base}/layout?version={version}"),
            state_path,
            upload: Duration::ZERO,
        })
    }

    /// Creates a published event with a generated `seats`-seat map (50 seats blocked).
    pub(crate) async fn create(
        client: &Client,
        target: &str,
        token: &str,
        seats: u32,
    ) -> Result<Self> {
        let event =
            organizer::published_event(client, target, token, "loadgen seats", seats, json!({}))
                .await?;
        let (event_id, pid) = (event.id, event.performance_id);
        let base = format!("/events/{event_id}/performances/{pid}/seats");
        let blocks: Vec<Value> = (0..seats.div_ceil(BLOCK))
            .map(|i| {
                let n = (seats - i * BLOCK).min(BLOCK);
                let rows = n.div_ceil(50);
                json!({"section": format!("S{}", i + 1), "rows": rows, "seats_per_row": n / rows,
                       "grade": if i == 0 { "VIP" } else { "R" }, "x": i * 700, "y": 0})
            })
            .collect();
        let started = Instant::now();
        let summary = ok_json(
            client
                .put(http::endpoint(target, &base)?)
                .bearer_auth(token)
                .json(&json!({"blocks": blocks}))
                .send()
                .await,
            StatusCode::OK,
            "PUT …/seats",
        )
        .await?;
        let upload = started.elapsed();
        let version = summary["version"].as_i64().context("version")?;
        // Some blocked seats, so the state is not all zeros.
        let labels: Vec<String> = (1..=50).map(|s| format!("S1-1-{s}")).collect();
        ok_json(
            client
                .patch(http::endpoint(target, &base)?)
                .bearer_auth(token)
                .json(&json!({"block": labels}))
                .send()
                .await,
            StatusCode::OK,
            "PATCH …/seats",
        )
        .await?;
        Ok(Self {
            event_id,
            state_path: format!("{base}/state"),
            layout_path: format!("{base}/layout?version={version}"),
            upload,
        })
    }
}

/// Body size of one answer.
async fn size(client: &Client, target: &str, path: &str, gzip: bool) -> Result<usize> {
    let mut request = client.get(http::endpoint(target, path)?);
    if gzip {
        request = request.header(header::ACCEPT_ENCODING, "gzip");
    }
    let response = request.send().await?;
    if response.status() != StatusCode::OK {
        bail!("GET {path}: {}", response.status());
    }
    Ok(response.bytes().await?.len())
}

/// Times the first state read after a quiet spell longer than the snapshot's freshness plus
/// grace (1.25 s), which waits for a rebuild from the database.
async fn cold_state(client: &Client, target: &str, path: &str) -> Result<String> {
    let url = http::endpoint(target, path)?;
    let mut times = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let started = Instant::now();
        client.get(url.clone()).send().await?.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(format!(
        "state read that waits for a rebuild from the database (first read after 1.5 s without readers), 5 tries: median {:.1} ms, max {:.1} ms",
        times[2], times[4]
    ))
}

/// One GET, plain or gzip, round-robin over the targets.
struct Read {
    name: &'static str,
    client: Client,
    urls: Vec<Url>,
    gzip: bool,
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
        let mut request = self.client.get(url.clone());
        if self.gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        let outcome = http::expect(request.send().await, StatusCode::OK).await;
        let op = match self.name {
            "layout_gzip" => "GET …/seats/layout?version= (gzip)",
            "state_gzip" => "GET …/seats/state (gzip)",
            _ => "GET …/seats/state",
        };
        (op, outcome)
    }
}
