//! What the commands that talk to a live cluster share: the client (a kubeconfig, or the
//! in-cluster / default configuration), logging, leader-election flags, duration flags and
//! the shutdown signal. Every long-running command (controller, scheduler, descheduler,
//! netctl serve, provider serve, cluster serve) uses these, so they behave alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use edgeplane_core::values::parse_duration_field;
use edgeplane_runtime::component::{Base, BaseConfig};

/// Flags of every command that runs against a cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    /// A kubeconfig to use (for example the one `edgeplane cluster serve --kubeconfig`
    /// writes). Without it: the in-cluster configuration, else $KUBECONFIG or
    /// ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (its current context by default).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Log format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LiveArgs {
    /// Starts logging (RUST_LOG filters; `info` by default) on standard error.
    pub fn init_logging(&self) {
        init_logging(self.log_format);
    }

    /// The client, from `--kubeconfig`/`--context` or inferred (in-cluster, then the
    /// default kubeconfig).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => from_kubeconfig(path, &options).await?,
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("reading the kubeconfig")?,
            None => kube::Config::infer().await.context(
                "no cluster configuration (not in a cluster, and no kubeconfig); pass --kubeconfig",
            )?,
        };
        kube::Client::try_from(config).context("building the Kubernetes client")
    }
}

/// Structured logs on standard error; `RUST_LOG` filters (default `info`). A second
/// initialisation (tests) is harmless.
pub fn init_logging(format: LogFormat) {
    init_logging_from(format, "info");
}

/// [`init_logging`] with another default level (`warn` for servers whose info lines would
/// be noise, such as `cluster serve`).
pub fn init_logging_from(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

async fn from_kubeconfig(
    path: &Path,
    options: &kube::config::KubeConfigOptions,
) -> anyhow::Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, options)
        .await
        .with_context(|| format!("using kubeconfig {}", path.display()))
}

/// Leader-election flags of a component that writes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ElectionArgs {
    /// Namespace of the leader-election Lease (default: $POD_NAMESPACE, else
    /// edgeplane-system).
    #[arg(long = "lease-namespace", value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME, else the host name,
    /// with a random suffix so that no two processes share one). Give each replica its
    /// own: a Lease naming this identity that another process wrote is not taken until it
    /// expires.
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// Run without leader election (a single replica; never run two like this).
    #[arg(long = "no-leader-election")]
    pub no_leader_election: bool,
}

impl ElectionArgs {
    /// This replica's identity: `--identity` as given, else $POD_NAME, $HOSTNAME,
    /// /etc/hostname or the component's name with a random suffix
    /// ([`edgeplane_runtime::unique_identity`]), unique per process.
    pub fn identity(&self, component: &str) -> String {
        if let Some(given) = self
            .identity
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            return given.to_string();
        }
        let name = std::env::var("POD_NAME")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| component.to_string());
        edgeplane_runtime::unique_identity(&name)
    }

    /// The namespace of the Lease: `--lease-namespace`, $POD_NAMESPACE, else
    /// `edgeplane-system`.
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| edgeplane_api::names::SYSTEM_NAMESPACE.to_string())
    }

    /// The component's base configuration: identity and, unless disabled, the Lease.
    pub fn base_config(&self, component: &str) -> BaseConfig {
        let config = BaseConfig::new(component).identity(self.identity(component));
        if self.no_leader_election {
            config
        } else {
            config.leader_election(self.lease_namespace())
        }
    }
}

/// The multi-threaded tokio runtime a long-running command runs on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

/// Connects to the cluster and starts a writing component's base (leader election,
/// caches, `/healthz` `/readyz` `/metrics` on `metrics_addr`).
pub async fn start_base(
    live: &LiveArgs,
    election: &ElectionArgs,
    component: &str,
    metrics_addr: std::net::SocketAddr,
) -> anyhow::Result<Base> {
    let client = live.client().await?;
    let config = election.base_config(component).http(metrics_addr);
    Base::start(client, config)
        .await
        .with_context(|| format!("serving /healthz, /readyz and /metrics on {metrics_addr}"))
}

/// A duration flag (`--quiet-period 2s`); the error names the flag.
pub fn duration_flag(flag: &str, text: &str) -> Result<Duration, String> {
    parse_duration_field(text).map_err(|e| format!("--{flag}: {e}"))
}

/// A duration flag that must be longer than zero.
pub fn positive_duration_flag(flag: &str, text: &str) -> Result<Duration, String> {
    match duration_flag(flag, text)? {
        d if d.is_zero() => Err(format!("--{flag}: must be longer than 0")),
        d => Ok(d),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_name_the_flag() {
        assert_eq!(duration_flag("x", "2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration_flag("x", "0s"), Ok(Duration::ZERO));
        assert_eq!(
            positive_duration_flag("max-wait", "0s"),
            Err("--max-wait: must be longer than 0".to_string())
        );
        assert!(
            positive_duration_flag("quiet-period", "soon")
                .is_err_and(|e| e.starts_with("--quiet-period: \"soon\" is not a duration"))
        );
    }

    #[test]
    fn identity_and_lease_namespace_prefer_the_flags() {
        let args = ElectionArgs {
            lease_namespace: Some("ops".into()),
            identity: Some("replica-1".into()),
            no_leader_election: false,
        };
        assert_eq!(args.identity("edgeplane-scheduler"), "replica-1");
        assert_eq!(args.lease_namespace(), "ops");
    }

    #[test]
    fn the_default_identity_differs_between_processes() {
        // Two processes on one host (or two containers of one pod name) used to share
        // the host name as identity, and both believed they held the Lease.
        let args = ElectionArgs::default();
        let (a, b) = (
            args.identity("edgeplane-controller"),
            args.identity("edgeplane-controller"),
        );
        assert_ne!(a, b);
        assert_eq!(
            a.split_once('_').map(|(name, _)| name),
            b.split_once('_').map(|(name, _)| name)
        );
    }
}
