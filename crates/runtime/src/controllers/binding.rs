//! The binding controller: evaluates each binding through its providers and writes its
//! status with the pure state machine (`status::next_status`).
//!
//! Triggers: every `period` of the binding's offer; the binding is created or its spec
//! changes; one of its target pods is created, deleted or bound to a node (through an
//! index target -> bindings); nodes or the topology change (every binding; the queue
//! folds repeated requests for one binding into one); a policy of its offer changes; the
//! offer's spec changes; a provider Service appears, changes or goes (every binding); this
//! replica becomes the leader.
//!
//! Writes: the status subresource by server-side apply (field manager `edgeplane`), only
//! when something other than `lastEvaluatedTimestamp` changed, so `lastEvaluatedTimestamp`
//! is the time of the evaluation that produced the current status (see docs/runtime.md for
//! why). `lastMitigatedTimestamp` belongs to the descheduler and is never applied here.
//! Events: `ComplianceChanged` on every change of compliance (Warning into Violation or
//! Error, Normal otherwise), `ProviderError` when a rule newly ends in Error.
//!
//! A periodic evaluation is skipped when it would read exactly what the last one read
//! (the binding, its offer and policies at the same resourceVersions, the same version of
//! the cluster view), every rule is served by the built-in provider (whose answers depend
//! on nothing else) and the status cannot change with time alone (no grace running). The
//! period exists for what edgeplane is not told about: external providers' values and
//! missed notifications; built-in answers change only with the view, whose changes
//! trigger evaluations themselves. A skipped binding is looked at again after
//! [`UNCHANGED_RECHECK`] (5 minutes) unless something triggers it sooner, or after its
//! period while the topology carries measurements (they expire without notice). At
//! 10,000 bindings this removes most of the controller's work.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgeplane_api::{
    Compliance, ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyBindingStatus,
    ConstraintPolicyOffer, TargetKind,
};
use edgeplane_core::status::{
    Evaluation, compliance_event, new_errors, next_status, pod_compliance_event, same_status,
    targets_summary,
};
use edgeplane_core::values::parse_duration_field;
use edgeplane_providers::PolicyInput;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Options, Shared, all_refs, drive, instrumented, reconcile_everything};
use crate::cache::{Caches, Change};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::metrics::bindings::BindingMetrics;
use crate::metrics::{RuleLabels, TransitionLabels};
use crate::providers::ProviderRegistry;
use crate::view::{ViewCache, ViewChange};

/// Period used when an offer's does not parse (the CRD schema normally prevents it).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30);
/// Grace used when an offer's does not parse.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// The shortest period honoured: a typo like `1ms` must not spin the controller.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);
/// `ProviderError` events per evaluation at most.
const PROVIDER_EVENTS_PER_EVALUATION: usize = 3;

pub struct BindingExtra {
    pub providers: Arc<ProviderRegistry>,
    pub index: Arc<Mutex<TargetIndex>>,
    pub views: ViewCache,
    /// What each binding's last evaluation read.
    pub evaluated: Evaluated,
    pub metrics: BindingMetrics,
}

/// What an evaluation read, by version: the same inputs give the same outcomes when
/// every rule is built in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inputs {
    pub binding: Option<String>,
    pub offer: Option<String>,
    pub policies: Vec<Option<String>>,
    pub view: u64,
    /// The rules served by external providers when it was evaluated (a provider that
    /// registers or goes changes the answers).
    pub external_rules: Vec<String>,
}

/// The inputs of each binding's last evaluation, forgotten when the binding goes.
pub type Evaluated = Arc<Mutex<HashMap<ObjectRef<ConstraintPolicyBinding>, Inputs>>>;

/// How long an unchanged binding waits before it is looked at again when its evaluation
/// was skipped: every change it depends on triggers it sooner (see the module's docs), so
/// this is a safety net like the offers' resync.
pub const UNCHANGED_RECHECK: Duration = Duration::from_secs(300);

/// When to look at a binding again after a skipped evaluation: after
/// [`UNCHANGED_RECHECK`], or after its period while the topology carries measurements,
/// which expire with time alone and no notification.
pub fn recheck_after(period: Duration, measured: bool) -> Duration {
    if measured {
        period
    } else {
        period.max(UNCHANGED_RECHECK)
    }
}

fn measured(caches: &Caches) -> bool {
    caches
        .topology()
        .and_then(|t| t.status.as_ref().map(|s| !s.measured.is_empty()))
        .unwrap_or(false)
}

