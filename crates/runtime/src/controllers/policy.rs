//! Policy status: `ruleCount`, `observedGeneration` and a `Valid` condition naming the
//! first invalid rule, so `kubectl get cp` tells whether a policy can be used.
//!
//! A rule is valid when its built-in provider parses its values, or when an external
//! provider is registered for its name (the provider parses its own values). A rule name
//! with neither is invalid until a provider registers.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::names::{CONSTRAINT_API_VERSION, PROVIDER_LABEL_PREFIX};
use edgeplane_api::{ConstraintPolicy, ConstraintPolicyStatus};
use edgeplane_core::rules::builtin_metric;
use edgeplane_core::validate;
use futures::StreamExt;
use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::offer::condition;
use super::{Shared, all_refs, drive, instrumented, reconcile_everything};
use crate::cache::{Caches, Change};
use crate::context::Context;
use crate::error::Error;
use crate::events::{EventSpec, EventType, reasons};
use crate::providers::ProviderRegistry;

pub const CONDITION_VALID: &str = "Valid";

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
    ctx.apply_status(
        &Api::<ConstraintPolicy>::namespaced(ctx.client.clone(), &namespace),
        &name,
        json!({
            "apiVersion": CONSTRAINT_API_VERSION,
            "kind": "ConstraintPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }),
    )
    .await?;
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
                    note: format!("policy {namespace}/{name}: {message}"),
                },
            )
            .await;
    }
    Ok(Action::await_change())
}

/// The status of a policy: rule count and `Valid` with the first problem.
pub fn policy_status(
    policy: &ConstraintPolicy,
    has_external: &dyn Fn(&str) -> bool,
    previous: &ConstraintPolicyStatus,
    now: Timestamp,
) -> ConstraintPolicyStatus {
    let mut problems: Vec<String> = validate::policy(policy)
        .into_iter()
        // An external provider parses its own values; validate only checks built-ins.
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    for (i, rule) in policy.spec.rules.iter().enumerate() {
        if builtin_metric(&rule.name).is_none() && !has_external(&rule.name) {
            problems.push(format!(
                "spec.rules[{i}].name: no provider for rule {} (neither built-in nor registered by a Service labelled {PROVIDER_LABEL_PREFIX}{}: enabled)",
                rule.name, rule.name
            ));
        }
    }
    // Field order: problems of earlier rules first.
    problems.sort_by_key(|p| rule_index(p));
    let generation = policy.metadata.generation;
    let n = policy.spec.rules.len();
    let (status, reason, message) = match problems.first() {
        None => (
            "True",
            "RulesValid",
            format!("{n} rule{} with a provider", if n == 1 { "" } else { "s" }),
        ),
        Some(first) => ("False", "InvalidRule", first.clone()),
    };
    ConstraintPolicyStatus {
        rule_count: Some(i32::try_from(n).unwrap_or(i32::MAX)),
        observed_generation: generation,
        conditions: vec![condition(
            &previous.conditions,
            CONDITION_VALID,
            status,
            reason,
            &message,
            now,
            generation,
        )],
    }
}

/// `spec.rules[3].request: ...` -> 3; other fields first.
fn rule_index(problem: &str) -> i64 {
    problem
        .strip_prefix("spec.rules[")
        .and_then(|r| r.split(']').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{ConstraintPolicyRule, ConstraintPolicySpec};

    fn policy(rules: &[(&str, &str)]) -> ConstraintPolicy {
        let mut p = ConstraintPolicy::new(
            "p",
            ConstraintPolicySpec {
                rules: rules
                    .iter()
                    .map(|(n, r)| ConstraintPolicyRule {
                        name: (*n).into(),
                        request: (*r).into(),
                        limit: None,
                    })
                    .collect(),
            },
        );
        p.metadata.namespace = Some("ns".into());
        p
    }

    #[test]
    fn valid_names_the_first_invalid_rule() {
        let now = Timestamp::from_second(1_000).unwrap_or_default();
        let none = |_: &str| false;
        let ok = policy_status(
            &policy(&[("latency", "5ms"), ("cpu", "4")]),
            &none,
            &Default::default(),
            now,
        );
        assert_eq!(ok.rule_count, Some(2));
        assert_eq!(
            (
                ok.conditions[0].status.as_str(),
                ok.conditions[0].message.as_str()
            ),
            ("True", "2 rules with a provider")
        );
        let bad = policy_status(
            &policy(&[("gpu-temp", "70"), ("latency", "fast")]),
            &none,
            &ok,
            now,
        );
        assert_eq!(bad.conditions[0].status, "False");
        assert!(
            bad.conditions[0]
                .message
                .starts_with("spec.rules[0].name: no provider for rule gpu-temp"),
            "{}",
            bad.conditions[0].message
        );
        // Once a provider registers for it, the external rule is valid; the bad value is next.
        let registered = |r: &str| r == "gpu-temp";
        let next = policy_status(
            &policy(&[("gpu-temp", "70"), ("latency", "fast")]),
            &registered,
            &bad,
            now,
        );
        assert!(
            next.conditions[0]
                .message
                .starts_with("spec.rules[1].request:"),
            "{}",
            next.conditions[0].message
        );
    }
}
