use super::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const NODES: &str = r#"
- apiVersion: v1
  kind: Node
  metadata: {name: edge-1-a, labels: {topology.kubernetes.io/zone: edge-1}}
- apiVersion: v1
  kind: Node
  metadata: {name: metro-1-a, labels: {topology.kubernetes.io/zone: metro-1}}
- apiVersion: network.edgeplane.io/v1alpha1
  kind: NetworkTopology
  metadata: {name: default}
  spec:
    sites: [{name: stadium, transit: false}]
    links:
    - {from: edge-1, to: metro-1, latency: 2ms}
    - {from: stadium, to: edge-1, latency: 1ms}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec: {containers: [{name: c, image: nginx}]}
"#;

fn scenario(events: &str) -> String {
    format!(
        "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {{name: t}}\nspec:\n  duration: 10m\n  resources:\n{}\n  events:\n{events}\n",
        NODES
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn err(events: &str) -> String {
    match parse("t.yaml", &scenario(events), Path::new(".")) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_valid_scenario_loads_with_events_in_time_order() {
    let s = parse(
        "t.yaml",
        &scenario(
            "  - {at: 5m, failNode: edge-1-a, note: power cut}\n  - {at: 1m, setLink: {from: metro-1, to: edge-1, latency: 30ms}}\n  - {at: 6m, recoverNode: edge-1-a}\n  - {at: 7m, scale: {kind: Deployment, name: web, replicas: 4}}\n  - {at: 8m, delete: [{apiVersion: apps/v1, kind: Deployment, name: web}]}\n  - {at: 0, apply: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]}",
        ),
        Path::new("."),
    );
    let s = match s {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(s.name, "t");
    assert_eq!(s.duration, Duration::from_secs(600));
    assert_eq!(s.objects.len(), 4);
    let keys: Vec<&str> = s.events.iter().map(|e| e.action.key()).collect();
    assert_eq!(
        keys,
        [
            "apply",
            "setLink",
            "failNode",
            "recoverNode",
            "scale",
            "delete"
        ]
    );
    assert_eq!(s.events[2].note.as_deref(), Some("power cut"));
    assert_eq!(s.events[2].index, 0);
    let Action::Delete(refs) = &s.events[5].action else {
        panic!("not a delete")
    };
    assert_eq!(refs[0].namespace.as_deref(), Some("default"));
    assert_eq!(s.settings, Settings::default());
}

#[test]
fn errors_name_the_file_and_field() {
    let cases = [
        (
            "  - {at: 5m, setLink: {from: metro-1, to: edge-1, latency: fast}}",
            "t.yaml: spec.events[0].setLink.latency: \"fast\" is not a duration",
        ),
        (
            "  - {at: 5m, setLink: {from: metro-9, to: edge-1, latency: 3ms}}",
            "t.yaml: spec.events[0].setLink.from: unknown site \"metro-9\" (known: edge-1, metro-1, stadium)",
        ),
        (
            "  - {at: 5m, setLink: {from: stadium, to: metro-1, jitter: 1ms}}",
            "t.yaml: spec.events[0].setLink.latency: there is no link between \"stadium\" and \"metro-1\"",
        ),
        (
            "  - {at: 5m, failNode: edge-9-a}",
            "t.yaml: spec.events[0].failNode: unknown node \"edge-9-a\"",
        ),
        (
            "  - {at: 5m, recoverNode: edge-1-a}",
            "t.yaml: spec.events[0].recoverNode: node \"edge-1-a\" has not failed",
        ),
        (
            "  - {at: 11m, failNode: edge-1-a}",
            "t.yaml: spec.events[0].at: 11m is after the end of the scenario (spec.duration 10m)",
        ),
        (
            "  - {at: 5m, failNode: edge-1-a, recoverNode: edge-1-a}",
            "t.yaml: spec.events[0]: an event needs exactly one of apply, delete, setLink, failNode, recoverNode, scale, failCluster, recoverCluster (found failNode and recoverNode)",
        ),
        (
            "  - {at: 5m, failnode: edge-1-a}",
            "t.yaml: spec.events[0].failnode: unknown field `failnode`, expected one of `at`, `note`",
        ),
        (
            "  - {at: 5m, scale: {kind: Deployment, name: api, replicas: 3}}",
            "t.yaml: spec.events[0].scale.name: Deployment default/api does not exist at this time",
        ),
        (
            "  - {at: 5m, scale: {kind: Pod, name: api, replicas: 3}}",
            "t.yaml: spec.events[0].scale.kind: \"Pod\" cannot be scaled",
        ),
        (
            "  - {at: 5m, apply: [{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: ar}, spec: {containers: [{name: c, image: i}]}}]}",
            "t.yaml: spec.events[0].apply[0] Pod ar/p: metadata.namespace: namespace \"ar\" does not exist",
        ),
        (
            "  - {at: 5m, apply: [{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {replicas: -1, selector: {}, template: {spec: {containers: []}}}}]}",
            "t.yaml: spec.events[0].apply[0] Deployment default/d: spec.replicas: -1 is negative",
        ),
        (
            "  - {at: 5m, apply: [{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}]}",
            "t.yaml: spec.events[0].apply[0] Widget default/w: kind: the embedded cluster does not serve example.com/v1 Widget",
        ),
        (
            "  - {at: 90, failNode: edge-1-a}",
            "t.yaml: spec.events[0].at: 90 is not a duration (write a unit",
        ),
        (
            "  - {at: 5m, failNode: edge-1-a, cluster: edge-east}",
            "t.yaml: spec.events[0].cluster: only a scenario with spec.clusters has member clusters to address",
        ),
    ];
    for (events, expected) in cases {
        let got = err(events);
        assert!(
            got.starts_with(expected),
            "events {events}\n  expected: {expected}\n  got:      {got}"
        );
    }
}

#[test]
fn header_errors() {
    let cases = [
        ("kind: Scenario\n", "x.yaml: apiVersion: is required"),
        (
            "apiVersion: sim.edgeplane.io/v1\nkind: Scenario\n",
            "x.yaml: apiVersion: \"sim.edgeplane.io/v1\" is not a scenario version",
        ),
        (
            "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {}\n",
            "x.yaml: spec.duration: is required",
        ),
        (
            "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {duration: 1h, settings: {quietPeriod: soon}}\n",
            "x.yaml: spec.settings.quietPeriod: \"soon\" is not a duration",
        ),
        (
            "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: x}\nspec: {duration: 1h, include: [nowhere.yaml]}\n",
            "x.yaml: spec.include[0]: cannot read nowhere.yaml:",
        ),
        ("a: [1\n", "x.yaml: invalid YAML"),
        ("- 1\n", "x.yaml: a scenario must be a mapping"),
    ];
    for (text, expected) in cases {
        let got = match parse("x.yaml", text, Path::new("")) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        };
        assert!(got.starts_with(expected), "expected {expected}\n got {got}");
    }
}

#[test]
fn topology_errors_are_located_in_their_document() {
    let text = scenario("    []").replace("to: metro-1, latency: 2ms", "to: metro-7, latency: 2ms");
    let got = parse("t.yaml", &text, Path::new("."))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        got.as_deref(),
        Some(
            "t.yaml: spec.resources[2] NetworkTopology default: spec.links[0].to: unknown site \"metro-7\" (declare it in spec.sites or label a node with topology.kubernetes.io/zone=metro-7)"
        )
    );
}

#[test]
fn paths_are_normalized() {
    assert_eq!(
        normalize(Path::new(
            "examples/scenarios/stadium-ar/../../metro/topology.yaml"
        )),
        PathBuf::from("examples/metro/topology.yaml")
    );
    assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
    assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
}

/// A scratch directory of this test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("edgeplane-scenario-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{}: {e}", dir.display());
    }
    dir
}

