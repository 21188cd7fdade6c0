//! The controller's state in the API: reading it, writing allocations and activations
//! (deciding again on a conflict), and reconciling.

use std::collections::BTreeSet;
use std::sync::Arc;

use edgeplane_api::{
    ConstraintPolicyBinding, NetworkPathCatalogue, NetworkTopology, PathAllocation,
};
use edgeplane_core::clock::Clock;
use edgeplane_core::mitigation::{self, Catalogue};
use edgeplane_core::network::{NetworkGraph, NodeInfo};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::config::{CachedReads, ReferenceConfig, RefusalReporter};
use super::status::catalogue_status;
use crate::controller::NetctlError;

/// How many times an operation re-reads and decides again when its write conflicts.
const MAX_ATTEMPTS: usize = 5;

/// The reference network controller. Implements [`NetworkController`] in process;
/// [`serve`] puts it behind gRPC.
///
/// [`NetworkController`]: crate::NetworkController
/// [`serve`]: super::serve
pub struct ReferenceController {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    pub(super) config: ReferenceConfig,
    lock: tokio::sync::Mutex<()>,
    cached: Option<Arc<dyn CachedReads>>,
    pub(super) refusals: Option<Arc<dyn RefusalReporter>>,
}

/// What the controller reads before deciding.
pub(crate) struct State {
    /// The network without the paths this controller's catalogue activated: a binding
    /// relies only on the paths it holds an allocation of, so every binding that needs a
    /// path counts against its capacity.
    pub(super) graph: NetworkGraph,
    /// The catalogue object, when it exists.
    pub(super) object: Option<NetworkPathCatalogue>,
    pub(super) catalogue: Catalogue,
    pub(crate) allocations: Vec<PathAllocation>,
    pub(super) now: Timestamp,
}

/// What an operation decided.
pub(super) enum Step<T> {
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
            refusals: None,
        }
    }

    /// Reports refused remote calls about existing bindings to `reporter`.
    pub fn with_refusal_reporter(
        mut self,
        reporter: Arc<dyn RefusalReporter>,
    ) -> ReferenceController {
        self.refusals = Some(reporter);
        self
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

    pub(super) fn missing_catalogue(&self) -> String {
        format!("no NetworkPathCatalogue named {:?}", self.config.catalogue)
    }

    /// Reads, decides and writes under the process's lock, deciding again when the write
    /// conflicts with another writer.
    pub(super) async fn transact<T>(
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

    /// What a call's binding (`namespace/name`) occupies: the nodes of its Pod targets and
    /// its Site targets; `None` when it does not exist.
    pub(super) async fn binding_facts(
        &self,
        binding: &str,
    ) -> Result<Option<crate::authorize::BindingFacts>, NetctlError> {
        use k8s_openapi::api::core::v1::Pod;
        let Some((namespace, name)) = binding.split_once('/') else {
            return Err(NetctlError::InvalidArgument(format!(
                "binding: {binding:?} is not namespace/name"
            )));
        };
        let api: Api<ConstraintPolicyBinding> = Api::namespaced(self.client.clone(), namespace);
        let found = api
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&format!("reading binding {binding}"), e))?;
        let Some(found) = found else {
            return Ok(None);
        };
        let mut facts = crate::authorize::BindingFacts::default();
        for target in found.spec.targets.values() {
            match target.kind {
                edgeplane_api::TargetKind::Pod => {
                    let namespace = target.namespace.as_deref().unwrap_or(namespace);
                    let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                    let pod = pods.get_opt(&target.name).await.map_err(|e| {
                        kube_error(&format!("reading pod {namespace}/{}", target.name), e)
                    })?;
                    if let Some(node) = pod.and_then(|p| p.spec).and_then(|s| s.node_name) {
                        facts.nodes.insert(node);
                    }
                }
                edgeplane_api::TargetKind::Site => {
                    facts.sites.insert(target.name.clone());
                }
                _ => {}
            }
        }
        Ok(Some(facts))
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
