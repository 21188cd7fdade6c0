//! End-to-end tests of network functions and service chains: the NF and chain controllers
//! and the planning scheduler against the embedded cluster, with the upstream KubeVirt and
//! Multus CRDs loaded (so every VM and NAD edgeplane writes is validated by their schemas)
//! and the cluster's KubeVirt and Multus stand-ins running.

// Tests unwrap what they built and the errors they expect.
#![allow(clippy::unwrap_used)]

#[path = "e2e/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{ConstraintPolicyBinding, NetworkFunction, ServiceChain};
use edgeplane_cluster::EmbeddedCluster;
use edgeplane_runtime::cache::FunctionCaches;
use edgeplane_runtime::component::{Base, BaseConfig};
use edgeplane_runtime::controllers::{self, nf::Functions};
use edgeplane_runtime::foreign::{
    NetworkAttachmentDefinition, VirtualMachine, VirtualMachineInstance,
};
use harness::{Component, WriteLog, eventually, recording_client, site_node};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::json;

const TOPOLOGY: &str = "
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sameNode: {latency: 20us}
  intraSite: {latency: 200us}
  sites: [{name: ran-3, transit: false}, {name: core-gw, transit: false}]
  links:
  - {from: ran-3, to: edge-a, latency: 300us}
  - {from: edge-a, to: core-gw, latency: 400us}
---
apiVersion: v1
kind: Namespace
metadata: {name: upf}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: n6, namespace: upf}
spec:
  config: '{\"cniVersion\": \"0.3.1\", \"name\": \"n6\", \"type\": \"macvlan\", \"ipam\": {}}'
";

const FUNCTIONS: &str = "
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: fw, namespace: upf}
spec:
  runtime: VirtualMachine
  image: registry.example/fw:1.2
  replicas: 2
  resources: {cpu: '2', memory: 2Gi}
  interfaces: [{name: north, network: n6}]
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: dpi, namespace: upf}
spec:
  runtime: Container
  image: registry.example/dpi:3
  replicas: 2
  resources: {cpu: '1', memory: 1Gi}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: nat, namespace: upf}
spec:
  runtime: Container
  image: registry.example/nat:1
  replicas: 2
---
apiVersion: network.edgeplane.io/v1alpha1
kind: ServiceChain
metadata: {name: up, namespace: upf}
spec:
  hops: [{name: fw, networkFunction: fw}, {name: dpi, networkFunction: dpi}, {name: nat, networkFunction: nat}]
  ingress: {site: ran-3}
  egress: {site: core-gw}
  constraints:
    endToEnd: [{name: latency, request: 1ms, limit: 2ms}]
";

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

/// Three nodes of site edge-a, the edgeplane and upstream CRDs, the topology, namespace
/// `upf` and its NAD `n6`.
async fn cluster() -> EmbeddedCluster {
    let cluster = harness::cluster(vec![
        site_node("e1", "edge-a"),
        site_node("e2", "edge-a"),
        site_node("e3", "edge-a"),
    ])
    .await;
    with_upstream_crds(&cluster).await;
    cluster.load_yaml(TOPOLOGY).await.unwrap();
    cluster
}

async fn with_upstream_crds(cluster: &EmbeddedCluster) {
    for crd in [
        "kubevirt/kubevirt.io_virtualmachines.yaml",
        "kubevirt/kubevirt.io_virtualmachineinstances.yaml",
        "multus/k8s.cni.cncf.io_network-attachment-definitions.yaml",
    ] {
        cluster.load_yaml(&upstream_crd(crd)).await.unwrap();
    }
}

/// Starts the NF and chain controllers (as `edgeplane controller` would run them).
async fn start_functions(cluster: &EmbeddedCluster) -> Component {
    let writes = WriteLog::default();
    let client = recording_client(cluster, &writes);
    let config = BaseConfig::new("edgeplane-controller").clock(Arc::new(cluster.clock()));
    let mut base = Base::start(client.clone(), config).await.unwrap();
    let caches = FunctionCaches::start(&client, &base.ctx.shutdown);
    base.spawn(controllers::run_functions(
        base.ctx.clone(),
        base.caches.clone(),
        Functions {
            caches,
            views: base.views.clone(),
        },
    ));
    Component { base, writes }
}

async fn list<K>(client: &Client, namespace: &str) -> Vec<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

/// The rows of `kubectl get <plural> -n upf` (the Table the API server answers kubectl).
async fn table(client: &Client, plural: &str) -> Vec<Vec<serde_json::Value>> {
    table_of(
        client,
        &format!("network.edgeplane.io/v1alpha1/namespaces/upf/{plural}"),
    )
    .await
}

/// `kubectl get` of `/apis/<path>`: the rows' cells.
async fn table_of(client: &Client, path: &str) -> Vec<Vec<serde_json::Value>> {
    let request = http::Request::get(format!("/apis/{path}"))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(request).await.unwrap();
    let table: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(table["kind"], "Table", "{text}");
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"].as_array().unwrap().clone())
        .collect()
}

