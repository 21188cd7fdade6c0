//! `edgeplane bench`: benchmarks that print their figures (never asserted; see
//! docs/performance.md). Each benchmark lives in its own module; this file only dispatches.

mod agent;
mod evaluate;
mod hub;
pub mod instance_yaml;
mod planner;
mod rss;
mod scheduler;
mod topology;

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// One measurement agent serving 500 peers on loopback at 10 probes/s each way:
    /// print its CPU (% of one core) and memory against an idle agent, and the loopback
    /// round trip that bounds its timestamping error.
    Agent(agent::Args),
    /// Build the graph of a synthetic topology and time node-pair metric lookups.
    Topology(topology::Args),
    /// Evaluate a pairwise rule for a binding with many targets, as a provider's
    /// Evaluate does, and print the time per evaluation.
    Evaluate(evaluate::Args),
    /// Plan seeded random MEC instances with both strategies and print time, memory and
    /// plan quality.
    Planner(planner::Args),
    /// Place seeded MEC applications across member clusters with the hub planner (1,000
    /// clusters, 10,000 applications by default); print time, peak memory, and the share
    /// of applications whose constraints hold against Karmada- and OCM-style placements.
    Hub(hub::Args),
    /// The planning scheduler's steady state: applications of 5 pods arriving one at a
    /// time on a cluster of 5,000 nodes running 5,000 pods, each planned through the
    /// scheduler's input building, planner and write decisions; prints p50/p99/max.
    Scheduler(scheduler::Args),
    /// Generate a scenario (100 sites, 2,000 nodes, 5,000 pods, 1 h, 20 events by
    /// default), run it in the simulator and print wall time and peak memory.
    Sim(crate::cmd::sim::BenchArgs),
}

/// This process's peak resident memory so far, in MB (other commands print it too).
pub fn peak_rss_mb() -> Option<f64> {
    rss::peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Agent(a) => agent::run(a),
        What::Topology(a) => topology::run(a),
        What::Evaluate(a) => evaluate::run(a),
        What::Planner(a) => planner::run(a),
        What::Hub(a) => hub::run(a),
        What::Scheduler(a) => scheduler::run(a),
        What::Sim(a) => crate::cmd::sim::bench(a),
    }
}
