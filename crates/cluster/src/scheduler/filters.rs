//! The scheduler's filters and score: whether a node can take a pod, in kube-scheduler's
//! order, over `edgeplane_core::placement`'s rules, and which feasible node is best.

use std::collections::{BTreeMap, HashMap};

use edgeplane_core::placement::{self, NodeFacts, NodeSelectorTerm, PodRules, ResourceList};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
