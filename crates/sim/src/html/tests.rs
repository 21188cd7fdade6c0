//! The HTML report from a report written by hand: lanes, counted marks, the table by offer,
//! folded rows, the map's moments, the latency chart.

use std::collections::BTreeMap;

use super::chart::{Frame, nice_step, time_label, time_step, trim_number};
use super::marks::{Lane, lane_of, marks};
use super::tables::duration_text;
use super::timeline::short_message;
use super::*;
use crate::report::{
    BindingTime, MapLink, MapNode, MapSite, Moment, MomentLink, MomentNode, NodeState,
    OfferCompliance, Report, ReportEntry, SiteMap, Summary,
};
use crate::series::{
    ActivePath, BindingLatency, ComplianceCounts, LatencySample, PathsSample, Series,
};
use crate::timeline::{EntryType, Source, clock_text};

fn entry(at: f64, kind: EntryType, object: &str, message: &str) -> ReportEntry {
    ReportEntry {
        at: clock_text(std::time::Duration::from_secs_f64(at)),
        kind,
        object: object.into(),
        message: message.into(),
        at_seconds: at,
        source: Source::Event,
        reason: None,
        component: None,
        node: None,
        detail: false,
    }
}

/// What a `Planned` entry says about a pod placed with four others: every rule of every
/// binding (about 400 characters).
const PLANNED: &str = "planned onto edge-1-a (site edge-1) with 4 other pods: ar-game-state-2a766c516d latency 20us (Compliant), jitter 2us (Compliant); ar-render-node-18447fe14a cpu 16 (Compliant), memory 64Gi (Compliant), node-feature cpu-cpuid.AVX512F=true (Compliant); ar-stadium-f30f9d7efc latency 1ms (Compliant), jitter 300us (Limit); ar-video-78113bb5bc bandwidth 10Gbps (Compliant), packet-loss 0.006% (Compliant)";

fn path(entry: &str) -> ActivePath {
    ActivePath {
        from: "edge-1".into(),
        to: "metro-1".into(),
        one_way: false,
        latency: "3ms".into(),
        latency_ms: 3.0,
        bandwidth: Some("2Gbps".into()),
        activated: entry.into(),
        bindings: vec!["ar/b1".into()],
    }
}

fn moment(
    at: f64,
    what: &str,
    nodes: Vec<MomentNode>,
    link_ms: f64,
    paths: Vec<ActivePath>,
) -> Moment {
    Moment {
        at: clock_text(std::time::Duration::from_secs_f64(at)),
        at_seconds: at,
        what: what.into(),
        entry: None,
        nodes,
        links: BTreeMap::from([(
            "edge-1 - metro-1".to_string(),
            MomentLink {
                latency: crate::report::latency_text(link_ms),
                latency_ms: link_ms,
            },
        )]),
        paths,
        lanes: Vec::new(),
    }
}

fn node(name: &str, state: NodeState, pods: usize, terminating: usize) -> MomentNode {
    MomentNode {
        name: name.into(),
        state,
        pods,
        terminating,
    }
}

