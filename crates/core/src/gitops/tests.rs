use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as api;
use serde_json::Value as Json;

use super::*;
use crate::evaluate::ClusterView;
use crate::manifests::{self, parse_documents};
use crate::placement::{affinity_matches, effective_required_affinity};
use crate::planner::{self, Assignment, PlanInput, PlanOptions, Unplaced, convert};
use crate::snapshot::Snapshot;
use crate::workloads;

const NODES: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: edge-1-a, labels: {topology.kubernetes.io/zone: edge-1}}
status: {allocatable: {cpu: "2", memory: 8Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata: {name: edge-2-a, labels: {topology.kubernetes.io/zone: edge-2}}
status: {allocatable: {cpu: "2", memory: 8Gi, pods: "110"}}
---
apiVersion: v1
kind: Node
metadata: {name: edge-3-a, labels: {topology.kubernetes.io/zone: edge-3}}
status: {allocatable: {cpu: "1", memory: 8Gi, pods: "110"}}
"#;

/// Four renderers of one CPU each, and everything else an application's chart holds.
const APP: &str = include_str!("../../../../tests/gitops/chart.yaml");

fn documents(text: &str) -> Vec<Document> {
    parse_documents("app.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

/// Plans `text` as `edgeplane plan` does (no policies: only the resources decide).
fn plan_of(text: &str) -> (Vec<Document>, Vec<Workload>, Plan, Vec<api::Node>) {
    let docs = documents(text);
    let objects: Vec<_> = docs
        .iter()
        .map(manifests::decode)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = Snapshot::from_objects(objects);
    let view = ClusterView::build(
        None,
        &snapshot.nodes,
        &snapshot.pods,
        jiff::Timestamp::UNIX_EPOCH,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let workloads = workloads::workloads(&snapshot);
    let input = PlanInput {
        view: &view,
        nodes: snapshot
            .nodes
            .iter()
            .filter_map(|n| convert::plan_node(n).ok())
            .collect(),
        placed: workloads::running(&snapshot),
        pending: workloads.iter().flat_map(|w| w.pods.clone()).collect(),
        bindings: Vec::new(),
    };
    let plan = planner::plan(&input, &PlanOptions::default());
    (docs, workloads, plan, snapshot.nodes.clone())
}

fn names(objects: &[Json]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Every node a written pod spec allows, by the placement rules kube-scheduler applies.
fn allowed_nodes(spec: &Json, nodes: &[api::Node]) -> Vec<String> {
    let spec: api::PodSpec = serde_json::from_value(spec.clone()).unwrap_or_default();
    let terms = effective_required_affinity(spec.affinity.as_ref());
    nodes
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let labels = n.metadata.labels.clone().unwrap_or_default();
            affinity_matches(&terms, &name, &labels).then_some(name)
        })
        .collect()
}

#[test]
fn every_object_of_the_application_goes_out_unchanged_in_input_order() {
    let text = format!("{NODES}---\n{APP}");
    let (docs, workloads, plan, _) = plan_of(&text);
    let out = render(&docs, &workloads, &plan, RenderOptions::default());
    // The Deployment (4 x 1 CPU on nodes of 2, 2 and 1 CPU) is split where it stood.
    let written = names(&out.objects);
    let render_at = written
        .iter()
        .position(|n| n.starts_with("Deployment "))
        .unwrap_or(usize::MAX);
    let mut expected: Vec<String> = docs
        .iter()
        .map(|d| format!("{} {}", d.kind(), meta(d, "name").unwrap_or_default()))
        .collect();
    let parts: Vec<String> = written
        .iter()
        .filter(|n| n.starts_with("Deployment "))
        .cloned()
        .collect();
    let at = expected
        .iter()
        .position(|n| n == "Deployment render")
        .unwrap_or(usize::MAX);
    expected.splice(at..=at, parts.clone());
    assert_eq!(written, expected);
    assert_eq!(render_at, at);
    // Everything but the workload is byte for byte what came in.
    for doc in docs.iter().filter(|d| d.kind() != "Deployment") {
        assert!(
            out.objects.contains(&doc.value),
            "{} changed or missing",
            doc.describe()
        );
    }
    // The autoscaler of the split Deployment would scale nothing: the user is told.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].contains("HorizontalPodAutoscaler ar/render targets Deployment render"),
        "{}",
        out.warnings[0]
    );
}

#[test]
fn inventory_is_dropped_only_when_asked() {
    let text = format!(
        "{NODES}---\n{}",
        r#"apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec: {sites: []}
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicy
metadata: {name: p, namespace: ar}
spec: {rules: []}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: ar}
"#
    );
    let docs = documents(&text);
    let plan = Plan {
        assignments: Vec::new(),
        unplaced: Vec::new(),
        bindings: Vec::new(),
        summary: Default::default(),
        warnings: Vec::new(),
    };
    let kept = render(&docs, &[], &plan, RenderOptions::default());
    assert_eq!(kept.objects.len(), 6);
    let dropped = render(
        &docs,
        &[],
        &plan,
        RenderOptions {
            drop_inventory: true,
        },
    );
    assert_eq!(names(&dropped.objects), ["ConfigMap c"]);
}

#[test]
fn replicas_spread_over_nodes_become_one_pinned_part_per_node() {
    let (docs, workloads, plan, nodes) = plan_of(&format!("{NODES}---\n{APP}"));
    let out = render(&docs, &workloads, &plan, RenderOptions::default());
    let report = counts_of_report(&plan, "render");
    assert_eq!(report.values().sum::<u32>(), 4, "{report:?}");
    assert!(
        report.len() >= 2,
        "4 CPUs of pods need two nodes: {report:?}"
    );
    assert_eq!(out.split.len(), 1);
    assert_eq!(out.split[0].parts.len(), report.len());
    assert_eq!(written_counts(&out.objects, &nodes), report);
    // The parts' selectors tell them apart: no part's ReplicaSet adopts another's pods.
    let selectors: Vec<&Json> = out
        .objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(|o| &o["spec"]["selector"]["matchLabels"][PART_LABEL])
        .collect();
    let mut distinct = selectors.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), selectors.len());
}

