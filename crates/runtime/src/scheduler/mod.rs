//! The planning scheduler (design.md section 5): plans every pod that waits for it as one
//! group, then places them.
//!
//! - **Gate mode** (default): pods that offers target carry the scheduling gate
//!   `constraint.edgeplane.io/planner` (added at creation by the mutating webhook in
//!   [`crate::webhook`], or by their authors). The scheduler plans when no new gated pod
//!   arrived for the quiet period or the oldest waited the maximum wait ([`queue`]), then
//!   writes one patch per pod that sets required node affinity to the planned node and
//!   removes the gate; kube-scheduler binds it there.
//! - **Bind mode**: a secondary scheduler for pods with `schedulerName: edgeplane`; same
//!   queue and planner, binding through `pods/binding`.
//!
//! Its shape is the descheduler's: [`observe`] reads the caches into facts; the decisions
//! are pure functions in `edgeplane_core::scheduler` ([`queue`]: when; `input`: what the
//! planner sees; `decide`: what is written for a plan and what the answers mean); [`act`]
//! performs the writes through the [`Context`] and publishes the Events. Around them:
//! [`triggers`] (which changes bring unplaced pods back), [`discover`] (asking the network
//! controller for a path), [`external`] (external providers' costs), [`release`] (giving
//! paths back). Only the replica holding the `edgeplane-scheduler` Lease plans.
//!
//! Starting it in-process (the simulator, tests):
//!
//! ```no_run
//! # async fn start(client: kube::Client, clock: std::sync::Arc<dyn edgeplane_core::clock::Clock>) {
//! use edgeplane_runtime::Context;
//! use edgeplane_runtime::scheduler::{self, SchedulerConfig};
//!
//! let token = tokio_util::sync::CancellationToken::new();
//! let ctx = Context::new(client, scheduler::COMPONENT)
//!     .with_clock(clock)
//!     .with_shutdown(token.clone());
//! let task = scheduler::spawn(ctx, SchedulerConfig::default());
//! token.cancel();
//! task.await.ok();
//! # }
//! ```
//!
//! or, sharing caches with other components, `Scheduler::new(ctx, caches, views, config)
//! .run().await`. docs/scheduler.md describes the behaviour for operators.

mod act;
pub mod discover;
pub mod external;
pub mod metrics;
pub mod observe;
pub mod release;
pub mod triggers;

pub use edgeplane_core::scheduler::Mode;
pub use edgeplane_core::scheduler::notes::{bindings_by_pod, planned_note, planned_note_from};
pub use edgeplane_core::scheduler::queue;
pub use metrics::{OutcomeLabels, SchedulerMetrics};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{NetworkFunction, ServiceChain};
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::planner::convert::pod_key;
use edgeplane_core::planner::{self, Plan, PlanInput, PlanOptions, PodKey};
use edgeplane_core::scheduler::compiled::CompiledCluster;
use edgeplane_core::scheduler::decide::{CHANGED_RETRY, Requeue, Settlement};
use edgeplane_core::scheduler::input::{Built, is_pending};
use edgeplane_core::scheduler::notes::run_note;
use edgeplane_netctl::NetworkController;
use edgeplane_providers::{ClientOptions, Provider};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cache::{Cache, Caches};
use crate::context::Context;
use crate::error::Backoff;
use crate::events::{EventRecorder, EventSpec, reasons};
use crate::netctl::NetworkControllers;
use crate::view::ViewCache;
use discover::NetworkDiscovery;
use external::ExternalProviders;
use observe::Facts;
use queue::{Due, Queue, Triggers};
use triggers::Trigger;

/// The component's name: its Lease, its events' `reportingController`.
pub const COMPONENT: &str = "edgeplane-scheduler";
/// The Lease replicas elect a leader with.
pub const LEASE_NAME: &str = edgeplane_api::names::SCHEDULER_LEASE;