fn write(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("{}: {e}", path.display());
    }
}

#[test]
fn includes_read_a_single_file_of_20000_documents() {
    // Read as `check` and `plan` read it (the parser's default budget stopped at 1,024).
    let dir = scratch("inventory");
    let mut nodes = String::new();
    for i in 0..20_000 {
        nodes.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: edge-{i}\n  labels: {{topology.kubernetes.io/zone: site-{}}}\nstatus:\n  allocatable: {{cpu: \"8\", memory: 32Gi, pods: \"110\"}}\n",
            i % 40
        ));
    }
    write(&dir.join("nodes.yaml"), &nodes);
    let text = "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: big}\nspec:\n  duration: 1m\n  include: [nodes.yaml]\n";
    let loaded = parse("big.yaml", text, &dir).map(|s| s.objects.len());
    assert_eq!(loaded, Ok(20_000));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_object_included_twice_names_both_places() {
    let dir = scratch("twice");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0}\nspec: {containers: [{name: c, image: i}]}\n";
    write(&dir.join("a.yaml"), pod);
    let text = "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {name: twice}\nspec:\n  duration: 1m\n  include: [a.yaml]\n  resources:\n  - {apiVersion: v1, kind: Pod, metadata: {name: web-0}, spec: {containers: [{name: c, image: j}]}}\n";
    let got = parse("t.yaml", text, &dir).err().map(|e| e.to_string());
    assert_eq!(
        got,
        Some(format!(
            "t.yaml: spec.resources[0] Pod default/web-0: is defined twice, differently: first in {}[0], again here (each object may be defined once in the input)",
            dir.join("a.yaml").display()
        ))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_fields_of_objects_are_errors_unless_relaxed() {
    use edgeplane_core::manifests::Validation;
    let text = scenario("  - {at: 1m, setLink: {from: metro-1, to: edge-1, latency: 30ms}}")
        .replace("    replicas: 2", "    replica: 3\n      replicas: 2");
    let got = parse("t.yaml", &text, Path::new("."))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        got.as_deref(),
        Some(
            "t.yaml: spec.resources[3] Deployment default/web: spec.replica: unknown field (--validate=warn reads the object without it)"
        )
    );
    let warned = parse_with("t.yaml", &text, Path::new("."), Validation::Warn)
        .map(|s| s.warnings)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        warned,
        ["t.yaml: spec.resources[3] Deployment default/web: spec.replica: unknown field, ignored"]
    );
}

