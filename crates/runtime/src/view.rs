//! The [`ClusterView`] of the cluster as the caches see it, rebuilt only when it must be.
//!
//! The network graph (the expensive part: all-pairs paths between sites) is rebuilt when a
//! node's labels or allocatable change, a node comes or goes, or the topology named
//! `default` changes (spec or measurements), and every 30 seconds while the topology has
//! measurements (they expire). Pod placement is re-read when a pod is created, deleted or
//! bound to a node. Both happen lazily, at the next [`ViewCache::view`] after the change,
//! so a burst of changes costs one rebuild.
//!
//! Subscribers get a [`ViewChange`] after the view is marked stale, so a controller that
//! reacts to it always reads the new state: the binding controller re-evaluates all
//! bindings on [`ViewChange::Network`] and the bindings of one pod on
//! [`ViewChange::PodMoved`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, ConstraintPolicyRule,
    NetworkTopology, TargetRef,
};
use edgeplane_core::clock::Clock;
use edgeplane_core::evaluate::{BindingRules, ClusterView, bandwidth_demands, evaluate_rule};
use edgeplane_core::network::Reservations;
use edgeplane_core::snapshot::DEFAULT_TOPOLOGY;
use edgeplane_core::status::RuleOutcome;
use edgeplane_providers::{BuiltinProvider, CostRequest, NodeCost, Provider, ProviderError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, Change};
use crate::metrics::Metrics;

/// How often the graph is rebuilt while the topology carries measurements, which stop
/// counting once older than `measurementMaxAge`.
pub const MEASUREMENT_REFRESH: Duration = Duration::from_secs(30);

/// What changed in the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewChange {
    /// Nodes or the topology changed: every evaluation may differ.
    Network,
    /// A pod was created, deleted, or bound to a node.
    PodMoved { namespace: String, name: String },
    /// Changes were missed or relisted: reconsider everything.
    Resynced,
}

/// The topology does not build into a graph; built-in network rules cannot be judged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("network topology {DEFAULT_TOPOLOGY} is invalid: {0}")]
pub struct ViewError(pub String);

#[derive(Default)]
struct State {
    graph_dirty: bool,
    pods_dirty: bool,
    built_at: Option<Instant>,
    has_measurements: bool,
    /// The graph and node facts, no pods.
    base: Option<Result<Arc<ClusterView>, ViewError>>,
    /// `base` with every pod placed.
    current: Option<Arc<ClusterView>>,
    /// Counts the replacements of `current`.
    version: u64,
}

struct Inner {
    nodes: Cache<Node>,
    pods: Cache<Pod>,
    topologies: Cache<NetworkTopology>,
    clock: Arc<dyn Clock>,
    /// `edgeplane_cluster_view_builds_total`.
    view_builds: prometheus_client::metrics::counter::Counter,
    state: Mutex<State>,
    tx: broadcast::Sender<ViewChange>,
    /// Where the bandwidth reservations come from, once [`ViewCache::with_reservations`]
    /// named it.
    reservations: std::sync::OnceLock<ReservationSource>,
    /// Told when what the reservations read changed (not the pods: `PodMoved` says that).
    reserved_tx: broadcast::Sender<()>,
}

/// The caches the bandwidth reservations are read from: bindings, their offers' policies.
#[derive(Clone)]
struct ReservationSource {
    bindings: Cache<ConstraintPolicyBinding>,
    offers: Cache<ConstraintPolicyOffer>,
    policies: Cache<ConstraintPolicy>,
}

/// A lazily rebuilt [`ClusterView`]. Cheap to clone.
#[derive(Clone)]
pub struct ViewCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ViewCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewCache").finish_non_exhaustive()
    }
}

