//! The driver: performs a scenario's events on the embedded cluster and records what it
//! did. Writes go through the API server's own operations (server-side apply, delete with
//! background propagation, the scale subresource, an update of the topology's spec), as
//! the field manager `edgeplane-sim`; node failure and recovery through the cluster handle.

use std::time::Duration;

use edgeplane_cluster::EmbeddedCluster;
use edgeplane_cluster::api::{DeleteOptions, Deleted, Propagation, Subresource, WriteOptions};
use serde_json::{Value, json};

use crate::journal::SharedJournal;
use crate::observer::{self, TOPOLOGIES};
use crate::scenario::{Action, Event, LinkChange, ObjectRef, ScaleTarget, link_matches};
use crate::timeline::{Entry, EntryType, Source};

/// How long the start waits between the scenario's setup objects and its pods (see
/// `run_in_runtime`): long enough for every task to go idle, short enough not to show.
pub const SETTLE: Duration = Duration::from_millis(1);

/// Pods and the workloads whose controllers create pods.
pub(crate) fn makes_pods(object: &Value) -> bool {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v == "v1" || v.starts_with("apps/") || v.starts_with("batch/"))
        && matches!(
            object.get("kind").and_then(Value::as_str),
            Some(
                "Pod"
                    | "Deployment"
                    | "ReplicaSet"
                    | "StatefulSet"
                    | "DaemonSet"
                    | "Job"
                    | "CronJob"
            )
        )
}

/// Field manager of the driver's writes (other than apply, which the cluster handle does
/// as `edgeplane-cluster`).
pub const MANAGER: &str = "edgeplane-sim";

/// Performs one event now and records it.
pub async fn perform(
    cluster: &EmbeddedCluster,
    journal: &SharedJournal,
    scenario: &str,
    event: &Event,
) {
    let at = cluster.clock().elapsed();
    if let Some(note) = &event.note {
        journal.push(Entry::new(
            at,
            EntryType::Note,
            format!("Scenario {scenario}"),
            note.clone(),
            Source::Driver,
        ));
    }
    let entries = match &event.action {
        Action::Apply(objects) => apply(cluster, objects, at).await,
        Action::Delete(refs) => delete(cluster, refs, at),
        Action::SetLink(change) => vec![set_link(cluster, change, at)],
        Action::FailNode(node) => vec![fail_node(cluster, node, at).await],
        Action::RecoverNode(node) => vec![recover_node(cluster, node, at).await],
        Action::Scale(target) => vec![scale(cluster, target, at)],
        // Loading accepts them only with spec.clusters, whose run performs them.
        Action::FailCluster(c) | Action::RecoverCluster(c) => vec![failed(
            at,
            format!("Cluster {c}"),
            event.action.key(),
            "a single-cluster run has no member clusters",
        )],
    };
    for e in entries {
        journal.push(e);
    }
}

fn failed(at: Duration, object: String, what: &str, error: impl std::fmt::Display) -> Entry {
    Entry::new(
        at,
        EntryType::ActionFailed,
        object,
        format!("{what} failed: {error}"),
        Source::Driver,
    )
}

fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

/// Server-side apply, one object at a time so each gets its own entry. As at the start
/// of a run, objects that make no pods (offers among them) go first and the pods and the
/// workloads that make them once every task is idle ([`SETTLE`] later): the scheduler's
/// gate reads offers from a cache, and pods created in the same instant as the offer that
/// targets them would pass ungated and be bound by the cluster's default scheduler.
pub async fn apply(cluster: &EmbeddedCluster, objects: &[Value], at: Duration) -> Vec<Entry> {
    let (workloads, setup): (Vec<&Value>, Vec<&Value>) =
        objects.iter().partition(|o| makes_pods(o));
    let mut out = apply_each(cluster, &setup, at).await;
    if !setup.is_empty() && !workloads.is_empty() {
        tokio::time::sleep(SETTLE).await;
    }
    out.extend(apply_each(cluster, &workloads, at).await);
    out
}

