//! edgeplane's own components in the simulation: the controllers of `edgeplane controller`
//! (offers, bindings, policy and topology status), the planning scheduler in gate mode
//! with its gate as the cluster's pod admission step, the descheduler, and the reference
//! network controller serving the scenario's NetworkPathCatalogue, which the scheduler
//! (Discover, Allocate, Release) and the descheduler (Mitigate) call in process.
//!
//! A scenario with NetworkFunctions or ServiceChains ([`SimContext::functions`]) also gets
//! what `edgeplane controller --network-functions`, `edgeplane scheduler --service-chains`
//! and `edgeplane descheduler --network-functions` run: the NF and chain controllers (and
//! offers that target NFs and chains), lanes planned as units, and lane repair (live
//! migration of VM hops). The embedded cluster's KubeVirt and Multus stand-ins run
//! wherever the scenario includes their CRDs (docs/simulator.md).
//!
//! They are the production code, started as `edgeplane controller`, `edgeplane scheduler`,
//! `edgeplane descheduler` and `edgeplane netctl serve` start it, on the embedded cluster's
//! client and virtual
//! clock, with the scenario's settings. One difference, for the size of large runs: the
//! components share one set of caches and one view of the cluster (in a real cluster each
//! process keeps its own copy of the same watches), started by whichever component starts
//! first. Each still writes through its own [`Context`], so Events carry its name.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edgeplane_sim::controllers::{Options, components};
//! use edgeplane_sim::{RunOptions, scenario};
//! let scenario = scenario::load(std::path::Path::new("examples/scenarios/stadium-ar/scenario.yaml"))?;
//! let report = edgeplane_sim::run(&scenario, RunOptions {
//!     components: components(&Options::default()),
//!     ..RunOptions::default()
//! })?;
//! # Ok(()) }
//! ```

use std::sync::{Arc, OnceLock};

use edgeplane_cluster::PodAdmission;
use edgeplane_netctl::NetworkController;
use edgeplane_netctl::reference::{ReferenceConfig, ReferenceController};
use edgeplane_providers::ClientOptions;
use edgeplane_runtime::cache::{Caches, FunctionCaches, LaneCaches, NetworkReads};
use edgeplane_runtime::context::Context;
use edgeplane_runtime::controllers;
use edgeplane_runtime::descheduler::{self, Descheduler, DeschedulerConfig};
use edgeplane_runtime::metrics::Metrics;
use edgeplane_runtime::providers::ProviderRegistry;
use edgeplane_runtime::scheduler::queue::Triggers;
use edgeplane_runtime::scheduler::{self, Mode, Scheduler, SchedulerConfig};
use edgeplane_runtime::view::ViewCache;
use edgeplane_runtime::webhook::{GateAdmission, GateOptions};

use crate::component::{Component, SimContext, component};

/// The name of `edgeplane controller` (offer, binding, policy and topology controllers):
/// its Events' reporting controller.
pub const CONTROLLER: &str = "edgeplane-controller";
/// The name of the reference network controller's component.
pub const NETWORK_CONTROLLER: &str = "edgeplane-netctl";
/// The namespace of the scheduler's Lease, which its `PlanRun` Events regard. `default`
/// exists in every embedded cluster, so a scenario need not create a namespace for it.
pub const LEASE_NAMESPACE: &str = "default";

/// Which of edgeplane's components run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The reference network controller: the scheduler and the descheduler call it, and
    /// its reconciler keeps the catalogue's status and the activated paths current.
    /// Without it they run with no network controller (nothing is mitigated, no path is
    /// discovered).
    pub network_controller: bool,
    /// The descheduler (mitigations and evictions of bindings in Violation).
    pub descheduler: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            network_controller: true,
            descheduler: true,
        }
    }
}

/// edgeplane's components, ready for [`crate::RunOptions::components`].
pub fn components(options: &Options) -> Vec<Box<dyn Component>> {
    components_with_metrics(options, Arc::new(Metrics::new()))
}

