//! The `calibrate` scenario: ceilings of this machine for the building blocks boxoffice uses.

mod hello;
mod mariadb;
mod redis_ops;

use anyhow::Result;
use uuid::Uuid;

use crate::cli::Cli;
use crate::report::{PhaseReport, RunOutput};
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

/// Successful hot-row `UPDATE`s per second, if that phase ran: the ceiling any "never oversell"
/// design on one MariaDB row has on this machine.
pub fn hot_row_ceiling(phases: &[PhaseReport]) -> Option<f64> {
    phases
        .iter()
        .find(|phase| phase.name == mariadb::PHASE && phase.unavailable.is_none())?
        .operations
        .first()
        .map(|op| op.throughput_ops_s)
}
