//! The offer controller: keeps each offer's bindings equal to the pure expansion
//! (`offers::expand` + `offers::diff`) and its status current.
//!
//! Triggers (all mapped from the shared caches): the offer is created or its spec changes;
//! a pod of its namespace appears, goes, changes labels or finishes; one of its bindings
//! appears, goes, or changes compliance (for the counts); a policy it names changes; the
//! sites change (topology or node labels) for offers with Site targets; an NF or chain of
//! its namespace changes, for offers with NetworkFunction or ServiceChain targets (where
//! the NF controllers run: `Options::functions`); this replica becomes the leader. And every `offer_resync` as a safety net.
//!
//! Writes: bindings by server-side apply (field manager `edgeplane`, owner reference to the
//! offer, label `constraint.edgeplane.io/offer`), deletions of bindings whose objects are
//! gone, and the offer's status on the status subresource, each only when something
//! differs: a reconcile with nothing to do writes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use edgeplane_api::{
    Compliance, ConstraintPolicy, ConstraintPolicyBinding, ConstraintPolicyOffer, TargetKind,
};
use edgeplane_core::nf::targets::FunctionInventory;
use edgeplane_core::offers::{self, Candidate, Inventory, PodSelectors};
use edgeplane_core::sites::site_candidates;
use edgeplane_core::status;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Options, Shared, all_refs, drive, instrumented, object_ref, reconcile_everything};
use crate::cache::{Caches, Change, FunctionTargets};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::view::{ViewCache, ViewChange};

/// Individual events per kind of change in one reconcile; more are summed up in one.
const EVENTS_PER_RECONCILE: usize = 10;

type OfferShared = Shared<ConstraintPolicyOffer, OfferExtra>;

/// The offer controller's own state besides the shared caches.
pub struct OfferExtra {
    options: Options,
    sites: SiteMemo,
}

/// The sites that Site targets select from, computed once per change of the network
/// (topology, node labels, nodes coming or going) instead of on every reconcile: each
/// computation reads every node, which at 2,000 nodes was a third of the offer
/// controller's time. Cleared by the same notification that reconciles the offers with
/// Site targets, before they are queued, so those reconciles see the new sites.
#[derive(Clone, Default)]
pub struct SiteMemo(Arc<std::sync::Mutex<Option<Arc<Vec<Candidate>>>>>);

impl SiteMemo {
    fn get(&self, caches: &Caches) -> Arc<Vec<Candidate>> {
        let mut memo = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        memo.get_or_insert_with(|| {
            Arc::new(site_candidates(
                caches.topology().as_deref(),
                &caches.nodes.list(),
            ))
        })
        .clone()
    }

