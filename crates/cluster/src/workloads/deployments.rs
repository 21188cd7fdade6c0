//! The Deployment controller: one ReplicaSet per template revision, rolled out
//! (RollingUpdate or Recreate) by scaling them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{MANAGER, int, owned, owner_ref, set_replicas, template_hash, write_status};
use crate::api::{State, WriteOptions};
use crate::controller::record_event;
use crate::object;
use crate::store::ObjKey;

/// A ReplicaSet as the Deployment controller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsView {
    pub name: String,
    pub replicas: i64,
    pub status_replicas: i64,
    pub available: i64,
}

/// Target replicas of each ReplicaSet of a Deployment: the new one gets all of them; old
/// ones shrink as new pods become available (RollingUpdate), or go to zero first
/// (Recreate, the new one waiting until the old pods are gone).
pub fn rollout(
    desired: i64,
    recreate: bool,
    new: &RsView,
    old: &[RsView],
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if recreate {
        for o in old {
            out.insert(o.name.clone(), 0);
        }
        let old_pods: i64 = old.iter().map(|o| o.status_replicas).sum();
        out.insert(
            new.name.clone(),
            if old_pods == 0 {
                desired
            } else {
                new.replicas.min(desired)
            },
        );
        return out;
    }
    out.insert(new.name.clone(), desired);
    let mut keep_old = (desired - new.available).max(0);
    for o in old {
        let target = o.replicas.min(keep_old);
        keep_old -= target;
        out.insert(o.name.clone(), target);
    }
    out
}

