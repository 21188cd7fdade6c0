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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use edgeplane_cluster::api::ApiServer;
use serde::Serialize;
use serde_json::Value;

use crate::journal::{ComplianceCounts, Series};
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
    /// Distinct instants at which the planner reported (Planned / Unplaceable Events).
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

fn controller_uid(v: &Value) -> Option<String> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid").and_then(Value::as_str))
        .map(str::to_string)
}

/// Reads the end state from the API server.
pub fn final_state(api: &ApiServer) -> FinalState {
    let st = api.lock();
    let all = |storage: &str| -> Vec<Value> {
        st.store
            .range(storage, None, None)
            .map(|o| o.value())
            .collect()
    };
    let pods = all(PODS);
    let nodes = all(NODES);
    let bindings = all(BINDINGS);
    let topology = all(TOPOLOGIES)
        .into_iter()
        .find(|t| s(t, "/metadata/name") == edgeplane_core::snapshot::DEFAULT_TOPOLOGY);
    let mut out = FinalState::default();
    for b in &bindings {
        out.bindings.add(s(b, "/status/compliance"));
    }
    // Pods by state; pods per node; live pods per controller.
    let mut on_node: HashMap<String, Vec<String>> = HashMap::new();
    let mut live_by_owner: HashMap<String, (usize, usize)> = HashMap::new();
    for p in &pods {
        let phase = s(p, "/status/phase");
        let node = s(p, "/spec/nodeName");
        let deleting = p
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let owner = controller_uid(p);
        match phase {
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
        if node.is_empty() {
            if !deleting {
                out.pods_unplaced += 1;
            }
        } else {
            out.pods_placed += 1;
            on_node.entry(node.to_string()).or_default().push(format!(
                "{}/{}",
                s(p, "/metadata/namespace"),
                s(p, "/metadata/name")
            ));
        }
        if let Some(o) = owner
            && !deleting
        {
            let e = live_by_owner.entry(o).or_default();
            e.0 += 1;
            if phase == "Running" {
                e.1 += 1;
            }
        }
    }
    // Workloads: Deployments count the pods of their ReplicaSets.
    let replicasets = all("replicasets.apps");
    let mut rs_to_deployment: HashMap<String, String> = HashMap::new();
    for rs in &replicasets {
        if let Some(d) = controller_uid(rs) {
            rs_to_deployment.insert(s(rs, "/metadata/uid").to_string(), d);
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
        for w in all(storage) {
            if kind == "ReplicaSet" && controller_uid(&w).is_some() {
                continue;
            }
            if w.pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            {
                continue;
            }
            let replicas = if kind == "DaemonSet" {
                w.pointer("/status/desiredNumberScheduled")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            } else {
                w.pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1)
            } as usize;
            let (live, running) = by_workload
                .get(s(&w, "/metadata/uid"))
                .copied()
                .unwrap_or_default();
            workloads.push(WorkloadState {
                kind: kind.to_string(),
                namespace: s(&w, "/metadata/namespace").to_string(),
                name: s(&w, "/metadata/name").to_string(),
                replicas,
                pods: live,
                running,
            });
        }
    }
    workloads
        .sort_by(|a, b| (&a.namespace, &a.name, &a.kind).cmp(&(&b.namespace, &b.name, &b.kind)));
    out.workloads = workloads;
    out.map = site_map(topology.as_ref(), &nodes, &on_node);
    out
}

fn site_map(
    topology: Option<&Value>,
    nodes: &[Value],
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
        let name = s(n, "/metadata/name").to_string();
        let site = n
            .pointer("/metadata/labels")
            .and_then(|l| l.get(&site_label))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .unwrap_or(&name)
            .to_string();
        let ready = n
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
            });
        let mut pods = on_node.get(&name).cloned().unwrap_or_default();
        pods.sort();
        let entry = sites.entry(site.clone()).or_insert_with(|| MapSite {
            name: site.clone(),
            tier: "sites".into(),
            labels: BTreeMap::new(),
            nodes: Vec::new(),
        });
        entry.nodes.push(MapNode { name, ready, pods });
    }
    for site in sites.values_mut() {
        site.nodes.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    }
    let links = topology
        .and_then(|t| t.pointer("/spec/links"))
        .and_then(Value::as_array)
        .cloned()
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
            }
        })
        .collect();
    let mut sites: Vec<MapSite> = sites.into_values().collect();
    sites.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    SiteMap { sites, links }
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
    let plan_runs = entries
        .iter()
        .filter(|e| e.plan_run)
        .map(|e| e.at)
        .collect::<BTreeSet<_>>()
        .len();
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
        evictions: count(EntryType::Evicted),
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
    for link in &mut map.links {
        let label = observer::link_label(&link.from, &link.to, link.one_way);
        link.changed = input.series.links.get(&label).is_some_and(|l| l.len() > 1);
    }
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
