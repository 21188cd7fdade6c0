//! A stand-in for kube-scheduler: binds ungated pods whose `schedulerName` is
//! `default-scheduler` (the default) to a Ready node that satisfies their nodeSelector,
//! required node affinity (matchExpressions and matchFields), resource requests and
//! taints, preferring the least allocated node. Pods that fit nowhere get
//! `PodScheduled=False, reason Unschedulable` and a FailedScheduling event, and are retried
//! when nodes change or resources free up. Gated pods get `reason SchedulingGated`.
//!
//! The predicates are plain functions of a pod and a node, shared with the kubelet's
//! admission check; the placement rules under them are `edgeplane_core::placement`'s, the
//! planner's own, so a plan and this scheduler never disagree on a rounding.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use edgeplane_core::placement::{self, NodeFacts, NodeSelectorTerm, PodRules, ResourceList};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, State, WriteOptions, set_condition};
use crate::controller::{Batch, Feed, any_changed, record_event};
use crate::object;
use crate::store::ObjKey;

/// The scheduler name this stand-in answers to.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Resource amounts in milli-units, by resource name (`cpu`, `memory`, `pods`, ...), as
/// [`placement`] counts them.
pub type Resources = ResourceList;

/// What the scheduler needs to know of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub unschedulable: bool,
    pub ready: bool,
}

impl NodeInfo {
    pub fn from_node(node: &Node) -> Self {
        let ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default(),
            allocatable: placement::effective_node_allocatable(node),
            unschedulable: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            ready,
        }
    }
}

/// A pod's resource requests ([`placement::effective_pod_requests`]): containers summed,
/// init containers' maximum, overhead, and one `pods` slot.
pub fn pod_requests(pod: &Pod) -> Resources {
    pod.spec
        .as_ref()
        .map(placement::effective_pod_requests)
        .unwrap_or_default()
}

/// What a pod asks of a node's labels and taints, read once per scheduling attempt as
/// kube-scheduler reads it (what does not parse never matches and tolerates nothing).
#[derive(Debug, Clone, Default)]
pub struct PodPlacement {
    node_selector: BTreeMap<String, String>,
    affinity: Vec<NodeSelectorTerm>,
    tolerations: Vec<placement::Toleration>,
}

impl PodPlacement {
    pub fn of(pod: &Pod) -> Self {
        let Some(spec) = pod.spec.as_ref() else {
            return PodPlacement::default();
        };
        PodPlacement {
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            affinity: placement::effective_required_affinity(spec.affinity.as_ref()),
            tolerations: placement::effective_tolerations(
                spec.tolerations.as_deref().unwrap_or_default(),
            ),
        }
    }

    /// The pod's side of [`placement::misfit`].
    pub fn rules(&self) -> PodRules<'_> {
        PodRules {
            node_selector: &self.node_selector,
            affinity: &self.affinity,
            tolerations: &self.tolerations,
        }
    }
}

/// Whether a toleration tolerates a taint ([`placement::tolerates`]). A toleration of an
/// unknown operator or effect tolerates nothing; a taint of an unknown effect is
/// tolerated by nothing.
pub fn toleration_matches(t: &Toleration, taint: &Taint) -> bool {
    let tolerations = placement::effective_tolerations(std::slice::from_ref(t));
    let taints = placement::effective_taints(std::slice::from_ref(taint));
    match (tolerations.first(), taints.first()) {
        (Some(t), Some(taint)) => placement::tolerates(t, taint),
        _ => false,
    }
}

/// nodeSelector and required node affinity.
pub fn placement_matches(pod: &Pod, node: &NodeInfo) -> bool {
    let p = PodPlacement::of(pod);
    placement::matches_node_selector(&p.node_selector, &node.labels)
        && placement::affinity_matches(&p.affinity, &node.name, &node.labels)
}

/// Why a node cannot take a pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    NotReady,
    Unschedulable,
    Placement,
    Taint(String),
    Insufficient(String),
    TooManyPods,
}

impl Misfit {
    /// The scheduler's words for it, as in "0/3 nodes are available: ...".
    pub fn describe(&self) -> String {
        match self {
            Misfit::NotReady => "node(s) were not ready".into(),
            Misfit::Unschedulable => "node(s) were unschedulable".into(),
            Misfit::Placement => "node(s) didn't match Pod's node affinity/selector".into(),
            Misfit::Taint(t) => format!("node(s) had untolerated taint {t}"),
            Misfit::Insufficient(r) => format!("Insufficient {r}"),
            Misfit::TooManyPods => "Too many pods".into(),
        }
    }
}

/// Whether a node's free resources can take the pod's requests
/// ([`placement::insufficient`]).
pub fn resources_fit(
    requests: &Resources,
    node: &NodeInfo,
    used: &Resources,
) -> Result<(), Misfit> {
    match placement::insufficient(requests, &node.allocatable, used) {
        None => Ok(()),
        Some("pods") => Err(Misfit::TooManyPods),
        Some(name) => Err(Misfit::Insufficient(name.to_string())),
    }
}