/// A 45-minute run: a placement, a link degraded at 12m and four bindings mitigated (one
/// not) at 13m, a node failure at 20m, its pods deleted by the taint manager, one pod
/// failed and one unplaceable.
fn fixture() -> Report {
    let mut timeline = vec![
        entry(
            2.0,
            EntryType::PlanRun,
            "Lease default/edgeplane-scheduler",
            "plan run 1",
        ),
        entry(2.0, EntryType::Planned, "Pod ar/r-1", PLANNED),
        entry(720.0, EntryType::Note, "Scenario s", "the fibre degrades"),
        entry(
            720.0,
            EntryType::LinkChanged,
            "Link edge-1 - metro-1",
            "latency 2ms -> 12ms",
        ),
    ];
    for b in ["b1", "b2", "b3", "b4"] {
        timeline.push(entry(
            780.0,
            EntryType::Mitigated,
            &format!("ConstraintPolicyBinding ar/{b}"),
            "mitigated",
        ));
    }
    timeline.push(entry(
        780.0,
        EntryType::MitigationFailed,
        "ConstraintPolicyBinding ar/b5",
        "no entry restores it",
    ));
    timeline.push(entry(
        1200.0,
        EntryType::NodeFailed,
        "Node edge-1-a",
        "stopped responding (4 pods on it)",
    ));
    timeline.push(entry(
        1250.0,
        EntryType::NodeNotReady,
        "Node edge-1-a",
        "NodeNotReady",
    ));
    for p in ["r-1", "r-2", "r-3"] {
        timeline.push(entry(
            1280.0,
            EntryType::TaintEviction,
            &format!("Pod ar/{p}"),
            "Marking for deletion",
        ));
    }
    timeline.push(entry(
        1290.0,
        EntryType::PodFailed,
        "Pod ar/x",
        "failed: OutOfcpu",
    ));
    timeline.push(entry(
        1300.0,
        EntryType::Unplaceable,
        "Pod ar/y",
        "no node fits",
    ));
    let mut detail = entry(1300.0, EntryType::Bound, "Pod ar/z", "-> edge-1-b");
    detail.detail = true;
    timeline.push(detail);
    timeline.push(entry(
        1620.0,
        EntryType::NodeRecovered,
        "Node edge-1-a",
        "Ready again",
    ));
    let mut series = Series::default();
    for (k, at) in [(0.0, 2.0), (720.0, 12.0), (2280.0, 2.0)] {
        series.link_at(
            std::time::Duration::from_secs_f64(k),
            "edge-1 - metro-1",
            at,
        );
    }
    let s = |at, v| LatencySample { at, latency_ms: v };
    let game = vec![
        s(302.0, Some(2.0)),
        s(720.0, Some(12.0)),
        s(780.0, Some(3.0)),
    ];
    for b in ["ar/b1", "ar/b2"] {
        series.binding_latency.insert(
            b.into(),
            BindingLatency {
                offer: "ar/ar-game-state".into(),
                samples: game.clone(),
            },
        );
    }
    series.activated_paths = vec![
        PathsSample {
            at: 780.0,
            paths: vec![path("default/backup-1")],
        },
        PathsSample {
            at: 2300.0,
            paths: Vec::new(),
        },
    ];
    let link = MapLink {
        from: "edge-1".into(),
        to: "metro-1".into(),
        one_way: false,
        latency: "2ms".into(),
        latency_ms: 2.0,
        bandwidth: None,
        changed: true,
        activated: None,
        bindings: Vec::new(),
    };
    let site = |name: &str, tier: &str, nodes: Vec<MapNode>| MapSite {
        name: name.into(),
        tier: tier.into(),
        labels: BTreeMap::new(),
        nodes,
    };
    let map_node = |name: &str, pods: &[&str]| MapNode {
        name: name.into(),
        ready: true,
        pods: pods.iter().map(|p| p.to_string()).collect(),
    };
    let moments = vec![
        moment(
            2.0,
            "PlanRun",
            vec![node("edge-1-a", NodeState::Ready, 4, 0)],
            2.0,
            Vec::new(),
        ),
        moment(
            780.0,
            "Mitigated ×4",
            vec![node("edge-1-a", NodeState::Ready, 4, 0)],
            12.0,
            vec![path("default/backup-1")],
        ),
        moment(
            1250.0,
            "NodeNotReady Node edge-1-a",
            vec![node("edge-1-a", NodeState::NotReady, 1, 3)],
            12.0,
            vec![path("default/backup-1")],
        ),
        moment(
            2700.0,
            "the end of the run",
            vec![
                node("edge-1-a", NodeState::Ready, 1, 0),
                node("metro-1-a", NodeState::Ready, 3, 0),
            ],
            2.0,
            Vec::new(),
        ),
    ];
    Report {
        scenario: "fixture".into(),
        duration: "45m".into(),
        timeline,
        summary: Summary {
            simulated: "00:45:00".into(),
            ..Summary::default()
        },
        description: String::new(),
        components: Vec::new(),
        workloads: Vec::new(),
        map: SiteMap {
            sites: vec![
                site(
                    "metro-1",
                    "metro",
                    vec![map_node("metro-1-a", &["ar/r-4", "ar/r-5", "ar/r-6"])],
                ),
                site(
                    "edge-1",
                    "edge",
                    vec![map_node("edge-1-a", &["ar/r-7"]), map_node("edge-1-b", &[])],
                ),
                site("festival-grounds-north-entrance", "users", Vec::new()),
            ],
            links: vec![link],
            moments,
        },
        series,
        offers: vec![
            OfferCompliance {
                offer: "ar/ar-video".into(),
                bindings: 9,
                violation_seconds: 180.0,
                worst_violation: Some(BindingTime {
                    binding: "ar/ar-video-0265cdee60".into(),
                    seconds: 60.0,
                }),
                limit_seconds: 0.0,
                worst_limit: None,
                at_end: ComplianceCounts {
                    compliant: 6,
                    ..ComplianceCounts::default()
                },
            },
            OfferCompliance {
                offer: "ar/ar-stadium".into(),
                bindings: 9,
                violation_seconds: 120.0,
                worst_violation: Some(BindingTime {
                    binding: "ar/ar-stadium-8e9c197c7b".into(),
                    seconds: 60.0,
                }),
                limit_seconds: 8930.0,
                worst_limit: Some(BindingTime {
                    binding: "ar/ar-stadium-8e9c197c7b".into(),
                    seconds: 2338.0,
                }),
                at_end: ComplianceCounts {
                    compliant: 1,
                    limit: 5,
                    ..ComplianceCounts::default()
                },
            },
        ],
        expectations: Vec::new(),
        multicluster: None,
        chains: Vec::new(),
    }
}

