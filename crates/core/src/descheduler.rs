//! The descheduler's decisions (design.md section 6): what to do about bindings in
//! Violation, as a pure function of what was observed.
//!
//! For each binding that has been in Violation **continuously** for at least its offer's
//! `grace` (`status.violatingSince` set; a binding in Error or Pending never has it, so
//! they are never acted on), by the offer's `violationPolicy`:
//!
//! - **Ignore**: one [`Action::Ignore`] per violation episode (an episode is identified by
//!   its `violatingSince`), never more.
//! - **Mediate**: [`Action::Mitigate`] when a network controller exists and the last
//!   mitigation (the binding's `lastMitigatedTimestamp`, or this process's own more recent
//!   attempt) is at least `mitigation_period` old. Never evicts. Without a controller:
//!   [`SkipReason::NoController`], once per episode.
//! - **Evict**: with a network controller, mitigate first (once per episode, subject to the
//!   mitigation period); once `mitigationGrace` has passed since that mitigation and the
//!   binding is still in Violation, evict. Without a controller, evict once the grace has
//!   passed.
//!
//! Eviction chooses **which pod**: each Pod target of the binding that can move (it runs,
//! is not being deleted, is not owned by a DaemonSet or a node, has not just been evicted,
//! and is at least `min_pod_age` old) is put to the `predict` callback (the runtime asks
//! the planner where its replacement would go with every other pod where it is). The
//! candidates whose re-placement restores compliance are kept and ordered: pods with a
//! controller owner first (a bare pod does not come back once evicted), then fewest rules
//! in Limit, then least cost, then name. None: [`SkipReason::NoCandidate`] with the
//! planner's reasons; a pod is never picked at random.
//!
//! Limits are per cycle: at most `per_cycle` evictions in all, `per_namespace` per
//! namespace and `per_offer` per offer; bindings are considered oldest violation first, so
//! the longest-suffering binding gets the slot. In dry-run nothing is mitigated or evicted:
//! the would-be actions come out as [`SkipReason::DryRunMitigation`] and
//! [`SkipReason::DryRun`], counted against the limits as if they happened.
//!
//! Skips are reported once per binding, violation episode and kind ([`Memory::reported`]),
//! so a binding held back by a limit for an hour gets one Event, not 360.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use edgeplane_api::{Compliance, ViolationPolicy};
use jiff::Timestamp;

use crate::evaluate::ClusterView;
use crate::planner::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, PendingPod, PlacedPod, PlanBinding, PlanInput,
    PlanNode, PlanOptions, PodKey,
};

/// `namespace/name` of a binding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BindingKey {
    pub namespace: String,
    pub name: String,
}

impl BindingKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> BindingKey {
        BindingKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How many evictions one cycle may make, and how old a pod must be to be evicted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Evictions per cycle, in all.
    pub per_cycle: usize,
    /// Evictions per cycle in one namespace.
    pub per_namespace: usize,
    /// Evictions per cycle for the bindings of one offer.
    pub per_offer: usize,
    /// Pods younger than this are not evicted.
    pub min_pod_age: Duration,
}

impl Default for Limits {
    /// 5 per cycle, 2 per namespace, 1 per offer, pods at least 60s old.
    fn default() -> Self {
        Limits {
            per_cycle: 5,
            per_namespace: 2,
            per_offer: 1,
            min_pod_age: Duration::from_secs(60),
        }
    }
}

/// What the descheduler reads from an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferFacts {
    pub policy: ViolationPolicy,
    pub grace: Duration,
    /// Defaults to the grace when the offer does not give it.
    pub mitigation_grace: Duration,
}

/// What the descheduler reads from a binding.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingFacts {
    pub key: BindingKey,
    /// The offer's name (same namespace).
    pub offer: String,
    pub compliance: Compliance,
    pub violating_since: Option<Timestamp>,
    pub last_mitigated: Option<Timestamp>,
    /// The Pod targets, in role order. Sites are not movable.
    pub pods: Vec<PodKey>,
}

impl BindingFacts {
    /// `namespace/offer`.
    pub fn offer_key(&self) -> String {
        format!("{}/{}", self.key.namespace, self.offer)
    }
}

/// Who owns a pod, as far as moving it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A controller that recreates it (ReplicaSet, StatefulSet, ...): it comes back and is
    /// planned again.
    Controller(String),
    /// No controller: once evicted it is gone.
    Bare,
    /// Recreated on the same node (DaemonSet) or not evictable at all (a mirror pod):
    /// moving it cannot help.
    Unmovable(String),
}

/// What the descheduler reads from a pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    pub key: PodKey,
    pub created: Option<Timestamp>,
    pub owner: Owner,
    /// Bound to a node and not finished.
    pub running: bool,
    /// Has a deletionTimestamp.
    pub terminating: bool,
}

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
}

/// Why a binding in Violation past its grace is left alone this cycle.
#[derive(Clone, Debug, PartialEq)]
pub enum SkipReason {
    /// Mediate, but there is no network controller to ask.
    NoController,
    /// Dry run: the mitigation that would have been asked for.
    DryRunMitigation,
    /// Dry run: the eviction that would have been made.
    DryRun { candidate: Candidate },
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
            SkipReason::DryRun { candidate } => write!(
                f,
                "dry run: would evict pod {}; the planner expects its replacement on {}",
                candidate.pod,
                candidate.prediction.describe()
            ),
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
        }
    }
}

/// `90s`, `2m`, `1h30m`.
fn short(d: Duration) -> String {
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
            | Action::Skip { binding, .. } => binding,
        }
    }
}

/// What the descheduler remembers between cycles (per process; a new leader starts empty
/// and relies on `lastMitigatedTimestamp`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    /// This process's last mitigation attempt per binding (its status write may not be in
    /// the cache yet), dry-run ones included.
    pub mitigated: BTreeMap<BindingKey, Timestamp>,
    /// What was reported, per binding, violation episode (`violatingSince`) and kind
    /// (`ignored`, a [`SkipReason::kind`], `eviction-blocked`).
    pub reported: BTreeSet<(BindingKey, Timestamp, String)>,
    /// Pods this process evicted, until they are gone.
    pub evicted: BTreeMap<PodKey, Timestamp>,
}

