//! The map at each moment of a run: at every second in which something happened to nodes,
//! links, repairs or placements, and at the end, which nodes were failed or NotReady, how
//! many pods each node held, the latency of the links that changed and the paths the
//! network controller had activated. The HTML report's map slider shows them, so the
//! incident is on the map and not only its repair.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgeplane_core::values::Value as Quantity;
use serde::Serialize;

use crate::series::{ActivePath, NodePods, Series, sample_at, value_at};
use crate::timeline::{Entry, EntryType, clock_text};

/// At most this many moments (the end included); incidents go before plan runs.
pub const MAX_MOMENTS: usize = 60;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Moment {
    /// `HH:MM:SS`: the map as it is at the end of that second.
    pub at: String,
    pub at_seconds: f64,
    /// What happened then: the scenario's note, then the incidents by type.
    pub what: String,
    /// The index in the timeline of the first story entry of that second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<usize>,
    /// The nodes that held pods or were not Ready then; the others were Ready and empty.
    pub nodes: Vec<MomentNode>,
    /// The latency then of each link that changed during the run, by label
    /// (`edge-1 - metro-1`).
    pub links: BTreeMap<String, MomentLink>,
    /// The paths the network controller had activated then.
    pub paths: Vec<ActivePath>,
    /// The lanes of service chains then: ingress, the nodes of the hops, egress.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<MomentLane>,
}

/// A lane of a service chain at a moment, for the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MomentLane {
    /// `namespace/name` of the chain.
    pub chain: String,
    pub lane: usize,
    pub ingress: Option<String>,
    pub egress: Option<String>,
    /// The node of each hop, in order (`None` while a hop is not placed).
    pub nodes: Vec<Option<String>>,
    pub latency: Option<String>,
    pub compliance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MomentNode {
    pub name: String,
    pub state: NodeState,
    /// Pods placed on it and not being deleted.
    pub pods: usize,
    /// Pods being deleted that are still bound to it.
    pub terminating: usize,
}

/// A node's state as the map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NodeState {
    Ready,
    /// The scenario failed it and the cluster has not noticed yet (its Ready condition
    /// still says True until the node-monitor grace period runs out).
    Failed,
    /// Its Ready condition is not True (the node lifecycle controller marked it).
    NotReady,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MomentLink {
    pub latency: String,
    pub latency_ms: f64,
}

/// What happened in a second counts as a moment of the map: the incident types first, then
/// what the planner and the scenario did.
fn priority(kind: EntryType) -> Option<u8> {
    use EntryType::*;
    match kind {
        LinkChanged | NodeFailed | NodeNotReady | NodeRecovered | TaintEviction | PodFailed
        | Mitigated | MitigationFailed | Evicted | Migrated | ActionFailed | ClusterFailed
        | ClusterRecovered => Some(0),
        PlanRun | Unplaceable | Scaled | Deleted => Some(1),
        _ => None,
    }
}

/// The moments of a run that lasted `end` seconds.
pub fn moments(entries: &[Entry], series: &Series, end: f64) -> Vec<Moment> {
    // Second -> the story entries of that second that make it a moment.
    let mut seconds: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let lanes = lane_bindings(series);
    for (i, e) in entries.iter().enumerate() {
        let lane_changed =
            e.kind == EntryType::ComplianceChanged && lanes.contains(e.object.as_str());
        if !e.detail && (priority(e.kind).is_some() || lane_changed) {
            seconds.entry(e.at.as_secs()).or_default().push(i);
        }
    }
    let mut chosen: Vec<(u64, Vec<usize>)> = seconds.into_iter().collect();
    if chosen.len() >= MAX_MOMENTS {
        let rank = |ids: &Vec<usize>| {
            ids.iter()
                .filter_map(|&i| priority(entries[i].kind).or(Some(1)))
                .min()
                .unwrap_or(u8::MAX)
        };
        chosen.sort_by_key(|(second, ids)| (rank(ids), *second));
        chosen.truncate(MAX_MOMENTS - 1);
        chosen.sort_by_key(|(second, _)| *second);
    }
    let downs = node_downs(entries);
    let mut out: Vec<Moment> = chosen
        .into_iter()
        .filter(|(second, _)| (*second as f64) < end)
        .map(|(second, ids)| {
            // The state at the end of the second.
            let state_at = second as f64 + 0.999;
            let mut m = state(series, &downs, state_at);
            m.at = clock_text(std::time::Duration::from_secs(second));
            m.at_seconds = second as f64;
            m.what = what(entries, second, &ids);
            m.entry = entries
                .iter()
                .position(|e| !e.detail && e.at.as_secs() == second);
            m
        })
        .collect();
    let mut last = state(series, &downs, end);
    last.at = clock_text(std::time::Duration::from_secs_f64(end.max(0.0)));
    last.at_seconds = end;
    last.what = "the end of the run".into();
    out.push(last);
    out
}

