//! One cycle's decisions: which bindings are acted on, in what order, within the limits.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::{Compliance, ViolationPolicy};
use jiff::Timestamp;

use super::action::{Action, Candidate, Predicted, SkipReason};
use super::facts::{BindingFacts, Limits, OfferFacts, Owner, PodFacts};
use super::memory::{IGNORED, Memory};
use crate::planner::PodKey;

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