/// How the scheduler works.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    pub mode: Mode,
    /// Quiet period and maximum wait.
    pub triggers: Triggers,
    /// The longest one plan may search (wall time); the best plan found is used.
    pub time_budget: Duration,
    /// Search steps per plan at most (deterministic budget); `None`: the planner's default.
    pub max_iterations: Option<u64>,
    /// Seeds the planner's search order.
    pub seed: u64,
    /// Where the scheduler's Lease is: `PlanRun` events regard it.
    pub lease_namespace: String,
    pub lease_name: String,
    /// How external providers are called.
    pub provider_options: ClientOptions,
    /// Pod writes in flight at once.
    pub write_concurrency: usize,
    /// Plan on the scheduler's own task instead of a blocking thread. The simulator sets
    /// it: its single-threaded virtual time has nothing else to run meanwhile, and a
    /// second thread costs a second malloc arena (about 200 MiB at 5,000 pods).
    pub plan_inline: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            mode: Mode::Gate,
            triggers: Triggers::default(),
            time_budget: Duration::from_secs(5),
            max_iterations: None,
            seed: 0,
            lease_namespace: "default".into(),
            lease_name: LEASE_NAME.into(),
            provider_options: ClientOptions::default(),
            write_concurrency: 16,
            plan_inline: false,
        }
    }
}

/// The scheduler: the caches it reads, the context it writes through.
pub struct Scheduler {
    ctx: Context,
    caches: Caches,
    views: ViewCache,
    config: SchedulerConfig,
    discovery: Arc<dyn NetworkDiscovery>,
    external: ExternalProviders,
    metrics: SchedulerMetrics,
    events: EventRecorder,
    /// Service chains whose lanes are planned as units (`None`: not watched).
    chains: Option<Cache<ServiceChain>>,
    /// Network functions that offers may target (`None`: not watched).
    nfs: Option<Cache<NetworkFunction>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("ctx", &self.ctx)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Starts the caches and the view from the context's client and runs a scheduler until
/// the context's shutdown is cancelled.
pub fn spawn(ctx: Context, config: SchedulerConfig) -> JoinHandle<()> {
    let caches = Caches::start(&ctx.client, &ctx.shutdown);
    let views = ViewCache::start(
        &caches.nodes,
        &caches.pods,
        &caches.topologies,
        ctx.clock.clone(),
        ctx.metrics.clone(),
        ctx.shutdown.clone(),
    );
    let scheduler = Scheduler::new(ctx, caches, views, config);
    tokio::spawn(scheduler.run())
}

/// [`spawn`], with `gate` (the embedded cluster's pod admission hook, standing in for the
/// webhook) reading offers from the scheduler's caches. For the simulator and tests,
/// where no `edgeplane controller` serves the webhook.
pub fn spawn_with_gate(
    ctx: Context,
    config: SchedulerConfig,
    gate: &crate::webhook::GateAdmission,
) -> JoinHandle<()> {
    let caches = Caches::start(&ctx.client, &ctx.shutdown);
    gate.attach(&caches.offers);
    let views = ViewCache::start(
        &caches.nodes,
        &caches.pods,
        &caches.topologies,
        ctx.clock.clone(),
        ctx.metrics.clone(),
        ctx.shutdown.clone(),
    );
    let scheduler = Scheduler::new(ctx, caches, views, config);
    tokio::spawn(scheduler.run())
}

/// What the loop remembers between runs.
struct RunState {
    queue: Queue<Instant>,
    /// Pods whose placement was written, with the node, until the cache shows it.
    in_flight: BTreeMap<PodKey, String>,
    runs: u64,
    backoff: Backoff<()>,
    /// The caches' objects compiled for the planner, kept between runs (compiled again
    /// only when they change).
    compiled: CompiledCluster,
}

impl RunState {
    /// Takes the answers of a run: placed pods are in flight, unplaced ones park, the
    /// others come back as [`Settlement::requeue`] says.
    fn settle(&mut self, settlement: &Settlement<'_>) {
        for (pod, node) in &settlement.placed {
            self.in_flight.insert(pod.clone(), node.clone());
        }
        self.queue
            .finish_run(settlement.unplaced.iter().map(|(k, _)| k.clone()));
        let now = Instant::now();
        match settlement.requeue() {
            Requeue::Backoff(pods) => {
                let wait = self.backoff.fail(());
                self.queue.retry(pods, now, now + wait);
            }
            Requeue::Settled { changed } => {
                self.backoff.succeed(&());
                self.queue.release_hold();
                if !changed.is_empty() {
                    self.queue.retry(changed, now, now + CHANGED_RETRY);
                }
            }
        }
    }
}

/// `pod` as an Event's `regarding`.
fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

impl Scheduler {
    pub fn new(
        ctx: Context,
        caches: Caches,
        views: ViewCache,
        config: SchedulerConfig,
    ) -> Scheduler {
        let metrics = SchedulerMetrics::register(&ctx.metrics);
        let external = ExternalProviders::new(config.provider_options.clone())
            .with_metrics(ctx.metrics.providers());
        let events = ctx.events();
        Scheduler {
            ctx,
            caches,
            views,
            config,
            discovery: Arc::new(NetworkControllers::remote(None, Default::default())),
            external,
            metrics,
            events,
            chains: None,
            nfs: None,
        }
    }

