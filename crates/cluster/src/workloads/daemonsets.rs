//! The DaemonSet controller: one pod on each node the template fits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplane_core::placement::{self, NodeFacts};
use serde_json::{Value, json};

use super::{
    NameOf, PodView, create_pod, delete_pod, int, owned_pods, pod_from_template, template_hash,
    write_status,
};
use crate::api::State;
use crate::object;
use crate::scheduler::{NodeInfo, PodPlacement};
use crate::store::ObjKey;

/// Whether a DaemonSet pod belongs on a node (selector, affinity and NoSchedule taints;
/// daemon pods tolerate the lifecycle taints like the real controller adds).
fn daemon_fits(template: &Value, node: &Value) -> bool {
    let Ok(pod) = serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(
        json!({"spec": template.get("spec").cloned().unwrap_or(json!({}))}),
    ) else {
        return false;
    };
    let Ok(n) = serde_json::from_value::<k8s_openapi::api::core::v1::Node>(node.clone()) else {
        return false;
    };
    let info = NodeInfo::from_node(&n);
    let taints: Vec<placement::Taint> = placement::effective_taints(&info.taints)
        .into_iter()
        .filter(|t| !t.key.starts_with("node.kubernetes.io/"))
        .collect();
    let facts = NodeFacts {
        name: &info.name,
        labels: &info.labels,
        taints: &taints,
        // Daemon pods tolerate the cordon too.
        unschedulable: false,
    };
    placement::misfit(facts, PodPlacement::of(&pod).rules()).is_none()
}

pub(super) fn reconcile_daemonset(st: &mut State, key: &ObjKey) {
    let Some(ds) = st.store.get("daemonsets.apps", key) else {
        return;
    };
    if object::deletion_timestamp(&ds).is_some() {
        return;
    }
    let template = ds
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or(Value::Null);
    let revision = template_hash(&template);
    let nodes: Vec<Arc<Value>> = st
        .store
        .range("nodes", None, None)
        .map(|n| n.value_arc())
        .collect();
    let eligible: BTreeSet<String> = nodes
        .iter()
        .filter(|n| daemon_fits(&template, n))
        .map(|n| object::name(n).to_string())
        .collect();
    let pods = owned_pods(st, object::uid(&ds));
    let mut by_node: BTreeMap<String, Vec<PodView>> = BTreeMap::new();
    for p in &pods {
        let target = object::get_path(
            p,
            &[
                "spec",
                "affinity",
                "nodeAffinity",
                "requiredDuringSchedulingIgnoredDuringExecution",
                "nodeSelectorTerms",
            ],
        )
        .and_then(|t| t.get(0))
        .and_then(|t| t.get("matchFields"))
        .and_then(|f| f.get(0))
        .and_then(|f| f.get("values"))
        .and_then(|v| v.get(0))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
        by_node.entry(target).or_default().push(PodView::of(p));
    }
    for node in &eligible {
        let existing = by_node.get(node).cloned().unwrap_or_default();
        for p in existing.iter().filter(|p| p.terminal() && !p.deleting) {
            delete_pod(st, &key.0, &p.name);
        }
        if !existing.iter().any(|p| p.active()) {
            let mut pod = pod_from_template(
                &ds,
                &template,
                NameOf::Generate(format!("{}-", key.1)),
                &[("controller-revision-hash", revision.clone())],
            );
            let term = json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]});
            pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
                json!({"nodeSelectorTerms": [term]});
            let tolerations = pod["spec"]["tolerations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut tols = tolerations;
            for (k, e) in [
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ] {
                tols.push(json!({"key": k, "operator": "Exists", "effect": e}));
            }
            pod["spec"]["tolerations"] = json!(tols);
            create_pod(st, &ds, pod);
        }
    }
    for (node, views) in &by_node {
        if !eligible.contains(node) {
            for p in views.iter().filter(|p| !p.deleting) {
                delete_pod(st, &key.0, &p.name);
            }
        }
    }
    let pods = owned_pods(st, object::uid(&ds));
    let views: Vec<PodView> = pods.iter().map(|p| PodView::of(p)).collect();
    let current = views
        .iter()
        .filter(|p| p.active() && eligible.contains(&p.node) || p.active() && !p.scheduled)
        .count();
    let ready = views.iter().filter(|p| p.active() && p.ready).count();
    let updated = views
        .iter()
        .filter(|p| p.active() && p.revision.as_deref() == Some(revision.as_str()))
        .count();
    let status = json!({
        "observedGeneration": int(&ds, &["metadata", "generation"], 1),
        "desiredNumberScheduled": eligible.len(),
        "currentNumberScheduled": current,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": updated,
    });
    write_status(st, "daemonsets.apps", &ds, status);
}