/// Every filter of the scheduler, in kube-scheduler's order.
pub fn fits(
    pod: &Pod,
    requests: &Resources,
    node: &NodeInfo,
    used: &Resources,
) -> Result<(), Misfit> {
    fits_placement(&PodPlacement::of(pod), requests, node, used)
}

fn fits_placement(
    pod: &PodPlacement,
    requests: &Resources,
    node: &NodeInfo,
    used: &Resources,
) -> Result<(), Misfit> {
    if !node.ready {
        return Err(Misfit::NotReady);
    }
    let taints = placement::effective_taints(&node.taints);
    let facts = NodeFacts {
        name: &node.name,
        labels: &node.labels,
        taints: &taints,
        unschedulable: node.unschedulable,
    };
    match placement::misfit(facts, pod.rules()) {
        None => {}
        Some(placement::Misfit::Unschedulable) => return Err(Misfit::Unschedulable),
        Some(placement::Misfit::NodeSelector | placement::Misfit::Affinity) => {
            return Err(Misfit::Placement);
        }
        Some(placement::Misfit::Taint(t)) => {
            return Err(Misfit::Taint(format!("{{{}: {}}}", t.key, t.value)));
        }
    }
    resources_fit(requests, node, used)
}

/// Least-allocated score: higher is emptier after placing the pod.
pub fn score(requests: &Resources, node: &NodeInfo, used: &Resources) -> f64 {
    ["cpu", "memory"]
        .iter()
        .map(|r| {
            let cap = node.allocatable.get(*r).copied().unwrap_or(0);
            if cap <= 0 {
                return 0.0;
            }
            let after = used.get(*r).copied().unwrap_or(0) + requests.get(*r).copied().unwrap_or(0);
            1.0 - (after as f64 / cap as f64).min(1.0)
        })
        .sum()
}

