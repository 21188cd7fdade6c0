//! The chain controller: for each ServiceChain, the NetworkAttachmentDefinition of every
//! link of every lane (its CNI plugin following placement), one ConstraintPolicyBinding
//! per lane with its status judged end to end, and the chain's status (lanes, links,
//! latencies). An invalid chain creates nothing; its status names the fields.
//!
//! Triggers: a chain changes; an NF it names changes (its status says where replicas run
//! and which interfaces are attached); a NAD or binding it owns changes; the view changes
//! (nodes, topology: latencies); everything when this replica becomes the leader. A lane
//! in Violation is re-judged when its grace elapses, so the binding's GraceElapsed turns
//! on time.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{ConstraintPolicyBinding, NetworkFunction, ServiceChain};
use edgeplane_core::chain::{self, CHAIN_LABEL, ChainFacts, LANE_GRACE};
use edgeplane_core::status::{changes_with_time, same_status};
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::nf::Functions;
use super::{Shared, all_refs, drive, instrumented, object_ref, reconcile_everything};
use crate::cache::{Caches, Change};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::foreign::NetworkAttachmentDefinition;

type ChainShared = Shared<ServiceChain, Functions>;

/// The chain named by an object's [`CHAIN_LABEL`], in its namespace.
fn owner_chain<K: Resource>(object: &K) -> Vec<ObjectRef<ServiceChain>> {
    let meta = object.meta();
    meta.labels
        .as_ref()
        .and_then(|l| l.get(CHAIN_LABEL))
        .map(|c| {
            vec![object_ref(
                meta.namespace.as_deref().unwrap_or("default"),
                c,
            )]
        })
        .unwrap_or_default()
}

pub async fn run(ctx: Context, caches: Caches, functions: Functions) {
    let f = functions.caches.clone();
    let c = f.clone();
    let chains = f.chains.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            if old.is_none_or(|o| o.metadata.generation != new.metadata.generation) {
                vec![ObjectRef::from_obj(&*new)]
            } else {
                vec![]
            }
        }
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.chains),
    });
    let c = f.clone();
    let nfs = f.nfs.changes().map(move |change| match change {
        Change::Resynced => all_refs(&c.chains),
        other => other
            .object()
            .map(|nf| chains_naming(&c.chains.list_in(&nf.namespace().unwrap_or_default()), nf))
            .unwrap_or_default(),
    });
    let c = f.clone();
    let nads = f.nads.changes().map(move |change| match change {
        Change::Resynced => all_refs(&c.chains),
        other => other
            .object()
            .map(|n| owner_chain(&**n))
            .unwrap_or_default(),
    });
    let c = f.clone();
    let bindings = caches.bindings.changes().map(move |change| match change {
        Change::Resynced => all_refs(&c.chains),
        other => other
            .object()
            .map(|b| owner_chain(&**b))
            .unwrap_or_default(),
    });
    let c = f.clone();
    let views =
        crate::cache::changes_of(functions.views.subscribe()).map(move |_| all_refs(&c.chains));
    let c = f.clone();
    let everything = reconcile_everything(&ctx, &caches).map(move |()| all_refs(&c.chains));
    let triggers = futures::stream::select_all([
        chains.boxed(),
        nfs.boxed(),
        nads.boxed(),
        bindings.boxed(),
        views.boxed(),
        everything.boxed(),
    ])
    .flat_map(futures::stream::iter);
    let shared = Arc::new(Shared {
        ctx,
        caches,
        backoff: Default::default(),
        name: "service-chain",
        extra: functions.clone(),
    });
    drive(
        shared,
        &functions.caches.chains,
        triggers,
        2,
        Duration::from_millis(50),
        |c, shared| {
            let s = shared.clone();
            instrumented(c.clone(), shared, async move { reconcile(c, s).await })
        },
    )
    .await;
}

fn chains_naming(
    chains: &[Arc<ServiceChain>],
    nf: &NetworkFunction,
) -> Vec<ObjectRef<ServiceChain>> {
    let name = nf.name_any();
    chains
        .iter()
        .filter(|c| c.spec.hops.iter().any(|h| h.network_function == name))
        .map(|c| ObjectRef::from_obj(&**c))
        .collect()
}