/// Objects an event applies are checked as those present from the start are.
#[test]
fn unknown_fields_of_applied_objects_are_errors_too() {
    use edgeplane_core::manifests::Validation;
    let text = scenario(
        "  - {at: 1m, apply: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {a: b}, dta: {a: b}}]}",
    );
    let got = parse("t.yaml", &text, Path::new("."))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        got.as_deref(),
        Some(
            "t.yaml: spec.events[0].apply[0] ConfigMap default/c: dta: unknown field (--validate=warn reads the object without it)"
        )
    );
    let warned = parse_with("t.yaml", &text, Path::new("."), Validation::Warn)
        .map(|s| s.warnings)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        warned,
        ["t.yaml: spec.events[0].apply[0] ConfigMap default/c: dta: unknown field, ignored"]
    );
}

/// The multi-cluster example `multicluster-member-planner` with `events` instead of its
/// own: what loading it says.
fn member_events(events: &str) -> Result<Scenario, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios/multicluster-member-planner");
    let text = std::fs::read_to_string(dir.join("scenario.yaml")).map_err(|e| e.to_string())?;
    let start = text.find("  events:\n").ok_or("no events")?;
    let end = text.find("  expect:\n").ok_or("no expect")?;
    let text = format!("{}  events:\n{events}\n{}", &text[..start], &text[end..]);
    parse("m.yaml", &text, &dir).map_err(|e| e.to_string())
}

#[test]
fn a_node_of_a_member_fails_and_recovers_by_its_cluster() {
    let s = member_events(
        "  - {at: 2m, cluster: edge-east, failNode: east-street}\n  - {at: 4m, cluster: edge-east, recoverNode: east-street}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(Option<&str>, &Action)> = s
        .events
        .iter()
        .map(|e| (e.cluster.as_deref(), &e.action))
        .collect();
    assert_eq!(
        got,
        [
            (Some("edge-east"), &Action::FailNode("east-street".into())),
            (
                Some("edge-east"),
                &Action::RecoverNode("east-street".into())
            ),
        ]
    );
    let cases = [
        (
            "  - {at: 2m, cluster: edge-north, failNode: east-street}",
            "m.yaml: spec.events[0].cluster: unknown cluster \"edge-north\" (clusters: edge-east, edge-west)",
        ),
        (
            "  - {at: 2m, cluster: edge-west, failNode: east-street}",
            "m.yaml: spec.events[0].failNode: unknown node \"east-street\" in cluster edge-west (nodes: west-a)",
        ),
        (
            "  - {at: 2m, cluster: edge-east, recoverNode: east-street}",
            "m.yaml: spec.events[0].recoverNode: node \"east-street\" of cluster edge-east has not failed",
        ),
        (
            "  - {at: 2m, cluster: edge-east, failNode: east-street}\n  - {at: 3m, cluster: edge-east, failNode: east-street}",
            "m.yaml: spec.events[1].failNode: node \"east-street\" of cluster edge-east has already failed",
        ),
        (
            "  - {at: 2m, cluster: edge-east, failCluster: edge-east}",
            "m.yaml: spec.events[0].cluster: an event with cluster is a failNode or a recoverNode",
        ),
        (
            "  - {at: 2m, failNode: east-street}",
            "m.yaml: spec.events[0]: failNode, recoverNode and scale act on one cluster",
        ),
    ];
    for (events, expected) in cases {
        let got = match member_events(events) {
            Ok(_) => "ok".to_string(),
            Err(e) => e,
        };
        assert!(
            got.starts_with(expected),
            "events {events}\n  expected: {expected}\n  got:      {got}"
        );
    }
}
