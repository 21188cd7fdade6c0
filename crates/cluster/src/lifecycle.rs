//! What kube-controller-manager does about nodes that stop responding, with the real
//! defaults, on virtual time:
//!
//! - the **node lifecycle controller**: a node whose kubelet has been silent for the
//!   node-monitor grace period (`--node-monitor-grace-period`, 50 s since Kubernetes 1.32;
//!   40 s before) gets Ready `Unknown`, the `node.kubernetes.io/unreachable` `NoSchedule`
//!   and `NoExecute` taints, and its pods Ready `False` (a `NodeNotReady` Event each);
//! - the **taint manager**: a pod on a node with `NoExecute` taints is deleted (gracefully:
//!   it stays Terminating while the kubelet is gone) once the shortest of its tolerations
//!   runs out ([`edgeplane_core::placement::no_execute`]); the API server's
//!   `DefaultTolerationSeconds` admission gives every pod 300 s for `not-ready` and
//!   `unreachable` ([`default_tolerations`]), DaemonSet pods tolerate them forever;
//! - the **pod garbage collector** (every 20 s): force-deletes pods bound to a node that no
//!   longer exists (after 40 s of quarantine) and terminating pods that were never
//!   scheduled, and deletes the oldest finished pods beyond `--terminated-pod-gc-threshold`
//!   (12,500).
//!
//! So, as on a real cluster: a ReplicaSet replaces a pod of a failed node only when the
//! taint manager deletes it (5 min 50 s after the failure by default), and a StatefulSet
//! does not replace its pod until the pod object is gone (the node recovers, the node is
//! deleted, or someone force-deletes the pod).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use edgeplane_core::placement::{self, NoExecute};
use k8s_openapi::api::core::v1 as api;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{
    ApiServer, DeleteOptions, PodAdmission, State, Subresource, WriteOptions, set_condition,
};
use crate::controller::{Batch, Feed, any_changed, record_event};
use crate::error::ApiError;
use crate::kubelet::FailedNodes;
use crate::nodes;
use crate::object;
use crate::store::{ChangeKind, ObjKey};

const NODE_CONTROLLER: &str = "node-controller";
const TAINT_MANAGER: &str = "taint-eviction-controller";
const POD_GC: &str = "pod-garbage-collector";

/// Timings of the node lifecycle, with Kubernetes' defaults. A scenario may shorten them
/// (docs/simulator.md); an application shortens its own with `tolerationSeconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// How long a node may be silent before it is marked NotReady (Ready Unknown) and
    /// tainted `unreachable`.
    pub node_monitor_grace_period: Duration,
    /// `tolerationSeconds` the API server gives pods for `node.kubernetes.io/not-ready`.
    pub default_not_ready_toleration_seconds: i64,
    /// `tolerationSeconds` the API server gives pods for `node.kubernetes.io/unreachable`.
    pub default_unreachable_toleration_seconds: i64,
    /// Finished pods kept before the oldest are deleted.
    pub terminated_pod_gc_threshold: usize,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            node_monitor_grace_period: Duration::from_secs(50),
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            terminated_pod_gc_threshold: 12_500,
        }
    }
}

/// How often the pod garbage collector looks (kube-controller-manager's `gcCheckPeriod`).
const GC_PERIOD: Duration = Duration::from_secs(20);
/// How long a pod bound to a missing node waits before it is collected (PodGC's
/// quarantine, which lets a node that is being created catch up).
const ORPHAN_QUARANTINE: Duration = Duration::from_secs(40);

/// The `DefaultTolerationSeconds` admission plugin as a pod admission step.
pub fn default_tolerations(config: &LifecycleConfig) -> PodAdmission {
    let (not_ready, unreachable) = (
        config.default_not_ready_toleration_seconds,
        config.default_unreachable_toleration_seconds,
    );
    PodAdmission::new(move |pod: &mut Value| {
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let current = spec.get("tolerations").cloned().unwrap_or(Value::Null);
        // Tolerations that do not decode are left for validation to refuse.
        let Ok(mut list) = serde_json::from_value::<Option<Vec<api::Toleration>>>(current) else {
            return;
        };
        let mut list = list.take().unwrap_or_default();
        placement::add_default_tolerations(&mut list, not_ready, unreachable);
        if let Ok(value) = serde_json::to_value(list) {
            spec.insert("tolerations".into(), value);
        }
    })
}

