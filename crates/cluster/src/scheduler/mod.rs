//! A stand-in for kube-scheduler: binds ungated pods whose `schedulerName` is
//! `default-scheduler` (the default) to a Ready node that satisfies their nodeSelector,
//! required node affinity (matchExpressions and matchFields), resource requests and
//! taints, preferring the least allocated node. Pods that fit nowhere get
//! `PodScheduled=False, reason Unschedulable` and a FailedScheduling event, and are retried
//! when nodes change or resources free up. Gated pods get `reason SchedulingGated`.
//!
//! The predicates (`filters`) are plain functions of a pod and a node, shared with the
//! kubelet's admission check; the placement rules under them are `edgeplane_core::placement`'s, the
//! planner's own, so a plan and this scheduler never disagree on a rounding.

mod filters;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, State, WriteOptions, set_condition};
use crate::controller::{Batch, Feed, any_changed, record_event};
use crate::object;
use crate::store::ObjKey;

pub use filters::{
    Misfit, NodeInfo, PodPlacement, Resources, choose_node, fits, placement_matches, pod_requests,
    resources_fit, score, toleration_matches, unschedulable_message,
};

/// The scheduler name this stand-in answers to.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

fn gates(pod: &Value) -> bool {
    pod.get("spec")
        .and_then(|s| s.get("schedulingGates"))
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty())
}

fn ours(pod: &Value) -> bool {
    object::get_str(pod, &["spec", "schedulerName"]).unwrap_or(DEFAULT_SCHEDULER)
        == DEFAULT_SCHEDULER
}

fn typed_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// The scheduler's in-memory view and queue.
struct Scheduler {
    api: Arc<ApiServer>,
    nodes: BTreeMap<String, NodeInfo>,
    node_list: Vec<NodeInfo>,
    nodes_dirty: bool,
    usage: HashMap<String, Resources>,
    /// Each pod's current contribution to its node's usage.
    contributions: HashMap<ObjKey, (String, Resources)>,
    queue: BTreeSet<ObjKey>,
    unschedulable: BTreeSet<ObjKey>,
    last_message: HashMap<ObjKey, String>,
    cursor: usize,
}

impl Scheduler {
    fn account(&mut self, key: &ObjKey, pod: Option<&Pod>) {
        if let Some((node, res)) = self.contributions.remove(key)
            && let Some(u) = self.usage.get_mut(&node)
        {
            for (k, v) in res {
                *u.entry(k).or_default() -= v;
            }
        }
        let Some(pod) = pod else {
            return;
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if node.is_empty() || typed_terminal(pod) {
            return;
        }
        let res = pod_requests(pod);
        let u = self.usage.entry(node.to_string()).or_default();
        for (k, v) in &res {
            *u.entry(k.clone()).or_default() += v;
        }
        self.contributions
            .insert(key.clone(), (node.to_string(), res));
    }

    fn observe_pod(&mut self, st: &mut State, key: ObjKey, pod: Option<&Pod>) {
        let freed = self.contributions.contains_key(&key);
        self.account(&key, pod);
        let Some(pod) = pod else {
            self.queue.remove(&key);
            self.unschedulable.remove(&key);
            self.last_message.remove(&key);
            if freed {
                self.retry_unschedulable();
            }
            return;
        };
        if freed && !self.contributions.contains_key(&key) {
            self.retry_unschedulable();
        }
        let spec = pod.spec.as_ref();
        let pending = spec
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("")
            .is_empty()
            && pod.metadata.deletion_timestamp.is_none()
            && !typed_terminal(pod)
            && spec
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or(DEFAULT_SCHEDULER)
                == DEFAULT_SCHEDULER;
        if !pending {
            self.queue.remove(&key);
            self.unschedulable.remove(&key);
            return;
        }
        if spec
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_some_and(|g| !g.is_empty())
        {
            self.queue.remove(&key);
            self.unschedulable.remove(&key);
            let gated_reported = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated")
                    })
                });
            if !gated_reported && let Some(current) = st.store.get("pods", &key) {
                let mut new = (*current).clone();
                let now = st.now();
                set_condition(
                    &mut new,
                    "PodScheduled",
                    "False",
                    Some("SchedulingGated"),
                    Some("Scheduling is blocked due to non-empty scheduling gates"),
                    &now,
                );
                write_status(st, &key, new);
            }
            return;
        }
        if !self.unschedulable.contains(&key) {
            self.queue.insert(key);
        }
    }

    fn retry_unschedulable(&mut self) {
        let keys: Vec<ObjKey> = std::mem::take(&mut self.unschedulable)
            .into_iter()
            .collect();
        self.queue.extend(keys);
    }

    fn observe_node(&mut self, name: &str, node: Option<&Arc<Value>>) {
        match node.and_then(|n| Node::deserialize(&**n).ok()) {
            Some(n) => {
                self.nodes.insert(name.to_string(), NodeInfo::from_node(&n));
            }
            None => {
                self.nodes.remove(name);
            }
        }
        self.nodes_dirty = true;
        self.retry_unschedulable();
    }

    fn resync(&mut self, st: &mut State) {
        self.nodes.clear();
        self.usage.clear();
        self.contributions.clear();
        self.queue.clear();
        self.unschedulable.clear();
        let nodes: Vec<(String, Arc<Value>)> = st
            .store
            .range("nodes", None, None)
            .map(|n| (n.name().to_string(), n.value_arc()))
            .collect();
        for (name, n) in nodes {
            self.observe_node(&name, Some(&n));
        }
        let pods: Vec<(ObjKey, Option<Pod>)> = st
            .store
            .range("pods", None, None)
            .map(|p| (p.key.clone(), p.decode::<Pod>().ok()))
            .collect();
        for (k, p) in pods {
            self.observe_pod(st, k, p.as_ref());
        }
    }

    fn schedule_one(&mut self, st: &mut State, key: ObjKey) {
        let Some(pod) = st.store.get("pods", &key) else {
            return;
        };
        if !object::get_str(&pod, &["spec", "nodeName"])
            .unwrap_or("")
            .is_empty()
            || gates(&pod)
            || object::deletion_timestamp(&pod).is_some()
            || !ours(&pod)
        {
            return;
        }
        let Ok(typed) = Pod::deserialize(&*pod) else {
            return;
        };
        if self.nodes_dirty {
            self.node_list = self.nodes.values().cloned().collect();
            self.nodes_dirty = false;
        }
        let n = self.node_list.len().max(1);
        let start = self.cursor % n;
        self.cursor = self.cursor.wrapping_add(1);
        let sample = (self.node_list.len() * 42 / 100).clamp(100, 1000);
        match choose_node(&typed, &self.node_list, &self.usage, start, sample) {
            Ok(node) => {
                let binding = json!({"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": key.1, "namespace": key.0},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                match st.bind(
                    &key.0,
                    &key.1,
                    &binding,
                    &WriteOptions::manager(DEFAULT_SCHEDULER),
                ) {
                    Ok(()) => {
                        self.last_message.remove(&key);
                        if let Some(bound) = st.store.get("pods", &key) {
                            if let Ok(typed) = Pod::deserialize(&*bound) {
                                self.account(&key, Some(&typed));
                            }
                            record_event(
                                st,
                                &bound,
                                "Normal",
                                "Scheduled",
                                &format!("Successfully assigned {}/{} to {node}", key.0, key.1),
                                DEFAULT_SCHEDULER,
                            );
                        }
                    }
                    Err(e) => tracing::debug!(pod = %key.1, error = %e, "binding failed"),
                }
            }
            Err(misfits) => {
                let message = unschedulable_message(self.node_list.len(), &misfits);
                self.unschedulable.insert(key.clone());
                if self.last_message.get(&key) == Some(&message) {
                    return;
                }
                self.last_message.insert(key.clone(), message.clone());
                let mut new = (*pod).clone();
                let now = st.now();
                set_condition(
                    &mut new,
                    "PodScheduled",
                    "False",
                    Some("Unschedulable"),
                    Some(&message),
                    &now,
                );
                write_status(st, &key, new);
                record_event(
                    st,
                    &pod,
                    "Warning",
                    "FailedScheduling",
                    &message,
                    DEFAULT_SCHEDULER,
                );
            }
        }
    }
}

