//! `edgeplane scheduler`: the planning scheduler against a cluster (kubeconfig or
//! in-cluster), with leader election, `/healthz`, `/readyz` and `/metrics`. Also the gate
//! webhook's flags ([`WebhookArgs`]), which `edgeplane controller` serves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use edgeplane_providers::GrpcProvider;
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Mode, Scheduler, SchedulerConfig};
use edgeplane_runtime::watchdog::{self, SchedulerWatch};
use edgeplane_runtime::webhook::{self, GateOptions, WebhookConfig};
use tokio_util::sync::CancellationToken;

use super::descheduler::NetworkControllerArgs;
use super::external::ProviderArgs;
use super::live::{self, ElectionArgs, LiveArgs};

/// The mutating webhook's flags (gate mode), for the component that serves it
/// (`edgeplane controller`): flatten into its arguments and call [`WebhookArgs::spawn`]
/// with its offers cache.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WebhookArgs {
    /// Serve the gate webhook (HTTPS) on this address, for example 0.0.0.0:9443.
    #[arg(long, value_name = "ADDR")]
    pub webhook_addr: Option<SocketAddr>,
    /// The directory holding tls.crt and tls.key (the mounted certificate Secret).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/etc/edgeplane/webhook",
        requires = "webhook_addr"
    )]
    pub webhook_cert_dir: PathBuf,
    /// Largest AdmissionReview body the webhook reads; larger is refused with 413.
    #[arg(long, value_name = "BYTES", default_value_t = edgeplane_serve::http::DEFAULT_MAX_BODY_BYTES)]
    pub webhook_max_body_bytes: usize,
    /// A request to the webhook must be read and answered within this.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub webhook_request_timeout: String,
}

