//! The handle: start an embedded cluster, get a `kube::Client` for it, load objects, fail
//! and recover nodes, serve it over HTTP, shut it down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, PatchType, PodAdmission, Subresource, WriteOptions, to_served};
use crate::clock::VirtualClock;
use crate::controller::record_event;
use crate::error::ApiError;
use crate::http::{ClusterService, Handler, HttpConfig};
use crate::kubelet::{self, FailedNodes, KubeletConfig};
use crate::lifecycle::LifecycleConfig;
use crate::nodes::{self, NodeSpec};
use crate::object;

/// How to start an embedded cluster. `ClusterConfig::default()` gives a cluster with no
/// nodes, every controller running, and virtual time anchored at the wall clock.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// What the virtual clock reads at start; the wall clock when `None`.
    pub start_time: Option<Timestamp>,
    /// Seed of uids and generated names (a simulation with the same seed replays).
    pub seed: u64,
    /// Changes of each resource kept for watches; older versions answer 410 Gone.
    pub watch_history: usize,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
    /// Timing of the simulated kubelets.
    pub kubelet: KubeletConfig,
    /// Timing of what happens to a node that stops responding and to its pods.
    pub lifecycle: LifecycleConfig,
    /// Run the default-scheduler stand-in.
    pub scheduler: bool,
    /// Run the workload and disruption controllers.
    pub controllers: bool,
    /// Delete events older than this (the API server's `--event-ttl`, 1h by default).
    pub event_ttl: Option<Duration>,
    /// Nodes to add at start.
    pub nodes: Vec<NodeSpec>,
    /// Namespace of the client and of loaded objects that name none.
    pub default_namespace: String,
    /// Mutating admission steps for pod creates (stand-ins for mutating webhooks).
    pub pod_admission: Vec<PodAdmission>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            start_time: None,
            seed: 1,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(60),
            kubelet: KubeletConfig::default(),
            lifecycle: LifecycleConfig::default(),
            scheduler: true,
            controllers: true,
            event_ttl: Some(Duration::from_secs(3600)),
            nodes: Vec::new(),
            default_namespace: "default".into(),
            pod_admission: Vec::new(),
        }
    }
}

impl ClusterConfig {
    /// Adds `count` default nodes named `<prefix>-0`, `<prefix>-1`, ...
    pub fn with_nodes(mut self, prefix: &str, count: usize) -> Self {
        self.nodes
            .extend((0..count).map(|i| NodeSpec::new(format!("{prefix}-{i}"))));
        self
    }

    pub fn with_node(mut self, node: NodeSpec) -> Self {
        self.nodes.push(node);
        self
    }

    pub fn start_time(mut self, t: Timestamp) -> Self {
        self.start_time = Some(t);
        self
    }

    pub fn pod_start_delay(mut self, d: Duration) -> Self {
        self.kubelet.pod_start_delay = d;
        self
    }

    /// Adds a mutating admission step run on every pod create, as a mutating webhook
    /// would be (for example one that adds a scheduling gate).
    pub fn admission(mut self, hook: PodAdmission) -> Self {
        self.pod_admission.push(hook);
        self
    }
}

/// Failures of the handle's own operations.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: ApiError,
    },
    #[error("YAML document {index}: {message}")]
    Yaml { index: usize, message: String },
    #[error("object {index} ({api_version} {kind}): {message}")]
    Object {
        index: usize,
        api_version: String,
        kind: String,
        message: String,
    },
    #[error("no node named {0:?}")]
    NoSuchNode(String),
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running embedded cluster.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
/// let cluster = EmbeddedCluster::start(ClusterConfig::default().with_nodes("node", 3)).await;
/// let client = cluster.client();
/// cluster.load_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: nginx}]}").await?;
/// cluster.fail_node("node-1").await?;
/// tokio::time::sleep(std::time::Duration::from_secs(3600)).await; // an hour, instantly with paused time
/// cluster.shutdown().await;
/// # Ok(()) }
/// ```
pub struct EmbeddedCluster {
    api: Arc<ApiServer>,
    handler: Handler,
    client: kube::Client,
    failed: FailedNodes,
    lifecycle_wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    default_namespace: String,
}

