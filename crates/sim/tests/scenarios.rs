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
    edgeplane_sim::run(
        &example(name),
        RunOptions {
            components: controllers::components(&Options::default()),
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The story entries (no details), one line each, for failure messages.
fn story(r: &Report) -> String {
    r.timeline
        .iter()
        .filter(|e| !e.detail)
        .map(|e| format!("{} {:<18} {} {}", e.at, e.kind.as_str(), e.object, e.message))
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
    assert_eq!(s.bindings.pending, 0, "{name}: bindings Pending\n{timeline}");
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
