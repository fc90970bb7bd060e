//! The `calibrate` scenario: ceilings of this machine for the building blocks boxoffice uses.

mod hello;
mod mariadb;
mod redis_ops;

use anyhow::Result;
use uuid::Uuid;

use crate::cli::Cli;
use crate::report::RunOutput;
use crate::runner::RunConfig;

/// Measures Redis, a MariaDB hot row and a bare axum server one after another.
pub async fn run(cli: &Cli, config: &RunConfig) -> Result<RunOutput> {
    let mut output = RunOutput::default();
    let prefix = format!("loadgen:calibrate:{}:", Uuid::new_v4());
    redis_ops::measure(&cli.redis_url, &prefix, config, &mut output).await;
    mariadb::measure(&cli.mysql_url, config, &mut output).await;
    hello::measure(config, &mut output).await;
    Ok(output)
}
