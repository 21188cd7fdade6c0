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
//!
//! One file per controller (`replicasets`, `deployments`, `statefulsets`, `daemonsets`);
//! this module holds what they share (the pod view, templates, owned objects, writes) and
//! the loop that runs them.

mod daemonsets;
mod deployments;
mod replicasets;
mod statefulsets;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use self::daemonsets::reconcile_daemonset;
use self::deployments::reconcile_deployment;
use self::replicasets::reconcile_replicaset;
use self::statefulsets::reconcile_statefulset;
use crate::api::{ApiServer, DeleteOptions, State, Subresource, WriteOptions, controller_uid};
use crate::controller::{Batch, Feed, any_changed, record_event};
use crate::object;
use crate::store::ObjKey;

pub use deployments::{RsView, rollout};
pub use replicasets::{ReplicaDiff, replicaset_diff};
pub use statefulsets::{StsAction, statefulset_plan};

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

    pub(super) fn pv(name: &str, phase: &str, ready: bool, created: &str) -> PodView {
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
    fn template_hashes_are_stable() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": []}});
        let b = json!({"spec": {"containers": []}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        assert_eq!(template_hash(&a).len(), 10);
        assert_ne!(template_hash(&a), template_hash(&json!({})));
    }
}
