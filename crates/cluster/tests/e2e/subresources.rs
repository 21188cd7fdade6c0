//! The status and scale subresources, pods/binding, pods/eviction with
//! PodDisruptionBudgets, and scheduling gates with the mutable scheduling directives of
//! gated pods.

use std::time::Duration;

use edgeplane_api::{Compliance, ConstraintPolicyBinding, ConstraintPolicyBindingStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::*;

async fn install_crds(c: &edgeplane_cluster::EmbeddedCluster) {
    let crds = edgeplane_api::crdgen::all()
        .into_iter()
        .map(|c| serde_json::to_value(c).expect("crd json"));
    c.apply_objects(crds).await.expect("install crds");
}

#[tokio::test(start_paused = true)]
async fn status_and_spec_are_written_separately() {
    let c = cluster(0).await;
    install_crds(&c).await;
    let cpbs: Api<ConstraintPolicyBinding> = Api::default_namespaced(c.client());
    c.load_yaml(
        "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicyBinding\nmetadata: {name: b}\nspec:\n  offer: o\n  targets: {t: {apiVersion: v1, kind: Pod, name: p}}\n",
    )
    .await
    .expect("load");
    let before = cpbs.get("b").await.expect("get");
    assert_eq!(before.metadata.generation, Some(1));

    // A status write changes status only, and not the generation.
    let status = json!({"status": {"compliance": "Violation", "firstReason": "too slow"}, "spec": {"offer": "ignored"}});
    let after = cpbs
        .patch_status("b", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("patch status");
    assert_eq!(after.spec.offer, "o");
    assert_eq!(
        after.status.as_ref().map(|s| s.compliance),
        Some(Compliance::Violation)
    );
    assert_eq!(after.metadata.generation, Some(1));

    // A main-resource write ignores status, and bumps the generation for spec changes.
    let mut changed = after.clone();
    changed.spec.offer = "o2".into();
    changed.status = Some(ConstraintPolicyBindingStatus::default());
    let replaced = cpbs
        .replace("b", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert_eq!(replaced.spec.offer, "o2");
    assert_eq!(
        replaced.status.as_ref().map(|s| s.compliance),
        Some(Compliance::Violation)
    );
    assert_eq!(replaced.metadata.generation, Some(2));

    // A label change is not a spec change.
    let labelled = cpbs
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label");
    assert_eq!(labelled.metadata.generation, Some(2));

    // Server-side apply of status by a controller, as kube's controller-rs does.
    let ssa = json!({
        "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyBinding",
        "status": {"compliance": "Compliant"}
    });
    let applied = cpbs
        .patch_status(
            "b",
            &PatchParams::apply("binding-controller"),
            &Patch::Apply(ssa),
        )
        .await
        .expect("apply status");
    assert_eq!(
        applied.status.as_ref().map(|s| s.compliance),
        Some(Compliance::Compliant)
    );
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"binding-controller".to_string()),
        "{managers:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn scale_subresource() {
    let c = cluster(2).await;
    c.load_yaml(DEPLOYMENT).await.expect("load");
    let deploys: Api<Deployment> = Api::default_namespaced(c.client());
    let scale = deploys.get_scale("web").await.expect("get scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("patch scale");
    assert_eq!(
        deploys
            .get("web")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.replicas),
        Some(4)
    );
}

pub const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27", resources: {requests: {cpu: 100m}}}]
"#;

async fn running_pods(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(selector))
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn eviction_honours_disruption_budgets() {
    let c = cluster(3).await;
    c.load_yaml(DEPLOYMENT).await.expect("load");
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    assert!(
        eventually(Duration::from_secs(60), || async {
            running_pods(&pods, "app=web").await.len() == 2
        })
        .await
    );

    // Without a budget: evicted (201), and the Deployment replaces the pod.
    let victim = running_pods(&pods, "app=web").await[0].name_any();
    pods.evict(&victim, &EvictParams::default())
        .await
        .expect("evict without a PDB");
    let gone = eventually(Duration::from_secs(60), || async {
        pods.get(&victim).await.is_err()
    })
    .await;
    assert!(gone, "evicted pod removed after its graceful stop");
    assert!(
        eventually(Duration::from_secs(60), || async {
            running_pods(&pods, "app=web").await.len() == 2
        })
        .await
    );

    // A budget that needs both pods: 429, with the budget named.
    c.load_yaml("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: web}}\n")
        .await
        .expect("pdb");
    let victim = running_pods(&pods, "app=web").await[0].name_any();
    let err = pods
        .evict(&victim, &EvictParams::default())
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 429, "{s:?}");
            assert_eq!(s.reason, "TooManyRequests");
            assert!(s.message.contains("disruption budget"), "{}", s.message);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(
        pods.get(&victim)
            .await
            .expect("still there")
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // The disruption controller reports the same arithmetic.
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c.client());
    assert!(
        eventually(Duration::from_secs(30), || async {
            pdbs.get("web")
                .await
                .ok()
                .and_then(|p| p.status)
                .is_some_and(|s| s.current_healthy == 2 && s.disruptions_allowed == 0)
        })
        .await
    );

    // Scale up to three: one disruption allowed, then none again.
    let deploys: Api<Deployment> = Api::default_namespaced(c.client());
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    assert!(
        eventually(Duration::from_secs(60), || async {
            running_pods(&pods, "app=web").await.len() == 3
        })
        .await
    );
    let names: Vec<String> = running_pods(&pods, "app=web")
        .await
        .iter()
        .map(|p| p.name_any())
        .collect();
    pods.evict(&names[0], &EvictParams::default())
        .await
        .expect("one disruption allowed");
    let err = pods
        .evict(&names[1], &EvictParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 429),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn binding_assigns_a_node_once() {
    let c = edgeplane_cluster::EmbeddedCluster::start(edgeplane_cluster::ClusterConfig {
        scheduler: false,
        ..edgeplane_cluster::ClusterConfig::default().with_nodes("n", 2)
    })
    .await;
    let client = c.client();
    create_pod(&client, "default", pod("p")).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "n-1"}});
    let req = http::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).expect("json"))
        .expect("request");
    let status: kube::core::Status = client.request(req).await.expect("bind");
    assert_eq!(status.code, 201);
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let p = pods.get("p").await.expect("get");
    assert_eq!(p.spec.and_then(|s| s.node_name).as_deref(), Some("n-1"));
    let req = http::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).expect("json"))
        .expect("request");
    let err = client.request::<kube::core::Status>(req).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            pods.get("p")
                .await
                .ok()
                .and_then(|p| p.status)
                .and_then(|s| s.phase)
                .as_deref()
                == Some("Running")
        })
        .await
    );
}

