//! The planning scheduler (design.md section 5): plans every pod that waits for it as one
//! group, then places them.
//!
//! - **Gate mode** (default): pods that offers target carry the scheduling gate
//!   `constraint.edgeplane.io/planner` (added at creation by the mutating webhook in
//!   [`crate::webhook`], or by their authors). The scheduler plans when no new gated pod
//!   arrived for the quiet period or the oldest waited the maximum wait ([`queue`]), then
//!   writes one patch per pod that sets required node affinity to the planned node and
//!   removes the gate ([`apply`]); kube-scheduler binds it there.
//! - **Bind mode**: a secondary scheduler for pods with `schedulerName: edgeplane`; same
//!   queue and planner, binding through `pods/binding`.
//!
//! The decisions are pure modules: [`queue`] (when), [`input`] (what the planner sees),
//! [`apply`] (what is written), [`unplaced`] (what brings unplaced pods back),
//! [`discover`] (asking the network controller), [`external`] (external providers'
//! costs). This module is the thin loop that feeds them from the caches and turns their
//! results into API calls, only while this replica holds the `edgeplane-scheduler` Lease.
//!
//! Starting it in-process (the simulator, tests):
//!
//! ```ignore
//! let ctx = Context::new(client, scheduler::COMPONENT).with_clock(clock).with_shutdown(token);
//! let task = scheduler::spawn(ctx, SchedulerConfig::default());
//! ```
//!
//! or, sharing caches with other components, `Scheduler::new(ctx, caches, views, config)
//! .run().await`. docs/scheduler.md describes the behaviour for operators.

pub mod apply;
pub mod discover;
pub mod external;
pub mod input;
pub mod queue;
pub mod release;
pub mod unplaced;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::TargetKind;
use edgeplane_api::names::FIELD_MANAGER;
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::planner::{self, BindingPlan, Plan, PlanInput, PlanOptions, PodKey};
use edgeplane_netctl::{AllocateRequest, NetworkController, ReleaseRequest};
use edgeplane_providers::{ClientOptions, Provider};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cache::Caches;
use crate::context::Context;
use crate::error::{Backoff, Error};
use crate::events::{EventRecorder, EventSpec, EventType, reasons};
use crate::metrics::{ErrorLabels, Metrics};
use crate::netctl::NetworkControllers;
use crate::view::ViewCache;
use discover::NetworkDiscovery;
use external::ExternalProviders;
use input::{Observed, is_pending};
use queue::{Due, Queue, Triggers};
use unplaced::Trigger;

/// The component's name: its Lease, its events' `reportingController`.
pub const COMPONENT: &str = "edgeplane-scheduler";
/// The Lease replicas elect a leader with.
pub const LEASE_NAME: &str = "edgeplane-scheduler";

/// How pods are placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Node affinity + gate removal; kube-scheduler binds.
    #[default]
    Gate,
    /// A secondary scheduler (`schedulerName: edgeplane`) that binds.
    Bind,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Gate => "gate",
            Mode::Bind => "bind",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "gate" => Some(Mode::Gate),
            "bind" => Some(Mode::Bind),
            _ => None,
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// The scheduler's own metrics (all prefixed `edgeplane_scheduler_`).
#[derive(Clone, Debug)]
pub struct SchedulerMetrics {
    /// `edgeplane_scheduler_plan_runs_total`.
    pub plan_runs: Counter,
    /// `edgeplane_scheduler_pods_planned_total`: pods whose placement was written.
    pub pods_planned: Counter,
    /// `edgeplane_scheduler_pods_unplaced_total`: pods a run could not place (counted per
    /// run).
    pub pods_unplaced: Counter,
    /// `edgeplane_scheduler_plan_duration_seconds`: time in the planner per run.
    pub plan_duration: Histogram,
    /// `edgeplane_scheduler_queue_depth`: pods waiting for the next plan.
    pub queue_depth: Gauge,
    /// `edgeplane_scheduler_unplaced_pods`: pods left unplaced, waiting for a change.
    pub unplaced_pods: Gauge,
    /// `edgeplane_scheduler_write_errors_total{controller,kind}`: failed pod writes.
    pub write_errors: Family<ErrorLabels, Counter>,
    /// `edgeplane_scheduler_discoveries_total{outcome}`: network controller questions.
    pub discoveries: Family<OutcomeLabels, Counter>,
    /// `edgeplane_scheduler_path_allocations_total{outcome}`: paths allocated for pods
    /// (`allocated`, `failed`, `released`: allocated but the pod was gone).
    pub path_allocations: Family<OutcomeLabels, Counter>,
    /// `edgeplane_scheduler_path_releases_total{outcome}`: paths given back when their pod
    /// went away (`released`, `failed`, `no-controller`, `abandoned`).
    pub path_releases: Family<OutcomeLabels, Counter>,
}

