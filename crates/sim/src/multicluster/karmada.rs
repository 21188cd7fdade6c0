//! Karmada, as far as the hub's karmada mode needs it, played against the hub cluster
//! (which serves Karmada's CRDs: a scenario in karmada mode includes them) every
//! [`SYNC_PERIOD`]:
//!
//! - **cluster status controller**: a `Cluster` (`cluster.karmada.io/v1alpha1`) per
//!   member with its `Ready` condition and `status.resourceSummary` (Karmada serves the
//!   kind from its aggregated API server; the simulator installs a stand-in CRD), which
//!   the hub reads for members without a kubeconfig Secret;
//! - **detector**: for each PropagationPolicy, each resource selector naming a Deployment
//!   or StatefulSet that exists in the policy's namespace gets a ResourceBinding
//!   `<name>-<kind>` (as Karmada names them): `spec.resource`, `spec.replicas`,
//!   `spec.replicaRequirements.resourceRequest` (one replica's requests),
//!   `spec.schedulerName` and `spec.placement` from the policy, and the label
//!   `propagationpolicy.karmada.io/name`;
//! - **scheduler** (karmada-policy mode): `spec.clusters` of the bindings Karmada
//!   schedules itself, from their cluster affinity and static weights
//!   ([`karmada_scheduler`]);
//! - **binding controller**: for each binding with `spec.clusters`, a Work
//!   `<binding>` in the namespace `karmada-es-<cluster>` of each cluster, holding the
//!   workload with that cluster's replicas; Works of clusters no longer listed are
//!   deleted;
//! - **execution controller**: each Work's manifests applied in its member (with the
//!   namespace), and the workload removed from the member when its Work goes. A member
//!   that does not answer keeps what it has until it answers again.
//!
//! The hub writes `spec.clusters` (its field manager `edgeplane-hub`); what is applied
//! is validated by Karmada's own schemas in the hub cluster. Where it differs from
//! Karmada: a member that does not answer is NotReady at the next sync (Karmada waits its
//! cluster-monitor grace period), no taints on Clusters, no status aggregation (`status.aggregatedStatus`), no
//! overrides, only Deployments and StatefulSets named by `name` (no label selectors, no
//! dependencies such as Services), and a cluster dropped from a binding loses the
//! workload at the next sync, whatever the new cluster's replicas are doing (Karmada
//! has no make-before-break either).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgeplane_core::hub::karmada::POLICY_NAME_KEY;

use super::karmada_scheduler;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How often the simulated Karmada looks (its controllers watch; a second is as good).
pub const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// How far off the whole seconds it syncs.
pub const SYNC_OFFSET: Duration = Duration::from_millis(250);
/// Field manager of its writes.
pub const MANAGER: &str = "karmada";
/// Field manager of its scheduler's writes (`spec.clusters`).
pub const SCHEDULER_MANAGER: &str = "karmada-scheduler";
/// The label on the Works and the members' objects naming the binding.
pub const BINDING_LABEL: &str = "resourcebinding.karmada.io/name";

fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The simulated Karmada.
pub struct Karmada {
    pub hub: Client,
    /// Karmada cluster name -> the member's client (refused while it is down).
    pub members: BTreeMap<String, Client>,
    pub interval: Duration,
    /// For the Clusters' condition times.
    pub clock: edgeplane_cluster::VirtualClock,
    /// The scheduler's memory: per binding (namespace, name), the placement and replicas
    /// it last scheduled.
    pub scheduled: std::sync::Mutex<BTreeMap<(String, String), Value>>,
}

/// A stand-in for the `Cluster` kind Karmada's aggregated API server serves (Karmada
/// ships no CRD for it): any fields, no status subresource.
pub fn cluster_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "clusters.cluster.karmada.io"},
        "spec": {
            "group": "cluster.karmada.io",
            "scope": "Cluster",
            "names": {"plural": "clusters", "singular": "cluster", "kind": "Cluster", "listKind": "ClusterList"},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    })
}