/// The report kind of [`Action::Ignore`].
pub const IGNORED: &str = "ignored";

impl Memory {
    /// Whether `kind` was reported for the binding's current episode.
    pub fn was_reported(&self, binding: &BindingKey, episode: Timestamp, kind: &str) -> bool {
        self.reported
            .contains(&(binding.clone(), episode, kind.to_string()))
    }

    pub fn report(&mut self, binding: &BindingKey, episode: Timestamp, kind: &str) {
        self.reported
            .insert((binding.clone(), episode, kind.to_string()));
    }

    /// Whether a binding can lead to an action or to a change of this memory: it is in
    /// Violation or still carries a violation episode, or this process remembers
    /// mitigating it. Facts of the other bindings (normally nearly all of them) change
    /// nothing a cycle decides, so they need not be read.
    /// `key` is asked for only when the answer depends on it (it allocates).
    pub fn concerns(
        &self,
        compliance: Compliance,
        violating_since: Option<Timestamp>,
        key: impl FnOnce() -> BindingKey,
    ) -> bool {
        compliance == Compliance::Violation
            || violating_since.is_some()
            || (!self.mitigated.is_empty() && self.mitigated.contains_key(&key()))
    }

    /// Forgets what no longer matters: reports of episodes that ended, mitigation attempts
    /// of bindings that are gone, evicted pods that are gone or terminating.
    pub fn prune(&mut self, bindings: &[BindingFacts], pods: &BTreeMap<PodKey, PodFacts>) {
        let episodes: BTreeMap<&BindingKey, Timestamp> = bindings
            .iter()
            .filter_map(|b| Some((&b.key, b.violating_since?)))
            .collect();
        self.reported
            .retain(|(b, episode, _)| episodes.get(b) == Some(episode));
        let known: BTreeSet<&BindingKey> = bindings.iter().map(|b| &b.key).collect();
        self.mitigated.retain(|b, _| known.contains(b));
        self.evicted
            .retain(|p, _| pods.get(p).is_some_and(|f| !f.terminating));
    }

    /// Records what the actions of a cycle imply: Ignore and Skip reported for the episode,
    /// Mitigate (and its dry-run stand-in) attempted at `now`.
    pub fn record(&mut self, actions: &[Action], bindings: &[BindingFacts], now: Timestamp) {
        let episodes: BTreeMap<&BindingKey, Timestamp> = bindings
            .iter()
            .filter_map(|b| Some((&b.key, b.violating_since?)))
            .collect();
        for action in actions {
            let binding = action.binding();
            match action {
                Action::Ignore { .. } => {
                    if let Some(e) = episodes.get(binding) {
                        self.report(binding, *e, IGNORED);
                    }
                }
                Action::Mitigate { .. } => {
                    self.mitigated.insert(binding.clone(), now);
                }
                Action::Skip { reason, .. } => {
                    if let Some(e) = episodes.get(binding) {
                        self.report(binding, *e, reason.kind());
                    }
                    if *reason == SkipReason::DryRunMitigation {
                        self.mitigated.insert(binding.clone(), now);
                    }
                }
                Action::Evict { .. } => {}
            }
        }
    }
}

/// Everything one cycle decides from.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub now: Timestamp,
    pub bindings: &'a [BindingFacts],
    /// By `namespace/name`.
    pub offers: &'a BTreeMap<String, OfferFacts>,
    pub pods: &'a BTreeMap<PodKey, PodFacts>,
    pub limits: &'a Limits,
    /// Whether a network controller can be asked this cycle.
    pub controller: bool,
    pub dry_run: bool,
    pub mitigation_period: Duration,
    pub memory: &'a Memory,
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

/// Evictions decided this cycle, for the limits.
#[derive(Default)]
struct Counts {
    total: usize,
    namespace: BTreeMap<String, usize>,
    offer: BTreeMap<String, usize>,
}

/// The actions of one cycle, in order. `predict` answers where the replacement of a pod
/// would go (the runtime runs the planner); it is asked only for bindings that reached
/// the eviction stage within the limits, and only about pods that may be moved.
pub fn decide(
    input: &Input<'_>,
    predict: &mut dyn FnMut(&BindingFacts, &PodKey) -> Predicted,
) -> Vec<Action> {
    let now = input.now;
    let mut order: Vec<(&BindingFacts, Timestamp, &OfferFacts)> = input
        .bindings
        .iter()
        .filter(|b| b.compliance == Compliance::Violation)
        .filter_map(|b| {
            let since = b.violating_since?;
            let offer = input.offers.get(&b.offer_key())?;
            (elapsed(since, now) >= offer.grace).then_some((b, since, offer))
        })
        .collect();
    order.sort_by(|a, b| (a.1, &a.0.key).cmp(&(b.1, &b.0.key)));

    let mut actions = Vec::new();
    let mut counts = Counts::default();
    for (binding, episode, offer) in order {
        let key = &binding.key;
        let reported = |kind: &str| input.memory.was_reported(key, episode, kind);
        let skip = |reason: SkipReason| -> Option<Action> {
            (!reported(reason.kind())).then(|| Action::Skip {
                binding: key.clone(),
                reason,
            })
        };
        let last_mitigated = match (binding.last_mitigated, input.memory.mitigated.get(key)) {
            (Some(a), Some(b)) => Some(a.max(*b)),
            (a, b) => a.or(b.copied()),
        };
        let may_mitigate =
            last_mitigated.is_none_or(|t| elapsed(t, now) >= input.mitigation_period);
        let mitigate = || {
            if input.dry_run {
                skip(SkipReason::DryRunMitigation)
            } else {
                Some(Action::Mitigate {
                    binding: key.clone(),
                })
            }
        };
        match offer.policy {
            ViolationPolicy::Ignore => {
                if !reported(IGNORED) {
                    actions.push(Action::Ignore {
                        binding: key.clone(),
                    });
                }
            }
            ViolationPolicy::Mediate => {
                if !input.controller {
                    actions.extend(skip(SkipReason::NoController));
                } else if may_mitigate {
                    actions.extend(mitigate());
                }
            }
            ViolationPolicy::Evict => {
                if input.controller {
                    // Mitigate once per episode, then give the network mitigationGrace.
                    match last_mitigated.filter(|t| *t >= episode) {
                        None => {
                            if may_mitigate {
                                actions.extend(mitigate());
                            }
                            continue;
                        }
                        Some(t) if elapsed(t, now) < offer.mitigation_grace => continue,
                        Some(_) => {}
                    }
                }
                if let Some(action) = evict(input, binding, episode, &mut counts, predict) {
                    actions.push(action);
                }
            }
        }
    }
    actions
}