/// Replicas per node in the plan for a workload's pods (`<name>-<i>`).
fn counts_of_report(plan: &Plan, name: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for a in &plan.assignments {
        if a.pod
            .name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|i| i.parse::<u32>().is_ok())
        {
            *counts.entry(a.node.clone()).or_default() += 1;
        }
    }
    counts
}

/// The replicas per node that the written Deployments force: every part with replicas and
/// no gate must allow exactly one node (or a default scheduler could move replicas between
/// nodes); its replicas count on that node.
fn written_counts(objects: &[Json], nodes: &[api::Node]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
        let spec = &o["spec"]["template"]["spec"];
        let replicas = o["spec"]["replicas"].as_u64().unwrap_or(1) as u32;
        if spec.get("schedulingGates").is_some() || replicas == 0 {
            continue;
        }
        let allowed = allowed_nodes(spec, nodes);
        assert_eq!(
            allowed.len(),
            1,
            "{} allows {allowed:?}: a default scheduler may place its replicas on any",
            o["metadata"]["name"]
        );
        *counts.entry(allowed[0].clone()).or_default() += replicas;
    }
    counts
}

/// Every split the planner could produce, not just the one this input gives: no written
/// Deployment allows a placement whose counts per node differ from the plan's.
#[test]
fn no_placement_the_written_constraints_allow_differs_from_the_plan() {
    let docs = documents(&format!("{NODES}---\n{APP}"));
    let snapshot = Snapshot::from_objects(
        docs.iter()
            .map(manifests::decode)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let workloads = workloads::workloads(&snapshot);
    let nodes = ["edge-1-a", "edge-2-a", "edge-3-a"];
    // All 3^4 assignments of the four replicas, with 0 or 1 of them unplaced.
    for code in 0..(4u32.pow(4)) {
        let mut assignments = Vec::new();
        let mut unplaced = Vec::new();
        let mut digits = code;
        for i in 0..4 {
            let pod = PodKey::new("ar", format!("render-{i}"));
            match digits % 4 {
                3 => unplaced.push(Unplaced {
                    pod,
                    reason: "no node".into(),
                }),
                d => assignments.push(Assignment {
                    pod,
                    node: nodes[d as usize].to_string(),
                }),
            }
            digits /= 4;
        }
        let plan = Plan {
            assignments,
            unplaced,
            bindings: Vec::new(),
            summary: Default::default(),
            warnings: Vec::new(),
        };
        let out = render(&docs, &workloads, &plan, RenderOptions::default());
        assert_eq!(
            written_counts(&out.objects, &snapshot.nodes),
            counts_of_report(&plan, "render"),
            "assignments {:?}",
            plan.assignments
        );
        // The replicas the plan could not place are written, held at the gate.
        let gated: u64 = out
            .objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .filter(|o| {
                o["spec"]["template"]["spec"]["schedulingGates"][0]["name"] == UNPLACED_GATE
            })
            .map(|o| o["spec"]["replicas"].as_u64().unwrap_or(1))
            .sum();
        assert_eq!(gated, plan.unplaced.len() as u64);
        let total: u64 = out
            .objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .map(|o| o["spec"]["replicas"].as_u64().unwrap_or(1))
            .sum();
        assert_eq!(total, 4);
    }
}

#[test]
fn a_workload_on_one_node_keeps_its_name_and_existing_terms() {
    let text = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: ar}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: disk, operator: In, values: [ssd]}]
      containers: [{name: db, image: db:1}]
"#;
    let docs = documents(text);
    let snapshot = Snapshot::from_objects(
        docs.iter()
            .map(manifests::decode)
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let workloads = workloads::workloads(&snapshot);
    let plan = Plan {
        assignments: (0..2)
            .map(|i| Assignment {
                pod: PodKey::new("ar", format!("db-{i}")),
                node: "edge-1-a".into(),
            })
            .collect(),
        unplaced: Vec::new(),
        bindings: Vec::new(),
        summary: Default::default(),
        warnings: Vec::new(),
    };
    let out = render(&docs, &workloads, &plan, RenderOptions::default());
    assert_eq!(names(&out.objects), ["StatefulSet db"]);
    let terms = &out.objects[0]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms,
        &serde_json::json!([{
            "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}],
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["edge-1-a"]}]
        }])
    );
}

#[test]
fn part_names_stay_valid_names() {
    assert_eq!(part_name("render", "edge-1-a", 63), "render-edge-1-a");
    // A node name with dots is not a DNS label: a hash stands for it.
    let dotted = part_name("render", "ip-10-0-1-23.ec2.internal", 63);
    assert!(
        dotted.starts_with("render-") && dotted.len() == "render-".len() + 8,
        "{dotted}"
    );
    // Too long for a StatefulSet's pods' revision label: the stem is cut.
    let long = part_name(&"s".repeat(60), "edge-1-a", 52);
    assert_eq!(long.len(), 52);
    assert_ne!(
        part_name("render", "ip-10-0-1-23.ec2.internal", 63),
        part_name("render", "ip-10-0-1-24.ec2.internal", 63)
    );
    assert_eq!(part_label("edge-1-a"), "edge-1-a");
    assert_eq!(part_label(&"n".repeat(64)).len(), 16);
}
