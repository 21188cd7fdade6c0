//! Running a scenario: one cluster ([`crate::run::single`]), or a hub and its member
//! clusters ([`crate::multicluster::run`]) when the scenario lists `clusters:`.

use crate::report::Report;
use crate::run::{RunOptions, SimError};
use crate::scenario::Scenario;

/// Runs a scenario to its end on a new paused current-thread runtime; returns its report.
pub fn run(scenario: &Scenario, options: RunOptions) -> Result<Report, SimError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(SimError::Runtime)?;
    runtime.block_on(run_in_runtime(scenario, options))
}

/// Runs a scenario inside the current runtime, which must be a current-thread runtime with
/// paused time (`#[tokio::test(start_paused = true)]`).
pub async fn run_in_runtime(scenario: &Scenario, options: RunOptions) -> Result<Report, SimError> {
    match &scenario.multicluster {
        Some(multicluster) => crate::multicluster::run(scenario, multicluster, options).await,
        None => crate::run::single(scenario, options).await,
    }
}
