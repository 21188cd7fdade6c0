//! `edgeplane bench`: benchmarks that print their figures. Each benchmark lives in its own
//! module; this file only dispatches.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Plan seeded random MEC instances with both strategies and print time, memory and
    /// plan quality.
    Planner(super::bench_planner::Args),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Planner(a) => super::bench_planner::run(a),
    }
}