fn write_status(st: &mut State, key: &ObjKey, new: Value) {
    if let Some(def) = st.registry.find("", "v1", "pods") {
        let _ = st.update(
            &def,
            Some(&key.0),
            &key.1,
            new,
            crate::api::Subresource::Status,
            &WriteOptions::manager(DEFAULT_SCHEDULER),
        );
    }
}

/// Runs the scheduler until shutdown.
pub(crate) async fn run(api: Arc<ApiServer>, shutdown: CancellationToken) {
    let mut feeds = vec![Feed::new(&api, "nodes"), Feed::new(&api, "pods")];
    let mut s = Scheduler {
        api: api.clone(),
        nodes: BTreeMap::new(),
        node_list: Vec::new(),
        nodes_dirty: true,
        usage: HashMap::new(),
        contributions: HashMap::new(),
        queue: BTreeSet::new(),
        unschedulable: BTreeSet::new(),
        last_message: HashMap::new(),
        cursor: 0,
    };
    {
        let api = s.api.clone();
        let mut st = api.lock();
        s.resync(&mut st);
    }
    loop {
        // Drain the queue, one pod per lock so API requests interleave.
        while let Some(key) = s.queue.pop_first() {
            let api = s.api.clone();
            let mut st = api.lock();
            s.schedule_one(&mut st, key);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = any_changed(&mut feeds) => {}
        }
        let api = s.api.clone();
        let mut resync = false;
        // Only the latest state of each object matters: collect keys, drop the changes.
        let mut node_keys: BTreeSet<String> = BTreeSet::new();
        let mut pod_keys: BTreeSet<ObjKey> = BTreeSet::new();
        for (i, f) in feeds.iter_mut().enumerate() {
            match f.fetch(&api) {
                Batch::Resync => resync = true,
                Batch::Changes(changes) => {
                    for c in changes {
                        if i == 0 {
                            node_keys.insert(c.object.key.1.clone());
                        } else {
                            pod_keys.insert(c.object.key.clone());
                        }
                    }
                }
            }
        }
        let mut st = api.lock();
        if resync {
            s.resync(&mut st);
            continue;
        }
        for name in node_keys {
            let node = st.store.get("nodes", &(String::new(), name.clone()));
            s.observe_node(&name, node.as_ref());
        }
        for key in pod_keys {
            let pod = st
                .store
                .get_stored("pods", &key)
                .and_then(|p| p.decode::<Pod>().ok());
            s.observe_pod(&mut st, key, pod.as_ref());
        }
    }
}
