//! One module per subcommand.

pub mod agent;
pub mod bench;
pub mod check;
pub mod cluster;
pub mod controller;
pub mod crds;
pub mod descheduler;
pub mod explain;
mod external;
pub mod fail_on;
pub mod hub;
pub mod live;
pub mod netctl;
pub mod plan;
pub mod provider;
pub mod scheduler;
pub mod sim;
pub mod tls;
mod what_if;
mod world;

/// Prints `error: MESSAGE` and ends with exit status 2: the input is invalid.
pub fn invalid(message: impl std::fmt::Display) -> anyhow::Result<std::process::ExitCode> {
    eprintln!("error: {message}");
    Ok(std::process::ExitCode::from(2))
}
