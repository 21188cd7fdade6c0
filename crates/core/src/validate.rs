//! Validation of edgeplane objects beyond what their schemas can say: values that must
//! parse for their provider, durations, selectors, roles. Every error names its field.

use std::collections::BTreeSet;

use edgeplane_api::{ConstraintPolicy, ConstraintPolicyOffer, TargetKind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::rules::{Rule, builtin_metric};
use crate::selector::Selector;
use crate::values::parse_duration_field;

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Name and namespace must be DNS-1123 subdomains (names) and labels (namespaces).
pub fn metadata(meta: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match meta.name.as_deref() {
        None | Some("") => errors.push(FieldError::new("metadata.name", "is required")),
        Some(name) if !is_dns_subdomain(name) => errors.push(FieldError::new(
            "metadata.name",
            format!("{name:?} is not a valid name (lowercase letters, digits, '-' and '.')"),
        )),
        Some(_) => {}
    }
    if namespaced
        && let Some(ns) = meta.namespace.as_deref()
        && !is_dns_label(ns)
    {
        errors.push(FieldError::new(
            "metadata.namespace",
            format!("{ns:?} is not a valid namespace"),
        ));
    }
    errors
}

/// Validates a policy: every rule of a built-in provider must parse; names are unique.
pub fn policy(policy: &ConstraintPolicy) -> Vec<FieldError> {
    let mut errors = metadata(&policy.metadata, true);
    if policy.spec.rules.is_empty() {
        errors.push(FieldError::new(
            "spec.rules",
            "a policy needs at least one rule",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, rule) in policy.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        if !is_dns_subdomain(&rule.name) {
            errors.push(FieldError::new(
                format!("{field}.name"),
                format!("{:?} is not a valid rule name", rule.name),
            ));
        }
        if !names.insert(rule.name.as_str()) {
            errors.push(FieldError::new(
                format!("{field}.name"),
                format!("rule {:?} appears twice", rule.name),
            ));
        }
        // External providers parse their own values; only built-ins are checked here.
        if let Some(metric) = builtin_metric(&rule.name)
            && let Err(e) = Rule::parse(rule, metric)
        {
            errors.push(FieldError::new(
                format!("{field}.{}", e.field),
                e.source.to_string(),
            ));
        }
    }
    errors
}

/// Validates an offer's fields that do not depend on what exists in the cluster.
pub fn offer(offer: &ConstraintPolicyOffer) -> Vec<FieldError> {
    let mut errors = metadata(&offer.metadata, true);
    if offer.metadata.name.as_deref().is_some_and(|n| n.len() > 63) {
        errors.push(FieldError::new(
            "metadata.name",
            "an offer's name must be at most 63 characters (it labels its bindings)",
        ));
    }
    let spec = &offer.spec;
    for (field, text) in [
        ("spec.period", Some(&spec.period)),
        ("spec.grace", Some(&spec.grace)),
        ("spec.mitigationGrace", spec.mitigation_grace.as_ref()),
    ] {
        if let Some(text) = text
            && let Err(e) = parse_duration_field(text)
        {
            errors.push(FieldError::new(field, e.to_string()));
        }
    }
    if parse_duration_field(&spec.period).is_ok_and(|p| p.is_zero()) {
        errors.push(FieldError::new("spec.period", "must be longer than 0"));
    }
    if spec.targets.is_empty() {
        errors.push(FieldError::new(
            "spec.targets",
            "an offer needs at least one target",
        ));
    }
    if spec.policies.is_empty() {
        errors.push(FieldError::new(
            "spec.policies",
            "an offer needs at least one policy",
        ));
    }
    for (i, name) in spec.policies.iter().enumerate() {
        if !is_dns_subdomain(name) {
            errors.push(FieldError::new(
                format!("spec.policies[{i}]"),
                format!("{name:?} is not a valid policy name"),
            ));
        }
    }
    let mut roles = BTreeSet::new();
    for (i, target) in spec.targets.iter().enumerate() {
        let field = format!("spec.targets[{i}]");
        let role = crate::offers::role_name(offer, i);
        if !is_dns_label(&role) {
            errors.push(FieldError::new(
                format!("{field}.name"),
                format!("{role:?} is not a valid role name"),
            ));
        }
        if !roles.insert(role.clone()) {
            errors.push(FieldError::new(
                format!("{field}.name"),
                format!("role {role:?} is used twice"),
            ));
        }
        if let Some(api_version) = &target.api_version
            && api_version != target.kind.default_api_version()
        {
            errors.push(FieldError::new(
                format!("{field}.apiVersion"),
                format!(
                    "{api_version:?} does not serve {} (expected {})",
                    target.kind,
                    target.kind.default_api_version()
                ),
            ));
        }
        if let Some(selector) = &target.label_selector
            && let Err(e) = Selector::compile(selector)
        {
            errors.push(FieldError::new(
                format!("{field}.labelSelector.{}", e.field),
                e.problem.to_string(),
            ));
        }
        if target.sites.is_some() && target.kind != TargetKind::Site {
            errors.push(FieldError::new(
                format!("{field}.sites"),
                "only Site targets list sites",
            ));
        }
        if target.mode.is_some() && target.kind != TargetKind::ServiceChain {
            errors.push(FieldError::new(
                format!("{field}.mode"),
                "only ServiceChain targets have a mode",
            ));
        }
        if target.kind == TargetKind::Cluster {
            errors.push(FieldError::new(
                format!("{field}.kind"),
                format!(
                    "Cluster targets are not supported yet (supported: {})",
                    crate::offers::SUPPORTED_KINDS
                ),
            ));
        }
    }
    errors
}

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{
        ConstraintPolicyOfferSpec, ConstraintPolicyRule, ConstraintPolicySpec, OfferTarget,
        ViolationPolicy,
    };

    fn policy_with(rules: Vec<(&str, &str, Option<&str>)>) -> ConstraintPolicy {
        let mut p = ConstraintPolicy::new(
            "p",
            ConstraintPolicySpec {
                rules: rules
                    .into_iter()
                    .map(|(n, r, l)| ConstraintPolicyRule {
                        name: n.into(),
                        request: r.into(),
                        limit: l.map(Into::into),
                    })
                    .collect(),
            },
        );
        p.metadata.namespace = Some("default".into());
        p
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn policies() {
        assert!(
            policy(&policy_with(vec![
                ("latency", "5ms", Some("10ms")),
                ("my-provider", "anything", None)
            ]))
            .is_empty()
        );
        assert_eq!(
            fields(policy(&policy_with(vec![(
                "latency",
                "5ms",
                Some("10 ms")
            )]))),
            vec![
                "spec.rules[0].limit: \"10 ms\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)"
            ]
        );
        assert_eq!(
            fields(policy(&policy_with(vec![
                ("cpu", "4", None),
                ("cpu", "2", None)
            ]))),
            vec!["spec.rules[1].name: rule \"cpu\" appears twice"]
        );
        assert_eq!(
            fields(policy(&policy_with(vec![]))),
            vec!["spec.rules: a policy needs at least one rule"]
        );
    }

    #[test]
    fn offers() {
        let target = |kind| OfferTarget {
            name: None,
            api_version: None,
            kind,
            mode: None,
            label_selector: None,
            sites: None,
        };
        let mut o = ConstraintPolicyOffer::new(
            "o",
            ConstraintPolicyOfferSpec {
                targets: vec![target(TargetKind::Pod), target(TargetKind::Site)],
                policies: vec!["p".into()],
                period: "30s".into(),
                grace: "5 minutes".into(),
                violation_policy: ViolationPolicy::Evict,
                mitigation_grace: None,
            },
        );
        assert_eq!(
            fields(offer(&o)),
            vec![
                "spec.grace: \"5 minutes\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)"
            ]
        );
        o.spec.grace = "5m".into();
        o.spec.period = "0s".into();
        o.spec.targets[0].sites = Some(vec!["x".into()]);
        o.spec.targets[1].name = Some("target-0".into());
        assert_eq!(
            fields(offer(&o)),
            vec![
                "spec.period: must be longer than 0",
                "spec.targets[0].sites: only Site targets list sites",
                "spec.targets[1].name: role \"target-0\" is used twice",
            ]
        );
    }
}
