//! The timeline: what happened during a run, one entry per happening, in causal order.
//!
//! Entries come from three sources:
//! - the **driver**: what the scenario did (Applied, Deleted, LinkChanged, Scaled,
//!   NodeFailed, NodeRecovered, Note, ActionFailed);
//! - **Kubernetes Events** (core/v1 and events.k8s.io/v1 are one resource) that
//!   components emit, mapped to entry types by [`EVENT_REASONS`], the one table to edit
//!   when a controller's reasons change;
//! - **object watches**: pods bound to nodes (Bound), pods that failed (PodFailed), and
//!   bindings whose `status.compliance` changed (ComplianceChanged).
//!
//! When a controller both emits an Event and changes an object that a watch also reports
//! (a `ComplianceChanged` Event next to the binding's status write), the two would be the
//! same happening twice; [`Timeline::push`] keeps the first of two entries with the same
//! type and object at the same instant of virtual time that come from different sources.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

/// What kind of happening an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum EntryType {
    // The driver (the scenario's events).
    Applied,
    Deleted,
    LinkChanged,
    Scaled,
    NodeFailed,
    NodeRecovered,
    /// The node lifecycle controller marked a silent node NotReady (after the node-monitor
    /// grace period) and tainted it `unreachable`.
    NodeNotReady,
    /// The taint manager deleted a pod whose toleration of a `NoExecute` taint ran out.
    TaintEviction,
    /// A member cluster stopped answering / answers again (scenarios with clusters).
    ClusterFailed,
    ClusterRecovered,
    /// A scenario event's `note`.
    Note,
    /// A scenario event that the cluster refused.
    ActionFailed,
    // Kubernetes Events from components (see EVENT_REASONS).
    /// A run of the planner (the scheduler's `PlanRun` Event on its Lease).
    PlanRun,
    Planned,
    Unplaceable,
    Mitigated,
    MitigationFailed,
    Evicted,
    /// The descheduler started a live migration of a service chain's VM hop instead of
    /// evicting it (its `MigrationStarted` Event on the lane's binding).
    Migrated,
    // Object watches.
    ComplianceChanged,
    /// A pod was bound to a node (placed, or re-placed after a failure or eviction).
    Bound,
    /// A pod failed (the kubelet rejected it, or it ended in error; a lost node's pods are
    /// deleted by the taint manager instead, `TaintEviction`).
    PodFailed,
    /// Any other Event (kubelet, scheduler stand-in, workload controllers).
    Info,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Applied => "Applied",
            EntryType::Deleted => "Deleted",
            EntryType::LinkChanged => "LinkChanged",
            EntryType::Scaled => "Scaled",
            EntryType::NodeFailed => "NodeFailed",
            EntryType::NodeRecovered => "NodeRecovered",
            EntryType::NodeNotReady => "NodeNotReady",
            EntryType::TaintEviction => "TaintEviction",
            EntryType::ClusterFailed => "ClusterFailed",
            EntryType::ClusterRecovered => "ClusterRecovered",
            EntryType::Note => "Note",
            EntryType::ActionFailed => "ActionFailed",
            EntryType::PlanRun => "PlanRun",
            EntryType::Planned => "Planned",
            EntryType::Unplaceable => "Unplaceable",
            EntryType::Mitigated => "Mitigated",
            EntryType::MitigationFailed => "MitigationFailed",
            EntryType::Evicted => "Evicted",
            EntryType::Migrated => "Migrated",
            EntryType::ComplianceChanged => "ComplianceChanged",
            EntryType::Bound => "Bound",
            EntryType::PodFailed => "PodFailed",
            EntryType::Info => "Info",
        }
    }
}

/// How an Event reason enters the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonMapping {
    /// The Event's `reason`.
    pub reason: &'static str,
    pub entry: EntryType,
    /// Printed only with `--verbose` (always in the reports).
    pub detail: bool,
    /// The Event marks a run of the planner: `summary.planRuns` counts these Events
    /// (the scheduler emits one per run).
    pub plan_run: bool,
}

const fn key(reason: &'static str, entry: EntryType) -> ReasonMapping {
    ReasonMapping {
        reason,
        entry,
        detail: false,
        plan_run: false,
    }
}

const fn plan(reason: &'static str, entry: EntryType) -> ReasonMapping {
    ReasonMapping {
        reason,
        entry,
        detail: false,
        plan_run: true,
    }
}

