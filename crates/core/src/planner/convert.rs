//! From Kubernetes objects to the planner's input model. Pure, shared by the offline
//! command and the controllers. Errors name the field relative to the object
//! (`spec.containers[0].resources.requests.cpu`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Container, Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, PendingPod, PlacedPod, PlanNode, PodKey,
    Resources, Taint, TaintEffect, Toleration, TolerationOperator,
};
use crate::validate::FieldError;
use crate::values::{Unit, Value};

/// Pods a node takes when its status does not say (the kubelet's default).
pub const DEFAULT_MAX_PODS: i64 = 110;

/// A Node as the planner sees it. Allocatable cpu, memory and extended resources the node
/// does not report are 0 (as for kube-scheduler); an unreported pod count is 110.
pub fn plan_node(node: &Node) -> Result<PlanNode, FieldError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut allocatable = Resources::default();
    let reported = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
    if reported.is_none_or(|r| !r.contains_key("pods")) {
        allocatable.pods = DEFAULT_MAX_PODS;
    }
    for (resource, q) in reported.into_iter().flatten() {
        let field = format!("status.allocatable[{resource:?}]");
        add(&mut allocatable, resource, q, &field, false)?;
    }
    let spec = node.spec.as_ref();
    let mut taints = Vec::new();
    for (i, t) in spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let effect = TaintEffect::parse(&t.effect).ok_or_else(|| {
            FieldError::new(
                format!("spec.taints[{i}].effect"),
                format!(
                    "unknown effect {:?} (expected NoSchedule, PreferNoSchedule, NoExecute)",
                    t.effect
                ),
            )
        })?;
        taints.push(Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect,
        });
    }
    Ok(PlanNode {
        name,
        allocatable,
        labels: node.metadata.labels.clone().unwrap_or_default(),
        taints,
        schedulable: !spec.and_then(|s| s.unschedulable).unwrap_or(false),
    })
}

/// What a pod spec asks for: the larger of the sum of its containers' requests and the
/// largest init container's, plus the pod overhead, plus one pod. A container that
/// gives a limit but no request requests its limit.
pub fn pod_requests(spec: &PodSpec) -> Result<Resources, FieldError> {
    let mut sum = Resources::default();
    for (i, c) in spec.containers.iter().enumerate() {
        let r = container_requests(c, &format!("containers[{i}]"))?;
        sum = plus(&sum, &r);
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let r = container_requests(c, &format!("initContainers[{i}]"))?;
        sum = max(&sum, &r);
    }
    for (resource, q) in spec.overhead.iter().flatten() {
        add(
            &mut sum,
            resource,
            q,
            &format!("overhead[{resource:?}]"),
            true,
        )?;
    }
    sum.pods = 1;
    Ok(sum)
}

fn container_requests(c: &Container, field: &str) -> Result<Resources, FieldError> {
    let mut r = Resources::default();
    let resources = c.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    for (resource, q) in requests.into_iter().flatten() {
        add(
            &mut r,
            resource,
            q,
            &format!("{field}.resources.requests[{resource:?}]"),
            true,
        )?;
    }
    for (resource, q) in resources
        .and_then(|r| r.limits.as_ref())
        .into_iter()
        .flatten()
    {
        if requests.is_none_or(|req| !req.contains_key(resource)) {
            add(
                &mut r,
                resource,
                q,
                &format!("{field}.resources.limits[{resource:?}]"),
                true,
            )?;
        }
    }
    Ok(r)
}

/// Adds a quantity to a resource vector. Requests of `ephemeral-storage` and other
/// resources nodes never run out of in the planner's model are kept as extended resources;
/// only those a node reports constrain it.
fn add(
    r: &mut Resources,
    resource: &str,
    q: &Quantity,
    field: &str,
    request: bool,
) -> Result<(), FieldError> {
    let (unit, scale) = if resource == "cpu" {
        (Unit::Cores, 1000.0)
    } else {
        (Unit::Bytes, 1.0)
    };
    let value = Value::parse(&q.0, unit)
        .map_err(|e| FieldError::new(field, e.to_string()))?
        .magnitude()
        .unwrap_or(0.0);
    // Requests round up, capacities down, so a plan never overcommits by rounding.
    let amount = value * scale;
    let amount = if request {
        amount.ceil()
    } else {
        amount.floor()
    };
    if !(0.0..9.0e18).contains(&amount) {
        return Err(FieldError::new(field, format!("{:?} is out of range", q.0)));
    }
    let amount = amount as i64;
    match resource {
        "cpu" => r.cpu_millis += amount,
        "memory" => r.memory_bytes += amount,
        "pods" => r.pods += amount,
        other => *r.extended.entry(other.to_string()).or_default() += amount,
    }
    Ok(())
}

fn plus(a: &Resources, b: &Resources) -> Resources {
    let mut out = a.clone();
    out.cpu_millis += b.cpu_millis;
    out.memory_bytes += b.memory_bytes;
    out.pods += b.pods;
    for (k, v) in &b.extended {
        *out.extended.entry(k.clone()).or_default() += v;
    }
    out
}