async fn get<K>(client: &Client, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_three_hop_chain_of_a_vm_and_containers_is_rendered_wired_and_judged() {
    let cluster = cluster().await;
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    let scheduler = harness::start_elected_scheduler(&cluster, "scheduler-a").await;
    cluster.load_yaml(FUNCTIONS).await.unwrap();

    let ready = eventually(Duration::from_secs(120), || async {
        get::<ServiceChain>(&client, "upf", "up")
            .await
            .and_then(|c| c.status)
            .is_some_and(|s| s.phase.as_deref() == Some("Ready"))
    })
    .await;
    let chain = get::<ServiceChain>(&client, "upf", "up").await.unwrap();
    let status = chain.status.clone().unwrap_or_default();
    assert!(ready, "the chain is not Ready: {status:#?}");
    assert_eq!(status.lane_count, Some(2));
    assert_eq!(status.ready_lanes, Some(2));
    assert_eq!(status.path.as_deref(), Some("ran-3>fw>dpi>nat>core-gw"));

    // Each NF is Ready, its replicas on nodes with every interface attached.
    for name in ["fw", "dpi", "nat"] {
        let nf = get::<NetworkFunction>(&client, "upf", name).await.unwrap();
        let s = nf.status.unwrap_or_default();
        assert_eq!(s.phase.as_deref(), Some("Ready"), "{name}: {s:#?}");
        assert_eq!(s.ready_replicas, Some(2));
    }

    // fw runs as two VMs, started, each in a virt-launcher pod with the n6 network first.
    for i in 0..2 {
        let vm = get::<VirtualMachine>(&client, "upf", &format!("fw-{i}"))
            .await
            .unwrap();
        assert_eq!(vm.rest["spec"]["runStrategy"], "Always");
        let networks = &vm.rest["spec"]["template"]["spec"]["networks"];
        assert_eq!(networks[1]["multus"]["networkName"], "upf/n6");
        assert_eq!(
            networks[2]["multus"]["networkName"],
            format!("upf/up-{i}-fw-dpi")
        );
        let vmi = get::<VirtualMachineInstance>(&client, "upf", &format!("fw-{i}"))
            .await
            .unwrap();
        assert_eq!(vmi.rest["status"]["phase"], "Running");
    }
    let launchers: Vec<Pod> = list::<Pod>(&client, "upf")
        .await
        .into_iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubevirt.io"))
                .map(String::as_str)
                == Some("virt-launcher")
        })
        .collect();
    assert_eq!(launchers.len(), 2);

    // dpi's pods were gated, placed by the planner, and attached by Multus.
    let dpi0 = get::<Pod>(&client, "upf", "dpi-0").await.unwrap();
    let annotations = dpi0.metadata.annotations.clone().unwrap_or_default();
    let attached: serde_json::Value =
        serde_json::from_str(&annotations["k8s.v1.cni.cncf.io/network-status"]).unwrap();
    let names: Vec<&str> = attached
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["sim-pod-network", "upf/up-0-fw-dpi", "upf/up-0-dpi-nat"]
    );
    assert_eq!(
        dpi0.metadata.owner_references.unwrap()[0].kind,
        "NetworkFunction"
    );

    // colocate defaults to Preferred: each hop asks for the node of the previous one, and
    // the planner honours it, so every link of every lane is a bridge on one node.
    for lane in &status.lanes {
        let nodes: Vec<Option<&str>> = lane.hops.iter().map(|h| h.node.as_deref()).collect();
        assert!(
            nodes.windows(2).all(|w| w[0] == w[1]),
            "lane {}: {nodes:?}",
            lane.index
        );
        assert!(
            lane.links
                .iter()
                .all(|l| l.cni.as_deref() == Some("bridge")),
            "{lane:?}"
        );
    }
    let dpi1 = get::<Pod>(&client, "upf", "dpi-1").await.unwrap();
    let affinity = serde_json::to_value(dpi1.spec.unwrap().affinity).unwrap();
    assert_eq!(
        affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
            ["labelSelector"]["matchLabels"],
        json!({"network.edgeplane.io/network-function": "fw", "network.edgeplane.io/replica": "1"})
    );

    // One NAD per link and lane, with a CNI configuration; one binding per lane.
    let mut nads: Vec<String> = list::<NetworkAttachmentDefinition>(&client, "upf")
        .await
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    nads.sort();
    assert_eq!(
        nads,
        [
            "n6",
            "up-0-dpi-nat",
            "up-0-fw-dpi",
            "up-1-dpi-nat",
            "up-1-fw-dpi"
        ]
    );
    let bindings: Vec<ConstraintPolicyBinding> = list(&client, "upf").await;
    let mut lanes: Vec<(String, String)> = bindings
        .iter()
        .map(|b| {
            (
                b.metadata.name.clone().unwrap_or_default(),
                b.status
                    .as_ref()
                    .map(|s| s.compliance.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    lanes.sort();
    for lane in &status.lanes {
        let e2e = lane.end_to_end.clone().unwrap_or_default();
        let latency = e2e.latency.unwrap_or_default();
        assert!(!latency.is_empty(), "lane {} has no latency", lane.index);
        assert_eq!(
            lanes[lane.index as usize],
            (
                format!("up-lane-{}", lane.index),
                e2e.compliance.to_string()
            )
        );
    }
    // `kubectl get nf,sc` tells the story: the printer columns, as the API server's Table.
    let sc = table(&client, "servicechains").await;
    assert_eq!(
        sc[0][..6],
        [
            json!("up"),
            json!("ran-3>fw>dpi>nat>core-gw"),
            json!(2),
            json!(2),
            json!(status.worst_latency),
            json!("Ready")
        ]
    );
    let nf = table(&client, "networkfunctions").await;
    let runtimes: Vec<(
        &serde_json::Value,
        &serde_json::Value,
        &serde_json::Value,
        &serde_json::Value,
    )> = nf.iter().map(|r| (&r[0], &r[1], &r[3], &r[4])).collect();
    assert_eq!(
        runtimes,
        [
            (
                &json!("dpi"),
                &json!("Container"),
                &json!(2),
                &json!("Ready")
            ),
            (
                &json!("fw"),
                &json!("VirtualMachine"),
                &json!(2),
                &json!("Ready")
            ),
            (
                &json!("nat"),
                &json!("Container"),
                &json!(2),
                &json!("Ready")
            ),
        ]
    );

    // Settled: nothing more to write while nothing changes.
    let before = functions.writes.count();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(functions.writes.since(before), Vec::<String>::new());

    // A tighter budget: every lane is over its limit, and its binding says so as any
    // binding does, GraceElapsed once the lane grace (60s) has passed.
    Api::<ServiceChain>::namespaced(client.clone(), "upf")
        .patch(
            "up",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"constraints": {"endToEnd": [
                {"name": "latency", "request": "100us", "limit": "300us"}]}}})),
        )
        .await
        .unwrap();
    let lane_bindings = || async {
        let mut b: Vec<ConstraintPolicyBinding> = list(&client, "upf").await;
        b.sort_by_key(|b| b.metadata.name.clone());
        b
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            lane_bindings().await.iter().all(|b| {
                b.status
                    .as_ref()
                    .map(|s| s.compliance.to_string())
                    .as_deref()
                    == Some("Violation")
            })
        })
        .await
    );
    let grace_elapsed = |b: &ConstraintPolicyBinding| {
        b.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "GraceElapsed" && c.status == "True")
        })
    };
    assert!(!lane_bindings().await.iter().any(grace_elapsed));
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            lane_bindings().await.iter().all(grace_elapsed)
        })
        .await
    );
    let violating = lane_bindings().await[0].status.clone().unwrap();
    assert!(violating.violating_since.is_some());
    assert_eq!(
        violating
            .first_reason
            .as_deref()
            .map(|r| r.starts_with("latency")),
        Some(true),
        "{violating:?}"
    );
    let chain = get::<ServiceChain>(&client, "upf", "up").await.unwrap();
    assert!(chain.status.unwrap().lanes.iter().all(|l| {
        l.end_to_end
            .as_ref()
            .map(|e| e.compliance.to_string())
            .as_deref()
            == Some("Violation")
    }));
    functions.stop().await;
    scheduler.stop().await;
}

