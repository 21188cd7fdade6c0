//! The reference network controller: a catalogue of alternate paths and slices
//! (`NetworkPathCatalogue`) with finite capacity, activated by writing the topology's
//! `status.activatedPaths`, so that the binding controller sees the repair in the graph.
//!
//! The decisions are pure (`edgeplane_core::mitigation`); this module reads the cluster,
//! calls them, and writes their answers:
//!
//! - **State lives in the API.** Allocations are the catalogue's `status.allocations`;
//!   capacity is counted from them, so a restarted controller (or another replica) picks
//!   up where the last one stopped. Offers reserve nothing, and their ids name their entry
//!   and expiry, so Allocate needs no memory of them either.
//! - **Writes** are server-side apply on the status subresource with the field manager
//!   `edgeplane-netctl`: the catalogue's status (with its resourceVersion as a
//!   precondition, so two writers never both take the last unit of capacity: the loser
//!   re-reads and decides again), then the topology's `status.activatedPaths` (derived from
//!   the allocations, written whole). The topology's other status fields belong to other
//!   managers and are left alone.
//! - **One writer at a time** in a process (a mutex). Several replicas stay correct
//!   (the resourceVersion precondition), but the controller is meant to run as a single
//!   replica; running only while holding a Lease is the seam for leader election
//!   ([`ReferenceController::reconcile`] and the four operations are what a leader runs).
//! - **Reconciling** (at start and every `resync`): rewrites the catalogue's status
//!   (counts, the `Valid` condition with the located problems of invalid entries),
//!   releases allocations whose binding is gone (after `orphan_grace`), and re-applies the
//!   activated paths (repairing a crash between the two writes, or a topology recreated).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::names::{DEFAULT_CATALOGUE, NETCTL_FIELD_MANAGER};
use edgeplane_api::{
    AllocationPurpose, ConstraintPolicyBinding, NetworkPathCatalogue, NetworkPathCatalogueStatus,
    NetworkTopology, PathAllocation,
};
use edgeplane_core::clock::Clock;
use edgeplane_core::mitigation::{
    self, Catalogue, DiscoverInput, Mitigation, MitigationInput, PathRules, has_room,
    mitigation_id, offer_id, parse_offer_id, usage,
};
use edgeplane_core::network::{Location, NetworkGraph, NodeInfo};
use edgeplane_core::snapshot::DEFAULT_TOPOLOGY;
use edgeplane_core::values::Value;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::net::TcpListener;

use crate::controller::{
    AllocateRequest, Allocated, DiscoverRequest, Endpoint, ExpectedMetrics, MitigateOutcome,
    MitigateRequest, NetctlError, NetworkController, PathOffer, ReleaseRequest, Released,
};

/// How the reference controller runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferenceConfig {
    /// The NetworkPathCatalogue it manages.
    pub catalogue: String,
    /// The NetworkTopology it activates paths in.
    pub topology: String,
    /// How long an offer from Discover can be allocated.
    pub offer_ttl: Duration,
    /// Release allocations whose binding has been gone this long; `None` keeps them until
    /// released.
    pub orphan_grace: Option<Duration>,
    /// Interval between reconciliations.
    pub resync: Duration,
    /// Field manager of its writes.
    pub field_manager: String,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            catalogue: DEFAULT_CATALOGUE.to_string(),
            topology: DEFAULT_TOPOLOGY.to_string(),
            offer_ttl: Duration::from_secs(60),
            orphan_grace: Some(Duration::from_secs(600)),
            resync: Duration::from_secs(30),
            field_manager: NETCTL_FIELD_MANAGER.to_string(),
        }
    }
}