async fn list(client: &Client, api_version: &str, kind: &str) -> Vec<Value> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource(api_version, kind));
    match api.list(&ListParams::default()).await {
        Ok(l) => l
            .items
            .iter()
            .filter_map(|o| {
                let mut v = serde_json::to_value(o).ok()?;
                v["apiVersion"] = json!(api_version);
                v["kind"] = json!(kind);
                Some(v)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn apply(client: &Client, body: &Value) -> Result<(), kube::Error> {
    apply_as(client, body, MANAGER).await
}

/// Server-side apply as `manager` (the scheduler's field manager differs from the
/// detector's, which applies the rest of the binding and would otherwise drop
/// `spec.clusters`).
async fn apply_as(client: &Client, body: &Value, manager: &str) -> Result<(), kube::Error> {
    let r = resource(text(body, "/apiVersion"), text(body, "/kind"));
    let name = text(body, "/metadata/name");
    let api: Api<DynamicObject> = match body.pointer("/metadata/namespace").and_then(Value::as_str)
    {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
        None => Api::all_with(client.clone(), &r),
    };
    api.patch(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(body),
    )
    .await
    .map(|_| ())
}

async fn delete(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource(api_version, kind));
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// One replica's requests: the containers' requests summed.
fn replica_requests(workload: &Value) -> Value {
    let mut sum: BTreeMap<String, i128> = BTreeMap::new();
    let containers = workload
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in &containers {
        if let Some(requests) = c.pointer("/resources/requests").and_then(Value::as_object) {
            for (k, v) in requests {
                let t = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                if let Some(m) = edgeplane_core::quantity::parse_milli(&t) {
                    *sum.entry(k.clone()).or_default() += m;
                }
            }
        }
    }
    let out: serde_json::Map<String, Value> = sum
        .into_iter()
        .map(|(k, m)| {
            let q = if m % 1000 == 0 {
                (m / 1000).to_string()
            } else {
                format!("{m}m")
            };
            (k, json!(q))
        })
        .collect();
    Value::Object(out)
}

/// The ResourceBinding Karmada's detector makes for a policy's workload.
pub fn binding_for(policy: &Value, workload: &Value) -> Value {
    let kind = text(workload, "/kind");
    let name = text(workload, "/metadata/name");
    let namespace = text(workload, "/metadata/namespace");
    let mut spec = json!({
        "resource": {
            "apiVersion": text(workload, "/apiVersion"),
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": text(workload, "/metadata/uid"),
            "resourceVersion": text(workload, "/metadata/resourceVersion"),
        },
        "replicas": workload.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1),
        "replicaRequirements": {"resourceRequest": replica_requests(workload)},
    });
    if let Some(s) = policy.pointer("/spec/schedulerName") {
        spec["schedulerName"] = s.clone();
    }
    if let Some(p) = policy.pointer("/spec/placement") {
        spec["placement"] = p.clone();
    }
    json!({
        "apiVersion": "work.karmada.io/v1alpha2",
        "kind": "ResourceBinding",
        "metadata": {
            "name": format!("{name}-{}", kind.to_lowercase()),
            "namespace": namespace,
            "labels": {POLICY_NAME_KEY: text(policy, "/metadata/name")},
        },
        "spec": spec,
    })
}

/// The workload as a Work carries it to a cluster: its replicas set, the server's fields
/// dropped.
fn manifest(workload: &Value, replicas: i64, binding: &str) -> Value {
    let mut m = json!({
        "apiVersion": workload["apiVersion"],
        "kind": workload["kind"],
        "metadata": {
            "name": workload.pointer("/metadata/name"),
            "namespace": workload.pointer("/metadata/namespace"),
            "labels": workload.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        },
        "spec": workload["spec"],
    });
    m["metadata"]["labels"][BINDING_LABEL] = json!(binding);
    m["spec"]["replicas"] = json!(replicas);
    m
}

impl Karmada {
    /// Syncs a quarter of a second off the whole seconds (the caller syncs once at the
    /// start): the scenario's events and the hub's rounds fall on whole seconds, so
    /// what Karmada does is never tied with them at one instant.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wait = SYNC_OFFSET;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            self.sync().await;
            wait = self.interval;
        }
    }

    /// Karmada's scheduler for the bindings it schedules itself
    /// ([`karmada_scheduler::schedule`]), over the Clusters that are Ready; `bindings`
    /// are updated with what it wrote.
    async fn schedule(&self, bindings: &mut [Value]) {
        let ready: Vec<String> = list(&self.hub, "cluster.karmada.io/v1alpha1", "Cluster")
            .await
            .iter()
            .filter(|c| {
                c.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|k| text(k, "/type") == "Ready" && text(k, "/status") == "True")
            })
            .map(|c| text(c, "/metadata/name").to_string())
            .collect();
        for b in bindings
            .iter_mut()
            .filter(|b| karmada_scheduler::is_karmadas(b))
        {
            let key = (
                text(b, "/metadata/namespace").to_string(),
                text(b, "/metadata/name").to_string(),
            );
            let asked = json!([b.pointer("/spec/placement"), b.pointer("/spec/replicas")]);
            let again = {
                let mut scheduled = match self.scheduled.lock() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let again =
                    b.pointer("/spec/clusters").is_none() || scheduled.get(&key) != Some(&asked);
                scheduled.insert(key.clone(), asked);
                again
            };
            if !again {
                continue;
            }
            let clusters = karmada_scheduler::schedule(b, &ready);
            let body = json!({
                "apiVersion": "work.karmada.io/v1alpha2",
                "kind": "ResourceBinding",
                "metadata": {"name": key.1, "namespace": key.0},
                "spec": {"clusters": clusters},
            });
            match apply_as(&self.hub, &body, SCHEDULER_MANAGER).await {
                Ok(()) => b["spec"]["clusters"] = body["spec"]["clusters"].clone(),
                Err(e) => {
                    tracing::warn!(error = %e, "karmada (simulated): scheduling a ResourceBinding failed")
                }
            }
        }
    }

    /// Karmada's cluster status controller: each member's `Cluster` with its `Ready`
    /// condition (the member answers a list of its nodes and pods, and has a ready node)
    /// and `status.resourceSummary` (the ready nodes' allocatable, the requests of the pods
    /// on them as `allocated`), written when it changes. A member that does not answer
    /// keeps its summary and turns NotReady at once (Karmada waits its
    /// cluster-monitor grace period first).
    async fn cluster_statuses(&self) {
        let now = self.clock.now();
        let existing = list(&self.hub, "cluster.karmada.io/v1alpha1", "Cluster").await;
        let lp = ListParams::default();
        for (name, client) in &self.members {
            let before = existing.iter().find(|c| text(c, "/metadata/name") == name);
            let listed = async {
                let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
                    .list(&lp)
                    .await?
                    .items;
                let pods = Api::<k8s_openapi::api::core::v1::Pod>::all(client.clone())
                    .list(&lp)
                    .await?
                    .items;
                Ok::<_, kube::Error>((nodes, pods))
            }
            .await;
            let (ready, reason, message, summary) = match listed {
                Ok((nodes, pods)) => {
                    let c = edgeplane_core::hub::members::capacity(&nodes, &pods);
                    let ready = !c.allocatable.is_empty();
                    (
                        ready,
                        if ready {
                            "ClusterReady"
                        } else {
                            "ClusterNotReady"
                        },
                        if ready {
                            "cluster is healthy and ready to accept workloads"
                        } else {
                            "cluster has no ready node"
                        },
                        Some(json!({"allocatable": c.allocatable, "allocated": c.requested})),
                    )
                }
                Err(_) => (
                    false,
                    "ClusterNotReachable",
                    "cluster is not reachable",
                    before.and_then(|b| b.pointer("/status/resourceSummary").cloned()),
                ),
            };
            let status = if ready { "True" } else { "False" };
            let previous = before
                .and_then(|b| b.pointer("/status/conditions/0"))
                .cloned()
                .unwrap_or(Value::Null);
            let since = if previous.get("status").and_then(Value::as_str) == Some(status) {
                previous["lastTransitionTime"].clone()
            } else {
                json!(
                    jiff::Timestamp::from_second(now.as_second())
                        .unwrap_or(now)
                        .to_string()
                )
            };
            let mut body = json!({
                "apiVersion": "cluster.karmada.io/v1alpha1",
                "kind": "Cluster",
                "metadata": {"name": name},
                "spec": {"syncMode": "Push"},
                "status": {"conditions": [{
                    "type": "Ready", "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": since,
                }]},
            });
            if let Some(summary) = summary {
                body["status"]["resourceSummary"] = summary;
            }
            if before.is_some_and(|b| b.get("status") == body.get("status")) {
                continue;
            }
            if let Err(e) = apply(&self.hub, &body).await {
                tracing::warn!(error = %e, "karmada (simulated): writing a Cluster failed");
            }
        }
    }

    /// One pass of the cluster status controller, the detector, the binding controller
    /// and the execution controller.
    pub async fn sync(&self) {
        self.cluster_statuses().await;
        let policies = list(&self.hub, "policy.karmada.io/v1alpha1", "PropagationPolicy").await;
        let mut bindings = list(&self.hub, "work.karmada.io/v1alpha2", "ResourceBinding").await;
        // Detector.
        for policy in &policies {
            let namespace = text(policy, "/metadata/namespace");
            let selectors = policy
                .pointer("/spec/resourceSelectors")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for s in selectors {
                let (api_version, kind, name) = (
                    text(&s, "/apiVersion"),
                    text(&s, "/kind"),
                    text(&s, "/name"),
                );
                if !matches!(kind, "Deployment" | "StatefulSet") || name.is_empty() {
                    continue;
                }
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.hub.clone(), namespace, &resource(api_version, kind));
                let Ok(Some(object)) = api.get_opt(name).await else {
                    continue;
                };
                let Ok(mut workload) = serde_json::to_value(&object) else {
                    continue;
                };
                workload["apiVersion"] = json!(api_version);
                workload["kind"] = json!(kind);
                let wanted = binding_for(policy, &workload);
                let existing = bindings.iter().find(|b| {
                    text(b, "/metadata/namespace") == namespace
                        && text(b, "/metadata/name") == text(&wanted, "/metadata/name")
                });
                let same = existing.is_some_and(|b| {
                    [
                        "resource",
                        "replicas",
                        "replicaRequirements",
                        "schedulerName",
                        "placement",
                    ]
                    .iter()
                    .all(|k| b["spec"].get(*k) == wanted["spec"].get(*k))
                });
                if !same {
                    match apply(&self.hub, &wanted).await {
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "karmada (simulated): writing a ResourceBinding failed")
                        }
                    }
                }
            }
        }
        bindings = list(&self.hub, "work.karmada.io/v1alpha2", "ResourceBinding").await;
        // Scheduler: the bindings Karmada schedules itself (karmada-policy mode), when
        // new or when their placement or replicas changed since it last did (as Karmada,
        // it does not move a divided workload because a cluster turned NotReady).
        self.schedule(&mut bindings).await;
        // Binding controller: the Works wanted.
        let mut wanted: BTreeMap<(String, String), Value> = BTreeMap::new();
        for b in &bindings {
            let namespace = text(b, "/spec/resource/namespace");
            let (api_version, kind, name) = (
                text(b, "/spec/resource/apiVersion"),
                text(b, "/spec/resource/kind"),
                text(b, "/spec/resource/name"),
            );
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.hub.clone(), namespace, &resource(api_version, kind));
            let Ok(Some(object)) = api.get_opt(name).await else {
                continue;
            };
            let Ok(mut workload) = serde_json::to_value(&object) else {
                continue;
            };
            workload["apiVersion"] = json!(api_version);
            workload["kind"] = json!(kind);
            let binding = text(b, "/metadata/name");
            for c in b
                .pointer("/spec/clusters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let cluster = text(c, "/name").to_string();
                let replicas = c.get("replicas").and_then(Value::as_i64).unwrap_or(0);
                let work_ns = format!("karmada-es-{cluster}");
                let work = json!({
                    "apiVersion": "work.karmada.io/v1alpha1",
                    "kind": "Work",
                    "metadata": {
                        "name": format!("{binding}-{}", text(b, "/metadata/namespace")),
                        "namespace": work_ns,
                        "labels": {BINDING_LABEL: binding},
                    },
                    "spec": {"workload": {"manifests": [manifest(&workload, replicas, binding)]}},
                });
                wanted.insert((work_ns, text(&work, "/metadata/name").to_string()), work);
            }
        }
        let works = list(&self.hub, "work.karmada.io/v1alpha1", "Work").await;
        let have: BTreeSet<(String, String)> = works
            .iter()
            .map(|w| {
                (
                    text(w, "/metadata/namespace").to_string(),
                    text(w, "/metadata/name").to_string(),
                )
            })
            .collect();
        for ((ns, _), work) in &wanted {
            let same = works.iter().any(|w| {
                text(w, "/metadata/namespace") == ns
                    && text(w, "/metadata/name") == text(work, "/metadata/name")
                    && w.pointer("/spec/workload") == work.pointer("/spec/workload")
            });
            if same {
                continue;
            }
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(e) = apply(&self.hub, &namespace).await {
                tracing::warn!(error = %e, "karmada (simulated): creating an execution namespace failed");
            }
            if let Err(e) = apply(&self.hub, work).await {
                tracing::warn!(error = %e, "karmada (simulated): writing a Work failed");
            }
        }
        // Execution controller: each Work's manifests in its member; a Work no longer
        // wanted goes once its objects are out of the member.
        for work in &works {
            let ns = text(work, "/metadata/namespace");
            let Some(cluster) = ns.strip_prefix("karmada-es-") else {
                continue;
            };
            let Some(client) = self.members.get(cluster) else {
                continue;
            };
            let key = (ns.to_string(), text(work, "/metadata/name").to_string());
            let manifests: Vec<Value> = work
                .pointer("/spec/workload/manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(w) = wanted.get(&key) {
                // What the Work says now (the listing may be older than this round's write).
                let manifests = w
                    .pointer("/spec/workload/manifests")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for m in &manifests {
                    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": text(m, "/metadata/namespace")}});
                    if apply(client, &namespace).await.is_err() {
                        break;
                    }
                    let _ = apply(client, m).await;
                }
                continue;
            }
            let mut removed = true;
            for m in &manifests {
                removed &= delete(
                    client,
                    text(m, "/apiVersion"),
                    text(m, "/kind"),
                    text(m, "/metadata/namespace"),
                    text(m, "/metadata/name"),
                )
                .await
                .is_ok();
            }
            if removed {
                let _ = delete(
                    &self.hub,
                    "work.karmada.io/v1alpha1",
                    "Work",
                    &key.0,
                    &key.1,
                )
                .await;
            }
        }
        // Works written this round are executed at once as well.
        for ((ns, name), work) in &wanted {
            if have.contains(&(ns.clone(), name.clone())) {
                continue;
            }
            let Some(client) = ns
                .strip_prefix("karmada-es-")
                .and_then(|c| self.members.get(c))
            else {
                continue;
            };
            for m in work
                .pointer("/spec/workload/manifests")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": text(m, "/metadata/namespace")}});
                if apply(client, &namespace).await.is_err() {
                    break;
                }
                let _ = apply(client, m).await;
            }
        }
    }
}