#[tokio::test(start_paused = true)]
async fn bad_functions_and_chains_create_nothing_and_say_which_field() {
    let cluster = cluster().await;
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    cluster
        .load_yaml(
            "
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: lb, namespace: upf}
spec:
  runtime: Container
  image: lb:1
  replicas: 2
  interfaces: [{name: south, network: missing}]
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: one, namespace: upf}
spec: {runtime: Container, image: one:1, replicas: 1}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: two, namespace: upf}
spec: {runtime: Container, image: two:1, replicas: 2}
",
        )
        .await
        .unwrap();
    // What the schema can say, the API server refuses (its CEL rules): an NF twice.
    let twice = cluster
        .load_yaml(
            "
apiVersion: network.edgeplane.io/v1alpha1
kind: ServiceChain
metadata: {name: broken, namespace: upf}
spec:
  hops: [{name: a, networkFunction: one}, {name: b, networkFunction: two}, {name: c, networkFunction: one}]
",
        )
        .await
        .expect_err("an NF twice is refused by the schema");
    assert!(
        twice.to_string().contains(
            "spec.hops: Invalid value: \"array\": a network function is one hop of a chain"
        ),
        "{twice}"
    );
    // The rest reaches the controller, which says which field.
    cluster
        .load_yaml(
            "
apiVersion: network.edgeplane.io/v1alpha1
kind: ServiceChain
metadata: {name: broken, namespace: upf}
spec:
  hops: [{name: a, networkFunction: one}, {name: b, networkFunction: two}, {name: d, networkFunction: ghost}]
",
        )
        .await
        .unwrap();
    let invalid = |phase: Option<String>| phase.as_deref() == Some("Invalid");
    let settled = eventually(Duration::from_secs(30), || async {
        let lb = get::<NetworkFunction>(&client, "upf", "lb").await.unwrap();
        let chain = get::<ServiceChain>(&client, "upf", "broken").await.unwrap();
        invalid(lb.status.and_then(|s| s.phase)) && invalid(chain.status.and_then(|s| s.phase))
    })
    .await;
    assert!(settled);
    let lb = get::<NetworkFunction>(&client, "upf", "lb").await.unwrap();
    let ready = lb
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        ready.message,
        "spec.interfaces[0].network: NetworkAttachmentDefinition upf/missing does not exist"
    );
    let chain = get::<ServiceChain>(&client, "upf", "broken").await.unwrap();
    let valid = chain
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Valid")
        .unwrap();
    assert_eq!(valid.status, "False");
    assert_eq!(
        valid.message,
        "spec.hops[1].networkFunction: NetworkFunction two has 2 replicas, hop \"a\"'s has 1; lane i joins replica i of every hop; \
         spec.hops[2].networkFunction: NetworkFunction upf/ghost does not exist"
    );
    // Nothing of lb, nothing of the chain. (one and two are valid NFs: their pods exist.)
    let pods: Vec<String> = list::<Pod>(&client, "upf")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(!pods.iter().any(|p| p.starts_with("lb-")), "{pods:?}");
    assert_eq!(pods.len(), 3, "{pods:?}");
    let nads: Vec<NetworkAttachmentDefinition> = list(&client, "upf").await;
    assert_eq!(nads.len(), 1, "only n6: {nads:?}");
    // kubectl describe says it too, once each.
    let events: Vec<Event> = list(&client, "upf").await;
    let mut invalid: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| {
            (
                e.reason.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    invalid.sort();
    assert_eq!(
        invalid,
        [
            ("NetworkFunctionInvalid".to_string(), "lb".to_string()),
            ("ServiceChainInvalid".to_string(), "broken".to_string()),
        ]
    );
    let bindings: Vec<ConstraintPolicyBinding> = list(&client, "upf").await;
    assert!(bindings.is_empty());

    // The missing network appears: lb renders.
    cluster
        .load_yaml(
            "apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: missing, namespace: upf}
spec: {config: '{\"cniVersion\": \"0.3.1\", \"name\": \"missing\", \"type\": \"bridge\"}'}
",
        )
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            get::<Pod>(&client, "upf", "lb-1").await.is_some()
        })
        .await
    );
    functions.stop().await;
}