async fn reconcile(chain: Arc<ServiceChain>, shared: Arc<ChainShared>) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    if !ctx.leadership.is_leader() || chain.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let functions = &shared.extra;
    let fc = &functions.caches;
    let name = chain.name_any();
    let namespace = chain
        .namespace()
        .ok_or_else(|| Error::Invalid(format!("service chain {name} has no namespace")))?;
    let view = functions.views.view().ok();
    let lookup = |n: &str| fc.nfs.get(Some(&namespace), n).map(|nf| (*nf).clone());
    let binding_status = |n: &str| {
        shared
            .caches
            .bindings
            .get(Some(&namespace), n)
            .and_then(|b| b.status.clone())
    };
    let decision = chain::decide(
        &chain,
        &ChainFacts {
            nfs: &lookup,
            graph: view.as_ref().map(|v| v.graph()),
            binding_status: &binding_status,
            now: ctx.clock.now(),
        },
    );
    let mut requeue = None;
    if decision.errors.is_empty() {
        let mut wanted = BTreeSet::new();
        for nad in &decision.nads {
            let value = serde_json::to_value(nad)
                .map_err(|e| Error::Invalid(format!("NetworkAttachmentDefinition: {e}")))?;
            let desired = NetworkAttachmentDefinition::from_json(value)
                .map_err(|e| Error::Invalid(format!("NetworkAttachmentDefinition: {e}")))?;
            let nad_name = desired.name_any();
            let same = fc.nads.get(Some(&namespace), &nad_name).is_some_and(|c| {
                c.rest.get("spec") == desired.rest.get("spec")
                    && c.metadata.labels == desired.metadata.labels
            });
            if !same {
                ctx.apply(&desired).await?;
            }
            wanted.insert(nad_name);
        }
        for nad in fc.nads.list_in(&namespace) {
            if owner_chain(&*nad).iter().any(|c| c.name == name)
                && !wanted.contains(&nad.name_any())
            {
                ctx.delete::<NetworkAttachmentDefinition>(Some(&namespace), &nad.name_any())
                    .await?;
            }
        }
        let mut lanes = BTreeSet::new();
        for lane in &decision.bindings {
            let binding_name = lane.binding.name_any();
            let current = shared.caches.bindings.get(Some(&namespace), &binding_name);
            let same = current.as_ref().is_some_and(|c| {
                c.spec == lane.binding.spec && c.metadata.labels == lane.binding.metadata.labels
            });
            if !same {
                ctx.apply(&lane.binding).await?;
            }
            let status = &lane.evaluation.status;
            // lastEvaluatedTimestamp moves on every evaluation: compare without it, or
            // each write would trigger the next.
            if current
                .as_ref()
                .and_then(|c| c.status.as_ref())
                .is_none_or(|s| !same_status(s, status))
            {
                ctx.apply_status(Some(&namespace), &binding_name, status)
                    .await?;
            }
            if changes_with_time(status) {
                requeue = Some(LANE_GRACE);
            }
            lanes.insert(binding_name);
        }
        for binding in shared.caches.bindings.list_in(&namespace) {
            if owner_chain(&*binding).iter().any(|c| c.name == name)
                && !lanes.contains(&binding.name_any())
            {
                ctx.delete::<ConstraintPolicyBinding>(Some(&namespace), &binding.name_any())
                    .await?;
            }
        }
    }
    if chain.status.as_ref() != Some(&decision.status) {
        ctx.apply_status(Some(&namespace), &name, &decision.status)
            .await?;
    }
    // Once per new complaint: the status keeps saying it.
    if !decision.errors.is_empty()
        && chain.status.as_ref().and_then(|s| s.reason.as_ref()) != decision.status.reason.as_ref()
    {
        ctx.events()
            .publish_or_log(
                &chain.object_ref(&()),
                EventSpec {
                    type_: EventType::Warning,
                    reason: reasons::SERVICE_CHAIN_INVALID,
                    action: "Wire",
                    note: format!(
                        "nothing wired: {}",
                        edgeplane_core::nf::describe(&decision.errors)
                    ),
                },
            )
            .await;
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}
