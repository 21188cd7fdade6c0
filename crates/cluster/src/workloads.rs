//! Workload controllers: Deployments (through ReplicaSets), ReplicaSets, StatefulSets and
//! DaemonSets keep their pods at the declared count. Failed, evicted or deleted pods are
//! replaced; new pods carry controller owner references, so deleting a workload
//! garbage-collects its pods.
//!
//! Decisions are plain functions (`replicaset_diff`, `rollout`, `statefulset_plan`);
//! the loop around them reads the store and writes through the API semantics.
//!
//! Simplifications: a Deployment rollout starts all new pods at once and scales old
//! ReplicaSets down as new pods become available (maxSurge/maxUnavailable are not
//! applied step by step); orphaned pods are not adopted; minReadySeconds is ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplane_core::placement::{self, NodeFacts};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, DeleteOptions, State, Subresource, WriteOptions, controller_uid};
use crate::controller::{Batch, Feed, any_changed, record_event};
use crate::object;
use crate::scheduler::{NodeInfo, PodPlacement};
use crate::store::ObjKey;

const MANAGER: &str = "kube-controller-manager";

/// What the controllers need to know of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub deleting: bool,
    pub scheduled: bool,
    pub created: String,
    pub revision: Option<String>,
    pub node: String,
}

impl PodView {
    pub fn of(pod: &Value) -> Self {
        PodView {
            name: object::name(pod).to_string(),
            phase: object::get_str(pod, &["status", "phase"])
                .unwrap_or("")
                .to_string(),
            ready: crate::pdb::pod_is_healthy(pod),
            deleting: object::deletion_timestamp(pod).is_some(),
            scheduled: !object::get_str(pod, &["spec", "nodeName"])
                .unwrap_or("")
                .is_empty(),
            created: object::meta_str(pod, "creationTimestamp")
                .unwrap_or("")
                .to_string(),
            revision: object::labels(pod).get("controller-revision-hash").cloned(),
            node: object::get_str(pod, &["spec", "nodeName"])
                .unwrap_or("")
                .to_string(),
        }
    }

    pub fn terminal(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }

    /// Counts toward the replicas: neither finished nor being deleted.
    pub fn active(&self) -> bool {
        !self.terminal() && !self.deleting
    }
}

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

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A short, stable hash of a pod template (`pod-template-hash`, `controller-revision-hash`).
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = Sha256::digest(canonical(template).to_string().as_bytes());
    let mut n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    (0..10)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": object::name(owner),
        "uid": object::uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A pod from a workload's template.