#[tokio::test(start_paused = true)]
async fn multus_holds_a_pod_whose_network_is_missing() {
    let cluster = cluster().await;
    let client = cluster.client();
    cluster
        .load_yaml(
            "apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: upf
  annotations: {k8s.v1.cni.cncf.io/networks: 'n6,later@net7'}
spec:
  containers: [{name: c, image: probe:1}]
",
        )
        .await
        .unwrap();
    let event_seen = eventually(Duration::from_secs(30), || async {
        list::<Event>(&client, "upf")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedCreatePodSandBox"))
    })
    .await;
    assert!(event_seen);
    let events: Vec<Event> = list(&client, "upf").await;
    let failed = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedCreatePodSandBox"))
        .unwrap();
    assert!(
        failed.message.as_deref().unwrap_or_default().ends_with(
            "cannot find a network-attachment-definition (later) in namespace (upf): network-attachment-definitions.k8s.cni.cncf.io \"later\" not found"
        ),
        "{failed:?}"
    );
    let pod = get::<Pod>(&client, "upf", "probe").await.unwrap();
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let waiting = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ContainerCreating"));

    cluster
        .load_yaml(
            "apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: later, namespace: upf}
spec: {config: '{\"cniVersion\": \"0.3.1\", \"name\": \"later\", \"type\": \"bridge\"}'}
",
        )
        .await
        .unwrap();
    let running = eventually(Duration::from_secs(30), || async {
        get::<Pod>(&client, "upf", "probe")
            .await
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    assert!(running);
    let pod = get::<Pod>(&client, "upf", "probe").await.unwrap();
    let annotations = pod.metadata.annotations.unwrap();
    let attached: serde_json::Value =
        serde_json::from_str(&annotations["k8s.v1.cni.cncf.io/network-status"]).unwrap();
    let interfaces: Vec<(&str, &str)> = attached
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["interface"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        interfaces,
        [
            ("sim-pod-network", "eth0"),
            ("upf/n6", "net1"),
            ("upf/later", "net7")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn scaling_down_removes_a_lane_and_deleting_the_chain_removes_its_links() {
    let cluster = cluster().await;
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    let scheduler = harness::start_elected_scheduler(&cluster, "scheduler-a").await;
    cluster.load_yaml(FUNCTIONS).await.unwrap();
    let phase = || async {
        get::<ServiceChain>(&client, "upf", "up")
            .await
            .and_then(|c| c.status)
            .map(|s| {
                (
                    s.phase.unwrap_or_default(),
                    s.lane_count.unwrap_or_default(),
                )
            })
    };
    assert!(
        eventually(Duration::from_secs(120), || async {
            phase().await == Some(("Ready".into(), 2))
        })
        .await
    );
    for nf in ["fw", "dpi", "nat"] {
        Api::<NetworkFunction>::namespaced(client.clone(), "upf")
            .patch(
                nf,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"replicas": 1}})),
            )
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(60), || async {
            phase().await == Some(("Ready".into(), 1))
        })
        .await,
        "{:?}",
        phase().await
    );
    let names = |items: Vec<Option<String>>| {
        let mut n: Vec<String> = items.into_iter().flatten().collect();
        n.sort();
        n
    };
    let settled = eventually(Duration::from_secs(30), || async {
        let pods = names(
            list::<Pod>(&client, "upf")
                .await
                .into_iter()
                .map(|p| p.metadata.name)
                .collect(),
        );
        pods.len() == 3
    })
    .await;
    let pods = names(
        list::<Pod>(&client, "upf")
            .await
            .into_iter()
            .map(|p| p.metadata.name)
            .collect(),
    );
    assert!(settled, "{pods:?}");
    assert!(pods.contains(&"dpi-0".to_string()) && pods.contains(&"nat-0".to_string()));
    assert!(
        pods.iter().any(|p| p.starts_with("virt-launcher-fw-0-")),
        "{pods:?}"
    );
    let vms = names(
        list::<VirtualMachine>(&client, "upf")
            .await
            .into_iter()
            .map(|v| v.metadata.name)
            .collect(),
    );
    assert_eq!(vms, ["fw-0"]);
    let nads = names(
        list::<NetworkAttachmentDefinition>(&client, "upf")
            .await
            .into_iter()
            .map(|n| n.metadata.name)
            .collect(),
    );
    assert_eq!(nads, ["n6", "up-0-dpi-nat", "up-0-fw-dpi"]);
    let bindings = names(
        list::<ConstraintPolicyBinding>(&client, "upf")
            .await
            .into_iter()
            .map(|b| b.metadata.name)
            .collect(),
    );
    assert_eq!(bindings, ["up-lane-0"]);

    // The chain goes: its links and lane binding are garbage-collected, and the hops lose
    // their ports (the VM's template has only n6 again).
    Api::<ServiceChain>::namespaced(client.clone(), "upf")
        .delete("up", &Default::default())
        .await
        .unwrap();
    let cleaned = eventually(Duration::from_secs(30), || async {
        let nads: Vec<NetworkAttachmentDefinition> = list(&client, "upf").await;
        let bindings: Vec<ConstraintPolicyBinding> = list(&client, "upf").await;
        let vm = get::<VirtualMachine>(&client, "upf", "fw-0").await.unwrap();
        nads.len() == 1
            && bindings.is_empty()
            && vm.rest["spec"]["template"]["spec"]["networks"]
                .as_array()
                .map(Vec::len)
                == Some(2)
    })
    .await;
    assert!(cleaned);
    functions.stop().await;
    scheduler.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_lane_whose_node_fails_runs_again_elsewhere() {
    let cluster = cluster().await;
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    let scheduler = harness::start_elected_scheduler(&cluster, "scheduler-a").await;
    cluster.load_yaml(FUNCTIONS).await.unwrap();
    let node_of_fw0 = || async {
        get::<VirtualMachineInstance>(&client, "upf", "fw-0")
            .await
            .filter(|v| {
                v.rest.get("status").and_then(|s| s.get("phase")) == Some(&json!("Running"))
            })
            .and_then(|v| {
                v.rest
                    .get("status")?
                    .get("nodeName")?
                    .as_str()
                    .map(str::to_string)
            })
    };
    assert!(
        eventually(Duration::from_secs(120), || async {
            node_of_fw0().await.is_some()
        })
        .await
    );
    let failed = node_of_fw0().await.unwrap();
    cluster.fail_node(&failed).await.unwrap();
    // The node is noticed after 50s, its pods evicted after their 300s of toleration; the
    // VMI, its launcher pod gone, fails, and runStrategy Always starts a new one elsewhere.
    let moved = eventually(Duration::from_secs(600), || async {
        node_of_fw0().await.is_some_and(|n| n != failed)
    })
    .await;
    assert!(moved, "fw-0 still on {failed}: {:?}", node_of_fw0().await);
    // The container hops of lane 0 were there too (co-located): their pods are stuck
    // terminating, so each replica gets a new pod, placed next to the VM again, and the
    // lane is wired anew.
    let lane0 = || async {
        get::<ServiceChain>(&client, "upf", "up")
            .await
            .and_then(|c| c.status)
            .and_then(|s| s.lanes.into_iter().next())
    };
    let recovered = eventually(Duration::from_secs(300), || async {
        lane0().await.is_some_and(|l| {
            l.hops
                .iter()
                .all(|h| h.node.as_deref().is_some_and(|n| n != failed))
                && l.links.iter().all(|link| link.ready)
        })
    })
    .await;
    assert!(recovered, "{:#?}", lane0().await);
    let pods: Vec<String> = list::<Pod>(&client, "upf")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(pods.contains(&"dpi-0-r1".to_string()), "{pods:?}");
    assert!(pods.contains(&"nat-0-r1".to_string()), "{pods:?}");
    functions.stop().await;
    scheduler.stop().await;
}

/// Two sites between the ingress and the egress: edge-a near the RAN, edge-b near the core.
const TWO_SITES: &str = "
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sameNode: {latency: 20us}
  intraSite: {latency: 200us}
  sites: [{name: ran-3, transit: false}, {name: core-gw, transit: false},
          {name: edge-a, transit: false}, {name: edge-b, transit: false}]
  links:
  - {from: ran-3, to: edge-a, latency: 200us}
  - {from: ran-3, to: edge-b, latency: 900us}
  - {from: edge-a, to: core-gw, latency: 900us}
  - {from: edge-b, to: core-gw, latency: 200us}
  - {from: edge-a, to: edge-b, latency: 300us}
---
apiVersion: v1
kind: Namespace
metadata: {name: upf}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: n6, namespace: upf}
spec:
  config: '{\"cniVersion\": \"0.3.1\", \"name\": \"n6\", \"type\": \"macvlan\", \"ipam\": {}}'
