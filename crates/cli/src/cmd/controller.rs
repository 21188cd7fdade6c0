//! `edgeplane controller`: the offer, binding, policy-status and topology-status
//! controllers, with leader election, `/healthz`, `/readyz` and `/metrics`, against a
//! cluster given by kubeconfig or in-cluster configuration.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use edgeplane_runtime::component::{Base, BaseConfig};
use edgeplane_runtime::controllers::{self, Options};
use edgeplane_runtime::providers::ProviderRegistry;

use super::external::ProviderArgs;
use super::live::{self, LiveArgs};

/// The component's name: the Lease's name and the events' reporting controller.
pub const COMPONENT: &str = "edgeplane-controller";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where to serve /healthz, /readyz and /metrics.
    #[arg(
        long = "metrics-addr",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    pub metrics_addr: SocketAddr,
    /// Namespace of the leader-election Lease (default: $POD_NAMESPACE, else
    /// edgeplane-system).
    #[arg(long = "lease-namespace", value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME, else the host name).
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// Run without leader election (a single replica; development).
    #[arg(long = "no-leader-election")]
    pub no_leader_election: bool,
    #[command(flatten)]
    pub providers: ProviderArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    args.live.init_logging();
    let external = match args.providers.parse() {
        Ok(e) => e,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let client = args.live.client().await?;
        let identity = args
            .identity
            .clone()
            .unwrap_or_else(|| live::default_identity(COMPONENT));
        let mut config = BaseConfig::new(COMPONENT)
            .identity(identity.clone())
            .http(args.metrics_addr);
        if !args.no_leader_election {
            let namespace = args
                .lease_namespace
                .clone()
                .unwrap_or_else(live::default_lease_namespace);
            config = config.leader_election(namespace);
        }
        let mut base = Base::start(client, config).await.with_context(|| {
            format!(
                "serving /healthz, /readyz and /metrics on {}",
                args.metrics_addr
            )
        })?;
        let mut registry =
            ProviderRegistry::new(base.views.builtin_provider(), external.options.clone());
        for (rule, url) in &external.providers {
            registry = registry.with_explicit(rule.clone(), url.clone());
        }
        base.spawn(controllers::run(
            base.ctx.clone(),
            base.caches.clone(),
            base.views.clone(),
            Arc::new(registry),
            Options::default(),
        ));
        tracing::info!(
            %identity,
            http = ?base.http_addr,
            leader_election = !args.no_leader_election,
            "edgeplane controller started"
        );
        live::shutdown_signal().await;
        tracing::info!("shutting down");
        base.stop().await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