impl ViewCache {
    /// Follows the caches' changes until `shutdown` is cancelled.
    pub fn start(
        nodes: &Cache<Node>,
        pods: &Cache<Pod>,
        topologies: &Cache<NetworkTopology>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> ViewCache {
        let (tx, _) = broadcast::channel(crate::cache::CHANNEL_CAPACITY);
        let inner = Arc::new(Inner {
            nodes: nodes.clone(),
            pods: pods.clone(),
            topologies: topologies.clone(),
            clock,
            view_builds: metrics.view_builds(),
            state: Mutex::new(State {
                graph_dirty: true,
                pods_dirty: true,
                ..State::default()
            }),
            tx,
            reservations: std::sync::OnceLock::new(),
            reserved_tx: broadcast::channel(crate::cache::CHANNEL_CAPACITY).0,
        });
        // Subscribe now, so nothing between here and the task's start is missed.
        let node_changes = nodes.changes();
        let pod_changes = pods.changes();
        let topology_changes = topologies.changes();
        let task_inner = inner.clone();
        tokio::spawn(async move {
            let mut node_changes = std::pin::pin!(node_changes);
            let mut pod_changes = std::pin::pin!(pod_changes);
            let mut topology_changes = std::pin::pin!(topology_changes);
            loop {
                let notice = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    Some(c) = node_changes.next() => node_notice(&c),
                    Some(c) = topology_changes.next() => topology_notice(&c),
                    Some(c) = pod_changes.next() => pod_notice(&c),
                    else => break,
                };
                if let Some(notice) = notice {
                    task_inner.mark(&notice);
                    let _ = task_inner.tx.send(notice);
                }
            }
        });
        ViewCache { inner }
    }

