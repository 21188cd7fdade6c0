//! The bodies of what the scheduler writes for a plan, as pure builders; the runtime
//! performs the writes.
//!
//! Gate mode: ONE JSON patch per planned pod ([`gate_patch`]) that
//! - tests that the planner's gate is still where the cached pod had it (so a pod changed
//!   in between fails with 422 and is planned again from the fresh state, instead of the
//!   wrong gate being removed);
//! - adds the required node affinity: when the pod has no required node affinity terms,
//!   `matchFields metadata.name In [node]`; when it has terms, Kubernetes (1.30+) allows a
//!   gated pod only to *add* `matchExpressions` to its existing terms (matchFields may not
//!   change), so every term gains `kubernetes.io/hostname In [<the node's hostname
//!   label>]`, which ANDs the node into each of them;
//! - removes the planner's gate and keeps the others;
//! - removes the `constraint.edgeplane.io/unplaced-reason` annotation of an earlier plan.
//!
//! kube-scheduler then binds the pod to that node (the embedded cluster's stand-in does the
//! same). Bind mode: a `pods/binding` ([`binding`]), as kube-scheduler binds.
//!
//! Unplaced pods get the reason in an annotation ([`unplaced_patch`]), a JSON merge patch
//! of metadata only, which Kubernetes allows on any pod.

use edgeplane_api::names::{PLANNER_GATE, UNPLACED_ANNOTATION};
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use super::input::HOSTNAME_LABEL;

/// The longest reason written into the annotation.
pub const MAX_REASON: usize = 1024;

/// Why a pod cannot be pinned to its planned node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("it does not carry the gate {PLANNER_GATE} any more")]
    NotGated,
    #[error(
        "it has required node affinity terms, to which a gated pod may only add label requirements, and node {0} has no {HOSTNAME_LABEL} label to require"
    )]
    NoHostname(String),
}

/// `~` and `/` escaped for a JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The one patch that places a gated pod on `node` and removes the planner's gate (see the
/// module). `hostname` is the node's `kubernetes.io/hostname` label, needed only when the
/// pod already has required node affinity terms.
pub fn gate_patch(
    pod: &Pod,
    node: &str,
    hostname: Option<&str>,
) -> Result<json_patch::Patch, PinError> {
    let spec = pod.spec.as_ref().ok_or(PinError::NotGated)?;
    let gates = spec.scheduling_gates.as_deref().unwrap_or_default();
    let index = gates
        .iter()
        .position(|g| g.name == PLANNER_GATE)
        .ok_or(PinError::NotGated)?;
    let mut ops = vec![json!({
        "op": "test",
        "path": format!("/spec/schedulingGates/{index}/name"),
        "value": PLANNER_GATE,
    })];
    let affinity = spec.affinity.as_ref();
    let node_affinity = affinity.and_then(|a| a.node_affinity.as_ref());
    let required = node_affinity.and_then(|n| {
        n.required_during_scheduling_ignored_during_execution
            .as_ref()
    });
    let terms = required
        .map(|r| r.node_selector_terms.as_slice())
        .filter(|t| !t.is_empty());
    match terms {
        None => {
            let required = json!({"nodeSelectorTerms": [{
                "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]
            }]});
            let base = "/spec/affinity";
            let op = if affinity.is_none() {
                json!({"op": "add", "path": base,
                       "value": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}})
            } else if node_affinity.is_none() {
                json!({"op": "add", "path": format!("{base}/nodeAffinity"),
                       "value": {"requiredDuringSchedulingIgnoredDuringExecution": required}})
            } else {
                json!({"op": "add",
                       "path": format!("{base}/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"),
                       "value": required})
            };
            ops.push(op);
        }
        Some(terms) => {
            let host = hostname.ok_or_else(|| PinError::NoHostname(node.to_string()))?;
            let requirement = json!({"key": HOSTNAME_LABEL, "operator": "In", "values": [host]});
            for (i, term) in terms.iter().enumerate() {
                let path = format!(
                    "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/{i}/matchExpressions"
                );
                ops.push(match &term.match_expressions {
                    Some(_) => {
                        json!({"op": "add", "path": format!("{path}/-"), "value": requirement})
                    }
                    None => json!({"op": "add", "path": path, "value": [requirement]}),
                });
            }
        }
    }
    ops.push(json!({"op": "remove", "path": format!("/spec/schedulingGates/{index}")}));
    if has_unplaced_annotation(pod) {
        ops.push(json!({
            "op": "remove",
            "path": format!("/metadata/annotations/{}", escape(UNPLACED_ANNOTATION)),
        }));
    }
    serde_json::from_value(Value::Array(ops)).map_err(|_| PinError::NotGated)
}

