//! The simulator end to end: example scenarios, the driver's actions on the embedded
//! cluster, the timeline and summary from a fake component that behaves like edgeplane's
//! controllers (Events with their reasons, binding status, evictions, a pod admission
//! gate), serving, and generated scenarios. The report's shape and what it tells:
//! tests/report.rs.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edgeplane_sim::component::{ComponentResult, SimContext};
use edgeplane_sim::journal::ComplianceCounts;
use edgeplane_sim::report::Report;
use edgeplane_sim::{
    Component, EntryType, RunOptions, Scenario, ServeOptions, component, scenario,
};
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(name: &str) -> Scenario {
    let path = repo()
        .join("examples/scenarios")
        .join(name)
        .join("scenario.yaml");
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn inline(text: &str) -> Scenario {
    scenario::parse("test.yaml", text, &repo()).unwrap_or_else(|e| panic!("{e}"))
}

fn run(s: &Scenario, components: Vec<Box<dyn Component>>) -> Report {
    edgeplane_sim::run(
        s,
        RunOptions {
            components,
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn of(r: &Report, kind: EntryType) -> Vec<String> {
    r.timeline
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| format!("{} {} {}", e.at, e.object, e.message))
        .collect()
}

/// What each example ends with when no component runs: the simulator alone (the
/// embedded cluster's default-scheduler stand-in places every pod, no binding exists).
/// With edgeplane's components, tests/scenarios.rs checks each example's story.
struct Expect {
    name: &'static str,
    mitigations: usize,
    evictions: usize,
    bindings: ComplianceCounts,
    pods_placed: usize,
    timeline: &'static [(EntryType, usize)],
}

const NO_BINDINGS: ComplianceCounts = ComplianceCounts {
    pending: 0,
    compliant: 0,
    limit: 0,
    violation: 0,
    error: 0,
};

#[test]
fn every_example_runs_to_its_end_and_loses_no_pod() {
    let expectations = [
        Expect {
            name: "stadium-ar",
            mitigations: 0,
            evictions: 0,
            bindings: NO_BINDINGS,
            pods_placed: 8,
            timeline: &[
                (EntryType::Scaled, 2),
                (EntryType::LinkChanged, 2),
                (EntryType::NodeFailed, 1),
                (EntryType::NodeRecovered, 1),
                (EntryType::Note, 6),
            ],
        },
        Expect {
            name: "eviction",
            mitigations: 0,
            evictions: 0,
            bindings: NO_BINDINGS,
            pods_placed: 2,
            timeline: &[(EntryType::LinkChanged, 2)],
        },
        Expect {
            name: "node-failure",
            mitigations: 0,
            evictions: 0,
            bindings: NO_BINDINGS,
            pods_placed: 5,
            timeline: &[(EntryType::NodeFailed, 1), (EntryType::NodeRecovered, 1)],
        },
        Expect {
            name: "burst",
            mitigations: 0,
            evictions: 0,
            bindings: NO_BINDINGS,
            pods_placed: 41,
            timeline: &[(EntryType::Applied, 42), (EntryType::Bound, 41)],
        },
    ];
    for x in expectations {
        let s = example(x.name);
        let r = run(&s, Vec::new());
        let summary = &r.summary;
        assert_eq!(summary.pods_lost, 0, "{}: {:?}", x.name, r.workloads);
        for w in &r.workloads {
            assert_eq!(w.pods, w.replicas, "{}: {w:?}", x.name);
        }
        assert_eq!(
            summary.action_failures,
            0,
            "{}: {:?}",
            x.name,
            of(&r, EntryType::ActionFailed)
        );
        assert_eq!(summary.pods_unplaced, 0, "{}", x.name);
        assert_eq!(summary.pods_placed, x.pods_placed, "{}", x.name);
        assert_eq!(summary.mitigations, x.mitigations, "{}", x.name);
        assert_eq!(summary.evictions, x.evictions, "{}", x.name);
        assert_eq!(summary.bindings, x.bindings, "{}", x.name);
        assert_eq!(
            summary.simulated,
            edgeplane_sim::timeline::clock_text(s.duration),
            "{}",
            x.name
        );
        for (kind, n) in x.timeline {
            assert_eq!(
                of(&r, *kind).len(),
                *n,
                "{}: {kind:?}: {:#?}",
                x.name,
                of(&r, *kind)
            );
        }
        // Time never goes backwards in the timeline.
        let times: Vec<f64> = r.timeline.iter().map(|e| e.at_seconds).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{}", x.name);
    }
}

#[test]
fn the_stadium_tells_its_story() {
    let r = run(&example("stadium-ar"), Vec::new());
    let links = of(&r, EntryType::LinkChanged);
    assert_eq!(
        links[0],
        "00:12:00 Link edge-1 - metro-1 latency 2ms -> 12ms, jitter 200us -> 2ms, bandwidth 10Gbps -> 200Mbps, loss 0.005% -> 0.2%"
    );
    assert!(links[1].starts_with("00:38:00 Link edge-1 - metro-1 latency 12ms -> 2ms"));
    let ar = r.workloads.iter().find(|w| w.name == "ar-render").unwrap();
    assert_eq!((ar.replicas, ar.pods, ar.running), (6, 6, 6));
    // The map has every site of examples/metro and the link's history.
    assert_eq!(r.map.sites.len(), 20);
    let fibre = r
        .map
        .links
        .iter()
        .find(|l| l.from == "edge-1" && l.to == "metro-1")
        .unwrap();
    assert!(fibre.changed);
    assert_eq!(fibre.latency, "2ms");
    let series = &r.series.links["edge-1 - metro-1"];
    let values: Vec<(f64, f64)> = series.iter().map(|s| (s.at, s.value.latency_ms)).collect();
    assert_eq!(values, [(0.0, 2.0), (720.0, 12.0), (2280.0, 2.0)]);
    // Pods chart: 5 at the start, 7 after kick-off, 8 in the second half.
    let placed: Vec<usize> = r.series.pods.iter().map(|s| s.value.placed).collect();
    assert_eq!(placed.last(), Some(&8));
}

/// A real cluster's timings, with the embedded cluster's default scheduler alone: the node
/// is NotReady after the node-monitor grace period (50 s); the pods on it are deleted by
/// the taint manager when their tolerations run out (30 s for the frontends, the API
/// server's 300 s for the cart), never marked Failed.
#[test]
fn node_failures_follow_the_node_lifecycle() {
    let r = run(&example("node-failure"), Vec::new());
    let not_ready: Vec<String> = of(&r, EntryType::NodeNotReady)
        .into_iter()
        .filter(|e| e[9..].starts_with("Node "))
        .collect();
    assert_eq!(
        not_ready,
        ["00:10:50 Node edge-1-b Node edge-1-b status is now: NodeNotReady"]
    );
    assert!(of(&r, EntryType::PodFailed).is_empty());
    let evictions = of(&r, EntryType::TaintEviction);
    assert!(!evictions.is_empty());
    for e in &evictions {
        let expected = if e.contains("cart-0") {
            "00:15:50 "
        } else {
            "00:11:20 "
        };
        assert!(e.starts_with(expected), "{evictions:#?}");
    }
}

#[test]
fn the_driver_performs_every_action() {
    let s = inline(
        r#"
apiVersion: sim.edgeplane.io/v1alpha1
kind: Scenario
metadata: {name: actions}
spec:
  duration: 10m
  include: [examples/scenarios/node-failure/topology.yaml, examples/scenarios/node-failure/nodes.yaml]
  resources:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 2
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, image: nginx}]}
  events:
  - {at: 1m, apply: [{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {a: "1"}}]}
  - {at: 2m, apply: [{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {a: "2"}}]}
  - {at: 3m, scale: {kind: Deployment, name: web, replicas: 5}}
  - {at: 4m, setLink: {from: metro-1, to: edge-1, latency: 9ms}}
  - {at: 4m, setLink: {from: edge-1, to: edge-2, latency: 1ms, bandwidth: 1Gbps}}
  - {at: 5m, failNode: edge-2-a}
  - {at: 6m, recoverNode: edge-2-a}
  - {at: 7m, delete: [{apiVersion: v1, kind: ConfigMap, name: settings}, {apiVersion: v1, kind: Pod, name: nobody}]}
  - {at: 8m, scale: {kind: Deployment, name: web, replicas: 1}}
"#,
    );
    let r = run(&s, Vec::new());
    assert_eq!(
        of(&r, EntryType::Applied)[1..],
        [
            "00:01:00 ConfigMap default/settings created",
            "00:02:00 ConfigMap default/settings updated",
        ]
    );
    assert_eq!(
        of(&r, EntryType::Scaled),
        [
            "00:03:00 Deployment default/web replicas 2 -> 5",
            "00:08:00 Deployment default/web replicas 5 -> 1",
        ]
    );
    assert_eq!(
        of(&r, EntryType::LinkChanged),
        [
            "00:04:00 Link edge-1 - metro-1 latency 2ms -> 9ms",
            "00:04:00 Link edge-1 - edge-2 new link:, latency 1ms, bandwidth 1Gbps",
        ]
    );
    assert_eq!(
        of(&r, EntryType::NodeRecovered),
        ["00:06:00 Node edge-2-a Ready again"]
    );
    assert!(
        of(&r, EntryType::NodeFailed)[0].starts_with("00:05:00 Node edge-2-a stopped responding")
    );
    assert_eq!(
        of(&r, EntryType::Deleted),
        ["00:07:00 ConfigMap default/settings deleted"]
    );
    assert_eq!(
        of(&r, EntryType::ActionFailed),
        ["00:07:00 Pod default/nobody delete failed: pods \"nobody\" not found"]
    );
    assert_eq!(r.summary.action_failures, 1);
    let web = r.workloads.iter().find(|w| w.name == "web").unwrap();
    assert_eq!((web.replicas, web.pods), (1, 1));
    let new = r
        .map
        .links
        .iter()
        .find(|l| l.from == "edge-1" && l.to == "edge-2")
        .unwrap();
    assert_eq!(
        (new.latency.as_str(), new.bandwidth.as_deref()),
        ("1ms", Some("1Gbps"))
    );
    let edge2 = r.map.sites.iter().find(|s| s.name == "edge-2").unwrap();
    assert!(edge2.nodes.iter().all(|n| n.ready));
}

