#![forbid(unsafe_code)]
//! Load generator for boxoffice, plus calibration of the machine it runs on.

mod auth;
mod calibrate;
mod catalog;
mod chart;
mod cli;
mod cmdline;
mod db;
mod error_text;
mod http;
mod machine;
mod markdown;
mod organizer;
mod queue;
mod recorder;
mod report;
mod runner;
mod scenario;
mod schedule;
mod seats;
mod sellout;
mod soak;
mod tokens;

use anyhow::{Result, bail};
use clap::Parser;
use time::OffsetDateTime;

use crate::cli::{Cli, ScenarioName};
use crate::report::{Report, RunOutput};
use crate::runner::RunConfig;

/// The same allocator as the server, so the generator takes as little of the shared cores as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let started = OffsetDateTime::now_utc();
    let command_line =
        cmdline::render(std::env::args_os().map(|a| a.to_string_lossy().into_owned()));
    let config = RunConfig::from_cli(&cli);

    let output: RunOutput = match cli.scenario {
        ScenarioName::Calibrate => calibrate::run(&cli, &config).await?,
        ScenarioName::Auth => auth::run(&cli, &config).await?,
        ScenarioName::Seats => seats::run(&cli, &config).await?,
        ScenarioName::Catalog => catalog::run(&cli, &config).await?,
        ScenarioName::SellOut => sellout::run(&cli, &config).await?,
        ScenarioName::QueueBurst => queue::burst::run(&cli, &config).await?,
        ScenarioName::WsFanout => queue::fanout::run(&cli, &config).await?,
        ScenarioName::Soak => soak::run(&cli, &config).await?,
    };

    let report = Report::new(&cli, command_line, started, machine::detect(), output)?;
    let markdown = markdown::render(&report);
    let (json_path, md_path) = report::write(&report, &markdown, &cli.out, started)?;
    print!("{markdown}");
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    if let Some(failure) = &report.failure {
        bail!("{failure}");
    }
    Ok(())
}
