//! What the scheduler keeps between plan runs: the caches' objects compiled for the
//! planner once, and compiled again only when they change. Pure: a plan run hands it the
//! objects the caches list ([`CompiledCluster::update`]), and [`super::input::build_kept`]
//! reads it.
//!
//! On a cluster of thousands of nodes, pods and offers, one application arriving changes a
//! few pods and offers; compiling every node (allocatable, taints), every pod (requests,
//! pod rules, offer candidate and its index) and every offer (targets checked, selectors
//! compiled) on each run is what made a plan run cost hundreds of milliseconds.
//!
//! An object is unchanged while the cache hands out the same `Arc` (a reflector replaces
//! the `Arc` of an object that changed; holding it, the address cannot be reused). A
//! relist hands out new `Arc`s: the objects are then compiled again, once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use edgeplane_api::{ConstraintPolicy, ConstraintPolicyOffer, NetworkTopology};
use k8s_openapi::api::core::v1::{Node, Pod};

use super::Mode;
use super::pod_state::{hostnames, is_pending};
use crate::offers::{Candidate, CompiledOffer, KeptInventory, OfferError};
use crate::planner::convert::{pending_pod, placed_pod, pod_key};
use crate::planner::{PendingPod, PlacedPod, PlanNode, PodKey};

/// Namespace and name as the objects carry them: the caches' objects in this order are
/// what the planner sees (it breaks ties by input order).
pub(crate) type Id = (Option<String>, Option<String>);

/// What the caches hold, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub nodes: &'a [Arc<Node>],
    pub pods: &'a [Arc<Pod>],
    pub policies: &'a [Arc<ConstraintPolicy>],
    pub offers: &'a [Arc<ConstraintPolicyOffer>],
    /// The NetworkTopology named `default`.
    pub topology: Option<&'a NetworkTopology>,
    /// Network functions and service chains, for offers that target them (empty when
    /// the scheduler does not watch them).
    pub functions: &'a crate::nf::targets::FunctionInventory,
}

/// The compiled objects, by [`Id`].
#[derive(Clone, Debug)]
pub struct CompiledCluster {
    mode: Mode,
    generation: u64,
    pub(crate) nodes: Kept<Node, Result<PlanNode, String>>,
    pub(crate) pods: Kept<Pod, CompiledPod>,
    pub(crate) offers: Kept<ConstraintPolicyOffer, Result<CompiledOffer, OfferError>>,
    /// Every pod that can fill an offer's role, with the sites and network functions.
    pub(crate) inventory: KeptInventory,
    /// Hostname label -> node name.
    pub(crate) hosts: HashMap<String, String>,
    topology: Option<NetworkTopology>,
}

/// What a pod is to the planner, while no placement of ours is in flight for it.
#[derive(Clone, Debug)]
pub(crate) struct CompiledPod {
    pub key: PodKey,
    pub role: PodRole,
}

#[derive(Clone, Debug)]
pub(crate) enum PodRole {
    /// It waits for this scheduler; the error names the field the planner cannot read.
    Pending(Result<PendingPod, String>),
    /// It holds capacity on its node.
    Placed(PlacedPod),
    /// Neither: finished, terminating, or unbound and not waiting for us (it may be
    /// pinned to a node, which depends on the nodes' hostnames: judged per run).
    Other,
}

/// Objects of one kind with what was compiled from each.
#[derive(Clone, Debug)]
pub(crate) struct Kept<K, V> {
    pub entries: BTreeMap<Id, Entry<K, V>>,
    /// The address of each entry's `Arc`, with its id and the generation that last listed
    /// it: an unchanged object is found (and marked) with one hash lookup.
    by_address: HashMap<usize, (Id, u64)>,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry<K, V> {
    pub object: Arc<K>,
    pub value: V,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Kept {
            entries: BTreeMap::new(),
            by_address: HashMap::new(),
        }
    }
}

/// What [`Kept::update`] changed: ids added or replaced, and entries removed.
struct Changes<K, V> {
    set: Vec<Id>,
    removed: Vec<Entry<K, V>>,
}

impl<K, V> Changes<K, V> {
    fn any(&self) -> bool {
        !self.set.is_empty() || !self.removed.is_empty()
    }
}