/// A NoExecute taint from a node object.
fn no_execute_taints(node: &Value) -> Vec<(placement::Taint, Option<jiff::Timestamp>)> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let typed: api::Taint = serde_json::from_value(t.clone()).ok()?;
            let added = t
                .get("timeAdded")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            let taint = placement::effective_taints(std::slice::from_ref(&typed))
                .into_iter()
                .next()?;
            (taint.effect == placement::TaintEffect::NoExecute).then_some((taint, added))
        })
        .collect()
}

/// When the taint manager deletes `pod` from `node`: `None` for never.
/// `seen`: when the manager first saw the node tainted, for taints without `timeAdded`
/// (one a user added with kubectl).
fn eviction_time(node: &Value, seen: jiff::Timestamp, pod: &Value) -> Option<jiff::Timestamp> {
    let taints = no_execute_taints(node);
    if taints.is_empty() {
        return None;
    }
    let tolerations: Vec<api::Toleration> = pod
        .pointer("/spec/tolerations")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default();
    let plain: Vec<placement::Taint> = taints.iter().map(|(t, _)| t.clone()).collect();
    // The manager starts counting when it sees the taint: its timeAdded (the latest).
    let since = taints
        .iter()
        .map(|(_, added)| added.unwrap_or(seen))
        .max()
        .unwrap_or(seen);
    match placement::no_execute(&plain, &tolerations) {
        NoExecute::Now => Some(since),
        NoExecute::After(seconds) => since
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .ok(),
        NoExecute::Never => None,
    }
}

fn is_finished(pod: &Value) -> bool {
    matches!(
        object::get_str(pod, &["status", "phase"]),
        Some("Succeeded" | "Failed")
    )
}

struct Lifecycle {
    config: LifecycleConfig,
    failed: FailedNodes,
    /// Nodes with `NoExecute` taints: the taint manager looks only at their pods.
    tainted: BTreeMap<String, (Arc<Value>, jiff::Timestamp)>,
    /// The earliest eviction the taint manager has to make.
    next_eviction: Option<Instant>,
    /// Pods bound to a missing node, and since when.
    orphans: BTreeMap<ObjKey, Instant>,
    next_gc: Instant,
}

impl Lifecycle {
    /// Reads what changed: nodes whose `NoExecute` taints changed, and whether a pod on a
    /// tainted node changed. Returns whether the taint manager should look again.
    fn observe(&mut self, batches: Vec<Batch>, st: &State) -> bool {
        let mut look = false;
        let mut nodes_changed = false;
        for (i, batch) in batches.into_iter().enumerate() {
            match batch {
                Batch::Resync => {
                    if i == 0 {
                        let now = st.clock_now();
                        let before = std::mem::take(&mut self.tainted);
                        for n in st.store.range("nodes", None, None) {
                            let node = n.value_arc();
                            if !no_execute_taints(&node).is_empty() {
                                let seen = before.get(&n.key.1).map_or(now, |(_, seen)| *seen);
                                self.tainted.insert(n.key.1.clone(), (node, seen));
                            }
                        }
                    }
                    look = true;
                }
                Batch::Changes(changes) if i == 0 => {
                    for c in changes {
                        let name = c.object.key.1.clone();
                        let node = c.object.value_arc();
                        if c.kind != ChangeKind::Deleted && !no_execute_taints(&node).is_empty() {
                            let seen = self
                                .tainted
                                .get(&name)
                                .map_or_else(|| st.clock_now(), |(_, seen)| *seen);
                            self.tainted.insert(name, (node, seen));
                            nodes_changed = true;
                        } else if self.tainted.remove(&name).is_some() {
                            nodes_changed = true;
                        }
                    }
                }
                Batch::Changes(changes) => {
                    look |= changes
                        .iter()
                        .any(|c| self.tainted.contains_key(&c.object.node_name));
                }
            }
        }
        look || nodes_changed
    }

    /// One look; returns when to look again.
    fn step(&mut self, st: &mut State, taint_manager: bool) -> Instant {
        let now = Instant::now();
        let mut wake = self.next_gc;
        // Node monitor.
        let silent: Vec<(String, Instant)> = self
            .failed
            .lock()
            .map(|f| f.iter().map(|(n, t)| (n.clone(), *t)).collect())
            .unwrap_or_default();
        for (node, since) in silent {
            let due = since + self.config.node_monitor_grace_period;
            if due <= now {
                mark_unreachable(st, &node);
            } else {
                wake = wake.min(due);
            }
        }
        // Taint manager.
        if taint_manager || self.next_eviction.is_some_and(|at| at <= now) {
            self.next_eviction = self.evict_due(st, now);
        }
        if let Some(at) = self.next_eviction {
            wake = wake.min(at);
        }
        // Pod garbage collector.
        if self.next_gc <= now {
            self.collect(st, now);
            self.next_gc = now + GC_PERIOD;
            wake = wake.min(self.next_gc);
        }
        wake
    }

