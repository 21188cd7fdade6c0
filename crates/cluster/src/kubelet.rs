//! Simulated kubelets, one loop for all nodes: they post a Ready status for nodes that
//! have none, admit pods bound to their node (rejecting those that do not fit, as the real
//! kubelet does), report them ContainerCreating, then Running and Ready after the
//! configured start-up delay (on tokio time), finish graceful deletions after the stop
//! delay, and stop working while their node is failed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, DeleteOptions, State, Subresource, WriteOptions, set_condition};
use crate::controller::{Batch, Feed, any_changed, record_event};
use crate::nodes;
use crate::object;
use crate::scheduler::{NodeInfo, Resources, fits, pod_requests};
use crate::store::{ChangeKind, ObjKey};

pub const KUBELET: &str = "kubelet";

/// Timing of the simulated kubelet.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// From admission (ContainerCreating) to Running and Ready.
    pub pod_start_delay: Duration,
    /// From a graceful delete to the pod's removal (capped by its grace period).
    pub pod_stop_delay: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            pod_start_delay: Duration::from_secs(2),
            pod_stop_delay: Duration::from_secs(1),
        }
    }
}

/// Nodes whose kubelet is down, and since when; shared with the cluster handle and the
/// node lifecycle controller.
pub type FailedNodes = Arc<Mutex<BTreeMap<String, tokio::time::Instant>>>;

enum Timer {
    Start(ObjKey, String),
    Stop(ObjKey, String),
}

struct Kubelet {
    api: Arc<ApiServer>,
    config: KubeletConfig,
    failed: FailedNodes,
    timers: mpsc::UnboundedSender<Timer>,
    /// Pods admitted on each node, with their requests.
    admitted: HashMap<String, BTreeMap<ObjKey, Resources>>,
    /// Pods with a start or stop timer running (by uid).
    starting: BTreeSet<String>,
    stopping: BTreeSet<String>,
    /// Pods whose sandbox failed (a missing network), by uid: their Event is out.
    sandbox_failed: BTreeSet<String>,
    node_index: HashMap<String, usize>,
    next_ip: HashMap<String, u32>,
}

