//! `edgeplane hub`: places MEC applications across member clusters from a hub cluster
//! given by kubeconfig (docs/multicluster.md), with leader election, `/healthz`,
//! `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use edgeplane_runtime::hub::{Hub, HubConfig, Mode};

use super::live::{self, ElectionArgs, LiveArgs};

/// The component's name: the Lease's name and the events' reporting controller.
pub const COMPONENT: &str = "edgeplane-hub";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// Apply each member's share to the member by its kubeconfig (server-side apply,
    /// field manager edgeplane-hub), removing what moved away.
    Direct,
    /// Karmada's scheduler: fill `spec.clusters` of the ResourceBindings of
    /// PropagationPolicies with `schedulerName: edgeplane`.
    Karmada,
    /// Write plain PropagationPolicies (cluster affinity, static weights) for
    /// MecApplications, for Karmadas whose scheduler may not be replaced.
    KarmadaPolicy,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub live: LiveArgs,
    /// How the placement is carried out.
    #[arg(long, value_enum, default_value_t = ModeArg::Direct)]
    pub mode: ModeArg,
    /// Where to serve /healthz, /readyz and /metrics.
    #[arg(
        long = "metrics-addr",
        default_value = "127.0.0.1:8086",
        value_name = "ADDR"
    )]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub election: ElectionArgs,
    /// Time between rounds (each probes every member and places what needs it).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub interval: String,
    /// How long an application's rules may be in Violation before it is placed again.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub grace: String,
    /// How long a member may take to answer before it counts as unreachable (NotReady).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub probe_timeout: String,
}

impl Args {
    fn config(&self) -> Result<HubConfig, String> {
        Ok(HubConfig {
            mode: match self.mode {
                ModeArg::Direct => Mode::Direct,
                ModeArg::Karmada => Mode::Karmada,
                ModeArg::KarmadaPolicy => Mode::KarmadaPolicy,
            },
            interval: live::positive_duration_flag("interval", &self.interval)?,
            grace: live::duration_flag("grace", &self.grace)?,
            probe_timeout: live::positive_duration_flag("probe-timeout", &self.probe_timeout)?,
            ..HubConfig::default()
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.live.init_logging();
    let config = match args.config() {
        Ok(c) => c,
        Err(message) => return super::invalid(message),
    };
    live::runtime()?.block_on(async move {
        let client = args.live.client().await?;
        let base = args.election.base_config(COMPONENT).http(args.metrics_addr);
        let mode = config.mode;
        let hub = Hub::start(client, base, config).await.with_context(|| {
            format!(
                "serving /healthz, /readyz and /metrics on {}",
                args.metrics_addr
            )
        })?;
        tracing::info!(
            identity = %hub.ctx.identity,
            mode = mode.as_str(),
            http = ?hub.http_addr,
            "edgeplane hub started"
        );
        live::shutdown_signal().await;
        tracing::info!("shutting down");
        hub.stop().await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_are_checked_and_name_themselves() {
        let cli = Cli::try_parse_from(["x"]).unwrap_or_else(|e| panic!("{e}"));
        let config = cli.args.config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.mode, Mode::Direct);
        assert_eq!(config.interval, std::time::Duration::from_secs(10));
        let cli = Cli::try_parse_from(["x", "--mode", "karmada-policy", "--interval", "0s"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cli.args.config().err(),
            Some("--interval: must be longer than 0".to_string())
        );
        assert!(Cli::try_parse_from(["x", "--mode", "kubefed"]).is_err());
    }
}
