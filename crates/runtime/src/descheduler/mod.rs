//! The descheduler (design.md section 6): repairs bindings that stay in Violation.
//!
//! Every `interval`, the leader reads the bindings, offers, pods and policies from the
//! shared caches, turns them into facts ([`observe`]) and lets the pure decisions of
//! `edgeplane_core::descheduler` say what to do: record an ignored violation, ask the
//! network controller to Mitigate, evict one pod (the one the planner can move to restore
//! compliance), or leave the binding alone and say why. This module is the thin I/O
//! around them ([`act`]):
//!
//! - Mitigate with the binding's rules (name, request, limit) between its first two
//!   targets; the attempt is recorded as `status.lastMitigatedTimestamp` by server-side
//!   apply with its own field manager `edgeplane-descheduler`, so the binding controller's
//!   status writes never drop it.
//! - Evictions go through the Eviction API (`pods/eviction`, with the pod's uid as
//!   precondition), never a delete, so PodDisruptionBudgets hold; a 429 is an
//!   `EvictionBlocked` event and the binding is tried again at a later cycle.
//! - Events on the binding (and the evicted pod) tell `kubectl describe` what happened.
//!
//! Bindings in Error or Pending are never acted on (they have no `violatingSince`).
//! Only the replica holding the `edgeplane-descheduler` Lease acts; followers keep their
//! caches warm. docs/descheduler.md describes the behaviour for operators.

pub mod act;
pub mod metrics;
pub mod observe;
pub mod questions;
pub mod room;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use edgeplane_core::descheduler::Limits;
use edgeplane_core::descheduler::{self as decide, Input, Memory, PodFacts};
use edgeplane_core::planner::{PlanOptions, PodKey};
use edgeplane_netctl::NetworkController;
use tokio::task::JoinHandle;

use crate::cache::{Caches, LaneCaches};
use crate::context::Context;
use crate::netctl::NetworkControllers;
use crate::view::ViewCache;
pub use metrics::DeschedulerMetrics;

/// The component's name: its Lease, its events' `reportingController`.
pub const COMPONENT: &str = "edgeplane-descheduler";
/// The Lease replicas elect a leader with.
pub const LEASE_NAME: &str = "edgeplane-descheduler";
/// The field manager of `status.lastMitigatedTimestamp` (the binding controller, as
/// `edgeplane`, owns the rest of the status).
pub use edgeplane_api::names::DESCHEDULER_FIELD_MANAGER as FIELD_MANAGER;

/// How the descheduler works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeschedulerConfig {
    /// Time between cycles.
    pub interval: Duration,
    /// Evictions per cycle, namespace and offer; minimum pod age.
    pub limits: Limits,
    /// Decide and report, but neither mitigate nor evict.
    pub dry_run: bool,
    /// A binding is mitigated at most once per this period.
    pub mitigation_period: Duration,
}

impl Default for DeschedulerConfig {
    /// Every 10s; 5 evictions per cycle, 2 per namespace, 1 per offer, pods at least 60s
    /// old; mitigation at most once a minute per binding.
    fn default() -> Self {
        DeschedulerConfig {
            interval: Duration::from_secs(10),
            limits: Limits::default(),
            dry_run: false,
            mitigation_period: Duration::from_secs(60),
        }
    }
}

/// A setting of [`DeschedulerConfig`] that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}: must be longer than 0")]
    Zero(&'static str),
    #[error(
        "{0}: must be at least 1 (to stop evictions, use --dry-run or violationPolicy Mediate)"
    )]
    NoEvictions(&'static str),
}

impl DeschedulerConfig {
    /// Checks the configuration; the error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::Zero("interval"));
        }
        for (name, value) in [
            ("limits.per_cycle", self.limits.per_cycle),
            ("limits.per_namespace", self.limits.per_namespace),
            ("limits.per_offer", self.limits.per_offer),
        ] {
            if value == 0 {
                return Err(ConfigError::NoEvictions(name));
            }
        }
        if self.mitigation_period.is_zero() {
            return Err(ConfigError::Zero("mitigation_period"));
        }
        Ok(())
    }
}

/// The descheduler: the caches it reads, the context it writes through.
pub struct Descheduler {
    ctx: Context,
    caches: Caches,
    views: ViewCache,
    config: DeschedulerConfig,
    controllers: Arc<NetworkControllers>,
    metrics: DeschedulerMetrics,
    memory: Memory,
    /// Offer problems already logged (each once).
    reported: BTreeSet<String>,
    /// Service chains and VMI migrations, when the lanes of chains are repaired too.
    lanes: Option<LaneCaches>,
}

