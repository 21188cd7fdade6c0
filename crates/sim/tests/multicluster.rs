//! The multi-cluster example scenarios (a hub and three members, each an embedded
//! cluster, with edgeplane's controllers in each member and the real hub rounds): which
//! application moves from which cluster to which, and when (after the toleration, after
//! the grace); make-before-break (the new copies ready before the old ones go); and
//! hysteresis (a flap moves nothing, a recovery does not move anything back). Virtual
//! time: every run is deterministic; the recorder samples half a second after the whole
//! seconds the hub's rounds fall on.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edgeplane_sim::controllers::{self, Options};
use edgeplane_sim::multicluster::MultiClusterReport;
use edgeplane_sim::multicluster::record::{Placement, WorkloadReport};
use edgeplane_sim::report::{NodeState, Report};
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

/// Runs `s` with every edgeplane component.
fn run_scenario(s: &Scenario) -> Report {
    edgeplane_sim::run(
        s,
        RunOptions {
            components: controllers::components(&Options::default()),
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", s.name))
}

fn mc(r: &Report) -> &MultiClusterReport {
    r.multicluster.as_ref().expect("a multi-cluster report")
}

/// `cluster -> {component: replicas}` with one cluster.
fn on(cluster: &str, component: &str, replicas: i32) -> Placement {
    let mut p = Placement::new();
    p.insert(
        cluster.to_string(),
        BTreeMap::from([(component.to_string(), replicas)]),
    );
    p
}

fn workload<'a>(m: &'a MultiClusterReport, cluster: &str, name: &str) -> &'a WorkloadReport {
    m.workloads
        .iter()
        .find(|w| w.cluster == cluster && w.name == name)
        .unwrap_or_else(|| panic!("no {name} in {cluster}: {:#?}", m.workloads))
}

/// When the workload first had `replicas` ready; when it was gone.
fn ready_at(w: &WorkloadReport, replicas: i32) -> f64 {
    w.history
        .iter()
        .find(|h| h.ready == replicas)
        .unwrap_or_else(|| panic!("{} never had {replicas} ready: {:?}", w.name, w.history))
        .at_seconds
}

fn gone_at(w: &WorkloadReport) -> Option<f64> {
    w.history
        .iter()
        .find(|h| h.replicas.is_none())
        .map(|h| h.at_seconds)
}

fn readiness(m: &MultiClusterReport, cluster: &str) -> Vec<(f64, bool)> {
    m.clusters
        .iter()
        .find(|c| c.name == cluster)
        .unwrap()
        .readiness
        .iter()
        .map(|r| (r.at_seconds, r.ready))
        .collect()
}

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