    /// Plans each lane of the chains in `chains` as one unit against its end-to-end
    /// budget (docs/network-functions.md): the lane's pods and virt-launcher pods are
    /// found by the labels the NF controller sets.
    pub fn with_chains(mut self, chains: Cache<ServiceChain>) -> Scheduler {
        self.chains = Some(chains);
        self
    }

    /// Plans lanes as [`Scheduler::with_chains`] does, and the bindings of offers that
    /// target NetworkFunctions or ServiceChains (each stands for its replicas' pods).
    pub fn with_functions(mut self, functions: crate::cache::FunctionTargets) -> Scheduler {
        self.nfs = Some(functions.nfs);
        self.with_chains(functions.chains)
    }

    /// Asks the network controller `discovery` resolves for paths before giving up on a
    /// pod whose bindings no node satisfies (default: the controller a Service labelled
    /// `network.edgeplane.io/controller: enabled` registers, if any).
    pub fn with_discovery(mut self, discovery: Arc<dyn NetworkDiscovery>) -> Scheduler {
        self.discovery = discovery;
        self
    }

    /// Uses `controller` (in process, or any implementation) for Discover, Allocate and
    /// Release.
    pub fn with_network_controller(self, controller: Arc<dyn NetworkController>) -> Scheduler {
        self.with_discovery(Arc::new(NetworkControllers::fixed(controller)))
    }

    /// `provider` answers for `rule`, instead of a provider registered by a Service.
    pub fn with_provider(mut self, rule: impl Into<String>, provider: Arc<dyn Provider>) -> Self {
        self.external.insert(rule, provider);
        self
    }

    pub fn metrics(&self) -> &SchedulerMetrics {
        &self.metrics
    }

