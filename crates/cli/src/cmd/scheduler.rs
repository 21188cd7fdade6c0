//! `edgeplane scheduler`: the planning scheduler against a cluster (in-cluster
//! configuration, or a kubeconfig: a real cluster or `edgeplane cluster serve`).
//!
//! Also the operational pieces every long-running component shares (cluster connection,
//! logs, signals) and the webhook's flags, for `edgeplane controller` to reuse:
//! [`ClusterArgs`], [`LogFormat`], [`init_logging`], [`shutdown_on_signal`],
//! [`WebhookArgs`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use edgeplane_core::values::parse_duration_field;
use edgeplane_providers::GrpcProvider;
use edgeplane_runtime::leader::{self, LeaseConfig};
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Mode, Scheduler, SchedulerConfig};
use edgeplane_runtime::webhook::{self, GateOptions, WebhookConfig};
use edgeplane_runtime::{Caches, Context, Leadership, ViewCache};
use tokio_util::sync::CancellationToken;

use super::external::ProviderArgs;

/// How to reach the cluster.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// A kubeconfig file; without it, $KUBECONFIG, ~/.kube/config or the in-cluster
    /// service account, in that order.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (its current context by default).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// A client as the flags say.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("using {}", path.display()))?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("reading the kubeconfig")?,
            None => kube::Config::infer()
                .await
                .context("no kubeconfig and not in a cluster")?,
        };
        kube::Client::try_from(config).context("creating the Kubernetes client")
    }
}

/// The format of log lines (on standard error).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Structured logs on standard error; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second initialisation (tests) is harmless.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down");
        token.cancel();
    });
}

/// This replica's name: `--identity`, `$POD_NAME`, `$HOSTNAME`, or the component and the
/// process id.
pub fn identity(flag: Option<&str>, component: &str) -> String {
    flag.map(String::from)
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{component}-{}", std::process::id()))
}

/// The namespace of the Lease: `--lease-namespace`, `$POD_NAMESPACE`, the service
/// account's namespace in a pod, or the client's default namespace.
pub fn lease_namespace(flag: Option<&str>, client: &kube::Client) -> String {
    flag.map(String::from)
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_string())
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    match parse_duration_field(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => anyhow::bail!("--{flag}: must be longer than 0"),
        Err(e) => anyhow::bail!("--{flag}: {e}"),
    }
}

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
}

impl WebhookArgs {
    /// Starts the webhook when `--webhook-addr` is given.
    pub async fn spawn(
        &self,
        offers: &edgeplane_runtime::Cache<edgeplane_api::ConstraintPolicyOffer>,
        metrics: &edgeplane_runtime::metrics::Metrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(addr) = self.webhook_addr else {
            return Ok(None);
        };
        let config = WebhookConfig {
            addr,
            cert_dir: self.webhook_cert_dir.clone(),
            options: GateOptions::default(),
        };
        let (bound, task) = webhook::serve(config, offers, metrics, shutdown)
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
    #[arg(long, default_value = "0.0.0.0:8081", value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    /// The namespace of the `edgeplane-scheduler` Lease (default: $POD_NAMESPACE, the
    /// pod's namespace, or the kubeconfig's).
    #[arg(long, value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME or the host name).
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// Run as the only replica, without a Lease (never run two like this).
    #[arg(long)]
    pub no_leader_election: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// The gate webhook is served by `edgeplane controller` in the chart; the scheduler
    /// can serve it too (a single-component setup, development).
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<ExitCode> {
    let triggers = Triggers {
        quiet_period: duration("quiet-period", &args.quiet_period)?,
        max_wait: duration("max-wait", &args.max_wait)?,
    };
    let time_budget = duration("time-budget", &args.time_budget)?;
    let external = args.providers.parse().map_err(anyhow::Error::msg)?;
    let client = args.cluster.client().await?;
    let shutdown = CancellationToken::new();
    shutdown_on_signal(shutdown.clone());
    let identity = identity(args.identity.as_deref(), scheduler::COMPONENT);
    let namespace = lease_namespace(args.lease_namespace.as_deref(), &client);
    let mut ctx = Context::new(client.clone(), scheduler::COMPONENT)
        .with_identity(identity.clone())
        .with_shutdown(shutdown.clone());
    let elector = if args.no_leader_election {
        ctx = ctx.with_leadership(Leadership::always());
        None
    } else {
        let lease = LeaseConfig::new(&namespace, scheduler::LEASE_NAME, &identity);
        let (leadership, task) =
            leader::spawn(client.clone(), ctx.clock.clone(), lease, shutdown.clone());
        ctx = ctx.with_leadership(leadership.clone());
        ctx.readiness
            .add("leader-election", move || leadership.is_known());
        Some(task)
    };
    let caches = Caches::start(&client, &shutdown);
    let views = ViewCache::start(
        &caches.nodes,
        &caches.pods,
        &caches.topologies,
        ctx.clock.clone(),
        ctx.metrics.clone(),
        shutdown.clone(),
    );
    let (bound, http) = edgeplane_runtime::http::serve(
        args.metrics_addr,
        ctx.metrics.clone(),
        ctx.readiness.clone(),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("listening on {}", args.metrics_addr))?;
    let mode = match args.mode {
        ModeArg::Gate => Mode::Gate,
        ModeArg::Bind => Mode::Bind,
    };
    let config = SchedulerConfig {
        mode,
        triggers,
        time_budget,
        lease_namespace: namespace.clone(),
        provider_options: external.options.clone(),
        ..SchedulerConfig::default()
    };
    let webhook = args
        .webhook
        .spawn(&caches.offers, &ctx.metrics, shutdown.clone())
        .await?;
    let mut scheduler = Scheduler::new(ctx, caches, views, config);
    for (rule, url) in &external.providers {
        let client = GrpcProvider::new(url, &external.options)
            .map_err(|e| anyhow::anyhow!("--provider {rule}={url}: {e}"))?;
        scheduler = scheduler.with_provider(rule.clone(), Arc::new(client));
    }
    tracing::info!(%mode, %identity, lease_namespace = %namespace, metrics = %bound,
        leader_election = !args.no_leader_election, "edgeplane scheduler starting");
    let task = tokio::spawn(scheduler.run());
    shutdown.cancelled().await;
    // Stop writing, release the Lease, close the endpoints; give up after a while.
    let drain = async {
        let _ = task.await;
        if let Some(elector) = elector {
            let _ = elector.await;
        }
        let _ = http.await;
        if let Some(webhook) = webhook {
            let _ = webhook.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown took too long; exiting");
    }
    Ok(ExitCode::SUCCESS)
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
        assert_eq!(cli.args.metrics_addr.port(), 8081);
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
        assert!(cli.args.no_leader_election);
        assert_eq!(cli.args.log_format, LogFormat::Json);
        assert_eq!(
            duration("quiet-period", &cli.args.quiet_period).ok(),
            Some(Duration::from_millis(500))
        );
        assert!(duration("max-wait", "0s").is_err());
        assert!(duration("max-wait", "soon").is_err());
        assert!(Cli::try_parse_from(["x", "--mode", "later"]).is_err());
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