/// Whether an evaluation with `inputs` can be skipped: it would give `previous` again.
pub fn can_skip(
    previous: Option<&ConstraintPolicyBindingStatus>,
    last: Option<&Inputs>,
    inputs: &Inputs,
    builtin_only: bool,
) -> bool {
    builtin_only
        && last == Some(inputs)
        && previous.is_some_and(|p| !edgeplane_core::status::changes_with_time(p))
}

type BindingShared = Shared<ConstraintPolicyBinding, BindingExtra>;

/// Runs the binding controller until the context's shutdown.
pub async fn run(
    ctx: Context,
    caches: Caches,
    views: ViewCache,
    providers: Arc<ProviderRegistry>,
    options: Options,
) {
    let bindings = caches.bindings.clone();
    let metrics =
        BindingMetrics::register(&ctx.metrics, move || bindings.list(), ctx.clock.clone());
    providers.register_metrics(&ctx.metrics);
    let index = Arc::new(Mutex::new(TargetIndex::default()));
    let evaluated = Evaluated::default();
    let triggers = triggers(&ctx, &caches, &views, index.clone(), evaluated.clone());
    let shared = Arc::new(Shared {
        ctx,
        caches: caches.clone(),
        backoff: Default::default(),
        name: "binding",
        extra: BindingExtra {
            providers,
            index,
            views,
            evaluated,
            metrics,
        },
    });
    drive(
        shared,
        &caches.bindings,
        triggers,
        options.binding_concurrency,
        Duration::ZERO,
        |b, shared| {
            let s = shared.clone();
            instrumented(b.clone(), shared, async move { reconcile(b, s).await })
        },
    )
    .await;
}

/// Bindings by the Pod targets they name: which bindings to re-evaluate when a pod moves.
/// A pure index, fed from the bindings cache.
#[derive(Debug, Default)]
pub struct TargetIndex {
    by_pod: HashMap<(String, String), HashSet<ObjectRef<ConstraintPolicyBinding>>>,
    pods_of: HashMap<ObjectRef<ConstraintPolicyBinding>, Vec<(String, String)>>,
}

impl TargetIndex {
    pub fn apply(&mut self, binding: &ConstraintPolicyBinding) {
        let key = ObjectRef::from_obj(binding);
        self.remove(&key);
        let namespace = binding.namespace().unwrap_or_else(|| "default".into());
        let pods: Vec<(String, String)> = binding
            .spec
            .targets
            .values()
            .filter(|t| t.kind == TargetKind::Pod)
            .map(|t| {
                (
                    t.namespace.clone().unwrap_or_else(|| namespace.clone()),
                    t.name.clone(),
                )
            })
            .collect();
        for pod in &pods {
            self.by_pod
                .entry(pod.clone())
                .or_default()
                .insert(key.clone());
        }
        self.pods_of.insert(key, pods);
    }

    pub fn remove(&mut self, key: &ObjectRef<ConstraintPolicyBinding>) {
        for pod in self.pods_of.remove(key).unwrap_or_default() {
            if let Some(set) = self.by_pod.get_mut(&pod) {
                set.remove(key);
                if set.is_empty() {
                    self.by_pod.remove(&pod);
                }
            }
        }
    }

