//! `edgeplane bench`: benchmarks that print their figures (never asserted; see
//! docs/performance.md). Each benchmark lives in its own module; this file only dispatches.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Build the graph of a synthetic topology and time node-pair metric lookups.
    Topology(super::bench_topology::Args),
    /// Plan seeded random MEC instances with both strategies and print time, memory and
    /// plan quality.
    Planner(super::bench_planner::Args),
    /// Generate a scenario (100 sites, 2,000 nodes, 5,000 pods, 1 h, 20 events by
    /// default), run it in the simulator and print wall time and peak memory.
    Sim(super::sim::BenchArgs),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Topology(a) => super::bench_topology::run(a),
        What::Planner(a) => super::bench_planner::run(a),
        What::Sim(a) => super::sim::bench(a),
    }
}

/// Peak resident set size of this process (VmHWM from /proc/self/status), in bytes;
/// `None` where /proc is not available. It is process-wide and never decreases.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