// ---- a fake controller ------------------------------------------------------------------

const GATE: &str = "constraint.edgeplane.io/planner";

fn binding_name(pod: &str) -> String {
    format!("fake-{pod}")
}

async fn publish(
    recorder: &Recorder,
    reason: &str,
    note: String,
    about: &k8s_openapi::api::core::v1::ObjectReference,
) {
    let event = Event {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    recorder.publish(&event, about).await.unwrap();
}

/// Behaves like edgeplane's controllers in the small: an admission step gates the `web`
/// pods; every second it "plans" the gated pods (removes the gate, emits Planned, and one
/// PlanRun per plan), keeps
/// one binding per placed pod (Compliant), and when the topology changes puts the
/// bindings in Violation, mitigates the first (Mitigated), fails to mitigate the second
/// (MitigationFailed) and evicts its pod (Evicted), whose binding goes to Limit.
fn fake_controllers() -> Box<dyn Component> {
    let gate = edgeplane_cluster::PodAdmission::new(|pod: &mut Value| {
        if pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("web") {
            pod["spec"]["schedulingGates"] = json!([{"name": GATE}]);
        }
    });
    Box::new(component("fake-controllers", fake_run).with_admission(gate))
}

async fn fake_run(ctx: SimContext) -> ComponentResult {
    let client = ctx.client.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let bindings: Api<edgeplane_api::ConstraintPolicyBinding> =
        Api::namespaced(client.clone(), "default");
    let topologies: Api<edgeplane_api::NetworkTopology> = Api::all(client.clone());
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "fake-controllers".into(),
            instance: None,
        },
    );
    let mut topology_generation = None;
    let mut repaired = false;
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let mut planned = 0;
        for pod in pods.list(&ListParams::default()).await?.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let spec = pod.spec.clone().unwrap_or_default();
            let gated = spec
                .scheduling_gates
                .as_ref()
                .is_some_and(|g| g.iter().any(|g| g.name == GATE));
            if gated {
                pods.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"schedulingGates": null}})),
                )
                .await?;
                publish(
                    &recorder,
                    "Planned",
                    "-> any node (fake plan)".into(),
                    &pod.object_ref(&()),
                )
                .await;
                planned += 1;
            }
            let placed = spec.node_name.is_some()
                && pod.metadata.deletion_timestamp.is_none()
                && pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed");
            if placed && bindings.get_opt(&binding_name(&name)).await?.is_none() {
                let b = json!({
                    "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyBinding",
                    "metadata": {"name": binding_name(&name), "namespace": "default"},
                    "spec": {"offer": "web-users", "targets": {"web": {"apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": name}}},
                });
                bindings
                    .patch(
                        &binding_name(&name),
                        &PatchParams::apply("fake").force(),
                        &Patch::Apply(b),
                    )
                    .await?;
                status(&bindings, &name, "Compliant", "latency 1ms").await?;
            }
        }
        if planned > 0 {
            // One PlanRun per plan, on the planner's Lease, as the scheduler reports them.
            let lease = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("coordination.k8s.io/v1".into()),
                kind: Some("Lease".into()),
                namespace: Some("default".into()),
                name: Some("fake-controllers".into()),
                ..Default::default()
            };
            publish(
                &recorder,
                "PlanRun",
                format!("fake plan: {planned} pods"),
                &lease,
            )
            .await;
        }
        // Bindings of pods that are gone go away.
        let live: Vec<String> = pods
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        for b in bindings.list(&ListParams::default()).await?.items {
            let name = b.metadata.name.clone().unwrap_or_default();
            if !live.iter().any(|p| binding_name(p) == name) {
                bindings.delete(&name, &Default::default()).await?;
            }
        }
        let generation = topologies
            .get_opt("default")
            .await?
            .and_then(|t| t.metadata.generation);
        if topology_generation.is_none() {
            topology_generation = generation;
        } else if generation != topology_generation && !repaired {
            repaired = true;
            let mut names: Vec<String> = bindings
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter_map(|b| b.metadata.name)
                .collect();
            names.sort();
            for n in &names {
                let pod = n.trim_start_matches("fake-").to_string();
                status(
                    &bindings,
                    &pod,
                    "Violation",
                    "latency 30ms is worse than the limit 10ms",
                )
                .await?;
                let b = bindings.get(n).await?;
                publish(
                    &recorder,
                    "ComplianceChanged",
                    "Compliant -> Violation".into(),
                    &b.object_ref(&()),
                )
                .await;
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
            if let [first, second, ..] = names.as_slice() {
                let b1 = bindings.get(first).await?;
                publish(
                    &recorder,
                    "Mitigated",
                    "alternate path activated".into(),
                    &b1.object_ref(&()),
                )
                .await;
                status(
                    &bindings,
                    first.trim_start_matches("fake-"),
                    "Compliant",
                    "latency 1.5ms",
                )
                .await?;
                let b2 = bindings.get(second).await?;
                publish(
                    &recorder,
                    "MitigationFailed",
                    "no alternate path left".into(),
                    &b2.object_ref(&()),
                )
                .await;
                status(
                    &bindings,
                    second.trim_start_matches("fake-"),
                    "Limit",
                    "latency 4ms",
                )
                .await?;
                for other in &names[2..] {
                    status(
                        &bindings,
                        other.trim_start_matches("fake-"),
                        "Compliant",
                        "latency 1ms",
                    )
                    .await?;
                }
                let victim = second.trim_start_matches("fake-").to_string();
                let pod = pods.get(&victim).await?;
                pods.evict(&victim, &EvictParams::default()).await?;
                publish(
                    &recorder,
                    "Evicted",
                    "moved to restore compliance".into(),
                    &pod.object_ref(&()),
                )
                .await;
            }
        }
    }
}

