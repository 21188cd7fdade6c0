//! The StatefulSet controller: pods with stable names and ordinals, created, replaced
//! and removed in order (OrderedReady) or all at once (Parallel).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    NameOf, PodView, create_pod, delete_pod, int, owned_pods, pod_from_template, template_hash,
    write_status,
};
use crate::api::State;
use crate::controller::record_event;
use crate::object;
use crate::store::ObjKey;

/// One step of a StatefulSet controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsAction {
    Create(i64),
    Delete(String),
}

/// The StatefulSet controller's next actions. With `ordered` (OrderedReady), pod N is
/// created only when 0..N are Running and Ready, one change at a time; `Parallel` does all
/// at once. Failed pods are deleted (and recreated with the same name), surplus ordinals
/// go highest first, and pods of an old revision are replaced highest first.
pub fn statefulset_plan(
    replicas: i64,
    ordered: bool,
    pods: &BTreeMap<i64, PodView>,
    revision: &str,
) -> Vec<StsAction> {
    let mut actions = Vec::new();
    for i in 0..replicas {
        match pods.get(&i) {
            None => {
                actions.push(StsAction::Create(i));
                if ordered {
                    return actions;
                }
            }
            Some(p) if p.terminal() && !p.deleting => {
                actions.push(StsAction::Delete(p.name.clone()));
                if ordered {
                    return actions;
                }
            }
            Some(p) if ordered && (p.deleting || !(p.phase == "Running" && p.ready)) => {
                return actions;
            }
            Some(_) => {}
        }
    }
    let condemned: Vec<&PodView> = pods.range(replicas..).map(|(_, p)| p).rev().collect();
    if !condemned.is_empty() {
        if ordered {
            if !condemned.iter().any(|p| p.deleting)
                && let Some(p) = condemned.first()
            {
                actions.push(StsAction::Delete(p.name.clone()));
            }
        } else {
            actions.extend(
                condemned
                    .iter()
                    .filter(|p| !p.deleting)
                    .map(|p| StsAction::Delete(p.name.clone())),
            );
        }
        return actions;
    }
    if !actions.is_empty() {
        return actions;
    }
    // Rolling update: one pod at a time, when everything is ready.
    let all_ready = (0..replicas).all(|i| pods.get(&i).is_some_and(|p| p.ready && !p.deleting));
    if all_ready
        && let Some(p) = (0..replicas)
            .rev()
            .filter_map(|i| pods.get(&i))
            .find(|p| p.revision.as_deref() != Some(revision))
    {
        actions.push(StsAction::Delete(p.name.clone()));
    }
    actions
}

fn ordinal(sts_name: &str, pod_name: &str) -> Option<i64> {
    pod_name
        .strip_prefix(sts_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

pub(super) fn reconcile_statefulset(st: &mut State, key: &ObjKey) {
    let Some(sts) = st.store.get("statefulsets.apps", key) else {
        return;
    };
    if object::deletion_timestamp(&sts).is_some() {
        return;
    }
    let template = sts
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or(Value::Null);
    let revision = format!("{}-{}", key.1, template_hash(&template));
    let replicas = int(&sts, &["spec", "replicas"], 1);
    let ordered = object::get_str(&sts, &["spec", "podManagementPolicy"]).unwrap_or("OrderedReady")
        != "Parallel";
    let pods = owned_pods(st, object::uid(&sts));
    let views: BTreeMap<i64, PodView> = pods
        .iter()
        .filter_map(|p| ordinal(&key.1, object::name(p)).map(|i| (i, PodView::of(p))))
        .collect();
    for action in statefulset_plan(replicas, ordered, &views, &revision) {
        match action {
            StsAction::Create(i) => {
                let name = format!("{}-{i}", key.1);
                let mut pod = pod_from_template(
                    &sts,
                    &template,
                    NameOf::Exact(name.clone()),
                    &[
                        ("controller-revision-hash", revision.clone()),
                        ("statefulset.kubernetes.io/pod-name", name.clone()),
                        ("apps.kubernetes.io/pod-index", i.to_string()),
                    ],
                );
                pod["spec"]["hostname"] = json!(name);
                if let Some(svc) =
                    object::get_str(&sts, &["spec", "serviceName"]).filter(|s| !s.is_empty())
                {
                    pod["spec"]["subdomain"] = json!(svc);
                }
                if create_pod(st, &sts, pod).is_some() {
                    record_event(
                        st,
                        &sts,
                        "Normal",
                        "SuccessfulCreate",
                        &format!("create Pod {name} in StatefulSet {} successful", key.1),
                        "statefulset-controller",
                    );
                }
            }
            StsAction::Delete(name) => {
                if delete_pod(st, &key.0, &name) {
                    record_event(
                        st,
                        &sts,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("delete Pod {name} in StatefulSet {} successful", key.1),
                        "statefulset-controller",
                    );
                }
            }
        }
    }
    let pods = owned_pods(st, object::uid(&sts));
    let views: Vec<PodView> = pods.iter().map(|p| PodView::of(p)).collect();
    let count = views.iter().filter(|p| !p.terminal()).count();
    let ready = views.iter().filter(|p| p.active() && p.ready).count();
    let updated = views
        .iter()
        .filter(|p| !p.terminal() && p.revision.as_deref() == Some(revision.as_str()))
        .count();
    let status = json!({
        "observedGeneration": int(&sts, &["metadata", "generation"], 1),
        "replicas": count,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": updated,
        "updatedReplicas": updated,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    write_status(st, "statefulsets.apps", &sts, status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::tests::pv;

    #[test]
    fn statefulsets_go_in_order() {
        let mut pods = BTreeMap::new();
        assert_eq!(
            statefulset_plan(3, true, &pods, "r1"),
            vec![StsAction::Create(0)]
        );
        assert_eq!(statefulset_plan(3, false, &pods, "r1").len(), 3);
        pods.insert(0, pv("web-0", "Pending", false, "t"));
        assert_eq!(statefulset_plan(3, true, &pods, "r1"), vec![]);
        pods.insert(0, pv("web-0", "Running", true, "t"));
        assert_eq!(
            statefulset_plan(3, true, &pods, "r1"),
            vec![StsAction::Create(1)]
        );
        pods.insert(1, pv("web-1", "Failed", false, "t"));
        assert_eq!(
            statefulset_plan(3, true, &pods, "r1"),
            vec![StsAction::Delete("web-1".into())]
        );
        pods.insert(1, pv("web-1", "Running", true, "t"));
        pods.insert(2, pv("web-2", "Running", true, "t"));
        assert_eq!(
            statefulset_plan(2, true, &pods, "r1"),
            vec![StsAction::Delete("web-2".into())]
        );
        assert_eq!(statefulset_plan(3, true, &pods, "r1"), vec![]);
        assert_eq!(
            statefulset_plan(3, true, &pods, "r2"),
            vec![StsAction::Delete("web-2".into())]
        );
    }
}
