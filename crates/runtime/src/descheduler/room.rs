//! What the descheduler reads about room for replacements
//! ([`edgeplane_core::descheduler::Capacity`]): what each node offers and what the pods
//! holding capacity on it request, the pods waiting for the planner and where the
//! scheduler's next plan would put them, and the new pods of the controllers whose
//! replacements this process waits for. Pure: objects in, facts out. The rules and the
//! arithmetic are `edgeplane_core::placement`'s, read as kube-scheduler reads them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use edgeplane_api::{ConstraintPolicy, ConstraintPolicyOffer, NetworkTopology};
use edgeplane_core::descheduler::{Arrival, Capacity, Demand, NodeRoom, WaitingPod, unpinned};
use edgeplane_core::evaluate::ClusterView;
use edgeplane_core::placement::{self, ResourceList};
use edgeplane_core::planner::convert::pod_key;
use edgeplane_core::planner::{PlanInput, PlanOptions, PodKey};
use edgeplane_core::scheduler::Mode;
use edgeplane_core::scheduler::input::{
    self, hostnames, is_finished_or_terminating, is_pending, is_running, pinned_node,
};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};

/// What a replacement of a pod with this spec asks of a node: the pod's requests and
/// rules, without the planning scheduler's pin (the workload's template has none).
pub fn replacement_demand(spec: &PodSpec) -> Demand {
    Demand {
        requests: placement::effective_pod_requests(spec),
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        affinity: unpinned(&placement::effective_required_affinity(
            spec.affinity.as_ref(),
        )),
        tolerations: placement::effective_tolerations(
            spec.tolerations.as_deref().unwrap_or_default(),
        ),
    }
}

/// The uid of a pod's controller owner (ReplicaSet, StatefulSet, ...), if any.
pub fn controller_uid(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

/// Whether a pod waits for the planner (gated in gate mode, or unbound for the `edgeplane`
/// scheduler in bind mode): the descheduler does not know which mode the scheduler runs in.
fn waits(pod: &Pod) -> Option<Mode> {
    [Mode::Gate, Mode::Bind]
        .into_iter()
        .find(|m| is_pending(*m, pod))
}

/// The node a pod holds capacity on: bound and not finished or terminating, or pinned to
/// one node and waiting for kube-scheduler to bind it there (the planner's affinity
/// written, the gate removed).
pub fn holds(pod: &Pod, hosts: &HashMap<String, String>) -> Option<String> {
    if is_running(pod) {
        return pod.spec.as_ref()?.node_name.clone();
    }
    if is_finished_or_terminating(pod) || waits(pod).is_some() {
        return None;
    }
    pinned_node(pod, hosts)
}

fn add(total: &mut ResourceList, requests: &ResourceList) {
    for (resource, amount) in requests {
        *total.entry(resource.clone()).or_default() += amount;
    }
}

/// Every node with what it offers and what the pods holding capacity on it request.
pub fn node_rooms(nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Vec<NodeRoom> {
    let hosts = hostnames(nodes);
    let mut used: BTreeMap<String, ResourceList> = BTreeMap::new();
    for pod in pods {
        if let (Some(node), Some(spec)) = (holds(pod, &hosts), pod.spec.as_ref()) {
            add(
                used.entry(node).or_default(),
                &placement::effective_pod_requests(spec),
            );
        }
    }
    nodes
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let spec = n.spec.as_ref();
            NodeRoom {
                used: used.remove(&name).unwrap_or_default(),
                labels: n.metadata.labels.clone().unwrap_or_default(),
                taints: placement::effective_taints(
                    spec.and_then(|s| s.taints.as_deref()).unwrap_or_default(),
                ),
                unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
                allocatable: placement::effective_node_allocatable(n),
                name,
            }
        })
        .collect()
}

/// What the planner's input is built from, borrowed from the caches.
#[derive(Clone, Copy, Debug)]
pub struct Cluster<'a> {
    pub nodes: &'a [Arc<Node>],
    pub pods: &'a [Arc<Pod>],
    pub policies: &'a [Arc<ConstraintPolicy>],
    pub offers: &'a [Arc<ConstraintPolicyOffer>],
    pub topology: Option<&'a NetworkTopology>,
}

/// Where the scheduler's next plan would put each pod waiting for it (`None`: nowhere),
/// planned together as the scheduler plans them. Without a cluster view nothing can be
/// planned: every waiting pod is `None`.
pub fn plan_waiting(
    cluster: Cluster<'_>,
    view: Option<&ClusterView>,
    options: &PlanOptions,
) -> BTreeMap<PodKey, Option<String>> {
    let mut out = BTreeMap::new();
    for mode in [Mode::Gate, Mode::Bind] {
        if !cluster.pods.iter().any(|p| is_pending(mode, p)) {
            continue;
        }
        let observed = input::Observed {
            nodes: cluster.nodes,
            pods: cluster.pods,
            policies: cluster.policies,
            offers: cluster.offers,
            topology: cluster.topology,
            functions: edgeplane_core::nf::targets::FunctionInventory::none(),
        };
        let built = input::build(mode, observed, &BTreeMap::new(), &BTreeSet::new());
        let keys: Vec<PodKey> = built.pending.iter().map(|p| p.key.clone()).collect();
        let plan = view.map(|view| {
            edgeplane_core::planner::plan(
                &PlanInput {
                    view,
                    nodes: built.nodes,
                    placed: built.placed,
                    pending: built.pending,
                    bindings: built.bindings,
                },
                options,
            )
        });
        for key in keys {
            let node = plan
                .as_ref()
                .and_then(|p| p.node_of(&key))
                .map(str::to_string);
            out.insert(key, node);
        }
    }
    out
}