impl EmbeddedCluster {
    /// Starts the API server, the simulated kubelets, scheduler and controllers, and adds
    /// the configured nodes. Call it inside the tokio runtime whose time the cluster should
    /// follow (a paused one for simulations).
    pub async fn start(config: ClusterConfig) -> Self {
        let anchor = config.start_time.unwrap_or_else(Timestamp::now);
        let clock = VirtualClock::new(anchor);
        let api = Arc::new(ApiServer::new(clock, config.watch_history, config.seed));
        // Built-in admission runs before the webhooks' stand-ins.
        api.add_pod_admission(crate::lifecycle::default_tolerations(&config.lifecycle));
        for hook in &config.pod_admission {
            api.add_pod_admission(hook.clone());
        }
        let shutdown = CancellationToken::new();
        let handler = Handler {
            api: api.clone(),
            config: HttpConfig {
                bookmark_interval: config.bookmark_interval,
                ..Default::default()
            },
            shutdown: shutdown.clone(),
        };
        let failed: FailedNodes = Arc::new(Mutex::new(BTreeMap::new()));
        let lifecycle_wake = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(kubelet::run(
            api.clone(),
            config.kubelet.clone(),
            failed.clone(),
            shutdown.clone(),
        )));
        if config.scheduler {
            tasks.push(tokio::spawn(crate::scheduler::run(
                api.clone(),
                shutdown.clone(),
            )));
        }
        if config.controllers {
            tasks.push(tokio::spawn(crate::lifecycle::run(
                api.clone(),
                config.lifecycle.clone(),
                failed.clone(),
                lifecycle_wake.clone(),
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(crate::workloads::run(
                api.clone(),
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(crate::disruption::run(
                api.clone(),
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(crate::kubevirt::run(
                api.clone(),
                shutdown.clone(),
            )));
        }
        if let Some(ttl) = config.event_ttl {
            tasks.push(tokio::spawn(crate::disruption::expire_events(
                api.clone(),
                ttl,
                shutdown.clone(),
            )));
        }
        let client = kube::Client::new(
            ClusterService::new(handler.clone()),
            config.default_namespace.clone(),
        );
        let cluster = EmbeddedCluster {
            api,
            handler,
            client,
            failed,
            lifecycle_wake,
            shutdown,
            tasks,
            default_namespace: config.default_namespace,
        };
        for node in &config.nodes {
            if let Err(e) = cluster.add_node(node.clone()).await {
                tracing::warn!(node = %node.name, error = %e, "adding a node failed");
            }
        }
        cluster
    }

    /// A client for the cluster, as `kube::Client::try_default()` would give for a real one.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client whose requests act as `user` (they carry the `Impersonate-User` and
    /// `Impersonate-Group` headers), for admission policies that judge who writes.
    pub fn client_as(&self, user: &crate::api::UserInfo) -> kube::Client {
        let headers: Vec<(&'static str, http::HeaderValue)> =
            std::iter::once(("impersonate-user", user.username.as_str()))
                .chain(
                    user.groups
                        .iter()
                        .map(|g| ("impersonate-group", g.as_str())),
                )
                .filter_map(|(k, v)| Some((k, http::HeaderValue::from_str(v).ok()?)))
                .collect();
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<kube::client::Body>| {
                for (k, v) in &headers {
                    req.headers_mut().append(*k, v.clone());
                }
                req
            })
            .service(self.service());
        kube::Client::new(service, "default")
    }

    /// The cluster as a `tower::Service` (to build more clients, e.g. with another default
    /// namespace: `kube::Client::new(cluster.service(), "team-a")`).
    pub fn service(&self) -> ClusterService {
        ClusterService::new(self.handler.clone())
    }

    /// The virtual clock every timestamp in the cluster comes from.
    pub fn clock(&self) -> VirtualClock {
        self.api.clock()
    }

    /// The API server itself, for in-process tools that need more than the client.
    pub fn api(&self) -> &Arc<ApiServer> {
        &self.api
    }

    /// Adds a Ready node.
    pub async fn add_node(&self, node: NodeSpec) -> Result<(), ClusterError> {
        let mut st = self.api.lock();
        let index = st.store.len("nodes");
        let obj = node.to_object(index, &st.now());
        let def = st
            .registry
            .find("", "v1", "nodes")
            .ok_or_else(|| ClusterError::NoSuchNode(node.name.clone()))?;
        st.create(&def, None, obj, &WriteOptions::manager("edgeplane-cluster"))
            .map_err(|source| ClusterError::Api {
                what: format!("adding node {}", node.name),
                source,
            })?;
        Ok(())
    }

    /// Creates or updates objects (server-side apply as `edgeplane-cluster`), including
    /// their status where the object has one. CRDs and Namespaces go first; objects of
    /// namespaced kinds without a namespace go to the default namespace.
    pub async fn apply_objects(
        &self,
        objects: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<Value>, ClusterError> {
        let mut objects: Vec<(usize, Value)> = objects.into_iter().enumerate().collect();
        let rank = |v: &Value| match v.get("kind").and_then(Value::as_str) {
            Some("CustomResourceDefinition") => 0,
            Some("Namespace") => 1,
            _ => 2,
        };
        objects.sort_by_key(|(i, v)| (rank(v), *i));
        let opts = WriteOptions::manager("edgeplane-cluster");
        let mut out = Vec::new();
        for (index, obj) in objects {
            let api_version = obj
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let kind = obj
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let fail = |message: String| ClusterError::Object {
                index,
                api_version: api_version.clone(),
                kind: kind.clone(),
                message,
            };
            let mut st = self.api.lock();
            let def = st.registry.find_kind(&api_version, &kind).ok_or_else(|| {
                fail(format!(
                    "the server has no resource for {api_version} {kind}"
                ))
            })?;
            let name = object::name(&obj).to_string();
            if name.is_empty() {
                return Err(fail("metadata.name is required".into()));
            }
            let ns = if def.namespaced {
                match object::namespace(&obj) {
                    "" => Some(self.default_namespace.clone()),
                    ns => Some(ns.to_string()),
                }
            } else {
                None
            };
            let mut obj = obj.clone();
            if let Some(ns) = &ns {
                object::set_meta(&mut obj, "namespace", json!(ns));
            }
            let (result, _) = st
                .patch(
                    &def,
                    ns.as_deref(),
                    &name,
                    PatchType::Apply { force: true },
                    &obj,
                    Subresource::Main,
                    &opts,
                )
                .map_err(|e| fail(e.message))?;
            let result = if def.status_subresource && obj.get("status").is_some() {
                st.patch(
                    &def,
                    ns.as_deref(),
                    &name,
                    PatchType::Apply { force: true },
                    &obj,
                    Subresource::Status,
                    &opts,
                )
                .map_err(|e| fail(e.message))?
                .0
            } else {
                result
            };
            out.push((*to_served(&def, &result)).clone());
        }
        Ok(out)
    }

    /// Applies every document of a multi-document YAML string (see `apply_objects`).
    pub async fn load_yaml(&self, yaml: &str) -> Result<Vec<Value>, ClusterError> {
        let docs = parse_yaml_documents(yaml)?;
        self.apply_objects(docs).await
    }

    /// Fails a node: its kubelet stops posting status and running pods. Nothing shows at
    /// once, as on a real cluster: after the node-monitor grace period the node lifecycle
    /// controller marks it NotReady and taints it `unreachable`, and the taint manager
    /// deletes its pods when their tolerations run out ([`crate::lifecycle`]).
    pub async fn fail_node(&self, name: &str) -> Result<(), ClusterError> {
        {
            let st = self.api.lock();
            if st
                .store
                .get("nodes", &(String::new(), name.to_string()))
                .is_none()
            {
                return Err(ClusterError::NoSuchNode(name.to_string()));
            }
        }
        if let Ok(mut f) = self.failed.lock() {
            f.entry(name.to_string())
                .or_insert_with(tokio::time::Instant::now);
        }
        self.lifecycle_wake.notify_one();
        Ok(())
    }

    /// Recovers a failed node: its kubelet posts Ready again (the node lifecycle
    /// controller lifts the `unreachable` taints), finishes the deletions of its pods that
    /// were evicted meanwhile, and reports the others Ready again.
    pub async fn recover_node(&self, name: &str) -> Result<(), ClusterError> {
        let mut st = self.api.lock();
        let key = (String::new(), name.to_string());
        let node = st
            .store
            .get("nodes", &key)
            .ok_or_else(|| ClusterError::NoSuchNode(name.to_string()))?;
        if let Ok(mut f) = self.failed.lock() {
            f.remove(name);
        }
        self.lifecycle_wake.notify_one();
        if nodes::is_ready(&node) {
            // Back before the grace period ran out: nobody noticed.
            return Ok(());
        }
        let now = st.now();
        let mut new = (*node).clone();
        let healthy = nodes::ready_status(name, 0, &json!({}), &now);
        new["status"]["conditions"] = healthy["conditions"].clone();
        let taints = nodes::without_lifecycle_taints(&node);
        crate::lifecycle::write_node(&mut st, name, new, taints).map_err(|source| {
            ClusterError::Api {
                what: format!("updating node {name}"),
                source,
            }
        })?;
        if let Some(n) = st.store.get("nodes", &key) {
            record_event(
                &mut st,
                &n,
                "Normal",
                "NodeReady",
                &format!("Node {name} status is now: NodeReady"),
                "node-controller",
            );
        }
        Ok(())
    }

    /// Serves the cluster over plain HTTP (for kubectl) until shutdown with the default
    /// limits (kube-apiserver's); returns the bound address (use port 0 for any free port).
    pub async fn serve(&self, addr: SocketAddr) -> Result<SocketAddr, ClusterError> {
        self.serve_with_limits(addr, edgeplane_serve::HttpLimits::default())
            .await
    }

    /// [`EmbeddedCluster::serve`] within `limits`.
    pub async fn serve_with_limits(
        &self,
        addr: SocketAddr,
        limits: edgeplane_serve::HttpLimits,
    ) -> Result<SocketAddr, ClusterError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ClusterError::Serve { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ClusterError::Serve { addr, source })?;
        tokio::spawn(crate::http::serve(self.handler.clone(), listener, limits));
        Ok(local)
    }

    /// Stops every controller and server task and ends open watches.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl std::fmt::Debug for EmbeddedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCluster")
            .field("api", &self.api)
            .field("default_namespace", &self.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A kubeconfig that points kubectl at a served cluster.
pub fn kubeconfig(addr: SocketAddr, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: edgeplane\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: edgeplane\n  context:\n    cluster: edgeplane\n    user: edgeplane\n    namespace: {namespace}\ncurrent-context: edgeplane\nusers:\n- name: edgeplane\n  user: {{}}\n"
    )
}

/// Splits multi-document YAML into JSON values, skipping empty documents and expanding
/// lists (`kind: List`, `PodList`, ...), as every manifest reader does
/// (`edgeplane_core::manifests::parse_documents`).
pub fn parse_yaml_documents(yaml: &str) -> Result<Vec<Value>, ClusterError> {
    let docs = edgeplane_core::manifests::parse_documents("<yaml>", yaml).map_err(|e| {
        // `<yaml>[3]: message` -> document 3.
        let index = e
            .location
            .strip_prefix("<yaml>[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        ClusterError::Yaml {
            index,
            message: match &e.field {
                Some(field) => format!("{field}: {}", e.message),
                None => e.message,
            },
        }
    })?;
    Ok(docs.into_iter().map(|d| d.value).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_yaml() {
        let docs = parse_yaml_documents(
            "---\n# comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["name"], "b");
        assert!(parse_yaml_documents("- just\n- a list\n").is_err());
        assert!(parse_yaml_documents("a: [unclosed\n").is_err());
    }

    /// Pods created by anyone (a client, a ReplicaSet) pass through the admission steps;
    /// other objects do not.
    #[tokio::test(start_paused = true)]
    async fn pod_admission_mutates_pod_creates() {
        let gate = PodAdmission::new(|pod: &mut Value| {
            if pod["metadata"]["labels"]["gated"] == "yes" {
                pod["spec"]["schedulingGates"] = json!([{"name": "example.com/hold"}]);
            }
        });
        let cluster = EmbeddedCluster::start(
            ClusterConfig::default()
                .with_nodes("node", 1)
                .admission(gate),
        )
        .await;
        cluster
            .load_yaml(
                "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: held}\nspec:\n  replicas: 1\n  selector: {matchLabels: {gated: \"yes\"}}\n  template:\n    metadata: {labels: {gated: \"yes\"}}\n    spec: {containers: [{name: c, image: i}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: free}\nspec: {containers: [{name: c, image: i}]}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, labels: {gated: \"yes\"}}\n",
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let st = cluster.api().lock();
        let pods: Vec<Value> = st
            .store
            .range("pods", Some("default"), None)
            .map(|p| p.value())
            .collect();
        assert_eq!(pods.len(), 2);
        let held = pods
            .iter()
            .find(|p| p["metadata"]["name"] != "free")
            .unwrap();
        assert_eq!(
            held["spec"]["schedulingGates"][0]["name"],
            "example.com/hold"
        );
        assert!(
            held["spec"].get("nodeName").is_none(),
            "a gated pod is not bound"
        );
        let free = pods
            .iter()
            .find(|p| p["metadata"]["name"] == "free")
            .unwrap();
        assert!(free["spec"].get("schedulingGates").is_none());
        assert_eq!(free["spec"]["nodeName"], "node-0");
        let cm = st
            .store
            .get("configmaps", &("default".into(), "cm".into()))
            .unwrap();
        assert!(cm.get("spec").is_none());
    }
}
