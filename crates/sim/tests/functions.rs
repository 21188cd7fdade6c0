//! The 5G user-plane example (examples/scenarios/5g-upf) with edgeplane's components: a
//! service chain fw (VM) > dpi > nat of two lanes beside the AR application, the NF and
//! chain controllers, lanes planned as units, lane repair by live migration, and the
//! embedded cluster's KubeVirt and Multus stand-ins (the upstream CRDs validate what is
//! written). Asserts the story step by step, with its times, from the report and from a
//! watch of the pods (their uids).

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use edgeplane_sim::chains::{ChainRecord, LaneState};
use edgeplane_sim::controllers::{self, Options};
use edgeplane_sim::report::Report;
use edgeplane_sim::{Component, EntryType, RunOptions, SimContext, component, scenario};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Pod name -> every uid a pod of that name had in namespace upf.
type Uids = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

/// A component that only watches the user plane's pods.
fn pod_uids(uids: &Uids) -> Box<dyn Component> {
    let uids = uids.clone();
    Box::new(component("pod-uids", move |ctx: SimContext| {
        let uids = uids.clone();
        async move {
            let api: Api<Pod> = Api::namespaced(ctx.client, "upf");
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
            loop {
                let event = tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    e = events.next() => e,
                };
                let Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) = event
                else {
                    continue;
                };
                if let (Some(name), Some(uid)) = (p.metadata.name, p.metadata.uid) {
                    uids.lock().unwrap().entry(name).or_default().insert(uid);
                }
            }
        }
    }))
}

fn run() -> (Report, BTreeMap<String, BTreeSet<String>>) {
    let path = repo().join("examples/scenarios/5g-upf/scenario.yaml");
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.functions() && s.kubevirt());
    let uids = Uids::default();
    let mut components = controllers::components(&Options::default());
    components.push(pod_uids(&uids));
    let r = edgeplane_sim::run(
        &s,
        RunOptions {
            components,
            ..RunOptions::default()
        },
    )
    .unwrap();
    let uids = uids.lock().unwrap().clone();
    (r, uids)
}

/// The story entries of a kind: `at object message`.
fn of(r: &Report, kind: EntryType) -> Vec<String> {
    r.timeline
        .iter()
        .filter(|e| e.kind == kind && !e.detail)
        .map(|e| format!("{} {} {}", e.at, e.object, e.message))
        .collect()
}

/// A lane as `(nodes of fw, dpi and nat, latency, compliance)`.
type Lane<'a> = (Vec<&'a str>, &'a str, &'a str);

fn lane(l: &LaneState) -> Lane<'_> {
    (
        l.hops
            .iter()
            .map(|h| h.node.as_deref().unwrap_or("-"))
            .collect(),
        l.latency.as_deref().unwrap_or("-"),
        l.compliance.as_str(),
    )
}