fn max(a: &Resources, b: &Resources) -> Resources {
    let mut out = a.clone();
    out.cpu_millis = a.cpu_millis.max(b.cpu_millis);
    out.memory_bytes = a.memory_bytes.max(b.memory_bytes);
    for (k, v) in &b.extended {
        let e = out.extended.entry(k.clone()).or_default();
        *e = (*e).max(*v);
    }
    out
}

/// The required node affinity of a pod spec, validated (fields relative to `affinity`).
pub fn required_affinity(affinity: Option<&Affinity>) -> Result<Vec<NodeSelectorTerm>, FieldError> {
    let Some(required) = affinity
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
    else {
        return Ok(Vec::new());
    };
    let base = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
    let mut terms = Vec::new();
    for (i, term) in required.node_selector_terms.iter().enumerate() {
        let field = format!("{base}.nodeSelectorTerms[{i}]");
        let requirements = |list: &Option<
            Vec<k8s_openapi::api::core::v1::NodeSelectorRequirement>,
        >,
                            what: &str|
         -> Result<Vec<NodeRequirement>, FieldError> {
            let mut out = Vec::new();
            for (j, r) in list.iter().flatten().enumerate() {
                let at = format!("{field}.{what}[{j}]");
                let operator = NodeOperator::parse(&r.operator).ok_or_else(|| {
                    FieldError::new(
                        format!("{at}.operator"),
                        format!(
                            "unknown operator {:?} (expected In, NotIn, Exists, DoesNotExist, Gt, Lt)",
                            r.operator
                        ),
                    )
                })?;
                let values = r.values.clone().unwrap_or_default();
                let problem = match operator {
                    NodeOperator::In | NodeOperator::NotIn if values.is_empty() => {
                        Some("needs at least one value")
                    }
                    NodeOperator::Exists | NodeOperator::DoesNotExist if !values.is_empty() => {
                        Some("takes no values")
                    }
                    NodeOperator::Gt | NodeOperator::Lt
                        if values.len() != 1 || values[0].parse::<i64>().is_err() =>
                    {
                        Some("needs exactly one integer value")
                    }
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(FieldError::new(
                        format!("{at}.values"),
                        format!("operator {} {problem}", r.operator),
                    ));
                }
                if what == "matchFields" && r.key != "metadata.name" {
                    return Err(FieldError::new(
                        format!("{at}.key"),
                        format!(
                            "{:?} is not a supported field (expected metadata.name)",
                            r.key
                        ),
                    ));
                }
                out.push(NodeRequirement {
                    key: r.key.clone(),
                    operator,
                    values,
                });
            }
            Ok(out)
        };
        terms.push(NodeSelectorTerm {
            match_expressions: requirements(&term.match_expressions, "matchExpressions")?,
            match_fields: requirements(&term.match_fields, "matchFields")?,
        });
    }
    Ok(terms)
}

/// The tolerations of a pod spec (fields relative to the spec).
pub fn tolerations(
    list: Option<&Vec<k8s_openapi::api::core::v1::Toleration>>,
) -> Result<Vec<Toleration>, FieldError> {
    let mut out = Vec::new();
    for (i, t) in list.into_iter().flatten().enumerate() {
        let operator = match t.operator.as_deref() {
            None | Some("Equal") => TolerationOperator::Equal,
            Some("Exists") => TolerationOperator::Exists,
            Some(other) => {
                return Err(FieldError::new(
                    format!("tolerations[{i}].operator"),
                    format!("unknown operator {other:?} (expected Equal, Exists)"),
                ));
            }
        };
        let effect = match t.effect.as_deref() {
            None | Some("") => None,
            Some(e) => Some(TaintEffect::parse(e).ok_or_else(|| {
                FieldError::new(
                    format!("tolerations[{i}].effect"),
                    format!(
                        "unknown effect {e:?} (expected NoSchedule, PreferNoSchedule, NoExecute)"
                    ),
                )
            })?),
        };
        out.push(Toleration {
            key: t.key.clone().unwrap_or_default(),
            operator,
            value: t.value.clone().unwrap_or_default(),
            effect,
        });
    }
    Ok(out)
}

/// A pod to place from its identity, labels and spec. Field errors are relative to the
/// spec (`containers[0].resources.requests["cpu"]`).
pub fn pending_pod(
    key: PodKey,
    labels: BTreeMap<String, String>,
    spec: &PodSpec,
) -> Result<PendingPod, FieldError> {
    Ok(PendingPod {
        key,
        requests: pod_requests(spec)?,
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        affinity: required_affinity(spec.affinity.as_ref())?,
        tolerations: tolerations(spec.tolerations.as_ref())?,
        labels,
    })
}

/// A running pod (one with `spec.nodeName`); `None` for pods without a node, or that
/// finished or are being deleted.
pub fn placed_pod(pod: &Pod) -> Option<PlacedPod> {
    crate::offers::Candidate::from_pod(pod)?;
    let spec = pod.spec.as_ref()?;
    let node = spec.node_name.clone().filter(|n| !n.is_empty())?;
    Some(PlacedPod {
        key: pod_key(pod),
        node,
        requests: pod_requests(spec).unwrap_or_default(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
    })
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{Object, decode, parse_documents};

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
}