/// The room in the cluster. `controllers` are the controllers whose replacements this
/// process waits for; `planned` is [`plan_waiting`]'s answer.
pub fn capacity(
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    planned: &BTreeMap<PodKey, Option<String>>,
    controllers: &BTreeSet<String>,
) -> Capacity {
    let hosts = hostnames(nodes);
    let mut waiting = Vec::new();
    let mut arrivals = Vec::new();
    for pod in pods {
        let key = pod_key(pod);
        let pending = waits(pod).is_some();
        if pending && let Some(spec) = pod.spec.as_ref() {
            waiting.push(WaitingPod {
                key: key.clone(),
                controller: controller_uid(pod),
                created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
                requests: placement::effective_pod_requests(spec),
                planned: planned.get(&key).cloned().flatten(),
            });
        }
        let Some(controller) = controller_uid(pod).filter(|c| controllers.contains(c)) else {
            continue;
        };
        let Some(created) = pod.metadata.creation_timestamp.as_ref().map(|t| t.0) else {
            continue;
        };
        if pending || holds(pod, &hosts).is_some() {
            arrivals.push(Arrival {
                key,
                controller,
                created,
                waiting: pending,
            });
        }
    }
    Capacity {
        nodes: node_rooms(nodes, pods),
        waiting,
        arrivals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}")))
    }

    fn node(name: &str, cpu: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "10"}}
            }))
            .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn owned(name: &str, created: &str, spec: serde_json::Value) -> Arc<Pod> {
        pod(json!({
            "metadata": {"name": name, "namespace": "ar", "creationTimestamp": created,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                    "uid": "rs-uid", "controller": true}]},
            "spec": spec
        }))
    }

    fn cpu(n: &str) -> serde_json::Value {
        json!([{"name": "c", "image": "i", "resources": {"requests": {"cpu": n}}}])
    }

    #[test]
    fn room_counts_bound_and_pinned_pods_not_waiting_or_terminating_ones() {
        let nodes = [node("e1", "8"), node("e2", "8")];
        let pin = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["e2"]}]}]}}});
        let pods = [
            // Bound to e1.
            owned(
                "a",
                "2025-06-01T00:00:00Z",
                json!({"nodeName": "e1", "containers": cpu("2")}),
            ),
            // Planned onto e2 and ungated, not bound yet: holds e2.
            owned(
                "b",
                "2025-06-01T00:01:00Z",
                json!({"affinity": pin, "containers": cpu("1")}),
            ),
            // Waiting at the gate: holds nothing yet.
            owned(
                "c",
                "2025-06-01T00:02:00Z",
                json!({"containers": cpu("3"),
                "schedulingGates": [{"name": "constraint.edgeplane.io/planner"}]}),
            ),
            // Terminating on e1: no longer counted (as the scheduler counts).
            pod(json!({"metadata": {"name": "d", "namespace": "ar",
                    "deletionTimestamp": "2025-06-01T00:00:30Z"},
                "spec": {"nodeName": "e1", "containers": cpu("4")}})),
        ];
        let planned = BTreeMap::from([(PodKey::new("ar", "c"), Some("e2".to_string()))]);
        let c = capacity(
            &nodes,
            &pods,
            &planned,
            &BTreeSet::from(["rs-uid".to_string()]),
        );
        let used = |n: usize| c.nodes[n].used.get("cpu").copied().unwrap_or(0);
        assert_eq!((used(0), used(1)), (2000, 1000));
        assert_eq!(c.nodes[0].allocatable.get("cpu"), Some(&8000));
        assert_eq!(c.waiting.len(), 1);
        assert_eq!(c.waiting[0].key, PodKey::new("ar", "c"));
        assert_eq!(c.waiting[0].planned.as_deref(), Some("e2"));
        assert_eq!(c.waiting[0].requests.get("cpu"), Some(&3000));
        // The controller's pods (the terminating one is not its replacement).
        let arrivals: Vec<(&str, bool)> = c
            .arrivals
            .iter()
            .map(|a| (a.key.name.as_str(), a.waiting))
            .collect();
        assert_eq!(arrivals, [("a", false), ("b", false), ("c", true)]);
        // Controllers nobody waits for are not read.
        let c = capacity(&nodes, &pods, &planned, &BTreeSet::new());
        assert!(c.arrivals.is_empty());
    }

    #[test]
    fn a_replacement_asks_what_its_pod_asks_without_the_pin() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": cpu("2"),
            "nodeSelector": {"tier": "edge"},
            "tolerations": [{"key": "edge", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["e1"]}]}]}}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let d = replacement_demand(&spec);
        assert_eq!(d.requests.get("cpu"), Some(&2000));
        assert_eq!(d.requests.get("pods"), Some(&1000));
        assert_eq!(
            d.node_selector.get("tier").map(String::as_str),
            Some("edge")
        );
        assert!(d.affinity.is_empty());
        assert_eq!(d.tolerations.len(), 1);
    }
}