/// The timeline objects of the chains' lane bindings (`<chain>-lane-<i>`): a lane that
/// changes compliance is a moment of the map, so a lane repaired without an incident of
/// its own (a live migration ending) is drawn where it runs now.
fn lane_bindings(series: &Series) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for chain in series.chains.chains.values() {
        for sample in &chain.history {
            for lane in &sample.lanes {
                let binding = edgeplane_core::chain::lane_binding_name(&chain.name, lane.lane);
                out.insert(format!("ConstraintPolicyBinding {binding}"));
            }
        }
    }
    out
}

/// Per node, when the scenario failed it (true) and recovered it (false).
fn node_downs(entries: &[Entry]) -> HashMap<String, Vec<(f64, bool)>> {
    let mut downs: HashMap<String, Vec<(f64, bool)>> = HashMap::new();
    for e in entries {
        let down = match e.kind {
            EntryType::NodeFailed => true,
            EntryType::NodeRecovered => false,
            _ => continue,
        };
        if let Some(node) = &e.node {
            downs
                .entry(node.clone())
                .or_default()
                .push((e.at.as_secs_f64(), down));
        }
    }
    downs
}

/// The map's state at `at` (what and when are filled in by the caller).
fn state(series: &Series, downs: &HashMap<String, Vec<(f64, bool)>>, at: f64) -> Moment {
    let names: BTreeSet<&String> = series
        .node_ready
        .keys()
        .chain(series.node_pods.keys())
        .collect();
    let mut nodes = Vec::new();
    for name in names {
        let ready = series
            .node_ready
            .get(name)
            .and_then(|s| value_at(s, at))
            .unwrap_or(true);
        let down = downs
            .get(name)
            .and_then(|d| value_at(d, at))
            .unwrap_or(false);
        let state = match (ready, down) {
            (false, _) => NodeState::NotReady,
            (true, true) => NodeState::Failed,
            (true, false) => NodeState::Ready,
        };
        let pods: NodePods = series
            .node_pods
            .get(name)
            .and_then(|s| sample_at(s, at))
            .unwrap_or_default();
        if state != NodeState::Ready || pods.placed > 0 || pods.terminating > 0 {
            nodes.push(MomentNode {
                name: name.clone(),
                state,
                pods: pods.placed,
                terminating: pods.terminating,
            });
        }
    }
    let links = series
        .links
        .iter()
        .filter(|(_, samples)| samples.len() > 1)
        .filter_map(|(label, samples)| {
            let ms = sample_at(samples, at)?.latency_ms;
            Some((
                label.clone(),
                MomentLink {
                    latency: latency_text(ms),
                    latency_ms: ms,
                },
            ))
        })
        .collect();
    let i = series.activated_paths.partition_point(|p| p.at <= at);
    let paths = if i > 0 {
        series.activated_paths[i - 1].paths.clone()
    } else {
        Vec::new()
    };
    let mut lanes = Vec::new();
    for chain in series.chains.chains.values() {
        for lane in crate::chains::lanes_at(chain, at).unwrap_or_default() {
            lanes.push(MomentLane {
                chain: chain.name.clone(),
                lane: lane.lane,
                ingress: chain.ingress.clone(),
                egress: chain.egress.clone(),
                nodes: lane.hops.iter().map(|h| h.node.clone()).collect(),
                latency: lane.latency.clone(),
                compliance: lane.compliance.clone(),
            });
        }
    }
    Moment {
        at: String::new(),
        at_seconds: at,
        what: String::new(),
        entry: None,
        nodes,
        links,
        paths,
        lanes,
    }
}