impl std::fmt::Debug for Descheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Descheduler")
            .field("ctx", &self.ctx)
            .field("config", &self.config)
            .field("controllers", &self.controllers)
            .finish_non_exhaustive()
    }
}

impl Descheduler {
    /// A descheduler that asks the network controller a Service labelled
    /// `network.edgeplane.io/controller: enabled` registers, if any.
    pub fn new(
        ctx: Context,
        caches: Caches,
        views: ViewCache,
        config: DeschedulerConfig,
    ) -> Descheduler {
        let metrics = DeschedulerMetrics::register(&ctx.metrics);
        Descheduler {
            ctx,
            caches,
            views,
            config,
            controllers: Arc::new(NetworkControllers::remote(None, Default::default())),
            metrics,
            memory: Memory::default(),
            reported: BTreeSet::new(),
            lanes: None,
        }
    }

    /// Repairs the lanes of service chains too (`--network-functions`): a lane binding in
    /// Violation past the lane grace is mitigated, then one hop moves, the lane judged as
    /// a unit; a VM hop by live migration.
    pub fn with_lanes(mut self, lanes: LaneCaches) -> Descheduler {
        self.lanes = Some(lanes);
        self
    }

    /// Uses `controller` (in process, or any implementation) for Mitigate.
    pub fn with_network_controller(self, controller: Arc<dyn NetworkController>) -> Descheduler {
        self.with_network_controllers(NetworkControllers::fixed(controller))
    }

    /// Finds the network controller as `controllers` says (an explicit URL, Service
    /// discovery, or none).
    pub fn with_network_controllers(mut self, controllers: NetworkControllers) -> Descheduler {
        self.controllers = Arc::new(controllers);
        self
    }

    pub fn metrics(&self) -> &DeschedulerMetrics {
        &self.metrics
    }

