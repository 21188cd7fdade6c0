//! The example scenarios with edgeplane's own components (crates/sim/src/controllers.rs):
//! each tells its story, and its report says so (placements, compliance at the end, plan
//! runs, mitigations and evictions, no pod lost). Virtual time: every run is
//! deterministic, and a failed expectation prints the timeline.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::path::{Path, PathBuf};

use edgeplane_sim::controllers::{self, Options};
use edgeplane_sim::journal::ComplianceCounts;
use edgeplane_sim::report::Report;
use edgeplane_sim::{EntryType, RunOptions, Scenario, scenario};

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

fn run(name: &str) -> Report {
    run_scenario(&example(name))
}

/// A scenario with edgeplane's own components.
fn run_scenario(scenario: &Scenario) -> Report {
    edgeplane_sim::run(
        scenario,
        RunOptions {
            components: controllers::components(&Options::default()),
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", scenario.name))
}

/// The story entries (no details), one line each, for failure messages.
fn story(r: &Report) -> String {
    r.timeline
        .iter()
        .filter(|e| !e.detail)
        .map(|e| {
            format!(
                "{} {:<18} {} {}",
                e.at,
                e.kind.as_str(),
                e.object,
                e.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn of(r: &Report, kind: EntryType) -> Vec<String> {
    r.timeline
        .iter()
        .filter(|e| e.kind == kind && !e.detail)
        .map(|e| format!("{} {} {}", e.at, e.object, e.message))
        .collect()
}

/// The story entries of a kind at one time (`00:10:02`).
fn of_at(r: &Report, kind: EntryType, at: &str) -> Vec<String> {
    of(r, kind)
        .into_iter()
        .filter(|l| l.starts_with(at))
        .collect()
}

/// The node each pod runs on at the end, by pod name prefix.
fn nodes_of(r: &Report, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for site in &r.map.sites {
        for node in &site.nodes {
            for pod in &node.pods {
                let name = pod.split('/').nth(1).unwrap_or(pod);
                if name.starts_with(prefix) {
                    out.push(node.name.clone());
                }
            }
        }
    }
    out.sort();
    out
}

/// What every example ends with: nothing lost, nothing refused, every pod of every
/// workload placed and running, and the planner ran.
fn assert_whole(name: &str, r: &Report) {
    let s = &r.summary;
    let timeline = story(r);
    assert_eq!(s.pods_lost, 0, "{name}: pods lost\n{timeline}");
    assert_eq!(s.pods_unplaced, 0, "{name}: pods unplaced\n{timeline}");
    assert_eq!(s.action_failures, 0, "{name}: actions refused\n{timeline}");
    for w in &r.workloads {
        assert_eq!(
            (w.pods, w.running),
            (w.replicas, w.replicas),
            "{name}: {w:?}\n{timeline}"
        );
    }
    assert!(s.plan_runs > 0, "{name}: no plan run\n{timeline}");
    assert!(
        of(r, EntryType::Planned).len() >= s.pods_placed.min(1),
        "{name}: nothing planned\n{timeline}"
    );
    assert_eq!(s.bindings.error, 0, "{name}: bindings in Error\n{timeline}");
    assert_eq!(
        s.bindings.pending, 0,
        "{name}: bindings Pending\n{timeline}"
    );
    let times: Vec<f64> = r.timeline.iter().map(|e| e.at_seconds).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{name}");
}

fn counts(compliant: usize, limit: usize, violation: usize) -> ComplianceCounts {
    ComplianceCounts {
        pending: 0,
        compliant,
        limit,
        violation,
        error: 0,
    }
}

#[test]
fn burst_is_planned_in_groups_by_the_quiet_period_and_max_wait() {
    let r = run("burst");
    assert_whole("burst", &r);
    let runs = of(&r, EntryType::PlanRun);
    let timeline = story(&r);
    // The stream from 10s to 53.5s never pauses for 2s: planned once at maxWait (30s
    // after the first arrival), then after the quiet period that follows the last one;
    // the burst at 2m and the stragglers at 3m-3m2s after their quiet periods.
    let when: Vec<(&str, &str)> = runs
        .iter()
        .map(|l| {
            let at = l.split(' ').next().unwrap();
            let why = if l.contains("(max wait)") {
                "max wait"
            } else if l.contains("(quiet period)") {
                "quiet period"
            } else {
                "other"
            };
            (at, why)
        })
        .collect();
    assert_eq!(
        when,
        [
            ("00:00:40", "max wait"),
            ("00:00:55", "quiet period"),
            ("00:02:02", "quiet period"),
            ("00:03:04", "quiet period"),
        ],
        "{timeline}"
    );
    assert_eq!(r.summary.plan_runs, 4);
    assert!(runs[0].contains("20 pods, 20 placed"), "{timeline}");
    assert!(runs[2].contains("8 pods, 8 placed"), "{timeline}");
    assert_eq!(of(&r, EntryType::Planned).len(), 41, "{timeline}");
    assert_eq!(r.summary.pods_placed, 41);
    assert_eq!(r.summary.bindings, counts(41, 0, 0), "{timeline}");
    assert_eq!((r.summary.mitigations, r.summary.evictions), (0, 0));
    // Cameras fill edge-1, next to the festival grounds (32 fit), then edge-2; none goes
    // to the large metro node, which is too far.
    let nodes = nodes_of(&r, "camera-");
    assert_eq!(nodes.len(), 41);
    assert_eq!(
        nodes.iter().filter(|n| n.starts_with("edge-1-")).count(),
        32
    );
    assert!(nodes.iter().all(|n| n.starts_with("edge-")), "{nodes:?}");
}

/// A real cluster's timings: the node is NotReady after the node-monitor grace period
/// (50 s), the frontends (30 s of toleration) are deleted and replaced 30 s later and
/// planned as one group, the StatefulSet's pod (the API server's 300 s) is deleted after
/// 5 minutes but replaced only once its node is back and its object gone.
#[test]
fn node_failure_re_places_the_lost_pods_as_a_group() {
    let r = run("node-failure");
    assert_whole("node-failure", &r);
    let timeline = story(&r);
    let runs = of(&r, EntryType::PlanRun);
    assert_eq!(runs.len(), 3, "{timeline}");
    assert!(runs[0].starts_with("00:00:02"), "{timeline}");
    assert!(of(&r, EntryType::PodFailed).is_empty(), "{timeline}");
    let evictions = of(&r, EntryType::TaintEviction);
    assert_eq!(evictions.len(), 4, "{timeline}");
    assert_eq!(
        evictions
            .iter()
            .filter(|e| e.starts_with("00:11:20") && e.contains("frontend-"))
            .count(),
        3,
        "{timeline}"
    );
    assert!(
        evictions
            .iter()
            .any(|e| e.starts_with("00:15:50") && e.contains("cart-0")),
        "{timeline}"
    );
    // The three frontends lost with edge-1-b are planned again together, 2 s after they
    // were deleted, onto the other node next to the mall.
    assert!(
        runs[1].starts_with("00:11:22") && runs[1].contains("3 pods, 3 placed"),
        "{timeline}"
    );
    let after: Vec<String> = of_at(&r, EntryType::Planned, "00:11:22");
    assert_eq!(after.len(), 3, "{timeline}");
    assert!(
        after.iter().all(|l| l.contains("onto edge-1-a")),
        "{after:#?}"
    );
    // The cart waits for its node (recovered at 25:00): then it is gone and re-created.
    assert!(
        runs[2].starts_with("00:25:03") && runs[2].contains("1 pods, 1 placed"),
        "{timeline}"
    );
    assert_eq!(nodes_of(&r, "cart-"), ["edge-1-a"]);
    assert_eq!(r.summary.pods_placed, 5);
    assert_eq!(r.summary.bindings, counts(8, 0, 0), "{timeline}");
    assert_eq!((r.summary.mitigations, r.summary.evictions), (0, 0));
}

#[test]
fn stadium_ar_places_renderers_next_to_the_stadium_and_mediates_the_degradation() {
    let r = run("stadium-ar");
    assert_whole("stadium-ar", &r);
    let timeline = story(&r);
    // The first plan places the whole application at once, the renderers next to the
    // stadium.
    let first: Vec<String> = of_at(&r, EntryType::Planned, "00:00:02");
    assert_eq!(first.len(), 5, "{timeline}");
    assert_eq!(
        first
            .iter()
            .filter(|l| l.contains("Pod ar/ar-render") && l.contains("onto edge-1-a"))
            .count(),
        3,
        "{timeline}"
    );
    // The degraded fibre puts bindings in Violation, with the measured value as reason:
    // the three video streams share its 200Mbps, a third each.
    let violations: Vec<String> = of(&r, EntryType::ComplianceChanged)
        .into_iter()
        .filter(|l| l.starts_with("00:12:00") && l.contains("-> Violation"))
        .collect();
    assert!(violations.len() >= 5, "{timeline}");
    assert_eq!(
        violations
            .iter()
            .filter(|l| l.contains(
                "bandwidth 66.66667Mbps between ingest (dc-a) and renderer (edge-1-a) (its fair share of the link metro-1 -> edge-1"
            ))
            .count(),
        3,
        "{violations:#?}"
    );
    // After the grace (1m) the descheduler mediates, in one cycle, the four bindings past
    // it (two of ar-game-state, two of ar-stadium): the network controller activates the
    // backup fibre, with an allocation for each. Every binding is out of Violation at
    // once, those of ar-video (grace 2m) before their grace ends; nothing is evicted.
    let mitigated = of(&r, EntryType::Mitigated);
    assert_eq!(mitigated.len(), 4, "{timeline}");
    assert!(
        mitigated.iter().all(|l| l.starts_with("00:13:00")
            && l.contains("activated backup-1")
            && (l.contains("Binding ar/ar-game-state-") || l.contains("Binding ar/ar-stadium-"))),
        "{mitigated:#?}"
    );
    let repaired: Vec<String> = of(&r, EntryType::ComplianceChanged)
        .into_iter()
        .filter(|l| l.starts_with("00:13:00") && l.contains("Violation -> "))
        .collect();
    assert_eq!(repaired.len(), violations.len(), "{timeline}");
    assert_eq!(r.summary.mitigation_failures, 0, "{timeline}");
    assert_eq!(r.summary.evictions, 0, "{timeline}");
    // The map shows the backup fibre beside the degraded one, with the bindings that keep
    // it up (their allocations outlive the repair at 38m), and so does the HTML report.
    let activated: Vec<_> = r
        .map
        .links
        .iter()
        .filter(|l| l.activated.is_some())
        .collect();
    assert_eq!(activated.len(), 1, "{:#?}", r.map.links);
    let backup = activated[0];
    assert_eq!(
        (
            backup.from.as_str(),
            backup.to.as_str(),
            backup.latency.as_str()
        ),
        ("edge-1", "metro-1", "3ms")
    );
    assert_eq!(backup.activated.as_deref(), Some("default/backup-1"));
    // Two of the four: the game state's bindings went with its pod, re-created after the
    // node failure, and their allocations were released.
    assert_eq!(backup.bindings.len(), 2, "{backup:?}");
    assert!(!backup.changed);
    let html = edgeplane_sim::html::render(&r);
    assert!(
        html.contains("(path default/backup-1 activated by the network controller for ar/ar-"),
        "the map draws the activated path"
    );
    // The node failure, with a real cluster's timings: NotReady after 50 s, the renderers
    // (30 s of toleration) deleted 30 s later and planned again as one group, through the
    // backup fibre; the game state (a StatefulSet) only once its node is back at 27m.
    assert!(
        of(&r, EntryType::NodeNotReady)
            .iter()
            .any(|l| l.starts_with("00:20:50 Node edge-1-a")),
        "{timeline}"
    );
    let runs = of(&r, EntryType::PlanRun);
    assert!(
        runs.iter()
            .any(|l| l.starts_with("00:21:22") && l.contains("3 pods, 3 placed")),
        "{timeline}"
    );
    assert!(
        runs.iter()
            .any(|l| l.starts_with("00:27:03") && l.contains("1 pods, 1 placed")),
        "{timeline}"
    );
    assert!(of(&r, EntryType::Unplaceable).is_empty(), "{timeline}");
    // Pods the taint manager deleted stay Terminating on the lost node, but the pods chart
    // counts only their replacements: never more than the 8 the workloads want.
    let placed: Vec<usize> = r.series.pods.iter().map(|s| s.value.placed).collect();
    assert!(placed.iter().all(|p| *p <= 8), "{placed:?}");
    assert_eq!(r.summary.pods_placed, 8);
    assert_eq!(r.summary.bindings, counts(19, 5, 0), "{timeline}");
}

#[test]
fn eviction_mitigates_one_binding_and_moves_the_other_pod() {
    let r = run("eviction");
    assert_whole("eviction", &r);
    let timeline = story(&r);
    let violations: Vec<String> = of(&r, EntryType::ComplianceChanged)
        .into_iter()
        .filter(|l| l.contains("Compliant -> Violation"))
        .collect();
    assert_eq!(violations.len(), 2, "{timeline}");
    assert!(violations.iter().all(|l| l.starts_with("00:10:00")));
    // After the grace (1m): the binding at edge-a gets the catalogue's backup path, the
    // one at edge-c cannot be repaired by it.
    let mitigated = of(&r, EntryType::Mitigated);
    let failed = of(&r, EntryType::MitigationFailed);
    assert_eq!(mitigated.len(), 1, "{timeline}");
    assert_eq!(failed.len(), 1, "{timeline}");
    assert!(mitigated[0].starts_with("00:11:00") && mitigated[0].contains("edge-a-1"));
    assert!(failed[0].starts_with("00:11:00") && failed[0].contains("edge-c-1"));
    // After the mitigation grace (2m): exactly one pod moves, the one at edge-c, and the
    // planner re-places it at edge-b, within the limit.
    let evicted = of(&r, EntryType::Evicted);
    assert_eq!(evicted.len(), 1, "{timeline}");
    assert!(
        evicted[0].starts_with("00:13:00 Pod vision/analytics-south-"),
        "{timeline}"
    );
    assert_eq!(r.summary.evictions, 1);
    assert_eq!(r.summary.mitigations, 1);
    assert_eq!(r.summary.mitigation_failures, 1);
    assert_eq!(nodes_of(&r, "analytics-north"), ["edge-a-1"], "{timeline}");
    assert_eq!(nodes_of(&r, "analytics-south"), ["edge-b-1"], "{timeline}");
    assert_eq!(r.summary.bindings, counts(1, 1, 0), "{timeline}");
}

#[test]
fn broadcast_shares_the_fibres_by_capacity_and_moves_one_encoder_off_a_narrowed_link() {
    let r = run("broadcast");
    assert_whole("broadcast", &r);
    let timeline = story(&r);
    // Two encoders (4 of the 5Gbps) on the nearer edge-a, two on edge-b: never more on a
    // link than it carries, although edge-a is nearer for all four.
    let planned = of_at(&r, EntryType::Planned, "00:00:02");
    assert_eq!(planned.len(), 4, "{timeline}");
    assert_eq!(planned.iter().filter(|l| l.contains("edge-a-1")).count(), 2);
    // 1.5Gbps left: both on edge-a get 750Mbps, below their 1Gbps limit.
    let violations: Vec<String> = of(&r, EntryType::ComplianceChanged)
        .into_iter()
        .filter(|l| l.contains("Compliant -> Violation"))
        .collect();
    assert_eq!(violations.len(), 2, "{timeline}");
    assert!(
        violations.iter().all(|l| l.starts_with("00:10:00")
            && l.contains("bandwidth 750Mbps")
            && l.contains("its fair share of the link stadium -> edge-a")),
        "{violations:?}"
    );
    // No catalogue: the mitigations fail, then one eviction is enough: the encoder left
    // gets the whole 1.5Gbps (Limit) at once, so the other is not evicted.
    assert_eq!(of(&r, EntryType::MitigationFailed).len(), 2, "{timeline}");
    let evicted = of(&r, EntryType::Evicted);
    assert_eq!(evicted.len(), 1, "{timeline}");
    assert!(evicted[0].starts_with("00:12:00"), "{timeline}");
    let to_limit = of(&r, EntryType::ComplianceChanged)
        .into_iter()
        .filter(|l| l.contains("Violation -> Limit"))
        .collect::<Vec<_>>();
    assert_eq!(to_limit.len(), 1, "{timeline}");
    assert!(
        to_limit[0].starts_with("00:12:00") && to_limit[0].contains("bandwidth 1.5Gbps"),
        "{to_limit:?}"
    );
    assert_eq!(
        nodes_of(&r, "encoder"),
        ["edge-a-1", "edge-b-1", "edge-b-1", "edge-b-1"],
        "{timeline}"
    );
    // The link's utilisation over time: 80 %; over-subscribed at 10m (each of the two
    // reserves its 1Gbps limit: 2Gbps on 1.5Gbps); 100 % after the eviction (the one left
    // reserves all of the 1.5Gbps it gets); 40 % once repaired (its 2Gbps request).
    let link = &r.series.link_bandwidth["stadium -> edge-a"];
    let percent: Vec<(f64, f64)> = link
        .iter()
        .filter_map(|s| s.value.percent().map(|p| (s.at, (p * 10.0).round() / 10.0)))
        .collect();
    assert_eq!(
        percent.iter().map(|p| p.1).collect::<Vec<_>>(),
        [80.0, 133.3, 100.0, 40.0],
        "{percent:?}"
    );
    assert_eq!(r.summary.bindings, counts(4, 0, 0), "{timeline}");
}

/// An event that applies an offer together with the pods it targets: the pods still wait
/// for edgeplane's planner (the driver applies the offer first and lets the components
/// see it), as they do when the scenario's own resources hold both.
#[test]
fn an_event_applying_an_offer_and_its_pods_gets_them_planned() {
    let text = r#"
apiVersion: sim.edgeplane.io/v1alpha1
kind: Scenario
metadata: {name: offer-and-pods}
spec:
  duration: 2m
  settings: {quietPeriod: 2s, maxWait: 30s, podStartup: 2s}
  include: [examples/scenarios/burst/topology.yaml]
  resources:
  - {apiVersion: v1, kind: Namespace, metadata: {name: festival}}
  - {apiVersion: v1, kind: Node, metadata: {name: edge-1-a, labels: {topology.kubernetes.io/zone: edge-1}}, status: {allocatable: {cpu: "8", memory: 32Gi, pods: "110"}}}
  - {apiVersion: v1, kind: Node, metadata: {name: metro-1-a, labels: {topology.kubernetes.io/zone: metro-1}}, status: {allocatable: {cpu: "32", memory: 128Gi, pods: "110"}}}
  - apiVersion: constraint.edgeplane.io/v1alpha1
    kind: ConstraintPolicy
    metadata: {name: near-festival, namespace: festival}
    spec:
      rules:
      - {name: latency, request: 2ms, limit: 5ms}
  events:
  - at: 10s
    apply:
    - {apiVersion: v1, kind: Pod, metadata: {name: camera-01, namespace: festival, labels: {app: camera-feed}}, spec: {containers: [{name: feed, image: registry.example.com/camera-feed:3, resources: {requests: {cpu: 500m, memory: 256Mi}}}]}}
    - {apiVersion: v1, kind: Pod, metadata: {name: camera-02, namespace: festival, labels: {app: camera-feed}}, spec: {containers: [{name: feed, image: registry.example.com/camera-feed:3, resources: {requests: {cpu: 500m, memory: 256Mi}}}]}}
    - apiVersion: constraint.edgeplane.io/v1alpha1
      kind: ConstraintPolicyOffer
      metadata: {name: cameras-festival, namespace: festival}
      spec:
        targets:
        - {name: camera, kind: Pod, labelSelector: {matchLabels: {app: camera-feed}}}
        - {name: users, kind: Site, sites: [festival-grounds]}
        policies: [near-festival]
"#;
    let scenario =
        scenario::parse("offer-and-pods.yaml", text, &repo()).unwrap_or_else(|e| panic!("{e}"));
    let r = run_scenario(&scenario);
    let timeline = story(&r);
    assert_eq!(r.summary.action_failures, 0, "{timeline}");
    // Each object has its Applied entry at 10s, the offer first.
    let applied: Vec<String> = of_at(&r, EntryType::Applied, "00:00:10");
    assert_eq!(applied.len(), 3, "{timeline}");
    assert!(
        applied[0].contains("ConstraintPolicyOffer festival/cameras-festival"),
        "{timeline}"
    );
    // Both pods were gated and placed by the planner next to the festival (edge-1), not
    // bound on arrival by the cluster's default scheduler.
    let planned = of(&r, EntryType::Planned);
    assert_eq!(planned.len(), 2, "{timeline}");
    assert_eq!(r.summary.plan_runs, 1, "{timeline}");
    assert_eq!(
        nodes_of(&r, "camera-"),
        ["edge-1-a", "edge-1-a"],
        "{timeline}"
    );
    assert_eq!(r.summary.bindings, counts(2, 0, 0), "{timeline}");
}

/// Every example scenario carries the final counts of its story (`spec.expect`) and meets
/// them: a change that alters a story fails here, naming the count.
#[test]
fn every_example_meets_its_expectations() {
    let dir = repo().join("examples/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("scenario.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let scenario = example(&name);
        assert!(
            !scenario.expect.is_empty(),
            "{name}: no spec.expect (give the example its final counts)"
        );
        let r = run_scenario(&scenario);
        let unmet: Vec<String> = r
            .expectations
            .iter()
            .filter(|e| !e.met)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(r.expectations.len(), scenario.expect.len(), "{name}");
        assert!(unmet.is_empty(), "{name}: {unmet:?}\n{}", story(&r));
    }
}
