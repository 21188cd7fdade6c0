//! One cycle's decisions: which bindings are acted on, in what order, within the limits.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::{Compliance, ViolationPolicy};
use jiff::Timestamp;

use super::action::{Action, BackingOff, Candidate, Predicted, SkipReason};
use super::capacity::{Capacity, Ledger, Reservation};
use super::facts::{BindingFacts, Limits, OfferFacts, Owner, PodFacts};
use super::memory::{IGNORED, Memory};
use super::migration::{MigrationFacts, MigrationState, migration_state};
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
    /// The cluster's `VirtualMachineInstanceMigration`s (of the VMIs of `pods`, at least).
    pub migrations: &'a [MigrationFacts],
}

impl Input<'_> {
    /// What the migrations of the VMI a launcher pod runs allow now.
    fn migration_state(&self, pod: &PodFacts) -> Option<MigrationState> {
        let vmi = PodKey::new(&pod.key.namespace, pod.vmi.as_ref()?);
        let ours = self
            .memory
            .migrating
            .get(&vmi)
            .map(|(name, _)| name.as_str());
        Some(migration_state(&vmi, self.migrations, ours, self.now))
    }
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

/// What the decisions ask of the world; the runtime answers from its caches and with the
/// planner. Both are asked only for bindings that reached the eviction stage within the
/// limits, and only about pods that may be moved.
pub trait Questions {
    /// The room in the cluster ([`Capacity`]); asked at most once per cycle.
    fn capacity(&mut self) -> Capacity;
    /// Where the planner would put the replacement of `pod` (a target of `binding`), with
    /// every other pod where it is and the room of `held` taken.
    fn predict(&mut self, binding: &BindingFacts, pod: &PodKey, held: &[Reservation]) -> Predicted;
}

/// Evictions decided this cycle, for the limits.
#[derive(Default)]
struct Counts {
    total: usize,
    namespace: BTreeMap<String, usize>,
    offer: BTreeMap<String, usize>,
}

