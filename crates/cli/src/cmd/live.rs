//! What the commands that talk to a live cluster share: the client (a kubeconfig, or the
//! in-cluster / default configuration), logging, and the shutdown signal.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Flags of every command that runs against a cluster.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    /// A kubeconfig to use (for example the one `edgeplane cluster serve --kubeconfig`
    /// writes). Without it: the in-cluster configuration, else $KUBECONFIG or
    /// ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
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
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        // A second initialisation (tests) is not an error worth failing for.
        let _ = match self.log_format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
    }

    /// The client, from `--kubeconfig` or inferred (in-cluster, then kubeconfig).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = match &self.kubeconfig {
            Some(path) => from_kubeconfig(path).await?,
            None => kube::Config::infer().await.context(
                "no cluster configuration (not in a cluster, and no kubeconfig); pass --kubeconfig",
            )?,
        };
        kube::Client::try_from(config).context("building the Kubernetes client")
    }
}

async fn from_kubeconfig(path: &Path) -> anyhow::Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("using kubeconfig {}", path.display()))
}

/// This replica's identity: $POD_NAME, else $HOSTNAME, else /etc/hostname, else `fallback`.
pub fn default_identity(fallback: &str) -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

/// The namespace of the Leases: $POD_NAMESPACE, else `edgeplane-system`.
pub fn default_lease_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "edgeplane-system".to_string())
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