    /// Evicts the pods of tainted nodes whose tolerations ran out; returns when the next
    /// one runs out.
    fn evict_due(&mut self, st: &mut State, now: Instant) -> Option<Instant> {
        let clock_now = st.clock_now();
        let mut next: Option<Instant> = None;
        let tainted: Vec<(Arc<Value>, jiff::Timestamp)> = self.tainted.values().cloned().collect();
        for (node, seen) in &tainted {
            let name = object::name(node);
            let pods: Vec<Arc<Value>> = st
                .store
                .range("pods", None, None)
                .filter(|p| p.node_name == name)
                .map(|p| p.value_arc())
                .filter(|p| object::deletion_timestamp(p).is_none() && !is_finished(p))
                .collect();
            for pod in pods {
                let Some(at) = eviction_time(node, *seen, &pod) else {
                    continue;
                };
                if at <= clock_now {
                    evict(st, &pod);
                } else if let Ok(left) = Duration::try_from(at.duration_since(clock_now)) {
                    let at = now + left;
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        next
    }

    fn collect(&mut self, st: &mut State, now: Instant) {
        let Some(def) = st.registry.find("", "v1", "pods") else {
            return;
        };
        let nodes: BTreeSet<&str> = st
            .store
            .range("nodes", None, None)
            .map(|n| n.key.1.as_str())
            .collect();
        let count_finished = st.store.len("pods") > self.config.terminated_pod_gc_threshold;
        let mut force: Vec<(ObjKey, &str)> = Vec::new();
        let mut finished = Vec::new();
        let mut orphans = BTreeMap::new();
        for stored in st.store.range("pods", None, None) {
            let key = stored.key.clone();
            if stored.node_name.is_empty() {
                if object::deletion_timestamp(&stored.value_arc()).is_some() {
                    force.push((key, "the pod is terminating and was never scheduled"));
                }
                continue;
            }
            if !nodes.contains(stored.node_name.as_str()) {
                let since = self.orphans.get(&key).copied().unwrap_or(now);
                if now.duration_since(since) >= ORPHAN_QUARANTINE {
                    force.push((key, "the pod's node no longer exists"));
                } else {
                    orphans.insert(key, since);
                }
                continue;
            }
            if count_finished {
                let pod = stored.value_arc();
                if is_finished(&pod) {
                    let created = object::get_str(&pod, &["metadata", "creationTimestamp"])
                        .unwrap_or_default()
                        .to_string();
                    finished.push((created, key));
                }
            }
        }
        self.orphans = orphans;
        if finished.len() > self.config.terminated_pod_gc_threshold {
            finished.sort();
            let excess = finished.len() - self.config.terminated_pod_gc_threshold;
            force.extend(
                finished
                    .into_iter()
                    .take(excess)
                    .map(|(_, key)| (key, "too many finished pods")),
            );
        }
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        for ((ns, name), why) in force {
            if let Some(pod) = st.store.get("pods", &(ns.clone(), name.clone())) {
                let _ = st.delete(&def, Some(&ns), &name, &opts);
                record_event(
                    st,
                    &pod,
                    "Normal",
                    "PodGarbageCollected",
                    &format!("PodGC: deleting pod {ns}/{name}: {why}"),
                    POD_GC,
                );
            }
        }
    }
}

/// Ready Unknown, the `unreachable` taints, and the node's pods not Ready.
fn mark_unreachable(st: &mut State, name: &str) {
    let key = (String::new(), name.to_string());
    let Some(node) = st.store.get("nodes", &key) else {
        return;
    };
    if node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .is_some_and(|ts| {
            ts.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(placement::UNREACHABLE_TAINT_KEY)
            })
        })
    {
        return;
    }
    let now = st.now();
    let mut new = (*node).clone();
    if let Some(conds) = new
        .get_mut("status")
        .and_then(|s| s.get_mut("conditions"))
        .and_then(Value::as_array_mut)
    {
        for c in conds.iter_mut() {
            c["status"] = json!("Unknown");
            c["reason"] = json!("NodeStatusUnknown");
            c["message"] = json!("Kubelet stopped posting node status.");
            c["lastTransitionTime"] = json!(now);
        }
    }
    let mut taints = nodes::without_lifecycle_taints(&node);
    taints.extend(nodes::unreachable_taints(&now));
    if write_node(st, name, new, taints).is_err() {
        return;
    }
    if let Some(n) = st.store.get("nodes", &key) {
        record_event(
            st,
            &n,
            "Normal",
            "NodeNotReady",
            &format!("Node {name} status is now: NodeNotReady"),
            NODE_CONTROLLER,
        );
    }
    let Some(def) = st.registry.find("", "v1", "pods") else {
        return;
    };
    let pods: Vec<Arc<Value>> = st
        .store
        .range("pods", None, None)
        .filter(|p| p.node_name == name)
        .map(|p| p.value_arc())
        .filter(|p| !is_finished(p))
        .collect();
    for pod in pods {
        let mut new = (*pod).clone();
        set_condition(&mut new, "Ready", "False", None, None, &now);
        let key = crate::store::key_of(&pod);
        let written = st.update(
            &def,
            Some(&key.0),
            &key.1,
            new,
            Subresource::Status,
            &WriteOptions::manager(NODE_CONTROLLER),
        );
        if written.is_ok() {
            record_event(
                st,
                &pod,
                "Warning",
                "NodeNotReady",
                "Node is not ready",
                NODE_CONTROLLER,
            );
        }
    }
}

/// Writes a node's status and taints as the node lifecycle controller does.
pub(crate) fn write_node(
    st: &mut State,
    name: &str,
    with_status: Value,
    taints: Vec<Value>,
) -> Result<(), ApiError> {
    let Some(def) = st.registry.find("", "v1", "nodes") else {
        return Err(ApiError::not_found("", "nodes", name));
    };
    let opts = WriteOptions::manager(NODE_CONTROLLER);
    let updated = st.update(&def, None, name, with_status, Subresource::Status, &opts)?;
    let mut new = (*updated).clone();
    if taints.is_empty() {
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("taints");
        }
    } else {
        new["spec"]["taints"] = json!(taints);
    }
    st.update(&def, None, name, new, Subresource::Main, &opts)?;
    Ok(())
}