/// Whether the pod carries the reason of an earlier plan that could not place it.
pub fn has_unplaced_annotation(pod: &Pod) -> bool {
    unplaced_reason(pod).is_some()
}

/// The reason of an earlier plan that could not place the pod.
pub fn unplaced_reason(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(UNPLACED_ANNOTATION)
        .map(String::as_str)
}

/// Whether the pod's recorded reason must be (re)written for `reason`: an unchanged
/// reason is not written again, so replanning a pod that still does not fit writes nothing.
pub fn needs_update(pod: &Pod, reason: &str) -> bool {
    unplaced_reason(pod) != Some(clip(reason).as_str())
}

/// `reason`, cut to [`MAX_REASON`] bytes on a character boundary.
pub fn clip(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_string();
    }
    let mut cut = MAX_REASON - 3;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &reason[..cut])
}

/// The JSON merge patch that records why the pod was not placed.
pub fn unplaced_patch(reason: &str) -> Value {
    json!({"metadata": {"annotations": {UNPLACED_ANNOTATION: clip(reason)}}})
}

/// The JSON merge patch that removes the reason (bind mode, before binding).
pub fn clear_unplaced_patch() -> Value {
    json!({"metadata": {"annotations": {UNPLACED_ANNOTATION: null}}})
}

/// The `pods/binding` body that binds `pod` to `node` (bind mode). The pod's uid is a
/// precondition, so a pod recreated under the same name is not bound by an old plan.
pub fn binding(pod: &Pod, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{Object, decode, parse_documents};

    fn pod(yaml: &str) -> Pod {
        let docs = parse_documents("pod.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
        match decode(&docs[0]).unwrap_or_else(|e| panic!("{e}")) {
            Object::Pod(p) => *p,
            other => panic!("not a pod: {other:?}"),
        }
    }

    fn ops(patch: &json_patch::Patch) -> Value {
        serde_json::to_value(patch).unwrap_or_default()
    }

    /// The patch applied to the pod's JSON, as the API server would.
    fn applied(pod: &Pod, patch: &json_patch::Patch) -> Value {
        let mut value = serde_json::to_value(pod).unwrap_or_default();
        json_patch::patch(&mut value, patch).unwrap_or_else(|e| panic!("{e}"));
        value
    }

    #[test]
    fn sets_affinity_and_removes_only_our_gate_in_one_patch() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: ar, annotations: {constraint.edgeplane.io/unplaced-reason: "no room"}}
spec:
  schedulingGates: [{name: example.com/quota}, {name: constraint.edgeplane.io/planner}]
  containers: [{name: c, image: i}]
"#);
        let patch = gate_patch(&p, "edge-1-a", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ops(&patch),
            json!([
                {"op": "test", "path": "/spec/schedulingGates/1/name", "value": "constraint.edgeplane.io/planner"},
                {"op": "add", "path": "/spec/affinity", "value": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["edge-1-a"]}]}]}}}},
                {"op": "remove", "path": "/spec/schedulingGates/1"},
                {"op": "remove", "path": "/metadata/annotations/constraint.edgeplane.io~1unplaced-reason"},
            ])
        );
        let after = applied(&p, &patch);
        assert_eq!(
            after["spec"]["schedulingGates"],
            json!([{"name": "example.com/quota"}])
        );
        assert_eq!(after["metadata"]["annotations"], json!({}));
    }

    #[test]
    fn keeps_other_affinity_and_fills_empty_required_affinity() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: ar}
