//! The `edgeplane` binary: one command per component or task.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod input;
mod output;

#[derive(Parser, Debug)]
#[command(
    name = "edgeplane",
    version,
    about = "Network-aware placement and repair for edge computing on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate manifests and print the bindings each offer would create.
    Check(cmd::check::Args),
    /// Print every edgeplane CustomResourceDefinition as YAML.
    Crds(cmd::crds::Args),
    /// Plan workloads offline and write them with their placement as node affinity.
    Plan(cmd::plan::Args),
    /// Run a benchmark and print its figures.
    Bench(cmd::bench::Args),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cmd::check::run(args),
        Command::Crds(args) => cmd::crds::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Version => {
            println!("edgeplane {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
