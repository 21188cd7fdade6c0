//! From Kubernetes objects to the planner's input model. Pure, shared by the offline
//! command and the controllers. Errors name the field relative to the object
//! (`spec.containers[0].resources.requests.cpu`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};

use super::{PendingPod, PlacedPod, PlanNode, PodKey, Resources};
use crate::placement::{self, InterPodRules, ResourceList, RulesContext, inter_pod_rules};
pub use crate::placement::{required_affinity, tolerations};
use crate::quantity::ceil_units;
use crate::validate::FieldError;

/// Pods a node takes when its status does not say (the kubelet's default). Hand-written
/// manifests for the offline planner often leave it out; a node on a cluster reports it.
pub const DEFAULT_MAX_PODS: i64 = 110;

/// A Node as the planner sees it. What it offers is [`placement::node_allocatable`] (0 of
/// what it does not report, as for kube-scheduler); an unreported pod count is 110.
pub fn plan_node(node: &Node) -> Result<PlanNode, FieldError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let list = placement::node_allocatable(node)?;
    let mut allocatable = resources(&list);
    if !list.contains_key("pods") {
        allocatable.pods = DEFAULT_MAX_PODS;
    }
    let spec = node.spec.as_ref();
    let taints = placement::taints(spec.and_then(|s| s.taints.as_deref()).unwrap_or_default())
        .map_err(|e| FieldError::new(format!("spec.{}", e.field), e.message))?;
    Ok(PlanNode {
        name,
        allocatable,
        labels: node.metadata.labels.clone().unwrap_or_default(),
        taints,
        schedulable: !spec.and_then(|s| s.unschedulable).unwrap_or(false),
    })
}

/// What a pod spec asks for ([`placement::pod_requests`]): the larger of the sum of its
/// containers' requests and the largest init container's, plus the pod overhead, plus one
/// pod. A container that gives a limit but no request requests its limit.
pub fn pod_requests(spec: &PodSpec) -> Result<Resources, FieldError> {
    placement::pod_requests(spec).map(|list| resources(&list))
}

/// The planner's resource vector of exact amounts: millicores, and whole units of
/// everything else (the amounts are rounded already; a sum past `i64` saturates).
pub fn resources(list: &ResourceList) -> Resources {
    let whole = |milli: i128| i64::try_from(ceil_units(milli)).unwrap_or(i64::MAX);
    let mut r = Resources::default();
    for (resource, milli) in list {
        match resource.as_str() {
            "cpu" => r.cpu_millis = i64::try_from(*milli).unwrap_or(i64::MAX),
            "memory" => r.memory_bytes = whole(*milli),
            "pods" => r.pods = whole(*milli),
            other => {
                r.extended.insert(other.to_string(), whole(*milli));
            }
        }
    }
    r
}

/// A pod to place from its identity, labels and spec, with no Namespaces or
/// PriorityClasses known ([`pending_pod_in`]). Field errors are relative to the spec
/// (`containers[0].resources.requests["cpu"]`).
pub fn pending_pod(
    key: PodKey,
    labels: BTreeMap<String, String>,
    spec: &PodSpec,
) -> Result<PendingPod, FieldError> {
    pending_pod_in(key, labels, spec, &RulesContext::default())
}

/// A pod to place; `context` resolves `namespaceSelector`s and `priorityClassName`.
pub fn pending_pod_in(
    key: PodKey,
    labels: BTreeMap<String, String>,
    spec: &PodSpec,
    context: &RulesContext,
) -> Result<PendingPod, FieldError> {
    Ok(PendingPod {
        requests: pod_requests(spec)?,
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        affinity: required_affinity(spec.affinity.as_ref())?,
        tolerations: tolerations(spec.tolerations.as_ref())?,
        pod_rules: inter_pod_rules(&key.namespace, &labels, spec, context)?,
        labels,
        key,
    })
}

/// A running pod (one with `spec.nodeName`); `None` for pods without a node, or that
/// finished or are being deleted. It uses what the cluster's scheduler counts for it
/// ([`placement::effective_pod_requests`]), even if some quantity of it does not parse.
pub fn placed_pod(pod: &Pod) -> Option<PlacedPod> {
    placed_pod_in(pod, &RulesContext::default())
}

