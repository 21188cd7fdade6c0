//! A policy's status: rule count and `Valid` with the first problem.
//!
//! A rule is valid when its built-in provider parses its values, or when an external
//! provider is registered for its name (the provider parses its own values). A rule name
//! with neither is invalid until a provider registers.

use edgeplane_api::names::PROVIDER_LABEL_PREFIX;
use edgeplane_api::{ConstraintPolicy, ConstraintPolicyStatus};
use jiff::Timestamp;

use super::condition;
use crate::rules::builtin_metric;
use crate::validate;

/// The condition type of policies and topologies.
pub const CONDITION_VALID: &str = "Valid";

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
