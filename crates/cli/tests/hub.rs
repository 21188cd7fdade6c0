//! `edgeplane hub` end to end, every party a separate process talking by kubeconfig: a hub
//! `cluster serve`, member `cluster serve`s, and `edgeplane hub` in direct, karmada and
//! karmada-policy mode. Every wait polls for a condition with a deadline.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Kills the process when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch directory of this test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeplane-hub-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `edgeplane ARGS`; returns it with the first `n` lines it prints.
fn start(args: &[&str], n: usize) -> (Process, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
        .args(args)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut process = Process(child);
    let mut lines = vec![String::new(); n];
    if let Some(stdout) = process.0.stdout.take() {
        let mut reader = BufReader::new(stdout);
        for line in &mut lines {
            let _ = reader.read_line(line);
            *line = line.trim().to_string();
        }
    }
    (process, lines)
}

/// `cluster serve`, its kubeconfig at `dir/name.kubeconfig`; with `members`, those served
/// by the same process (`--member`), their kubeconfigs beside it.
fn serve(dir: &Path, name: &str, extra: &[&str], members: &[&str]) -> (Process, PathBuf) {
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    let path = kubeconfig.to_string_lossy().into_owned();
    let dir_text = dir.to_string_lossy().into_owned();
    let mut args = vec![
        "cluster",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--kubeconfig",
        &path,
    ];
    args.extend(extra);
    for member in members {
        args.extend(["--member", member]);
    }
    if !members.is_empty() {
        args.extend(["--kubeconfig-dir", &dir_text]);
    }
    let (process, ready) = start(&args, 1 + members.len());
    assert!(
        ready[0].starts_with("embedded cluster serving on http://"),
        "{name}: {ready:?}"
    );
    for (line, member) in ready[1..].iter().zip(members) {
        assert!(
            line.starts_with(&format!("member cluster {member} serving on http://")),
            "{member}: {ready:?}"
        );
    }
    (process, kubeconfig)
}

async fn client(kubeconfig: &Path) -> Client {
    let config = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn api(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let r = resource(api_version, kind);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
        None => Api::all_with(client.clone(), &r),
    }
}

/// Server-side apply of each document, as the test's own field manager.
async fn apply(client: &Client, yaml: &str) {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
    for doc in docs {
        let namespace = doc["metadata"]["namespace"].as_str();
        let name = doc["metadata"]["name"].as_str().unwrap();
        api(
            client,
            doc["apiVersion"].as_str().unwrap(),
            doc["kind"].as_str().unwrap(),
            namespace,
        )
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"));
    }
}

/// The objects of a kind, as JSON.
async fn list(client: &Client, api_version: &str, kind: &str) -> Vec<Value> {
    match api(client, api_version, kind, None)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn get(client: &Client, api_version: &str, kind: &str, name: &str) -> Option<Value> {
    list(client, api_version, kind)
        .await
        .into_iter()
        .find(|o| o["metadata"]["name"] == name)
}

/// Polls `check` until it gives `Some`, or panics after `seconds` with what it last saw.
async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("{what}: not within {seconds}s; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The hub's Secret with a member's kubeconfig.
async fn kubeconfig_secret(hub: &Client, name: &str, kubeconfig: &Path) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("edgeplane-system".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            ByteString(std::fs::read(kubeconfig).unwrap()),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(hub.clone(), "edgeplane-system")
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

/// Users at `stadium` (1 ms from site ee, 3 ms from ew) and `mall` (the other way round);
/// members `east` at ee and `west` at ew; ConstraintPolicy ar/near-users: latency within
/// 2 ms (limit 2.5 ms), so only the member 1 ms from the users holds it.
const HUB_OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ar}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium, transit: false}, {name: mall, transit: false}, {name: ee}, {name: ew}]
  links:
  - {from: stadium, to: ee, latency: 1ms}
  - {from: stadium, to: ew, latency: 3ms}
  - {from: mall, to: ee, latency: 3ms}
  - {from: mall, to: ew, latency: 1ms}
  - {from: ee, to: ew, latency: 4ms}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: near-users, namespace: ar}
spec:
  rules:
  - {name: latency, request: 2ms, limit: 2500us}
---
apiVersion: multicluster.edgeplane.io/v1alpha1
kind: MemberCluster
metadata: {name: east}
spec:
  site: ee
  kubeconfigSecretRef: {namespace: edgeplane-system, name: east}