impl<K, V> Kept<K, V> {
    /// Brings the entries to `objects` (the cache's list), compiling the objects whose
    /// `Arc` is new. An id listed twice keeps its last object.
    fn update(
        &mut self,
        objects: &[Arc<K>],
        generation: u64,
        id: impl Fn(&K) -> Id,
        mut compile: impl FnMut(&K) -> V,
    ) -> Changes<K, V> {
        let mut changes = Changes {
            set: Vec::new(),
            removed: Vec::new(),
        };
        // Entries listed in this generation.
        let mut listed = 0usize;
        for object in objects {
            let address = Arc::as_ptr(object) as usize;
            if let Some((_, seen)) = self.by_address.get_mut(&address) {
                if *seen != generation {
                    *seen = generation;
                    listed += 1;
                }
                continue;
            }
            let key = id(object);
            let entry = Entry {
                object: object.clone(),
                value: compile(object),
            };
            let replaced = self.entries.insert(key.clone(), entry);
            let counted = replaced
                .and_then(|old| self.by_address.remove(&(Arc::as_ptr(&old.object) as usize)))
                .is_some_and(|(_, seen)| seen == generation);
            if !counted {
                listed += 1;
            }
            self.by_address.insert(address, (key.clone(), generation));
            changes.set.push(key);
        }
        if listed != self.entries.len() {
            let gone: Vec<(usize, Id)> = self
                .by_address
                .iter()
                .filter(|(_, (_, seen))| *seen != generation)
                .map(|(address, (key, _))| (*address, key.clone()))
                .collect();
            for (address, key) in gone {
                self.by_address.remove(&address);
                if let Some(entry) = self.entries.remove(&key) {
                    changes.removed.push(entry);
                }
            }
        }
        changes
    }

    pub fn values(&self) -> impl Iterator<Item = &Entry<K, V>> {
        self.entries.values()
    }
}

fn node_id(node: &Node) -> Id {
    (None, node.metadata.name.clone())
}

fn pod_id(pod: &Pod) -> Id {
    (pod.metadata.namespace.clone(), pod.metadata.name.clone())
}

fn offer_id(offer: &ConstraintPolicyOffer) -> Id {
    (
        offer.metadata.namespace.clone(),
        offer.metadata.name.clone(),
    )
}

impl CompiledCluster {
    /// Nothing compiled yet; pods wait for the scheduler as `mode` says.
    pub fn new(mode: Mode) -> CompiledCluster {
        CompiledCluster {
            mode,
            generation: 0,
            nodes: Kept::default(),
            pods: Kept::default(),
            offers: Kept::default(),
            inventory: KeptInventory::default(),
            hosts: HashMap::new(),
            topology: None,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The pods of `keys` (those a plan run writes to: a lookup, not a map of every pod).
    pub fn pods_by_key<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k PodKey>,
    ) -> HashMap<PodKey, Arc<Pod>> {
        let mut pods = HashMap::new();
        for key in keys {
            let named = (Some(key.namespace.clone()), Some(key.name.clone()));
            let found = self.pods.entries.get(&named).or_else(|| {
                // A pod without a namespace is keyed `default/name`.
                (key.namespace == "default")
                    .then(|| self.pods.entries.get(&(None, Some(key.name.clone()))))
                    .flatten()
            });
            if let Some(entry) = found {
                pods.insert(key.clone(), entry.object.clone());
            }
        }
        pods
    }

    /// Brings the compiled objects to what the caches hold now: compiles the objects that
    /// are new or changed, drops the ones that are gone.
    pub fn update(&mut self, observed: Observed<'_>) {
        self.generation += 1;
        let generation = self.generation;
        let nodes = self.nodes.update(observed.nodes, generation, node_id, |n| {
            crate::planner::plan_node(n).map_err(|e| e.to_string())
        });
        let mode = self.mode;
        let pods = self
            .pods
            .update(observed.pods, generation, pod_id, |p| compile_pod(mode, p));
        for entry in &pods.removed {
            if let Some(name) = entry.object.metadata.name.as_deref() {
                let namespace = entry.object.metadata.namespace.as_deref();
                self.inventory.remove(namespace.unwrap_or("default"), name);
            }
        }
        for id in &pods.set {
            let Some(entry) = self.pods.entries.get(id) else {
                continue;
            };
            let pod = &entry.object;
            match Candidate::from_pod(pod) {
                Some(candidate) => self.inventory.set(candidate),
                None => {
                    if let Some(name) = pod.metadata.name.as_deref() {
                        let namespace = pod.metadata.namespace.as_deref();
                        self.inventory.remove(namespace.unwrap_or("default"), name);
                    }
                }
            }
        }
        self.offers
            .update(observed.offers, generation, offer_id, |o| {
                CompiledOffer::of(o)
            });
        let topology_changed = self.topology.as_ref() != observed.topology;
        if topology_changed {
            self.topology = observed.topology.cloned();
        }
        if nodes.any() || topology_changed || generation == 1 {
            self.hosts = hostnames(observed.nodes);
            let sites = crate::sites::site_candidates(observed.topology, observed.nodes);
            self.inventory
                .set_targets(sites, observed.functions.clone());
        } else {
            self.inventory.set_functions(observed.functions.clone());
        }
    }
}

fn compile_pod(mode: Mode, pod: &Pod) -> CompiledPod {
    let key = pod_key(pod);
    let role = if is_pending(mode, pod)
        && let Some(spec) = pod.spec.as_ref()
    {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        PodRole::Pending(pending_pod(key.clone(), labels, spec).map_err(|e| format!("spec.{e}")))
    } else if let Some(p) = placed_pod(pod) {
        PodRole::Placed(p)
    } else {
        PodRole::Other
    };
    CompiledPod { key, role }
}
