//! The report of a run: the timeline, the summary, the workloads at the end, the map of
//! sites with the placements, and the series the charts are drawn from.
//!
//! ```json
//! {"scenario": "stadium-ar", "duration": "45m",
//!  "timeline": [{"at": "00:05:02", "type": "Planned", "object": "Pod default/ar-0", "message": "..."}],
//!  "summary": {"planRuns": 3, "podsPlaced": 12, "podsUnplaced": 0, "mitigations": 1, "evictions": 1,
//!              "bindings": {"Pending": 0, "Compliant": 9, "Limit": 1, "Violation": 0, "Error": 0},
//!              "wallMillis": 840}}
//! ```
//!
//! Fields beyond these are added after them (entries: `atSeconds`, `source`, `reason`,
//! `component`, `node`, `detail`; summary: pods failed and lost, node failures, ...).
//! Everything the summary says is computed generically from the timeline and the objects
//! at the end, so it is right whichever controllers ran.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use edgeplane_api::ActivatedPath;
use edgeplane_cluster::api::ApiServer;
use serde::Serialize;
use serde_json::Value;

use crate::journal::{ComplianceCounts, Series};
use crate::lite;
use crate::observer::{self, BINDINGS, NODES, PODS, TOPOLOGIES};
use crate::timeline::{Entry, EntryType, Source, clock_text};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: String,
    pub duration: String,
    pub timeline: Vec<ReportEntry>,
    pub summary: Summary,
    pub description: String,
    /// Components that ran (edgeplane's controllers once wired).
    pub components: Vec<String>,
    /// Replicated workloads at the end: desired replicas against pods that exist.
    pub workloads: Vec<WorkloadState>,
    pub map: SiteMap,
    pub series: Series,
    /// The scenario's expectations (`spec.expect`), judged against the summary.
    pub expectations: Vec<crate::scenario::ExpectationResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportEntry {
    pub at: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    pub object: String,
    pub message: String,
    pub at_seconds: f64,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub detail: bool,
}

