//! The ReplicaSet controller: keeps a ReplicaSet's pods at its replica count.

use serde_json::{Value, json};

use super::{
    NameOf, PodView, create_pod, delete_pod, int, owned_pods, pod_from_template, write_status,
};
use crate::api::State;
use crate::controller::record_event;
use crate::object;
use crate::store::ObjKey;

/// How many pods a ReplicaSet must create, and which to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaDiff {
    pub create: usize,
    pub delete: Vec<String>,
}

/// The ReplicaSet controller's decision. Surplus pods go in the order kube-controller-manager
/// prefers: unscheduled, then pending, then not ready, then the newest.
pub fn replicaset_diff(desired: i64, pods: &[PodView]) -> ReplicaDiff {
    let mut active: Vec<&PodView> = pods.iter().filter(|p| p.active()).collect();
    let have = active.len() as i64;
    if have < desired {
        return ReplicaDiff {
            create: (desired - have) as usize,
            delete: vec![],
        };
    }
    active.sort_by(|a, b| {
        (
            a.scheduled,
            a.phase == "Running",
            a.ready,
            std::cmp::Reverse(&a.created),
            &a.name,
        )
            .cmp(&(
                b.scheduled,
                b.phase == "Running",
                b.ready,
                std::cmp::Reverse(&b.created),
                &b.name,
            ))
    });
    ReplicaDiff {
        create: 0,
        delete: active
            .iter()
            .take((have - desired).max(0) as usize)
            .map(|p| p.name.clone())
            .collect(),
    }
}

pub(super) fn reconcile_replicaset(st: &mut State, key: &ObjKey) {
    let Some(rs) = st.store.get("replicasets.apps", key) else {
        return;
    };
    if object::deletion_timestamp(&rs).is_some() {
        return;
    }
    let pods = owned_pods(st, object::uid(&rs));
    let views: Vec<PodView> = pods.iter().map(|p| PodView::of(p)).collect();
    let desired = int(&rs, &["spec", "replicas"], 1);
    let diff = replicaset_diff(desired, &views);
    let template = rs
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or(Value::Null);
    for _ in 0..diff.create {
        let pod = pod_from_template(&rs, &template, NameOf::Generate(format!("{}-", key.1)), &[]);
        if let Some(name) = create_pod(st, &rs, pod) {
            record_event(
                st,
                &rs,
                "Normal",
                "SuccessfulCreate",
                &format!("Created pod: {name}"),
                "replicaset-controller",
            );
        }
    }
    for name in &diff.delete {
        if delete_pod(st, &key.0, name) {
            record_event(
                st,
                &rs,
                "Normal",
                "SuccessfulDelete",
                &format!("Deleted pod: {name}"),
                "replicaset-controller",
            );
        }
    }
    let pods = owned_pods(st, object::uid(&rs));
    let views: Vec<PodView> = pods.iter().map(|p| PodView::of(p)).collect();
    let active = views.iter().filter(|p| p.active()).count();
    let ready = views.iter().filter(|p| p.active() && p.ready).count();
    let status = json!({
        "replicas": active,
        "fullyLabeledReplicas": active,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": int(&rs, &["metadata", "generation"], 1),
    });
    write_status(st, "replicasets.apps", &rs, status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::tests::pv;

    #[test]
    fn replicasets_create_and_delete_the_right_pods() {
        let pods = vec![
            pv("a", "Running", true, "t1"),
            pv("b", "Failed", false, "t1"),
            pv("c", "Pending", false, "t2"),
        ];
        assert_eq!(
            replicaset_diff(3, &pods),
            ReplicaDiff {
                create: 1,
                delete: vec![]
            }
        );
        assert_eq!(
            replicaset_diff(1, &pods),
            ReplicaDiff {
                create: 0,
                delete: vec!["c".into()]
            }
        );
        let newer = vec![
            pv("old", "Running", true, "t1"),
            pv("new", "Running", true, "t2"),
        ];
        assert_eq!(replicaset_diff(1, &newer).delete, vec!["new".to_string()]);
        let mut deleting = pv("d", "Running", true, "t1");
        deleting.deleting = true;
        assert_eq!(replicaset_diff(1, &[deleting]).create, 1);
    }
}