/// "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) didn't match ...".
pub fn unschedulable_message(total: usize, misfits: &[Misfit]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in misfits {
        *counts.entry(m.describe()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(d, n)| format!("{n} {d}")).collect();
    if parts.is_empty() {
        format!("0/{total} nodes are available.")
    } else {
        format!("0/{total} nodes are available: {}.", parts.join(", "))
    }
}

/// Chooses a node for a pod: the best-scored among up to `sample` feasible nodes found
/// scanning from `start` (kube-scheduler likewise stops after enough feasible nodes).
pub fn choose_node(
    pod: &Pod,
    nodes: &[NodeInfo],
    usage: &HashMap<String, Resources>,
    start: usize,
    sample: usize,
) -> Result<String, Vec<Misfit>> {
    let requests = pod_requests(pod);
    let placement = PodPlacement::of(pod);
    let empty = Resources::new();
    let mut best: Option<(f64, &str)> = None;
    let mut found = 0;
    let mut misfits = Vec::new();
    let n = nodes.len();
    for i in 0..n {
        let node = &nodes[(start + i) % n];
        let used = usage.get(&node.name).unwrap_or(&empty);
        match fits_placement(&placement, &requests, node, used) {
            Ok(()) => {
                let s = score(&requests, node, used);
                if best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, &node.name));
                }
                found += 1;
                if found >= sample {
                    break;
                }
            }
            Err(m) => misfits.push(m),
        }
    }
    best.map(|(_, name)| name.to_string()).ok_or(misfits)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cpu: &str, labels: &[(&str, &str)]) -> NodeInfo {
        let mut n = crate::nodes::NodeSpec::new(name).cpu(cpu);
        for (k, v) in labels {
            n = n.label(*k, *v);
        }
        NodeInfo::from_node(
            &serde_json::from_value(n.to_object(0, "2025-01-01T00:00:00Z")).unwrap(),
        )
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_sum_containers_and_take_init_maximum() {
        let p = pod(json!({"spec": {
            "containers": [
                {"name": "a", "image": "i", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
                {"name": "b", "image": "i", "resources": {"limits": {"cpu": "500m"}}}
            ],
            "initContainers": [{"name": "i", "image": "i", "resources": {"requests": {"cpu": "2"}}}]
        }}));
        let r = pod_requests(&p);
        assert_eq!(r["cpu"], 2000);
        assert_eq!(r["memory"], (1i128 << 30) * 1000);
        assert_eq!(r["pods"], 1000);
    }

    #[test]
    fn selectors_affinity_and_taints() {
        let edge = node("edge-1", "4", &[("zone", "edge")]);
        let core = node("core-1", "4", &[("zone", "core")]);
        let p = pod(
            json!({"spec": {"containers": [{"name": "a", "image": "i"}], "nodeSelector": {"zone": "edge"}}}),
        );
        assert!(placement_matches(&p, &edge));
        assert!(!placement_matches(&p, &core));
        let by_name = pod(
            json!({"spec": {"containers": [{"name": "a", "image": "i"}], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["core-1"]}]}]}}}}}),
        );
        assert!(placement_matches(&by_name, &core));
        assert!(!placement_matches(&by_name, &edge));
        let mut tainted = edge.clone();
        tainted.taints.push(Taint {
            key: "dedicated".into(),
            value: Some("x".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        let plain = pod(json!({"spec": {"containers": [{"name": "a", "image": "i"}]}}));
        let req = pod_requests(&plain);
        assert_eq!(
            fits(&plain, &req, &tainted, &Resources::new()),
            Err(Misfit::Taint("{dedicated: x}".into()))
        );
        let tolerant = pod(json!({"spec": {"containers": [{"name": "a", "image": "i"}],
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]}}));
        assert_eq!(fits(&tolerant, &req, &tainted, &Resources::new()), Ok(()));
        let mut down = edge.clone();
        down.ready = false;
        assert_eq!(
            fits(&plain, &req, &down, &Resources::new()),
            Err(Misfit::NotReady)
        );
    }

    #[test]
    fn resources_and_choice() {
        let nodes = vec![node("a", "1", &[]), node("b", "2", &[])];
        let p = pod(
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1500m"}}}]}}),
        );
        let usage = HashMap::new();
        assert_eq!(choose_node(&p, &nodes, &usage, 0, 100), Ok("b".to_string()));
        let mut busy = HashMap::new();
        busy.insert(
            "b".to_string(),
            Resources::from([("cpu".to_string(), 1000)]),
        );
        let err = choose_node(&p, &nodes, &busy, 0, 100).unwrap_err();
        assert_eq!(
            unschedulable_message(2, &err),
            "0/2 nodes are available: 2 Insufficient cpu."
        );
        // Least allocated wins.
        let small = pod(
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}}),
        );
        assert_eq!(
            choose_node(&small, &nodes, &busy, 0, 100),
            Ok("a".to_string())
        );
    }

    #[test]
    fn toleration_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoExecute".into(),
            ..Default::default()
        };
        let tol = |v: Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(toleration_matches(
            &tol(json!({"operator": "Exists"})),
            &taint
        ));
        assert!(toleration_matches(
            &tol(json!({"key": "k", "operator": "Exists"})),
            &taint
        ));
        assert!(toleration_matches(
            &tol(json!({"key": "k", "value": "v"})),
            &taint
        ));
        assert!(!toleration_matches(
            &tol(json!({"key": "k", "value": "w"})),
            &taint
        ));
        assert!(!toleration_matches(
            &tol(json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})),
            &taint
        ));
    }

    /// The planner and this scheduler count a pod alike, to the millicore (`9m` was 10
    /// millicores for the planner once) and to the byte.
    #[test]
    fn requests_agree_with_the_planner() {
        let p = pod(json!({"spec": {
            "containers": [{"name": "a", "image": "i", "resources": {"requests": {"cpu": "9m", "memory": "1.5"}}}],
            "overhead": {"cpu": "2.007"}
        }}));
        let ours = pod_requests(&p);
        assert_eq!(ours["cpu"], 2016);
        assert_eq!(ours["memory"], 2000);
        let planner = edgeplane_core::planner::pod_requests(p.spec.as_ref().unwrap()).unwrap();
        assert_eq!(edgeplane_core::planner::convert::resources(&ours), planner);
    }

    /// A toleration of an unknown operator was read as `Equal` here; kube-scheduler (and
    /// now this scheduler) lets it tolerate nothing. A cordoned node takes a pod that
    /// tolerates the cordon.
    #[test]
    fn unknown_tolerations_and_the_cordon() {
        let mut tainted = node("edge-1", "4", &[]);
        tainted.taints.push(Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
        let odd = pod(json!({"spec": {"containers": [{"name": "a", "image": "i"}],
            "tolerations": [{"key": "k", "operator": "Matches", "value": "v"}]}}));
        assert_eq!(
            fits(&odd, &pod_requests(&odd), &tainted, &Resources::new()),
            Err(Misfit::Taint("{k: v}".into()))
        );
        let mut cordoned = node("edge-2", "4", &[]);
        cordoned.unschedulable = true;
        let plain = pod(json!({"spec": {"containers": [{"name": "a", "image": "i"}]}}));
        assert_eq!(
            fits(&plain, &pod_requests(&plain), &cordoned, &Resources::new()),
            Err(Misfit::Unschedulable)
        );
        let daemon = pod(json!({"spec": {"containers": [{"name": "a", "image": "i"}],
            "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}));
        assert_eq!(
            fits(
                &daemon,
                &pod_requests(&daemon),
                &cordoned,
                &Resources::new()
            ),
            Ok(())
        );
    }
}