";

/// The planning scheduler, watching service chains and network functions (as
/// `--service-chains` does): it plans lanes as units, and the bindings of offers that
/// target NFs and chains.
async fn start_lane_scheduler(cluster: &EmbeddedCluster) -> Component {
    use edgeplane_core::scheduler::Mode;
    use edgeplane_runtime::scheduler::queue::Triggers;
    use edgeplane_runtime::scheduler::{Scheduler, SchedulerConfig};
    let writes = WriteLog::default();
    let client = recording_client(cluster, &writes);
    let config =
        BaseConfig::new(edgeplane_runtime::scheduler::COMPONENT).clock(Arc::new(cluster.clock()));
    let mut base = Base::start(client.clone(), config).await.unwrap();
    let functions = FunctionCaches::start(&client, &base.ctx.shutdown).targets();
    let scheduler = Scheduler::new(
        base.ctx.clone(),
        base.caches.clone(),
        base.views.clone(),
        SchedulerConfig {
            mode: Mode::Gate,
            triggers: Triggers {
                quiet_period: Duration::from_secs(1),
                max_wait: Duration::from_secs(5),
            },
            ..SchedulerConfig::default()
        },
    )
    .with_functions(functions);
    base.spawn(scheduler.run());
    Component { base, writes }
}

#[tokio::test(start_paused = true)]
async fn each_lane_is_planned_as_a_unit_against_its_summed_budget() {
    // Along ran-3 > fw > dpi > nat > core-gw, a lane all in edge-a is 200 + 20 + 20 +
    // 900 = 1140us, all in edge-b 900 + 40 + 200 = 1140us: over the 1ms limit, although
    // no single segment is. Split at the 300us link between the sites it is 720us. The
    // launcher pods of the VM hop are gated (the webhook gates the pods of network
    // functions), so the planner sees each lane whole.
    let (cluster, gate) =
        harness::gated_cluster(vec![site_node("a1", "edge-a"), site_node("b1", "edge-b")]).await;
    with_upstream_crds(&cluster).await;
    cluster.load_yaml(TWO_SITES).await.unwrap();
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    gate.attach(&functions.base.caches.offers);
    let scheduler = start_lane_scheduler(&cluster).await;
    cluster
        .load_yaml(&FUNCTIONS.replace(
            "endToEnd: [{name: latency, request: 1ms, limit: 2ms}]",
            "endToEnd: [{name: latency, request: 800us, limit: 1ms}]",
        ))
        .await
        .unwrap();

    let ready = eventually(Duration::from_secs(120), || async {
        get::<ServiceChain>(&client, "upf", "up")
            .await
            .and_then(|c| c.status)
            .is_some_and(|s| s.phase.as_deref() == Some("Ready"))
    })
    .await;
    let status = get::<ServiceChain>(&client, "upf", "up")
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert!(ready, "{status:#?}");
    // The launcher pods waited at the gate and were placed by the planner.
    let launchers: Vec<Pod> = list::<Pod>(&client, "upf")
        .await
        .into_iter()
        .filter(|p| {
            p.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("virt-launcher-"))
        })
        .collect();
    assert_eq!(launchers.len(), 2);
    for pod in &launchers {
        // The planner's placement: required node affinity to the planned node, written
        // while the pod was at the gate (a VM's template has none of its own).
        let affinity = serde_json::to_value(&pod.spec.as_ref().unwrap().affinity).unwrap();
        let terms = &affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
        assert_eq!(
            terms[0]["matchFields"][0]["key"], "metadata.name",
            "{:?} was not placed by the planner: {affinity}",
            pod.metadata.name
        );
    }
    for lane in &status.lanes {
        let nodes: Vec<&str> = lane.hops.iter().filter_map(|h| h.node.as_deref()).collect();
        assert_eq!(nodes.len(), 3);
        // It starts near the RAN and ends near the core.
        assert_eq!(nodes[0], "a1", "lane {}: {nodes:?}", lane.index);
        assert_eq!(nodes[2], "b1", "lane {}: {nodes:?}", lane.index);
        let e2e = lane.end_to_end.clone().unwrap_or_default();
        assert_eq!(e2e.latency.as_deref(), Some("720us"), "{lane:?}");
        assert_eq!(e2e.compliance.to_string(), "Compliant");
        // The link between the sites is macvlan, the one on a node a bridge.
        let mut cnis: Vec<&str> = lane.links.iter().filter_map(|l| l.cni.as_deref()).collect();
        cnis.sort();
        assert_eq!(cnis, ["bridge", "macvlan"], "{lane:?}");
    }
    let bindings: Vec<ConstraintPolicyBinding> = list(&client, "upf").await;
    assert_eq!(bindings.len(), 2);
    assert!(
        bindings.iter().all(|b| b
            .status
            .as_ref()
            .map(|s| s.compliance.to_string())
            .as_deref()
            == Some("Compliant")),
        "{bindings:#?}"
    );
    functions.stop().await;
    scheduler.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_lane_whose_node_fails_is_planned_again_as_a_unit() {
    // Two nodes near the RAN, one near the core. The lanes are planned split (720us);
    // the node of lane 0's VM hop fails, and its hops there are planned again together,
    // on the other node near the RAN, with the hops still running as fixed points: the
    // lane is back within its budget.
    let (cluster, gate) = harness::gated_cluster(vec![
        site_node("a1", "edge-a"),
        site_node("a2", "edge-a"),
        site_node("b1", "edge-b"),
    ])
    .await;
    with_upstream_crds(&cluster).await;
    cluster.load_yaml(TWO_SITES).await.unwrap();
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    gate.attach(&functions.base.caches.offers);
    let scheduler = start_lane_scheduler(&cluster).await;
    cluster
        .load_yaml(&FUNCTIONS.replace(
            "endToEnd: [{name: latency, request: 1ms, limit: 2ms}]",
            "endToEnd: [{name: latency, request: 800us, limit: 1ms}]",
        ))
        .await
        .unwrap();
    let lane0 = || async {
        get::<ServiceChain>(&client, "upf", "up")
            .await
            .and_then(|c| c.status)
            .and_then(|s| s.lanes.into_iter().next())
    };
    let compliant = |l: &edgeplane_api::LaneStatus| {
        l.links.iter().all(|link| link.ready)
            && l.end_to_end
                .as_ref()
                .map(|e| e.compliance.to_string())
                .as_deref()
                == Some("Compliant")
    };
    assert!(
        eventually(Duration::from_secs(120), || async {
            lane0().await.is_some_and(|l| compliant(&l))
        })
        .await,
        "{:#?}",
        lane0().await
    );
    let before = lane0().await.unwrap();
    let failed = before.hops[0].node.clone().unwrap();
    assert!(failed.starts_with('a'), "{before:#?}");
    cluster.fail_node(&failed).await.unwrap();
    let recovered = eventually(Duration::from_secs(900), || async {
        lane0().await.is_some_and(|l| {
            l.hops
                .iter()
                .all(|h| h.node.as_deref().is_some_and(|n| n != failed))
                && compliant(&l)
        })
    })
    .await;
    let after = lane0().await.unwrap();
    assert!(recovered, "{after:#?}");
    let other = if failed == "a1" { "a2" } else { "a1" };
    assert_eq!(after.hops[0].node.as_deref(), Some(other), "{after:#?}");
    assert_eq!(after.hops[2].node.as_deref(), Some("b1"), "{after:#?}");
    assert_eq!(after.end_to_end.unwrap().latency.as_deref(), Some("720us"));
    functions.stop().await;
    scheduler.stop().await;
}