pub(super) fn reconcile_deployment(st: &mut State, key: &ObjKey) {
    let Some(d) = st.store.get("deployments.apps", key) else {
        return;
    };
    if object::deletion_timestamp(&d).is_some() {
        return;
    }
    let desired = int(&d, &["spec", "replicas"], 1);
    let template = d
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .unwrap_or(Value::Null);
    let hash = template_hash(&template);
    let rss = owned(st, object::uid(&d), "replicasets.apps");
    let is_new = |rs: &Value| object::labels(rs).get("pod-template-hash") == Some(&hash);
    let max_revision = rss
        .iter()
        .filter_map(|r| {
            object::annotations(r)
                .get("deployment.kubernetes.io/revision")
                .and_then(|v| v.parse::<i64>().ok())
        })
        .max()
        .unwrap_or(0);
    let mut new_rs = rss.iter().find(|r| is_new(r)).cloned();
    if new_rs.is_none() {
        let mut tpl = template.clone();
        tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = d
            .get("spec")
            .and_then(|s| s.get("selector"))
            .cloned()
            .unwrap_or(json!({}));
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let recreate = object::get_str(&d, &["spec", "strategy", "type"]) == Some("Recreate");
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": format!("{}-{hash}", key.1),
                "namespace": key.0,
                "labels": tpl["metadata"]["labels"].clone(),
                "annotations": {
                    "deployment.kubernetes.io/revision": (max_revision + 1).to_string(),
                    "deployment.kubernetes.io/desired-replicas": desired.to_string(),
                },
                "ownerReferences": [owner_ref(&d)],
            },
            "spec": {
                "replicas": if recreate && !rss.is_empty() { 0 } else { desired },
                "selector": selector,
                "template": tpl,
                "minReadySeconds": int(&d, &["spec", "minReadySeconds"], 0),
            },
        });
        if let Some(def) = st.registry.find("apps", "v1", "replicasets") {
            match st.create(&def, Some(&key.0), rs, &WriteOptions::manager(MANAGER)) {
                Ok(created) => {
                    record_event(
                        st,
                        &d,
                        "Normal",
                        "ScalingReplicaSet",
                        &format!(
                            "Scaled up replica set {} from 0 to {}",
                            object::name(&created),
                            int(&created, &["spec", "replicas"], 0)
                        ),
                        "deployment-controller",
                    );
                    new_rs = Some(created);
                }
                Err(e) => tracing::debug!(error = %e, "creating replica set failed"),
            }
        }
    }
    let Some(new_rs) = new_rs else {
        return;
    };
    let view = |r: &Value| RsView {
        name: object::name(r).to_string(),
        replicas: int(r, &["spec", "replicas"], 1),
        status_replicas: int(r, &["status", "replicas"], 0),
        available: int(r, &["status", "availableReplicas"], 0),
    };
    let old: Vec<Arc<Value>> = {
        let mut o: Vec<Arc<Value>> = rss.iter().filter(|r| !is_new(r)).cloned().collect();
        o.sort_by_key(|r| {
            object::meta_str(r, "creationTimestamp")
                .unwrap_or("")
                .to_string()
        });
        o
    };
    let old_views: Vec<RsView> = old.iter().map(|r| view(r)).collect();
    let recreate = object::get_str(&d, &["spec", "strategy", "type"]) == Some("Recreate");
    let targets = rollout(desired, recreate, &view(&new_rs), &old_views);
    for rs in old.iter().chain(std::iter::once(&new_rs)) {
        if let Some(t) = targets.get(object::name(rs)) {
            let before = int(rs, &["spec", "replicas"], 1);
            if before != *t {
                set_replicas(st, "replicasets.apps", rs, *t);
                let verb = if *t > before { "up" } else { "down" };
                record_event(
                    st,
                    &d,
                    "Normal",
                    "ScalingReplicaSet",
                    &format!(
                        "Scaled {verb} replica set {} from {before} to {t}",
                        object::name(rs)
                    ),
                    "deployment-controller",
                );
            }
        }
    }
    // Status from the ReplicaSets as they are now.
    let rss = owned(st, object::uid(&d), "replicasets.apps");
    let sum = |path: &[&str]| rss.iter().map(|r| int(r, path, 0)).sum::<i64>();
    let replicas = sum(&["status", "replicas"]);
    let ready = sum(&["status", "readyReplicas"]);
    let available = sum(&["status", "availableReplicas"]);
    let updated = rss
        .iter()
        .find(|r| is_new(r))
        .map_or(0, |r| int(r, &["status", "replicas"], 0));
    let now = st.now();
    let keep_time = |t: &str, status: &str| -> String {
        d.get("status")
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter().find(|c| {
                    c.get("type").and_then(Value::as_str) == Some(t)
                        && c.get("status").and_then(Value::as_str) == Some(status)
                })
            })
            .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str))
            .map_or_else(|| now.clone(), str::to_string)
    };
    let available_ok = available >= desired;
    let complete = updated == desired && available_ok && replicas == desired;
    let (a_status, a_reason, a_msg) = if available_ok {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    let (p_reason, p_msg) = if complete {
        (
            "NewReplicaSetAvailable",
            format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                object::name(&new_rs)
            ),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{}\" is progressing.", object::name(&new_rs)),
        )
    };
    let mut status = json!({
        "observedGeneration": int(&d, &["metadata", "generation"], 1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [
            {"type": "Available", "status": a_status, "reason": a_reason, "message": a_msg,
             "lastUpdateTime": keep_time("Available", a_status), "lastTransitionTime": keep_time("Available", a_status)},
            {"type": "Progressing", "status": "True", "reason": p_reason, "message": p_msg,
             "lastUpdateTime": keep_time("Progressing", "True"), "lastTransitionTime": keep_time("Progressing", "True")},
        ],
    });
    if desired - available > 0 {
        status["unavailableReplicas"] = json!(desired - available);
    }
    write_status(st, "deployments.apps", &d, status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollouts() {
        let new = RsView {
            name: "n".into(),
            replicas: 0,
            status_replicas: 0,
            available: 0,
        };
        let old = vec![RsView {
            name: "o".into(),
            replicas: 3,
            status_replicas: 3,
            available: 3,
        }];
        let t = rollout(3, false, &new, &old);
        assert_eq!((t["n"], t["o"]), (3, 3));
        let half = RsView {
            available: 2,
            replicas: 3,
            status_replicas: 3,
            ..new.clone()
        };
        let t = rollout(3, false, &half, &old);
        assert_eq!((t["n"], t["o"]), (3, 1));
        let t = rollout(3, true, &new, &old);
        assert_eq!((t["n"], t["o"]), (0, 0));
        let gone = vec![RsView {
            name: "o".into(),
            replicas: 0,
            status_replicas: 0,
            available: 0,
        }];
        assert_eq!(rollout(3, true, &new, &gone)["n"], 3);
    }
}