#[test]
fn a_member_outage_fails_over_after_the_toleration_and_nothing_moves_back() {
    let r = run("multicluster-outage");
    let m = mc(&r);
    let s = story(&r);
    assert_eq!(m.mode, "direct");
    // The hub's first round (0 s) finds every member Ready; the round after the cut
    // (5:05) at 5:10 finds edge-east Unreachable; the round at 10:10 after the repair
    // (10:05), Ready again.
    assert_eq!(
        readiness(m, "edge-east"),
        [(0.5, true), (310.5, false), (610.5, true)],
        "{s}"
    );
    assert_eq!(readiness(m, "edge-west"), [(0.5, true)]);
    let app = &m.applications[0];
    assert_eq!(
        (app.namespace.as_str(), app.name.as_str()),
        ("ar", "ar-game")
    );
    // Placed on edge-east at once; failed over to edge-west at 6:10, 60 s (the
    // toleration) after edge-east turned NotReady, and never moved back.
    let at: Vec<(f64, &Placement)> = app
        .placements
        .iter()
        .map(|p| (p.at_seconds, &p.placement))
        .collect();
    assert_eq!(
        at,
        [
            (0.5, &on("edge-east", "render", 4)),
            (370.5, &on("edge-west", "render", 4))
        ],
        "{s}"
    );
    assert_eq!(app.moves.len(), 1);
    assert_eq!(app.moves[0].from, on("edge-east", "render", 4));
    assert_eq!(app.moves[0].to, on("edge-west", "render", 4));
    // The hub told why.
    let moved: Vec<&str> = r
        .timeline
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ApplicationMoved"))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        moved,
        ["placed again (member edge-east NotReady for 60s (toleration 60s)): edge-west render=4"],
        "{s}"
    );
    // The new copies run in edge-west; edge-east's could not be removed while it did not
    // answer, and go in the round after it answers again.
    let west = workload(m, "edge-west", "ar-render");
    let east = workload(m, "edge-east", "ar-render");
    assert_eq!(west.application, "ar.ar-game");
    assert!(
        ready_at(west, 4) > 370.5 && ready_at(west, 4) < 380.0,
        "{west:?}"
    );
    assert_eq!(gone_at(east), Some(610.5), "{east:?}");
    assert_eq!(gone_at(west), None);
    assert_eq!(r.summary.pods_placed, 4);
    assert!(r.expectations.iter().all(|e| e.met), "{:?}", r.expectations);
    // No member is labelled as running edgeplane: the hub writes no offers, and the
    // members have no bindings.
    assert!(m.member_bindings.is_empty(), "{:?}", m.member_bindings);
    let failed = r
        .timeline
        .iter()
        .filter(|e| e.kind == EntryType::ClusterFailed)
        .count();
    assert_eq!(failed, 1);
    // The map draws the clusters at their sites, and at each moment their state: failed
    // but not noticed at 5:05, NotReady (its copies still running) from 5:10, the copies
    // in edge-west ready after the failover, edge-east's gone at the end.
    let state = |second: f64, cluster: &str| {
        let m = r
            .map
            .moments
            .iter()
            .find(|m| m.at_seconds == second)
            .unwrap_or_else(|| panic!("no moment at {second}: {:?}", r.map.moments));
        let n = m.nodes.iter().find(|n| n.name == cluster).unwrap();
        (n.state, n.pods)
    };
    assert_eq!(state(305.0, "edge-east"), (NodeState::Failed, 4));
    assert_eq!(state(310.0, "edge-east"), (NodeState::NotReady, 4));
    assert_eq!(state(370.0, "edge-west"), (NodeState::Ready, 0));
    assert_eq!(state(720.0, "edge-west"), (NodeState::Ready, 4));
    assert_eq!(state(720.0, "edge-east"), (NodeState::Ready, 0));
    let ee = r.map.sites.iter().find(|s| s.name == "ee").unwrap();
    assert!(
        ee.nodes
            .iter()
            .any(|n| n.name == "edge-east" && n.pods.is_empty())
    );
    let ew = r.map.sites.iter().find(|s| s.name == "ew").unwrap();
    let west_node = ew.nodes.iter().find(|n| n.name == "edge-west").unwrap();
    assert_eq!(west_node.pods.len(), 4);
    // The HTML report has the clusters' section and draws them on the map.
    let html = edgeplane_sim::html::render(&r);
    assert!(html.contains("<section id=\"clusters\">"));
    assert!(html.contains("data-cluster=\"edge-east\""));
    assert!(html.contains("id=\"clusters-on-map\""));
    assert!(html.contains(">edge-east<"), "the map names the cluster");
}

#[test]
fn a_degraded_link_moves_the_application_after_the_grace_make_before_break() {
    let r = run("multicluster-degraded-link");
    let m = mc(&r);
    let s = story(&r);
    let app = &m.applications[0];
    // The flap (5:05 to 5:35) is within the grace: nothing moves. The second
    // degradation (7:05) puts the rule in Violation from the round at 7:10; at 8:10 the
    // grace is over and the renderers go to edge-west. The repair at 12:05 moves nothing
    // back.
    let at: Vec<(f64, &Placement)> = app
        .placements
        .iter()
        .map(|p| (p.at_seconds, &p.placement))
        .collect();
    assert_eq!(
        at,
        [
            (0.5, &on("edge-east", "render", 4)),
            (490.5, &on("edge-west", "render", 4))
        ],
        "{s}"
    );
    let moved: Vec<&str> = r
        .timeline
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ApplicationMoved"))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(moved.len(), 1, "{s}");
    assert!(
        moved[0].starts_with("placed again (rules in Violation for 60s (grace 60s)"),
        "{moved:?}"
    );
    // Make-before-break: edge-east's copies go only in the round after edge-west's are
    // all ready.
    let west = workload(m, "edge-west", "ar-render");
    let east = workload(m, "edge-east", "ar-render");
    let ready = ready_at(west, 4);
    let gone = gone_at(east).expect("edge-east's copies removed");
    assert!(ready > 490.5 && ready < gone, "ready {ready}, gone {gone}");
    assert_eq!(gone, 500.5, "{east:?}");
    // Meanwhile edge-east kept its four ready.
    let last_before = east
        .history
        .iter()
        .rev()
        .find(|h| h.at_seconds < gone)
        .unwrap();
    assert_eq!((last_before.replicas, last_before.ready), (Some(4), 4));
    // Every member stayed Ready.
    for c in ["edge-east", "edge-west", "metro-1"] {
        assert_eq!(readiness(m, c), [(0.5, true)], "{c}");
    }
    assert_eq!(r.summary.pods_placed, 4);
}

