//! KubeVirt's live migration in the stand-in, with the upstream VM and VMI CRDs from
//! ../shared/crds (which validate every VMI status it writes, `migrationState` included)
//! and the stand-in's VirtualMachineInstanceMigration CRD (upstream ships none).

use std::time::Duration;

use edgeplane_cluster::kubevirt::MIGRATION_CRD;
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::support::eventually;

fn upstream_crd(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/crds")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the upstream CRDs live in ../shared/crds)",
            file.display()
        )
    })
}

/// n1 and n2 with room for the VM, small with 1 cpu (too little for it).
async fn cluster() -> EmbeddedCluster {
    let cluster = EmbeddedCluster::start(
        ClusterConfig::default()
            .with_node(NodeSpec::new("n1").cpu("8").memory("32Gi"))
            .with_node(NodeSpec::new("n2").cpu("8").memory("32Gi"))
            .with_node(NodeSpec::new("small").cpu("1").memory("32Gi"))
            .start_time("2025-06-01T00:00:00Z".parse().expect("time")),
    )
    .await;
    for crd in [
        "kubevirt/kubevirt.io_virtualmachines.yaml",
        "kubevirt/kubevirt.io_virtualmachineinstances.yaml",
    ] {
        cluster.load_yaml(&upstream_crd(crd)).await.unwrap();
    }
    cluster.load_yaml(MIGRATION_CRD).await.unwrap();
    cluster
        .load_yaml(
            "apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: fw, namespace: default}
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices: {}
        resources: {requests: {cpu: '2', memory: 1Gi}}
",
        )
        .await
        .unwrap();
    cluster
}

fn api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kubevirt.io", "v1", kind);
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

async fn vmi(client: &Client) -> Value {
    api(client, "VirtualMachineInstance", "virtualmachineinstances")
        .get_opt("fw")
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
        .unwrap_or_default()
}

async fn migrate(client: &Client, name: &str, to: &str) -> String {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"vmiName": "fw", "addedNodeSelector": {"kubernetes.io/hostname": to}},
    }))
    .unwrap();
    api(
        client,
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
    )
    .create(&PostParams::default(), &object)
    .await
    .unwrap();
    name.to_string()
}

async fn phase_of(client: &Client, migration: &str) -> String {
    api(
        client,
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
    )
    .get(migration)
    .await
    .unwrap()
    .data["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn launchers(client: &Client) -> Vec<(String, String, String)> {
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.spec.and_then(|s| s.node_name).unwrap_or_default(),
                p.status.and_then(|s| s.phase).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_migration_moves_the_vmi_to_the_selected_node_without_stopping_it() {
    let cluster = cluster().await;
    let client = cluster.client();
    let running_on = |node: String| {
        let client = client.clone();
        async move {
            let v = vmi(&client).await;
            v["status"]["phase"] == "Running" && v["status"]["nodeName"] == node.as_str()
        }
    };
    // The VM (2 cpu) runs on n1 or n2, never on small (1 cpu).
    assert!(
        eventually(Duration::from_secs(60), || {
            let client = client.clone();
            async move { vmi(&client).await["status"]["phase"] == "Running" }
        })
        .await
    );
    let from = vmi(&client).await["status"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let to = if from == "n1" { "n2" } else { "n1" };
    assert!(from == "n1" || from == "n2", "{from}");
    let source = launchers(&client).await;
    assert_eq!(source.len(), 1, "{source:?}");

    // Every phase the migration goes through, and the launcher pods at each.
    let m = migrate(&client, "fw-migration", to).await;
    let mut phases: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let phase = phase_of(&client, &m).await;
        if phases.last() != Some(&phase) {
            phases.push(phase.clone());
        }
        if phase == "Succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The target pod is scheduled before it runs (the kubelet starts it after its start
    // delay, on virtual time); the migration completes at the pass after it runs (the
    // exact order of the pods is checked with a watch in crates/runtime/tests/functions.rs).
    assert_eq!(
        phases.last().map(String::as_str),
        Some("Succeeded"),
        "{phases:?}"
    );
    assert!(phases.contains(&"Scheduled".to_string()), "{phases:?}");
    let v = vmi(&client).await;
    assert_eq!(v["status"]["nodeName"], to);
    assert_eq!(v["status"]["phase"], "Running");
    let state = &v["status"]["migrationState"];
    assert_eq!(
        (
            &state["sourceNode"],
            &state["targetNode"],
            &state["completed"]
        ),
        (&json!(from), &json!(to), &json!(true))
    );
    assert!(state["startTimestamp"].is_string() && state["endTimestamp"].is_string());
    // The source pod is gone; the target runs on n2.
    assert!(
        eventually(Duration::from_secs(60), || {
            let client = client.clone();
            async move {
                let pods = launchers(&client).await;
                pods.len() == 1 && pods[0].1 == to && pods[0].2 == "Running"
            }
        })
        .await,
        "{:?}",
        launchers(&client).await
    );

    // A node that cannot take the VM: the target pod is Unschedulable, the migration
    // Failed with why, the VMI stays where it is.
    let m = migrate(&client, "fw-to-small", "small").await;
    assert!(
        eventually(Duration::from_secs(120), || {
            let client = client.clone();
            let m = m.clone();
            async move { phase_of(&client, &m).await == "Failed" }
        })
        .await
    );
    let failed = api(
        &client,
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
    )
    .get(&m)
    .await
    .unwrap();
    let why = failed.data["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        why.starts_with("the target pod cannot be scheduled: "),
        "{why}"
    );
    assert_eq!(failed.data["status"]["migrationState"]["failed"], true);
    assert!(running_on(to.to_string()).await);
    // A selector no other node matches fails at once.
    let m = migrate(&client, "fw-to-itself", to).await;
    assert!(
        eventually(Duration::from_secs(10), || {
            let client = client.clone();
            let m = m.clone();
            async move { phase_of(&client, &m).await == "Failed" }
        })
        .await
    );
    // The schema refuses a migration without vmiName.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": "bad", "namespace": "default"}, "spec": {}}))
    .unwrap();
    let err = api(
        &client,
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
    )
    .create(&PostParams::default(), &bad)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("vmiName"), "{err}");
}