    fn clear(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// Runs the offer controller until the context's shutdown.
pub async fn run(ctx: Context, caches: Caches, views: ViewCache, options: Options) {
    let sites = SiteMemo::default();
    let triggers = triggers(
        &ctx,
        &caches,
        &views,
        sites.clone(),
        options.functions.clone(),
    );
    let concurrency = options.offer_concurrency;
    let debounce = options.offer_debounce;
    let shared = Arc::new(Shared {
        ctx,
        caches: caches.clone(),
        backoff: Default::default(),
        name: "offer",
        extra: OfferExtra { options, sites },
    });
    drive(
        shared,
        &caches.offers,
        triggers,
        concurrency,
        debounce,
        |offer, shared| {
            let s = shared.clone();
            instrumented(
                offer.clone(),
                shared,
                async move { reconcile(offer, s).await },
            )
        },
    )
    .await;
}

fn triggers(
    ctx: &Context,
    caches: &Caches,
    views: &ViewCache,
    sites: SiteMemo,
    functions: Option<FunctionTargets>,
) -> impl futures::Stream<Item = ObjectRef<ConstraintPolicyOffer>> + Send + 'static {
    let c = caches.clone();
    let offers = caches.offers.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            let spec_changed = old.as_ref().is_none_or(|o| {
                o.metadata.generation != new.metadata.generation
                    || o.metadata.uid != new.metadata.uid
            });
            if spec_changed {
                vec![ObjectRef::from_obj(&*new)]
            } else {
                vec![]
            }
        }
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.offers),
    });
    let c = caches.clone();
    let pods = caches.pods.changes().map(move |change| match change {
        Change::Applied {
            old: Some(old),
            new,
        } if !pod_matters(&old, &new) => vec![],
        Change::Applied { old, new } => offers_selecting(&c, &new, old.as_deref()),
        Change::Deleted(pod) => offers_selecting(&c, &pod, None),
        Change::Resynced => all_refs(&c.offers),
    });
    let c = caches.clone();
    let bindings = caches.bindings.changes().map(move |change| match change {
        Change::Applied {
            old: Some(old),
            new,
        } => {
            // The offer's status counts Compliant bindings: only crossing that line matters.
            let compliant = |b: &ConstraintPolicyBinding| {
                b.status
                    .as_ref()
                    .is_some_and(|s| s.compliance == Compliance::Compliant)
            };
            if compliant(&old) != compliant(&new) || old.spec != new.spec {
                owner_of(&new).into_iter().collect()
            } else {
                vec![]
            }
        }
        Change::Applied { new: b, .. } | Change::Deleted(b) => owner_of(&b).into_iter().collect(),
        Change::Resynced => all_refs(&c.offers),
    });
    let c = caches.clone();
    let policies = caches.policies.changes().map(move |change| match change {
        Change::Applied {
            old: Some(old),
            new,
        } if old.spec == new.spec => vec![],
        Change::Applied { new: p, .. } | Change::Deleted(p) => offers_using(&c, &p),
        Change::Resynced => all_refs(&c.offers),
    });
    let c = caches.clone();
    let sites = crate::cache::changes_of(views.subscribe()).map(move |change| match change {
        Ok(ViewChange::PodMoved { .. }) => vec![],
        Ok(ViewChange::Network | ViewChange::Resynced) | Err(_) => {
            sites.clear();
            c.offers
                .list()
                .iter()
                .filter(|o| o.spec.targets.iter().any(|t| t.kind == TargetKind::Site))
                .map(|o| ObjectRef::from_obj(&**o))
                .collect()
        }
    });
    let c = caches.clone();
    let everything = reconcile_everything(ctx, caches).map(move |()| all_refs(&c.offers));
    let mut streams = vec![
        offers.boxed(),
        pods.boxed(),
        bindings.boxed(),
        policies.boxed(),
        sites.boxed(),
        everything.boxed(),
    ];
    if let Some(functions) = functions {
        // An NF or chain appears, goes, or changes labels or hops: the offers of its
        // namespace that target NFs or chains.
        let c = caches.clone();
        streams.push(
            functions
                .nfs
                .changes()
                .map(move |change| offers_targeting_functions(&c, &change))
                .boxed(),
        );
        let c = caches.clone();
        streams.push(
            functions
                .chains
                .changes()
                .map(move |change| offers_targeting_functions(&c, &change))
                .boxed(),
        );
    }
    futures::stream::select_all(streams).flat_map(futures::stream::iter)
}

