//! `edgeplane plan --clusters` (the hub's offline mode) on examples/multicluster: the
//! files written per cluster, the report, and the errors on bad input.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run edgeplane: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory of this test process, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeplane-hub-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for cluster in std::fs::read_dir(dir).unwrap() {
        let cluster = cluster.unwrap().path();
        for file in std::fs::read_dir(&cluster).unwrap() {
            let file = file.unwrap().path();
            out.push(file.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

fn documents(path: &Path) -> Vec<Value> {
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `kind/name replicas` of each document (replicas only for workloads).
fn summary(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            let base = format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            );
            match d["spec"]["replicas"].as_u64() {
                Some(n) if d["kind"] != "Service" => format!("{base} {n}"),
                _ => base,
            }
        })
        .collect()
}

#[test]
fn the_example_is_placed_and_written_per_cluster() {
    let dir = scratch("example");
    let out_dir = dir.join("out");
    let report = dir.join("report.json");
    let out = run(&[
        "plan",
        "--clusters",
        "-f",
        "examples/multicluster",
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // ar-game: edge-east cannot hold the six renderers and the state; everything on
    // edge-west (3 ms: Limit) keeps the state next to the renderers (Compliant), one
    // rule in Limit instead of two with renderers split over both edges.
    // analytics: edge-west has room for none after ar-game, so metro (5 ms) and the
    // region (15 ms: Limit) give it the two clusters it needs.
    assert_eq!(
        report,
        json!({"applications": [
            {"namespace": "ar", "name": "ar-game",
             "placement": [{"cluster": "edge-west", "components": {"render": 6, "state": 1}}],
             "unplaced": {}, "rules": {"Compliant": 1, "Limit": 1, "Violation": 0}},
            {"namespace": "video", "name": "analytics",
             "placement": [{"cluster": "metro-1", "components": {"analytics": 3}},
                           {"cluster": "region-1", "components": {"analytics": 1}}],
             "unplaced": {}, "rules": {"Compliant": 0, "Limit": 1, "Violation": 0}}
        ]})
    );
    assert_eq!(
        files(&out_dir),
        [
            "edge-west/ar.ar-game.yaml",
            "metro-1/video.analytics.yaml",
            "region-1/video.analytics.yaml"
        ]
    );
    let game = documents(&out_dir.join("edge-west/ar.ar-game.yaml"));
    assert_eq!(
        summary(&game),
        [
            "ConstraintPolicy/ar-game.near-fans",
            "ConstraintPolicyOffer/ar-game.near-fans",
            "Service/render",
            "Deployment/ar-render 6",
            "StatefulSet/game-state 1"
        ]
    );
    assert!(game.iter().all(|d| d["metadata"]["namespace"] == "ar"));
    // edge-west runs edgeplane: the renderers' pods bound to the stadium, by a copy of
    // near-fans (near-state binds no site: the hub's alone).
    assert_eq!(
        game[1]["spec"],
        json!({"targets": [
                  {"name": "render", "kind": "Pod", "labelSelector": {"matchLabels": {"app": "ar-render"}}},
                  {"name": "stadium", "kind": "Site", "sites": ["stadium"]}],
               "policies": ["ar-game.near-fans"]})
    );
    assert_eq!(game[0]["spec"]["rules"][0]["name"], "latency");
    let metro = documents(&out_dir.join("metro-1/video.analytics.yaml"));
    assert_eq!(
        summary(&metro),
        [
            "ConstraintPolicy/analytics.near-fans",
            "ConstraintPolicyOffer/analytics.near-fans",
            "Deployment/analytics 3"
        ]
    );
    // region-1 does not run edgeplane.
    let region = documents(&out_dir.join("region-1/video.analytics.yaml"));
    assert_eq!(summary(&region), ["Deployment/analytics 1"]);
    // The rest of the workload is as written.
    assert_eq!(
        region[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/analytics:3.1"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ar/ar-game: edge-west (render 6, state 1); rules 1 Compliant, 1 Limit, 0 Violation, 0 Pending"),
        "{stderr}"
    );
}

#[test]
fn an_application_no_cluster_can_take_is_reported_unplaced_with_the_reason() {
    let dir = scratch("unplaced");
    let app = dir.join("huge.yaml");
    std::fs::write(
        &app,
        r#"apiVersion: multicluster.edgeplane.io/v1alpha1
kind: MecApplication
metadata: {name: huge, namespace: ar}
spec:
  resources:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: huge}
    spec:
      selector: {matchLabels: {app: huge}}
      template:
        metadata: {labels: {app: huge}}
        spec:
          containers: [{name: c, image: x, resources: {requests: {cpu: "500"}}}]
  components:
  - {name: huge, workload: {kind: Deployment, name: huge}, replicas: 2}
"#,
    )
    .unwrap();
    let out_dir = dir.join("out");
    let report = dir.join("report.json");
    let out = run(&[
        "plan",
        "--clusters",
        "-f",
        "examples/multicluster/topology.yaml",
        "-f",
        "examples/multicluster/clusters.yaml",
        "-f",
        app.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["applications"][0]["placement"], json!([]));
    assert_eq!(report["applications"][0]["unplaced"], json!({"huge": 2}));
    assert!(
        text(&out.stderr).contains(
            "huge: 2 replicas unplaced: no cluster has 500 cpu free for one replica (largest free: 216 on region-1)"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(!out_dir.exists() || files(&out_dir).is_empty());
}

#[test]
fn bad_input_names_the_file_the_object_and_the_field() {
    let dir = scratch("bad");
    let clusters = dir.join("clusters.yaml");
    std::fs::write(
        &clusters,
        r#"apiVersion: multicluster.edgeplane.io/v1alpha1
kind: MemberCluster
metadata: {name: lost}
spec: {site: atlantis}
status:
  capacity: {allocatable: {cpu: "4"}}
  conditions: [{type: Ready, status: "True", reason: R, message: "", lastTransitionTime: "2026-12-01T00:00:00Z"}]
"#,
    )
    .unwrap();
    let out = run(&[
        "plan",
        "--clusters",
        "-f",
        "examples/multicluster/topology.yaml",
        "-f",
        clusters.to_str().unwrap(),
        "--output-dir",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "error: {}[0] MemberCluster lost: spec.site: site \"atlantis\" is not a site of the hub's NetworkTopology (declare it in spec.sites or link it)",
            clusters.display()
        )
    );

    // A field the kind does not have is refused by the schema, as kubectl would.
    std::fs::write(
        &clusters,
        "apiVersion: multicluster.edgeplane.io/v1alpha1\nkind: MemberCluster\nmetadata: {name: x}\nspec: {site: ee, region: eu}\n",
    )
    .unwrap();
    let out = run(&[
        "plan",
        "--clusters",
        "-f",
        "examples/multicluster/topology.yaml",
        "-f",
        clusters.to_str().unwrap(),
        "--output-dir",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("spec.region"),
        "{}",
        text(&out.stderr)
    );

    // Without --output-dir there is nowhere to write.
    let out = run(&["plan", "--clusters", "-f", "examples/multicluster"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--output-dir is required"));
}

fn typed<T: serde::de::DeserializeOwned>(values: Vec<Value>) -> Vec<T> {
    values
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

/// The example's objects, typed.
fn example() -> (
    edgeplane_api::NetworkTopology,
    Vec<edgeplane_api::multicluster::MemberCluster>,
    Vec<edgeplane_api::multicluster::MecApplication>,
    Vec<edgeplane_api::ConstraintPolicy>,
) {
    let read = |file: &str| -> Vec<Value> {
        serde_saphyr::from_multiple(
            &std::fs::read_to_string(repo().join("examples/multicluster").join(file)).unwrap(),
        )
        .unwrap()
    };
    let topology = serde_json::from_value(read("topology.yaml").remove(0)).unwrap();
    (
        topology,
        typed(read("clusters.yaml")),
        typed(read("applications.yaml")),
        typed(read("policies.yaml")),
    )
}

/// The upstream Karmada CRDs, from the shared reference data (never copied into the
/// project).
fn karmada_crds() -> String {
    let dir = repo().join("../shared/crds/karmada");
    [
        "policy.karmada.io_propagationpolicies.yaml",
        "work.karmada.io_resourcebindings.yaml",
    ]
    .iter()
    .map(|file| {
        std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
    })
    .collect::<Vec<_>>()
    .join("\n---\n")
}

#[tokio::test]
async fn what_the_hub_writes_into_karmada_validates_against_the_upstream_crds() {
    use edgeplane_cluster::{ClusterConfig, EmbeddedCluster};
    use edgeplane_core::hub::{self, HubInput, HubObjects, HubOptions, karmada};

    let (topology, members, apps, policies) = example();
    let built = hub::build_input(
        &HubObjects {
            topology: Some(&topology),
            clusters: &members,
            applications: &apps,
            policies: &policies,
        },
        jiff::Timestamp::UNIX_EPOCH,
    )
    .unwrap();
    let plan = hub::plan(
        &HubInput {
            view: &built.view,
            clusters: built.clusters,
            applications: built.applications,
        },
        &HubOptions::default(),
    );
    let names = karmada::karmada_names(&members);
    // analytics is split over two clusters: one plain PropagationPolicy for it.
    let plain = karmada::propagation_policies(&apps[1], &plan.applications[1], &names);
    assert_eq!(plain.len(), 1);
    assert_eq!(
        plain[0]["spec"]["placement"]["replicaScheduling"]["weightPreference"],
        json!({"staticWeightList": [
            {"targetCluster": {"clusterNames": ["metro-1"]}, "weight": 3},
            {"targetCluster": {"clusterNames": ["region-1"]}, "weight": 1}
        ]})
    );
    // As Karmada's scheduler: the binding Karmada made for the analytics Deployment.
    let binding = json!({
        "apiVersion": "work.karmada.io/v1alpha2", "kind": "ResourceBinding",
        "metadata": {"name": "analytics-deployment", "namespace": "video"},
        "spec": {
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "analytics",
                         "namespace": "video"},
            "replicas": 4,
            "schedulerName": "edgeplane"
        }
    });
    assert!(karmada::is_ours(&binding));
    let scheduled = karmada::binding_clusters(&plan.applications[1], "analytics", &names);
    let mut written = binding.clone();
    written["spec"]["clusters"] =
        karmada::binding_apply(&binding, scheduled, None)["spec"]["clusters"].clone();

    let cluster = EmbeddedCluster::start(ClusterConfig::default()).await;
    cluster
        .load_yaml(&karmada_crds())
        .await
        .unwrap_or_else(|e| panic!("loading the Karmada CRDs: {e}"));
    cluster
        .apply_objects([
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "video"}}),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let accepted = cluster
        .apply_objects(plain.into_iter().chain([written.clone()]))
        .await
        .unwrap_or_else(|e| panic!("Karmada's schemas refused what the hub writes: {e}"));
    assert_eq!(accepted.len(), 2);

    // What `plan --clusters --karmada` writes for a Karmada control plane validates too:
    // ar-game's two components and its shared Service, analytics' one component.
    let dir = scratch("karmada");
    let out = run(&[
        "plan",
        "--clusters",
        "--karmada",
        "-f",
        "examples/multicluster",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut policies = Vec::new();
    for file in ["ar.ar-game.yaml", "video.analytics.yaml"] {
        let docs = documents(&dir.join("karmada").join(file));
        let (karmada, resources): (Vec<Value>, Vec<Value>) = docs
            .into_iter()
            .partition(|d| d["kind"] == "PropagationPolicy");
        // The resources go as written: Karmada divides the replicas itself.
        assert!(resources.iter().any(|r| r["kind"] == "Deployment"));
        policies.extend(karmada);
    }
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ar-game-render",
            "ar-game-state",
            "ar-game-shared",
            "analytics-analytics"
        ]
    );
    cluster
        .apply_objects([
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ar"}}),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let accepted_policies = cluster
        .apply_objects(policies)
        .await
        .unwrap_or_else(|e| panic!("Karmada's schemas refused plan --karmada's policies: {e}"));
    assert_eq!(accepted_policies.len(), 4);
    assert_eq!(
        accepted[1]["spec"]["clusters"],
        json!([{"name": "metro-1", "replicas": 3}, {"name": "region-1", "replicas": 1}])
    );

    // The schema is really applied: a cluster entry without its name is refused.
    let mut broken = written;
    broken["metadata"]["name"] = json!("broken");
    broken["spec"]["clusters"] = json!([{"replicas": 2}]);
    let err = cluster
        .apply_objects([broken])
        .await
        .map(|_| ())
        .expect_err("a binding cluster without a name was accepted");
    assert!(err.to_string().contains("name"), "{err}");
    cluster.shutdown().await;
}