/// Offers that target network functions: `dpi` within 300us of the RAN, and the chain's
/// last hop within 300us of the core gateway (policy `near`).
const FUNCTION_OFFERS: &str = "
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near, namespace: upf}
spec:
  rules: [{name: latency, request: 300us, limit: 300us}]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: dpi-near-ran, namespace: upf}
spec:
  targets:
  - {name: dpi, kind: NetworkFunction, labelSelector: {matchLabels: {role: inspection}}}
  - {name: ran, kind: Site, sites: [ran-3]}
  policies: [near]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyOffer
metadata: {name: exit-near-core, namespace: upf}
spec:
  targets:
  - {name: exit, kind: ServiceChain, mode: End, labelSelector: {matchLabels: {app: up}}}
  - {name: core, kind: Site, sites: [core-gw]}
  policies: [near]
";

#[tokio::test(start_paused = true)]
async fn offers_that_target_network_functions_and_chains_bind_and_place_each_replica() {
    // No end-to-end budget on the chain: only the offers pull the hops apart. dpi must
    // be within 300us of ran-3 (edge-a: 200us, edge-b: 900us) and the chain's exit (nat)
    // within 300us of core-gw (edge-b: 200us, edge-a: 900us). Each replica gets its own
    // binding, with the pod as its target, and the planner places by them.
    let (cluster, gate) =
        harness::gated_cluster(vec![site_node("a1", "edge-a"), site_node("b1", "edge-b")]).await;
    with_upstream_crds(&cluster).await;
    cluster.load_yaml(TWO_SITES).await.unwrap();
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    gate.attach(&functions.base.caches.offers);
    let watching = tokio_util::sync::CancellationToken::new();
    let mut setup = harness::Setup::new("controller-0");
    setup.options.functions = Some(FunctionCaches::start(&client, &watching).targets());
    let controller = harness::start_controller(&cluster, setup).await;
    let scheduler = start_lane_scheduler(&cluster).await;
    cluster.load_yaml(FUNCTION_OFFERS).await.unwrap();
    cluster
        .load_yaml(
            &FUNCTIONS
                .replace(
                    "    endToEnd: [{name: latency, request: 1ms, limit: 2ms}]\n",
                    "",
                )
                .replace("  constraints:\n", "")
                .replace(
                    "metadata: {name: dpi, namespace: upf}",
                    "metadata: {name: dpi, namespace: upf, labels: {role: inspection}}",
                )
                .replace(
                    "metadata: {name: up, namespace: upf}",
                    "metadata: {name: up, namespace: upf, labels: {app: up}}",
                ),
        )
        .await
        .unwrap();

    let of_offer = |offer: &'static str| {
        let client = client.clone();
        async move {
            let mut found: Vec<(String, String, String)> = Vec::new();
            for b in harness::bindings_of(&client, "upf", offer).await {
                let pod = b.spec.targets.values().find(|t| t.kind.as_str() == "Pod");
                let compliance = b
                    .status
                    .as_ref()
                    .map(|s| s.compliance.to_string())
                    .unwrap_or_default();
                found.push((
                    pod.map(|p| p.name.clone()).unwrap_or_default(),
                    compliance,
                    b.status
                        .as_ref()
                        .map(|s| s.first_reason.clone().unwrap_or_default())
                        .unwrap_or_default(),
                ));
            }
            found.sort();
            found
        }
    };
    let settled = eventually(Duration::from_secs(180), || async {
        let dpi = of_offer("dpi-near-ran").await;
        let exit = of_offer("exit-near-core").await;
        dpi.len() == 2
            && exit.len() == 2
            && dpi.iter().chain(&exit).all(|(_, c, _)| c == "Compliant")
    })
    .await;
    let dpi = of_offer("dpi-near-ran").await;
    let exit = of_offer("exit-near-core").await;
    assert!(settled, "{dpi:#?}\n{exit:#?}");
    // One binding per replica of the NF, and per replica of the chain's last hop.
    let pods = |found: &[(String, String, String)]| -> Vec<String> {
        found.iter().map(|(p, _, _)| p.clone()).collect()
    };
    assert_eq!(pods(&dpi), ["dpi-0", "dpi-1"]);
    assert_eq!(pods(&exit), ["nat-0", "nat-1"]);
    assert!(dpi[0].2.contains("200us"), "{dpi:?}");
    // The planner put each where its binding holds.
    let node_of = |name: &'static str| {
        let client = client.clone();
        async move {
            get::<Pod>(&client, "upf", name)
                .await
                .and_then(|p| p.spec)
                .and_then(|s| s.node_name)
        }
    };
    for (pod, node) in [
        ("dpi-0", "a1"),
        ("dpi-1", "a1"),
        ("nat-0", "b1"),
        ("nat-1", "b1"),
    ] {
        assert_eq!(node_of(pod).await.as_deref(), Some(node), "{pod}");
    }
    watching.cancel();
    controller.stop().await;
    functions.stop().await;
    scheduler.stop().await;
}