/// `the fibre degrades; LinkChanged Link edge-1 - metro-1; Mitigated ×4`.
fn what(entries: &[Entry], second: u64, ids: &[usize]) -> String {
    let mut parts: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == EntryType::Note && !e.detail && e.at.as_secs() == second)
        .map(|e| e.message.clone())
        .collect();
    let mut kinds: Vec<(EntryType, Vec<&str>)> = Vec::new();
    for &i in ids {
        let e = &entries[i];
        match kinds.iter_mut().find(|(k, _)| *k == e.kind) {
            Some((_, objects)) => objects.push(&e.object),
            None => kinds.push((e.kind, vec![&e.object])),
        }
    }
    for (kind, objects) in kinds {
        parts.push(match objects.as_slice() {
            [one] => format!("{} {one}", kind.as_str()),
            many => format!("{} ×{}", kind.as_str(), many.len()),
        });
    }
    parts.join("; ")
}

/// `12ms`, `1.5ms`, `200us`: a latency in milliseconds as durations are written.
pub fn latency_text(ms: f64) -> String {
    Quantity::duration_ns(ms * 1e6).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::series::PathsSample;
    use crate::timeline::Source;

    fn entry(at: f64, kind: EntryType, object: &str) -> Entry {
        Entry::new(
            Duration::from_secs_f64(at),
            kind,
            object,
            "m",
            Source::Driver,
        )
    }

    fn path(entry: &str) -> ActivePath {
        ActivePath {
            from: "edge-1".into(),
            to: "metro-1".into(),
            one_way: false,
            latency: "3ms".into(),
            latency_ms: 3.0,
            bandwidth: None,
            activated: entry.into(),
            bindings: Vec::new(),
        }
    }

    /// A node fails at 100 s, is NotReady at 150 s, its pod is deleted at 180 s and placed
    /// elsewhere at 182 s; a link degrades at 60 s and a backup path comes up at 61 s.
    fn incident() -> (Vec<Entry>, Series) {
        let s = |x: f64| Duration::from_secs_f64(x);
        let mut series = Series::default();
        for n in ["a", "b"] {
            series.node_ready_at(s(0.0), n, true);
        }
        let pods = |placed, terminating| NodePods {
            placed,
            terminating,
        };
        series.node_pods_at(s(2.0), "a", pods(1, 0));
        series.node_ready_at(s(150.0), "a", false);
        series.node_pods_at(s(180.0), "a", pods(0, 1));
        series.node_pods_at(s(182.2), "b", pods(1, 0));
        series.link_at(s(0.0), "edge-1 - metro-1", 2.0);
        series.link_at(s(60.0), "edge-1 - metro-1", 12.0);
        series.activated_paths.push(PathsSample {
            at: 61.0,
            paths: vec![path("default/backup-1")],
        });
        let mut failed = entry(100.0, EntryType::NodeFailed, "Node a").node("a");
        failed.message = "stopped responding".into();
        let entries = vec![
            entry(2.0, EntryType::PlanRun, "Lease l"),
            entry(60.0, EntryType::Note, "Scenario s"),
            entry(60.0, EntryType::LinkChanged, "Link edge-1 - metro-1"),
            entry(61.0, EntryType::Mitigated, "Binding x/b1"),
            entry(61.0, EntryType::Mitigated, "Binding x/b2"),
            entry(61.0, EntryType::ComplianceChanged, "Binding x/b1"),
            failed,
            entry(150.0, EntryType::NodeNotReady, "Node a"),
            entry(180.0, EntryType::TaintEviction, "Pod x/p"),
            entry(182.0, EntryType::PlanRun, "Lease l"),
            entry(182.0, EntryType::Applied, "Pod x/q").detail(true),
        ];
        (entries, series)
    }

    fn node<'a>(m: &'a Moment, name: &str) -> Option<&'a MomentNode> {
        m.nodes.iter().find(|n| n.name == name)
    }

    #[test]
    fn the_map_has_a_moment_per_incident_second_and_the_end() {
        let (entries, series) = incident();
        let ms = moments(&entries, &series, 300.0);
        let at: Vec<&str> = ms.iter().map(|m| m.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "00:00:02", "00:01:00", "00:01:01", "00:01:40", "00:02:30", "00:03:00", "00:03:02",
                "00:05:00"
            ]
        );
        assert_eq!(ms[1].what, "m; LinkChanged Link edge-1 - metro-1");
        assert_eq!(ms[2].what, "Mitigated ×2");
        assert_eq!(ms[2].entry, Some(3), "the first story entry of the second");
        assert_eq!(
            ms.last().map(|m| m.what.as_str()),
            Some("the end of the run")
        );
    }

    #[test]
    fn moments_show_the_incident_not_only_its_repair() {
        let (entries, series) = incident();
        let ms = moments(&entries, &series, 300.0);
        let at = |t: &str| ms.iter().find(|m| m.at == t).unwrap();
        // Before anything: node a holds a pod, the link is 2ms, nothing activated.
        let start = at("00:00:02");
        assert_eq!(
            node(start, "a").map(|n| (n.state, n.pods)),
            Some((NodeState::Ready, 1))
        );
        assert!(
            node(start, "b").is_none(),
            "ready and empty nodes are left out"
        );
        assert_eq!(start.links["edge-1 - metro-1"].latency, "2ms");
        assert!(start.paths.is_empty());
        // The link degrades, then the backup path comes up.
        assert_eq!(at("00:01:00").links["edge-1 - metro-1"].latency_ms, 12.0);
        assert!(at("00:01:00").paths.is_empty());
        assert_eq!(at("00:01:01").paths[0].activated, "default/backup-1");
        // The node: failed (unnoticed), NotReady, its pod terminating there and its
        // replacement on b (bound 0.2 s into the second).
        assert_eq!(
            node(at("00:01:40"), "a").map(|n| n.state),
            Some(NodeState::Failed)
        );
        assert_eq!(
            node(at("00:02:30"), "a").map(|n| n.state),
            Some(NodeState::NotReady)
        );
        let deleted = node(at("00:03:00"), "a").unwrap();
        assert_eq!((deleted.pods, deleted.terminating), (0, 1));
        assert_eq!(node(at("00:03:02"), "b").map(|n| n.pods), Some(1));
    }

    #[test]
    fn too_many_moments_keep_the_incidents() {
        let mut entries: Vec<Entry> = (0..100)
            .map(|i| entry(i as f64 * 10.0, EntryType::PlanRun, "Lease l"))
            .collect();
        entries.push(entry(995.0, EntryType::NodeFailed, "Node a").node("a"));
        let ms = moments(&entries, &Series::default(), 2000.0);
        assert_eq!(ms.len(), MAX_MOMENTS);
        assert!(ms.iter().any(|m| m.what.starts_with("NodeFailed")));
        assert!(ms.windows(2).all(|w| w[0].at_seconds < w[1].at_seconds));
    }

    #[test]
    fn a_lane_whose_compliance_changes_is_a_moment_other_bindings_are_not() {
        use crate::chains::{ChainRecord, ChainSample, LaneState};
        let mut series = Series::default();
        let lane = |compliance: &str| LaneState {
            lane: 1,
            hops: Vec::new(),
            latency: None,
            compliance: compliance.into(),
        };
        series.chains.chains.insert(
            "upf/up".into(),
            ChainRecord {
                name: "upf/up".into(),
                history: vec![
                    ChainSample {
                        at: 240.0,
                        lanes: vec![lane("Violation")],
                    },
                    ChainSample {
                        at: 363.0,
                        lanes: vec![lane("Compliant")],
                    },
                ],
                ..ChainRecord::default()
            },
        );
        let entries = vec![
            entry(
                200.0,
                EntryType::ComplianceChanged,
                "ConstraintPolicyBinding ar/x",
            ),
            entry(
                363.2,
                EntryType::ComplianceChanged,
                "ConstraintPolicyBinding upf/up-lane-1",
            ),
            entry(
                370.0,
                EntryType::Info,
                "ConstraintPolicyBinding upf/up-lane-1",
            ),
        ];
        let ms = moments(&entries, &series, 600.0);
        let at: Vec<&str> = ms.iter().map(|m| m.at.as_str()).collect();
        assert_eq!(at, ["00:06:03", "00:10:00"]);
        assert_eq!(ms[0].lanes[0].compliance, "Compliant");
        assert_eq!(
            ms[0].what,
            "ComplianceChanged ConstraintPolicyBinding upf/up-lane-1"
        );
    }

    #[test]
    fn latencies_read_as_written() {
        assert_eq!(latency_text(12.0), "12ms");
        assert_eq!(latency_text(1.5), "1.5ms");
        assert_eq!(latency_text(0.2), "200us");
    }
}