#[test]
fn karmada_mode_fills_the_binding_and_the_simulated_karmada_propagates_it() {
    let r = run("multicluster-karmada");
    let m = mc(&r);
    let s = story(&r);
    assert_eq!(m.mode, "karmada");
    let app = &m.applications[0];
    // The application is the PropagationPolicy ar/ar; its component is the workload.
    assert_eq!((app.namespace.as_str(), app.name.as_str()), ("ar", "ar"));
    // edge-east NotReady from the round at 5:10; the policy's clusterTolerations (60 s)
    // run out at 6:10, when the hub writes edge-west into the binding.
    let at: Vec<(f64, &Placement)> = app
        .placements
        .iter()
        .map(|p| (p.at_seconds, &p.placement))
        .collect();
    assert_eq!(
        at,
        [
            (0.5, &on("edge-east", "ar-render", 4)),
            (370.5, &on("edge-west", "ar-render", 4))
        ],
        "{s}"
    );
    let west = workload(m, "edge-west", "ar-render");
    let east = workload(m, "edge-east", "ar-render");
    // Karmada's label on what it applied.
    assert_eq!(west.application, "ar-render-deployment");
    assert!(ready_at(west, 4) > 370.5, "{west:?}");
    let moved: Vec<&str> = r
        .timeline
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ApplicationMoved"))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        moved,
        [
            "placed again (member edge-east NotReady for 60s (toleration 60s)): edge-west ar-render=4"
        ],
        "{s}"
    );
    // edge-east's copies go when it answers again (10:05): Karmada's sync at 10:05.25
    // removes them, then their Work.
    assert_eq!(gone_at(east), Some(605.5), "{east:?}");
    // The hub knows the members from Karmada's Clusters (no kubeconfig Secrets): edge-east
    // NotReady from the round after Karmada saw it unreachable, Ready after it answers.
    assert_eq!(
        readiness(m, "edge-east"),
        [(0.5, true), (310.5, false), (610.5, true)],
        "{s}"
    );
    let reasons: Vec<&str> = m.clusters[0]
        .readiness
        .iter()
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(reasons, ["KarmadaReady", "KarmadaNotReady", "KarmadaReady"]);
    assert_eq!(r.summary.pods_placed, 4);
}

#[test]
fn a_member_running_edgeplane_binds_the_pods_to_the_users_and_its_planner_places_them_near() {
    let r = run("multicluster-member-planner");
    let m = mc(&r);
    let s = story(&r);
    let app = &m.applications[0];
    assert_eq!(app.placements.len(), 1, "{s}");
    assert_eq!(app.placements[0].placement, on("edge-east", "render", 4));
    // edge-east runs edgeplane: the hub's offer made one binding per renderer there, each
    // Compliant because edge-east's planner put the renderer on the street cabinet's node
    // (1 ms from the stadium), not on the larger depot (8 ms: beyond the 5 ms limit).
    let bindings: Vec<(&str, &str, &str, &str)> = m
        .member_bindings
        .iter()
        .map(|b| {
            (
                b.cluster.as_str(),
                b.offer.as_str(),
                b.compliance.as_str(),
                b.reason.as_str(),
            )
        })
        .collect();
    let near =
        "latency 1ms between render (east-street) and stadium (stadium) meets the request 2ms";
    assert_eq!(
        bindings,
        [("edge-east", "ar/ar-game.near-fans", "Compliant", near); 4],
        "{s}"
    );
    // The member's bindings count in the run's.
    assert_eq!(r.summary.bindings.compliant, 4);
    assert_eq!(r.summary.pods_placed, 4);
    // The street cabinet's node fails at 2:00 (failNode in edge-east): the renderers
    // are not ready from 2:50 (the node NotReady), deleted at 3:20; their replacements
    // wait unplaced rather than go to the depot (8 ms), and run on the street node again
    // after it recovers at 4:00. The hub sees edge-east Ready throughout (one node of two).
    let east = workload(m, "edge-east", "ar-render");
    let history: Vec<(f64, Option<i32>, i32)> = east
        .history
        .iter()
        .map(|h| (h.at_seconds, h.replicas, h.ready))
        .collect();
    assert_eq!(
        history,
        [
            (0.5, Some(4), 0),
            (5.5, Some(4), 4),
            (170.5, Some(4), 0),
            (245.5, Some(4), 4)
        ],
        "{s}"
    );
    assert_eq!(readiness(m, "edge-east"), [(0.5, true)]);
    assert_eq!(r.summary.node_failures, 1);
    let failed: Vec<String> = r
        .timeline
        .iter()
        .filter(|e| matches!(e.kind, EntryType::NodeFailed | EntryType::NodeRecovered))
        .map(|e| format!("{} {}", e.at, e.object))
        .collect();
    assert_eq!(
        failed,
        ["00:02:00 Node east-street", "00:04:00 Node east-street"]
    );
    assert!(r.expectations.iter().all(|e| e.met), "{:?}", r.expectations);
}