/// Like [`components`], counting into `metrics` (reconciles, evaluations, API writes),
/// which the caller can read after the run (`edgeplane bench sim` prints them).
pub fn components_with_metrics(
    options: &Options,
    metrics: Arc<Metrics>,
) -> Vec<Box<dyn Component>> {
    let shared = Shared {
        parts: Default::default(),
        metrics,
    };
    let network = options.network_controller;
    let mut list: Vec<Box<dyn Component>> = vec![controller(&shared), scheduler(&shared, network)];
    if options.descheduler {
        list.push(descheduler(&shared, network));
    }
    if network {
        list.push(network_controller(&shared));
    }
    list
}

/// What the components share: one set of caches and one view of the cluster, the metrics
/// registry they count into, and one reference network controller (whose operations are
/// serialized in process, as in `edgeplane netctl serve`).
#[derive(Clone)]
struct Parts {
    caches: Caches,
    views: ViewCache,
    metrics: Arc<Metrics>,
    network: Arc<ReferenceController>,
    /// NFs, chains and the KubeVirt and Multus kinds, in a scenario with network
    /// functions.
    functions: Option<FunctionCaches>,
}

/// Started once, by the first component that starts: every component of a run gets the
/// same client, clock and shutdown token, so which one starts them does not matter.
#[derive(Clone)]
struct Shared {
    parts: Arc<OnceLock<Parts>>,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn parts(&self, ctx: &SimContext) -> Parts {
        self.parts
            .get_or_init(|| {
                let metrics = self.metrics.clone();
                let caches = Caches::start(&ctx.client, &ctx.shutdown);
                // Bindings reserve their bandwidth on the links they cross, as in
                // `edgeplane controller` (runtime::component).
                let views = ViewCache::start(
                    &caches.nodes,
                    &caches.pods,
                    &caches.topologies,
                    ctx.clock.clone(),
                    metrics.clone(),
                    ctx.shutdown.clone(),
                )
                .with_reservations(
                    &caches.bindings,
                    &caches.offers,
                    &caches.policies,
                    ctx.shutdown.clone(),
                );
                let network = Arc::new(
                    ReferenceController::new(
                        ctx.client.clone(),
                        ctx.clock.clone(),
                        ReferenceConfig::default(),
                    )
                    .with_cached_reads(Arc::new(NetworkReads::from(&caches))),
                );
                let functions = ctx
                    .functions
                    .then(|| FunctionCaches::start(&ctx.client, &ctx.shutdown));
                Parts {
                    caches,
                    views,
                    metrics,
                    network,
                    functions,
                }
            })
            .clone()
    }
}

/// A component's context on the simulation's client and virtual clock. No leader
/// election: each component runs as a single replica, always the leader.
fn context(ctx: &SimContext, parts: &Parts, name: &str) -> Context {
    Context::new(ctx.client.clone(), name)
        .with_clock(ctx.clock.clone())
        .with_metrics(parts.metrics.clone())
        .with_shutdown(ctx.shutdown.clone())
}

/// `edgeplane controller`: offers -> bindings, bindings evaluated every offer's period
/// and on every relevant change, policy and topology status.
fn controller(shared: &Shared) -> Box<dyn Component> {
    let shared = shared.clone();
    Box::new(component(CONTROLLER, move |ctx: SimContext| {
        let parts = shared.parts(&ctx);
        async move {
            let registry =
                ProviderRegistry::new(parts.views.builtin_provider(), ClientOptions::default());
            let cctx = context(&ctx, &parts, CONTROLLER);
            let main = controllers::run(
                cctx.clone(),
                parts.caches.clone(),
                parts.views.clone(),
                Arc::new(registry),
                controllers::Options {
                    functions: parts.functions.as_ref().map(FunctionCaches::targets),
                    ..controllers::Options::default()
                },
            );
            match parts.functions {
                // `--network-functions`: the NF and chain controllers beside the others.
                Some(caches) => {
                    let functions = controllers::nf::Functions {
                        caches,
                        views: parts.views,
                    };
                    tokio::join!(
                        main,
                        controllers::run_functions(cctx, parts.caches, functions)
                    );
                }
                None => main.await,
            }
            Ok(())
        }
    }))
}