/// The eviction stage of one binding: limits, movable pods, the planner's predictions.
fn evict(
    input: &Input<'_>,
    binding: &BindingFacts,
    episode: Timestamp,
    counts: &mut Counts,
    predict: &mut dyn FnMut(&BindingFacts, &PodKey) -> Predicted,
) -> Option<Action> {
    let key = &binding.key;
    let skip = |reason: SkipReason| -> Option<Action> {
        (!input.memory.was_reported(key, episode, reason.kind())).then(|| Action::Skip {
            binding: key.clone(),
            reason,
        })
    };
    let pods: Vec<Option<&PodFacts>> = binding.pods.iter().map(|p| input.pods.get(p)).collect();
    // Something is already moving (a target being deleted, one this process evicted):
    // wait for it to settle.
    if pods
        .iter()
        .flatten()
        .any(|p| p.terminating || input.memory.evicted.contains_key(&p.key))
    {
        return None;
    }
    let limits = input.limits;
    if counts.total >= limits.per_cycle {
        return skip(SkipReason::CycleLimit {
            limit: limits.per_cycle,
        });
    }
    let namespace = &key.namespace;
    if counts.namespace.get(namespace).copied().unwrap_or(0) >= limits.per_namespace {
        return skip(SkipReason::NamespaceLimit {
            namespace: namespace.clone(),
            limit: limits.per_namespace,
        });
    }
    let offer = binding.offer_key();
    if counts.offer.get(&offer).copied().unwrap_or(0) >= limits.per_offer {
        return skip(SkipReason::OfferLimit {
            offer,
            limit: limits.per_offer,
        });
    }
    let mut unmovable = Vec::new();
    let mut young = Vec::new();
    let mut movable = Vec::new();
    if binding.pods.is_empty() {
        unmovable.push("it has no Pod target (sites do not move)".to_string());
    }
    for (pod, facts) in binding.pods.iter().zip(&pods) {
        let Some(facts) = facts else {
            unmovable.push(format!("{pod} does not exist"));
            continue;
        };
        if !facts.running {
            unmovable.push(format!("{pod} is not running"));
            continue;
        }
        if let Owner::Unmovable(kind) = &facts.owner {
            unmovable.push(format!(
                "{pod} belongs to a {kind}, which recreates it in place"
            ));
            continue;
        }
        let age = facts
            .created
            .map(|c| elapsed(c, input.now))
            .unwrap_or(Duration::ZERO);
        if age < limits.min_pod_age {
            young.push((pod.clone(), age));
            continue;
        }
        movable.push(facts);
    }
    if movable.is_empty() {
        return if young.is_empty() {
            skip(SkipReason::Unmovable { why: unmovable })
        } else {
            skip(SkipReason::TooYoung {
                pods: young,
                min: limits.min_pod_age,
            })
        };
    }
    let mut candidates = Vec::new();
    let mut reasons = Vec::new();
    for facts in movable {
        match predict(binding, &facts.key) {
            Predicted::Restores(prediction) => candidates.push(Candidate {
                pod: facts.key.clone(),
                owned: matches!(facts.owner, Owner::Controller(_)),
                prediction,
            }),
            Predicted::Fails(reason) => reasons.push((facts.key.clone(), reason)),
        }
    }
    if candidates.is_empty() {
        return skip(SkipReason::NoCandidate { reasons });
    }
    candidates.sort_by(|a, b| {
        (!a.owned, a.prediction.limits)
            .cmp(&(!b.owned, b.prediction.limits))
            .then(a.prediction.cost.total_cmp(&b.prediction.cost))
            .then(a.pod.cmp(&b.pod))
    });
    counts.total += 1;
    *counts.namespace.entry(namespace.clone()).or_default() += 1;
    *counts.offer.entry(binding.offer_key()).or_default() += 1;
    if input.dry_run {
        let best = candidates.swap_remove(0);
        return skip(SkipReason::DryRun { candidate: best });
    }
    Some(Action::Evict {
        binding: key.clone(),
        candidates,
    })
}

/// The label kubelets put on their Node with the host's name (the gate-mode scheduler pins
/// a pod with it when the pod has its own required affinity terms).
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// A running pod's required node affinity without the pin the planning scheduler wrote
/// (`metadata.name In [node]`, or `kubernetes.io/hostname In [host]` ANDed into each term):
/// its replacement comes from the workload's template, which has no pin. Terms left empty
/// are dropped (the pod had no affinity of its own).
pub fn unpinned(terms: &[NodeSelectorTerm]) -> Vec<NodeSelectorTerm> {
    let pin = |r: &NodeRequirement, key: &str| {
        r.key == key && r.operator == NodeOperator::In && r.values.len() == 1
    };
    terms
        .iter()
        .map(|t| NodeSelectorTerm {
            match_expressions: t
                .match_expressions
                .iter()
                .filter(|r| !pin(r, HOSTNAME_LABEL))
                .cloned()
                .collect(),
            match_fields: t
                .match_fields
                .iter()
                .filter(|r| !pin(r, "metadata.name"))
                .cloned()
                .collect(),
        })
        .filter(|t| !t.match_expressions.is_empty() || !t.match_fields.is_empty())
        .collect()
}

