//! Policy status: `ruleCount`, `observedGeneration` and a `Valid` condition naming the
//! first invalid rule, so `kubectl get cp` tells whether a policy can be used.
//!
//! A rule is valid when its built-in provider parses its values, or when an external
//! provider is registered for its name (the provider parses its own values). A rule name
//! with neither is invalid until a provider registers.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::names::PROVIDER_LABEL_PREFIX;
use edgeplane_api::{ConstraintPolicy, ConstraintPolicyStatus};
use edgeplane_core::status::{CONDITION_VALID, policy_status};
use futures::StreamExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::{Shared, all_refs, drive, instrumented, reconcile_everything};
use crate::cache::{Caches, Change};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::providers::ProviderRegistry;

type PolicyShared = Shared<ConstraintPolicy, Arc<ProviderRegistry>>;

pub async fn run(ctx: Context, caches: Caches, providers: Arc<ProviderRegistry>) {
    let c = caches.clone();
    let policies = caches.policies.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            if old.is_none_or(|o| o.metadata.generation != new.metadata.generation) {
                vec![ObjectRef::from_obj(&*new)]
            } else {
                vec![]
            }
        }
        Change::Deleted(_) => vec![],
        Change::Resynced => all_refs(&c.policies),
    });
    let c = caches.clone();
    let services = caches.services.changes().map(move |change| match change {
        Change::Applied { old, new } => {
            let labels = |s: &k8s_openapi::api::core::v1::Service| {
                s.labels()
                    .iter()
                    .filter(|(k, _)| k.starts_with(PROVIDER_LABEL_PREFIX))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            };
            if old.is_none_or(|o| labels(&o) != labels(&new)) {
                all_refs(&c.policies)
            } else {
                vec![]
            }
        }
        Change::Deleted(_) | Change::Resynced => all_refs(&c.policies),
    });
    let c = caches.clone();
    let everything = reconcile_everything(&ctx, &caches).map(move |()| all_refs(&c.policies));
    let triggers =
        futures::stream::select_all([policies.boxed(), services.boxed(), everything.boxed()])
            .flat_map(futures::stream::iter);
    let shared = Arc::new(Shared {
        ctx,
        caches: caches.clone(),
        backoff: Default::default(),
        name: "policy-status",
        extra: providers,
    });
    drive(
        shared,
        &caches.policies,
        triggers,
        2,
        Duration::ZERO,
        |p, shared| {
            let s = shared.clone();
            instrumented(p.clone(), shared, async move { reconcile(p, s).await })
        },
    )
    .await;
}

async fn reconcile(
    policy: Arc<ConstraintPolicy>,
    shared: Arc<PolicyShared>,
) -> Result<Action, Error> {
    let ctx = &shared.ctx;
    if !ctx.leadership.is_leader() || policy.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let services = shared.caches.services.list();
    let has_external = |rule: &str| shared.extra.has_external(rule, &services);
    let previous = policy.status.clone().unwrap_or_default();
    let status = policy_status(&policy, &has_external, &previous, ctx.clock.now());
    if policy.status.as_ref() == Some(&status) {
        return Ok(Action::await_change());
    }
    let name = policy.name_any();
    let namespace = policy
        .namespace()
        .ok_or_else(|| Error::Invalid(format!("policy {name} has no namespace")))?;
    ctx.apply_status(Some(&namespace), &name, &status).await?;
    let valid = |s: &ConstraintPolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == CONDITION_VALID)
            .map(|c| (c.status == "True", c.message.clone()))
    };
    if let Some((false, message)) = valid(&status)
        && valid(&previous).is_none_or(|(ok, m)| ok || m != message)
    {
        ctx.events()
            .publish_or_log(
                &policy.object_ref(&()),
                EventSpec {
                    type_: EventType::Warning,
                    reason: reasons::POLICY_INVALID,
                    action: "Validate",
                    note: message.to_string(),
                },
            )
            .await;
    }
    Ok(Action::await_change())
}