fn pod_from_template(
    owner: &Value,
    template: &Value,
    name: NameOf,
    extra_labels: &[(&str, String)],
) -> Value {
    let mut meta = template
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !meta.is_object() {
        meta = json!({});
    }
    meta["namespace"] = json!(object::namespace(owner));
    match name {
        NameOf::Exact(n) => meta["name"] = json!(n),
        NameOf::Generate(g) => meta["generateName"] = json!(g),
    }
    for (k, v) in extra_labels {
        meta["labels"][*k] = json!(v);
    }
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

enum NameOf {
    Exact(String),
    Generate(String),
}

fn owned_pods(st: &State, owner_uid: &str) -> Vec<Arc<Value>> {
    st.store
        .dependents_of(owner_uid)
        .into_iter()
        .filter(|(s, _)| s == "pods")
        .filter_map(|(s, k)| st.store.get(&s, &k))
        .filter(|p| controller_uid(p).as_deref() == Some(owner_uid))
        .collect()
}

fn owned(st: &State, owner_uid: &str, storage: &str) -> Vec<Arc<Value>> {
    st.store
        .dependents_of(owner_uid)
        .into_iter()
        .filter(|(s, _)| s == storage)
        .filter_map(|(s, k)| st.store.get(&s, &k))
        .filter(|o| controller_uid(o).as_deref() == Some(owner_uid))
        .collect()
}

fn int(v: &Value, path: &[&str], default: i64) -> i64 {
    object::get_path(v, path)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn create_pod(st: &mut State, owner: &Value, pod: Value) -> Option<String> {
    let def = st.registry.find("", "v1", "pods")?;
    let ns = object::namespace(owner).to_string();
    match st.create(&def, Some(&ns), pod, &WriteOptions::manager(MANAGER)) {
        Ok(p) => Some(object::name(&p).to_string()),
        Err(e) => {
            let msg = format!("Error creating: {}", e.message);
            record_event(st, owner, "Warning", "FailedCreate", &msg, MANAGER);
            None
        }
    }
}

fn delete_pod(st: &mut State, ns: &str, name: &str) -> bool {
    let Some(def) = st.registry.find("", "v1", "pods") else {
        return false;
    };
    st.delete(&def, Some(ns), name, &DeleteOptions::default())
        .is_ok()
}

fn write_status(st: &mut State, storage: &str, obj: &Value, status: Value) {
    if obj.get("status") == Some(&status) {
        return;
    }
    let Some(def) = st.def_by_storage(storage) else {
        return;
    };
    let mut new = obj.clone();
    new["status"] = status;
    let (ns, name) = crate::store::key_of(obj);
    let ns = (!ns.is_empty()).then_some(ns);
    let _ = st.update(
        &def,
        ns.as_deref(),
        &name,
        new,
        Subresource::Status,
        &WriteOptions::manager(MANAGER),
    );
}

fn set_replicas(st: &mut State, storage: &str, obj: &Value, replicas: i64) {
    if int(obj, &["spec", "replicas"], 1) == replicas {
        return;
    }
    let Some(def) = st.def_by_storage(storage) else {
        return;
    };
    let mut new = obj.clone();
    new["spec"]["replicas"] = json!(replicas);
    let (ns, name) = crate::store::key_of(obj);
    let _ = st.update(
        &def,
        Some(&ns),
        &name,
        new,
        Subresource::Main,
        &WriteOptions::manager(MANAGER),
    );
}

fn reconcile_replicaset(st: &mut State, key: &ObjKey) {
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

fn reconcile_deployment(st: &mut State, key: &ObjKey) {
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

fn ordinal(sts_name: &str, pod_name: &str) -> Option<i64> {
    pod_name
        .strip_prefix(sts_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn reconcile_statefulset(st: &mut State, key: &ObjKey) {
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

fn reconcile_daemonset(st: &mut State, key: &ObjKey) {
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

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    ReplicaSet(ObjKey),
    StatefulSet(ObjKey),
    DaemonSet(ObjKey),
    Deployment(ObjKey),
}

const STORAGES: [&str; 6] = [
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "daemonsets.apps",
    "pods",
    "nodes",
];

fn work_for_owner(st: &State, uid: &str, out: &mut BTreeSet<Work>) {
    let Some((storage, key)) = st.store.locate_uid(uid) else {
        return;
    };
    match storage.as_str() {
        "replicasets.apps" => {
            out.insert(Work::ReplicaSet(key.clone()));
        }
        "statefulsets.apps" => {
            out.insert(Work::StatefulSet(key.clone()));
        }
        "daemonsets.apps" => {
            out.insert(Work::DaemonSet(key.clone()));
        }
        "deployments.apps" => {
            out.insert(Work::Deployment(key.clone()));
        }
        _ => {}
    }
}

fn everything(st: &State) -> BTreeSet<Work> {
    let mut out = BTreeSet::new();
    for (storage, make) in [
        ("replicasets.apps", Work::ReplicaSet as fn(ObjKey) -> Work),
        ("statefulsets.apps", Work::StatefulSet),
        ("daemonsets.apps", Work::DaemonSet),
        ("deployments.apps", Work::Deployment),
    ] {
        for o in st.store.range(storage, None, None) {
            out.insert(make(o.key.clone()));
        }
    }
    out
}

/// Runs the workload controllers until shutdown.
pub(crate) async fn run(api: Arc<ApiServer>, shutdown: CancellationToken) {
    let mut feeds: Vec<Feed> = STORAGES.iter().map(|s| Feed::new(&api, s)).collect();
    let mut work = everything(&api.lock());
    loop {
        // Each item under its own lock so API requests interleave.
        while let Some(item) = work.pop_first() {
            let mut st = api.lock();
            match &item {
                Work::ReplicaSet(k) => reconcile_replicaset(&mut st, k),
                Work::StatefulSet(k) => reconcile_statefulset(&mut st, k),
                Work::DaemonSet(k) => reconcile_daemonset(&mut st, k),
                Work::Deployment(k) => reconcile_deployment(&mut st, k),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = any_changed(&mut feeds) => {}
        }
        let batches: Vec<Batch> = feeds.iter_mut().map(|f| f.fetch(&api)).collect();
        let st = api.lock();
        for (storage, batch) in STORAGES.iter().zip(batches) {
            let changes = match batch {
                Batch::Resync => {
                    work.extend(everything(&st));
                    continue;
                }
                Batch::Changes(c) => c,
            };
            for c in changes {
                let key = c.object.key.clone();
                match *storage {
                    "deployments.apps" => {
                        work.insert(Work::Deployment(key));
                    }
                    "replicasets.apps" => {
                        work.insert(Work::ReplicaSet(key));
                        if let Some(owner) = c.object.controller.clone() {
                            work_for_owner(&st, &owner, &mut work);
                        }
                    }
                    "statefulsets.apps" => {
                        work.insert(Work::StatefulSet(key));
                    }
                    "daemonsets.apps" => {
                        work.insert(Work::DaemonSet(key));
                    }
                    "pods" => {
                        let owners = c
                            .object
                            .controller
                            .clone()
                            .into_iter()
                            .chain(c.old.as_ref().and_then(|o| o.controller.clone()));
                        for owner in owners {
                            work_for_owner(&st, &owner, &mut work);
                        }
                    }
                    _ => {
                        for o in st.store.range("daemonsets.apps", None, None) {
                            work.insert(Work::DaemonSet(o.key.clone()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(name: &str, phase: &str, ready: bool, created: &str) -> PodView {
        PodView {
            name: name.into(),
            phase: phase.into(),
            ready,
            deleting: false,
            scheduled: phase != "Pending",
            created: created.into(),
            revision: Some("r1".into()),
            node: String::new(),
        }
    }

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

    #[test]
    fn template_hashes_are_stable() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": []}});
        let b = json!({"spec": {"containers": []}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), 10);
        assert_ne!(template_hash(&a), template_hash(&json!({})));
    }
}
