//! `edgeplane controller`: the offer, binding, policy-status and topology-status
//! controllers, with leader election, `/healthz`, `/readyz` and `/metrics`, against a
//! cluster given by kubeconfig or in-cluster configuration.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use edgeplane_runtime::controllers::{self, Options};
use edgeplane_runtime::providers::ProviderRegistry;

use super::external::ProviderArgs;
use super::live::{self, ElectionArgs, LiveArgs};
use super::scheduler::WebhookArgs;

/// The component's name: the Lease's name and the events' reporting controller.
pub const COMPONENT: &str = "edgeplane-controller";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub live: LiveArgs,
    /// Where to serve /healthz, /readyz and /metrics.
    #[arg(
        long = "metrics-addr",
        default_value = "0.0.0.0:8081",
        value_name = "ADDR"
    )]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub election: ElectionArgs,
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// The gate webhook (gate mode of the scheduler): served here in the chart.
    #[command(flatten)]
    pub webhook: WebhookArgs,
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
    live::runtime()?.block_on(async move {
        let mut base =
            live::start_base(&args.live, &args.election, COMPONENT, args.metrics_addr).await?;
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
        if let Some(task) = args
            .webhook
            .spawn(
                &base.caches.offers,
                &base.ctx.metrics,
                base.ctx.shutdown.clone(),
            )
            .await?
        {
            base.spawn(async move {
                let _ = task.await;
            });
        }
        tracing::info!(
            identity = %base.ctx.identity,
            http = ?base.http_addr,
            leader_election = !args.election.no_leader_election,
            "edgeplane controller started"
        );
        live::shutdown_signal().await;
        tracing::info!("shutting down");
        base.stop().await;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