fn phase(pod: &Value) -> &str {
    object::get_str(pod, &["status", "phase"]).unwrap_or("")
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

fn node_of(pod: &Value) -> &str {
    object::get_str(pod, &["spec", "nodeName"]).unwrap_or("")
}

impl Kubelet {
    fn is_failed(&self, node: &str) -> bool {
        self.failed
            .lock()
            .map(|f| f.contains_key(node))
            .unwrap_or(false)
    }

    fn index_of(&mut self, node: &str) -> usize {
        let n = self.node_index.len();
        *self.node_index.entry(node.to_string()).or_insert(n)
    }

    fn pod_ip(&mut self, node_obj: &Value) -> String {
        let name = object::name(node_obj).to_string();
        let cidr = object::get_str(node_obj, &["spec", "podCIDR"]).unwrap_or("10.244.0.0/24");
        let base = cidr.split('/').next().unwrap_or("10.244.0.0");
        let prefix = base
            .rsplit_once('.')
            .map_or("10.244.0", |(p, _)| p)
            .to_string();
        let n = self.next_ip.entry(name).or_insert(1);
        *n = *n % 253 + 1;
        format!("{prefix}.{}", *n + 1)
    }

    fn forget(&mut self, key: &ObjKey) {
        for pods in self.admitted.values_mut() {
            pods.remove(key);
        }
    }

    /// Posts a Ready status for a node that has none (a node created from YAML).
    fn adopt_node(&mut self, st: &mut State, node: &Value) {
        let name = object::name(node).to_string();
        if self.is_failed(&name)
            || node
                .get("status")
                .and_then(|s| s.get("conditions"))
                .is_some()
        {
            return;
        }
        let index = self.index_of(&name);
        let capacity = node
            .get("status")
            .and_then(|s| s.get("capacity").or_else(|| s.get("allocatable")))
            .cloned()
            .unwrap_or_else(|| json!({"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}));
        let mut status = nodes::ready_status(&name, index, &capacity, &st.now());
        if let Some(alloc) = node.get("status").and_then(|s| s.get("allocatable")) {
            status["allocatable"] = alloc.clone();
        }
        let mut new = node.clone();
        new["status"] = status;
        if let Some(def) = st.registry.find("", "v1", "nodes") {
            let _ = st.update(
                &def,
                None,
                &name,
                new,
                Subresource::Status,
                &WriteOptions::manager(KUBELET),
            );
        }
    }

    fn write_pod_status(st: &mut State, key: &ObjKey, new: Value) -> bool {
        let Some(def) = st.registry.find("", "v1", "pods") else {
            return false;
        };
        st.update(
            &def,
            Some(&key.0),
            &key.1,
            new,
            Subresource::Status,
            &WriteOptions::manager(KUBELET),
        )
        .is_ok()
    }

    fn handle_pod(&mut self, st: &mut State, key: &ObjKey) {
        let Some(pod) = st.store.get("pods", key) else {
            self.forget(key);
            return;
        };
        let node = node_of(&pod).to_string();
        if node.is_empty() || self.is_failed(&node) {
            return;
        }
        let Some(node_obj) = st.store.get("nodes", &(String::new(), node.clone())) else {
            return;
        };
        if !nodes::is_ready(&node_obj) {
            return;
        }
        let uid = object::uid(&pod).to_string();
        if object::deletion_timestamp(&pod).is_some() {
            if self.stopping.insert(uid.clone()) {
                let grace = pod
                    .get("metadata")
                    .and_then(|m| m.get("deletionGracePeriodSeconds"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .max(0) as u64;
                let delay = self.config.pod_stop_delay.min(Duration::from_secs(grace));
                let tx = self.timers.clone();
                let k = key.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Timer::Stop(k, uid));
                });
                record_event(st, &pod, "Normal", "Killing", "Stopping container", KUBELET);
            }
            return;
        }
        if matches!(phase(&pod), "Succeeded" | "Failed") {
            self.forget(key);
            return;
        }
        if phase(&pod) == "Running" && !pod_ready(&pod) && !self.starting.contains(&uid) {
            // Back from a node failure: the node controller had marked it not Ready.
            let now = st.now();
            let mut new = (*pod).clone();
            set_condition(&mut new, "Ready", "True", None, None, &now);
            set_condition(&mut new, "ContainersReady", "True", None, None, &now);
            Self::write_pod_status(st, key, new);
            return;
        }
        if phase(&pod) != "Pending" || self.starting.contains(&uid) {
            return;
        }
        if object::get_path(&pod, &["status", "containerStatuses"]).is_some() {
            // Admitted before (e.g. across a resync): just finish starting it.
            self.schedule_start(key, uid);
            return;
        }
        // Admission: the pod must fit with what already runs here.
        let (Ok(typed), Ok(node_typed)) = (Pod::deserialize(&*pod), Node::deserialize(&*node_obj))
        else {
            return;
        };
        let info = NodeInfo::from_node(&node_typed);
        let requests = pod_requests(&typed);
        let mut used = Resources::new();
        for (k, r) in self.admitted.get(&node).into_iter().flatten() {
            if k != key {
                for (name, v) in r {
                    *used.entry(name.clone()).or_default() += v;
                }
            }
        }
        let mut info_ignoring_taints = info.clone();
        info_ignoring_taints.taints.clear();
        info_ignoring_taints.unschedulable = false;
        if let Err(misfit) = fits(&typed, &requests, &info_ignoring_taints, &used) {
            let (reason, message) = match &misfit {
                crate::scheduler::Misfit::Insufficient(r) => (
                    format!("OutOf{r}"),
                    format!("Pod was rejected: Node didn't have enough resource: {r}"),
                ),
                crate::scheduler::Misfit::TooManyPods => (
                    "OutOfpods".to_string(),
                    "Pod was rejected: Node didn't have enough resource: pods".to_string(),
                ),
                _ => (
                    "NodeAffinity".to_string(),
                    "Pod was rejected: Predicate NodeAffinity failed".to_string(),
                ),
            };
            let mut new = (*pod).clone();
            object::set_path(&mut new, &["status", "phase"], json!("Failed"));
            object::set_path(&mut new, &["status", "reason"], json!(reason));
            object::set_path(&mut new, &["status", "message"], json!(message));
            Self::write_pod_status(st, key, new);
            record_event(st, &pod, "Warning", &reason, &message, KUBELET);
            return;
        }
        self.admitted
            .entry(node.clone())
            .or_default()
            .insert(key.clone(), requests);
        let now = st.now();
        let host_ip = nodes::node_ip(self.index_of(&node));
        let mut new = (*pod).clone();
        let statuses: Vec<Value> = containers(&pod)
            .iter()
            .map(|(name, image)| {
                json!({"name": name, "image": image, "imageID": "", "ready": false, "started": false,
                       "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}})
            })
            .collect();
        object::set_path(&mut new, &["status", "containerStatuses"], json!(statuses));
        object::set_path(&mut new, &["status", "hostIP"], json!(host_ip));
        object::set_path(&mut new, &["status", "hostIPs"], json!([{"ip": host_ip}]));
        object::set_path(&mut new, &["status", "startTime"], json!(now));
        for (t, s) in [
            ("PodReadyToStartContainers", "False"),
            ("Initialized", "True"),
            ("Ready", "False"),
            ("ContainersReady", "False"),
            ("PodScheduled", "True"),
        ] {
            let reason =
                (s == "False" && t != "PodReadyToStartContainers").then_some("ContainersNotReady");
            set_condition(&mut new, t, s, reason, None, &now);
        }
        if Self::write_pod_status(st, key, new) {
            self.schedule_start(key, uid);
        }
    }

    fn schedule_start(&mut self, key: &ObjKey, uid: String) {
        if !self.starting.insert(uid.clone()) {
            return;
        }
        let tx = self.timers.clone();
        let delay = self.config.pod_start_delay;
        let k = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Timer::Start(k, uid));
        });
    }

    fn start(&mut self, st: &mut State, key: &ObjKey, uid: &str) {
        self.starting.remove(uid);
        let Some(pod) = st.store.get("pods", key) else {
            return;
        };
        if object::uid(&pod) != uid
            || phase(&pod) != "Pending"
            || object::deletion_timestamp(&pod).is_some()
            || self.is_failed(node_of(&pod))
        {
            return;
        }
        let Some(node_obj) = st
            .store
            .get("nodes", &(String::new(), node_of(&pod).to_string()))
        else {
            return;
        };
        let now = st.now();
        let ip = self.pod_ip(&node_obj);
        let pod = match crate::multus::attach(st, &pod, &ip) {
            crate::multus::Attach::Nothing => pod,
            crate::multus::Attach::Failed(message) => {
                // The kubelet retries the sandbox; the Event is published once per pod.
                if self.sandbox_failed.insert(uid.to_string()) {
                    record_event(
                        st,
                        &pod,
                        "Warning",
                        "FailedCreatePodSandBox",
                        &message,
                        KUBELET,
                    );
                }
                self.schedule_start(key, uid.to_string());
                return;
            }
            crate::multus::Attach::Attached(status, events) => {
                self.sandbox_failed.remove(uid);
                let Some(def) = st.registry.find("", "v1", "pods") else {
                    return;
                };
                let mut annotated = (*pod).clone();
                object::set_path(
                    &mut annotated,
                    &[
                        "metadata",
                        "annotations",
                        edgeplane_core::multus::NETWORK_STATUS_ANNOTATION,
                    ],
                    json!(status),
                );
                let Ok(updated) = st.update(
                    &def,
                    Some(&key.0),
                    &key.1,
                    annotated,
                    Subresource::Main,
                    &WriteOptions::manager("multus"),
                ) else {
                    return;
                };
                for message in events {
                    record_event(st, &updated, "Normal", "AddedInterface", &message, "multus");
                }
                updated
            }
        };
        let mut new = (*pod).clone();
        let statuses: Vec<Value> = containers(&pod)
            .iter()
            .enumerate()
            .map(|(i, (name, image))| {
                json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
                       "containerID": format!("sim://{uid}-{i}"), "ready": true, "started": true,
                       "restartCount": 0, "state": {"running": {"startedAt": now}}})
            })
            .collect();
        object::set_path(&mut new, &["status", "phase"], json!("Running"));
        object::set_path(&mut new, &["status", "containerStatuses"], json!(statuses));
        object::set_path(&mut new, &["status", "podIP"], json!(ip));
        object::set_path(&mut new, &["status", "podIPs"], json!([{"ip": ip}]));
        for t in [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ] {
            set_condition(&mut new, t, "True", None, None, &now);
        }
        if Self::write_pod_status(st, key, new) {
            record_event(st, &pod, "Normal", "Started", "Started container", KUBELET);
        }
    }

    fn stop(&mut self, st: &mut State, key: &ObjKey, uid: &str) {
        self.stopping.remove(uid);
        let Some(pod) = st.store.get("pods", key) else {
            return;
        };
        if object::uid(&pod) != uid || self.is_failed(node_of(&pod)) {
            return;
        }
        self.forget(key);
        if let Some(def) = st.registry.find("", "v1", "pods") {
            let opts = DeleteOptions {
                grace_period_seconds: Some(0),
                precondition_uid: Some(uid.to_string()),
                ..Default::default()
            };
            let _ = st.delete(&def, Some(&key.0), &key.1, &opts);
        }
    }

    fn resync(&mut self, st: &mut State) {
        let nodes: Vec<Arc<Value>> = st
            .store
            .range("nodes", None, None)
            .map(|n| n.value_arc())
            .collect();
        for n in nodes {
            self.index_of(object::name(&n));
            self.adopt_node(st, &n);
        }
        self.admitted.clear();
        let pods: Vec<Arc<Value>> = st
            .store
            .range("pods", None, None)
            .map(|p| p.value_arc())
            .collect();
        for p in &pods {
            let node = node_of(p);
            if !node.is_empty()
                && !matches!(phase(p), "Succeeded" | "Failed")
                && object::get_path(p, &["status", "containerStatuses"]).is_some()
                && let Ok(typed) = Pod::deserialize(&**p)
            {
                self.admitted
                    .entry(node.to_string())
                    .or_default()
                    .insert(crate::store::key_of(p), pod_requests(&typed));
            }
        }
        for p in pods {
            self.handle_pod(st, &crate::store::key_of(&p));
        }
    }

    /// Pods bound to a node, for when the node comes (back) up.
    fn pods_on(st: &State, node: &str) -> Vec<ObjKey> {
        st.store
            .range("pods", None, None)
            .filter(|p| p.node_name == node)
            .map(|p| p.key.clone())
            .collect()
    }
}

