//! The `edgeplane` binary: one command per component or task.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

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
    /// Print every edgeplane CustomResourceDefinition as YAML.
    Crds(cmd::crds::Args),
    /// Run the embedded cluster (an in-process Kubernetes API with simulated nodes).
    Cluster(cmd::cluster::Args),
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds(args) => cmd::crds::run(args),
        Command::Cluster(args) => cmd::cluster::run(args),
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