    /// Makes every view carry what the bandwidth rules of placed bindings reserve
    /// (`network::Reservations`, docs/network.md), read from these caches: the one shared
    /// reservation view the built-in bandwidth provider evaluates against. A binding
    /// created or deleted, or a change of an offer's or a policy's spec, marks the view
    /// stale without a notice: evaluations read the new reservations from their next look
    /// (a pod bound or deleted is a `PodMoved` notice already). Without it (the scheduler's
    /// and the descheduler's caches) views reserve nothing.
    pub fn with_reservations(
        self,
        bindings: &Cache<ConstraintPolicyBinding>,
        offers: &Cache<ConstraintPolicyOffer>,
        policies: &Cache<ConstraintPolicy>,
        shutdown: CancellationToken,
    ) -> ViewCache {
        let source = ReservationSource {
            bindings: bindings.clone(),
            offers: offers.clone(),
            policies: policies.clone(),
        };
        if self.inner.reservations.set(source.clone()).is_err() {
            return self;
        }
        let binding_changes = bindings.changes();
        let offer_changes = offers.changes();
        let policy_changes = policies.changes();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut binding_changes = std::pin::pin!(binding_changes);
            let mut offer_changes = std::pin::pin!(offer_changes);
            let mut policy_changes = std::pin::pin!(policy_changes);
            loop {
                // Only what alters a reservation rebuilds the view: on clusters without
                // bandwidth rules, binding churn costs nothing here.
                let stale = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    Some(c) = binding_changes.next() => spec_changed(&c, |b| &b.spec)
                        && touches(&c, |b| source.binding_reserves(b)),
                    Some(c) = offer_changes.next() => spec_changed(&c, |o| &o.spec)
                        && touches(&c, |o| source.offer_reserves(o)),
                    Some(c) = policy_changes.next() => spec_changed(&c, |p| &p.spec)
                        && touches(&c, reserves_bandwidth),
                    else => break,
                };
                if stale {
                    inner.lock().pods_dirty = true;
                    let _ = inner.reserved_tx.send(());
                }
            }
        });
        self
    }

    /// Notifications that a binding, offer or policy changed what the reservations read
    /// (sent after the view is marked stale; pods moving are `ViewChange::PodMoved`).
    pub fn reservation_changes(&self) -> broadcast::Receiver<()> {
        self.inner.reserved_tx.subscribe()
    }

    /// Whether views carry bandwidth reservations ([`ViewCache::with_reservations`]).
    pub fn reserves(&self) -> bool {
        self.inner.reservations.get().is_some()
    }

    /// Whether a pod moving can change a reservation now: the views keep reservations
    /// and some policy has a bandwidth rule. Cheap (policies are few): asked per pod move.
    pub fn reserving_now(&self) -> bool {
        self.inner
            .reservations
            .get()
            .is_some_and(ReservationSource::any_policy_reserves)
    }

    /// Whether the reservations are complete: the caches they are read from (and the
    /// view's) have listed once. Always true without reservations.
    pub fn reservations_ready(&self) -> bool {
        self.is_ready() && self.inner.reservations.get().is_none_or(|s| s.is_ready())
    }

    /// The current view, rebuilt first if something relevant changed.
    pub fn view(&self) -> Result<Arc<ClusterView>, ViewError> {
        self.inner.view()
    }

    /// The version of the current view (rebuilt first if something relevant changed):
    /// it changes whenever the view does, so two evaluations that read the same version
    /// read the same view.
    pub fn version(&self) -> u64 {
        // A view that does not build has no new version either: its error stands.
        let _ = self.inner.view();
        self.inner.lock().version
    }

    /// Notifications of changes, sent after the view is marked stale.
    pub fn subscribe(&self) -> broadcast::Receiver<ViewChange> {
        self.inner.tx.subscribe()
    }

    /// Whether the caches the view reads have listed once.
    pub fn is_ready(&self) -> bool {
        self.inner.nodes.is_ready()
            && self.inner.pods.is_ready()
            && self.inner.topologies.is_ready()
    }

    /// A provider of the built-in rules answering from this cache's current view.
    pub fn builtin_provider(&self) -> Arc<dyn Provider> {
        Arc::new(LiveBuiltinProvider {
            views: self.clone(),
        })
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark(&self, notice: &ViewChange) {
        let mut state = self.lock();
        match notice {
            ViewChange::Network | ViewChange::Resynced => {
                state.graph_dirty = true;
                state.pods_dirty = true;
            }
            ViewChange::PodMoved { .. } => state.pods_dirty = true,
        }
    }

    fn view(&self) -> Result<Arc<ClusterView>, ViewError> {
        let mut state = self.lock();
        let stale_measurements = state.has_measurements
            && state
                .built_at
                .is_none_or(|t| t.elapsed() >= MEASUREMENT_REFRESH);
        if state.graph_dirty || stale_measurements || state.base.is_none() {
            let topology = self.topologies.get(None, DEFAULT_TOPOLOGY);
            // By name: the cache lists in no particular order, and the planner breaks ties
            // by the view's node order, so the same cluster always gives the same view.
            let mut nodes: Vec<Node> = self.nodes.list().iter().map(|n| (**n).clone()).collect();
            nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            let built = ClusterView::build(topology.as_deref(), &nodes, &[], self.clock.now());
            self.view_builds.inc();
            state.base = Some(built.map(Arc::new).map_err(|e| ViewError(e.to_string())));
            state.has_measurements = topology
                .as_ref()
                .and_then(|t| t.status.as_ref())
                .is_some_and(|s| !s.measured.is_empty());
            state.built_at = Some(Instant::now());
            state.graph_dirty = false;
            state.pods_dirty = true;
        }
        let base = match &state.base {
            Some(Ok(base)) => base.clone(),
            Some(Err(e)) => return Err(e.clone()),
            None => return Err(ViewError("not built".into())),
        };
        if state.pods_dirty || state.current.is_none() {
            let mut view = (*base).clone();
            for pod in self.pods.list() {
                let namespace = pod.namespace().unwrap_or_else(|| "default".into());
                let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
                view.place(&namespace, &pod.name_any(), node);
            }
            // Reservations read before the caches have listed are partial: build them
            // again at the next look until they have.
            let mut partial = false;
            if let Some(source) = self.reservations.get()
                && source.any_policy_reserves()
            {
                view.set_reservations(Arc::new(source.reservations(&view)));
                partial = !source.is_ready();
            }
            state.current = Some(Arc::new(view));
            state.version += 1;
            state.pods_dirty = partial;
        }
        state
            .current
            .clone()
            .ok_or_else(|| ViewError("not built".into()))
    }
}