fn containers(pod: &Value) -> Vec<(String, String)> {
    pod.get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        c.get("image")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the kubelets until shutdown.
pub(crate) async fn run(
    api: Arc<ApiServer>,
    config: KubeletConfig,
    failed: FailedNodes,
    shutdown: CancellationToken,
) {
    let mut feeds = vec![Feed::new(&api, "nodes"), Feed::new(&api, "pods")];
    let (tx, mut timers) = mpsc::unbounded_channel();
    let mut k = Kubelet {
        api: api.clone(),
        config,
        failed,
        timers: tx,
        admitted: HashMap::new(),
        starting: BTreeSet::new(),
        stopping: BTreeSet::new(),
        sandbox_failed: BTreeSet::new(),
        node_index: HashMap::new(),
        next_ip: HashMap::new(),
    };
    {
        let api = k.api.clone();
        let mut st = api.lock();
        k.resync(&mut st);
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(timer) = timers.recv() => {
                let api = k.api.clone();
                let mut st = api.lock();
                match timer {
                    Timer::Start(key, uid) => k.start(&mut st, &key, &uid),
                    Timer::Stop(key, uid) => k.stop(&mut st, &key, &uid),
                }
                continue;
            }
            _ = any_changed(&mut feeds) => {}
        }
        let api = k.api.clone();
        let batches: Vec<Batch> = feeds.iter_mut().map(|f| f.fetch(&api)).collect();
        let mut st = api.lock();
        let mut resync = false;
        let mut pods: BTreeSet<ObjKey> = BTreeSet::new();
        for (i, batch) in batches.into_iter().enumerate() {
            match batch {
                Batch::Resync => resync = true,
                Batch::Changes(changes) => {
                    for c in changes {
                        let key = c.object.key.clone();
                        if i == 0 {
                            if c.kind == ChangeKind::Deleted {
                                continue;
                            }
                            k.index_of(&key.1);
                            let node = c.object.value();
                            let became_ready = nodes::is_ready(&node)
                                && !c.old.as_ref().is_some_and(|o| nodes::is_ready(&o.value()));
                            k.adopt_node(&mut st, &node);
                            if became_ready {
                                pods.extend(Kubelet::pods_on(&st, &key.1));
                            }
                        } else if c.kind == ChangeKind::Deleted {
                            k.forget(&key);
                        } else {
                            pods.insert(key);
                        }
                    }
                }
            }
        }
        if resync {
            k.resync(&mut st);
            continue;
        }
        for key in pods {
            k.handle_pod(&mut st, &key);
        }
    }
}