/// What the planner is asked about one pod: the cluster with every other pod where it is.
#[derive(Clone, Debug)]
pub struct ReplacementQuestion<'a> {
    pub view: &'a ClusterView,
    pub nodes: Vec<PlanNode>,
    /// Every running pod but the one asked about.
    pub placed: Vec<PlacedPod>,
    /// The pod as its replacement would be (see [`unpinned`]).
    pub pod: PendingPod,
    /// Where it runs now.
    pub current_node: String,
    /// Every binding the pod is a target of (the one in Violation among them).
    pub bindings: Vec<PlanBinding>,
    /// The binding in Violation.
    pub binding: String,
}

/// Where the planner would put the replacement of a pod, and whether every binding of the
/// pod would then be at Limit or better. Rules the planner cannot judge (Error: an
/// external provider, a missing policy) are left out of the verdict.
pub fn predict_replacement(question: ReplacementQuestion<'_>, options: &PlanOptions) -> Predicted {
    let key = question.pod.key.clone();
    let input = PlanInput {
        view: question.view,
        nodes: question.nodes,
        placed: question.placed,
        pending: vec![question.pod],
        bindings: question.bindings,
    };
    let plan = crate::planner::plan(&input, options);
    let Some(node) = plan.node_of(&key).map(str::to_string) else {
        let reason = plan
            .unplaced
            .iter()
            .find(|u| u.pod == key)
            .map(|u| u.reason.clone())
            .unwrap_or_else(|| "the planner does not place it".into());
        return Predicted::Fails(format!("its replacement could not be placed: {reason}"));
    };
    if node == question.current_node {
        return Predicted::Fails(format!(
            "the planner would put its replacement back on {node}"
        ));
    }
    for b in &plan.bindings {
        for r in &b.rules {
            if matches!(r.compliance, Compliance::Violation | Compliance::Pending) {
                return Predicted::Fails(format!(
                    "on {node}, binding {} rule {} would be {}{}",
                    b.name,
                    r.rule,
                    r.compliance,
                    r.reason
                        .as_ref()
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    let graph = question.view.graph();
    let site = graph
        .node_id(&node)
        .map(|id| graph.site_name(graph.site_of(id)).to_string())
        .filter(|s| *s != node);
    let rules: Vec<String> = plan
        .bindings
        .iter()
        .filter(|b| b.name == question.binding)
        .flat_map(|b| &b.rules)
        .filter(|r| r.compliance != Compliance::Error)
        .map(|r| match &r.value {
            Some(v) => format!("{} {v} ({})", r.rule, r.compliance),
            None => format!("{} ({})", r.rule, r.compliance),
        })
        .collect();
    let note = rules.join(", ");
    Predicted::Restores(Prediction {
        node,
        site,
        limits: plan.summary.rules_limit,
        cost: plan.summary.cost,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2025-06-01T00:00:00Z";

    fn t(secs: i64) -> Timestamp {
        let base: Timestamp = T0.parse().unwrap_or_else(|e| panic!("{e}"));
        base.checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn offer(policy: ViolationPolicy) -> OfferFacts {
        OfferFacts {
            policy,
            grace: Duration::from_secs(60),
            mitigation_grace: Duration::from_secs(30),
        }
    }

    fn binding(name: &str, offer: &str, since: Option<i64>, pods: &[&str]) -> BindingFacts {
        BindingFacts {
            key: BindingKey::new("ar", name),
            offer: offer.into(),
            compliance: if since.is_some() {
                Compliance::Violation
            } else {
                Compliance::Compliant
            },
            violating_since: since.map(t),
            last_mitigated: None,
            pods: pods.iter().map(|p| PodKey::new("ar", *p)).collect(),
        }
    }

    fn pod(name: &str, created: i64, owner: Owner) -> PodFacts {
        PodFacts {
            key: PodKey::new("ar", name),
            created: Some(t(created)),
            owner,
            running: true,
            terminating: false,
        }
    }

    fn owned() -> Owner {
        Owner::Controller("ReplicaSet".into())
    }

    struct World {
        bindings: Vec<BindingFacts>,
        offers: BTreeMap<String, OfferFacts>,
        pods: BTreeMap<PodKey, PodFacts>,
        limits: Limits,
        controller: bool,
        dry_run: bool,
        memory: Memory,
        /// pod -> prediction (node, limits, cost) or failure.
        predictions: BTreeMap<String, Result<(String, usize, f64), String>>,
    }

    impl World {
        fn new(policy: ViolationPolicy) -> World {
            World {
                bindings: Vec::new(),
                offers: BTreeMap::from([("ar/o".to_string(), offer(policy))]),
                pods: BTreeMap::new(),
                limits: Limits::default(),
                controller: false,
                dry_run: false,
                memory: Memory::default(),
                predictions: BTreeMap::new(),
            }
        }

        fn pod(mut self, p: PodFacts) -> World {
            self.pods.insert(p.key.clone(), p);
            self
        }

        fn binding(mut self, b: BindingFacts) -> World {
            self.bindings.push(b);
            self
        }

        fn restores(mut self, pod: &str, node: &str, limits: usize, cost: f64) -> World {
            self.predictions
                .insert(pod.into(), Ok((node.into(), limits, cost)));
            self
        }

        fn fails(mut self, pod: &str, why: &str) -> World {
            self.predictions.insert(pod.into(), Err(why.into()));
            self
        }

        /// The actions at `now`, and the pods the planner was asked about.
        fn decide(&self, now: i64) -> (Vec<Action>, Vec<String>) {
            let mut asked = Vec::new();
            let input = Input {
                now: t(now),
                bindings: &self.bindings,
                offers: &self.offers,
                pods: &self.pods,
                limits: &self.limits,
                controller: self.controller,
                dry_run: self.dry_run,
                mitigation_period: Duration::from_secs(60),
                memory: &self.memory,
            };
            let actions = decide(&input, &mut |_, pod| {
                asked.push(pod.name.clone());
                match self.predictions.get(&pod.name) {
                    Some(Ok((node, limits, cost))) => Predicted::Restores(Prediction {
                        node: node.clone(),
                        site: None,
                        limits: *limits,
                        cost: *cost,
                        note: "latency 1ms (Compliant)".into(),
                    }),
                    Some(Err(why)) => Predicted::Fails(why.clone()),
                    None => Predicted::Fails("no prediction".into()),
                }
            });
            (actions, asked)
        }

        /// Runs a cycle and remembers it, as the runtime does.
        fn cycle(&mut self, now: i64) -> Vec<Action> {
            let (actions, _) = self.decide(now);
            self.memory.record(&actions, &self.bindings, t(now));
            actions
        }
    }

    fn key(name: &str) -> BindingKey {
        BindingKey::new("ar", name)
    }

    fn evicted(actions: &[Action]) -> Vec<(String, Vec<String>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Evict {
                    binding,
                    candidates,
                } => Some((
                    binding.name.clone(),
                    candidates.iter().map(|c| c.pod.name.clone()).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    fn skips(actions: &[Action]) -> Vec<(String, &'static str)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Skip { binding, reason } => Some((binding.name.clone(), reason.kind())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nothing_before_the_grace_and_never_on_error_or_pending() {
        for policy in [
            ViolationPolicy::Ignore,
            ViolationPolicy::Mediate,
            ViolationPolicy::Evict,
        ] {
            let mut w = World::new(policy)
                .pod(pod("p", -600, owned()))
                .binding(binding("b", "o", Some(0), &["p"]))
                .restores("p", "n2", 0, 0.0);
            w.controller = true;
            // 59s in Violation: shorter than the grace.
            assert_eq!(w.decide(59).0, vec![], "{policy:?}");
            // Error and Pending never have violatingSince; even a stale one is not acted on.
            for compliance in [Compliance::Error, Compliance::Pending, Compliance::Limit] {
                w.bindings[0].compliance = compliance;
                assert_eq!(w.decide(3600).0, vec![], "{policy:?} {compliance:?}");
            }
            // In Violation but without violatingSince: not (yet) in Violation for us.
            w.bindings[0].compliance = Compliance::Violation;
            w.bindings[0].violating_since = None;
            assert_eq!(w.decide(3600).0, vec![], "{policy:?}");
        }
    }

    #[test]
    fn a_binding_whose_offer_is_gone_is_left_alone() {
        let w = World::new(ViolationPolicy::Evict)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "gone", Some(0), &["p"]));
        assert_eq!(w.decide(3600).0, vec![]);
    }

    #[test]
    fn ignore_records_once_per_episode() {
        let mut w = World::new(ViolationPolicy::Ignore)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]));
        assert_eq!(w.cycle(60), vec![Action::Ignore { binding: key("b") }]);
        assert_eq!(w.cycle(70), vec![]);
        assert_eq!(w.cycle(7200), vec![]);
        // A new episode (the binding recovered and fell back into Violation) is reported.
        w.bindings[0].violating_since = Some(t(8000));
        w.memory.prune(&w.bindings, &w.pods);
        assert_eq!(w.cycle(8030), vec![]);
        assert_eq!(w.cycle(8060), vec![Action::Ignore { binding: key("b") }]);
    }

    #[test]
    fn mediate_mitigates_at_most_once_per_period_and_never_evicts() {
        let mut w = World::new(ViolationPolicy::Mediate)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]))
            .restores("p", "n2", 0, 0.0);
        w.controller = true;
        assert_eq!(w.cycle(60), vec![Action::Mitigate { binding: key("b") }]);
        // The status write is not in the cache yet: the process remembers.
        assert_eq!(w.cycle(70), vec![]);
        assert_eq!(w.cycle(119), vec![]);
        assert_eq!(w.cycle(120), vec![Action::Mitigate { binding: key("b") }]);
        // The status says a mitigation happened more recently (another replica before a
        // failover): it counts.
        w.memory = Memory::default();
        w.bindings[0].last_mitigated = Some(t(150));
        assert_eq!(w.cycle(180), vec![]);
        assert_eq!(w.cycle(210), vec![Action::Mitigate { binding: key("b") }]);
        // Hours later: still only mitigations.
        for now in (300..7200).step_by(10) {
            for a in w.cycle(now) {
                assert!(matches!(a, Action::Mitigate { .. }), "{a:?}");
            }
        }
    }

    #[test]
    fn mediate_without_a_controller_says_so_once() {
        let mut w = World::new(ViolationPolicy::Mediate)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]));
        assert_eq!(skips(&w.cycle(60)), [("b".to_string(), "no-controller")]);
        assert_eq!(w.cycle(70), vec![]);
    }

    #[test]
    fn evict_with_a_controller_mitigates_first_then_evicts_after_the_mitigation_grace() {
        let mut w = World::new(ViolationPolicy::Evict)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]))
            .restores("p", "n2", 0, 0.0);
        w.controller = true;
        assert_eq!(w.cycle(59), vec![]);
        assert_eq!(w.cycle(60), vec![Action::Mitigate { binding: key("b") }]);
        w.bindings[0].last_mitigated = Some(t(60));
        // mitigationGrace (30s) from lastMitigatedTimestamp; no second mitigation meanwhile.
        assert_eq!(w.decide(89).0, vec![]);
        let (actions, asked) = w.decide(90);
        assert_eq!(evicted(&actions), [("b".into(), vec!["p".to_string()])]);
        assert_eq!(asked, ["p"]);
        // A mitigation from an earlier episode does not count: mitigate again first (once the
        // period allows).
        w.memory = Memory::default();
        if let Some(o) = w.offers.get_mut("ar/o") {
            o.grace = Duration::from_secs(10);
        }
        w.bindings[0].last_mitigated = Some(t(95));
        w.bindings[0].violating_since = Some(t(100));
        assert_eq!(w.decide(110).0, vec![]);
        assert_eq!(w.decide(154).0, vec![]);
        assert_eq!(
            w.decide(155).0,
            vec![Action::Mitigate { binding: key("b") }]
        );
    }

    #[test]
    fn evict_without_a_controller_evicts_after_the_grace() {
        let w = World::new(ViolationPolicy::Evict)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]))
            .restores("p", "n2", 0, 0.0);
        assert_eq!(w.decide(59).0, vec![]);
        assert_eq!(
            evicted(&w.decide(60).0),
            [("b".into(), vec!["p".to_string()])]
        );
    }

    #[test]
    fn the_pod_the_planner_prefers_is_evicted_not_a_random_one() {
        // Three pods in the binding: one cannot restore it, two can; the one with fewer
        // Limits wins, then cost; bare pods come after owned ones.
        let w = World::new(ViolationPolicy::Evict)
            .pod(pod("a", -600, owned()))
            .pod(pod("b", -600, owned()))
            .pod(pod("c", -600, owned()))
            .pod(pod("d", -600, Owner::Bare))
            .binding(binding("x", "o", Some(0), &["a", "b", "c", "d"]))
            .fails(
                "a",
                "every feasible node puts binding x rule latency in Violation",
            )
            .restores("b", "n2", 1, 0.2)
            .restores("c", "n3", 1, 0.1)
            .restores("d", "n4", 0, 0.0);
        let (actions, asked) = w.decide(60);
        assert_eq!(asked, ["a", "b", "c", "d"]);
        assert_eq!(
            evicted(&actions),
            [("x".into(), vec!["c".into(), "b".into(), "d".into()])]
        );
        // Ties: by name.
        let w = World::new(ViolationPolicy::Evict)
            .pod(pod("b", -600, owned()))
            .pod(pod("a", -600, owned()))
            .binding(binding("x", "o", Some(0), &["b", "a"]))
            .restores("a", "n2", 0, 0.0)
            .restores("b", "n3", 0, 0.0);
        assert_eq!(
            evicted(&w.decide(60).0),
            [("x".into(), vec!["a".into(), "b".into()])]
        );
    }

    #[test]
    fn no_eviction_when_no_move_restores_compliance() {
        let mut w = World::new(ViolationPolicy::Evict)
            .pod(pod("a", -600, owned()))
            .binding(binding("x", "o", Some(0), &["a"]))
            .fails(
                "a",
                "every feasible node puts binding x rule latency in Violation",
            );
        let actions = w.cycle(60);
        assert_eq!(skips(&actions), [("x".to_string(), "no-candidate")]);
        let Action::Skip { reason, .. } = &actions[0] else {
            panic!("{actions:?}")
        };
        assert_eq!(
            reason.to_string(),
            "no pod of the binding can move to restore compliance, so none is evicted: ar/a: every feasible node puts binding x rule latency in Violation"
        );
        // Reported once per episode.
        assert_eq!(w.cycle(70), vec![]);
    }

    #[test]
    fn unmovable_pods_are_not_candidates() {
        let mut daemon = pod("ds", -600, Owner::Unmovable("DaemonSet".into()));
        daemon.running = true;
        let mut stopped = pod("stopped", -600, owned());
        stopped.running = false;
        let w = World::new(ViolationPolicy::Evict)
            .pod(daemon)
            .pod(stopped)
            .binding(binding("x", "o", Some(0), &["ds", "stopped", "missing"]));
        let (actions, asked) = w.decide(60);
        assert!(asked.is_empty());
        assert_eq!(skips(&actions), [("x".to_string(), "unmovable")]);
        let Action::Skip { reason, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(
            reason.to_string(),
            "no pod of the binding can be moved: ar/ds belongs to a DaemonSet, which recreates it in place; ar/stopped is not running; ar/missing does not exist"
        );
        // A binding of sites only.
        let w2 = World::new(ViolationPolicy::Evict).binding(binding("y", "o", Some(0), &[]));
        let (actions, _) = w2.decide(60);
        let Action::Skip { reason, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(
            reason.to_string(),
            "no pod of the binding can be moved: it has no Pod target (sites do not move)"
        );
    }

    #[test]
    fn young_pods_are_not_evicted() {
        let w = World::new(ViolationPolicy::Evict)
            .pod(pod("p", 30, owned()))
            .binding(binding("b", "o", Some(0), &["p"]))
            .restores("p", "n2", 0, 0.0);
        // At 60s the pod is 30s old: too young (min 60s); the planner is not asked.
        let (actions, asked) = w.decide(60);
        assert!(asked.is_empty());
        assert_eq!(skips(&actions), [("b".to_string(), "min-pod-age")]);
        let Action::Skip { reason, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(
            reason.to_string(),
            "not evicting: pods younger than the minimum age 1m: ar/p (30s)"
        );
        assert_eq!(evicted(&w.decide(90).0), [("b".into(), vec!["p".into()])]);
    }

    #[test]
    fn limits_per_cycle_namespace_and_offer() {
        let mut w = World::new(ViolationPolicy::Evict);
        w.offers
            .insert("ar/o2".into(), offer(ViolationPolicy::Evict));
        w.offers
            .insert("ar/o3".into(), offer(ViolationPolicy::Evict));
        w.offers
            .insert("web/o".into(), offer(ViolationPolicy::Evict));
        for (i, (ns, offer)) in [
            ("ar", "o"),
            ("ar", "o"),
            ("ar", "o2"),
            ("ar", "o3"),
            ("web", "o"),
        ]
        .iter()
        .enumerate()
        {
            let name = format!("p{i}");
            let mut p = pod(&name, -600, owned());
            p.key.namespace = ns.to_string();
            w.pods.insert(p.key.clone(), p);
            w.predictions.insert(name.clone(), Ok(("n".into(), 0, 0.0)));
            let mut b = binding(&format!("b{i}"), offer, Some(i as i64), &[]);
            b.key.namespace = ns.to_string();
            b.pods = vec![PodKey::new(*ns, &name)];
            w.bindings.push(b);
        }
        // Oldest violation first: b0 (ar/o) evicts; b1 (ar/o) hits the offer limit; b2
        // (ar/o2) evicts; b3 (ar/o3) hits the namespace limit (2 in ar); b4 (web) evicts.
        let (actions, asked) = w.decide(600);
        assert_eq!(asked, ["p0", "p2", "p4"]);
        assert_eq!(
            evicted(&actions),
            [
                ("b0".into(), vec!["p0".into()]),
                ("b2".into(), vec!["p2".into()]),
                ("b4".into(), vec!["p4".into()])
            ]
        );
        assert_eq!(
            skips(&actions),
            [
                ("b1".to_string(), "limit-offer"),
                ("b3".to_string(), "limit-namespace")
            ]
        );
        // Two per cycle in all.
        w.limits.per_cycle = 2;
        let (actions, _) = w.decide(600);
        assert_eq!(evicted(&actions).len(), 2);
        assert_eq!(
            skips(&actions),
            [
                ("b1".to_string(), "limit-offer"),
                ("b3".to_string(), "limit-cycle"),
                ("b4".to_string(), "limit-cycle")
            ]
        );
        let Action::Skip { reason, .. } = &actions[1] else {
            panic!()
        };
        assert_eq!(
            reason.to_string(),
            "not evicting: 1 evictions for offer ar/o this cycle already (--max-evictions-per-offer)"
        );
        // A binding that evicts nothing (no candidate) takes no slot.
        w.limits = Limits::default();
        w.predictions.insert("p0".into(), Err("nowhere".into()));
        let (actions, _) = w.decide(600);
        assert_eq!(
            evicted(&actions),
            [
                ("b1".into(), vec!["p1".into()]),
                ("b2".into(), vec!["p2".into()]),
                ("b4".into(), vec!["p4".into()])
            ]
        );
    }

    #[test]
    fn a_binding_held_back_by_a_limit_gets_its_turn_next_cycle() {
        let mut w = World::new(ViolationPolicy::Evict)
            .pod(pod("a", -600, owned()))
            .pod(pod("b", -600, owned()))
            .binding(binding("x", "o", Some(0), &["a"]))
            .binding(binding("y", "o", Some(1), &["b"]))
            .restores("a", "n", 0, 0.0)
            .restores("b", "n", 0, 0.0);
        let first = w.cycle(100);
        assert_eq!(evicted(&first).len(), 1);
        assert_eq!(skips(&first), [("y".to_string(), "limit-offer")]);
        // The eviction is under way (the runtime remembers the pod); y is not reported again.
        w.memory.evicted.insert(PodKey::new("ar", "a"), t(100));
        let second = w.cycle(110);
        assert_eq!(evicted(&second), [("y".into(), vec!["b".into()])]);
        assert!(skips(&second).is_empty());
    }

    #[test]
    fn pods_on_the_move_are_waited_for() {
        let mut w = World::new(ViolationPolicy::Evict)
            .pod(pod("a", -600, owned()))
            .binding(binding("x", "o", Some(0), &["a"]))
            .restores("a", "n", 0, 0.0);
        w.memory.evicted.insert(PodKey::new("ar", "a"), t(50));
        assert_eq!(w.decide(100).0, vec![]);
        w.memory.evicted.clear();
        if let Some(p) = w.pods.get_mut(&PodKey::new("ar", "a")) {
            p.terminating = true;
        }
        assert_eq!(w.decide(100).0, vec![]);
        // Pruning forgets evicted pods once they are gone or terminating.
        w.memory.evicted.insert(PodKey::new("ar", "a"), t(50));
        w.memory.prune(&w.bindings.clone(), &w.pods.clone());
        assert!(w.memory.evicted.is_empty());
    }

    #[test]
    fn dry_run_only_reports() {
        let mut w = World::new(ViolationPolicy::Evict)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]))
            .restores("p", "edge-2-a", 0, 0.0);
        w.controller = true;
        w.dry_run = true;
        // The mitigation is reported, not asked for; its grace is counted from then.
        assert_eq!(
            skips(&w.cycle(60)),
            [("b".to_string(), "dry-run-mitigation")]
        );
        assert_eq!(w.cycle(70), vec![]);
        let actions = w.cycle(90);
        assert_eq!(skips(&actions), [("b".to_string(), "dry-run")]);
        let Action::Skip { reason, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(
            reason.to_string(),
            "dry run: would evict pod ar/p; the planner expects its replacement on edge-2-a: latency 1ms (Compliant)"
        );
        assert_eq!(w.cycle(100), vec![]);
        // Mediate in dry run.
        let mut w = World::new(ViolationPolicy::Mediate)
            .pod(pod("p", -600, owned()))
            .binding(binding("b", "o", Some(0), &["p"]));
        w.controller = true;
        w.dry_run = true;
        assert_eq!(
            skips(&w.cycle(60)),
            [("b".to_string(), "dry-run-mitigation")]
        );
        assert_eq!(w.cycle(200), vec![]);
    }

    #[test]
    fn longest_violation_first() {
        let w = World::new(ViolationPolicy::Ignore)
            .binding(binding("late", "o", Some(50), &[]))
            .binding(binding("early", "o", Some(10), &[]))
            .binding(binding("a-same", "o", Some(50), &[]));
        let names: Vec<String> = w
            .decide(600)
            .0
            .iter()
            .map(|a| a.binding().name.clone())
            .collect();
        assert_eq!(names, ["early", "a-same", "late"]);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(short(Duration::from_secs(90)), "1m30s");
        assert_eq!(short(Duration::from_secs(3600)), "1h");
        assert_eq!(short(Duration::from_millis(250)), "250ms");
        assert_eq!(short(Duration::ZERO), "0ms");
    }

    mod replacement {
        use super::super::*;
        use crate::manifests::{Object, decode, parse_documents};
        use crate::planner::{PlanRule, pending_pod, plan_node};
        use edgeplane_api::{ConstraintPolicyRule, TargetRef};
        use k8s_openapi::api::core::v1::Node;

        const WORLD: &str = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium}, {name: metro}]
  links:
  - {from: stadium, to: edge-1, latency: 12ms}
  - {from: stadium, to: edge-2, latency: 1ms}
  - {from: edge-1, to: metro, latency: 3ms}
  - {from: edge-2, to: metro, latency: 3ms}