/// Nodes and bindings read from a process's watch caches instead of listed from the API
/// server on every operation. The reference controller reads the nodes for each
/// operation's network graph and the bindings at each resync; when it runs in a process
/// that already watches them (the simulator), listing 2,000 nodes per Mitigate and 10,000
/// bindings per resync cost more than everything it decides.
pub trait CachedReads: Send + Sync {
    /// The nodes, or `None` while the cache has not listed them yet (then they are listed
    /// from the API server).
    fn nodes(&self) -> Option<Vec<NodeInfo>>;
    /// `namespace/name` of every binding, or `None` while the cache has not listed them
    /// (then they are listed from the API server: an empty cache must never make every
    /// allocation look orphaned).
    fn binding_names(&self) -> Option<BTreeSet<String>>;
}

/// How many times an operation re-reads and decides again when its write conflicts.
const MAX_ATTEMPTS: usize = 5;

/// The reference network controller. Implements [`NetworkController`] in process;
/// [`serve`] puts it behind gRPC.
pub struct ReferenceController {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    config: ReferenceConfig,
    lock: tokio::sync::Mutex<()>,
    cached: Option<Arc<dyn CachedReads>>,
}

/// What the controller reads before deciding.
pub(crate) struct State {
    /// The network without the paths this controller's catalogue activated: a binding
    /// relies only on the paths it holds an allocation of, so every binding that needs a
    /// path counts against its capacity.
    graph: NetworkGraph,
    /// The catalogue object, when it exists.
    object: Option<NetworkPathCatalogue>,
    catalogue: Catalogue,
    pub(crate) allocations: Vec<PathAllocation>,
    now: Timestamp,
}

/// What an operation decided.
enum Step<T> {
    /// Nothing to write.
    Answer(T),
    /// Write these allocations (and the activations they imply), then answer.
    Write(Vec<PathAllocation>, T),
}

/// Why a write did not happen.
pub(crate) enum WriteError {
    /// Someone wrote the catalogue since it was read: read again.
    Conflict,
    Failed(NetctlError),
}