    pub fn reset<'a>(&mut self, bindings: impl IntoIterator<Item = &'a ConstraintPolicyBinding>) {
        *self = TargetIndex::default();
        for b in bindings {
            self.apply(b);
        }
    }

    /// The bindings that name pod `namespace/name`.
    pub fn bindings_of(
        &self,
        namespace: &str,
        name: &str,
    ) -> Vec<ObjectRef<ConstraintPolicyBinding>> {
        self.by_pod
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn triggers(
    ctx: &Context,
    caches: &Caches,
    views: &ViewCache,
    index: Arc<Mutex<TargetIndex>>,
    evaluated: Evaluated,
) -> impl futures::Stream<Item = ObjectRef<ConstraintPolicyBinding>> + Send + 'static {
    let c = caches.clone();
    let idx = index.clone();
    let bindings = caches.bindings.changes().map(move |change| {
        let mut index = idx.lock().unwrap_or_else(|p| p.into_inner());
        match change {
            Change::Applied { old, new } => {
                index.apply(&new);
                let spec_changed = old.as_ref().is_none_or(|o| {
                    o.metadata.generation != new.metadata.generation || o.spec != new.spec
                });
                if spec_changed {
                    vec![ObjectRef::from_obj(&*new)]
                } else {
                    vec![]
                }
            }
            Change::Deleted(b) => {
                let key = ObjectRef::from_obj(&*b);
                index.remove(&key);
                evaluated
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                vec![]
            }
            Change::Resynced => {
                let all = c.bindings.list();
                index.reset(all.iter().map(|b| &**b));
                all_refs(&c.bindings)
            }
        }
    });
    let c = caches.clone();
    let idx = index.clone();
    // With reservations, a pod that moves changes what every binding sharing its links
    // gets: those are re-evaluated at once rather than at their period, so that nothing
    // (the descheduler) acts on a share that no longer holds.
    let v = views.clone();
    let network = crate::cache::changes_of(views.subscribe()).map(move |change| match change {
        Ok(ViewChange::PodMoved { namespace, name }) => {
            let mut refs = idx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .bindings_of(&namespace, &name);
            if v.reserving_now() {
                refs.extend(bindings_reserving(&c));
            }
            refs
        }
        Ok(ViewChange::Network | ViewChange::Resynced) | Err(_) => all_refs(&c.bindings),
    });
    let c = caches.clone();
    let reserved =
        crate::cache::changes_of(views.reservation_changes()).map(move |_| bindings_reserving(&c));
    let c = caches.clone();
    let offers = caches.offers.changes().map(move |change| match change {
        Change::Applied {
            old: Some(old),
            new,
        } if old.spec == new.spec => vec![],
        Change::Applied { new: o, .. } => bindings_of_offer(&c, &o),
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.bindings),
    });
    let c = caches.clone();
    let policies = caches.policies.changes().map(move |change| match change {
        Change::Applied {
            old: Some(old),
            new,
        } if old.spec == new.spec => vec![],
        Change::Applied { new: p, .. } | Change::Deleted(p) => bindings_using(&c, &p),
        Change::Resynced => all_refs(&c.bindings),
    });
    let c = caches.clone();
    let services = caches.services.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            let relevant =
                registers_provider(&new) || old.as_ref().is_some_and(|o| registers_provider(o));
            let changed = old
                .as_ref()
                .is_none_or(|o| o.metadata.labels != new.metadata.labels || o.spec != new.spec);
            if relevant && changed {
                all_refs(&c.bindings)
            } else {
                vec![]
            }
        }
        Change::Deleted(s) if registers_provider(&s) => all_refs(&c.bindings),
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.bindings),
    });
    let c = caches.clone();
    let idx = index;
    let everything = reconcile_everything(ctx, caches).map(move |()| {
        let all = c.bindings.list();
        idx.lock()
            .unwrap_or_else(|p| p.into_inner())
            .reset(all.iter().map(|b| &**b));
        all_refs(&c.bindings)
    });
    futures::stream::select_all([
        bindings.boxed(),
        network.boxed(),
        reserved.boxed(),
        offers.boxed(),
        policies.boxed(),
        services.boxed(),
        everything.boxed(),
    ])
    .flat_map(futures::stream::iter)
}

fn registers_provider(service: &Service) -> bool {
    service
        .metadata
        .labels
        .iter()
        .flatten()
        .any(|(k, _)| k.starts_with(edgeplane_api::names::PROVIDER_LABEL_PREFIX))
}

fn bindings_of_offer(
    caches: &Caches,
    offer: &ConstraintPolicyOffer,
) -> Vec<ObjectRef<ConstraintPolicyBinding>> {
    let name = offer.name_any();
    caches
        .bindings
        .list_group(offer.namespace().as_deref().unwrap_or("default"), &name)
        .iter()
        .map(|b| ObjectRef::from_obj(&**b))
        .collect()
}

/// The bindings whose policies have a bandwidth rule: those that reserve on links.
fn bindings_reserving(caches: &Caches) -> Vec<ObjectRef<ConstraintPolicyBinding>> {
    caches
        .offers
        .list()
        .iter()
        .filter(|o| crate::view::offer_reserves(&caches.policies, o))
        .flat_map(|o| bindings_of_offer(caches, o))
        .collect()
}

fn bindings_using(
    caches: &Caches,
    policy: &ConstraintPolicy,
) -> Vec<ObjectRef<ConstraintPolicyBinding>> {
    let namespace = policy.namespace().unwrap_or_else(|| "default".into());
    let name = policy.name_any();
    caches
        .offers
        .list_in(&namespace)
        .iter()
        .filter(|o| o.spec.policies.contains(&name))
        .flat_map(|o| bindings_of_offer(caches, o))
        .collect()
}

