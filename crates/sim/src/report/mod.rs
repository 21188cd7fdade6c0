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
//! `component`, `node`, `detail`; summary: pods failed and lost, node failures, ...; the
//! map's moments; the series; compliance by offer).
//! Everything the summary says is computed generically from the timeline and the objects
//! at the end, so it is right whichever controllers ran.
//!
//! Files: `end` (the objects at the end), `map` (sites, links, activated paths),
//! `moments` (the map at each incident), `offers` (time in Violation and Limit by offer).

mod end;
mod map;
mod moments;
pub mod multicluster;
mod offers;

use std::time::Duration;

use serde::Serialize;

pub use end::{FinalState, final_state};
pub use map::{MapLink, MapNode, MapSite, SiteMap, natural_cmp};
pub use moments::{
    MAX_MOMENTS, Moment, MomentLane, MomentLink, MomentNode, NodeState, latency_text,
};
pub use offers::{BindingTime, OfferCompliance};

use crate::journal::{ComplianceCounts, Series};
use crate::observer;
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
    /// Time in Violation and in Limit by offer, the longest in Violation first.
    pub offers: Vec<OfferCompliance>,
    /// The scenario's expectations (`spec.expect`), judged against the summary.
    pub expectations: Vec<crate::scenario::ExpectationResult>,
    /// A scenario with `spec.clusters`: the members, the applications' placements and
    /// the members' workloads over time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multicluster: Option<multicluster::MultiClusterReport>,
    /// Service chains: each lane's hops' nodes, end-to-end latency and compliance
    /// whenever they changed, and the live migrations of its VM hops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<crate::chains::ChainRecord>,
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
    let end = input.simulated.as_secs_f64();
    map.moments = moments::moments(entries, &input.series, end);
    let offers = offers::offers(&input.series, end);
    let chains = input.series.chains.records();
    let expectations = input
        .scenario
        .expect
        .iter()
        .map(|e| e.judge(&summary))
        .collect();
    let mut series = input.series;
    // The latency chart draws the bindings whose measured latency changed.
    series.binding_latency.retain(|_, l| l.changed());
    Report {
        scenario: input.scenario.name.clone(),
        duration: input.scenario.duration_text.clone(),
        timeline: entries.iter().map(ReportEntry::from).collect(),
        summary,
        description: input.scenario.description.clone(),
        components: input.components,
        workloads: input.end.workloads,
        map,
        series,
        offers,
        expectations,
        multicluster: None,
        chains,
    }
}