/// The taint manager's eviction: a DisruptionTarget condition, then a graceful delete.
fn evict(st: &mut State, pod: &Value) {
    let Some(def) = st.registry.find("", "v1", "pods") else {
        return;
    };
    let (ns, name) = crate::store::key_of(pod);
    let now = st.now();
    let mut new = pod.clone();
    set_condition(
        &mut new,
        "DisruptionTarget",
        "True",
        Some("DeletionByTaintManager"),
        Some("Taint manager: deleting due to NoExecute taint"),
        &now,
    );
    let _ = st.update(
        &def,
        Some(&ns),
        &name,
        new,
        Subresource::Status,
        &WriteOptions::manager(TAINT_MANAGER),
    );
    let opts = DeleteOptions {
        precondition_uid: Some(object::uid(pod).to_string()),
        ..Default::default()
    };
    if st.delete(&def, Some(&ns), &name, &opts).is_ok() {
        record_event(
            st,
            pod,
            "Normal",
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {ns}/{name}"),
            TAINT_MANAGER,
        );
    }
}

/// Runs the node lifecycle controller, taint manager and pod garbage collector until
/// shutdown. `wake` is notified when a node fails or recovers.
pub(crate) async fn run(
    api: Arc<ApiServer>,
    config: LifecycleConfig,
    failed: FailedNodes,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut feeds = vec![Feed::new(&api, "nodes"), Feed::new(&api, "pods")];
    let mut lifecycle = Lifecycle {
        config,
        failed,
        tainted: BTreeMap::new(),
        next_eviction: None,
        orphans: BTreeMap::new(),
        next_gc: Instant::now() + GC_PERIOD,
    };
    {
        let st = api.lock();
        lifecycle.observe(vec![Batch::Resync], &st);
    }
    let mut look = true;
    loop {
        let next = {
            let mut st = api.lock();
            lifecycle.step(&mut st, look)
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(next) => {}
            _ = any_changed(&mut feeds) => {}
        }
        let batches: Vec<Batch> = feeds.iter_mut().map(|f| f.fetch(&api)).collect();
        let st = api.lock();
        look = lifecycle.observe(batches, &st);
    }
}
