//! The `sell-out` scenario: a ticket opening. One event goes on sale with `--tickets`
//! general-admission tickets; `--buyers` buyers (one line of the tokens file each) each try once
//! to buy one — create the order, start the payment, confirm it with the test gateway — over
//! `--users` concurrent workers, until every buyer has tried. Then the server's own database is
//! checked for oversell, and the run fails if anything was oversold or does not add up.

mod oversell;
mod pace;
mod purchase;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Client;
use serde::Serialize;
use serde_json::json;

use crate::calibrate;
use crate::cli::Cli;
use crate::db::Database;
use crate::http;
use crate::organizer;
use crate::report::{PhaseReport, RunOutput};
use crate::runner::{self, RunConfig};
use crate::tokens;
pub use oversell::OversellCheck;
#[cfg(test)]
pub use oversell::StockFacts;
pub use pace::Pace;
use purchase::{PURCHASE, Purchase, SOLD_OUT};

/// How long a pending order holds its ticket: the longest the API allows, so that no hold
/// expires during a run.
const HOLD_SECONDS: u32 = 3600;

/// What the report shows of a sell-out beyond the per-step table.
#[derive(Debug, Clone, Serialize)]
pub struct SellOutSummary {
    /// The event created for the run.
    pub event_id: String,
    /// Its ticket product.
    pub product_id: String,
    /// Tickets on sale.
    pub tickets: u32,
    /// Buyers, each of whom tried once.
    pub buyers: u32,
    /// Concurrent workers.
    pub users: u32,
    /// Orders confirmed (as the buyers saw it).
    pub confirmed: u64,
    /// `409 sold_out` answers: buyers who came too late, as expected.
    pub sold_out: u64,
    /// Buyers who got neither a confirmed order nor `sold_out`.
    pub failed: u64,
    /// Confirmed orders per second.
    pub pace: Pace,
    /// The machine's hot-row ceiling from the same run, with `--with-calibrate`.
    pub ceiling: Option<Ceiling>,
    /// The database check; `None` when it could not run (the report's `failure` says why).
    pub oversell: Option<OversellCheck>,
}

/// The MariaDB hot-row `UPDATE` rate measured by calibrate in the same run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ceiling {
    /// Conditional single-row `UPDATE`s per second.
    pub hot_row_updates_per_s: f64,
    /// Connections calibrate used.
    pub calibrate_users: u32,
    /// Selling-phase confirmed orders/s divided by the ceiling.
    pub ratio: f64,
}

