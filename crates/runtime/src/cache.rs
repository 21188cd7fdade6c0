//! Reflector-backed caches shared by every controller of a process, with change
//! notifications.
//!
//! One watch per kind feeds a kube-runtime [`Store`] (so `Controller`s can read from it)
//! and broadcasts a [`Change`] per event, carrying the previous object, so that each
//! subscriber decides what matters to it (a pod's node changed, a node's labels changed)
//! without keeping copies. kube-runtime's own shared streams do not report deletions, so
//! this module does the fan-out itself.
//!
//! A subscriber that falls more than [`CHANNEL_CAPACITY`] changes behind receives
//! [`Change::Resynced`] instead of the changes it missed: it should then reconsider
//! everything, as after a relist.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, PoisonError, RwLock};

use edgeplane_api::{
    ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, NetworkFunction,
    NetworkTopology, ServiceChain,
};
use edgeplane_core::snapshot::DEFAULT_TOPOLOGY;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::foreign::{
    NetworkAttachmentDefinition, VirtualMachine, VirtualMachineInstance,
    VirtualMachineInstanceMigration,
};

/// Changes a subscriber may fall behind before it gets [`Change::Resynced`] instead.
pub const CHANNEL_CAPACITY: usize = 4096;

/// What a cache can hold.
pub trait Cached:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<T> Cached for T where
    T: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// One change to a cache.
#[derive(Debug)]
pub enum Change<K> {
    /// Created (`old` is `None`) or modified.
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Deleted; the last known state.
    Deleted(Arc<K>),
    /// The cache was (re)listed, or this subscriber missed changes: reconsider everything.
    Resynced,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied { old, new } => Change::Applied {
                old: old.clone(),
                new: new.clone(),
            },
            Change::Deleted(o) => Change::Deleted(o.clone()),
            Change::Resynced => Change::Resynced,
        }
    }
}

impl<K> Change<K> {
    /// The object after the change (the last state for a deletion).
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Change::Applied { new, .. } => Some(new),
            Change::Deleted(o) => Some(o),
            Change::Resynced => None,
        }
    }
}

/// The objects of a cache by namespace (`""` for cluster-scoped kinds) and group, then
/// name.
///
/// Controllers mostly read one namespace (an offer expands over the pods of its own) or
/// one group in it (an offer's bindings), and they do it on every change there: filtering
/// the whole store each time made the offer controller quadratic in a cluster with
/// thousands of pods, offers and bindings. Kept next to the store by the same task,
/// updated before a change is announced, so a subscriber that reads it on a change sees
/// that change. Names are ordered, so reads are deterministic.
struct Index<K> {
    objects: BTreeMap<(String, String), BTreeMap<String, Arc<K>>>,
    /// The group of an object within its namespace (`""` for caches without groups).
    group_of: fn(&K) -> String,
}

type SharedIndex<K> = Arc<RwLock<Index<K>>>;

impl<K: Cached> Index<K> {
    fn key(&self, object: &K) -> ((String, String), String) {
        (
            (
                object.namespace().unwrap_or_default(),
                (self.group_of)(object),
            ),
            object.name_any(),
        )
    }

    fn insert(&mut self, object: Arc<K>) {
        let (group, name) = self.key(&object);
        self.objects.entry(group).or_default().insert(name, object);
    }

    fn remove(&mut self, object: &K) {
        let (group, name) = self.key(object);
        if let Some(objects) = self.objects.get_mut(&group) {
            objects.remove(&name);
            if objects.is_empty() {
                self.objects.remove(&group);
            }
        }
    }

    fn rebuild(&mut self, objects: Vec<Arc<K>>) {
        self.objects.clear();
        for object in objects {
            self.insert(object);
        }
    }

    fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        use std::ops::Bound;
        let from = (namespace.to_string(), String::new());
        let mut groups = self
            .objects
            .range((Bound::Included(from.clone()), Bound::Unbounded))
            .take_while(|((ns, _), _)| ns == namespace);
        // One group (caches without groups): already in name order.
        if let (Some((_, only)), None) = (groups.next(), groups.next()) {
            return only.values().cloned().collect();
        }
        let mut objects: Vec<(&String, &Arc<K>)> = self
            .objects
            .range((Bound::Included(from), Bound::Unbounded))
            .take_while(|((ns, _), _)| ns == namespace)
            .flat_map(|(_, objects)| objects.iter())
            .collect();
        objects.sort_by(|a, b| a.0.cmp(b.0));
        objects.into_iter().map(|(_, o)| o.clone()).collect()
    }

    fn in_group(&self, namespace: &str, group: &str) -> Vec<Arc<K>> {
        self.objects
            .get(&(namespace.to_string(), group.to_string()))
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn no_group<K>(_: &K) -> String {
    String::new()
}

/// A watched kind: a [`Store`] and its change notifications. Cheap to clone.
pub struct Cache<K: Cached> {
    store: Store<K>,
    index: SharedIndex<K>,
    tx: broadcast::Sender<Change<K>>,
    ready: watch::Receiver<bool>,
}

impl<K: Cached> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            index: self.index.clone(),
            tx: self.tx.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: Cached> Debug for Cache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("kind", &K::kind(&()))
            .field("objects", &self.store.len())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<K: Cached> Cache<K> {
    /// Starts watching `api` (with backoff on errors) until `shutdown` is cancelled.
    pub fn spawn(api: Api<K>, config: watcher::Config, shutdown: CancellationToken) -> Cache<K> {
        Self::spawn_grouped(api, config, shutdown, no_group)
    }

    /// Like [`Cache::spawn`], and [`Cache::list_group`] lists the objects of a namespace
    /// whose `group_of` is the same.
    pub fn spawn_grouped(
        api: Api<K>,
        config: watcher::Config,
        shutdown: CancellationToken,
        group_of: fn(&K) -> String,
    ) -> Cache<K> {
        let writer: Writer<K> = Writer::default();
        let store = writer.as_reader();
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (ready_tx, ready) = watch::channel(false);
        let index = Arc::new(RwLock::new(Index {
            objects: BTreeMap::new(),
            group_of,
        }));
        tokio::spawn(run(
            api,
            config,
            writer,
            index.clone(),
            tx.clone(),
            ready_tx,
            shutdown,
        ));
        Cache {
            store,
            index,
            tx,
            ready,
        }
    }

    /// The kube-runtime store (for `Controller::for_stream` and lookups).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// The object `namespace/name` (`None` namespace for cluster-scoped kinds).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = ObjectRef::new(name);
        let key = match namespace {
            Some(ns) => key.within(ns),
            None => key,
        };
        self.store.get(&key)
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// Every object of a namespace, by name.
    pub fn list_in(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read_index().in_namespace(namespace)
    }

    /// The objects of a namespace in one group (see [`Cache::spawn_grouped`]), by name.
    pub fn list_group(&self, namespace: &str, group: &str) -> Vec<Arc<K>> {
        self.read_index().in_group(namespace, group)
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index<K>> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the first list has completed.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits for the first list.
    pub async fn wait_ready(&self) {
        let mut ready = self.ready.clone();
        if ready.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A receiver of the changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.tx.subscribe()
    }

    /// The changes from now on as a stream; missed changes come as [`Change::Resynced`].
    pub fn changes(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        changes_of(self.subscribe()).map(|r| r.unwrap_or(Change::Resynced))
    }
}

/// A broadcast receiver as a stream: `Err(n)` when `n` messages were missed.
pub fn changes_of<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
) -> impl Stream<Item = Result<T, u64>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(change) => Some((Ok(change), rx)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some((Err(n), rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

fn write_index<K>(index: &SharedIndex<K>) -> std::sync::RwLockWriteGuard<'_, Index<K>> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}

async fn run<K: Cached>(
    api: Api<K>,
    config: watcher::Config,
    mut writer: Writer<K>,
    index: SharedIndex<K>,
    tx: broadcast::Sender<Change<K>>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let reader = writer.as_reader();
    let kind = K::kind(&());
    // Nothing edgeplane decides reads managedFields, and they are often the largest part
    // of an object (a third of the caches' memory in the simulator): drop them.
    let mut stream = std::pin::pin!(
        watcher(api, config)
            .default_backoff()
            .modify(|object| object.meta_mut().managed_fields = None)
    );
    let mut before_relist: Option<HashMap<ObjectRef<K>, Arc<K>>> = None;
    // Sending fails only when nobody listens, which is fine.
    let send = |change: Change<K>| {
        let _ = tx.send(change);
    };
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = stream.next() => event,
        };
        let event = match event {
            None => break,
            Some(Err(error)) => {
                tracing::warn!(%kind, %error, "watch failed; retrying with backoff");
                continue;
            }
            Some(Ok(event)) => event,
        };
        match &event {
            watcher::Event::Apply(obj) => {
                let key = ObjectRef::from_obj(obj);
                let old = reader.get(&key);
                writer.apply_watcher_event(&event);
                let Some(new) = reader.get(&key) else {
                    continue;
                };
                {
                    // The group may have changed (a relabelled object).
                    let mut index = write_index(&index);
                    if let Some(old) = &old {
                        index.remove(old);
                    }
                    index.insert(new.clone());
                }
                let same = old.as_ref().is_some_and(|o| {
                    o.resource_version().is_some() && o.resource_version() == new.resource_version()
                });
                if !same {
                    send(Change::Applied { old, new });
                }
            }
            watcher::Event::Delete(obj) => {
                let key = ObjectRef::from_obj(obj);
                let last = reader.get(&key).unwrap_or_else(|| Arc::new(obj.clone()));
                writer.apply_watcher_event(&event);
                write_index(&index).remove(&last);
                send(Change::Deleted(last));
            }
            watcher::Event::Init => {
                before_relist = Some(
                    reader
                        .state()
                        .into_iter()
                        .map(|o| (ObjectRef::from_obj(&*o), o))
                        .collect(),
                );
                writer.apply_watcher_event(&event);
            }
            watcher::Event::InitApply(_) => writer.apply_watcher_event(&event),
            watcher::Event::InitDone => {
                writer.apply_watcher_event(&event);
                write_index(&index).rebuild(reader.state());
                let mut before = before_relist.take().unwrap_or_default();
                for new in reader.state() {
                    let old = before.remove(&ObjectRef::from_obj(&*new));
                    let same = old
                        .as_ref()
                        .is_some_and(|o| o.resource_version() == new.resource_version());
                    if !same {
                        send(Change::Applied { old, new });
                    }
                }
                for (_, gone) in before {
                    send(Change::Deleted(gone));
                }
                ready.send_replace(true);
                send(Change::Resynced);
            }
        }
    }
}

/// The caches of every kind edgeplane's controllers read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Caches {
    pub nodes: Cache<Node>,
    pub pods: Cache<Pod>,
    /// All NetworkTopologies; edgeplane uses the one named `default` ([`Caches::topology`]).
    pub topologies: Cache<NetworkTopology>,
    pub policies: Cache<ConstraintPolicy>,
    pub offers: Cache<ConstraintPolicyOffer>,
    pub bindings: Cache<ConstraintPolicyBinding>,
    /// Services, for providers registered by label.
    pub services: Cache<Service>,
}

impl Caches {
    /// Starts watching every kind, cluster-wide.
    pub fn start(client: &Client, shutdown: &CancellationToken) -> Caches {
        let cfg = watcher::Config::default;
        Caches {
            nodes: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            pods: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            topologies: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            policies: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            offers: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            // Grouped by offer: the offer controller reads an offer's bindings on every
            // reconcile.
            bindings: Cache::spawn_grouped(
                Api::all(client.clone()),
                cfg(),
                shutdown.clone(),
                |b| b.owner_offer().to_string(),
            ),
            services: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
        }
    }

    /// Whether every cache has listed once.
    pub fn is_ready(&self) -> bool {
        self.nodes.is_ready()
            && self.pods.is_ready()
            && self.topologies.is_ready()
            && self.policies.is_ready()
            && self.offers.is_ready()
            && self.bindings.is_ready()
            && self.services.is_ready()
    }

    pub async fn wait_ready(&self) {
        self.nodes.wait_ready().await;
        self.pods.wait_ready().await;
        self.topologies.wait_ready().await;
        self.policies.wait_ready().await;
        self.offers.wait_ready().await;
        self.bindings.wait_ready().await;
        self.services.wait_ready().await;
    }

    /// The topology edgeplane uses: the NetworkTopology named `default`.
    pub fn topology(&self) -> Option<Arc<NetworkTopology>> {
        self.topologies.get(None, DEFAULT_TOPOLOGY)
    }
}

/// What the network-function and service-chain controllers read besides [`Caches`]:
/// edgeplane's NFs and chains, and kinds that exist only where KubeVirt and Multus are
/// installed, so only these controllers watch them (started on their own, with
/// [`FunctionCaches::start`]).
#[derive(Clone, Debug)]
pub struct FunctionCaches {
    pub nfs: Cache<NetworkFunction>,
    pub chains: Cache<ServiceChain>,
    pub vms: Cache<VirtualMachine>,
    pub vmis: Cache<VirtualMachineInstance>,
    pub nads: Cache<NetworkAttachmentDefinition>,
}

impl FunctionCaches {
    /// What offers that target network functions and chains select from.
    pub fn targets(&self) -> FunctionTargets {
        FunctionTargets {
            nfs: self.nfs.clone(),
            chains: self.chains.clone(),
        }
    }

    pub fn start(client: &Client, shutdown: &CancellationToken) -> FunctionCaches {
        let cfg = watcher::Config::default;
        FunctionCaches {
            nfs: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            chains: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            vms: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            vmis: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            nads: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.nfs.is_ready()
            && self.chains.is_ready()
            && self.vms.is_ready()
            && self.vmis.is_ready()
            && self.nads.is_ready()
    }

    pub async fn wait_ready(&self) {
        self.nfs.wait_ready().await;
        self.chains.wait_ready().await;
        self.vms.wait_ready().await;
        self.vmis.wait_ready().await;
        self.nads.wait_ready().await;
    }
}

/// The NetworkFunctions and ServiceChains that offers may target, for the components
/// that expand offers (offer controller, scheduler) where the NF controllers are on.
#[derive(Clone, Debug)]
pub struct FunctionTargets {
    pub nfs: Cache<NetworkFunction>,
    pub chains: Cache<ServiceChain>,
}

impl FunctionTargets {
    pub fn start(client: &Client, shutdown: &CancellationToken) -> FunctionTargets {
        FunctionTargets {
            nfs: Cache::spawn(
                Api::all(client.clone()),
                watcher::Config::default(),
                shutdown.clone(),
            ),
            chains: Cache::spawn(
                Api::all(client.clone()),
                watcher::Config::default(),
                shutdown.clone(),
            ),
        }
    }

    pub fn inventory(&self) -> edgeplane_core::nf::targets::FunctionInventory {
        edgeplane_core::nf::targets::FunctionInventory::of_shared(
            &self.nfs.list(),
            &self.chains.list(),
        )
    }
}

/// What the descheduler reads to repair the lanes of service chains: the chains (whose
/// lanes it plans as units when it predicts a move) and KubeVirt's migrations (one in
/// flight per VMI). Started with `edgeplane descheduler --network-functions`.
#[derive(Clone, Debug)]
pub struct LaneCaches {
    pub chains: Cache<ServiceChain>,
    pub migrations: Cache<VirtualMachineInstanceMigration>,
}

impl LaneCaches {
    pub fn start(client: &Client, shutdown: &CancellationToken) -> LaneCaches {
        let cfg = watcher::Config::default;
        LaneCaches {
            chains: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
            migrations: Cache::spawn(Api::all(client.clone()), cfg(), shutdown.clone()),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.chains.is_ready() && self.migrations.is_ready()
    }

    pub async fn wait_ready(&self) {
        self.chains.wait_ready().await;
        self.migrations.wait_ready().await;
    }
}

/// What the reference network controller reads on every operation (nodes, and bindings to
/// find orphaned allocations), from caches instead of lists from the API server. A process
/// that already has [`Caches`] (the simulator) shares them ([`NetworkReads::from`]);
/// `edgeplane netctl serve` starts just these two ([`NetworkReads::start`]).
#[derive(Clone)]
pub struct NetworkReads {
    nodes: Cache<Node>,
    bindings: Cache<ConstraintPolicyBinding>,
}

impl NetworkReads {
    pub fn start(client: &Client, shutdown: &CancellationToken) -> NetworkReads {
        NetworkReads {
            nodes: Cache::spawn(
                Api::all(client.clone()),
                watcher::Config::default(),
                shutdown.clone(),
            ),
            bindings: Cache::spawn(
                Api::all(client.clone()),
                watcher::Config::default(),
                shutdown.clone(),
            ),
        }
    }
}

impl NetworkReads {
    /// Whether both caches have listed once (the readiness of `netctl serve`).
    pub fn is_ready(&self) -> bool {
        self.nodes.is_ready() && self.bindings.is_ready()
    }

    pub async fn wait_ready(&self) {
        self.nodes.wait_ready().await;
        self.bindings.wait_ready().await;
    }
}

impl From<&Caches> for NetworkReads {
    fn from(caches: &Caches) -> NetworkReads {
        NetworkReads {
            nodes: caches.nodes.clone(),
            bindings: caches.bindings.clone(),
        }
    }
}

impl edgeplane_netctl::CachedReads for NetworkReads {
    fn nodes(&self) -> Option<Vec<edgeplane_core::network::NodeInfo>> {
        self.nodes.is_ready().then(|| {
            self.nodes
                .list()
                .iter()
                .filter_map(|n| edgeplane_core::network::NodeInfo::from_node(n))
                .collect()
        })
    }

    fn binding_names(&self) -> Option<std::collections::BTreeSet<String>> {
        self.bindings.is_ready().then(|| {
            self.bindings
                .list()
                .iter()
                .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec};
    use edgeplane_netctl::CachedReads;

    /// `netctl serve`'s reads: nothing until the watches have listed (the controller then
    /// lists itself), then the nodes and bindings as they are, changes included.
    #[tokio::test(start_paused = true)]
    async fn network_reads_follow_nodes_and_bindings() {
        let config = ClusterConfig::default()
            .with_node(NodeSpec::new("edge-1-a"))
            .with_node(NodeSpec::new("edge-1-b"));
        let cluster = EmbeddedCluster::start(config).await;
        let crds: Vec<serde_json::Value> = edgeplane_api::crdgen::all()
            .into_iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        cluster
            .apply_objects(crds)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let reads = NetworkReads::start(&cluster.client(), &shutdown);
        assert!(reads.nodes().is_none() && reads.binding_names().is_none());
        reads.wait_ready().await;
        let names = |reads: &NetworkReads| -> Vec<String> {
            let mut names: Vec<String> = reads
                .nodes()
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.name)
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(&reads), ["edge-1-a", "edge-1-b"]);
        assert_eq!(reads.binding_names(), Some(Default::default()));

        cluster
            .load_yaml(
                "apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyBinding
metadata: {name: b-1, namespace: default}
spec:
  offer: o
  targets: {}
",
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let expected: std::collections::BTreeSet<String> = ["default/b-1".to_string()].into();
        let mut seen = None;
        for _ in 0..50 {
            seen = reads.binding_names();
            if seen.as_ref() == Some(&expected) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(seen, Some(expected));
        shutdown.cancel();
    }
}