#[test]
fn karmada_policy_mode_writes_weights_that_karmadas_scheduler_divides_as_planned() {
    let r = run("multicluster-karmada-policy");
    let m = mc(&r);
    let s = story(&r);
    assert_eq!(m.mode, "karmada-policy");
    let app = &m.applications[0];
    assert_eq!(
        (app.namespace.as_str(), app.name.as_str()),
        ("ar", "ar-game")
    );
    let split: Placement = BTreeMap::from([
        (
            "edge-east".to_string(),
            BTreeMap::from([("render".to_string(), 4)]),
        ),
        (
            "edge-west".to_string(),
            BTreeMap::from([("render".to_string(), 2)]),
        ),
    ]);
    let at: Vec<(f64, &Placement)> = app
        .placements
        .iter()
        .map(|p| (p.at_seconds, &p.placement))
        .collect();
    assert_eq!(
        at,
        [(0.5, &split), (370.5, &on("edge-west", "render", 6))],
        "{s}"
    );
    // What runs in the members is what Karmada's simulated scheduler made of the plain
    // policy's static weights (4 and 2, then 6): the planned shares.
    let east = workload(m, "edge-east", "ar-render");
    let west = workload(m, "edge-west", "ar-render");
    assert_eq!(east.history[0].replicas, Some(4), "{east:?}");
    assert_eq!(west.history[0].replicas, Some(2), "{west:?}");
    assert_eq!(ready_at(east, 4), 3.5, "{east:?}");
    assert_eq!(ready_at(west, 2), 3.5, "{west:?}");
    // After the failover (6:10) Karmada schedules the rewritten policy: six on edge-west.
    assert!(
        ready_at(west, 6) > 370.5 && ready_at(west, 6) < 380.0,
        "{west:?}"
    );
    // The hub's label on what it wrote into Karmada, carried to the members.
    assert_eq!(west.application, "ar.ar-game");
    // edge-east's copies go when it answers again (10:05).
    assert_eq!(gone_at(east), Some(605.5), "{east:?}");
    assert_eq!(gone_at(west), None);
    assert_eq!(
        readiness(m, "edge-east"),
        [(0.5, true), (310.5, false), (610.5, true)],
        "{s}"
    );
    assert!(r.expectations.iter().all(|e| e.met), "{:?}", r.expectations);
}

/// An application deleted from the hub: in direct mode the hub keeps looking in the
/// members for the kinds it applied there (`status.appliedKinds`), so its copies are
/// removed in the next round, though no application has a Deployment any more.
#[test]
fn a_deleted_application_is_removed_from_the_members_it_ran_in() {
    let mut s = example("multicluster-outage");
    s.duration = std::time::Duration::from_secs(240);
    s.expect.clear();
    s.events = vec![scenario::Event {
        at: std::time::Duration::from_secs(120),
        index: 0,
        note: Some("the application is deleted".into()),
        action: scenario::Action::Delete(vec![scenario::ObjectRef {
            api_version: "multicluster.edgeplane.io/v1alpha1".into(),
            kind: "MecApplication".into(),
            namespace: Some("ar".into()),
            name: "ar-game".into(),
        }]),
        cluster: None,
    }];
    let r = run_scenario(&s);
    let m = mc(&r);
    let east = workload(m, "edge-east", "ar-render");
    assert_eq!(ready_at(east, 4), 3.5, "{east:?}");
    // Deleted at 2:00; the hub's round at 2:00 (or the next, at 2:10) removes the copies.
    let gone = gone_at(east).unwrap_or_else(|| panic!("never removed: {east:?}"));
    assert!(gone > 120.0 && gone <= 130.5, "{east:?}");
}