    pub async fn run(self) {
        let shutdown = self.ctx.shutdown.clone();
        // Subscribe before the first list completes, so nothing falls between.
        let pods = self.caches.pods.changes();
        let nodes = self.caches.nodes.changes();
        let topologies = self.caches.topologies.changes();
        let policies = self.caches.policies.changes();
        let offers = self.caches.offers.changes();
        let mut pods = std::pin::pin!(pods);
        let mut nodes = std::pin::pin!(nodes);
        let mut topologies = std::pin::pin!(topologies);
        let mut policies = std::pin::pin!(policies);
        let mut offers = std::pin::pin!(offers);
        let mut role = Some(self.ctx.leadership.watch());
        let ready_caches = self.caches.clone();
        self.ctx
            .readiness
            .add("scheduler-caches", move || ready_caches.is_ready());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = self.caches.wait_ready() => {}
        }
        tracing::info!(mode = %self.config.mode, quiet_period = ?self.config.triggers.quiet_period,
            max_wait = ?self.config.triggers.max_wait, "scheduler started");
        let releases = tokio::spawn(release::run(
            self.ctx.clone(),
            self.caches.clone(),
            self.discovery.clone(),
            self.metrics.clone(),
        ));
        let mut state = RunState {
            queue: Queue::new(self.config.triggers),
            in_flight: BTreeMap::new(),
            runs: 0,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(60)),
            compiled: CompiledCluster::new(self.config.mode),
        };
        self.resync(&mut state);
        let mut was_leader = false;
        loop {
            let leader = self.ctx.leadership.is_leader();
            if leader != was_leader {
                self.ctx
                    .metrics
                    .leader
                    .get_or_create(&crate::metrics::ComponentLabels {
                        component: self.ctx.component.to_string(),
                    })
                    .set(i64::from(leader));
                if leader {
                    // A follower skipped its work: reconsider everything.
                    self.resync(&mut state);
                    state.queue.replan(Instant::now());
                }
                was_leader = leader;
            }
            self.metrics.queue_depth.set(state.queue.waiting() as i64);
            self.metrics.unplaced_pods.set(state.queue.parked() as i64);
            let now = Instant::now();
            if leader && let Some(due) = state.queue.due(now) {
                self.plan_run(&mut state, due).await;
                continue;
            }
            let deadline = if leader {
                state.queue.next_deadline()
            } else {
                None
            };
            let wake = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let role_changed = async {
                match role.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                alive = role_changed => {
                    if !alive {
                        // The elector is gone (or leadership is fixed): roles no longer change.
                        role = None;
                    }
                }
                Some(change) = pods.next() => {
                    let now = Instant::now();
                    if let Some(trigger) = triggers::pod_trigger(&change) {
                        self.trigger(&mut state, trigger, now);
                    }
                    self.on_pod(&mut state, &change, now);
                }
                Some(change) = nodes.next() => {
                    if let Some(t) = triggers::node_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                Some(change) = topologies.next() => {
                    if let Some(t) = triggers::topology_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                Some(change) = policies.next() => {
                    if let Some(t) = triggers::policy_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                Some(change) = offers.next() => {
                    if let Some(t) = triggers::offer_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                _ = wake => {}
            }
        }
        let _ = releases.await;
        tracing::info!("scheduler stopped");
    }

    fn trigger(&self, state: &mut RunState, trigger: Trigger, now: Instant) {
        if trigger == Trigger::Resync {
            self.resync(state);
        }
        let n = state.queue.replan(now);
        if n > 0 {
            tracing::debug!(
                trigger = trigger.as_str(),
                pods = n,
                "replanning unplaced pods"
            );
        }
    }

    fn on_pod(&self, state: &mut RunState, change: &crate::Change<Pod>, now: Instant) {
        match change {
            crate::Change::Applied { new, .. } => {
                let key = pod_key(new);
                if is_pending(self.config.mode, new) {
                    if !state.in_flight.contains_key(&key) {
                        state.queue.arrive(key, now);
                    }
                } else {
                    state.queue.depart(&key);
                    state.in_flight.remove(&key);
                }
            }
            crate::Change::Deleted(old) => {
                let key = pod_key(old);
                state.queue.depart(&key);
                state.in_flight.remove(&key);
            }
            crate::Change::Resynced => self.resync(state),
        }
    }

    /// Makes the queue agree with the pods cache: every pending pod waits (pods already
    /// waiting keep their arrival time), pods that no longer wait leave.
    fn resync(&self, state: &mut RunState) {
        let now = Instant::now();
        let pending: std::collections::BTreeSet<PodKey> = self
            .caches
            .pods
            .list()
            .iter()
            .filter(|p| is_pending(self.config.mode, p))
            .map(|p| pod_key(p))
            .collect();
        state.in_flight.retain(|k, _| pending.contains(k));
        state.queue.retain(|k| pending.contains(k));
        for key in pending {
            if !state.in_flight.contains_key(&key) {
                state.queue.arrive(key, now);
            }
        }
    }

    /// One plan run: plan every waiting pod together, then write the placements. The I/O
    /// of each step; what to write and what the answers mean are decided in
    /// `edgeplane_core::scheduler::decide`.
    async fn plan_run(&self, state: &mut RunState, due: Due) {
        let started = Instant::now();
        let arrivals = state.queue.start_run();
        let facts = Facts::read(
            &self.caches,
            &self.external,
            self.chains.as_ref(),
            self.nfs.as_ref(),
        );
        let built = facts.input(&mut state.compiled, &state.in_flight);
        for warning in &built.warnings {
            tracing::debug!(%warning, "plan input");
        }
        if built.pending.is_empty() && built.invalid.is_empty() {
            return;
        }
        let view = match self.views.view() {
            Ok(v) => v,
            Err(error) => {
                // Nothing can be judged; wait for the topology to change.
                tracing::warn!(%error, "cannot plan");
                let mut keys: Vec<PodKey> = built.pending.iter().map(|p| p.key.clone()).collect();
                keys.extend(arrivals);
                state.queue.finish_run(keys);
                let note = format!("cannot plan: {error}");
                self.events
                    .publish_or_log(
                        &self.lease_ref(),
                        EventSpec::warning(reasons::FAILED_PLANNING, "Plan", note),
                    )
                    .await;
                return;
            }
        };
        state.runs += 1;
        let run = state.runs;
        self.metrics.plan_run(due);
        let invalid = built.invalid.clone();
        let Some((plan, input)) = self.plan(&facts, &view, built).await else {
            let now = Instant::now();
            state
                .queue
                .retry(arrivals, now, now + state.backoff.fail(()));
            return;
        };

        // Ask the network before giving up on pods no node satisfies.
        // The pods this run writes to: placed, unplaced, or unreadable.
        let pods = state.compiled.pods_by_key(
            plan.assignments
                .iter()
                .map(|a| &a.pod)
                .chain(plan.unplaced.iter().map(|u| &u.pod))
                .chain(invalid.iter().map(|(k, _)| k)),
        );
        self.discover(&facts, &pods, &plan, &input).await;

        let settlement = self.write(&facts, &pods, &plan, &view, &invalid).await;
        state.settle(&settlement);
        let written = settlement.placed.len();
        let unplaced = settlement.unplaced.len();
        tracing::info!(run, trigger = due.as_str(), pods = plan.summary.pods, placed = written,
            unplaced, arrivals = arrivals.len(), took = ?started.elapsed(), "plan run");
        if !settlement.lost_lease {
            let note = run_note(run, due, &plan.summary, written, unplaced);
            self.events
                .publish_or_log(
                    &self.lease_ref(),
                    EventSpec::normal(reasons::PLAN_RUN, "Plan", note),
                )
                .await;
        }
    }

    /// The plan of `built`, with the external providers' costs asked first (the planner is
    /// synchronous), and the input it was made from; `None` if the planner failed.
    async fn plan<'v>(
        &self,
        facts: &Facts,
        view: &'v ClusterView,
        built: Built,
    ) -> Option<(Plan, PlanInput<'v>)> {
        let mut input = PlanInput {
            view,
            nodes: built.nodes,
            placed: built.placed,
            pending: built.pending,
            bindings: built.bindings,
        };
        let questions = external::questions(&input);
        let mut answers = if questions.is_empty() {
            external::Answers::default()
        } else {
            external::ask(&facts.providers, questions).await
        };
        let options = PlanOptions {
            seed: self.config.seed,
            max_iterations: self
                .config
                .max_iterations
                .unwrap_or(PlanOptions::default().max_iterations),
            ..PlanOptions::default()
        }
        .with_time_budget(self.config.time_budget);
        let mut work = || {
            planner::fill_external_costs(&mut input, &mut answers);
            planner::plan(&input, &options)
        };
        // Off the async workers where there are several; a panic is a failed run, not a
        // dead scheduler.
        let inline = self.config.plan_inline
            || Handle::current().runtime_flavor() != RuntimeFlavor::MultiThread;
        let planned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if inline {
                work()
            } else {
                tokio::task::block_in_place(work)
            }
        }));
        let plan = match planned {
            Ok(plan) => plan,
            Err(_) => {
                tracing::error!("the planner failed");
                return None;
            }
        };
        self.metrics
            .plan_duration
            .observe(plan.summary.elapsed.as_secs_f64());
        for warning in &plan.warnings {
            tracing::debug!(%warning, "planner");
        }
        Some((plan, input))
    }

    fn lease_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("coordination.k8s.io/v1".into()),
            kind: Some("Lease".into()),
            namespace: Some(self.config.lease_namespace.clone()),
            name: Some(self.config.lease_name.clone()),
            ..ObjectReference::default()
        }
    }
}