/// The actions of one cycle, in order.
pub fn decide(input: &Input<'_>, questions: &mut dyn Questions) -> Vec<Action> {
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
    // The room for replacements: built the first time a binding reaches the predictions.
    let mut ledger = None;
    for (binding, episode, offer) in order {
        let key = &binding.key;
        let reported = |kind: &str| input.memory.was_reported(key, episode, kind);
        let skip = |reason: SkipReason| -> Option<Action> {
            (!reported(&reason.report_key())).then(|| Action::Skip {
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
                if let Some(action) =
                    evict(input, binding, episode, &mut counts, &mut ledger, questions)
                {
                    actions.push(action);
                }
            }
        }
    }
    actions
}

/// `no room for its replacement on edge-2-a (site edge-2): it needs 2 cpu and ...`.
fn no_room_on(target: &str, why: &super::capacity::NoFit) -> String {
    let node = target.split(':').next().unwrap_or(target);
    format!("no room for its replacement on {node}: {why}")
}

/// The eviction stage of one binding: limits, movable pods, the planner's predictions, the
/// room for the replacement.
fn evict(
    input: &Input<'_>,
    binding: &BindingFacts,
    episode: Timestamp,
    counts: &mut Counts,
    ledger: &mut Option<Ledger>,
    questions: &mut dyn Questions,
) -> Option<Action> {
    let key = &binding.key;
    let skip = |reason: SkipReason| -> Option<Action> {
        (!input
            .memory
            .was_reported(key, episode, &reason.report_key()))
        .then(|| Action::Skip {
            binding: key.clone(),
            reason,
        })
    };
    let pods: Vec<Option<&PodFacts>> = binding.pods.iter().map(|p| input.pods.get(p)).collect();
    // Something is already moving (a target being deleted, one this process evicted, a
    // VM being migrated): wait for it to settle.
    if pods.iter().flatten().any(|p| {
        p.terminating
            || input.memory.evicted.contains_key(&p.key)
            || matches!(input.migration_state(p), Some(MigrationState::InFlight(_)))
    }) {
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
    let mut backing_off = Vec::new();
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
        if let Some(MigrationState::BackingOff {
            migration,
            reason,
            failures,
            retry_at,
        }) = input.migration_state(facts)
        {
            backing_off.push(BackingOff {
                vmi: PodKey::new(&pod.namespace, facts.vmi.as_deref().unwrap_or_default()),
                migration,
                reason,
                failures,
                retry_at,
            });
            continue;
        }
        movable.push(facts);
    }
    if movable.is_empty() {
        return if !backing_off.is_empty() {
            skip(SkipReason::MigrationBackoff { vmis: backing_off })
        } else if young.is_empty() {
            skip(SkipReason::Unmovable { why: unmovable })
        } else {
            skip(SkipReason::TooYoung {
                pods: young,
                min: limits.min_pod_age,
            })
        };
    }
    let ledger = ledger
        .get_or_insert_with(|| Ledger::new(&questions.capacity(), &input.memory.replacements));
    let mut candidates = Vec::new();
    let mut reasons = Vec::new();
    let mut no_room = false;
    for facts in movable {
        // A bare pod does not come back once evicted: it needs no room.
        let controller = match facts.owner {
            Owner::Controller(_) => facts.controller.clone(),
            _ => None,
        };
        let prediction = match questions.predict(binding, &facts.key, ledger.reservations()) {
            Predicted::Restores(p) => p,
            Predicted::Fails(reason) => {
                // Would the replacement go somewhere but for the room held for others?
                let unheld = (controller.is_some() && !ledger.reservations().is_empty())
                    .then(|| questions.predict(binding, &facts.key, &[]));
                match unheld {
                    Some(Predicted::Restores(p)) => match ledger.fits(&facts.demand, &p.node) {
                        Err(why) => {
                            no_room = true;
                            reasons.push((facts.key.clone(), no_room_on(&p.describe(), &why)));
                        }
                        Ok(()) => reasons.push((facts.key.clone(), reason)),
                    },
                    _ => reasons.push((facts.key.clone(), reason)),
                }
                continue;
            }
        };
        if controller.is_some()
            && let Err(why) = ledger.fits(&facts.demand, &prediction.node)
        {
            no_room = true;
            reasons.push((facts.key.clone(), no_room_on(&prediction.describe(), &why)));
            continue;
        }
        candidates.push(Candidate {
            pod: facts.key.clone(),
            owned: matches!(facts.owner, Owner::Controller(_)),
            prediction,
            controller,
            demand: facts.demand.clone(),
            created: facts.created,
            vmi: facts.vmi.clone(),
        });
    }
    if candidates.is_empty() {
        // A failed migration is reported even when no other pod can move instead.
        if !backing_off.is_empty() {
            return skip(SkipReason::MigrationBackoff { vmis: backing_off });
        }
        return skip(if no_room {
            SkipReason::NoRoom { reasons }
        } else {
            SkipReason::NoCandidate { reasons }
        });
    }
    candidates.sort_by(|a, b| {
        (!a.owned, a.prediction.limits)
            .cmp(&(!b.owned, b.prediction.limits))
            .then(a.prediction.cost.total_cmp(&b.prediction.cost))
            .then(a.pod.cmp(&b.pod))
    });
    // A VM moves by live migration, never by eviction (which would kill the guest): when
    // the best move is a VM's, that migration is the decision; otherwise the VMs are not
    // among the eviction candidates.
    if candidates[0].vmi.is_some() {
        candidates.truncate(1);
    } else {
        candidates.retain(|c| c.vmi.is_none());
    }
    counts.total += 1;
    *counts.namespace.entry(namespace.clone()).or_default() += 1;
    *counts.offer.entry(binding.offer_key()).or_default() += 1;
    // The room of the replacement, for the rest of the cycle. Which candidate goes is
    // known only once the API server accepts an eviction (a budget may refuse the first),
    // so each one's room is held: a cycle may promise less than it could, never more.
    for c in &candidates {
        if c.controller.is_some() {
            ledger.reserve(&c.prediction.node, &c.demand, &c.pod);
        }
    }
    if input.dry_run {
        let best = candidates.swap_remove(0);
        return skip(SkipReason::DryRun {
            candidate: Box::new(best),
        });
    }
    if candidates[0].vmi.is_some() {
        return Some(Action::Migrate {
            binding: key.clone(),
            candidate: Box::new(candidates.swap_remove(0)),
        });
    }
    Some(Action::Evict {
        binding: key.clone(),
        candidates,
    })
}