spec:
  schedulingGates: [{name: constraint.edgeplane.io/planner}]
  affinity:
    podAntiAffinity: {}
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - {weight: 1, preference: {matchExpressions: [{key: tier, operator: In, values: [edge]}]}}
  containers: [{name: c, image: i}]
"#);
        let after = applied(
            &p,
            &gate_patch(&p, "edge-1-a", None).unwrap_or_else(|e| panic!("{e}")),
        );
        let na = &after["spec"]["affinity"]["nodeAffinity"];
        assert_eq!(
            na["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
            1
        );
        assert_eq!(
            na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"]
                [0]["values"],
            json!(["edge-1-a"])
        );
        assert!(after["spec"]["affinity"].get("podAntiAffinity").is_some());

        let no_node_affinity = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: ar}
spec:
  schedulingGates: [{name: constraint.edgeplane.io/planner}]
  affinity: {podAntiAffinity: {}}
  containers: [{name: c, image: i}]
"#);
        let after = applied(
            &no_node_affinity,
            &gate_patch(&no_node_affinity, "n", None).unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(
            after["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"],
            json!(["n"])
        );
    }

    #[test]
    fn ands_the_node_into_existing_terms_by_hostname() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: r, namespace: ar}
spec:
  schedulingGates: [{name: constraint.edgeplane.io/planner}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: tier, operator: NotIn, values: [regional]}]
        - matchFields: [{key: metadata.name, operator: In, values: [edge-1-a, edge-2-a]}]
  containers: [{name: c, image: i}]
"#);
        assert_eq!(
            gate_patch(&p, "edge-1-a", None).err(),
            Some(PinError::NoHostname("edge-1-a".into()))
        );
        let after = applied(
            &p,
            &gate_patch(&p, "edge-1-a", Some("host-e1a")).unwrap_or_else(|e| panic!("{e}")),
        );
        let terms = &after["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        let host =
            json!({"key": "kubernetes.io/hostname", "operator": "In", "values": ["host-e1a"]});
        assert_eq!(terms[0]["matchExpressions"][1], host);
        assert_eq!(terms[1]["matchExpressions"], json!([host]));
        // matchFields untouched, as Kubernetes requires of gated pods.
        assert_eq!(
            terms[1]["matchFields"][0]["values"],
            json!(["edge-1-a", "edge-2-a"])
        );
        assert_eq!(after["spec"]["schedulingGates"], json!([]));
    }

    #[test]
    fn a_pod_without_the_gate_is_not_patched() {
        let p = pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: r}\nspec: {containers: [{name: c, image: i}]}\n",
        );
        assert_eq!(gate_patch(&p, "n", None).err(), Some(PinError::NotGated));
    }

    #[test]
    fn annotation_patches_and_clipping() {
        assert_eq!(
            unplaced_patch("no node has 16 CPU free"),
            json!({"metadata": {"annotations": {"constraint.edgeplane.io/unplaced-reason": "no node has 16 CPU free"}}})
        );
        let long = "é".repeat(1000);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_REASON && clipped.ends_with("..."));
        assert_eq!(
            clear_unplaced_patch()["metadata"]["annotations"]["constraint.edgeplane.io/unplaced-reason"],
            Value::Null
        );
    }

    #[test]
    fn binding_targets_the_node_with_the_pod_uid() {
        let mut p = pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: r, namespace: ar}\nspec: {containers: [{name: c, image: i}]}\n",
        );
        p.metadata.uid = Some("u-1".into());
        let b = binding(&p, "edge-1-a");
        let v = serde_json::to_value(&b).unwrap_or_default();
        assert_eq!(
            v["metadata"],
            json!({"name": "r", "namespace": "ar", "uid": "u-1"})
        );
        assert_eq!(
            v["target"],
            json!({"apiVersion": "v1", "kind": "Node", "name": "edge-1-a"})
        );
    }
}