/// TWO_SITES and a third site, edge-c, near the RAN and next to edge-a (no node there at
/// first): ran-3 > edge-c 140us, edge-c > edge-a 140us. No site is transit, so the path
/// between ran-3 and edge-a is their link, whatever its latency.
fn three_sites(ran_to_edge_a: &str) -> String {
    TWO_SITES
        .replace(
            "{name: edge-b, transit: false}]",
            "{name: edge-b, transit: false}, {name: edge-c, transit: false}]",
        )
        .replace(
            "  - {from: ran-3, to: edge-a, latency: 200us}\n",
            &format!(
                "  - {{from: ran-3, to: edge-a, latency: {ran_to_edge_a}}}\n  - {{from: ran-3, to: edge-c, latency: 140us}}\n  - {{from: edge-c, to: edge-a, latency: 140us}}\n"
            ),
        )
}

/// The descheduler repairing lanes (`--network-functions`), every 2s, pods of any age,
/// with the reference network controller in process (no catalogue: it cannot mitigate).
async fn start_lane_descheduler(cluster: &EmbeddedCluster) -> Component {
    use edgeplane_netctl::{NetworkController, ReferenceConfig, ReferenceController};
    use edgeplane_runtime::cache::LaneCaches;
    use edgeplane_runtime::descheduler::{self, Descheduler, DeschedulerConfig, Limits};
    let writes = WriteLog::default();
    let client = recording_client(cluster, &writes);
    let clock = Arc::new(cluster.clock());
    let config = BaseConfig::new(descheduler::COMPONENT).clock(clock.clone());
    let mut base = Base::start(client.clone(), config).await.unwrap();
    let lanes = LaneCaches::start(&client, &base.ctx.shutdown);
    let network = Arc::new(ReferenceController::new(
        client.clone(),
        clock,
        ReferenceConfig::default(),
    ));
    let descheduler = Descheduler::new(
        base.ctx.clone(),
        base.caches.clone(),
        base.views.clone(),
        DeschedulerConfig {
            interval: Duration::from_secs(2),
            limits: Limits {
                min_pod_age: Duration::ZERO,
                ..Limits::default()
            },
            ..DeschedulerConfig::default()
        },
    )
    .with_network_controller(network as Arc<dyn NetworkController>)
    .with_lanes(lanes);
    base.spawn(descheduler.run());
    Component { base, writes }
}

/// What a pod watch saw, in order: (pod, phase, being deleted).
type PodLog = Arc<std::sync::Mutex<Vec<(String, String, bool)>>>;

fn watch_pods(client: &Client, namespace: &str) -> PodLog {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let log: PodLog = Arc::default();
    let sink = log.clone();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(Ok(event)) = events.next().await {
            let (pods, deleted) = match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => (vec![p], false),
                watcher::Event::Delete(p) => (vec![p], true),
                _ => continue,
            };
            for p in pods {
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                let deleting = deleted || p.metadata.deletion_timestamp.is_some();
                sink.lock()
                    .unwrap()
                    .push((p.metadata.name.unwrap_or_default(), phase, deleting));
            }
        }
    });
    log
}