async fn status(
    bindings: &Api<edgeplane_api::ConstraintPolicyBinding>,
    pod: &str,
    compliance: &str,
    reason: &str,
) -> Result<(), kube::Error> {
    let s = json!({
        "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicyBinding",
        "metadata": {"name": binding_name(pod), "namespace": "default"},
        "status": {"compliance": compliance, "firstReason": reason},
    });
    bindings
        .patch_status(
            &binding_name(pod),
            &PatchParams::apply("fake").force(),
            &Patch::Apply(s),
        )
        .await?;
    Ok(())
}

#[test]
fn a_fake_controller_fills_the_timeline_and_the_summary() {
    let s = inline(
        r#"
apiVersion: sim.edgeplane.io/v1alpha1
kind: Scenario
metadata: {name: fake}
spec:
  duration: 15m
  include: [examples/scenarios/node-failure/topology.yaml, examples/scenarios/node-failure/nodes.yaml]
  resources:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, image: nginx, resources: {requests: {cpu: "1"}}}]}
  events:
  - {at: 5m, scale: {kind: Deployment, name: web, replicas: 4}}
  - {at: 8m, setLink: {from: mall, to: edge-1, latency: 30ms}}
"#,
    );
    let r = run(&s, vec![fake_controllers()]);
    let summary = &r.summary;
    assert_eq!(r.components, ["fake-controllers"]);
    // Two plans: the three pods at the start, the fourth after the scale; then the
    // evicted pod's replacement is planned as well.
    assert_eq!(summary.plan_runs, 3, "{:#?}", of(&r, EntryType::Planned));
    assert_eq!(of(&r, EntryType::Planned).len(), 5);
    assert_eq!(summary.mitigations, 1);
    assert_eq!(summary.mitigation_failures, 1);
    assert_eq!(summary.evictions, 1);
    assert_eq!(summary.pods_lost, 0);
    assert_eq!(summary.pods_placed, 4);
    // At the end: the mitigated binding and the two untouched ones are Compliant, the
    // evicted pod's binding is gone and its replacement's is Compliant.
    assert_eq!(
        summary.bindings,
        ComplianceCounts {
            compliant: 4,
            ..ComplianceCounts::default()
        }
    );
    // Compliance changes come from the binding watch; the Events with the same reason at
    // the same instant are not repeated.
    let changes = of(&r, EntryType::ComplianceChanged);
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.contains("Compliant -> Violation"))
            .count(),
        4,
        "{changes:#?}"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.contains("Violation -> Limit: latency 4ms"))
    );
    assert!(
        changes
            .iter()
            .any(|c| c.starts_with("00:00:02 ") && c.contains("Pending -> Compliant: latency 1ms")),
        "{changes:#?}"
    );
    // Pods the planner placed are bound as a detail; the evicted pod's replacement says
    // whom it replaces.
    let bound: Vec<_> = r
        .timeline
        .iter()
        .filter(|e| e.kind == EntryType::Bound)
        .collect();
    assert!(bound.iter().all(|e| e.detail), "{bound:#?}");
    assert!(
        bound
            .iter()
            .any(|e| e.message.contains("(replaces web-") && e.message.contains("removed from"))
    );
    let evicted = of(&r, EntryType::Evicted);
    assert!(evicted[0].starts_with("00:09:0"), "{evicted:?}");
    // The series saw the violation.
    assert!(r.series.bindings.iter().any(|s| s.value.violation == 4));
    // To look at the charts with bindings: EDGEPLANE_SIM_HTML_DIR=/tmp cargo test ...
    if let Some(dir) = std::env::var_os("EDGEPLANE_SIM_HTML_DIR") {
        let path = Path::new(&dir).join("fake-controllers.html");
        std::fs::write(&path, edgeplane_sim::html::render(&r)).unwrap();
    }
}