async fn apply_each(cluster: &EmbeddedCluster, objects: &[&Value], at: Duration) -> Vec<Entry> {
    let mut out = Vec::new();
    for &obj in objects {
        let before = existing_version(cluster, obj);
        match cluster.apply_objects([obj.clone()]).await {
            Ok(applied) => {
                let result = applied.first().cloned().unwrap_or(Value::Null);
                let after = result
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let mut message = match (&before, &after) {
                    (None, _) => "created".to_string(),
                    (Some(b), Some(a)) if b == a => "unchanged".to_string(),
                    _ => "updated".to_string(),
                };
                if let Some(r) = result.pointer("/spec/replicas").and_then(Value::as_i64) {
                    message.push_str(&format!(" ({r} replica{})", if r == 1 { "" } else { "s" }));
                }
                out.push(Entry::new(
                    at,
                    EntryType::Applied,
                    describe(&result),
                    message,
                    Source::Driver,
                ));
            }
            Err(e) => out.push(failed(at, describe(obj), "apply", e)),
        }
    }
    out
}

/// The resourceVersion of the object an apply would update, if it exists.
fn existing_version(cluster: &EmbeddedCluster, obj: &Value) -> Option<String> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str)?;
    let kind = obj.get("kind").and_then(Value::as_str)?;
    let name = obj.pointer("/metadata/name").and_then(Value::as_str)?;
    let st = cluster.api().lock();
    let def = st.registry.find_kind(api_version, kind)?;
    let ns = def.namespaced.then(|| {
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string()
    });
    st.get(&def, ns.as_deref(), name).ok().and_then(|o| {
        o.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

fn delete(cluster: &EmbeddedCluster, refs: &[ObjectRef], at: Duration) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut st = cluster.api().lock();
    for r in refs {
        let object = r.to_string();
        let Some(def) = st.registry.find_kind(&r.api_version, &r.kind) else {
            out.push(failed(
                at,
                object,
                "delete",
                format!("{} {} is not served", r.api_version, r.kind),
            ));
            continue;
        };
        let opts = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..Default::default()
        };
        match st.delete(&def, r.namespace.as_deref(), &r.name, &opts) {
            Ok(Deleted::Gone(_)) => out.push(Entry::new(
                at,
                EntryType::Deleted,
                object,
                "deleted",
                Source::Driver,
            )),
            Ok(Deleted::Pending(_)) => out.push(Entry::new(
                at,
                EntryType::Deleted,
                object,
                "deleting (graceful)",
                Source::Driver,
            )),
            Err(e) => out.push(failed(at, object, "delete", e.message)),
        }
    }
    out
}

/// Changes the metrics of a link of the NetworkTopology `default` (adds the link when it
/// does not exist; loading checked that it then has a latency).
pub fn set_link(cluster: &EmbeddedCluster, change: &LinkChange, at: Duration) -> Entry {
    let object = format!(
        "Link {}",
        observer::link_label(&change.from, &change.to, false)
    );
    let mut st = cluster.api().lock();
    let Some(def) = st.registry.by_storage(TOPOLOGIES) else {
        return failed(at, object, "setLink", "NetworkTopology is not served");
    };
    let topology = match st.get(&def, None, edgeplane_core::snapshot::DEFAULT_TOPOLOGY) {
        Ok(t) => (*t).clone(),
        Err(e) => return failed(at, object, "setLink", e.message),
    };
    let mut links: Vec<Value> = topology
        .pointer("/spec/links")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matches = |l: &Value| -> bool {
        serde_json::from_value::<edgeplane_api::Link>(l.clone())
            .map(|link| link_matches(&link, &change.from, &change.to))
            .unwrap_or(false)
    };
    let metrics = [
        ("latency", &change.latency),
        ("jitter", &change.jitter),
        ("bandwidth", &change.bandwidth),
        ("loss", &change.loss),
    ];
    let mut said = Vec::new();
    let object = match links.iter_mut().find(|l| matches(l)) {
        Some(link) => {
            let one_way = link.get("oneWay").and_then(Value::as_bool) == Some(true);
            let from = link
                .get("from")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let to = link
                .get("to")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            for (key, value) in metrics {
                if let Some(v) = value {
                    let old = link
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or("unset")
                        .to_string();
                    said.push(format!("{key} {old} -> {v}"));
                    link[key] = json!(v);
                }
            }
            format!("Link {}", observer::link_label(&from, &to, one_way))
        }
        None => {
            let mut link = json!({"from": change.from, "to": change.to});
            for (key, value) in metrics {
                if let Some(v) = value {
                    said.push(format!("{key} {v}"));
                    link[key] = json!(v);
                }
            }
            links.push(link);
            said.insert(0, "new link:".to_string());
            object
        }
    };
    let mut updated = topology;
    updated["spec"]["links"] = json!(links);
    match st.update(
        &def,
        None,
        edgeplane_core::snapshot::DEFAULT_TOPOLOGY,
        updated,
        Subresource::Main,
        &WriteOptions::manager(MANAGER),
    ) {
        Ok(_) => Entry::new(
            at,
            EntryType::LinkChanged,
            object,
            said.join(", "),
            Source::Driver,
        ),
        Err(e) => failed(at, object, "setLink", e.message),
    }
}