#[tokio::test(start_paused = true)]
async fn a_vm_hop_whose_link_degrades_is_live_migrated_to_the_planners_node() {
    // The lanes are planned split between edge-a and edge-b (fw and dpi on a1, nat on b1:
    // 200 + 20 + 300 + 200 = 720us, request 800us, limit 1ms). Then a node comes up in
    // edge-c and the link between the RAN and edge-a degrades to 900us: each lane is
    // 1420us, in Violation. Only moving fw helps (ran-3 > c1 > a1 > b1 > core-gw: 780us,
    // Compliant); moving dpi or nat leaves the 900us link in the lane. The descheduler asks
    // the network controller first (no catalogue: refused), then, mitigationGrace later,
    // migrates each lane's VM to c1 instead of evicting anything.
    let (cluster, gate) =
        harness::gated_cluster(vec![site_node("a1", "edge-a"), site_node("b1", "edge-b")]).await;
    with_upstream_crds(&cluster).await;
    cluster
        .load_yaml(edgeplane_cluster::kubevirt::MIGRATION_CRD)
        .await
        .unwrap();
    cluster.load_yaml(&three_sites("200us")).await.unwrap();
    let client = cluster.client();
    let functions = start_functions(&cluster).await;
    gate.attach(&functions.base.caches.offers);
    let scheduler = start_lane_scheduler(&cluster).await;
    let pods = watch_pods(&client, "upf");
    cluster
        .load_yaml(&FUNCTIONS.replace(
            "endToEnd: [{name: latency, request: 1ms, limit: 2ms}]",
            "endToEnd: [{name: latency, request: 800us, limit: 1ms}]",
        ))
        .await
        .unwrap();
    let lanes = || async {
        get::<ServiceChain>(&client, "upf", "up")
            .await
            .and_then(|c| c.status)
            .map(|s| s.lanes)
            .unwrap_or_default()
    };
    let all = |want: &'static str| {
        let lanes = &lanes;
        async move {
            let lanes = lanes().await;
            lanes.len() == 2
                && lanes.iter().all(|l| {
                    l.links.iter().all(|link| link.ready)
                        && l.end_to_end
                            .as_ref()
                            .map(|e| e.compliance.to_string())
                            .as_deref()
                            == Some(want)
                })
        }
    };
    assert!(
        eventually(Duration::from_secs(120), || all("Compliant")).await,
        "{:#?}",
        lanes().await
    );
    for lane in lanes().await {
        let nodes: Vec<&str> = lane.hops.iter().filter_map(|h| h.node.as_deref()).collect();
        assert_eq!(nodes, ["a1", "a1", "b1"], "lane {}", lane.index);
    }
    let before: Vec<Pod> = list(&client, "upf").await;
    let container_pods: Vec<(String, String)> = before
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubevirt.io"))
                .is_none()
        })
        .map(|p| {
            (
                p.metadata.name.clone().unwrap(),
                p.metadata.uid.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(container_pods.len(), 4, "{container_pods:?}");
    let sources: Vec<String> = before
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .filter(|n| n.starts_with("virt-launcher-fw-"))
        .collect();
    assert_eq!(sources.len(), 2);

    let descheduler = start_lane_descheduler(&cluster).await;
    cluster.add_node(site_node("c1", "edge-c")).await.unwrap();
    cluster.load_yaml(&three_sites("900us")).await.unwrap();
    assert!(
        eventually(Duration::from_secs(60), || all("Violation")).await,
        "{:#?}",
        lanes().await
    );
    // Grace (60s), the refused mitigation, mitigationGrace (60s), then the migrations.
    let migrated = eventually(Duration::from_secs(400), || async {
        let done = lanes()
            .await
            .iter()
            .all(|l| l.hops.first().and_then(|h| h.node.as_deref()) == Some("c1"));
        done && all("Compliant").await
    })
    .await;
    if !migrated {
        let events: Vec<Event> = list(&client, "upf").await;
        let notes: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "{:?} {:?} {:?}",
                    e.involved_object.name, e.reason, e.message
                )
            })
            .collect();
        panic!(
            "not migrated: {:#?}\n{notes:#?}\n{:#?}",
            lanes().await,
            descheduler.writes.entries()
        );
    }

    // Exactly one migration per VMI, to the planner's node, both succeeded.
    use edgeplane_runtime::foreign::VirtualMachineInstanceMigration;
    let migrations: Vec<VirtualMachineInstanceMigration> = list(&client, "upf").await;
    let mut seen: Vec<(String, serde_json::Value, String)> = migrations
        .iter()
        .map(|m| {
            (
                m.rest["spec"]["vmiName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m.rest["spec"]["addedNodeSelector"].clone(),
                m.rest["status"]["phase"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            (
                "fw-0".to_string(),
                json!({"kubernetes.io/hostname": "c1"}),
                "Succeeded".to_string()
            ),
            (
                "fw-1".to_string(),
                json!({"kubernetes.io/hostname": "c1"}),
                "Succeeded".to_string()
            ),
        ]
    );
    for vmi in ["fw-0", "fw-1"] {
        let v = get::<VirtualMachineInstance>(&client, "upf", vmi)
            .await
            .unwrap();
        let status = &v.rest["status"];
        assert_eq!(status["nodeName"], "c1", "{vmi}");
        assert_eq!(status["phase"], "Running", "{vmi}");
        assert_eq!(status["migrationState"]["completed"], true, "{vmi}");
        assert_eq!(status["migrationState"]["targetNode"], "c1", "{vmi}");
        assert_eq!(status["migrationState"]["sourceNode"], "a1", "{vmi}");
    }
    // The lane bindings are Compliant again, at 780us.
    for lane in lanes().await {
        let e2e = lane.end_to_end.clone().unwrap();
        assert_eq!(e2e.latency.as_deref(), Some("780us"), "{lane:?}");
    }
    // `kubectl get nf,sc,vmim` tells it: fw on c1, the chain Ready at 780us, two
    // migrations Succeeded to c1.
    let nf = table(&client, "networkfunctions").await;
    let nodes: Vec<(&serde_json::Value, &serde_json::Value, &serde_json::Value)> =
        nf.iter().map(|r| (&r[0], &r[4], &r[5])).collect();
    assert_eq!(
        nodes,
        [
            (&json!("dpi"), &json!("Ready"), &json!("a1,a1")),
            (&json!("fw"), &json!("Ready"), &json!("c1,c1")),
            (&json!("nat"), &json!("Ready"), &json!("b1,b1")),
        ]
    );
    let sc = table(&client, "servicechains").await;
    assert_eq!(
        sc[0][..6],
        [
            json!("up"),
            json!("ran-3>fw>dpi>nat>core-gw"),
            json!(2),
            json!(2),
            json!("780us"),
            json!("Ready")
        ]
    );
    let vmim = table_of(
        &client,
        "kubevirt.io/v1/namespaces/upf/virtualmachineinstancemigrations",
    )
    .await;
    let mut rows: Vec<(&serde_json::Value, &serde_json::Value, &serde_json::Value)> =
        vmim.iter().map(|r| (&r[1], &r[2], &r[3])).collect();
    rows.sort_by_key(|r| r.1.to_string());
    assert_eq!(
        rows,
        [
            (&json!("Succeeded"), &json!("fw-0"), &json!("c1")),
            (&json!("Succeeded"), &json!("fw-1"), &json!("c1")),
        ]
    );
    // Nothing was evicted: the container pods are the same ones, and the descheduler made
    // no eviction; it created the migrations through the API.
    let after: Vec<Pod> = list(&client, "upf").await;
    for (name, uid) in &container_pods {
        assert!(
            after.iter().any(|p| p.metadata.name.as_ref() == Some(name)
                && p.metadata.uid.as_ref() == Some(uid)
                && p.metadata.deletion_timestamp.is_none()),
            "{name} was replaced"
        );
    }
    let writes = descheduler.writes.entries();
    assert!(
        !writes.iter().any(|w| w.contains("eviction")),
        "{writes:#?}"
    );
    assert_eq!(
        writes
            .iter()
            .filter(|w| w.contains("virtualmachineinstancemigrations"))
            .count(),
        2,
        "{writes:#?}"
    );
    // No interruption: each source launcher pod was Running until its target pod ran; only
    // then was it deleted.
    let log = pods.lock().unwrap().clone();
    for source in &sources {
        let gone = log
            .iter()
            .position(|(name, _, deleting)| name == source && *deleting)
            .unwrap_or_else(|| panic!("{source} was not deleted: {log:#?}"));
        assert!(
            log[..gone]
                .iter()
                .rfind(|(name, _, _)| name == source)
                .is_some_and(|(_, phase, _)| phase == "Running"),
            "{source} stopped running before it was deleted: {log:#?}"
        );
        let vm = source
            .trim_start_matches("virt-launcher-")
            .rsplit_once('-')
            .map(|(vm, _)| vm.to_string())
            .unwrap();
        let target_ran = log[..gone].iter().any(|(name, phase, _)| {
            name.starts_with(&format!("virt-launcher-{vm}-"))
                && name != source
                && phase == "Running"
        });
        assert!(target_ran, "{source} went before its target ran: {log:#?}");
    }
    // The story, in Events on the lane binding.
    let events: Vec<Event> = list(&client, "upf").await;
    let reasons_of = |binding: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(binding))
            .filter_map(|e| e.reason.clone())
            .collect()
    };
    let story = reasons_of("up-lane-0");
    for reason in ["MitigationFailed", "MigrationStarted", "Migrated"] {
        assert!(story.contains(&reason.to_string()), "{story:?}");
    }
    assert!(!story.contains(&"Evicted".to_string()), "{story:?}");
    functions.stop().await;
    scheduler.stop().await;
    descheduler.stop().await;
}