/// A running pod; `context` resolves the `namespaceSelector`s of its anti-affinity.
pub fn placed_pod_in(pod: &Pod, context: &RulesContext) -> Option<PlacedPod> {
    crate::offers::Candidate::from_pod(pod)?;
    let spec = pod.spec.as_ref()?;
    let node = spec.node_name.clone().filter(|n| !n.is_empty())?;
    Some(PlacedPod {
        key: pod_key(pod),
        node,
        requests: resources(&placement::effective_pod_requests(spec)),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        pod_rules: running_rules(pod, context),
    })
}

/// The rules of a pod that runs already (or is bound): the API server admitted it, so a
/// rule that does not read here is one kube-scheduler ignores too; it takes part with
/// none rather than stopping the plan.
pub fn running_rules(pod: &Pod, context: &RulesContext) -> InterPodRules {
    let key = pod_key(pod);
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    pod.spec
        .as_ref()
        .and_then(|spec| inter_pod_rules(&key.namespace, &labels, spec, context).ok())
        .unwrap_or_default()
}

/// `namespace/name` of a pod (namespace `default` when unset).
pub fn pod_key(pod: &Pod) -> PodKey {
    PodKey::new(
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Validates what the planner reads from a pod spec; field paths relative to the spec.
pub fn check_pod_spec(spec: &PodSpec) -> Result<(), FieldError> {
    pod_requests(spec)?;
    required_affinity(spec.affinity.as_ref())?;
    tolerations(spec.tolerations.as_ref())?;
    inter_pod_rules("default", &BTreeMap::new(), spec, &RulesContext::default())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{Object, decode, parse_documents};
    use k8s_openapi::api::core::v1::Container;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn objects(text: &str) -> Vec<Object> {
        let docs = parse_documents("t.yaml", text).unwrap_or_default();
        docs.iter().filter_map(|d| decode(d).ok()).collect()
    }

    #[test]
    fn node_allocatable_taints_and_cordon() {
        let text = r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {zone: a}}
spec:
  unschedulable: true
  taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
status: {allocatable: {cpu: 3500m, memory: 8Gi, pods: "20", nvidia.com/gpu: "2"}}
"#;
        let Some(Object::Node(node)) = objects(text).pop() else {
            panic!("no node")
        };
        let n = plan_node(&node).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.allocatable.cpu_millis, 3500);
        assert_eq!(n.allocatable.memory_bytes, 8 << 30);
        assert_eq!(n.allocatable.pods, 20);
        assert_eq!(n.allocatable.extended.get("nvidia.com/gpu"), Some(&2));
        assert!(!n.schedulable);
        assert_eq!(n.taints[0].to_string(), "dedicated=gpu:NoSchedule");
    }

    #[test]
    fn pod_requests_sum_containers_max_init_add_overhead() {
        let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  overhead: {cpu: 100m}
  initContainers:
  - {name: i, resources: {requests: {cpu: "3", memory: 1Gi}}}
  containers:
  - {name: a, resources: {requests: {cpu: "1", memory: 1Gi}}}
  - {name: b, resources: {limits: {cpu: 500m, memory: 2Gi, nvidia.com/gpu: "1"}}}
"#;
        let Some(Object::Pod(pod)) = objects(text).pop() else {
            panic!("no pod")
        };
        let r = pod_requests(pod.spec.as_ref().unwrap_or(&PodSpec::default()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.cpu_millis, 3100);
        assert_eq!(r.memory_bytes, 3 << 30);
        assert_eq!(r.pods, 1);
        assert_eq!(r.extended.get("nvidia.com/gpu"), Some(&1));
    }

    #[test]
    fn bad_quantities_and_operators_name_the_field() {
        let mut spec = PodSpec::default();
        spec.containers.push(Container {
            name: "a".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "cpu".to_string(),
                    Quantity("four".into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        });
        let err = check_pod_spec(&spec).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with(
                "containers[0].resources.requests[\"cpu\"]: \"four\" is not a CPU quantity"
            )),
            "{err:?}"
        );
    }

    /// A running pod with a quantity that does not parse: the planner counted it as
    /// using nothing (not even a pod slot) while the embedded cluster's scheduler counted
    /// its other requests. Both count what parses now.
    #[test]
    fn running_pods_count_what_parses() {
        // Decoding a manifest refuses such a pod; the cluster serves it as stored.
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "lots"}}}
            ]}
        }))
        .unwrap_or_default();
        let placed = placed_pod(&pod).map(|p| p.requests);
        assert_eq!(placed, Some(Resources::pod(500, 0)));
    }
}
