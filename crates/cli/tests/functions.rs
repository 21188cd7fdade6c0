//! `edgeplane plan` with network functions and service chains (GitOps mode): the NFs are
//! written as the replicas their controller would create, the chain's lanes are planned as
//! units, and the chain's links become NADs whose CNI follows the plan. The output is then
//! applied to an embedded cluster that has the upstream KubeVirt and Multus CRDs, which
//! validate every VirtualMachine and NAD written, and whose scheduler runs each replica
//! where the plan pinned it.

// Tests unwrap what they built and the errors they expect.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::Value as Json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn edgeplane(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn documents(yaml: &str) -> Vec<Json> {
    serde_saphyr::from_multiple::<Json>(yaml)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn named<'a>(docs: &'a [Json], kind: &str, name: &str) -> &'a Json {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the output"))
}

/// The node a written workload is pinned to (`matchFields metadata.name In [node]`), in a
/// Pod's spec or a VirtualMachine's instance spec.
fn pinned(spec: &Json) -> Option<String> {
    let terms = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    terms[0]["matchFields"]
        .as_array()?
        .iter()
        .find(|f| f["key"] == "metadata.name")
        .and_then(|f| f["values"][0].as_str())
        .map(str::to_string)
}

#[test]
fn plan_writes_network_functions_as_replicas_and_chains_as_links_that_follow_the_plan() {
    let dir = std::env::temp_dir().join(format!("edgeplane-upf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let out = edgeplane(&[
        "plan",
        "-f",
        "examples/upf-plan",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("NetworkFunction upf/fw: written as its replicas fw-0, fw-1"),
        "{stderr}"
    );
    let docs = documents(&String::from_utf8_lossy(&out.stdout));
    // The NFs and the chain are replaced by what their controllers would create.
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "NetworkFunction" || d["kind"] == "ServiceChain"),
        "{docs:#?}"
    );
    let report: Json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let placed: BTreeMap<String, String> = report["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["node"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // A lane within one site is 1140us, over its 1ms budget: each lane is planned split
    // across the 300us link, the firewall and DPI near the RAN, NAT near the core (as
    // the offer on the chain's exit asks too).
    let site = |node: &str| {
        if node.starts_with('a') {
            "edge-a"
        } else {
            "edge-b"
        }
    };
    for (pod, want) in [
        ("fw-0", "edge-a"),
        ("fw-1", "edge-a"),
        ("dpi-0", "edge-a"),
        ("dpi-1", "edge-a"),
        ("nat-0", "edge-b"),
        ("nat-1", "edge-b"),
    ] {
        assert_eq!(site(&placed[pod]), want, "{pod}: {placed:?}");
    }
    let bindings: BTreeMap<String, (String, String)> = report["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                (
                    b["compliance"].as_str().unwrap().to_string(),
                    b["rules"][0]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(bindings["up-lane-0"], ("Compliant".into(), "720us".into()));
    assert_eq!(bindings["up-lane-1"], ("Compliant".into(), "720us".into()));
    // The offer on the chain's exit made one binding per replica of nat.
    let exits: Vec<&(String, String)> = bindings
        .iter()
        .filter(|(name, _)| name.starts_with("exit-near-core-"))
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        exits,
        [
            &("Compliant".to_string(), "200us".to_string()),
            &("Compliant".to_string(), "200us".to_string())
        ]
    );

    // Container replicas: ungated pods pinned to the planned node, on the chain's links.
    for name in ["dpi-0", "dpi-1", "nat-0", "nat-1"] {
        let pod = named(&docs, "Pod", name);
        assert_eq!(pinned(&pod["spec"]).as_deref(), Some(placed[name].as_str()));
        assert!(pod["spec"].get("schedulingGates").is_none(), "{pod:#}");
    }
    let networks =
        named(&docs, "Pod", "dpi-0")["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(
        networks.contains("up-0-fw-dpi") && networks.contains("up-0-dpi-nat"),
        "{networks}"
    );
    // VM replicas: running VirtualMachines, their instance pinned.
    for name in ["fw-0", "fw-1"] {
        let vm = named(&docs, "VirtualMachine", name);
        assert_eq!(vm["spec"]["runStrategy"], "Always");
        assert_eq!(
            pinned(&vm["spec"]["template"]["spec"]).as_deref(),
            Some(placed[name].as_str())
        );
    }
    // The links: a bridge where both hops share a node, macvlan across sites.
    let cni = |name: &str| {
        let config = named(&docs, "NetworkAttachmentDefinition", name)["spec"]["config"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_str::<Json>(&config).unwrap()["type"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for lane in 0..2 {
        let same = placed[&format!("fw-{lane}")] == placed[&format!("dpi-{lane}")];
        assert_eq!(
            cni(&format!("up-{lane}-fw-dpi")),
            if same { "bridge" } else { "macvlan" }
        );
        assert_eq!(cni(&format!("up-{lane}-dpi-nat")), "macvlan");
    }

    // Applied as written (without the inventory) to a cluster with KubeVirt's and
    // Multus' CRDs: every object is accepted and every replica runs where it was pinned.
    let out = edgeplane(&["plan", "-f", "examples/upf-plan", "--drop-inventory"]);
    assert!(out.status.success());
    let application = String::from_utf8_lossy(&out.stdout).into_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut config = ClusterConfig::default();
        for (name, site) in [("a1", "edge-a"), ("a2", "edge-a"), ("b1", "edge-b")] {
            config = config.with_node(
                NodeSpec::new(name)
                    .cpu("16")
                    .memory("64Gi")
                    .label("topology.kubernetes.io/zone", site),
            );
        }
        let cluster = EmbeddedCluster::start(config).await;
        let crds: Vec<Json> = edgeplane_api::crdgen::all()
            .into_iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        cluster.apply_objects(crds).await.unwrap();
        for crd in [
            "kubevirt/kubevirt.io_virtualmachines.yaml",
            "kubevirt/kubevirt.io_virtualmachineinstances.yaml",
            "multus/k8s.cni.cncf.io_network-attachment-definitions.yaml",
        ] {
            let path = repo().join("../shared/crds").join(crd);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cluster.load_yaml(&text).await.unwrap();
        }
        cluster
            .load_yaml(&application)
            .await
            .unwrap_or_else(|e| panic!("the output was refused: {e}"));
        let pods: Api<Pod> = Api::namespaced(cluster.client(), "upf");
        let node_of = |pod: &Pod| pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let mut last = Vec::new();
        for _ in 0..300 {
            last = pods.list(&Default::default()).await.unwrap().items;
            let running: BTreeMap<String, String> = last
                .iter()
                .filter_map(|p| {
                    let labels = p.metadata.labels.as_ref()?;
                    let nf = labels.get("network.edgeplane.io/network-function")?;
                    let replica = labels.get("network.edgeplane.io/replica")?;
                    Some((format!("{nf}-{replica}"), node_of(p)?))
                })
                .collect();
            if running == placed {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the replicas did not run where planned ({placed:?}): {:?}",
            last.iter()
                .map(|p| (p.metadata.name.clone(), node_of(p)))
                .collect::<Vec<_>>()
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
