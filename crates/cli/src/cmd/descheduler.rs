//! `edgeplane descheduler`: repairs bindings that stay in Violation (mitigate through the
//! network controller, then evict through the Eviction API), against a cluster
//! (kubeconfig or in-cluster), with leader election, `/healthz`, `/readyz` and `/metrics`.
//! Also the `--network-controller` flag ([`NetworkControllerArgs`]), which the scheduler
//! shares.

use std::net::SocketAddr;
use std::process::ExitCode;

use edgeplane_netctl::ClientOptions;
use edgeplane_runtime::descheduler::{self, Descheduler, DeschedulerConfig, Limits};
use edgeplane_runtime::netctl::NetworkControllers;

use super::live::{self, ElectionArgs, LiveArgs};

/// Where the network controller is.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetworkControllerArgs {
    /// The network controller's gRPC address (http://HOST:PORT). Without it, the Service
    /// labelled network.edgeplane.io/controller=enabled, if any.
    #[arg(long, value_name = "URL")]
    pub network_controller: Option<String>,
}

impl NetworkControllerArgs {
    /// Checks the flag: an http or https URL with a host.
    pub fn validate(&self) -> Result<(), String> {
        let Some(url) = &self.network_controller else {
            return Ok(());
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                format!("--network-controller: {url:?} is not an http:// or https:// URL")
            })?;
        if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') {
            return Err(format!("--network-controller: {url:?} has no host"));
        }
        Ok(())
    }

    /// How the component finds the controller: the URL, else Service discovery; `https://`
    /// URLs (and Services whose port is named `grpcs`) over TLS with `tls`.
    pub fn controllers(
        &self,
        tls: Option<std::sync::Arc<edgeplane_serve::tls::ClientTls>>,
    ) -> NetworkControllers {
        NetworkControllers::remote(
            self.network_controller.clone(),
            ClientOptions {
                tls,
                ..ClientOptions::default()
            },
        )
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Time between cycles.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub interval: String,
    /// Evictions per cycle, in all.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_evictions_per_cycle: usize,
    /// Evictions per cycle in one namespace.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_evictions_per_namespace: usize,
    /// Evictions per cycle for the bindings of one offer.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub max_evictions_per_offer: usize,
    /// Pods younger than this are not evicted.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub min_pod_age: String,
    /// A binding is mitigated at most once per this period.
    #[arg(long, default_value = "1m", value_name = "DURATION")]
    pub mitigation_period: String,
    /// Decide and report (EvictionSkipped events, metrics) but neither mitigate nor evict.
    #[arg(long)]
    pub dry_run: bool,
    /// Repair the lanes of service chains too, a VM hop by live migration
    /// (docs/network-functions.md); watches servicechains and KubeVirt's
    /// virtualmachineinstancemigrations, whose CRD must be installed.
    #[arg(long)]
    pub network_functions: bool,
    #[command(flatten)]
    pub network: NetworkControllerArgs,
    #[command(flatten)]
    pub grpc_tls: super::tls::GrpcClientTlsArgs,
    /// /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8083", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub election: ElectionArgs,
    #[command(flatten)]
    pub live: LiveArgs,
}

impl Args {
    /// The configuration the flags give; the error names the flag.
    pub fn config(&self) -> Result<DeschedulerConfig, String> {
        let count = |flag: &str, n: usize| {
            if n == 0 {
                Err(format!(
                    "--{flag}: must be at least 1 (to stop evictions, use --dry-run or violationPolicy Mediate)"
                ))
            } else {
                Ok(n)
            }
        };
        self.network.validate()?;
        Ok(DeschedulerConfig {
            interval: live::positive_duration_flag("interval", &self.interval)?,
            limits: Limits {
                per_cycle: count("max-evictions-per-cycle", self.max_evictions_per_cycle)?,
                per_namespace: count(
                    "max-evictions-per-namespace",
                    self.max_evictions_per_namespace,
                )?,
                per_offer: count("max-evictions-per-offer", self.max_evictions_per_offer)?,
                min_pod_age: live::duration_flag("min-pod-age", &self.min_pod_age)?,
            },
            dry_run: self.dry_run,
            mitigation_period: live::positive_duration_flag(
                "mitigation-period",
                &self.mitigation_period,
            )?,
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.live.init_logging();
    let config = args
        .config()
        .and_then(|config| Ok((config, args.grpc_tls.load()?)));
    let (config, grpc_tls) = match config {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    live::runtime()?.block_on(async move {
        let mut base = live::start_base(
            &args.live,
            &args.election,
            descheduler::COMPONENT,
            args.metrics_addr,
        )
        .await?;
        let mut descheduler = Descheduler::new(
            base.ctx.clone(),
            base.caches.clone(),
            base.views.clone(),
            config.clone(),
        )
        .with_network_controllers(args.network.controllers(grpc_tls));
        if args.network_functions {
            descheduler = descheduler.with_lanes(edgeplane_runtime::cache::LaneCaches::start(
                &base.ctx.client,
                &base.ctx.shutdown,
            ));
        }
        base.spawn(descheduler.run());
        tracing::info!(identity = %base.ctx.identity, http = ?base.http_addr,
            interval = ?config.interval, dry_run = config.dry_run,
            leader_election = !args.election.no_leader_election, "edgeplane descheduler started");
        live::shutdown_signal().await;
        tracing::info!("shutting down");
        base.stop().await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(flags: &[&str]) -> Args {
        let mut argv = vec!["x"];
        argv.extend(flags);
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .args
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = parse(&[]).config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config, DeschedulerConfig::default());
        assert_eq!(parse(&[]).metrics_addr.port(), 8083);
    }

    #[test]
    fn flags() {
        let args = parse(&[
            "--interval",
            "30s",
            "--max-evictions-per-cycle",
            "10",
            "--max-evictions-per-namespace",
            "3",
            "--max-evictions-per-offer",
            "2",
            "--min-pod-age",
            "0s",
            "--mitigation-period",
            "5m",
            "--dry-run",
            "--network-controller",
            "http://netctl.edgeplane-system.svc:50052",
            "--no-leader-election",
        ]);
        let config = args.config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.interval, Duration::from_secs(30));
        assert_eq!(config.limits.per_cycle, 10);
        assert_eq!(config.limits.per_namespace, 3);
        assert_eq!(config.limits.per_offer, 2);
        assert_eq!(config.limits.min_pod_age, Duration::ZERO);
        assert_eq!(config.mitigation_period, Duration::from_secs(300));
        assert!(config.dry_run);
        assert!(args.election.no_leader_election);
    }

    #[test]
    fn bad_flags_are_named() {
        let err = |flags: &[&str]| parse(flags).config().err().unwrap_or_default();
        assert_eq!(
            err(&["--interval", "0s"]),
            "--interval: must be longer than 0"
        );
        assert!(
            err(&["--min-pod-age", "old"]).starts_with("--min-pod-age: \"old\" is not a duration")
        );
        assert!(
            err(&["--max-evictions-per-offer", "0"])
                .starts_with("--max-evictions-per-offer: must be at least 1")
        );
        assert_eq!(
            err(&["--network-controller", "netctl:50052"]),
            "--network-controller: \"netctl:50052\" is not an http:// or https:// URL"
        );
        assert_eq!(
            err(&["--network-controller", "http://"]),
            "--network-controller: \"http://\" has no host"
        );
        assert!(
            Cli::try_parse_from(["x", "--max-evictions-per-cycle", "-1"]).is_err(),
            "negative counts are refused by the parser"
        );
    }
}