---
apiVersion: multicluster.edgeplane.io/v1alpha1
kind: MemberCluster
metadata: {name: west}
spec:
  site: ew
  kubeconfigSecretRef: {namespace: edgeplane-system, name: west}
"#;

const CONSTRAINT: &str = "constraint.edgeplane.io/v1alpha1";

/// MemberCluster east, labelled as running edgeplane.
const EAST_RUNS_EDGEPLANE: &str = r#"
apiVersion: multicluster.edgeplane.io/v1alpha1
kind: MemberCluster
metadata: {name: east, labels: {multicluster.edgeplane.io/edgeplane: "true"}}
spec:
  site: ee
  kubeconfigSecretRef: {namespace: edgeplane-system, name: east}
"#;

/// east's own NetworkTopology: its site and the users' (docs/multicluster.md: a member
/// running edgeplane must know the user sites the hub binds its pods to).
const EAST_TOPOLOGY: &str = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium, transit: false}, {name: ee}]
  links:
  - {from: stadium, to: ee, latency: 1ms}
"#;

/// MecApplication ar/game: Service `render` and Deployment `render` (4 replicas of
/// 100m), near the users at `site`; fails over after `toleration` seconds.
fn application(site: &str, toleration: u32) -> String {
    format!(
        r#"
apiVersion: multicluster.edgeplane.io/v1alpha1
kind: MecApplication
metadata: {{name: game, namespace: ar}}
spec:
  resources:
  - apiVersion: v1
    kind: Service
    metadata: {{name: render}}
    spec: {{selector: {{app: render}}, ports: [{{port: 80}}]}}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: render}}
    spec:
      replicas: 4
      selector: {{matchLabels: {{app: render}}}}
      template:
        metadata: {{labels: {{app: render}}}}
        spec:
          containers:
          - {{name: render, image: render:1, resources: {{requests: {{cpu: 100m}}}}}}
  components:
  - {{name: render, workload: {{kind: Deployment, name: render}}, replicas: 4}}
  constraints:
  - {{policy: near-users, targets: [{{component: render}}, {{site: {site}}}]}}
  failover: {{tolerationSeconds: {toleration}}}
"#
    )
}

/// The hub and two members, the members' kubeconfigs in the hub's Secrets: each its own
/// `cluster serve` (`separate`), or the members served by the hub's process.
struct Clusters {
    dir: PathBuf,
    hub: Client,
    hub_kubeconfig: PathBuf,
    east: Client,
    west: Client,
    processes: BTreeMap<&'static str, Process>,
}

async fn clusters(name: &str, hub_extra: &[&str], separate: bool) -> Clusters {
    let dir = scratch(name);
    let mut processes = BTreeMap::new();
    let east_kubeconfig = dir.join("east.kubeconfig");
    let west_kubeconfig = dir.join("west.kubeconfig");
    let mut hub_args = vec!["--nodes", "2"];
    hub_args.extend(hub_extra);
    let hub_kubeconfig = if separate {
        let (hub, hub_kubeconfig) = serve(&dir, "hub", &hub_args, &[]);
        processes.insert("hub", hub);
        for member in ["east", "west"] {
            processes.insert(member, serve(&dir, member, &["--nodes", "2"], &[]).0);
        }
        hub_kubeconfig
    } else {
        let (hub, hub_kubeconfig) = serve(&dir, "hub", &hub_args, &["east", "west"]);
        processes.insert("hub", hub);
        hub_kubeconfig
    };
    let hub = client(&hub_kubeconfig).await;
    apply(&hub, HUB_OBJECTS).await;
    kubeconfig_secret(&hub, "east", &east_kubeconfig).await;
    kubeconfig_secret(&hub, "west", &west_kubeconfig).await;
    Clusters {
        east: client(&east_kubeconfig).await,
        west: client(&west_kubeconfig).await,
        hub,
        hub_kubeconfig,
        dir,
        processes,
    }
}

impl Clusters {
    /// `edgeplane hub` against the hub, rounds every 300ms, its log in the scratch dir.
    fn hub_process(&self, mode: &str) -> Process {
        let kubeconfig = self.hub_kubeconfig.to_string_lossy().into_owned();
        let log = self.dir.join(format!("hub-{mode}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args([
                "hub",
                "--kubeconfig",
                &kubeconfig,
                "--mode",
                mode,
                "--no-leader-election",
                "--metrics-addr",
                "127.0.0.1:0",
                "--interval",
                "300ms",
                "--probe-timeout",
                "1s",
                "--grace",
                "0s",
            ])
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .unwrap();
        Process(child)
    }
}