impl From<&Entry> for ReportEntry {
    fn from(e: &Entry) -> Self {
        ReportEntry {
            at: clock_text(e.at),
            kind: e.kind,
            object: e.object.clone(),
            message: e.message.clone(),
            at_seconds: (e.at.as_secs_f64() * 1000.0).round() / 1000.0,
            source: e.source,
            reason: e.reason.clone(),
            component: e.component.clone(),
            node: e.node.clone(),
            detail: e.detail,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Runs of the planner: the scheduler's `PlanRun` Events (one per run).
    pub plan_runs: usize,
    /// Pods bound to a node and not failed at the end.
    pub pods_placed: usize,
    /// Pods not bound to a node at the end (and not being deleted).
    pub pods_unplaced: usize,
    pub mitigations: usize,
    pub evictions: usize,
    /// Bindings by `status.compliance` at the end (no status counts as Pending).
    pub bindings: ComplianceCounts,
    pub wall_millis: u64,
    /// Failed pods that still exist at the end.
    pub pods_failed: usize,
    /// Pods missing from replicated workloads, plus standalone pods that failed.
    pub pods_lost: usize,
    pub mitigation_failures: usize,
    pub node_failures: usize,
    pub scenario_events: usize,
    /// Scenario events the cluster refused.
    pub action_failures: usize,
    /// Simulated time covered, `HH:MM:SS`.
    pub simulated: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Desired replicas (for a DaemonSet, the nodes it should run on).
    pub replicas: usize,
    /// Pods of the workload that exist and have not failed.
    pub pods: usize,
    /// Of those, pods that are running.
    pub running: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SiteMap {
    pub sites: Vec<MapSite>,
    pub links: Vec<MapLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapSite {
    pub name: String,
    /// `regional`, `metro`, `edge`, `users`, ... (from the site's `tier` label, `kind:
    /// users` or `transit: false`; `sites` when unknown).
    pub tier: String,
    pub labels: BTreeMap<String, String>,
    pub nodes: Vec<MapNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapNode {
    pub name: String,
    pub ready: bool,
    /// `namespace/name` of the pods placed on it at the end.
    pub pods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MapLink {
    pub from: String,
    pub to: String,
    pub one_way: bool,
    pub latency: String,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// The link's latency changed during the run.
    pub changed: bool,
    /// For a path the network controller activated (from the topology's
    /// `status.activatedPaths`, not its spec): `catalogue/entry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activated: Option<String>,
    /// The bindings whose allocations keep an activated path up, `namespace/name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
}

/// What the objects say at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    pub pods_placed: usize,
    pub pods_unplaced: usize,
    pub pods_failed: usize,
    pub standalone_failed: usize,
    pub bindings: ComplianceCounts,
    pub workloads: Vec<WorkloadState>,
    pub map: SiteMap,
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Reads the end state from the API server, one object at a time (a large run holds
/// thousands of pods; none is kept parsed longer than needed).
pub fn final_state(api: &ApiServer) -> FinalState {
    let st = api.lock();
    let each = |storage: &str| st.store.range(storage, None, None);
    let mut out = FinalState::default();
    for b in each(BINDINGS) {
        out.bindings
            .add(lite::decode::<lite::Binding>(b.json()).compliance());
    }
    // Pods by state; pods per node; live pods per controller.
    let mut on_node: HashMap<String, Vec<String>> = HashMap::new();
    let mut live_by_owner: HashMap<String, (usize, usize)> = HashMap::new();
    for stored in each(PODS) {
        let p: lite::Pod = lite::decode(stored.json());
        let owner = p.metadata.controller();
        match p.status.phase.as_str() {
            "Failed" => {
                out.pods_failed += 1;
                if owner.is_none() {
                    out.standalone_failed += 1;
                }
                continue;
            }
            "Succeeded" => continue,
            _ => {}
        }
        let deleting = p.metadata.deleting();
        if p.spec.node_name.is_empty() {
            if !deleting {
                out.pods_unplaced += 1;
            }
        } else {
            if !deleting {
                out.pods_placed += 1;
            }
            on_node
                .entry(p.spec.node_name.clone())
                .or_default()
                .push(format!("{}/{}", p.metadata.namespace, p.metadata.name));
        }
        if let Some(o) = owner
            && !deleting
        {
            let e = live_by_owner.entry(o).or_default();
            e.0 += 1;
            if p.status.phase == "Running" {
                e.1 += 1;
            }
        }
    }
    // Workloads: Deployments count the pods of their ReplicaSets.
    let mut rs_to_deployment: HashMap<String, String> = HashMap::new();
    for rs in each("replicasets.apps") {
        let rs: lite::Workload = lite::decode(rs.json());
        if let Some(d) = rs.metadata.controller() {
            rs_to_deployment.insert(rs.metadata.uid.clone(), d);
        }
    }
    let mut by_workload: HashMap<String, (usize, usize)> = HashMap::new();
    for (owner, counts) in &live_by_owner {
        let top = rs_to_deployment.get(owner).unwrap_or(owner);
        let e = by_workload.entry(top.clone()).or_default();
        e.0 += counts.0;
        e.1 += counts.1;
    }
    let mut workloads = Vec::new();
    for (storage, kind) in [
        ("deployments.apps", "Deployment"),
        ("statefulsets.apps", "StatefulSet"),
        ("replicasets.apps", "ReplicaSet"),
        ("daemonsets.apps", "DaemonSet"),
    ] {
        for stored in each(storage) {
            let w: lite::Workload = lite::decode(stored.json());
            if (kind == "ReplicaSet" && w.metadata.controller().is_some()) || w.metadata.deleting()
            {
                continue;
            }
            let replicas = if kind == "DaemonSet" {
                w.status.desired_number_scheduled.unwrap_or(0)
            } else {
                w.spec.replicas.unwrap_or(1)
            }
            .max(0) as usize;
            let (live, running) = by_workload
                .get(&w.metadata.uid)
                .copied()
                .unwrap_or_default();
            workloads.push(WorkloadState {
                kind: kind.to_string(),
                namespace: w.metadata.namespace,
                name: w.metadata.name,
                replicas,
                pods: live,
                running,
            });
        }
    }
    workloads
        .sort_by(|a, b| (&a.namespace, &a.name, &a.kind).cmp(&(&b.namespace, &b.name, &b.kind)));
    out.workloads = workloads;
    let topology = each(TOPOLOGIES)
        .find(|t| t.key.1 == edgeplane_core::snapshot::DEFAULT_TOPOLOGY)
        .map(|t| t.value());
    let nodes: Vec<lite::Node> = each(NODES).map(|n| lite::decode(n.json())).collect();
    out.map = site_map(topology.as_ref(), &nodes, &on_node);
    out
}

fn site_map(
    topology: Option<&Value>,
    nodes: &[lite::Node],
    on_node: &HashMap<String, Vec<String>>,
) -> SiteMap {
    let site_label = topology
        .map(|t| s(t, "/spec/siteLabel"))
        .filter(|l| !l.is_empty())
        .unwrap_or(edgeplane_api::network::DEFAULT_SITE_LABEL)
        .to_string();
    let mut sites: BTreeMap<String, MapSite> = BTreeMap::new();
    let declared: Vec<Value> = topology
        .and_then(|t| t.pointer("/spec/sites"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for d in &declared {
        let labels: BTreeMap<String, String> = d
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let users = labels.get("kind").map(String::as_str) == Some("users")
            || d.get("transit").and_then(Value::as_bool) == Some(false);
        let tier = labels.get("tier").cloned().unwrap_or_else(|| {
            if users {
                "users".into()
            } else {
                "sites".into()
            }
        });
        let name = s(d, "/name").to_string();
        sites.insert(
            name.clone(),
            MapSite {
                name,
                tier,
                labels,
                nodes: Vec::new(),
            },
        );
    }
    for n in nodes {
        let name = n.metadata.name.clone();
        let site = n
            .metadata
            .labels
            .get(&site_label)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| name.clone());
        let mut pods = on_node.get(&name).cloned().unwrap_or_default();
        pods.sort();
        let entry = sites.entry(site.clone()).or_insert_with(|| MapSite {
            name: site.clone(),
            tier: "sites".into(),
            labels: BTreeMap::new(),
            nodes: Vec::new(),
        });
        entry.nodes.push(MapNode {
            name,
            ready: n.ready(),
            pods,
        });
    }
    for site in sites.values_mut() {
        site.nodes.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    }
    let links = topology
        .and_then(|t| t.pointer("/spec/links"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let latency = s(l, "/latency").to_string();
            MapLink {
                from: s(l, "/from").to_string(),
                to: s(l, "/to").to_string(),
                one_way: l.get("oneWay").and_then(Value::as_bool) == Some(true),
                latency_ms: observer::latency_ms(&latency).unwrap_or(0.0),
                latency,
                bandwidth: l
                    .get("bandwidth")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                changed: false,
                activated: None,
                bindings: Vec::new(),
            }
        })
        .chain(activated_paths(topology))
        .collect();
    let mut sites: Vec<MapSite> = sites.into_values().collect();
    sites.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    SiteMap { sites, links }
}

/// The paths the network controller has activated, as links of the map. Entries that do
/// not parse are left out: the map shows what it can.
fn activated_paths(topology: Option<&Value>) -> Vec<MapLink> {
    let paths = topology
        .and_then(|t| t.pointer("/status/activatedPaths"))
        .cloned()
        .and_then(|v| serde_json::from_value::<Vec<ActivatedPath>>(v).ok())
        .unwrap_or_default();
    paths
        .into_iter()
        .map(|p| MapLink {
            latency_ms: observer::latency_ms(&p.latency).unwrap_or(0.0),
            from: p.from,
            to: p.to,
            one_way: p.one_way,
            latency: p.latency,
            bandwidth: p.bandwidth,
            changed: false,
            activated: Some(format!("{}/{}", p.catalogue, p.entry)),
            bindings: p.bindings,
        })
        .collect()
}

/// Compares names with embedded numbers by value: `edge-2` before `edge-10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let ord = match (x, y) {
            ((true, p), (true, q)) => {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then(p.cmp(q))
            }
            ((_, p), (_, q)) => p.cmp(q),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

/// Everything a report is built from.
pub struct ReportInput<'a> {
    pub scenario: &'a crate::scenario::Scenario,
    pub entries: &'a [Entry],
    pub series: Series,
    pub end: FinalState,
    pub components: Vec<String>,
    pub simulated: Duration,
    pub wall: Duration,
}

pub fn build(input: ReportInput<'_>) -> Report {
    let entries = input.entries;
    let count = |k: EntryType| entries.iter().filter(|e| e.kind == k).count();
    let plan_runs = entries.iter().filter(|e| e.plan_run).count();
    let lost_from_workloads: usize = input
        .end
        .workloads
        .iter()
        .map(|w| w.replicas.saturating_sub(w.pods))
        .sum();
    let summary = Summary {
        plan_runs,
        pods_placed: input.end.pods_placed,
        pods_unplaced: input.end.pods_unplaced,
        mitigations: count(EntryType::Mitigated),
        // The descheduler reports an eviction on the pod and on its binding: one eviction.
        evictions: entries
            .iter()
            .filter(|e| e.kind == EntryType::Evicted && e.object.starts_with("Pod "))
            .count(),
        bindings: input.end.bindings,
        wall_millis: input.wall.as_millis() as u64,
        pods_failed: input.end.pods_failed,
        pods_lost: lost_from_workloads + input.end.standalone_failed,
        mitigation_failures: count(EntryType::MitigationFailed),
        node_failures: count(EntryType::NodeFailed),
        scenario_events: input.scenario.events.len(),
        action_failures: count(EntryType::ActionFailed),
        simulated: clock_text(input.simulated),
    };
    let mut map = input.end.map;
    // Activated paths have the ends of the links they stand beside, not their history.
    for link in map.links.iter_mut().filter(|l| l.activated.is_none()) {
        let label = observer::link_label(&link.from, &link.to, link.one_way);
        link.changed = input.series.links.get(&label).is_some_and(|l| l.len() > 1);
    }
    let expectations = input
        .scenario
        .expect
        .iter()
        .map(|e| e.judge(&summary))
        .collect();
    Report {
        scenario: input.scenario.name.clone(),
        duration: input.scenario.duration_text.clone(),
        timeline: entries.iter().map(ReportEntry::from).collect(),
        summary,
        description: input.scenario.description.clone(),
        components: input.components,
        workloads: input.end.workloads,
        map,
        series: input.series,
        expectations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec![
            "edge-10", "edge-2", "edge-1", "metro-1", "edge-2-b", "edge-2-a",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "edge-1", "edge-2", "edge-2-a", "edge-2-b", "edge-10", "metro-1"
            ]
        );
    }
}