impl WebhookArgs {
    /// Starts the webhook when `--webhook-addr` is given; it gates while `scheduler` shows
    /// a live planning scheduler.
    pub async fn spawn(
        &self,
        offers: &edgeplane_runtime::Cache<edgeplane_api::ConstraintPolicyOffer>,
        scheduler: SchedulerWatch,
        metrics: &edgeplane_runtime::metrics::Metrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(addr) = self.webhook_addr else {
            return Ok(None);
        };
        let request_timeout =
            live::positive_duration_flag("webhook-request-timeout", &self.webhook_request_timeout)
                .map_err(anyhow::Error::msg)?;
        let config = WebhookConfig {
            addr,
            cert_dir: self.webhook_cert_dir.clone(),
            options: GateOptions::default(),
            limits: edgeplane_serve::HttpLimits {
                max_body_bytes: self.webhook_max_body_bytes,
                request_timeout,
                ..edgeplane_serve::HttpLimits::default()
            },
        };
        // The certificate may not be there yet: the controller's certificate keeper (in
        // this process) writes it into a Secret the chart creates empty, and the kubelet
        // updates the mount within about a minute. Until then the API server cannot call
        // the webhook, which its failurePolicy Ignore lets pass.
        let files = [
            config.cert_dir.join(webhook::CERT_FILE),
            config.cert_dir.join(webhook::KEY_FILE),
        ];
        let mut waited = 0u64;
        while !files.iter().all(|f| f.exists()) && !shutdown.is_cancelled() {
            if waited.is_multiple_of(30) {
                tracing::info!(dir = %config.cert_dir.display(), "webhook: waiting for its certificate");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            waited += 1;
        }
        let (bound, task) = webhook::serve(config, offers, scheduler, metrics, shutdown)
            .await
            .context("starting the webhook")?;
        tracing::info!(%bound, "webhook serving");
        Ok(Some(task))
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModeArg {
    /// Set node affinity and remove the scheduling gate; kube-scheduler binds.
    #[default]
    Gate,
    /// Bind pods with schedulerName edgeplane through pods/binding.
    Bind,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// gate: plan gated pods and let kube-scheduler bind them; bind: be the `edgeplane`
    /// secondary scheduler.
    #[arg(long, value_enum, default_value = "gate")]
    pub mode: ModeArg,
    /// Plan once no new pod arrived for this long.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub quiet_period: String,
    /// Plan once the oldest waiting pod has waited this long, even if pods keep arriving.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub max_wait: String,
    /// The longest one plan may search; the best plan found by then is used.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub time_budget: String,
    /// /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8082", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    /// Watch ServiceChains and NetworkFunctions: plan each lane as one unit against its
    /// end-to-end budget, and plan the bindings of offers that target NFs or chains
    /// (docs/network-functions.md); needs list and watch on `servicechains` and
    /// `networkfunctions`.
    #[arg(long)]
    pub service_chains: bool,
    #[command(flatten)]
    pub election: ElectionArgs,
    #[command(flatten)]
    pub live: LiveArgs,
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// Asked for paths (Discover, Allocate, Release) when no node satisfies a binding.
    #[command(flatten)]
    pub network: NetworkControllerArgs,
    /// TLS for calls to providers and the network controller.
    #[command(flatten)]
    pub grpc_tls: super::tls::GrpcClientTlsArgs,
    /// The gate webhook is served by `edgeplane controller` in the chart; the scheduler
    /// can serve it too (a single-component setup, development).
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.live.init_logging();
    let flags = (|| {
        Ok::<_, String>((
            Triggers {
                quiet_period: live::positive_duration_flag("quiet-period", &args.quiet_period)?,
                max_wait: live::positive_duration_flag("max-wait", &args.max_wait)?,
            },
            live::positive_duration_flag("time-budget", &args.time_budget)?,
            args.providers.parse()?,
            args.network.validate()?,
            args.grpc_tls.load()?,
        ))
    })();
    let (triggers, time_budget, mut external, (), grpc_tls) = match flags {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    external.options.tls = grpc_tls.clone();
    live::runtime()?.block_on(async move {
        let mut base = live::start_base(
            &args.live,
            &args.election,
            scheduler::COMPONENT,
            args.metrics_addr,
        )
        .await?;
        let mode = match args.mode {
            ModeArg::Gate => Mode::Gate,
            ModeArg::Bind => Mode::Bind,
        };
        let config = SchedulerConfig {
            mode,
            triggers,
            time_budget,
            lease_namespace: args.election.lease_namespace(),
            provider_options: external.options.clone(),
            ..SchedulerConfig::default()
        };
        if mode == Mode::Gate && args.election.no_leader_election {
            tracing::warn!(
                "--no-leader-election: this scheduler holds no Lease, so the gate webhook sees no live scheduler and gates no pod, and the controller's gate watchdog releases gated pods after --gate-timeout"
            );
        }
        // The webhook (when served here) reads the scheduler's Lease like anyone else's.
        let watch = if args.webhook.webhook_addr.is_some() {
            watchdog::watch_scheduler(&base.ctx, &args.election.lease_namespace())
        } else {
            SchedulerWatch::InProcess
        };
        if let Some(task) = args
            .webhook
            .spawn(
                &base.caches.offers,
                watch,
                &base.ctx.metrics,
                base.ctx.shutdown.clone(),
            )
            .await?
        {
            base.spawn(async move {
                let _ = task.await;
            });
        }
        let mut scheduler = Scheduler::new(
            base.ctx.clone(),
            base.caches.clone(),
            base.views.clone(),
            config,
        )
        .with_discovery(Arc::new(args.network.controllers(grpc_tls)));
        if args.service_chains {
            scheduler = scheduler.with_functions(edgeplane_runtime::cache::FunctionTargets::start(
                &base.ctx.client,
                &base.ctx.shutdown,
            ));
        }
        for (rule, url) in &external.providers {
            let client = GrpcProvider::new(url, &external.options)
                .map_err(|e| anyhow::anyhow!("--provider {rule}={url}: {e}"))?;
            scheduler = scheduler.with_provider(rule.clone(), Arc::new(client));
        }
        base.spawn(scheduler.run());
        tracing::info!(%mode, identity = %base.ctx.identity, http = ?base.http_addr,
            leader_election = !args.election.no_leader_election, "edgeplane scheduler started");
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

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_and_defaults() {
        let cli = Cli::try_parse_from(["x"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.args.mode, ModeArg::Gate);
        assert_eq!(cli.args.quiet_period, "2s");
        assert_eq!(cli.args.max_wait, "30s");
        assert_eq!(cli.args.metrics_addr.port(), 8082);
        let cli = Cli::try_parse_from([
            "x",
            "--mode",
            "bind",
            "--quiet-period",
            "500ms",
            "--no-leader-election",
            "--log-format",
            "json",
            "--kubeconfig",
            "/tmp/k",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.args.mode, ModeArg::Bind);
        assert!(cli.args.election.no_leader_election);
        assert_eq!(cli.args.live.log_format, live::LogFormat::Json);
        assert_eq!(
            live::positive_duration_flag("quiet-period", &cli.args.quiet_period).ok(),
            Some(std::time::Duration::from_millis(500))
        );
        assert!(Cli::try_parse_from(["x", "--mode", "later"]).is_err());
        let cli = Cli::try_parse_from(["x", "--network-controller", "http://127.0.0.1:50052"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cli.args.network.network_controller.as_deref(),
            Some("http://127.0.0.1:50052")
        );
        assert_eq!(cli.args.network.validate(), Ok(()));
    }

    #[derive(Parser, Debug)]
    struct WebhookCli {
        #[command(flatten)]
        webhook: WebhookArgs,
    }

    #[test]
    fn webhook_flags() {
        let cli = WebhookCli::try_parse_from(["x"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.webhook.webhook_addr.is_none());
        let cli = WebhookCli::try_parse_from([
            "x",
            "--webhook-addr",
            "0.0.0.0:9443",
            "--webhook-cert-dir",
            "/certs",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.webhook.webhook_addr.map(|a| a.port()), Some(9443));
        assert_eq!(cli.webhook.webhook_cert_dir, PathBuf::from("/certs"));
    }
}