async fn reconcile(
    binding: Arc<ConstraintPolicyBinding>,
    shared: Arc<BindingShared>,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    if !ctx.leadership.is_leader() || binding.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let caches = &shared.caches;
    let name = binding.name_any();
    let namespace = binding
        .namespace()
        .ok_or_else(|| Error::Invalid(format!("binding {name} has no namespace")))?;
    // A binding without its offer is about to be garbage-collected (or was made by hand);
    // evaluating it would only make noise. The offer's creation triggers it again.
    let Some(offer) = caches.offers.get(Some(&namespace), &binding.spec.offer) else {
        return Ok(Action::await_change());
    };
    let period = parse_duration_field(&offer.spec.period)
        .unwrap_or(DEFAULT_PERIOD)
        .max(MIN_PERIOD);
    let grace = parse_duration_field(&offer.spec.grace).unwrap_or(DEFAULT_GRACE);
    let policies: Vec<(String, Option<Arc<ConstraintPolicy>>)> = offer
        .spec
        .policies
        .iter()
        .map(|p| (p.clone(), caches.policies.get(Some(&namespace), p)))
        .collect();
    let inputs: Vec<PolicyInput<'_>> = policies
        .iter()
        .map(|(name, policy)| PolicyInput {
            name,
            spec: policy.as_ref().map(|p| &p.spec),
        })
        .collect();
    let providers = shared.extra.providers.providers(&caches.services.list());
    let key = ObjectRef::from_obj(&*binding);
    // Read before evaluating: a view that changes meanwhile gives a new version, so the
    // next evaluation is not skipped.
    let read = Inputs {
        binding: binding.resource_version(),
        offer: offer.resource_version(),
        policies: policies
            .iter()
            .map(|(_, p)| p.as_ref().and_then(|p| p.resource_version()))
            .collect(),
        view: shared.extra.views.version(),
        external_rules: providers.external_rules().map(str::to_string).collect(),
    };
    let builtin_only = read.external_rules.is_empty();
    let skip = {
        let evaluated = shared
            .extra
            .evaluated
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        can_skip(
            binding.status.as_ref(),
            evaluated.get(&key),
            &read,
            builtin_only,
        )
    };
    if skip {
        shared.extra.metrics.evaluations_skipped.inc();
        return Ok(Action::requeue(recheck_after(period, measured(caches))));
    }
    let started = tokio::time::Instant::now();
    let outcomes =
        crate::providers::evaluate_binding(&providers, &binding.spec.targets, &inputs).await;
    shared
        .extra
        .metrics
        .evaluation_duration
        .observe(started.elapsed().as_secs_f64());
    shared.extra.metrics.evaluations.inc();
    for rule in outcomes.iter().flat_map(|p| &p.rules) {
        if rule.compliance == Compliance::Error {
            ctx.metrics
                .provider_errors
                .get_or_create(&RuleLabels {
                    rule: rule.rule.clone(),
                })
                .inc();
        }
    }
    let previous = binding.status.as_ref();
    let Evaluation {
        mut status,
        transition,
        ..
    } = next_status(
        previous,
        &outcomes,
        ctx.clock.now(),
        grace,
        binding.metadata.generation,
    );
    // Not ours: the descheduler writes it with its own field manager.
    status.last_mitigated_timestamp = None;
    status.targets = Some(targets_summary(&binding.spec.targets));
    let remember = || {
        shared
            .extra
            .evaluated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), read.clone());
    };
    if previous.is_some_and(|p| same_status(p, &status)) {
        remember();
        return Ok(Action::requeue(period));
    }
    ctx.apply_status(Some(&namespace), &name, &status).await?;
    let events = ctx.events();
    let regarding = binding.object_ref(&());
    if let Some((from, to)) = transition.filter(|(from, to)| from != to) {
        ctx.metrics
            .compliance_changes
            .get_or_create(&TransitionLabels {
                from: from.to_string(),
                to: to.to_string(),
            })
            .inc();
        events
            .publish_or_log(
                &regarding,
                compliance_event(from, to, status.first_reason.as_deref()),
            )
            .await;
        // The pods it is about hear of it too: `kubectl describe pod` tells the story.
        for (role, target) in &binding.spec.targets {
            if target.kind != TargetKind::Pod || target.cluster.is_some() {
                continue;
            }
            let pod_namespace = target.namespace.as_deref().unwrap_or(&namespace);
            let Some(pod) = caches.pods.get(Some(pod_namespace), &target.name) else {
                continue;
            };
            events
                .publish_or_log(
                    &pod.object_ref(&()),
                    pod_compliance_event(&name, role, from, to, status.first_reason.as_deref()),
                )
                .await;
        }
    }
    for note in new_errors(previous, &outcomes)
        .into_iter()
        .take(PROVIDER_EVENTS_PER_EVALUATION)
    {
        events
            .publish_or_log(
                &regarding,
                EventSpec {
                    type_: EventType::Warning,
                    reason: reasons::PROVIDER_ERROR,
                    action: "Evaluate",
                    note,
                },
            )
            .await;
    }
    remember();
    Ok(Action::requeue(period))
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{ConstraintPolicyBindingSpec, TargetRef};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    #[test]
    fn an_evaluation_is_skipped_only_when_nothing_it_reads_changed() {
        let inputs = Inputs {
            binding: Some("7".into()),
            offer: Some("3".into()),
            policies: vec![Some("4".into())],
            view: 12,
            external_rules: vec![],
        };
        let status =
            |compliance: Compliance, grace_elapsed: Option<&str>| ConstraintPolicyBindingStatus {
                compliance,
                conditions: grace_elapsed
                    .map(|s| Condition {
                        type_: edgeplane_core::status::CONDITION_GRACE_ELAPSED.into(),
                        status: s.into(),
                        reason: "r".into(),
                        message: String::new(),
                        last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                        observed_generation: None,
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            };
        let compliant = status(Compliance::Compliant, Some("False"));
        assert!(can_skip(Some(&compliant), Some(&inputs), &inputs, true));
        // Never evaluated, or evaluated on something else.
        assert!(!can_skip(Some(&compliant), None, &inputs, true));
        assert!(!can_skip(None, Some(&inputs), &inputs, true));
        for changed in [
            Inputs {
                view: 13,
                ..inputs.clone()
            },
            Inputs {
                binding: Some("8".into()),
                ..inputs.clone()
            },
            Inputs {
                offer: None,
                ..inputs.clone()
            },
            Inputs {
                policies: vec![Some("5".into())],
                ..inputs.clone()
            },
        ] {
            assert!(!can_skip(Some(&compliant), Some(&inputs), &changed, true));
        }
        // An external provider answers: its values change without notice.
        assert!(!can_skip(Some(&compliant), Some(&inputs), &inputs, false));
        // A Violation within its grace changes with time alone; past it, it does not.
        let within = status(Compliance::Violation, Some("False"));
        assert!(!can_skip(Some(&within), Some(&inputs), &inputs, true));
        let past = status(Compliance::Violation, Some("True"));
        assert!(can_skip(Some(&past), Some(&inputs), &inputs, true));
    }

    #[test]
    fn a_skipped_binding_waits_longer_unless_measurements_can_expire() {
        let period = Duration::from_secs(30);
        assert_eq!(recheck_after(period, false), UNCHANGED_RECHECK);
        assert_eq!(recheck_after(period, true), period);
        // A period longer than the recheck is kept.
        let long = Duration::from_secs(600);
        assert_eq!(recheck_after(long, false), long);
    }

    fn binding(name: &str, pods: &[&str]) -> ConstraintPolicyBinding {
        let targets = pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    format!("r{i}"),
                    TargetRef {
                        cluster: None,
                        namespace: Some("ar".into()),
                        api_version: "v1".into(),
                        kind: TargetKind::Pod,
                        name: (*p).into(),
                    },
                )
            })
            .collect();
        let mut b = ConstraintPolicyBinding::new(
            name,
            ConstraintPolicyBindingSpec {
                offer: "o".into(),
                targets,
            },
        );
        b.metadata.namespace = Some("ar".into());
        b
    }

    fn names(refs: Vec<ObjectRef<ConstraintPolicyBinding>>) -> Vec<String> {
        let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        n.sort();
        n
    }

    #[test]
    fn the_index_follows_bindings_targets() {
        let mut index = TargetIndex::default();
        index.apply(&binding("a", &["p1", "p2"]));
        index.apply(&binding("b", &["p2"]));
        assert_eq!(names(index.bindings_of("ar", "p2")), ["a", "b"]);
        assert_eq!(names(index.bindings_of("ar", "p1")), ["a"]);
        assert!(index.bindings_of("other", "p1").is_empty());
        // A binding whose targets change is re-indexed.
        index.apply(&binding("a", &["p3"]));
        assert_eq!(names(index.bindings_of("ar", "p1")), Vec::<String>::new());
        assert_eq!(names(index.bindings_of("ar", "p3")), ["a"]);
        index.remove(&ObjectRef::from_obj(&binding("b", &[])));
        assert!(index.bindings_of("ar", "p2").is_empty());
        index.reset([&binding("c", &["p1"])]);
        assert_eq!(names(index.bindings_of("ar", "p1")), ["c"]);
        assert!(index.bindings_of("ar", "p3").is_empty());
    }
}