/// `edgeplane scheduler --mode gate` with the scenario's quiet period and max wait, and
/// its webhook's mutation as the cluster's pod admission step: pods an offer targets are
/// created with the planner's gate, and the embedded cluster's default-scheduler stand-in
/// binds them where the plan pinned them.
fn scheduler(shared: &Shared, network: bool) -> Box<dyn Component> {
    let shared = shared.clone();
    let gate = GateAdmission::new(GateOptions::default());
    let hook = gate.clone();
    let admission = PodAdmission::new(move |pod| {
        hook.admit(pod);
    });
    Box::new(
        component(scheduler::COMPONENT, move |ctx: SimContext| {
            let parts = shared.parts(&ctx);
            // Attached before the scenario's objects are applied (components start
            // first), so no pod is admitted while the gate cannot see the offers.
            gate.attach(&parts.caches.offers);
            let config = scheduler_config(&ctx);
            async move {
                let sctx = context(&ctx, &parts, scheduler::COMPONENT);
                let mut scheduler = Scheduler::new(sctx, parts.caches, parts.views, config);
                // `--service-chains`: lanes planned as units, offers on NFs and chains.
                if let Some(functions) = &parts.functions {
                    scheduler = scheduler.with_functions(functions.targets());
                }
                if network {
                    let controller: Arc<dyn NetworkController> = parts.network;
                    scheduler = scheduler.with_network_controller(controller);
                }
                scheduler.run().await;
                Ok(())
            }
        })
        .with_admission(admission),
    )
}

/// The scheduler's configuration from the scenario's settings.
fn scheduler_config(ctx: &SimContext) -> SchedulerConfig {
    SchedulerConfig {
        mode: Mode::Gate,
        triggers: Triggers {
            quiet_period: ctx.settings.quiet_period,
            max_wait: ctx.settings.max_wait,
        },
        seed: ctx.settings.seed,
        lease_namespace: LEASE_NAMESPACE.into(),
        plan_inline: true,
        ..SchedulerConfig::default()
    }
}

/// `edgeplane descheduler` with its defaults (a cycle every 10s, evictions limited per
/// cycle, namespace and offer, pods at least 60s old, a binding mitigated at most once a
/// minute), asking the reference network controller to Mitigate. Each binding's grace and
/// mitigation grace come from its offer.
fn descheduler(shared: &Shared, network: bool) -> Box<dyn Component> {
    let shared = shared.clone();
    Box::new(component(descheduler::COMPONENT, move |ctx: SimContext| {
        let parts = shared.parts(&ctx);
        async move {
            let dctx = context(&ctx, &parts, descheduler::COMPONENT);
            let mut descheduler = Descheduler::new(
                dctx,
                parts.caches,
                parts.views,
                DeschedulerConfig::default(),
            );
            if network {
                let controller: Arc<dyn NetworkController> = parts.network;
                descheduler = descheduler.with_network_controller(controller);
            }
            // `--network-functions`: lanes repaired, VM hops live-migrated.
            if ctx.functions {
                descheduler = descheduler.with_lanes(LaneCaches::start(&ctx.client, &ctx.shutdown));
            }
            descheduler.run().await;
            Ok(())
        }
    }))
}

/// The reference network controller's reconciler (catalogue status, activated paths,
/// allocations of bindings that are gone). Its Mitigate, Discover and Allocate are called
/// in process by the components that use it.
fn network_controller(shared: &Shared) -> Box<dyn Component> {
    let shared = shared.clone();
    Box::new(component(NETWORK_CONTROLLER, move |ctx: SimContext| {
        let parts = shared.parts(&ctx);
        async move {
            let shutdown = ctx.shutdown.clone();
            parts
                .network
                .run_reconciler(async move { shutdown.cancelled().await })
                .await;
            Ok(())
        }
    }))
}