/// Runs calibrate (with `--with-calibrate`), sets up the sale, lets every buyer try once, and
/// checks the database.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let Some(first) = cli.targets.first() else {
        bail!("sell-out needs --target URL of a running boxoffice");
    };
    if config.rate.is_some() {
        bail!(
            "sell-out lets each buyer try once as fast as --users workers go; --rate does not apply"
        );
    }
    let database_url = cli.database_url.as_deref().context(
        "sell-out needs --database-url URL: the server's DATABASE_URL, read after the run to check for oversell",
    )?;
    let path = cli.tokens.as_deref().context(
        "sell-out needs --tokens FILE; create it with `BOXOFFICE_BENCH_MODE=true boxoffice bench seed --users N --out tokens.jsonl`",
    )?;
    let lines = tokens::load(path)?;
    let buyers = cli.buyers as usize;
    if lines.len() < buyers {
        bail!(
            "{} has {} lines for {buyers} buyers; each buyer needs its own (`boxoffice bench seed --users {buyers} …`)",
            path.display(),
            lines.len()
        );
    }
    let organizer_token = organizer::read_token(cli.organizer_token_file.as_deref(), "sell-out")?;
    // Find out now, not after the run, whether the check will be able to read the database.
    Database::open(database_url)
        .await
        .context("checking --database-url")?
        .close()
        .await;

    let mut output = RunOutput::default();
    let mut ceiling = None;
    if cli.with_calibrate {
        let calibrate_config = RunConfig {
            users: cli.calibrate_users,
            ..config.clone()
        };
        let calibrated = calibrate::run(cli, &calibrate_config).await?;
        ceiling = calibrate::hot_row_ceiling(&calibrated.phases);
        output.phases.extend(calibrated.phases);
        output.notes.extend(calibrated.notes);
    }

    let client = http::client(config.users, config.timeout)?;
    let sale = Sale::create(&client, first, &organizer_token, cli.tickets).await?;
    eprintln!(
        "sell-out: event {}, product {}",
        sale.event_id, sale.product_id
    );
    let access_tokens = lines
        .into_iter()
        .take(buyers)
        .map(|line| line.access_token)
        .collect();
    let purchase = Arc::new(Purchase::new(
        client,
        &cli.targets,
        &sale.product_id,
        access_tokens,
    )?);
    // Each request has its own timeout in the client; this only stops a purchase that hangs.
    let purchase_timeout = config.timeout * 3 + Duration::from_secs(1);
    let (mut result, run) = runner::run_each(
        Arc::clone(&purchase),
        buyers,
        config.users,
        purchase_timeout,
    )
    .await?;
    result.ops.extend(purchase.take_steps());
    let ok = |op: &str| result.ops.get(op).map_or(0, |stats| stats.ok);
    let (confirmed, sold_out) = (ok(PURCHASE), ok(SOLD_OUT));
    let pace = pace::pace(&purchase.confirmations(), u64::from(cli.tickets), run);
    output
        .phases
        .push(PhaseReport::measured("sell-out", result, run));

    let ceiling = ceiling.map(|updates: f64| Ceiling {
        hot_row_updates_per_s: updates,
        calibrate_users: cli.calibrate_users,
        ratio: if updates > 0.0 {
            pace.selling_confirmed_per_s / updates
        } else {
            0.0
        },
    });
    let oversell = match oversell::check(database_url, &sale.product_id, cli.tickets).await {
        Ok(check) => {
            if !check.passed() {
                output.failure = Some(format!(
                    "oversell check failed: oversell {}; {}",
                    check.oversell,
                    check.problems.join("; ")
                ));
            }
            if check.facts.confirmed_units != i64::try_from(confirmed).unwrap_or(i64::MAX) {
                output.notes.push(format!(
                    "the database holds {} confirmed units, the buyers saw {confirmed} confirmations (a confirmation whose answer was lost still counts in the database)",
                    check.facts.confirmed_units
                ));
            }
            Some(check)
        }
        Err(error) => {
            output.failure = Some(format!("oversell check could not run: {error:#}"));
            None
        }
    };
    output.notes.push(format!(
        "setup: a published event on sale now, one general-admission ticket product of {} units, no per-user limit, orders held {HOLD_SECONDS} s (none expires during the run)",
        cli.tickets
    ));
    output.notes.push(format!(
        "sell-out: each of {buyers} buyers (own token line) tried once over {} workers; the ops/s of its rows are over the whole run ({:.3} s)",
        config.users,
        run.as_secs_f64()
    ));
    output.sell_out = Some(SellOutSummary {
        event_id: sale.event_id,
        product_id: sale.product_id,
        tickets: cli.tickets,
        buyers: cli.buyers,
        users: config.users,
        confirmed,
        sold_out,
        failed: (buyers as u64).saturating_sub(confirmed + sold_out),
        pace,
        ceiling,
        oversell,
    });
    Ok(output)
}

/// The event and ticket product made for the run.
struct Sale {
    event_id: String,
    product_id: String,
}

impl Sale {
    /// A published event on sale now with one general-admission product of `tickets` units.
    async fn create(client: &Client, target: &str, token: &str, tickets: u32) -> Result<Self> {
        let event = organizer::published_event(
            client,
            target,
            token,
            "loadgen sell-out",
            tickets,
            json!({"order_hold_seconds": HOLD_SECONDS}),
        )
        .await?;
        let product = organizer::product(
            client,
            target,
            token,
            &json!({"event_id": event.id, "type": "TICKET", "name": "General admission",
                    "price": "55000", "quantity": tickets}),
        )
        .await?;
        Ok(Self {
            event_id: event.id,
            product_id: product["id"].as_str().context("product id")?.to_owned(),
        })
    }
}