impl Clusters {
    /// `edgeplane controller` (offers, bindings) against a member, its log in the
    /// scratch dir.
    fn member_controller(&self, member: &str) -> Process {
        let kubeconfig = self
            .dir
            .join(format!("{member}.kubeconfig"))
            .to_string_lossy()
            .into_owned();
        let log = self.dir.join(format!("controller-{member}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_edgeplane"))
            .args([
                "controller",
                "--kubeconfig",
                &kubeconfig,
                "--no-leader-election",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .unwrap();
        Process(child)
    }
}

/// `replicas` of Deployment ar/render in a member, when it is the hub's and ready.
async fn render_in(member: &Client) -> Result<i64, String> {
    let found = get(member, "apps/v1", "Deployment", "render").await;
    match found {
        Some(d)
            if d["metadata"]["labels"]["multicluster.edgeplane.io/application"] == "ar.game" =>
        {
            d["spec"]["replicas"].as_i64().ok_or_else(|| d.to_string())
        }
        other => Err(format!("{other:?}")),
    }
}

fn placement(app: &Value) -> Value {
    app["status"]["placement"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_applies_the_shares_and_moves_them_make_before_break() {
    let c = clusters("direct", &[], false).await;
    // A member whose kubeconfig Secret does not exist.
    apply(
        &c.hub,
        "apiVersion: multicluster.edgeplane.io/v1alpha1\nkind: MemberCluster\nmetadata: {name: ghost}\nspec:\n  site: ee\n  kubeconfigSecretRef: {namespace: edgeplane-system, name: ghost}\n",
    )
    .await;
    // east runs edgeplane: its own topology knows the stadium, and its own controller
    // (a separate process on east's kubeconfig) turns offers into bindings.
    apply(&c.hub, EAST_RUNS_EDGEPLANE).await;
    apply(&c.east, EAST_TOPOLOGY).await;
    let _east_controller = c.member_controller("east");
    apply(&c.hub, &application("stadium", 300)).await;
    let _hub = c.hub_process("direct");

    // Near the stadium: all 4 replicas on east, the Service with them; nothing on west.
    let replicas = eventually(60, "the Deployment on east", || render_in(&c.east)).await;
    assert_eq!(replicas, 4);
    // And, east running edgeplane, a copy of near-users and an offer binding the
    // renderers' pods to the stadium, which east's offer controller made bindings of.
    let copy = eventually(30, "the policy copy on east", || async {
        get(&c.east, CONSTRAINT, "ConstraintPolicy", "game.near-users")
            .await
            .ok_or_else(|| "none".to_string())
    })
    .await;
    assert_eq!(
        copy["spec"],
        json!({"rules": [{"name": "latency", "request": "2ms", "limit": "2500us"}]})
    );
    let offer = get(
        &c.east,
        CONSTRAINT,
        "ConstraintPolicyOffer",
        "game.near-users",
    )
    .await
    .unwrap();
    assert_eq!(
        offer["metadata"]["labels"]["multicluster.edgeplane.io/application"],
        "ar.game"
    );
    assert_eq!(
        offer["spec"]["targets"],
        json!([{"name": "render", "kind": "Pod", "labelSelector": {"matchLabels": {"app": "render"}}},
               {"name": "stadium", "kind": "Site", "sites": ["stadium"]}])
    );
    let bindings = eventually(60, "east's bindings of the offer", || async {
        let bindings: Vec<Value> = list(&c.east, CONSTRAINT, "ConstraintPolicyBinding")
            .await
            .into_iter()
            .filter(|b| b["spec"]["offer"] == "game.near-users")
            .collect();
        if bindings.len() == 4 {
            Ok(bindings)
        } else {
            Err(format!("{bindings:?}"))
        }
    })
    .await;
    assert!(
        bindings.iter().all(|b| b["metadata"]["namespace"] == "ar"
            && b["spec"]["targets"]["stadium"]["name"] == "stadium"),
        "{bindings:?}"
    );
    let service = get(&c.east, "v1", "Service", "render").await.unwrap();
    assert_eq!(
        service["metadata"]["labels"]["multicluster.edgeplane.io/application"],
        "ar.game"
    );
    assert!(
        get(&c.west, "apps/v1", "Deployment", "render")
            .await
            .is_none()
    );
    let app = eventually(30, "the application's status", || async {
        let app = get(
            &c.hub,
            "multicluster.edgeplane.io/v1alpha1",
            "MecApplication",
            "game",
        )
        .await;
        match app {
            Some(a) if !placement(&a).is_null() => Ok(a),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        placement(&app),
        json!([{"cluster": "east", "components": {"render": 4}}])
    );
    let placed = &app["status"]["conditions"][0];
    assert_eq!(
        (placed["type"].as_str(), placed["status"].as_str()),
        (Some("Placed"), Some("True"))
    );

    // Member statuses: east and west Ready with their capacity; ghost NotReady, naming
    // the Secret.
    let members = list(
        &c.hub,
        "multicluster.edgeplane.io/v1alpha1",
        "MemberCluster",
    )
    .await;
    let by_name = |name: &str| {
        members
            .iter()
            .find(|m| m["metadata"]["name"] == name)
            .cloned()
            .unwrap()
    };
    let east = by_name("east");
    assert_eq!(east["status"]["conditions"][0]["status"], "True");
    assert_eq!(east["status"]["capacity"]["allocatable"]["cpu"], "8");
    let ghost = eventually(30, "ghost's condition", || async {
        let ghost = get(
            &c.hub,
            "multicluster.edgeplane.io/v1alpha1",
            "MemberCluster",
            "ghost",
        )
        .await;
        match ghost {
            Some(g) if g["status"]["conditions"][0]["status"] == "False" => Ok(g),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let condition = &ghost["status"]["conditions"][0];
    assert_eq!(condition["reason"], "KubeconfigInvalid");
    assert_eq!(
        condition["message"],
        "Secret edgeplane-system/ghost (spec.kubeconfigSecretRef of MemberCluster ghost) not found"
    );

    // The users move to the mall: the replicas go to west, and east's are removed only
    // once west's run.
    apply(&c.hub, &application("mall", 300)).await;
    let replicas = eventually(60, "the Deployment on west", || render_in(&c.west)).await;
    assert_eq!(replicas, 4);
    eventually(60, "east emptied", || async {
        match (
            get(&c.east, "apps/v1", "Deployment", "render").await,
            get(&c.east, "v1", "Service", "render").await,
            get(
                &c.east,
                CONSTRAINT,
                "ConstraintPolicyOffer",
                "game.near-users",
            )
            .await,
            get(&c.east, CONSTRAINT, "ConstraintPolicy", "game.near-users").await,
        ) {
            (None, None, None, None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // west does not run edgeplane: no offer there.
    assert!(
        get(
            &c.west,
            CONSTRAINT,
            "ConstraintPolicyOffer",
            "game.near-users"
        )
        .await
        .is_none()
    );
    let west = get(&c.west, "apps/v1", "Deployment", "render")
        .await
        .unwrap();
    assert!(
        west["status"]["readyReplicas"].as_i64() >= Some(4),
        "east's replicas went before west's were ready: {west}"
    );
    let app = get(
        &c.hub,
        "multicluster.edgeplane.io/v1alpha1",
        "MecApplication",
        "game",
    )
    .await
    .unwrap();
    assert_eq!(
        placement(&app),
        json!([{"cluster": "west", "components": {"render": 4}}])
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_outage_fails_over_after_the_toleration() {
    let mut c = clusters("outage", &[], true).await;
    // Near the stadium, but both members within the limit: east preferred.
    apply(
        &c.hub,
        "apiVersion: constraint.edgeplane.io/v1alpha1\nkind: ConstraintPolicy\nmetadata: {name: near-users, namespace: ar}\nspec:\n  rules:\n  - {name: latency, request: 2ms, limit: 5ms}\n",
    )
    .await;
    apply(&c.hub, &application("stadium", 2)).await;
    let _hub = c.hub_process("direct");
    assert_eq!(
        eventually(60, "the Deployment on east", || render_in(&c.east)).await,
        4
    );

    // East goes away: NotReady (Unreachable), then after 2 s the replicas go to west.
    drop(c.processes.remove("east"));
    let east = eventually(30, "east NotReady", || async {
        let east = get(
            &c.hub,
            "multicluster.edgeplane.io/v1alpha1",
            "MemberCluster",
            "east",
        )
        .await;
        match east {
            Some(e) if e["status"]["conditions"][0]["status"] == "False" => Ok(e),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(east["status"]["conditions"][0]["reason"], "Unreachable");
    assert_eq!(
        eventually(60, "the Deployment on west", || render_in(&c.west)).await,
        4
    );
    let app = get(
        &c.hub,
        "multicluster.edgeplane.io/v1alpha1",
        "MecApplication",
        "game",
    )
    .await
    .unwrap();
    assert_eq!(
        placement(&app),
        json!([{"cluster": "west", "components": {"render": 4}}])
    );
    let events = list(&c.hub, "events.k8s.io/v1", "Event").await;
    let moved: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "ApplicationMoved")
        .collect();
    assert_eq!(moved.len(), 1, "{events:?}");
    let note = moved[0]["note"].as_str().unwrap();
    assert!(
        note.starts_with("placed again (member east NotReady for "),
        "{note}"
    );
    assert!(note.ends_with("(toleration 2s)): west render=4"), "{note}");
    let _ = std::fs::remove_dir_all(&c.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn karmada_modes_write_bindings_and_plain_policies_that_karmadas_schemas_accept() {
    let crds = repo().join("../shared/crds/karmada");
    let crds = crds.to_string_lossy().into_owned();
    let c = clusters("karmada", &["-f", &crds], false).await;
    // As Karmada's scheduler: a PropagationPolicy with schedulerName edgeplane and the
    // binding Karmada made for it.
    apply(
        &c.hub,
        r#"
apiVersion: policy.karmada.io/v1alpha1
kind: PropagationPolicy
metadata:
  name: ar
  namespace: ar
  annotations:
    multicluster.edgeplane.io/constraints: '[{"policy": "near-users", "targets": [{"component": "render"}, {"site": "mall"}]}]'
spec:
  schedulerName: edgeplane
  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment, name: render}]
---
apiVersion: work.karmada.io/v1alpha2
kind: ResourceBinding
metadata:
  name: render-deployment
  namespace: ar
  annotations: {propagationpolicy.karmada.io/name: ar}
spec:
  schedulerName: edgeplane
  resource: {apiVersion: apps/v1, kind: Deployment, name: render, namespace: ar}
  replicas: 4
  replicaRequirements: {resourceRequest: {cpu: 100m}}
"#,
    )
    .await;
    let _karmada = c.hub_process("karmada");
    let binding = eventually(60, "spec.clusters of the binding", || async {
        let b = get(
            &c.hub,
            "work.karmada.io/v1alpha2",
            "ResourceBinding",
            "render-deployment",
        )
        .await;
        match b {
            Some(b) if !b["spec"]["clusters"].is_null() => Ok(b),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        binding["spec"]["clusters"],
        json!([{"name": "west", "replicas": 4}])
    );
    let managers: Vec<&str> = binding["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["manager"].as_str())
        .collect();
    assert!(managers.contains(&"edgeplane-hub"), "{managers:?}");

    // Plain policies for a MecApplication, for a Karmada whose scheduler stays its own.
    apply(&c.hub, &application("stadium", 300)).await;
    let _plain = c.hub_process("karmada-policy");
    let policy = eventually(60, "the plain PropagationPolicy", || async {
        match get(
            &c.hub,
            "policy.karmada.io/v1alpha1",
            "PropagationPolicy",
            "game-render",
        )
        .await
        {
            Some(p) => Ok(p),
            None => Err("none".into()),
        }
    })
    .await;
    assert_eq!(
        policy["spec"]["placement"]["clusterAffinity"]["clusterNames"],
        json!(["east"])
    );
    assert_eq!(
        policy["spec"]["placement"]["replicaScheduling"]["weightPreference"]["staticWeightList"],
        json!([{"targetCluster": {"clusterNames": ["east"]}, "weight": 4}])
    );
    // The resources Karmada propagates are in the Karmada control plane, unscheduled there.
    let deployment = get(&c.hub, "apps/v1", "Deployment", "render")
        .await
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 4);
    // Karmada mode wrote nothing into the members; karmada-policy neither.
    assert!(
        get(&c.east, "apps/v1", "Deployment", "render")
            .await
            .is_none()
    );
    assert!(
        get(&c.west, "apps/v1", "Deployment", "render")
            .await
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&c.dir);
}