const fn detail(reason: &'static str, entry: EntryType) -> ReasonMapping {
    ReasonMapping {
        reason,
        entry,
        detail: true,
        plan_run: false,
    }
}

/// Kubernetes Event reasons and the timeline entries they become. Reasons not listed
/// become `Info` details. Aligning with a controller's reasons is one line here.
pub const EVENT_REASONS: &[ReasonMapping] = &[
    // The planning scheduler (gate or bind mode): one `PlanRun` on its Lease per run,
    // then what became of each pod.
    plan("PlanRun", EntryType::PlanRun),
    key("Planned", EntryType::Planned),
    key("Unplaceable", EntryType::Unplaceable),
    key("FailedPlanning", EntryType::Unplaceable),
    key("PathAllocated", EntryType::Info),
    detail("PathReleased", EntryType::Info),
    // The binding controller (the binding's status is watched as well; see Timeline::push).
    key("ComplianceChanged", EntryType::ComplianceChanged),
    // The descheduler (with the network controller it asks to mitigate). `Evicted` is
    // reported on the pod and on its binding; the observer keeps the pod's in the story.
    key("Mitigated", EntryType::Mitigated),
    key("MitigationFailed", EntryType::MitigationFailed),
    key("Evicted", EntryType::Evicted),
    // Lane repair: a VM hop live-migrated (docs/network-functions.md).
    key("MigrationStarted", EntryType::Migrated),
    key("Migrated", EntryType::Info),
    key("MigrationFailed", EntryType::Info),
    key("EvictionBlocked", EntryType::Info),
    key("ViolationIgnored", EntryType::Info),
    detail("EvictionSkipped", EntryType::Info),
    // The embedded cluster's node lifecycle controller and taint manager (docs/simulator.md,
    // "Node failures"). `NodeNotReady` is on the node and on each of its pods; the observer
    // keeps the node's in the story.
    key("NodeNotReady", EntryType::NodeNotReady),
    key("TaintManagerEviction", EntryType::TaintEviction),
    detail("PodGarbageCollected", EntryType::Info),
    // The embedded cluster's default-scheduler stand-in and kubelets.
    key("FailedScheduling", EntryType::Unplaceable),
    detail("Scheduled", EntryType::Info),
    detail("Started", EntryType::Info),
    detail("Killing", EntryType::Info),
    // The hub (scenarios with clusters): a member it stopped reaching, an application it
    // placed again, an input it cannot read.
    key("MemberNotReady", EntryType::Info),
    key("ApplicationMoved", EntryType::Info),
    key("HubInputInvalid", EntryType::Info),
];

/// The mapping of an Event reason.
pub fn map_reason(reason: &str) -> ReasonMapping {
    EVENT_REASONS
        .iter()
        .find(|m| m.reason == reason)
        .copied()
        .unwrap_or(ReasonMapping {
            reason: "",
            entry: EntryType::Info,
            detail: true,
            plan_run: false,
        })
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Driver,
    Event,
    Watch,
}

/// One happening.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Virtual time since the start of the run.
    pub at: Duration,
    pub kind: EntryType,
    /// `Pod ar/ar-render-0`, `Node edge-1-a`, `Link metro-1 - edge-1`.
    pub object: String,
    pub message: String,
    pub source: Source,
    /// The Event's reason, for entries from Events.
    pub reason: Option<String>,
    /// The component that reported it (Event source, or the manager of the write).
    pub component: Option<String>,
    /// The node of a placement, when there is one.
    pub node: Option<String>,
    /// Printed only with `--verbose`.
    pub detail: bool,
    /// Counts as a run of the planner (see ReasonMapping::plan_run).
    pub plan_run: bool,
}

impl Entry {
    pub fn new(
        at: Duration,
        kind: EntryType,
        object: impl Into<String>,
        message: impl Into<String>,
        source: Source,
    ) -> Self {
        Entry {
            at,
            kind,
            object: object.into(),
            message: message.into(),
            source,
            reason: None,
            component: None,
            node: None,
            detail: false,
            plan_run: false,
        }
    }

    pub fn detail(mut self, detail: bool) -> Self {
        self.detail = detail;
        self
    }

    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }
}