fn kube_error(what: &str, error: kube::Error) -> NetctlError {
    match &error {
        kube::Error::Api(status) if status.code == 409 => {
            NetctlError::Aborted(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) => {
            NetctlError::Failed(format!("{what}: {} ({})", status.message, status.code))
        }
        _ => NetctlError::Unavailable(format!("{what}: the API server cannot be reached: {error}")),
    }
}

impl ReferenceController {
    pub fn new(
        client: kube::Client,
        clock: Arc<dyn Clock>,
        config: ReferenceConfig,
    ) -> ReferenceController {
        ReferenceController {
            client,
            clock,
            config,
            lock: tokio::sync::Mutex::new(()),
            cached: None,
        }
    }

    /// Reads nodes and bindings from `cached` when it has them.
    pub fn with_cached_reads(mut self, cached: Arc<dyn CachedReads>) -> ReferenceController {
        self.cached = Some(cached);
        self
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, NetctlError> {
        if let Some(nodes) = self.cached.as_ref().and_then(|c| c.nodes()) {
            return Ok(nodes);
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        let nodes = nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_error("listing nodes", e))?;
        Ok(nodes.items.iter().filter_map(NodeInfo::from_node).collect())
    }

    pub fn config(&self) -> &ReferenceConfig {
        &self.config
    }

    pub(crate) async fn load(&self) -> Result<State, NetctlError> {
        let name = &self.config.topology;
        let topologies: Api<NetworkTopology> = Api::all(self.client.clone());
        let mut topology = topologies
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&format!("reading NetworkTopology {name}"), e))?
            .ok_or_else(|| {
                NetctlError::FailedPrecondition(format!("no NetworkTopology named {name:?}"))
            })?;
        let infos = self.nodes().await?;
        if let Some(status) = topology.status.as_mut() {
            status
                .activated_paths
                .retain(|p| p.catalogue != self.config.catalogue);
        }
        let now = self.clock.now();
        let graph = NetworkGraph::build(Some(&topology), &infos, now)
            .map_err(|e| NetctlError::FailedPrecondition(format!("NetworkTopology {name}: {e}")))?;
        let catalogues: Api<NetworkPathCatalogue> = Api::all(self.client.clone());
        let object = catalogues
            .get_opt(&self.config.catalogue)
            .await
            .map_err(|e| {
                kube_error(
                    &format!("reading NetworkPathCatalogue {}", self.config.catalogue),
                    e,
                )
            })?;
        let (catalogue, allocations) = match &object {
            Some(c) => (
                Catalogue::parse(c, &graph),
                c.status
                    .as_ref()
                    .map(|s| s.allocations.clone())
                    .unwrap_or_default(),
            ),
            None => (
                Catalogue {
                    name: self.config.catalogue.clone(),
                    ..Catalogue::default()
                },
                Vec::new(),
            ),
        };
        Ok(State {
            graph,
            object,
            catalogue,
            allocations,
            now,
        })
    }

    fn missing_catalogue(&self) -> String {
        format!("no NetworkPathCatalogue named {:?}", self.config.catalogue)
    }

    /// Reads, decides and writes under the process's lock, deciding again when the write
    /// conflicts with another writer.
    async fn transact<T>(
        &self,
        mut decide: impl FnMut(&State) -> Result<Step<T>, NetctlError>,
    ) -> Result<T, NetctlError> {
        let _guard = self.lock.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            let state = self.load().await?;
            match decide(&state)? {
                Step::Answer(answer) => return Ok(answer),
                Step::Write(allocations, answer) => match self.write(&state, allocations).await {
                    Ok(()) => return Ok(answer),
                    Err(WriteError::Conflict) => continue,
                    Err(WriteError::Failed(e)) => return Err(e),
                },
            }
        }
        Err(NetctlError::Aborted(format!(
            "NetworkPathCatalogue {} kept changing while being written ({MAX_ATTEMPTS} attempts); retry",
            self.config.catalogue
        )))
    }

    /// Writes the catalogue's status with `allocations`, then the activated paths they
    /// imply.
    pub(crate) async fn write(
        &self,
        state: &State,
        allocations: Vec<PathAllocation>,
    ) -> Result<(), WriteError> {
        let Some(object) = &state.object else {
            return Err(WriteError::Failed(NetctlError::FailedPrecondition(
                self.missing_catalogue(),
            )));
        };
        let status = catalogue_status(object, &state.catalogue, allocations, state.now);
        let body = json!({
            "apiVersion": edgeplane_api::names::NETWORK_API_VERSION,
            "kind": "NetworkPathCatalogue",
            "metadata": {
                "name": self.config.catalogue,
                "resourceVersion": object.resource_version(),
            },
            "status": status,
        });
        let api: Api<NetworkPathCatalogue> = Api::all(self.client.clone());
        let params = PatchParams::apply(&self.config.field_manager).force();
        match api
            .patch_status(&self.config.catalogue, &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => return Err(WriteError::Conflict),
            Err(e) => {
                return Err(WriteError::Failed(kube_error(
                    &format!(
                        "writing NetworkPathCatalogue {} status",
                        self.config.catalogue
                    ),
                    e,
                )));
            }
        }
        let paths = mitigation::activated_paths(object, &state.catalogue, &status.allocations);
        self.write_activations(&paths)
            .await
            .map_err(WriteError::Failed)
    }

    /// Applies the topology's `status.activatedPaths` (the whole list this controller
    /// owns; an empty list removes them all).
    async fn write_activations(
        &self,
        paths: &[edgeplane_api::ActivatedPath],
    ) -> Result<(), NetctlError> {
        let name = &self.config.topology;
        let body = json!({
            "apiVersion": edgeplane_api::names::NETWORK_API_VERSION,
            "kind": "NetworkTopology",
            "metadata": {"name": name},
            "status": {"activatedPaths": paths},
        });
        let api: Api<NetworkTopology> = Api::all(self.client.clone());
        let params = PatchParams::apply(&self.config.field_manager).force();
        api.patch_status(name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| kube_error(&format!("activating paths in NetworkTopology {name}"), e))?;
        Ok(())
    }

    /// Brings the catalogue's status and the topology's activated paths in line with the
    /// allocations, releasing those whose binding has been gone for `orphan_grace`.
    /// Returns the ids released.
    pub async fn reconcile(&self) -> Result<Vec<String>, NetctlError> {
        let bindings = match self.config.orphan_grace {
            Some(_) => self.binding_names().await,
            None => None,
        };
        let grace = self.config.orphan_grace.unwrap_or_default();
        let released = std::sync::Mutex::new(Vec::new());
        let missing = self
            .transact(|state| {
                if state.object.is_none() {
                    return Ok(Step::Answer(true));
                }
                let orphans: BTreeSet<&str> = match &bindings {
                    Some(b) => mitigation::orphaned(&state.allocations, b, state.now, grace)
                        .into_iter()
                        .map(|a| a.id.as_str())
                        .collect(),
                    None => BTreeSet::new(),
                };
                if let Ok(mut r) = released.lock() {
                    *r = orphans.iter().map(|s| s.to_string()).collect();
                }
                let kept = state
                    .allocations
                    .iter()
                    .filter(|a| !orphans.contains(a.id.as_str()))
                    .cloned()
                    .collect();
                Ok(Step::Write(kept, false))
            })
            .await?;
        if missing {
            // No catalogue: nothing of it may stay active.
            self.write_activations(&[]).await?;
        }
        let released = released.into_inner().unwrap_or_default();
        for id in &released {
            tracing::info!(allocation = %id, "released: its binding is gone");
        }
        Ok(released)
    }

    /// `namespace/name` of every binding; `None` when they cannot be listed (the CRD is
    /// not installed, the API is down): then nothing counts as orphaned.
    async fn binding_names(&self) -> Option<BTreeSet<String>> {
        if let Some(names) = self.cached.as_ref().and_then(|c| c.binding_names()) {
            return Some(names);
        }
        let api: Api<ConstraintPolicyBinding> = Api::all(self.client.clone());
        match api.list(&ListParams::default()).await {
            Ok(list) => Some(
                list.items
                    .iter()
                    .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
                    .collect(),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list bindings; orphaned allocations are kept");
                None
            }
        }
    }

    /// Reconciles now and every `resync` until `shutdown` completes. Failures are logged
    /// and retried at the next round.
    pub async fn run_reconciler(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "reconciling the catalogue failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.resync) => {}
                _ = &mut shutdown => return,
            }
        }
    }
}