    /// Runs until the context's shutdown is cancelled.
    pub async fn run(mut self) {
        let shutdown = self.ctx.shutdown.clone();
        if let Err(problem) = self.config.validate() {
            tracing::error!(%problem, "the descheduler's configuration is invalid; it does not run");
            return;
        }
        let ready = self.caches.clone();
        let lanes = self.lanes.clone();
        self.ctx.readiness.add("descheduler-caches", move || {
            ready.is_ready() && lanes.as_ref().is_none_or(LaneCaches::is_ready)
        });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = self.caches.wait_ready() => {}
        }
        if let Some(lanes) = self.lanes.clone() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = lanes.wait_ready() => {}
            }
        }
        tracing::info!(interval = ?self.config.interval, dry_run = self.config.dry_run,
            limits = ?self.config.limits, controller = ?self.controllers, "descheduler started");
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if !self.ctx.leadership.is_leader() {
                // A follower acts on nothing; what it remembered is stale once it leads.
                self.memory = Memory::default();
                continue;
            }
            self.cycle().await;
        }
        tracing::info!("descheduler stopped");
    }

    /// One cycle: observe, decide, act.
    pub async fn cycle(&mut self) {
        self.metrics.cycles.inc();
        let now = self.ctx.clock.now();
        let bindings = self.caches.bindings.list();
        let offers = self.caches.offers.list();
        let pods = self.caches.pods.list();
        let policies = self.caches.policies.list();
        let nodes = self.caches.nodes.list();
        let services = self.caches.services.list();
        let (chains, migrations) = match &self.lanes {
            Some(l) => (l.chains.list(), l.migrations.list()),
            None => (Vec::new(), Vec::new()),
        };
        let migration_facts: Vec<_> = migrations
            .iter()
            .map(|m| observe::migration_facts(m))
            .collect();

        let mut offer_facts = BTreeMap::new();
        // The lanes of chains have no offer: the chain stands for it.
        for chain in &chains {
            offer_facts.insert(
                format!(
                    "{}/{}",
                    chain.metadata.namespace.as_deref().unwrap_or("default"),
                    chain.metadata.name.as_deref().unwrap_or_default()
                ),
                observe::lane_offer_facts(),
            );
        }
        for offer in &offers {
            match observe::offer_facts(offer) {
                Ok(f) => {
                    offer_facts.insert(observe::offer_key(offer), f);
                }
                Err(problem) => {
                    if self.reported.insert(problem.to_string()) {
                        tracing::warn!(%problem, "its bindings are left alone");
                    }
                }
            }
        }
        // Only the bindings that can lead to an action or change the memory, and their
        // pods (plus the pods this process evicted): reading every binding and pod each
        // cycle cost more than everything else the descheduler does at 10,000 bindings.
        let binding_facts: Vec<_> = bindings
            .iter()
            .filter(|b| observe::concerns(&self.memory, b))
            .map(|b| {
                let mut facts = observe::binding_facts(b);
                if self.lanes.is_some()
                    && let Some(pods) = observe::lane_pods(b, &pods)
                {
                    facts.pods = pods;
                }
                facts
            })
            .collect();
        let pod_facts: BTreeMap<PodKey, PodFacts> = binding_facts
            .iter()
            .flat_map(|b| &b.pods)
            .chain(self.memory.evicted.keys())
            .filter_map(|k| self.caches.pods.get(Some(&k.namespace), &k.name))
            .map(|p| {
                let f = observe::pod_facts(&p);
                (f.key.clone(), f)
            })
            .collect();
        self.memory.prune(&binding_facts, &pod_facts);
        for finished in self.memory.finish_migrations(&migration_facts, now) {
            act::migration_finished(&self.ctx, &self.metrics, &bindings, &migrations, &finished)
                .await;
        }
        let controller = self
            .controllers
            .resolve(&services)
            .map(|c| c.timed(&self.ctx.metrics.network_controller()));
        let options = PlanOptions {
            // One pod over the nodes: small; the budget only guards against a huge cluster.
            max_iterations: 200_000,
            deadline: Some(std::time::Instant::now() + Duration::from_secs(2)),
            ..PlanOptions::default()
        };
        let topology = self.caches.topology();
        let cluster = room::Cluster {
            nodes: &nodes,
            pods: &pods,
            policies: &policies,
            offers: &offers,
            topology: topology.as_deref(),
        };
        let waited_for = self
            .memory
            .replacements
            .values()
            .map(|r| r.controller.clone())
            .collect();
        // The view and the room are read only when a binding reaches the eviction stage.
        let mut answers = questions::Answers::new(
            &self.views,
            cluster,
            &bindings,
            &chains,
            waited_for,
            &options,
        );
        let actions = {
            let input = Input {
                now,
                bindings: &binding_facts,
                offers: &offer_facts,
                pods: &pod_facts,
                limits: &self.config.limits,
                controller: controller.is_some(),
                dry_run: self.config.dry_run,
                mitigation_period: self.config.mitigation_period,
                memory: &self.memory,
                migrations: &migration_facts,
            };
            decide::decide(&input, &mut answers)
        };
        self.memory.settle(answers.capacity.as_ref(), now);
        self.memory.record(&actions, &binding_facts, now);
        if actions.is_empty() {
            return;
        }
        let observed = act::Observed {
            bindings: &bindings,
            offers: &offers,
            pods: &pods,
            policies: &policies,
            nodes: &nodes,
            chains: &chains,
            controller: controller.as_ref(),
            now,
        };
        for action in actions {
            act::act(
                &self.ctx,
                &self.metrics,
                &mut self.memory,
                &observed,
                action,
            )
            .await;
        }
    }
}

/// Starts the caches and the view from the context's client and runs a descheduler until
/// the context's shutdown is cancelled.
pub fn spawn(
    ctx: Context,
    config: DeschedulerConfig,
    controller: Option<Arc<dyn NetworkController>>,
) -> JoinHandle<()> {
    let caches = Caches::start(&ctx.client, &ctx.shutdown);
    let views = ViewCache::start(
        &caches.nodes,
        &caches.pods,
        &caches.topologies,
        ctx.clock.clone(),
        ctx.metrics.clone(),
        ctx.shutdown.clone(),
    );
    let mut descheduler = Descheduler::new(ctx, caches, views, config);
    if let Some(c) = controller {
        descheduler = descheduler.with_network_controller(c);
    }
    tokio::spawn(descheduler.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = DeschedulerConfig::default();
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.limits.per_cycle, 5);
        assert_eq!(c.limits.per_namespace, 2);
        assert_eq!(c.limits.per_offer, 1);
        assert_eq!(c.limits.min_pod_age, Duration::from_secs(60));
        assert_eq!(c.mitigation_period, Duration::from_secs(60));
        assert!(!c.dry_run);
        assert_eq!(c.validate(), Ok(()));
        let mut bad = c.clone();
        bad.limits.per_offer = 0;
        assert!(bad.validate().is_err_and(|e| {
            e.to_string()
                .starts_with("limits.per_offer: must be at least 1")
        }));
        let mut bad = c;
        bad.interval = Duration::ZERO;
        assert_eq!(
            bad.validate().map_err(|e| e.to_string()),
            Err("interval: must be longer than 0".into())
        );
    }
}
