//! What the descheduler decides about a binding ([`Action`]), and why it may leave one
//! alone ([`SkipReason`]).

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use super::capacity::{Demand, Replacement};
use super::facts::BindingKey;
use crate::planner::PodKey;

/// What the planner predicts for the replacement of one pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Predicted {
    /// The replacement would land on `node`, with every binding of the pod at Limit or
    /// better.
    Restores(Prediction),
    /// It would not (the planner's reason).
    Fails(String),
}

/// Where the replacement of a pod would go, and how its bindings would fare.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub node: String,
    /// The node's site, when it is not the node itself.
    pub site: Option<String>,
    /// Rules in Limit over the pod's bindings.
    pub limits: usize,
    /// Total normalized cost over the pod's bindings.
    pub cost: f64,
    /// How the binding in Violation would fare there (`latency 1ms (Compliant)`).
    pub note: String,
}

impl Prediction {
    /// `edge-2-a (site edge-2): latency 1ms (Compliant)`.
    pub fn describe(&self) -> String {
        let mut out = self.node.clone();
        if let Some(site) = &self.site {
            out.push_str(&format!(" (site {site})"));
        }
        if !self.note.is_empty() {
            out.push_str(": ");
            out.push_str(&self.note);
        }
        out
    }
}

/// A pod whose eviction would restore the binding, with the prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub pod: PodKey,
    pub owned: bool,
    pub prediction: Prediction,
    /// The uid of the controller that creates its replacement (none for a bare pod).
    pub controller: Option<String>,
    /// What the replacement asks of a node.
    pub demand: Demand,
    /// When the pod was created.
    pub created: Option<Timestamp>,
    /// The VMI it runs, when it is a virt-launcher pod: moved by live migration.
    pub vmi: Option<String>,
}

impl Candidate {
    /// The replacement to wait for once this pod is evicted at `now` (a bare pod has none).
    pub fn replacement(&self, now: Timestamp) -> Option<Replacement> {
        Some(Replacement {
            controller: self.controller.clone()?,
            node: self.prediction.node.clone(),
            demand: self.demand.clone(),
            evicted_at: now,
            evicted_created: self.created,
        })
    }
}

/// Why a binding in Violation past its grace is left alone this cycle.
#[derive(Clone, Debug, PartialEq)]
pub enum SkipReason {
    /// Mediate, but there is no network controller to ask.
    NoController,
    /// Dry run: the mitigation that would have been asked for.
    DryRunMitigation,
    /// Dry run: the eviction that would have been made.
    DryRun { candidate: Box<Candidate> },
    /// `per_cycle` evictions were made (or would be) this cycle.
    CycleLimit { limit: usize },
    /// `per_namespace` evictions in the binding's namespace this cycle.
    NamespaceLimit { namespace: String, limit: usize },
    /// `per_offer` evictions for the binding's offer this cycle.
    OfferLimit { offer: String, limit: usize },
    /// Every movable pod is younger than the minimum age.
    TooYoung {
        pods: Vec<(PodKey, Duration)>,
        min: Duration,
    },
    /// No Pod target can move (only sites, pods not running, DaemonSet or mirror pods).
    Unmovable { why: Vec<String> },
    /// The planner finds no pod whose move restores compliance.
    NoCandidate { reasons: Vec<(PodKey, String)> },
    /// A move would restore compliance, but the node the replacement would go to has no
    /// room left once the pods waiting at the gate and the replacements of other evictions
    /// are counted: evicting would leave the pod nowhere to run.
    NoRoom { reasons: Vec<(PodKey, String)> },
    /// Every pod that could move is a VM whose last live migration failed, and its backoff
    /// has not passed.
    MigrationBackoff {
        /// The VMI, its failed migration, why it failed, and when it may be tried again.
        vmis: Vec<BackingOff>,
    },
}

/// A VMI not migrated again yet because its last migration failed.
#[derive(Clone, Debug, PartialEq)]
pub struct BackingOff {
    pub vmi: PodKey,
    pub migration: String,
    pub reason: Option<String>,
    /// Consecutive failures.
    pub failures: u32,
    pub retry_at: Timestamp,
}

impl SkipReason {
    /// The metric label and the key of once-per-episode reporting.
    pub fn kind(&self) -> &'static str {
        match self {
            SkipReason::NoController => "no-controller",
            SkipReason::DryRunMitigation => "dry-run-mitigation",
            SkipReason::DryRun { .. } => "dry-run",
            SkipReason::CycleLimit { .. } => "limit-cycle",
            SkipReason::NamespaceLimit { .. } => "limit-namespace",
            SkipReason::OfferLimit { .. } => "limit-offer",
            SkipReason::TooYoung { .. } => "min-pod-age",
            SkipReason::Unmovable { .. } => "unmovable",
            SkipReason::NoCandidate { .. } => "no-candidate",
            SkipReason::NoRoom { .. } => "no-room",
            SkipReason::MigrationBackoff { .. } => "migration-backoff",
        }
    }

    /// What once-per-episode reporting remembers: the kind, and for a migration backoff
    /// the failed migrations too, so that each failure is reported once.
    pub fn report_key(&self) -> String {
        match self {
            SkipReason::MigrationBackoff { vmis } => {
                let failed: Vec<&str> = vmis.iter().map(|b| b.migration.as_str()).collect();
                format!("{} {}", self.kind(), failed.join(","))
            }
            _ => self.kind().to_string(),
        }
    }
}