fn frame() -> Frame {
    Frame {
        x_max: 2700.0,
        y_max: 1.0,
        left: 82.0,
    }
}

/// The `<a class="mark" ...>` element of the first mark of a type, up to its end.
fn mark_html<'a>(html: &'a str, kind: &str) -> &'a str {
    let at = html
        .find(&format!("data-kind=\"{kind}\""))
        .unwrap_or_else(|| panic!("no {kind} mark"));
    let start = html[..at].rfind("<a class=\"mark\"").unwrap();
    let end = at + html[at..].find("</a>").unwrap();
    &html[start..end]
}

#[test]
fn escapes() {
    assert_eq!(
        esc("<a href=\"x\">&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn nice_numbers() {
    assert_eq!(nice_step(10.0, 4.0), 2.5);
    assert_eq!(nice_step(7.0, 4.0), 2.0);
    assert_eq!(time_step(2700.0), 300.0);
    assert_eq!(time_label(2700.0), "45m");
    assert_eq!(time_label(5400.0), "1:30h");
    assert_eq!(latency_colour(30.0), "#d64545");
    assert_eq!(latency_colour(2.0), "#2f9e5b");
    assert_eq!(trim_number(0.05), "0.05");
    assert_eq!(trim_number(2.5), "2.5");
    assert_eq!(trim_number(10.0), "10");
    assert_eq!(duration_text(0.0), "—");
    assert_eq!(duration_text(0.2), "<1s");
    assert_eq!(duration_text(45.0), "45s");
    assert_eq!(duration_text(180.0), "3m 00s");
    assert_eq!(duration_text(8930.0), "2h 28m");
}

#[test]
fn failures_have_lanes_of_their_own() {
    assert_eq!(lane_of(EntryType::PodFailed), Some(Lane::PodFailures));
    assert_eq!(lane_of(EntryType::Unplaceable), Some(Lane::Unplaceable));
    for kind in [
        EntryType::NodeFailed,
        EntryType::NodeNotReady,
        EntryType::NodeRecovered,
    ] {
        assert_eq!(lane_of(kind), Some(Lane::Nodes), "{kind:?}");
    }
    assert_eq!(lane_of(EntryType::TaintEviction), Some(Lane::Evictions));
    assert_eq!(lane_of(EntryType::Evicted), Some(Lane::Evictions));
    assert_eq!(lane_of(EntryType::Planned), None);
    let html = render(&fixture());
    assert!(mark_html(&html, "PodFailed").contains("data-lane=\"pod-failures\""));
    assert!(mark_html(&html, "Unplaceable").contains("data-lane=\"unplaceable\""));
    assert!(mark_html(&html, "NodeNotReady").contains("data-lane=\"nodes\""));
    assert!(mark_html(&html, "TaintEviction").contains("data-lane=\"evictions\""));
    // Nothing but unplaceable pods in the unplaceable lane.
    let in_unplaceable = html.matches("data-lane=\"unplaceable\"").count();
    assert_eq!(in_unplaceable, 1, "{html}");
}

#[test]
fn marks_at_one_instant_are_counted_and_stand_side_by_side() {
    let r = fixture();
    let all = marks(&r, &frame());
    let at_13m: Vec<_> = all.iter().filter(|m| m.lane == Lane::Mitigations).collect();
    assert_eq!(at_13m.len(), 2, "{at_13m:?}");
    assert_eq!(
        (at_13m[0].kind, at_13m[0].entries.len()),
        (EntryType::Mitigated, 4)
    );
    assert_eq!(
        (at_13m[1].kind, at_13m[1].entries.len()),
        (EntryType::MitigationFailed, 1)
    );
    assert!(
        at_13m[1].x - at_13m[0].x >= 12.0,
        "side by side, not on top"
    );
    let html = render(&r);
    let mitigated = mark_html(&html, "Mitigated");
    assert!(mitigated.contains("data-count=\"4\""), "{mitigated}");
    assert!(
        mitigated.contains(">4</text>"),
        "the count shows: {mitigated}"
    );
    assert!(
        mitigated.contains("4 × Mitigated"),
        "the tooltip lists them: {mitigated}"
    );
    let failed = mark_html(&html, "MitigationFailed");
    assert!(failed.contains("data-count=\"1\"") && !failed.contains("class=\"count\""));
    let evictions = mark_html(&html, "TaintEviction");
    assert!(evictions.contains(">3</text>"), "{evictions}");
}

#[test]
fn dense_marks_never_overlap_and_lose_nothing() {
    let mut r = fixture();
    // A stream of 41 pods over five minutes, a burst of 8 at once, and a note.
    r.timeline.retain(|e| e.kind != EntryType::Note);
    for i in 0..41 {
        r.timeline.push(entry(
            10.0 + i as f64 * 1.5,
            EntryType::Applied,
            &format!("Pod f/c-{i}"),
            "created",
        ));
    }
    for i in 0..8 {
        r.timeline.push(entry(
            120.0,
            EntryType::Applied,
            &format!("Pod f/b-{i}"),
            "created",
        ));
    }
    r.timeline
        .push(entry(120.0, EntryType::Note, "Scenario s", "a burst"));
    r.timeline.push(entry(
        121.0,
        EntryType::ActionFailed,
        "Pod f/bad",
        "refused",
    ));
    r.timeline
        .sort_by(|a, b| a.at_seconds.total_cmp(&b.at_seconds));
    let f = Frame {
        x_max: 300.0,
        y_max: 1.0,
        left: 82.0,
    };
    let all = marks(&r, &f);
    for lane in Lane::ALL {
        let mut xs: Vec<f64> = all.iter().filter(|m| m.lane == lane).map(|m| m.x).collect();
        xs.sort_by(f64::total_cmp);
        for w in xs.windows(2) {
            assert!(
                w[1] - w[0] >= 12.0,
                "{lane:?}: marks at {} and {}",
                w[0],
                w[1]
            );
        }
    }
    let drawn: usize = all.iter().map(|m| m.entries.len()).sum();
    let expected = r
        .timeline
        .iter()
        .filter(|e| !e.detail && lane_of(e.kind).is_some())
        .count();
    assert_eq!(drawn, expected);
}

#[test]
fn a_mark_links_to_the_row_of_its_first_happening() {
    let r = fixture();
    let html = render(&r);
    let first = r
        .timeline
        .iter()
        .position(|e| e.kind == EntryType::Mitigated)
        .unwrap();
    assert!(mark_html(&html, "Mitigated").contains(&format!("href=\"#t-{first}\"")));
    assert!(html.contains(&format!("<tr id=\"t-{first}\" data-kind=\"Mitigated\">")));
    // Details have no row, and the rows keep their index in the report's timeline.
    let detail = r.timeline.iter().position(|e| e.detail).unwrap();
    assert!(!html.contains(&format!("id=\"t-{detail}\"")));
}

#[test]
fn the_table_by_offer_says_how_long_each_was_out_of_compliance() {
    let html = render(&fixture());
    let start = html
        .find("<table id=\"slo-table\">")
        .expect("the table by offer");
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    let video = table.find("data-offer=\"ar/ar-video\"").unwrap();
    let stadium = table.find("data-offer=\"ar/ar-stadium\"").unwrap();
    assert!(video < stadium, "the longest in Violation first");
    let row = &table[stadium..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("data-seconds=\"120\">2m 00s</td>"), "{row}");
    assert!(row.contains("data-seconds=\"8930\">2h 28m</td>"), "{row}");
    assert!(
        row.contains(">ar-stadium-8e9c197c7b</span> <span class=\"note\">1m 00s</span>"),
        "{row}"
    );
    assert!(
        row.contains("1 Compliant") && row.contains("5 Limit"),
        "{row}"
    );
    // No bindings at all: the section says why.
    let mut empty = fixture();
    empty.offers.clear();
    assert!(render(&empty).contains("No ConstraintPolicyBindings"));
}

#[test]
fn long_rows_are_folded_with_the_whole_text_at_hand() {
    let short = short_message(PLANNED).unwrap();
    assert_eq!(
        short,
        "planned onto edge-1-a (site edge-1) with 4 other pods: 4 bindings, rules 8 Compliant, 1 Limit"
    );
    let cut = short_message(&"word ".repeat(60)).unwrap();
    assert!(cut.ends_with('…') && cut.chars().count() <= 141, "{cut}");
    assert_eq!(short_message("Marking for deletion Pod ar/x"), None);
    let html = render(&fixture());
    let full = esc(PLANNED);
    assert!(html.contains(&format!(
        "<details class=\"more\"><summary><span class=\"short\">{}</span></summary><div class=\"full\">{full}</div></details>",
        esc(&short)
    )));
    // Once: the script makes the row's text its tooltip.
    assert_eq!(html.matches(&full).count(), 1);
    assert!(html.contains("<td class=\"m\">Marking for deletion</td>"));
}

#[test]
fn the_map_shows_each_moment_with_a_slider() {
    let r = fixture();
    let html = render(&r);
    assert!(html.contains(
        "<input type=\"range\" id=\"map-slider\" min=\"0\" max=\"3\" step=\"1\" value=\"3\""
    ));
    // The data the script reads: the moments as in the JSON report.
    let start = html
        .find("<script type=\"application/json\" id=\"map-data\">")
        .unwrap();
    let json = &html[start..];
    let json = &json[json.find('>').unwrap() + 1..json.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(data["moments"].as_array().map(Vec::len), Some(4));
    assert_eq!(data["moments"][2]["nodes"][0]["state"], "NotReady");
    assert_eq!(
        data["moments"][1]["links"]["edge-1 - metro-1"]["latency"],
        "12ms"
    );
    assert_eq!(data["bands"][0][0], 2.0);
    // The backup path, up at 13m but not at the end, is drawn hidden for the slider.
    assert!(html.contains(
        "<g class=\"link\" data-path=\"default/backup-1|edge-1|metro-1\" style=\"display:none\">"
    ));
    // The map is drawn at the end: node states from the last moment.
    assert!(html.contains("data-node=\"metro-1-a\" data-state=\"pods\""));
    assert!(html.contains("data-node=\"edge-1-b\" data-state=\"empty\""));
    // Room for the widest label a link takes: 12ms, though it shows 2ms at the end.
    assert!(html.contains(">2ms</text>"));
    // A long users' site name fits its box.
    assert!(html.contains(">festival-grounds-north-entrance</text>"));
}

#[test]
fn the_latency_chart_shows_what_the_bindings_measured_beside_the_link() {
    let html = render(&fixture());
    let start = html.find("id=\"chart-links\"").unwrap();
    let chart = &html[start..start + html[start..].find("</svg>").unwrap()];
    assert!(chart.contains("class=\"link-latency\" data-link=\"edge-1 - metro-1\""));
    // Two bindings with the same history: one line.
    assert_eq!(
        chart.matches("class=\"binding-latency\"").count(),
        1,
        "{chart}"
    );
    assert!(chart.contains("data-bindings=\"ar/b1 ar/b2\""));
    assert!(
        chart.contains("00:13:00 3ms"),
        "its values on hover: {chart}"
    );
    assert!(chart.contains("class=\"path-active\" data-path=\"default/backup-1\""));
    assert!(chart.contains("backup-1 active"));
    assert!(
        html.contains("ar-game-state ×2"),
        "the legend counts the bindings"
    );
}

#[test]
fn the_page_is_one_file() {
    let html = render(&fixture());
    assert!(!html.contains("src="));
    assert!(!html.contains("<link"));
    assert!(!html.contains("url("));
    assert!(!html.contains("https://"));
    // Scripts are inline: the page's one script and its JSON data.
    assert_eq!(html.matches("<script").count(), 2);
}