/// The catalogue's status: allocations, counts, and the `Valid` condition (its transition
/// time moves only when its status does).
fn catalogue_status(
    object: &NetworkPathCatalogue,
    catalogue: &Catalogue,
    allocations: Vec<PathAllocation>,
    now: Timestamp,
) -> NetworkPathCatalogueStatus {
    let previous = object
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Valid"));
    let (status, reason, message) = if catalogue.problems.is_empty() {
        (
            "True",
            "EntriesValid",
            format!("{} entries", catalogue.entries.len()),
        )
    } else {
        let problems: Vec<String> = catalogue.problems.iter().map(|p| p.to_string()).collect();
        (
            "False",
            "InvalidEntries",
            format!(
                "{} of {} entries cannot be used: {}",
                object.spec.entries.len() - catalogue.entries.len(),
                object.spec.entries.len(),
                problems.join("; ")
            ),
        )
    };
    let transition = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    NetworkPathCatalogueStatus {
        entry_count: Some(catalogue.entries.len() as i32),
        allocation_count: Some(allocations.len() as i32),
        allocations,
        observed_generation: object.metadata.generation,
        conditions: vec![Condition {
            type_: "Valid".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: object.metadata.generation,
            last_transition_time: transition,
        }],
    }
}

/// An endpoint on the graph.
fn locate(graph: &NetworkGraph, field: &str, endpoint: &Endpoint) -> Result<Location, NetctlError> {
    match endpoint {
        Endpoint::Node(n) => graph
            .node_id(n)
            .map(Location::Node)
            .ok_or_else(|| NetctlError::InvalidArgument(format!("{field}: no node named {n:?}"))),
        Endpoint::Site(s) => graph.site_id(s).map(Location::Site).ok_or_else(|| {
            NetctlError::InvalidArgument(format!(
                "{field}: no site named {s:?} in the NetworkTopology"
            ))
        }),
    }
}