/// The offers with NetworkFunction or ServiceChain targets in the namespace of a changed
/// NF or chain (every namespace on a resync).
fn offers_targeting_functions<K: kube::Resource>(
    caches: &Caches,
    change: &Change<K>,
) -> Vec<ObjectRef<ConstraintPolicyOffer>> {
    let namespace = match change {
        Change::Applied { new, .. } => new.meta().namespace.clone(),
        Change::Deleted(old) => old.meta().namespace.clone(),
        Change::Resynced => None,
    };
    let offers = match &namespace {
        Some(ns) => caches.offers.list_in(ns),
        None => caches.offers.list(),
    };
    offers
        .iter()
        .filter(|o| {
            o.spec.targets.iter().any(|t| {
                matches!(
                    t.kind,
                    TargetKind::NetworkFunction | TargetKind::ServiceChain
                )
            })
        })
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

/// Whether a pod change can change what offers select: labels, finishing, deletion.
fn pod_matters(old: &Pod, new: &Pod) -> bool {
    old.metadata.labels != new.metadata.labels
        || Candidate::from_pod(old).is_some() != Candidate::from_pod(new).is_some()
}

/// The offers of the pod's namespace that could select it, before or after the change.
fn offers_selecting(
    caches: &Caches,
    pod: &Pod,
    old: Option<&Pod>,
) -> Vec<ObjectRef<ConstraintPolicyOffer>> {
    let no_labels = Default::default();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&no_labels);
    let old_labels = old.and_then(|o| o.metadata.labels.as_ref());
    caches
        .offers
        .list_in(pod.namespace().as_deref().unwrap_or("default"))
        .iter()
        .filter(|o| {
            let selectors = PodSelectors::of(o);
            selectors.selects(labels) || old_labels.is_some_and(|l| selectors.selects(l))
        })
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

fn offers_using(
    caches: &Caches,
    policy: &ConstraintPolicy,
) -> Vec<ObjectRef<ConstraintPolicyOffer>> {
    let name = policy.name_any();
    caches
        .offers
        .list_in(policy.namespace().as_deref().unwrap_or("default"))
        .iter()
        .filter(|o| o.spec.policies.contains(&name))
        .map(|o| ObjectRef::from_obj(&**o))
        .collect()
}

/// The offer a binding belongs to.
fn owner_of(binding: &ConstraintPolicyBinding) -> Option<ObjectRef<ConstraintPolicyOffer>> {
    let namespace = binding.namespace()?;
    Some(object_ref(&namespace, binding.owner_offer()))
}

/// What an offer can select from, read from the caches: the pods of its namespace, and
/// the sites when it has Site targets.
fn inventory(
    caches: &Caches,
    sites: &SiteMemo,
    functions: Option<&FunctionTargets>,
    offer: &ConstraintPolicyOffer,
) -> Inventory {
    let namespace = offer.namespace().unwrap_or_else(|| "default".into());
    // Only the pods one of its roles can select: expanding ignores the others anyway.
    let selectors = PodSelectors::of(offer);
    let no_labels = Default::default();
    let pods = caches
        .pods
        .list_in(&namespace)
        .iter()
        .filter(|p| selectors.selects(p.metadata.labels.as_ref().unwrap_or(&no_labels)))
        .filter_map(|p| Candidate::from_pod(p))
        .collect();
    let sites = if offer
        .spec
        .targets
        .iter()
        .any(|t| t.kind == TargetKind::Site)
    {
        sites.get(caches).to_vec()
    } else {
        Vec::new()
    };
    let targets_functions = offer.spec.targets.iter().any(|t| {
        matches!(
            t.kind,
            TargetKind::NetworkFunction | TargetKind::ServiceChain
        )
    });
    let functions = match functions {
        Some(f) if targets_functions => f.inventory(),
        _ => FunctionInventory::default(),
    };
    Inventory {
        pods,
        sites,
        functions,
    }
}

async fn reconcile(
    offer: Arc<ConstraintPolicyOffer>,
    shared: Arc<OfferShared>,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    let resync = Action::requeue(shared.extra.options.offer_resync);
    if !ctx.leadership.is_leader() || offer.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let caches = &shared.caches;
    let name = offer.name_any();
    let namespace = offer
        .namespace()
        .ok_or_else(|| Error::Invalid(format!("offer {name} has no namespace")))?;
    let existing = caches.bindings.list_group(&namespace, &name);
    let inventory = inventory(
        caches,
        &shared.extra.sites,
        shared.extra.options.functions.as_ref(),
        &offer,
    );
    let expansion = offers::expand(&offer, &inventory);
    let events = ctx.events();
    let regarding = offer.object_ref(&());
    if let Ok(desired) = &expansion {
        let changes = offers::diff(&offer, desired, &existing);
        let mut notes = Notes::default();
        for binding in changes.create.iter().chain(&changes.update) {
            let binding_name = binding.name_any();
            ctx.apply(binding).await?;
            let restored = changes.update.iter().any(|u| u.name_any() == binding_name);
            let note = if restored {
                format!(
                    "restored binding {binding_name} to {}",
                    describe_targets(binding)
                )
            } else {
                format!(
                    "created binding {binding_name} for {}",
                    describe_targets(binding)
                )
            };
            notes.push(
                if restored {
                    reasons::BINDING_RESTORED
                } else {
                    reasons::BINDING_CREATED
                },
                note,
            );
        }
        for binding_name in &changes.delete {
            ctx.delete::<ConstraintPolicyBinding>(Some(&namespace), binding_name)
                .await?;
            let why = existing
                .iter()
                .find(|b| b.metadata.name.as_deref() == Some(binding_name))
                .map(|b| gone_targets(b, &inventory))
                .unwrap_or_default();
            notes.push(
                reasons::BINDING_DELETED,
                format!("deleted binding {binding_name}: {why}"),
            );
        }
        for (reason, note) in notes.finish() {
            events
                .publish_or_log(
                    &regarding,
                    EventSpec {
                        type_: EventType::Normal,
                        reason,
                        action: "Reconcile",
                        note,
                    },
                )
                .await;
        }
    }
    let missing = status::Missing {
        policies: offer
            .spec
            .policies
            .iter()
            .filter(|p| caches.policies.get(Some(&namespace), p).is_none())
            .map(String::as_str)
            .collect(),
        sites: status::unknown_sites(&offer, &inventory.sites),
    };
    let previous = offer.status.clone().unwrap_or_default();
    let status = status::offer_status(
        &offer,
        expansion.as_deref().map_err(Clone::clone),
        &existing,
        &missing,
        &previous,
        ctx.clock.now(),
    );
    if offer.status.as_ref() != Some(&status) {
        let was_invalid = status::ready_reason(&previous) == Some("InvalidOffer");
        ctx.apply_status(Some(&namespace), &name, &status).await?;
        if let Err(e) = &expansion
            && !was_invalid
        {
            events
                .publish_or_log(
                    &regarding,
                    EventSpec {
                        type_: EventType::Warning,
                        reason: reasons::OFFER_INVALID,
                        action: "Reconcile",
                        note: e.to_string(),
                    },
                )
                .await;
        }
    }
    Ok(resync)
}

/// `renderer=Pod default/ar-render-0, users=Site stadium`.
fn describe_targets(binding: &ConstraintPolicyBinding) -> String {
    binding
        .spec
        .targets
        .iter()
        .map(|(role, t)| format!("{role}={t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a binding is no longer wanted: the targets that no longer exist or match.
fn gone_targets(binding: &ConstraintPolicyBinding, inventory: &Inventory) -> String {
    let present: BTreeSet<_> = inventory
        .pods
        .iter()
        .chain(&inventory.sites)
        .map(|c| &c.reference)
        .collect();
    let gone: Vec<String> = binding
        .spec
        .targets
        .iter()
        .filter(|(_, t)| !present.contains(t))
        .map(|(role, t)| format!("{role} ({t})"))
        .collect();
    if gone.is_empty() {
        "its targets no longer match the offer's selectors".into()
    } else {
        format!(
            "{} no longer exists or no longer matches",
            gone.join(" and ")
        )
    }
}

/// Event notes of one reconcile, at most [`EVENTS_PER_RECONCILE`] per reason plus a sum.
#[derive(Default)]
struct Notes {
    by_reason: Vec<(&'static str, Vec<String>)>,
}

impl Notes {
    fn push(&mut self, reason: &'static str, note: String) {
        match self.by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, notes)) => notes.push(note),
            None => self.by_reason.push((reason, vec![note])),
        }
    }

    fn finish(self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (reason, notes) in self.by_reason {
            let extra = notes.len().saturating_sub(EVENTS_PER_RECONCILE);
            out.extend(
                notes
                    .into_iter()
                    .take(EVENTS_PER_RECONCILE)
                    .map(|n| (reason, n)),
            );
            if extra > 0 {
                out.push((reason, format!("{extra} more like the above ({reason})")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_ten_events_per_reason_then_a_sum() {
        let mut notes = Notes::default();
        for i in 0..13 {
            notes.push(reasons::BINDING_CREATED, format!("n{i}"));
        }
        notes.push(reasons::BINDING_DELETED, "d".into());
        let out = notes.finish();
        assert_eq!(out.len(), 12);
        assert_eq!(
            out[10],
            (
                reasons::BINDING_CREATED,
                "3 more like the above (BindingCreated)".to_string()
            )
        );
        assert_eq!(out[11], (reasons::BINDING_DELETED, "d".to_string()));
    }
}
