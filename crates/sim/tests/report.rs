//! The report: its JSON shape and the HTML's sections (the simulator alone), and what the
//! examples' reports tell with edgeplane's components: their incidents, not only the end
//! (the map at each moment, the latency the bindings measured through an activated path
//! while the degraded link stayed degraded, how long each offer spent out of compliance).
//! Virtual time: every run is deterministic.

#![allow(clippy::unwrap_used)] // tests unwrap what they built

use std::path::Path;

use edgeplane_sim::controllers::{self, Options};
use edgeplane_sim::report::{Moment, MomentNode, NodeState, Report};
use edgeplane_sim::{Component, RunOptions, scenario};

fn example_run(name: &str, components: Vec<Box<dyn Component>>) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/scenarios")
        .join(name)
        .join("scenario.yaml");
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    edgeplane_sim::run(
        &s,
        RunOptions {
            components,
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An example with edgeplane's components.
fn run(name: &str) -> Report {
    example_run(name, controllers::components(&Options::default()))
}

/// An example with no component: the simulator alone.
fn run_alone(name: &str) -> Report {
    example_run(name, Vec::new())
}

// ---- the shape ---------------------------------------------------------------------------

#[test]
fn the_json_report_has_the_agreed_shape_and_the_html_its_sections() {
    let r = run_alone("stadium-ar");
    let v = serde_json::to_value(&r).unwrap();
    // Field order as agreed (serde writes struct fields in declaration order).
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        text.starts_with(r#"{"scenario":"stadium-ar","duration":"45m","timeline":[{"at":"00:00:00","type":"Applied","object":"#),
        "{}",
        &text[..200]
    );
    assert!(text.contains(r#""summary":{"planRuns":0,"podsPlaced":8,"podsUnplaced":0,"mitigations":0,"evictions":0,"bindings":{"Pending":0,"Compliant":0,"Limit":0,"Violation":0,"Error":0},"wallMillis":"#));
    assert_eq!(v["scenario"], "stadium-ar");
    assert_eq!(v["duration"], "45m");
    let first = &v["timeline"][0];
    for k in ["at", "type", "object", "message"] {
        assert!(first[k].is_string(), "timeline entries need {k}: {first}");
    }
    assert_eq!(first["at"], "00:00:00");
    assert_eq!(first["type"], "Applied");
    let at_ok = |s: &str| {
        s.len() == 8
            && s.chars().enumerate().all(|(i, c)| {
                if i == 2 || i == 5 {
                    c == ':'
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    assert!(
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| at_ok(e["at"].as_str().unwrap_or("")))
    );
    let summary = &v["summary"];
    for k in [
        "planRuns",
        "podsPlaced",
        "podsUnplaced",
        "mitigations",
        "evictions",
        "wallMillis",
    ] {
        assert!(summary[k].is_u64(), "summary.{k}: {summary}");
    }
    let mut bindings: Vec<&str> = summary["bindings"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    bindings.sort();
    assert_eq!(
        bindings,
        ["Compliant", "Error", "Limit", "Pending", "Violation"]
    );
    // Additions: the map at each moment (here the node failure at 20m, before the cluster
    // notices it), what the latency chart and the table by offer read.
    let moments = v["map"]["moments"].as_array().unwrap();
    for k in ["at", "atSeconds", "what", "nodes", "links", "paths"] {
        assert!(
            moments.iter().all(|m| m.get(k).is_some()),
            "moments need {k}"
        );
    }
    let failed = moments
        .iter()
        .find(|m| m["at"] == "00:20:00")
        .expect("a moment at the node failure");
    assert!(
        failed["what"]
            .as_str()
            .unwrap()
            .contains("NodeFailed Node edge-1-a")
    );
    let node = |m: &serde_json::Value, name: &str| {
        m["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
    };
    assert_eq!(node(failed, "edge-1-a").unwrap()["state"], "Failed");
    let noticed = moments.iter().find(|m| m["at"] == "00:20:50").unwrap();
    assert_eq!(node(noticed, "edge-1-a").unwrap()["state"], "NotReady");
    assert_eq!(
        moments.iter().find(|m| m["at"] == "00:12:00").unwrap()["links"]["edge-1 - metro-1"]["latency"],
        "12ms"
    );
    assert_eq!(moments.last().unwrap()["what"], "the end of the run");
    assert!(v["series"]["activatedPaths"].is_array());
    assert!(v["series"]["bindingLatency"].is_object());
    assert!(v["offers"].is_array());
    // What the report is computed from but does not carry.
    for k in ["bindingCompliance", "nodeReady", "nodePods"] {
        assert!(v["series"].get(k).is_none(), "series.{k}");
    }

    let html = edgeplane_sim::html::render(&r);
    assert!(html.starts_with("<!doctype html>"));
    for id in [
        "site-map",
        "map-slider",
        "slo",
        "summary",
        "chart-bindings",
        "chart-pods",
        "chart-links",
        "chart-events",
        "workloads",
        "timeline",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing #{id}");
    }
    for site in &r.map.sites {
        assert!(
            html.contains(&format!("data-site=\"{}\"", site.name)),
            "map without {}",
            site.name
        );
    }
    assert!(
        html.contains("edge-1 - metro-1"),
        "the changed link's series"
    );
    // Self-contained: one inline script and its data, nothing fetched.
    assert_eq!(html.matches("<script>").count(), 1);
    assert_eq!(
        html.matches("<script type=\"application/json\" id=\"map-data\">")
            .count(),
        1
    );
    assert_eq!(html.matches("<script").count(), 2);
    assert!(!html.contains("src="));
    assert!(!html.contains("<link"));
    assert!(!html.contains("url("));
}

// ---- the incidents -----------------------------------------------------------------------

fn moment<'a>(r: &'a Report, at: &str) -> &'a Moment {
    r.map
        .moments
        .iter()
        .find(|m| m.at == at)
        .unwrap_or_else(|| {
            let all: Vec<&str> = r.map.moments.iter().map(|m| m.at.as_str()).collect();
            panic!("no moment at {at}: {all:?}")
        })
}

fn node<'a>(m: &'a Moment, name: &str) -> Option<&'a MomentNode> {
    m.nodes.iter().find(|n| n.name == name)
}

fn violation_seconds(r: &Report, offer: &str) -> f64 {
    r.offers
        .iter()
        .find(|o| o.offer == offer)
        .unwrap_or_else(|| panic!("no offer {offer}: {:#?}", r.offers))
        .violation_seconds
}

#[test]
fn the_stadium_report_tells_the_fibre_and_the_node_failure() {
    let r = run("stadium-ar");
    // The link stays at 12 ms from 12m to 38m...
    let link: Vec<(f64, f64)> = r.series.links["edge-1 - metro-1"]
        .iter()
        .map(|s| (s.at, s.value.latency_ms))
        .collect();
    assert_eq!(link, [(0.0, 2.0), (720.0, 12.0), (2280.0, 2.0)]);
    // ...while the game state's bindings that crossed it measured 12 ms for a minute only:
    // from 13m the backup path carried their traffic at 3 ms.
    // (One of the two bindings between the game state and the renderers planned at
    // kick-off, 5m02s; their names hash the pods' generated names.)
    let game = r
        .series
        .binding_latency
        .values()
        .find(|l| l.offer == "ar/ar-game-state" && l.samples.first().is_some_and(|s| s.at == 302.0))
        .unwrap_or_else(|| panic!("{:#?}", r.series.binding_latency.keys()));
    let values: Vec<(f64, Option<f64>)> =
        game.samples.iter().map(|s| (s.at, s.latency_ms)).collect();
    assert_eq!(
        &values[..3],
        [(302.0, Some(2.0)), (720.0, Some(12.0)), (780.0, Some(3.0))]
    );
    let active = &r.series.activated_paths[0];
    assert_eq!(active.at, 780.0);
    assert_eq!(active.paths[0].activated, "default/backup-1");
    // Only bindings whose latency changed are kept for the chart.
    assert!(r.series.binding_latency.values().all(|l| l.changed()));
    assert!(
        !r.series
            .binding_latency
            .keys()
            .any(|b| b.starts_with("ar/ar-render-node")),
        "node rules measure no latency"
    );
    // Out of compliance: the seven bindings in Violation from 12m to 13m, by offer (the
    // three of ar-video come back with the backup path, within their 2m grace).
    assert_eq!(violation_seconds(&r, "ar/ar-video"), 180.0);
    assert_eq!(violation_seconds(&r, "ar/ar-game-state"), 120.0);
    assert_eq!(violation_seconds(&r, "ar/ar-stadium"), 120.0);
    assert_eq!(violation_seconds(&r, "ar/ar-render-node"), 0.0);
    assert_eq!(r.offers[0].offer, "ar/ar-video", "the longest first");
    let stadium = r
        .offers
        .iter()
        .find(|o| o.offer == "ar/ar-stadium")
        .unwrap();
    assert!(stadium.limit_seconds > 0.0 && stadium.worst_limit.is_some());
    assert_eq!(stadium.at_end.limit, 5);
    // The map: the degraded link before the backup path, the path after it.
    let degraded = moment(&r, "00:12:00");
    assert_eq!(degraded.links["edge-1 - metro-1"].latency, "12ms");
    assert!(degraded.paths.is_empty());
    assert_eq!(
        moment(&r, "00:13:00").paths[0].activated,
        "default/backup-1"
    );
    // The node: failed and unnoticed, NotReady with its four pods, the renderers deleted
    // and re-placed in metro-1, back at 27m.
    let at = |t: &str| node(moment(&r, t), "edge-1-a").map(|n| (n.state, n.pods, n.terminating));
    assert_eq!(at("00:20:00"), Some((NodeState::Failed, 4, 0)));
    assert_eq!(at("00:20:50"), Some((NodeState::NotReady, 4, 0)));
    assert_eq!(at("00:21:20"), Some((NodeState::NotReady, 1, 3)));
    assert_eq!(
        node(moment(&r, "00:21:22"), "metro-1-a").map(|n| n.pods),
        Some(5)
    );
    assert_eq!(at("00:27:00").map(|n| n.0), Some(NodeState::Ready));
    // The end moment is the map at the end.
    let end = r.map.moments.last().unwrap();
    assert_eq!(end.at, "00:45:00");
    for site in &r.map.sites {
        for n in &site.nodes {
            let pods = node(end, &n.name).map_or(0, |m| m.pods + m.terminating);
            assert_eq!(pods, n.pods.len(), "{}", n.name);
        }
    }
}

#[test]
fn the_eviction_report_tells_the_mitigation_that_failed() {
    let r = run("eviction");
    // The binding the backup path could not repair stayed in Violation from 10m until its
    // pod was evicted at 13m; the repaired one for a minute.
    assert_eq!(
        violation_seconds(&r, "vision/analytics-campus").round(),
        240.0
    );
    let o = &r.offers[0];
    assert_eq!(
        o.worst_violation.as_ref().map(|w| w.binding.as_str()),
        Some("vision/analytics-campus-05a033485d")
    );
    assert_eq!(
        o.bindings, 3,
        "the two, and the evicted pod's replacement's"
    );
    let repaired = &r.series.binding_latency["vision/analytics-campus-c5c523fe92"];
    let values: Vec<Option<f64>> = repaired.samples.iter().map(|s| s.latency_ms).collect();
    assert_eq!(values, [Some(1.0), Some(7.5), Some(1.5)]);
    assert_eq!(
        moment(&r, "00:11:00").paths[0].activated,
        "default/backup-a"
    );
    // The evicted pod is gone from edge-c (deleting), its replacement at edge-b.
    assert_eq!(
        node(moment(&r, "00:13:00"), "edge-c-1").map(|n| n.pods),
        Some(0)
    );
    assert_eq!(
        node(moment(&r, "00:13:02"), "edge-b-1").map(|n| n.pods),
        Some(1)
    );
}

#[test]
fn the_node_failure_report_shows_the_node_down_then_back() {
    let r = run("node-failure");
    let at = |t: &str| node(moment(&r, t), "edge-1-b").map(|n| (n.state, n.pods + n.terminating));
    assert_eq!(at("00:10:00"), Some((NodeState::Failed, 4)));
    assert_eq!(at("00:10:50"), Some((NodeState::NotReady, 4)));
    assert_eq!(
        node(moment(&r, "00:11:22"), "edge-1-a").map(|n| n.pods),
        Some(4),
        "the three frontends' replacements beside the one there"
    );
    assert_eq!(at("00:25:00").map(|n| n.0), Some(NodeState::Ready));
    assert_eq!(
        node(moment(&r, "00:25:03"), "edge-1-a").map(|n| n.pods),
        Some(5)
    );
    // Nothing went out of compliance.
    assert!(r.offers.iter().all(|o| o.violation_seconds == 0.0));
}