async fn fail_node(cluster: &EmbeddedCluster, node: &str, at: Duration) -> Entry {
    let object = format!("Node {node}");
    let on_it = {
        let st = cluster.api().lock();
        st.store
            .range("pods", None, None)
            .filter(|p| p.node_name == node)
            .filter(|p| {
                let v = p.value();
                !matches!(
                    v.pointer("/status/phase").and_then(Value::as_str),
                    Some("Failed" | "Succeeded")
                )
            })
            .count()
    };
    match cluster.fail_node(node).await {
        Ok(()) => Entry::new(
            at,
            EntryType::NodeFailed,
            object,
            format!(
                "stopped responding ({on_it} pod{} on it)",
                if on_it == 1 { "" } else { "s" }
            ),
            Source::Driver,
        )
        .node(node),
        Err(e) => failed(at, object, "failNode", e),
    }
}

async fn recover_node(cluster: &EmbeddedCluster, node: &str, at: Duration) -> Entry {
    let object = format!("Node {node}");
    match cluster.recover_node(node).await {
        Ok(()) => Entry::new(
            at,
            EntryType::NodeRecovered,
            object,
            "Ready again",
            Source::Driver,
        )
        .node(node),
        Err(e) => failed(at, object, "recoverNode", e),
    }
}

fn scale(cluster: &EmbeddedCluster, target: &ScaleTarget, at: Duration) -> Entry {
    let object = format!("{} {}/{}", target.kind, target.namespace, target.name);
    let mut st = cluster.api().lock();
    let Some(def) = st.registry.find_kind(target.api_version(), &target.kind) else {
        return failed(at, object, "scale", "not served");
    };
    let before = st
        .get_scale(&def, Some(&target.namespace), &target.name)
        .ok()
        .and_then(|s| s.pointer("/spec/replicas").and_then(Value::as_i64));
    let body = json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": target.name, "namespace": target.namespace},
        "spec": {"replicas": target.replicas},
    });
    match st.set_scale(
        &def,
        Some(&target.namespace),
        &target.name,
        &body,
        &WriteOptions::manager(MANAGER),
    ) {
        Ok(_) => {
            let message = match before {
                Some(b) => format!("replicas {b} -> {}", target.replicas),
                None => format!("replicas -> {}", target.replicas),
            };
            Entry::new(at, EntryType::Scaled, object, message, Source::Driver)
        }
        Err(e) => failed(at, object, "scale", e.message),
    }
}

/// Waits for the components, which were asked to stop; one that does not is aborted after
/// a grace period of virtual time (instant when nothing else runs).
pub async fn stop_all<T>(running: Vec<tokio::task::JoinHandle<T>>) {
    for handle in running {
        let abort = handle.abort_handle();
        if tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