impl SchedulerMetrics {
    /// Creates the metrics and registers them in `metrics`.
    pub fn register(metrics: &Metrics) -> SchedulerMetrics {
        let m = SchedulerMetrics {
            plan_runs: Counter::default(),
            pods_planned: Counter::default(),
            pods_unplaced: Counter::default(),
            plan_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            queue_depth: Gauge::default(),
            unplaced_pods: Gauge::default(),
            write_errors: Family::default(),
            discoveries: Family::default(),
            path_allocations: Family::default(),
            path_releases: Family::default(),
        };
        metrics.register(
            "scheduler_plan_runs",
            "Plan runs of the planning scheduler",
            m.plan_runs.clone(),
        );
        metrics.register(
            "scheduler_pods_planned",
            "Pods whose planned placement was written",
            m.pods_planned.clone(),
        );
        metrics.register(
            "scheduler_pods_unplaced",
            "Pods a plan run could not place (counted at every run)",
            m.pods_unplaced.clone(),
        );
        metrics.register(
            "scheduler_plan_duration_seconds",
            "Time spent in the planner per plan run",
            m.plan_duration.clone(),
        );
        metrics.register(
            "scheduler_queue_depth",
            "Pods waiting for the next plan",
            m.queue_depth.clone(),
        );
        metrics.register(
            "scheduler_unplaced_pods",
            "Pods left unplaced, waiting for nodes, topology or policies to change",
            m.unplaced_pods.clone(),
        );
        metrics.register(
            "scheduler_write_errors",
            "Pod writes (placement, binding, annotation) that failed and are retried",
            m.write_errors.clone(),
        );
        metrics.register(
            "scheduler_discoveries",
            "Discover questions to the network controller, by outcome",
            m.discoveries.clone(),
        );
        metrics.register(
            "scheduler_path_allocations",
            "Network paths allocated for pods no node satisfied, by outcome",
            m.path_allocations.clone(),
        );
        metrics.register(
            "scheduler_path_releases",
            "Network paths released when their pod went away, by outcome",
            m.path_releases.clone(),
        );
        m
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
}

/// What became of one pod write.
enum Written {
    Done,
    /// The pod is gone: nothing to do.
    Gone,
    /// The pod changed since the cache saw it, or is already bound: plan again from the
    /// fresh state.
    Changed(Error),
    /// Throttled, timed out, server error: retry with backoff.
    Failed(Error),
    /// This replica lost the lease.
    NotLeader,
}

fn classify(result: Result<(), Error>) -> Written {
    match result {
        Ok(()) => Written::Done,
        Err(Error::NotLeader(_)) => Written::NotLeader,
        Err(e) => match e.status_code() {
            Some(404) => Written::Gone,
            Some(409 | 422) => Written::Changed(e),
            _ => Written::Failed(e),
        },
    }
}

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

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
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
        let external = ExternalProviders::new(config.provider_options.clone());
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
        }
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

    /// Runs until the context's shutdown is cancelled.
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
                    if let Some(trigger) = unplaced::pod_trigger(&change) {
                        self.trigger(&mut state, trigger, now);
                    }
                    self.on_pod(&mut state, &change, now);
                }
                Some(change) = nodes.next() => {
                    if let Some(t) = unplaced::node_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                Some(change) = topologies.next() => {
                    if let Some(t) = unplaced::topology_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                Some(change) = policies.next() => {
                    if let Some(t) = unplaced::policy_trigger(&change) {
                        self.trigger(&mut state, t, Instant::now());
                    }
                }
                Some(change) = offers.next() => {
                    if let Some(t) = unplaced::offer_trigger(&change) {
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
                let key = planner::convert::pod_key(new);
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
                let key = planner::convert::pod_key(old);
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
            .map(|p| planner::convert::pod_key(p))
            .collect();
        state.in_flight.retain(|k, _| pending.contains(k));
        state.queue.retain(|k| pending.contains(k));
        for key in pending {
            if !state.in_flight.contains_key(&key) {
                state.queue.arrive(key, now);
            }
        }
    }

    /// One plan run: plan every waiting pod together, then write the placements.
    async fn plan_run(&self, state: &mut RunState, due: Due) {
        let now = Instant::now();
        let arrivals = state.queue.start_run();
        let pods = self.caches.pods.list();
        let nodes = self.caches.nodes.list();
        let policies = self.caches.policies.list();
        let offers = self.caches.offers.list();
        let topology = self.caches.topology();
        let services = self.caches.services.list();
        let providers = self.external.resolve(&services);
        let external_rules = providers.keys().cloned().collect();
        let built = input::build(
            self.config.mode,
            Observed {
                nodes: &nodes,
                pods: &pods,
                policies: &policies,
                offers: &offers,
                topology: topology.as_deref(),
            },
            &state.in_flight,
            &external_rules,
        );
        for warning in &built.warnings {
            tracing::debug!(%warning, "plan input");
        }
        if built.pending.is_empty() && built.invalid.is_empty() {
            return;
        }
        let by_key: HashMap<PodKey, Arc<Pod>> = pods
            .iter()
            .map(|p| (planner::convert::pod_key(p), p.clone()))
            .collect();
        let view = match self.views.view() {
            Ok(v) => v,
            Err(error) => {
                // Nothing can be judged; wait for the topology to change.
                tracing::warn!(%error, "cannot plan");
                let mut keys: Vec<PodKey> = built.pending.iter().map(|p| p.key.clone()).collect();
                keys.extend(arrivals);
                state.queue.finish_run(keys);
                self.events
                    .publish_or_log(
                        &self.lease_ref(),
                        EventSpec {
                            type_: EventType::Warning,
                            reason: reasons::FAILED_PLANNING,
                            action: "Plan",
                            note: format!("cannot plan: {error}"),
                        },
                    )
                    .await;
                return;
            }
        };
        state.runs += 1;
        let run = state.runs;
        self.metrics.plan_runs.inc();

        // External providers' costs, asked before planning (the planner is synchronous).
        let input = PlanInput {
            view: &view,
            nodes: built.nodes,
            placed: built.placed,
            pending: built.pending,
            bindings: built.bindings,
        };
        let questions = external::questions(&input);
        let answers = if questions.is_empty() {
            external::Answers::default()
        } else {
            external::ask(&providers, questions).await
        };
        let parts = (input.nodes, input.placed, input.pending, input.bindings);
        let options = PlanOptions {
            seed: self.config.seed,
            max_iterations: self
                .config
                .max_iterations
                .unwrap_or(PlanOptions::default().max_iterations),
            ..PlanOptions::default()
        }
        .with_time_budget(self.config.time_budget);
        let planned = {
            let view = view.clone();
            let work = move || {
                let (nodes, placed, pending, bindings) = parts;
                let mut answers = answers;
                let mut input = PlanInput {
                    view: &view,
                    nodes,
                    placed,
                    pending,
                    bindings,
                };
                planner::fill_external_costs(&mut input, &mut answers);
                let plan = planner::plan(&input, &options);
                (
                    plan,
                    input.nodes,
                    input.placed,
                    input.pending,
                    input.bindings,
                )
            };
            if self.config.plan_inline {
                Ok(work())
            } else {
                tokio::task::spawn_blocking(work).await
            }
        };
        let (plan, plan_nodes, placed, pending, bindings) = match planned {
            Ok(p) => p,
            Err(error) => {
                tracing::error!(%error, "the planner failed");
                let keys = arrivals.into_iter();
                state.queue.retry(
                    keys,
                    Instant::now(),
                    Instant::now() + state.backoff.fail(()),
                );
                return;
            }
        };
        self.metrics
            .plan_duration
            .observe(plan.summary.elapsed.as_secs_f64());
        for warning in &plan.warnings {
            tracing::debug!(%warning, "planner");
        }

        // Ask the network before giving up on pods no node satisfies.
        if !plan.unplaced.is_empty()
            && let Some(net) = self.discovery.resolve(&services)
        {
            for u in &plan.unplaced {
                let (Some(pending_pod), Some(pod)) =
                    (pending.iter().find(|p| p.key == u.pod), by_key.get(&u.pod))
                else {
                    continue;
                };
                let Some(question) =
                    discover::request_for(pending_pod, &u.reason, &bindings, &plan_nodes, &placed)
                else {
                    continue;
                };
                if let Some(id) = discover::allocation_of(pod) {
                    // One path per pod: it is waiting for that one to be activated.
                    tracing::debug!(pod = %u.pod, allocation = id, "the pod holds a path already");
                    continue;
                }
                self.allocate_path(&net, pod, question).await;
            }
        }

        // Write the placements.
        let placed_count = plan.assignments.len();
        let hostnames = input::hostnames(&nodes);
        let node_hostname: HashMap<&str, &str> = hostnames
            .iter()
            .map(|(h, n)| (n.as_str(), h.as_str()))
            .collect();
        let jobs: Vec<(planner::Assignment, Arc<Pod>, Option<String>)> = plan
            .assignments
            .iter()
            .filter_map(|a| {
                let pod = by_key.get(&a.pod)?.clone();
                let hostname = node_hostname.get(a.node.as_str()).map(|h| h.to_string());
                Some((a.clone(), pod, hostname))
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(jobs)
            .map(|(a, pod, hostname)| async move {
                let result = self.place(&pod, &a.node, hostname.as_deref()).await;
                (a, pod, result)
            })
            .buffer_unordered(self.config.write_concurrency.max(1))
            .collect()
            .await;
        let by_pod = bindings_by_pod(&plan);
        let mut retry_changed = Vec::new();
        let mut retry_failed = Vec::new();
        let mut unplaced: Vec<(PodKey, String)> = Vec::new();
        let mut lost_lease = false;
        let mut written = 0usize;
        for (a, pod, result) in results {
            match result {
                Placement::Written(w) => match w {
                    Written::Done => {
                        written += 1;
                        state.in_flight.insert(a.pod.clone(), a.node.clone());
                        self.metrics.pods_planned.inc();
                        let note = planned_note_from(
                            &a.pod,
                            &a.node,
                            &view,
                            placed_count,
                            by_pod
                                .get(&(a.pod.namespace.as_str(), a.pod.name.as_str()))
                                .into_iter()
                                .flatten()
                                .copied(),
                        );
                        self.events
                            .publish_or_log(
                                &pod_ref(&pod),
                                EventSpec {
                                    type_: EventType::Normal,
                                    reason: reasons::PLANNED,
                                    action: "Plan",
                                    note,
                                },
                            )
                            .await;
                    }
                    Written::Gone => {}
                    Written::Changed(error) => {
                        self.count_error(&error);
                        tracing::debug!(pod = %a.pod, %error, "pod changed while planned; planning it again");
                        retry_changed.push(a.pod.clone());
                    }
                    Written::Failed(error) => {
                        self.count_error(&error);
                        tracing::warn!(pod = %a.pod, %error, "could not write the placement; retrying with backoff");
                        retry_failed.push(a.pod.clone());
                    }
                    Written::NotLeader => {
                        lost_lease = true;
                        retry_changed.push(a.pod.clone());
                    }
                },
                Placement::Unpinnable(reason) => {
                    self.events
                        .publish_or_log(
                            &pod_ref(&pod),
                            EventSpec {
                                type_: EventType::Warning,
                                reason: reasons::FAILED_PLANNING,
                                action: "Plan",
                                note: format!(
                                    "planned onto {} but cannot be pinned there: {reason}",
                                    a.node
                                ),
                            },
                        )
                        .await;
                    unplaced.push((
                        a.pod.clone(),
                        format!("cannot be pinned to {}: {reason}", a.node),
                    ));
                }
            }
        }
        unplaced.extend(
            plan.unplaced
                .iter()
                .map(|u| (u.pod.clone(), u.reason.clone())),
        );
        unplaced.extend(
            built
                .invalid
                .iter()
                .map(|(k, e)| (k.clone(), format!("its spec cannot be planned: {e}"))),
        );
        self.metrics.pods_unplaced.inc_by(unplaced.len() as u64);
        for (key, reason) in &unplaced {
            let Some(pod) = by_key.get(key) else {
                continue;
            };
            if lost_lease || !unplaced::needs_update(pod, reason) {
                continue;
            }
            match classify(self.annotate(pod, reason).await) {
                Written::Done => {
                    self.events
                        .publish_or_log(
                            &pod_ref(pod),
                            EventSpec {
                                type_: EventType::Warning,
                                reason: reasons::UNPLACEABLE,
                                action: "Plan",
                                note: reason.clone(),
                            },
                        )
                        .await;
                }
                Written::Gone => {}
                Written::NotLeader => lost_lease = true,
                Written::Changed(error) => {
                    self.count_error(&error);
                    retry_changed.push(key.clone());
                }
                Written::Failed(error) => {
                    self.count_error(&error);
                    tracing::warn!(pod = %key, %error, "could not record why the pod is unplaced; retrying with backoff");
                    retry_failed.push(key.clone());
                }
            }
        }
        state
            .queue
            .finish_run(unplaced.iter().map(|(k, _)| k.clone()));
        let after = Instant::now();
        if !retry_failed.is_empty() {
            let wait = state.backoff.fail(());
            state.queue.retry(
                retry_failed.into_iter().chain(retry_changed),
                after,
                after + wait,
            );
        } else {
            state.backoff.succeed(&());
            state.queue.release_hold();
            if !retry_changed.is_empty() {
                // Give the cache a moment to catch up with the change.
                let wait = Duration::from_millis(200);
                state.queue.retry(retry_changed, after, after + wait);
            }
        }
        let s = &plan.summary;
        let note = format!(
            "plan run {run} ({}): {} pods, {} placed, {} unplaced; rules {} Compliant, {} Limit, {} Violation, {} Error, {} Pending; {}{}, {} ms",
            due.as_str(),
            s.pods,
            written,
            unplaced.len(),
            s.rules_compliant,
            s.rules_limit,
            s.rules_violation,
            s.rules_error,
            s.rules_pending,
            s.method.map(|m| m.as_str()).unwrap_or("none"),
            if s.optimal { " (optimal)" } else { "" },
            s.elapsed.as_millis(),
        );
        tracing::info!(run, trigger = due.as_str(), pods = s.pods, placed = written,
            unplaced = unplaced.len(), arrivals = arrivals.len(), took = ?now.elapsed(), "plan run");
        if !lost_lease {
            self.events
                .publish_or_log(
                    &self.lease_ref(),
                    EventSpec {
                        type_: EventType::Normal,
                        reason: reasons::PLAN_RUN,
                        action: "Plan",
                        note,
                    },
                )
                .await;
        }
    }

    fn count_error(&self, error: &Error) {
        self.metrics
            .write_errors
            .get_or_create(&ErrorLabels {
                controller: "scheduler".into(),
                kind: error.kind().into(),
            })
            .inc();
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

    fn pods_api(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(
            self.ctx.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    /// Writes one pod's placement (gate: the affinity + ungate patch; bind: pods/binding).
    async fn place(&self, pod: &Pod, node: &str, hostname: Option<&str>) -> Placement {
        let key = planner::convert::pod_key(pod);
        let api = self.pods_api(pod);
        let name = pod.name_any();
        let result = match self.config.mode {
            Mode::Gate => {
                let patch = match apply::gate_patch(pod, node, hostname) {
                    Ok(p) => p,
                    Err(apply::PinError::NotGated) => return Placement::Written(Written::Gone),
                    Err(e) => return Placement::Unpinnable(e.to_string()),
                };
                match self.ctx.ensure_leader(|| format!("placement of pod {key}")) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        self.ctx
                            .metrics
                            .count_write(&self.ctx.component, "patch", "Pod");
                        api.patch(&name, &patch_params(), &Patch::Json::<()>(patch))
                            .await
                            .map(|_| ())
                            .map_err(|e| Error::kube(format!("placing pod {key} on {node}"), e))
                    }
                }
            }
            Mode::Bind => self.bind(&api, pod, &key, node).await,
        };
        Placement::Written(classify(result))
    }

    async fn bind(&self, api: &Api<Pod>, pod: &Pod, key: &PodKey, node: &str) -> Result<(), Error> {
        let name = pod.name_any();
        if apply::has_unplaced_annotation(pod) {
            self.ctx
                .ensure_leader(|| format!("annotation of pod {key}"))?;
            self.ctx
                .metrics
                .count_write(&self.ctx.component, "patch", "Pod");
            api.patch(
                &name,
                &patch_params(),
                &Patch::Merge(apply::clear_unplaced_patch()),
            )
            .await
            .map_err(|e| Error::kube(format!("clearing the unplaced reason of pod {key}"), e))?;
        }
        self.ctx.ensure_leader(|| format!("binding of pod {key}"))?;
        self.ctx
            .metrics
            .count_write(&self.ctx.component, "create", "Binding");
        api.create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            },
            &apply::binding(pod, node),
        )
        .await
        .map(|_| ())
        .map_err(|e| Error::kube(format!("binding pod {key} to {node}"), e))
    }

    /// Discover, Allocate the best offer, and record the allocation on the pod. The pod stays
    /// unplaced: the activation of the path changes the topology, which replans it.
    async fn allocate_path(
        &self,
        net: &crate::netctl::Resolved,
        pod: &Pod,
        question: discover::Question,
    ) {
        let key = planner::convert::pod_key(pod);
        let count = |family: &Family<OutcomeLabels, Counter>, outcome: &str| {
            family
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .inc();
        };
        if self
            .ctx
            .ensure_leader(|| format!("path for pod {key}"))
            .is_err()
        {
            return;
        }
        let offers = match net.controller.discover(&question.request).await {
            Ok(offers) => offers,
            Err(error) => {
                count(&self.metrics.discoveries, "error");
                tracing::warn!(pod = %key, binding = %question.binding, at = %net.location, %error, "network discovery failed");
                return;
            }
        };
        let Some(offer) = discover::choose(&offers, self.ctx.clock.now()) else {
            count(&self.metrics.discoveries, "none");
            tracing::info!(pod = %key, binding = %question.binding, "the network controller offers no path");
            return;
        };
        count(&self.metrics.discoveries, "offered");
        let request = AllocateRequest {
            id: offer.id.clone(),
            binding: question.binding.clone(),
            rules: question.request.rules.clone(),
        };
        let allocated = match net.controller.allocate(&request).await {
            Ok(a) => a,
            Err(error) => {
                count(&self.metrics.path_allocations, "failed");
                tracing::warn!(pod = %key, offer = %offer.id, %error, "allocating the offered path failed");
                return;
            }
        };
        let api = self.pods_api(pod);
        let recorded = match self
            .ctx
            .ensure_leader(|| format!("allocation of pod {key}"))
        {
            Err(e) => Err(e),
            Ok(()) => {
                self.ctx
                    .metrics
                    .count_write(&self.ctx.component, "patch", "Pod");
                api.patch(
                    &pod.name_any(),
                    &patch_params(),
                    &Patch::Strategic(discover::allocation_patch(&allocated.id)),
                )
                .await
                .map(|_| ())
                .map_err(|e| Error::kube(format!("recording the path allocation of pod {key}"), e))
            }
        };
        if let Err(error) = recorded {
            // Nobody would release it: give it back now.
            count(&self.metrics.path_allocations, "released");
            tracing::warn!(pod = %key, allocation = %allocated.id, %error, "cannot record the allocation on the pod; releasing it");
            let release = ReleaseRequest {
                id: allocated.id.clone(),
                binding: Some(question.binding.clone()),
                rules: Vec::new(),
            };
            if let Err(error) = net.controller.release(&release).await {
                tracing::warn!(allocation = %allocated.id, %error, "releasing the unrecorded allocation failed; the network controller's clean-up will free it");
            }
            return;
        }
        count(&self.metrics.path_allocations, "allocated");
        self.events
            .publish_or_log(
                &pod_ref(pod),
                EventSpec {
                    type_: EventType::Normal,
                    reason: reasons::PATH_ALLOCATED,
                    action: "Allocate",
                    note: format!(
                        "no node satisfied binding {}: allocated path {} (allocation {}) from the network controller ({}); the pod is planned again once the path is active",
                        question.binding,
                        discover::describe_offer(offer),
                        allocated.id,
                        net.location
                    ),
                },
            )
            .await;
    }

    async fn annotate(&self, pod: &Pod, reason: &str) -> Result<(), Error> {
        let key = planner::convert::pod_key(pod);
        self.ctx
            .ensure_leader(|| format!("annotation of pod {key}"))?;
        self.ctx
            .metrics
            .count_write(&self.ctx.component, "patch", "Pod");
        self.pods_api(pod)
            .patch(
                &pod.name_any(),
                &patch_params(),
                &Patch::Merge(apply::unplaced_patch(reason)),
            )
            .await
            .map(|_| ())
            .map_err(|e| Error::kube(format!("annotating pod {key}"), e))
    }
}

/// The outcome of placing one pod.
enum Placement {
    Written(Written),
    /// The plan's node cannot be written into the pod's affinity.
    Unpinnable(String),
}

/// `planned onto edge-2-a (site edge-2) with 5 other pods: ar-latency-1b5b441ca8 latency
/// 1ms (Compliant), jitter 300us (Compliant); ...`
pub fn planned_note(
    pod: &PodKey,
    node: &str,
    view: &ClusterView,
    placed: usize,
    plan: &Plan,
) -> String {
    planned_note_from(pod, node, view, placed, plan.bindings.iter())
}

/// The bindings of a plan by the pods they name: the notes of a run with thousands of
/// pods and bindings would otherwise scan every binding for every pod.
pub fn bindings_by_pod(plan: &Plan) -> HashMap<(&str, &str), Vec<&BindingPlan>> {
    let mut by_pod: HashMap<(&str, &str), Vec<&BindingPlan>> = HashMap::new();
    for binding in &plan.bindings {
        for target in binding.targets.values() {
            if target.kind == TargetKind::Pod {
                let namespace = target.namespace.as_deref().unwrap_or("default");
                let list = by_pod.entry((namespace, target.name.as_str())).or_default();
                // A binding naming the pod in two roles is listed once.
                if !list.iter().any(|b| std::ptr::eq(*b, binding)) {
                    list.push(binding);
                }
            }
        }
    }
    by_pod
}

/// [`planned_note`] from the bindings that may name the pod.
pub fn planned_note_from<'a>(
    pod: &PodKey,
    node: &str,
    view: &ClusterView,
    placed: usize,
    bindings: impl Iterator<Item = &'a BindingPlan>,
) -> String {
    let graph = view.graph();
    let site = graph
        .node_id(node)
        .map(|id| graph.site_name(graph.site_of(id)).to_string());
    let mut note = format!("planned onto {node}");
    if let Some(site) = site
        && site != node
    {
        note.push_str(&format!(" (site {site})"));
    }
    let others = placed.saturating_sub(1);
    note.push_str(&match others {
        0 => " alone".to_string(),
        1 => " with 1 other pod".to_string(),
        n => format!(" with {n} other pods"),
    });
    let mine: Vec<String> = bindings
        .filter(|b| {
            b.targets.values().any(|t| {
                t.kind == TargetKind::Pod
                    && t.name == pod.name
                    && t.namespace.as_deref().unwrap_or("default") == pod.namespace
            })
        })
        .map(|b| {
            let rules: Vec<String> = b
                .rules
                .iter()
                .map(|r| match &r.value {
                    Some(v) => format!("{} {v} ({})", r.rule, r.compliance.as_str()),
                    None => format!("{} ({})", r.rule, r.compliance.as_str()),
                })
                .collect();
            format!("{} {}", b.name, rules.join(", "))
        })
        .collect();
    if mine.is_empty() {
        note.push_str("; no binding constrains it");
    } else {
        note.push_str(": ");
        note.push_str(&mine.join("; "));
    }
    note
}