/// Whether a policy has a bandwidth rule: only those reserve.
fn reserves_bandwidth(policy: &ConstraintPolicy) -> bool {
    policy
        .spec
        .rules
        .iter()
        .any(|r| r.name == edgeplane_core::rules::builtin::BANDWIDTH)
}

/// Whether one of the offer's policies (looked up in `policies`) has a bandwidth rule: the
/// offer's bindings reserve on the links they cross.
pub(crate) fn offer_reserves(
    policies: &Cache<ConstraintPolicy>,
    offer: &ConstraintPolicyOffer,
) -> bool {
    let namespace = offer.namespace();
    offer.spec.policies.iter().any(|name| {
        policies
            .get(namespace.as_deref(), name)
            .is_some_and(|p| reserves_bandwidth(&p))
    })
}

/// Whether a change concerns an object for which `reserves` holds, before or after it
/// (a resync may concern anything).
fn touches<K>(change: &Change<K>, reserves: impl Fn(&K) -> bool) -> bool {
    match change {
        Change::Applied { old, new } => {
            reserves(new.as_ref()) || old.as_ref().is_some_and(|o| reserves(o.as_ref()))
        }
        Change::Deleted(gone) => reserves(gone.as_ref()),
        Change::Resynced => true,
    }
}

impl ReservationSource {
    /// Whether any policy has a bandwidth rule (policies are few; bindings many).
    fn any_policy_reserves(&self) -> bool {
        self.policies.list().iter().any(|p| reserves_bandwidth(p))
    }

    /// Whether one of the offer's policies has a bandwidth rule.
    fn offer_reserves(&self, offer: &ConstraintPolicyOffer) -> bool {
        offer_reserves(&self.policies, offer)
    }

    /// Whether the binding's offer has a policy with a bandwidth rule. A binding whose
    /// offer is gone reserves nothing (the offer's deletion rebuilt the view).
    fn binding_reserves(&self, binding: &ConstraintPolicyBinding) -> bool {
        self.offers
            .get(binding.namespace().as_deref(), &binding.spec.offer)
            .is_some_and(|o| self.offer_reserves(&o))
    }

    fn is_ready(&self) -> bool {
        self.bindings.is_ready() && self.offers.is_ready() && self.policies.is_ready()
    }
    /// What the bandwidth rules of the bindings reserve on the view's links.
    fn reservations(&self, view: &ClusterView) -> Reservations {
        let bindings = self.bindings.list();
        let mut read = Vec::new();
        for binding in &bindings {
            let Some(namespace) = binding.namespace() else {
                continue;
            };
            let Some(offer) = self.offers.get(Some(&namespace), &binding.spec.offer) else {
                continue;
            };
            let policies: Vec<Arc<ConstraintPolicy>> = offer
                .spec
                .policies
                .iter()
                .filter_map(|p| self.policies.get(Some(&namespace), p))
                .collect();
            read.push((
                format!("{namespace}/{}", binding.name_any()),
                binding.clone(),
                policies,
            ));
        }
        let demands = bandwidth_demands(
            view,
            read.iter().map(|(owner, binding, policies)| BindingRules {
                owner: owner.clone(),
                targets: &binding.spec.targets,
                rules: policies.iter().flat_map(|p| p.spec.rules.iter()).collect(),
            }),
        );
        Reservations::compute(view.graph(), &demands)
    }
}

/// Whether a change of an object alters what `spec` reads (creation and deletion do).
fn spec_changed<K, S: PartialEq>(change: &Change<K>, spec: impl Fn(&K) -> &S) -> bool {
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } => spec(old.as_ref()) != spec(new.as_ref()),
        Change::Applied { old: None, .. } | Change::Deleted(_) | Change::Resynced => true,
    }
}