/// Lane `i` whenever it changed: `(seconds, state)`.
fn history(c: &ChainRecord, i: usize) -> Vec<(f64, Lane<'_>)> {
    let mut out: Vec<(f64, Lane<'_>)> = Vec::new();
    for s in &c.history {
        if let Some(l) = s.lanes.iter().find(|l| l.lane == i) {
            let state = lane(l);
            if out.last().is_none_or(|(_, last)| *last != state) {
                out.push((s.at, state));
            }
        }
    }
    out
}

#[test]
fn the_user_plane_lanes_are_placed_migrated_live_and_planned_again_as_units() {
    let (r, uids) = run();
    let story = of(&r, EntryType::Planned).join("\n");
    assert_eq!(r.chains.len(), 1, "{:#?}", r.chains);
    let up = &r.chains[0];
    assert_eq!(up.name, "upf/up");
    assert_eq!(up.hops, ["fw", "dpi", "nat"]);
    assert_eq!(
        (up.ingress.as_deref(), up.egress.as_deref()),
        (Some("ran-1"), Some("core-gw"))
    );

    // At the start each lane is planned whole: fw and dpi together near the RAN (lane 0 at
    // edge-a, lane 1 at edge-d: a node holds one lane's fw and dpi), nat near the core,
    // 720us (request 800us): Compliant. Lane 1 then degrades with its link from the RAN
    // (to 1.32ms, in Violation, first reported by the binding); its VM hop is migrated
    // to c1 and it is back at 790us, Compliant. Lane 0 loses a1 and is planned again
    // whole: fw to c1 and dpi to d1 together, 790us.
    let lane0 = history(up, 0);
    let lane1 = history(up, 1);
    let compliant_at = |h: &[(f64, Lane<'_>)], nodes: [&str; 3], latency: &str| {
        h.iter()
            .find(|(_, (n, l, c))| *n == nodes && *l == latency && *c == "Compliant")
            .map(|(at, _)| *at)
    };
    let start0 = compliant_at(&lane0, ["a1", "a1", "b1"], "720us");
    let start1 = compliant_at(&lane1, ["d1", "d1", "b1"], "720us");
    assert!(
        start0.is_some_and(|t| t < 30.0) && start1.is_some_and(|t| t < 30.0),
        "{lane0:?}\n{lane1:?}\n{story}"
    );
    let migrated1 = compliant_at(&lane1, ["c1", "d1", "b1"], "790us");
    // Whole seconds: the controllers' writes land a few milliseconds into a second.
    assert_eq!(migrated1.map(f64::floor), Some(363.0), "{lane1:?}");
    let replanned0 = compliant_at(&lane0, ["c1", "d1", "b1"], "790us");
    assert!(
        replanned0.is_some_and(|t| (682.0..=700.0).contains(&t)),
        "{lane0:?}"
    );
    // Lane 0 went from its nodes at the start straight to Pending and then to its new
    // nodes: both hops moved in one step.
    let moves0: Vec<&Vec<&str>> = lane0.iter().map(|(_, (n, _, _))| n).collect();
    assert!(
        !moves0
            .iter()
            .any(|n| n.as_slice() == ["c1", "a1", "b1"] || n.as_slice() == ["a1", "d1", "b1"]),
        "lane 0 was planned again hop by hop: {lane0:?}"
    );

    // The degradation: the lane's binding in Violation at 4:00, the network controller
    // asked after the lane grace (it has no catalogue), the VM migrated after the
    // mitigation grace; nothing evicted.
    let violations: Vec<String> = of(&r, EntryType::ComplianceChanged)
        .into_iter()
        .filter(|l| l.contains("-> Violation"))
        .collect();
    assert_eq!(
        violations,
        [
            "00:04:00 ConstraintPolicyBinding upf/up-lane-1 Compliant -> Violation: latency 1.32ms is worse than the limit 1ms"
        ]
    );
    let refused = of(&r, EntryType::MitigationFailed);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("00:05:00 ConstraintPolicyBinding upf/up-lane-1"),
        "{refused:?}"
    );
    // One migration, told on the lane's binding and on the VMI.
    let migrations = of(&r, EntryType::Migrated);
    assert_eq!(migrations.len(), 2, "{migrations:?}");
    assert!(
        migrations[1].starts_with("00:06:00 VirtualMachineInstance upf/fw-1 live migration"),
        "{migrations:?}"
    );
    assert!(
        migrations[0].starts_with("00:06:00 ConstraintPolicyBinding upf/up-lane-1")
            && migrations[0].contains("live-migrating VMI upf/fw-1")
            && migrations[0].contains("to c1 (site edge-c): latency 790us (Compliant)"),
        "{migrations:?}"
    );
    assert_eq!(up.migrations.len(), 1, "{:#?}", up.migrations);
    let m = &up.migrations[0];
    assert_eq!(
        (
            m.vmi.as_str(),
            m.source_node.as_deref(),
            m.target_node.as_deref(),
            m.phase.as_str(),
            m.binding.as_deref()
        ),
        (
            "fw-1",
            Some("d1"),
            Some("c1"),
            "Succeeded",
            Some("upf/up-lane-1")
        )
    );
    assert_eq!(
        (m.created_at.floor(), m.ended_at.map(f64::floor)),
        (360.0, Some(363.0))
    );
    assert_eq!(r.summary.evictions, 0);
    assert!(of(&r, EntryType::Evicted).is_empty());
    // Live migration keeps the lane's other hops: dpi-1 and nat-1 are the pods they were
    // (one uid each for the whole run); the VM got a new launcher pod on c1.
    for pod in ["dpi-1", "nat-1", "nat-0"] {
        assert_eq!(uids.get(pod).map(BTreeSet::len), Some(1), "{pod}: {uids:?}");
    }
    let launchers: Vec<&String> = uids
        .keys()
        .filter(|n| n.starts_with("virt-launcher-fw-1-"))
        .collect();
    assert_eq!(launchers.len(), 2, "{uids:?}");

    // The node failure: a1 silent at 10:00, NotReady at 10:50, the lane's pods deleted
    // 30 s later (their toleration), and both planned again in one run, 2 s after.
    let deleted: Vec<String> = of(&r, EntryType::TaintEviction);
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(
        deleted[0].starts_with("00:11:20 Pod upf/dpi-0 "),
        "{deleted:?}"
    );
    assert!(
        deleted[1].starts_with("00:11:20 Pod upf/virt-launcher-fw-0-"),
        "{deleted:?}"
    );
    let replanned: Vec<String> = of(&r, EntryType::Planned)
        .into_iter()
        .filter(|l| l.starts_with("00:11:22"))
        .collect();
    assert_eq!(replanned.len(), 2, "{story}");
    assert!(
        replanned[0].starts_with("00:11:22 Pod upf/dpi-0-r1 planned onto d1")
            && replanned[1].starts_with("00:11:22 Pod upf/virt-launcher-fw-0-")
            && replanned[1].contains("planned onto c1")
            && replanned
                .iter()
                .all(|l| l.contains("up-lane-0 latency 790us (Compliant)")),
        "{replanned:?}"
    );
    let run = of(&r, EntryType::PlanRun);
    assert!(
        run.iter()
            .any(|l| l.starts_with("00:11:22") && l.contains("2 pods, 2 placed")),
        "{run:?}"
    );

    // At the end both lanes are Compliant, like every binding, and nothing was lost.
    let last = up.history.last().unwrap();
    let end: Vec<_> = last.lanes.iter().map(lane).collect();
    assert_eq!(
        end,
        [
            (vec!["c1", "d1", "b1"], "790us", "Compliant"),
            (vec!["c1", "d1", "b1"], "790us", "Compliant")
        ]
    );
    assert_eq!(r.summary.bindings.violation, 0);
    assert_eq!(r.summary.pods_lost, 0);
    assert!(r.expectations.iter().all(|e| e.met), "{:?}", r.expectations);

    // The map draws the lanes at each moment: lane 1 through d1 before the degradation's
    // repair and through c1 after it.
    let lanes_at = |text: &str| {
        r.map
            .moments
            .iter()
            .find(|m| m.what.contains(text))
            .map(|m| {
                m.lanes
                    .iter()
                    .map(|l| (l.lane, l.nodes.clone(), l.compliance.clone()))
                    .collect::<Vec<_>>()
            })
    };
    let some = |n: &str| Some(n.to_string());
    assert_eq!(
        lanes_at("the fibre between the RAN and edge-d degrades"),
        Some(vec![
            (
                0,
                vec![some("a1"), some("a1"), some("b1")],
                "Compliant".into()
            ),
            (
                1,
                vec![some("d1"), some("d1"), some("b1")],
                "Violation".into()
            )
        ])
    );
    let html = edgeplane_sim::html::render(&r);
    assert!(
        html.contains("<g class=\"lane\" data-lane=\"upf/up#0\""),
        "no lane on the map"
    );
    assert!(html.contains("<section id=\"chains\">"));
}

#[test]
fn network_functions_without_kubevirt_are_refused_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("edgeplane-sim-nf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example = repo().join("examples/scenarios/5g-upf");
    for f in ["topology.yaml", "nodes.yaml", "upf.yaml"] {
        std::fs::copy(example.join(f), dir.join(f)).unwrap();
    }
    let multus = repo().join("../shared/crds/multus");
    let scenario = format!(
        "apiVersion: sim.edgeplane.io/v1alpha1\nkind: Scenario\nmetadata: {{name: no-kubevirt}}\nspec:\n  duration: 1m\n  include: [{}, topology.yaml, nodes.yaml, upf.yaml]\n",
        multus.display()
    );
    std::fs::write(dir.join("scenario.yaml"), scenario).unwrap();
    let err = scenario::load(&dir.join("scenario.yaml"))
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.contains("upf.yaml")
            && err.contains("NetworkFunction upf/fw")
            && err.contains("kubevirt.io/v1 VirtualMachine is not among the scenario's objects"),
        "{err}"
    );
}
