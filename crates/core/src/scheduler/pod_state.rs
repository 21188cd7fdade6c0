//! What a pod is to the scheduler from its own fields: waiting for it, holding capacity on a
//! node, finished, or pinned to one node by its affinity. Shared by the input build and
//! the compiled cluster the scheduler keeps.

use std::collections::HashMap;
use std::sync::Arc;

use edgeplane_api::names::{PLANNER_GATE, SCHEDULER_NAME};
use k8s_openapi::api::core::v1::{Node, Pod};

use super::Mode;

/// The label kubelets put on their Node with the host's name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// Whether `pod` finished (Succeeded, Failed) or is being deleted.
pub fn is_finished_or_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        || matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Whether `pod` waits for this scheduler: not bound, not finished or terminating, and
/// gated by the planner's gate (gate mode) or of the `edgeplane` scheduler without any
/// gate (bind mode: gated pods are not ready for any scheduler).
pub fn is_pending(mode: Mode, pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    if is_bound(pod) || is_finished_or_terminating(pod) {
        return false;
    }
    let gates = spec.scheduling_gates.as_deref().unwrap_or_default();
    match mode {
        Mode::Gate => gates.iter().any(|g| g.name == PLANNER_GATE),
        Mode::Bind => spec.scheduler_name.as_deref() == Some(SCHEDULER_NAME) && gates.is_empty(),
    }
}

/// Whether `pod` holds capacity on a node (bound, not finished, not terminating).
pub fn is_running(pod: &Pod) -> bool {
    is_bound(pod) && !is_finished_or_terminating(pod)
}

/// The one node an unbound pod's required node affinity pins it to: every term requires
/// `metadata.name In [node]`, or `kubernetes.io/hostname In [host]` of a known node, for
/// the same single node. `hosts` maps hostname labels to node names.
pub fn pinned_node(pod: &Pod, hosts: &HashMap<String, String>) -> Option<String> {
    let terms = &pod
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let mut node: Option<String> = None;
    for term in terms {
        let by_name = term.match_fields.iter().flatten().find_map(|r| {
            (r.key == "metadata.name" && r.operator == "In")
                .then(|| single(r.values.as_deref()))
                .flatten()
        });
        let by_host = term.match_expressions.iter().flatten().find_map(|r| {
            (r.key == HOSTNAME_LABEL && r.operator == "In")
                .then(|| single(r.values.as_deref()).and_then(|h| hosts.get(&h).cloned()))
                .flatten()
        });
        let here = by_name.or(by_host)?;
        if node.as_ref().is_some_and(|n| *n != here) {
            return None;
        }
        node = Some(here);
    }
    node
}

fn single(values: Option<&[String]>) -> Option<String> {
    match values {
        Some([one]) => Some(one.clone()),
        _ => None,
    }
}

/// Hostname label -> node name, for [`pinned_node`].
pub fn hostnames(nodes: &[Arc<Node>]) -> HashMap<String, String> {
    nodes
        .iter()
        .filter_map(|n| {
            let host = n.metadata.labels.as_ref()?.get(HOSTNAME_LABEL)?;
            Some((host.clone(), n.metadata.name.clone()?))
        })
        .collect()
}