fn node_notice(change: &Change<Node>) -> Option<ViewChange> {
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } => {
            let facts = |n: &Node| {
                (
                    n.metadata.labels.clone(),
                    n.status.as_ref().and_then(|s| s.allocatable.clone()),
                )
            };
            (facts(old) != facts(new)).then_some(ViewChange::Network)
        }
        Change::Applied { old: None, .. } | Change::Deleted(_) => Some(ViewChange::Network),
        Change::Resynced => Some(ViewChange::Resynced),
    }
}

/// What a change of the topologies means for the view: `Network` when the default
/// topology's spec, measurements or activated paths changed (what the graph reads).
pub fn topology_notice(change: &Change<NetworkTopology>) -> Option<ViewChange> {
    let ours = |t: &NetworkTopology| t.name_any() == DEFAULT_TOPOLOGY;
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } if ours(new) => {
            // What the graph reads: the spec, the measurements and the paths a network
            // controller activated (a repair must reach the binding controller at once).
            let network = |t: &NetworkTopology| {
                t.status
                    .as_ref()
                    .map(|s| (s.measured.clone(), s.activated_paths.clone()))
            };
            (old.spec != new.spec || network(old) != network(new)).then_some(ViewChange::Network)
        }
        Change::Applied { old: None, new } if ours(new) => Some(ViewChange::Network),
        Change::Deleted(t) if ours(t) => Some(ViewChange::Network),
        Change::Resynced => Some(ViewChange::Resynced),
        _ => None,
    }
}

fn pod_notice(change: &Change<Pod>) -> Option<ViewChange> {
    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
    let moved = |p: &Pod| ViewChange::PodMoved {
        namespace: p.namespace().unwrap_or_else(|| "default".into()),
        name: p.name_any(),
    };
    match change {
        Change::Applied {
            old: Some(old),
            new,
        } => (node(old) != node(new)).then(|| moved(new)),
        Change::Applied { old: None, new } => Some(moved(new)),
        Change::Deleted(p) => Some(moved(p)),
        Change::Resynced => Some(ViewChange::Resynced),
    }
}

/// The built-in providers over a [`ViewCache`]: each call reads the current view.
pub struct LiveBuiltinProvider {
    views: ViewCache,
}

impl LiveBuiltinProvider {
    pub fn new(views: ViewCache) -> LiveBuiltinProvider {
        LiveBuiltinProvider { views }
    }
}

#[tonic::async_trait]
impl Provider for LiveBuiltinProvider {
    async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        match self.views.view() {
            Ok(view) => evaluate_rule(&view, targets, rule),
            Err(e) => RuleOutcome {
                rule: rule.name.clone(),
                compliance: edgeplane_api::Compliance::Error,
                value: None,
                reason: Some(e.to_string()),
            },
        }
    }

    /// On a blocking thread, interrupted when the caller of `provider serve` is gone.
    async fn evaluate_interruptible(
        &self,
        targets: BTreeMap<String, TargetRef>,
        rule: ConstraintPolicyRule,
        interrupt: edgeplane_providers::provider::Interrupt,
    ) -> RuleOutcome {
        match self.views.view() {
            Ok(view) => BuiltinProvider::evaluate_off_thread(view, targets, rule, interrupt).await,
            Err(_) => self.evaluate(&targets, &rule).await,
        }
    }

    async fn endpoint_cost(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        let view = self
            .views
            .view()
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        BuiltinProvider::new(view).costs(request)
    }

    async fn endpoint_cost_interruptible(
        &self,
        request: CostRequest,
        interrupt: edgeplane_providers::provider::Interrupt,
    ) -> Result<Vec<NodeCost>, ProviderError> {
        let view = self
            .views
            .view()
            .map_err(|e| ProviderError::Failed(e.to_string()))?;
        BuiltinProvider::costs_off_thread(view, request, interrupt).await
    }
}