---
apiVersion: v1
kind: Node
metadata: {name: e1, labels: {topology.kubernetes.io/zone: edge-1}}
status: {allocatable: {cpu: "4", memory: 8Gi, pods: "10"}}
---
apiVersion: v1
kind: Node
metadata: {name: e2, labels: {topology.kubernetes.io/zone: edge-2}}
status: {allocatable: {cpu: "4", memory: 8Gi, pods: "10"}}
"#;

        fn world() -> (ClusterView, Vec<PlanNode>) {
            let docs = parse_documents("w.yaml", WORLD).unwrap_or_else(|e| panic!("{e}"));
            let mut topology = None;
            let mut nodes: Vec<Node> = Vec::new();
            for d in &docs {
                match decode(d).unwrap_or_else(|e| panic!("{e}")) {
                    Object::Topology(t) => topology = Some(*t),
                    Object::Node(n) => nodes.push(*n),
                    _ => {}
                }
            }
            let now = "2025-06-01T00:00:00Z"
                .parse()
                .unwrap_or_else(|e| panic!("{e}"));
            let view = ClusterView::build(topology.as_ref(), &nodes, &[], now)
                .unwrap_or_else(|e| panic!("{e}"));
            let plan_nodes = nodes
                .iter()
                .map(|n| plan_node(n).unwrap_or_else(|e| panic!("{e}")))
                .collect();
            (view, plan_nodes)
        }

        fn binding(limit: &str) -> PlanBinding {
            PlanBinding {
                name: "b".into(),
                offer: "ar/o".into(),
                targets: BTreeMap::from([
                    ("renderer".to_string(), TargetRef::pod("ar", "p")),
                    ("users".to_string(), TargetRef::site("stadium")),
                ]),
                rules: vec![PlanRule::builtin(
                    "near-users",
                    &ConstraintPolicyRule {
                        name: "latency".into(),
                        request: "2ms".into(),
                        limit: Some(limit.into()),
                    },
                )],
            }
        }

        fn question<'a>(
            view: &'a ClusterView,
            nodes: &[PlanNode],
            limit: &str,
        ) -> ReplacementQuestion<'a> {
            let spec = serde_json::from_value(serde_json::json!({
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["e1"]}]}]}}}
            }))
            .unwrap_or_else(|e| panic!("{e}"));
            let mut pod = pending_pod(PodKey::new("ar", "p"), BTreeMap::new(), &spec)
                .unwrap_or_else(|e| panic!("{e}"));
            pod.affinity = unpinned(&pod.affinity);
            ReplacementQuestion {
                view,
                nodes: nodes.to_vec(),
                placed: Vec::new(),
                pod,
                current_node: "e1".into(),
                bindings: vec![binding(limit)],
                binding: "b".into(),
            }
        }

        #[test]
        fn the_replacement_goes_where_the_binding_holds() {
            let (view, nodes) = world();
            let predicted =
                predict_replacement(question(&view, &nodes, "5ms"), &PlanOptions::default());
            let Predicted::Restores(p) = predicted else {
                panic!("{predicted:?}")
            };
            assert_eq!(p.node, "e2");
            assert_eq!(p.site.as_deref(), Some("edge-2"));
            assert_eq!(p.limits, 0);
            assert_eq!(p.describe(), "e2 (site edge-2): latency 1ms (Compliant)");
        }

        #[test]
        fn no_prediction_when_nowhere_holds() {
            let (view, nodes) = world();
            // The best node reaches the stadium in 1ms: a 500us limit holds nowhere.
            let mut q = question(&view, &nodes, "500us");
            q.bindings[0].rules = vec![PlanRule::builtin(
                "near-users",
                &ConstraintPolicyRule {
                    name: "latency".into(),
                    request: "200us".into(),
                    limit: Some("500us".into()),
                },
            )];
            let predicted = predict_replacement(q, &PlanOptions::default());
            let Predicted::Fails(why) = predicted else {
                panic!("{predicted:?}")
            };
            assert!(
                why.starts_with("its replacement could not be placed: every feasible node puts binding b rule latency in Violation"),
                "{why}"
            );
        }

        #[test]
        fn the_schedulers_pin_is_removed_and_the_pods_own_affinity_kept() {
            let req = |key: &str, values: &[&str]| NodeRequirement {
                key: key.into(),
                operator: NodeOperator::In,
                values: values.iter().map(|v| v.to_string()).collect(),
            };
            let pinned_alone = vec![NodeSelectorTerm {
                match_expressions: vec![],
                match_fields: vec![req("metadata.name", &["e1"])],
            }];
            assert_eq!(unpinned(&pinned_alone), vec![]);
            let own = vec![
                NodeSelectorTerm {
                    match_expressions: vec![req("tier", &["edge"]), req(HOSTNAME_LABEL, &["h1"])],
                    match_fields: vec![],
                },
                NodeSelectorTerm {
                    match_expressions: vec![req("zone", &["a", "b"]), req(HOSTNAME_LABEL, &["h1"])],
                    match_fields: vec![],
                },
            ];
            assert_eq!(
                unpinned(&own),
                vec![
                    NodeSelectorTerm {
                        match_expressions: vec![req("tier", &["edge"])],
                        match_fields: vec![],
                    },
                    NodeSelectorTerm {
                        match_expressions: vec![req("zone", &["a", "b"])],
                        match_fields: vec![],
                    },
                ]
            );
        }
    }
}