fn parse_rules(rules: &[crate::PolicyRule]) -> Result<PathRules, NetctlError> {
    PathRules::parse(rules).map_err(|e| NetctlError::InvalidArgument(e.to_string()))
}

fn site_names(graph: &NetworkGraph, route: Option<&edgeplane_core::network::Route>) -> Vec<String> {
    route
        .map(|r| {
            r.sites
                .iter()
                .map(|s| graph.site_name(*s).to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tonic::async_trait]
impl NetworkController for ReferenceController {
    async fn discover(&self, request: &DiscoverRequest) -> Result<Vec<PathOffer>, NetctlError> {
        let rules = parse_rules(&request.rules)?;
        let state = self.load().await?;
        let source = locate(&state.graph, "source", &request.source)?;
        if state.object.is_none() {
            return Ok(Vec::new());
        }
        // Nodes that are gone get no offer rather than failing the question.
        let candidates: Vec<(Location, &str)> = request
            .candidate_nodes
            .iter()
            .filter_map(|n| Some((Location::Node(state.graph.node_id(n)?), n.as_str())))
            .collect();
        let plans = mitigation::discover(&DiscoverInput {
            graph: &state.graph,
            catalogue: &state.catalogue,
            allocations: &state.allocations,
            source: (source, request.source.name()),
            candidates: &candidates,
            rules: &rules,
        });
        let ttl = SignedDuration::try_from(self.config.offer_ttl).unwrap_or(SignedDuration::ZERO);
        let expires = state
            .now
            .checked_add(ttl)
            .ok()
            .and_then(|t| Timestamp::from_second(t.as_second()).ok())
            .unwrap_or(state.now);
        Ok(plans
            .into_iter()
            .map(|plan| {
                let entry = &state.catalogue.entries[plan.entry];
                let node = candidates[plan.candidate].1;
                PathOffer {
                    id: offer_id(
                        &state.catalogue.name,
                        &entry.name,
                        node,
                        request.source.name(),
                        &request.rules,
                        expires,
                    ),
                    node: node.to_string(),
                    path: site_names(&state.graph, plan.judgement.forward.as_ref()),
                    expected: plan
                        .judgement
                        .expected()
                        .map(|m| ExpectedMetrics::from_path(&m))
                        .unwrap_or_default(),
                    cost: entry.cost as f64,
                    expires,
                    entry: entry.name.clone(),
                    compliance: plan.judgement.compliance,
                }
            })
            .collect())
    }

    async fn allocate(&self, request: &AllocateRequest) -> Result<Allocated, NetctlError> {
        let Some((entry_name, expires)) = parse_offer_id(&request.id) else {
            return Err(NetctlError::InvalidArgument(format!(
                "id: {:?} is not an offer of this controller (offer.<entry>.<expiry>.<hash>, from Discover)",
                request.id
            )));
        };
        let rules = parse_rules(&request.rules)?;
        let catalogue_missing = self.missing_catalogue();
        self.transact(|state| {
            if let Some(held) = state.allocations.iter().find(|a| a.id == request.id) {
                if held.binding != request.binding {
                    return Err(NetctlError::FailedPrecondition(format!(
                        "offer {} is allocated to binding {} already",
                        request.id, held.binding
                    )));
                }
                return Ok(Step::Answer(Allocated {
                    id: held.id.clone(),
                    entry: held.entry.clone(),
                    created: false,
                }));
            }
            if state.now > expires {
                return Err(NetctlError::FailedPrecondition(format!(
                    "offer {} expired at {expires}; ask Discover again",
                    request.id
                )));
            }
            if state.object.is_none() {
                return Err(NetctlError::FailedPrecondition(catalogue_missing.clone()));
            }
            let entry = state.catalogue.entry(&entry_name).ok_or_else(|| {
                NetctlError::NotFound(format!(
                    "catalogue {} has no usable entry {entry_name:?}",
                    state.catalogue.name
                ))
            })?;
            let reserve = if entry.capacity.bandwidth_bps.is_some() {
                rules.bandwidth_reservation_bps()
            } else {
                0.0
            };
            let used = usage(&state.allocations)
                .get(&entry.name)
                .copied()
                .unwrap_or_default();
            has_room(entry, used, reserve).map_err(|why| {
                NetctlError::AtCapacity(format!(
                    "catalogue {}: {} is {why}",
                    state.catalogue.name,
                    entry.describe()
                ))
            })?;
            let mut allocations = state.allocations.clone();
            allocations.push(PathAllocation {
                id: request.id.clone(),
                entry: entry.name.clone(),
                binding: request.binding.clone(),
                purpose: AllocationPurpose::Discover,
                bandwidth: (reserve > 0.0)
                    .then(|| Value::bits_per_second(reserve).to_string()),
                allocated_at: Time(state.now),
            });
            Ok(Step::Write(
                allocations,
                Allocated {
                    id: request.id.clone(),
                    entry: entry.name.clone(),
                    created: true,
                },
            ))
        })
        .await
        .inspect(|a| {
            if a.created {
                tracing::info!(id = %a.id, entry = %a.entry, binding = %request.binding, "allocated");
            }
        })
    }

    async fn release(&self, request: &ReleaseRequest) -> Result<Released, NetctlError> {
        self.transact(|state| {
            let Some(held) = state.allocations.iter().find(|a| a.id == request.id) else {
                return Ok(Step::Answer(Released {
                    released: false,
                    deactivated: false,
                }));
            };
            if let Some(binding) = &request.binding
                && *binding != held.binding
            {
                return Err(NetctlError::FailedPrecondition(format!(
                    "allocation {} is held by binding {}, not {binding}",
                    request.id, held.binding
                )));
            }
            let kept: Vec<PathAllocation> = state
                .allocations
                .iter()
                .filter(|a| a.id != request.id)
                .cloned()
                .collect();
            let deactivated = !kept.iter().any(|a| a.entry == held.entry);
            Ok(Step::Write(
                kept,
                Released {
                    released: true,
                    deactivated,
                },
            ))
        })
        .await
        .inspect(|r| {
            if r.released {
                tracing::info!(id = %request.id, deactivated = r.deactivated, "released");
            }
        })
    }

    async fn mitigate(&self, request: &MitigateRequest) -> Result<MitigateOutcome, NetctlError> {
        let rules = parse_rules(&request.rules)?;
        let catalogue_missing = self.missing_catalogue();
        let outcome = self
            .transact(|state| {
                let source = locate(&state.graph, "source", &request.source)?;
                let destination = locate(&state.graph, "destination", &request.destination)?;
                if state.object.is_none() {
                    return Ok(Step::Answer(MitigateOutcome {
                        accepted: false,
                        expected: None,
                        reason: catalogue_missing.clone(),
                        allocation_id: None,
                        entry: None,
                        path: Vec::new(),
                        compliance: None,
                    }));
                }
                let decision = mitigation::decide_mitigation(&MitigationInput {
                    graph: &state.graph,
                    catalogue: &state.catalogue,
                    allocations: &state.allocations,
                    binding: &request.binding,
                    source: (source, request.source.name()),
                    destination: (destination, request.destination.name()),
                    rules: &rules,
                });
                let answer = |judgement: &mitigation::Judgement,
                              reason: String,
                              id: Option<String>,
                              entry: Option<String>| MitigateOutcome {
                    accepted: judgement.holds(),
                    expected: judgement.expected().map(|m| ExpectedMetrics::from_path(&m)),
                    reason,
                    allocation_id: id,
                    entry,
                    path: site_names(&state.graph, judgement.forward.as_ref()),
                    compliance: Some(judgement.compliance),
                };
                Ok(match decision {
                    Mitigation::NotNeeded { judgement } => Step::Answer(answer(
                        &judgement,
                        format!("no new path needed: {}", judgement.reason),
                        None,
                        None,
                    )),
                    Mitigation::Held {
                        id,
                        entry,
                        judgement,
                    } => {
                        let described = state
                            .catalogue
                            .entry(&entry)
                            .map(|e| e.describe())
                            .unwrap_or_else(|| entry.clone());
                        // Written again (a no-op unless the activation was lost).
                        Step::Write(
                            state.allocations.clone(),
                            answer(
                                &judgement,
                                format!(
                                    "{described} is active for this binding already: {}",
                                    judgement.reason
                                ),
                                Some(id),
                                Some(entry),
                            ),
                        )
                    }
                    Mitigation::Allocate {
                        entry,
                        judgement,
                        replaces,
                    } => {
                        let entry = &state.catalogue.entries[entry];
                        let id =
                            mitigation_id(&state.catalogue.name, &entry.name, &request.binding);
                        let mut allocations: Vec<PathAllocation> = state
                            .allocations
                            .iter()
                            .filter(|a| Some(&a.id) != replaces.as_ref() && a.id != id)
                            .cloned()
                            .collect();
                        let reserve = if entry.capacity.bandwidth_bps.is_some() {
                            rules.bandwidth_reservation_bps()
                        } else {
                            0.0
                        };
                        allocations.push(PathAllocation {
                            id: id.clone(),
                            entry: entry.name.clone(),
                            binding: request.binding.clone(),
                            purpose: AllocationPurpose::Mitigate,
                            bandwidth: (reserve > 0.0)
                                .then(|| Value::bits_per_second(reserve).to_string()),
                            allocated_at: Time(state.now),
                        });
                        let moved = replaces
                            .map(|r| format!(" (instead of allocation {r}, which no longer did)"))
                            .unwrap_or_default();
                        Step::Write(
                            allocations,
                            answer(
                                &judgement,
                                format!(
                                    "activated {}{moved}: {}",
                                    entry.describe(),
                                    judgement.reason
                                ),
                                Some(id),
                                Some(entry.name.clone()),
                            ),
                        )
                    }
                    Mitigation::Refuse { reason } => Step::Answer(MitigateOutcome {
                        accepted: false,
                        expected: None,
                        reason,
                        allocation_id: None,
                        entry: None,
                        path: Vec::new(),
                        compliance: None,
                    }),
                })
            })
            .await?;
        tracing::info!(
            binding = %request.binding,
            accepted = outcome.accepted,
            reason = %outcome.reason,
            "mitigate"
        );
        Ok(outcome)
    }
}

/// Runs the reference controller on `listener` until `shutdown` completes: the gRPC
/// service, and the reconciler (at start and every `resync`). This is the in-process form
/// of `edgeplane netctl serve`; with the embedded cluster's client and clock it runs on
/// virtual time.
pub async fn serve(
    listener: TcpListener,
    controller: Arc<ReferenceController>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let reconciler = {
        let controller = controller.clone();
        tokio::spawn(async move {
            controller
                .run_reconciler(async move {
                    // Also completes when the sender is dropped (the server stopped).
                    let _ = stopped.changed().await;
                })
                .await;
        })
    };
    let result = crate::server::serve(listener, controller, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = reconciler.await;
    result
}
