//! `edgeplane hub`: places MEC applications across member clusters from a hub cluster
//! (docs/multicluster.md), in rounds every `interval`:
//!
//! - observe ([`observe`]): the hub's MemberClusters, MecApplications,
//!   ConstraintPolicies, NetworkTopology (and in the Karmada modes its
//!   PropagationPolicies and ResourceBindings); each member's health and capacity
//!   through its kubeconfig Secret; in direct mode the objects the hub applied there;
//! - decide: `edgeplane_core::hub` (`closed_loop::round` for MecApplications, the Karmada
//!   functions for bindings and policies, `direct` for what to apply and prune per
//!   member), all pure;
//! - act ([`act`]): every write through [`Context`] — statuses, Events, server-side
//!   applies and deletions in the hub and, in direct mode, in the members (a context per
//!   member, gated on the hub's leadership).
//!
//! Rounds rather than watches: a member's health is a probe, not an event, so the hub
//! looks at everything every round; what is unchanged is not written (statuses are
//! compared, member objects carry a digest of what was applied).

mod act;
mod observe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_core::hub::HubOptions;
use kube::Client;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::component::BaseConfig;
use crate::context::Context;
use crate::leader::{self, Leadership};
use crate::metrics::Metrics;
use crate::metrics::hub::HubMetrics;

/// How the hub carries its decisions out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Server-side apply of each member's share to the member, by kubeconfig.
    Direct,
    /// As Karmada's scheduler: `spec.clusters` of the ResourceBindings of
    /// PropagationPolicies with `schedulerName: edgeplane`.
    Karmada,
    /// Plain PropagationPolicies (cluster affinity, static weights) for MecApplications,
    /// for Karmadas whose scheduler may not be replaced.
    KarmadaPolicy,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Karmada => "karmada",
            Mode::KarmadaPolicy => "karmada-policy",
        }
    }
}

/// The hub's settings.
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub mode: Mode,
    /// Time between rounds.
    pub interval: Duration,
    /// How long an application's rules may be in Violation before it is placed again.
    pub grace: Duration,
    /// How long a member may take to answer a probe before it counts as unreachable.
    pub probe_timeout: Duration,
    pub options: HubOptions,
    /// How a member's kubeconfig becomes a client.
    pub connect: Connector,
}

/// How the hub turns a member's kubeconfig (the text of its Secret) into a client.
#[derive(Clone, Default)]
pub enum Connector {
    /// A client of the server the kubeconfig's current context names.
    #[default]
    Kubeconfig,
    /// A client the caller makes from the text: the simulator's members are embedded
    /// clusters in the same process, reached without sockets. The Secret is still read
    /// and its resourceVersion still decides when the client is made again.
    Custom(MakeClient),
}

/// Makes a member's client from its kubeconfig's text, or says why it cannot.
pub type MakeClient = Arc<dyn Fn(&str) -> Result<Client, String> + Send + Sync>;

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connector::Kubeconfig => f.write_str("Kubeconfig"),
            Connector::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            mode: Mode::Direct,
            interval: Duration::from_secs(10),
            grace: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(5),
            options: HubOptions::default(),
            connect: Connector::Kubeconfig,
        }
    }
}

/// A running hub.
pub struct Hub {
    pub ctx: Context,
    pub http_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
    elector: Option<tokio::task::JoinHandle<()>>,
}

impl Hub {
    /// Starts leader election, the HTTP endpoints and the rounds. The hub keeps no
    /// watches of pods or nodes (it is not a component inside a cluster), so it does not
    /// start [`crate::Base`]'s caches.
    pub async fn start(
        client: Client,
        base: BaseConfig,
        config: HubConfig,
    ) -> std::io::Result<Hub> {
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let (leadership, elector) = match base.lease {
            Some(lease) => {
                let (l, task) =
                    leader::spawn(client.clone(), base.clock.clone(), lease, shutdown.clone());
                (l, Some(task))
            }
            None => (Leadership::always(), None),
        };
        let ctx = Context::new(client, base.component.clone())
            .with_identity(base.identity.clone())
            .with_clock(base.clock.clone())
            .with_leadership(leadership.clone())
            .with_metrics(metrics.clone())
            .with_shutdown(shutdown.clone());
        let l = leadership.clone();
        ctx.readiness.add("leader-election", move || l.is_known());
        let mut tasks = JoinSet::new();
        let http_addr = match base.http_addr {
            Some(addr) => {
                let (bound, task) =
                    crate::http::serve(addr, metrics, ctx.readiness.clone(), shutdown.clone())
                        .await?;
                tasks.spawn(async move {
                    let _ = task.await;
                });
                Some(bound)
            }
            None => None,
        };
        tasks.spawn(run(ctx.clone(), config));
        Ok(Hub {
            ctx,
            http_addr,
            tasks,
            elector,
        })
    }

    /// Graceful stop: the round in flight finishes, the Lease is released.
    pub async fn stop(mut self) {
        self.ctx.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(elector) = self.elector.take() {
            let _ = elector.await;
        }
    }
}

/// Rounds until the shutdown token is cancelled; only the leader acts.
pub async fn run(ctx: Context, config: HubConfig) {
    let mut members = observe::MemberClients::default();
    let metrics = HubMetrics::register(&ctx.metrics);
    loop {
        if ctx.leadership.is_leader() {
            let started = std::time::Instant::now();
            match observe::observe(&ctx, &config, &mut members).await {
                Ok(observed) => {
                    let facts = act::act(&ctx, &config, &mut members, observed).await;
                    metrics.record(facts, started.elapsed().as_secs_f64());
                }
                Err(error) => tracing::warn!(%error, "hub: observing the hub cluster failed"),
            }
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}