#[tokio::test(start_paused = true)]
async fn gated_pods_take_placement_while_gated_only() {
    let c = edgeplane_cluster::EmbeddedCluster::start(
        edgeplane_cluster::ClusterConfig::default()
            .with_node(edgeplane_cluster::NodeSpec::new("core").label("zone", "core"))
            .with_node(edgeplane_cluster::NodeSpec::new("edge").label("zone", "edge")),
    )
    .await;
    let pods: Api<Pod> = Api::default_namespaced(c.client());
    let mut gated = pod("g");
    gated.spec.as_mut().expect("spec").scheduling_gates =
        Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
            name: "constraint.edgeplane.io/planner".into(),
        }]);
    pods.create(&PostParams::default(), &gated)
        .await
        .expect("create");

    // Gated: not scheduled; the scheduler says why.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let p = pods.get("g").await.expect("get");
    assert!(p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none());
    let cond = p.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        cond.iter()
            .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated")),
        "{cond:?}"
    );

    // While gated, a planner may add node affinity (as edgeplane's gate mode does) ...
    let affinity = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["edge"]}]}]}}}}});
    pods.patch("g", &PatchParams::default(), &Patch::Strategic(affinity))
        .await
        .expect("affinity while gated");
    pods.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"nodeSelector": {"zone": "edge"}}})),
    )
    .await
    .expect("nodeSelector while gated");
    // ... but may not add gates.
    let err = pods
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"schedulingGates": [{"name": "other"}]}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );
    // Binding a gated pod is refused.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "g"}, "target": {"kind": "Node", "name": "core"}});
    let req = http::Request::post("/api/v1/namespaces/default/pods/g/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).expect("json"))
        .expect("request");
    assert!(c.client().request::<kube::core::Status>(req).await.is_err());

    // Removing the gate lets the default scheduler place it where the affinity says.
    pods.patch(
        "g",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "remove", "path": "/spec/schedulingGates"}]))
                .expect("patch"),
        ),
    )
    .await
    .expect("ungate");
    assert!(
        eventually(Duration::from_secs(30), || async {
            pods.get("g")
                .await
                .ok()
                .and_then(|p| p.spec)
                .and_then(|s| s.node_name)
                .as_deref()
                == Some("edge")
        })
        .await
    );

    // Once ungated, placement is immutable: 422.
    let err = pods
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"nodeSelector": {"zone": "edge", "x": "y"}}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.reason == "Invalid"),
        "{err:?}"
    );
}