/// `HH:MM:SS` of elapsed virtual time (hours grow past 99 if they must).
pub fn clock_text(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// `message` with every RFC 3339 instant in it (`since 2026-12-07T14:27:13Z`, as the
/// descheduler's Events say) told as the run's elapsed time (`since 00:01:00`), so that a
/// timeline reads in one clock. `start` is the instant the run began; an instant before it
/// is left as it was.
pub fn relative_times(message: &str, start: jiff::Timestamp) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // An instant is `YYYY-MM-DDTHH:MM:SS`, fractional seconds optional, then `Z`.
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.')))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let instant = word
            .find('Z')
            .map(|z| &word[..=z])
            .filter(|w| w.len() >= 20 && w.as_bytes().get(10) == Some(&b'T'))
            .and_then(|w| w.parse::<jiff::Timestamp>().ok().map(|t| (w.len(), t)));
        match instant {
            Some((len, t)) if t >= start => {
                let elapsed = t.duration_since(start);
                out.push_str(&clock_text(Duration::from_secs(
                    elapsed.as_secs().max(0).unsigned_abs(),
                )));
                rest = &rest[len..];
            }
            _ => {
                let digits = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                out.push_str(&rest[..digits]);
                rest = &rest[digits..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The entries of a run, in the order they happened.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    entries: Vec<Entry>,
    /// (type, object) -> (instant, source, index) of the last entry, for de-duplication.
    last: HashMap<(EntryType, String), (Duration, Source)>,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry unless the same happening was already recorded from another source
    /// at the same instant. Returns whether it was added.
    pub fn push(&mut self, entry: Entry) -> bool {
        let k = (entry.kind, entry.object.clone());
        if let Some((at, source)) = self.last.get(&k)
            && *at == entry.at
            && *source != entry.source
            && entry.kind != EntryType::Info
        {
            return false;
        }
        self.last.insert(k, (entry.at, entry.source));
        self.entries.push(entry);
        true
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    pub fn count(&self, kind: EntryType) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }
}

#[cfg(test)]
mod relative_time_tests {
    use super::*;

    #[test]
    fn instants_become_elapsed_run_time() {
        let start: jiff::Timestamp = "2026-12-07T14:27:13Z".parse().expect("an instant");
        assert_eq!(
            relative_times(
                "in Violation since 2026-12-07T14:28:13Z: latency 12ms; seen 2026-12-07T15:27:13.5Z",
                start
            ),
            "in Violation since 00:01:00: latency 12ms; seen 01:00:00"
        );
        // Before the run, not an instant, or numbers alone: unchanged.
        for text in [
            "since 2020-01-01T00:00:00Z",
            "2026-12-07 14:28:13",
            "latency 12ms over 3 links, 2026 sites",
            "12:00",
            "",
        ] {
            assert_eq!(relative_times(text, start), text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_to_types() {
        assert_eq!(map_reason("Planned").entry, EntryType::Planned);
        assert!(!map_reason("Planned").plan_run);
        assert_eq!(map_reason("PlanRun").entry, EntryType::PlanRun);
        assert!(map_reason("PlanRun").plan_run);
        assert_eq!(map_reason("FailedPlanning").entry, EntryType::Unplaceable);
        assert_eq!(map_reason("Evicted").entry, EntryType::Evicted);
        assert_eq!(map_reason("Started").entry, EntryType::Info);
        assert!(map_reason("Started").detail);
        let other = map_reason("SomethingElse");
        assert_eq!(other.entry, EntryType::Info);
        assert!(other.detail && !other.plan_run);
        // One row per reason.
        let mut reasons: Vec<&str> = EVENT_REASONS.iter().map(|m| m.reason).collect();
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), EVENT_REASONS.len());
    }

    #[test]
    fn the_same_happening_from_two_sources_is_kept_once() {
        let mut t = Timeline::new();
        let at = Duration::from_secs(65);
        let e = |source| {
            Entry::new(
                at,
                EntryType::ComplianceChanged,
                "ConstraintPolicyBinding ar/b",
                "x",
                source,
            )
        };
        assert!(t.push(e(Source::Watch)));
        assert!(!t.push(e(Source::Event)));
        // The same source twice is two happenings.
        assert!(t.push(e(Source::Watch)));
        // Later, it is news again.
        let mut later = e(Source::Event);
        later.at = Duration::from_secs(66);
        assert!(t.push(later));
        assert_eq!(t.count(EntryType::ComplianceChanged), 3);
    }

    #[test]
    fn clock_text_is_hh_mm_ss() {
        assert_eq!(clock_text(Duration::from_secs(302)), "00:05:02");
        assert_eq!(clock_text(Duration::from_millis(3_600_999)), "01:00:00");
        assert_eq!(clock_text(Duration::from_secs(100 * 3600)), "100:00:00");
    }
}