// ---- serving ----------------------------------------------------------------------------

fn http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `--serve`: the cluster answers HTTP while the scenario runs at a multiple of real time,
/// and the kubeconfig points at it.
#[test]
fn served_runs_answer_requests_while_they_run() {
    let s = inline(
        r#"
apiVersion: sim.edgeplane.io/v1alpha1
kind: Scenario
metadata: {name: served}
spec:
  duration: 2m
  include: [examples/scenarios/node-failure/topology.yaml, examples/scenarios/node-failure/nodes.yaml, examples/scenarios/node-failure/app.yaml]
  events:
  - {at: 1m, failNode: edge-1-b}
"#,
    );
    let dir = std::env::temp_dir().join(format!("edgeplane-sim-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let (tx, rx) = std::sync::mpsc::channel();
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = {
        let answers = answers.clone();
        std::thread::spawn(move || {
            let Ok(addr) = rx.recv() else { return };
            // Ask until the server goes away with the end of the run.
            while let Ok(reply) = http_get(addr, "/api/v1/namespaces/shop/pods") {
                if reply.is_empty() {
                    break;
                }
                answers.lock().unwrap().push(reply);
            }
        })
    };
    let report = edgeplane_sim::run(
        &s,
        RunOptions {
            serve: Some(ServeOptions {
                addr: "127.0.0.1:0".parse().unwrap(),
                kubeconfig: Some(kubeconfig.clone()),
                speed: 240.0,
                on_ready: Some(Box::new(move |addr| {
                    let _ = tx.send(addr);
                })),
            }),
            ..RunOptions::default()
        },
    )
    .unwrap();
    client.join().unwrap();
    assert_eq!(report.summary.node_failures, 1);
    let answers = answers.lock().unwrap();
    assert!(!answers.is_empty());
    assert!(
        answers.iter().all(|a| a.starts_with("HTTP/1.1 200")),
        "{:?}",
        answers.first()
    );
    assert!(answers.iter().any(|a| a.contains("frontend-")));
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains("server: http://127.0.0.1:"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- generated scenarios ----------------------------------------------------------------

#[test]
fn generated_scenarios_run_without_losing_pods() {
    let generated = edgeplane_sim::generate::generate(&edgeplane_sim::generate::GenerateOptions {
        sites: 20,
        nodes: 60,
        apps: 10,
        pods: 80,
        events: 16,
        duration: Duration::from_secs(1800),
        seed: 7,
        ..Default::default()
    })
    .unwrap();
    let dir = std::env::temp_dir().join(format!("edgeplane-sim-generated-{}", std::process::id()));
    let path = generated.write(&dir).unwrap();
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, Vec::new());
    assert_eq!(
        r.summary.action_failures,
        0,
        "{:#?}",
        of(&r, EntryType::ActionFailed)
    );
    assert_eq!(r.summary.pods_lost, 0, "{:#?}", r.workloads);
    assert_eq!(r.summary.scenario_events, 16);
    let html = edgeplane_sim::html::render(&r);
    assert!(
        r.map
            .sites
            .iter()
            .all(|site| html.contains(&format!("data-site=\"{}\"", site.name)))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