impl fmt::Display for SkipReason {
    /// The sentence of the Event, after `binding B: `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoController => f.write_str(
                "violationPolicy Mediate, but no network controller is registered (a Service labelled network.edgeplane.io/controller: enabled, or --network-controller); nothing is done",
            ),
            SkipReason::DryRunMitigation => {
                f.write_str("dry run: would ask the network controller to mitigate")
            }
            SkipReason::DryRun { candidate } => match &candidate.vmi {
                Some(vmi) => write!(
                    f,
                    "dry run: would live-migrate VMI {}/{vmi} (pod {}) to {}",
                    candidate.pod.namespace,
                    candidate.pod,
                    candidate.prediction.describe()
                ),
                None => write!(
                    f,
                    "dry run: would evict pod {}; the planner expects its replacement on {}",
                    candidate.pod,
                    candidate.prediction.describe()
                ),
            },
            SkipReason::CycleLimit { limit } => write!(
                f,
                "not evicting: {limit} evictions this cycle already (--max-evictions-per-cycle)"
            ),
            SkipReason::NamespaceLimit { namespace, limit } => write!(
                f,
                "not evicting: {limit} evictions in namespace {namespace} this cycle already (--max-evictions-per-namespace)"
            ),
            SkipReason::OfferLimit { offer, limit } => write!(
                f,
                "not evicting: {limit} evictions for offer {offer} this cycle already (--max-evictions-per-offer)"
            ),
            SkipReason::TooYoung { pods, min } => {
                let list: Vec<String> = pods
                    .iter()
                    .map(|(p, age)| format!("{p} ({})", short(*age)))
                    .collect();
                write!(
                    f,
                    "not evicting: pods younger than the minimum age {}: {}",
                    short(*min),
                    list.join(", ")
                )
            }
            SkipReason::Unmovable { why } => {
                write!(f, "no pod of the binding can be moved: {}", why.join("; "))
            }
            SkipReason::NoCandidate { reasons } => {
                let list: Vec<String> = reasons.iter().map(|(p, r)| format!("{p}: {r}")).collect();
                write!(
                    f,
                    "no pod of the binding can move to restore compliance, so none is evicted: {}",
                    list.join("; ")
                )
            }
            SkipReason::NoRoom { reasons } => {
                let list: Vec<String> = reasons.iter().map(|(p, r)| format!("{p}: {r}")).collect();
                write!(
                    f,
                    "not evicting: the replacement would have nowhere to run, so the pod stays where it is: {}",
                    list.join("; ")
                )
            }
            SkipReason::MigrationBackoff { vmis } => {
                let list: Vec<String> = vmis
                    .iter()
                    .map(|b| {
                        format!(
                            "VMI {}: migration {} failed{} ({} in a row); not migrated again before {}",
                            b.vmi,
                            b.migration,
                            b.reason
                                .as_ref()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default(),
                            b.failures,
                            b.retry_at
                        )
                    })
                    .collect();
                write!(f, "not moving: {}", list.join("; "))
            }
        }
    }
}

/// `90s`, `2m`, `1h30m`.
pub(super) fn short(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// What to do about one binding.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// violationPolicy Ignore: record that the violation is ignored (once per episode).
    Ignore { binding: BindingKey },
    /// Ask the network controller to mitigate.
    Mitigate { binding: BindingKey },
    /// Evict one of `candidates`, tried in order (the next when a budget blocks one).
    Evict {
        binding: BindingKey,
        candidates: Vec<Candidate>,
    },
    /// Live-migrate the VMI of `candidate` (a virt-launcher pod) to the planner's node:
    /// a `VirtualMachineInstanceMigration` with `addedNodeSelector`.
    Migrate {
        binding: BindingKey,
        candidate: Box<Candidate>,
    },
    /// Leave it alone, and say why.
    Skip {
        binding: BindingKey,
        reason: SkipReason,
    },
}

impl Action {
    pub fn binding(&self) -> &BindingKey {
        match self {
            Action::Ignore { binding }
            | Action::Mitigate { binding }
            | Action::Evict { binding, .. }
            | Action::Migrate { binding, .. }
            | Action::Skip { binding, .. } => binding,
        }
    }
}
