//! An offer's status: binding counts, the bindings' selector, and `Ready`.

use std::collections::BTreeSet;
use std::sync::Arc;

use edgeplane_api::constraint::binding_selector;
use edgeplane_api::{
    Compliance, ConstraintPolicyBinding, ConstraintPolicyOffer, ConstraintPolicyOfferStatus,
};
use jiff::Timestamp;

use super::condition;
use crate::offers::{Candidate, DesiredBinding, OfferError};

/// The offer's condition type.
pub const CONDITION_READY: &str = "Ready";

/// What an offer names that is not there: policies of its namespace, and sites its Site
/// targets list by name that the network topology lacks (`spec.targets[1].sites: stadium`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Missing<'a> {
    pub policies: Vec<&'a str>,
    pub sites: Vec<String>,
}

/// The sites `offer`'s Site targets list by name that are not among `sites`, per target:
/// such a target binds only the sites that exist, so the offer says which it could not.
pub fn unknown_sites(offer: &ConstraintPolicyOffer, sites: &[Candidate]) -> Vec<String> {
    let known: BTreeSet<&str> = sites.iter().map(|c| c.reference.name.as_str()).collect();
    offer
        .spec
        .targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let missing: Vec<&str> = t
                .sites
                .iter()
                .flatten()
                .map(String::as_str)
                .filter(|s| !known.contains(s))
                .collect();
            (!missing.is_empty())
                .then(|| format!("spec.targets[{i}].sites: {}", missing.join(", ")))
        })
        .collect()
}

/// The offer's status from what the reconcile saw: binding counts (the desired set when
/// the offer expands, the existing one when it does not), the bindings' selector, and the
/// Ready condition (False with the expansion error, or naming missing policies or sites).
pub fn offer_status(
    offer: &ConstraintPolicyOffer,
    expansion: Result<&[DesiredBinding], OfferError>,
    existing: &[Arc<ConstraintPolicyBinding>],
    missing: &Missing<'_>,
    previous: &ConstraintPolicyOfferStatus,
    now: Timestamp,
) -> ConstraintPolicyOfferStatus {
    let names: BTreeSet<&str> = match &expansion {
        Ok(desired) => desired.iter().map(|d| d.name.as_str()).collect(),
        Err(_) => existing
            .iter()
            .filter_map(|b| b.metadata.name.as_deref())
            .collect(),
    };
    let compliant = existing
        .iter()
        .filter(|b| {
            b.metadata
                .name
                .as_deref()
                .is_some_and(|n| names.contains(n))
        })
        .filter(|b| {
            b.status
                .as_ref()
                .is_some_and(|s| s.compliance == Compliance::Compliant)
        })
        .count();
    let bindings = format!(
        "{} binding{}",
        names.len(),
        if names.len() == 1 { "" } else { "s" }
    );
    let (status, reason, message) = match (&expansion, missing.policies.as_slice()) {
        (Err(e), _) => ("False", "InvalidOffer", e.to_string()),
        (Ok(_), []) if missing.sites.is_empty() => ("True", "Expanded", bindings),
        (Ok(_), []) => (
            "False",
            "SiteNotFound",
            format!(
                "not in the network topology: {} ({bindings} for the sites it has)",
                missing.sites.join("; ")
            ),
        ),
        (Ok(_), missing) => (
            "False",
            "PolicyNotFound",
            format!(
                "polic{} {} not found in namespace {}",
                if missing.len() == 1 { "y" } else { "ies" },
                missing.join(", "),
                offer.metadata.namespace.clone().unwrap_or_default()
            ),
        ),
    };
    let generation = offer.metadata.generation;
    ConstraintPolicyOfferStatus {
        binding_count: i32::try_from(names.len()).unwrap_or(i32::MAX),
        compliant_binding_count: i32::try_from(compliant).unwrap_or(i32::MAX),
        binding_selector: binding_selector(offer.metadata.name.as_deref().unwrap_or_default()),
        observed_generation: generation,
        conditions: vec![condition(
            &previous.conditions,
            CONDITION_READY,
            status,
            reason,
            &message,
            now,
            generation,
        )],
    }
}

/// The reason of the offer's `Ready` condition.
pub fn ready_reason(status: &ConstraintPolicyOfferStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{
        ConstraintPolicyBindingStatus, ConstraintPolicyOfferSpec, OfferTarget, TargetKind,
        ViolationPolicy,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn offer() -> ConstraintPolicyOffer {
        let mut o = ConstraintPolicyOffer::new(
            "ar",
            ConstraintPolicyOfferSpec {
                targets: vec![OfferTarget {
                    name: Some("r".into()),
                    api_version: None,
                    kind: TargetKind::Pod,
                    mode: None,
                    label_selector: None,
                    sites: None,
                }],
                policies: vec!["p".into()],
                period: "30s".into(),
                grace: "1m".into(),
                violation_policy: ViolationPolicy::Ignore,
                mitigation_grace: None,
            },
        );
        o.metadata.namespace = Some("ns".into());
        o.metadata.generation = Some(3);
        o
    }

    fn existing(name: &str, c: Compliance) -> ConstraintPolicyBinding {
        let mut b = ConstraintPolicyBinding::new(
            name,
            edgeplane_api::ConstraintPolicyBindingSpec {
                offer: "ar".into(),
                targets: Default::default(),
            },
        );
        b.status = Some(ConstraintPolicyBindingStatus {
            compliance: c,
            ..Default::default()
        });
        b
    }

    fn desired(name: &str) -> DesiredBinding {
        DesiredBinding {
            name: name.into(),
            targets: Default::default(),
        }
    }

    #[test]
    fn status_counts_desired_bindings_and_keeps_transition_times() {
        let now = Timestamp::from_second(1_000).unwrap_or_default();
        let later = Timestamp::from_second(2_000).unwrap_or_default();
        let o = offer();
        let want = [desired("a"), desired("b")];
        let have = [
            Arc::new(existing("a", Compliance::Compliant)),
            Arc::new(existing("gone", Compliance::Compliant)),
        ];
        let s = offer_status(
            &o,
            Ok(&want),
            &have,
            &Missing::default(),
            &Default::default(),
            now,
        );
        assert_eq!((s.binding_count, s.compliant_binding_count), (2, 1));
        assert_eq!(s.binding_selector, "constraint.edgeplane.io/offer=ar");
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            (
                s.conditions[0].status.as_str(),
                s.conditions[0].reason.as_str(),
                s.conditions[0].message.as_str()
            ),
            ("True", "Expanded", "2 bindings")
        );
        // The same again later: identical, so nothing is written.
        assert_eq!(
            offer_status(&o, Ok(&want), &have, &Missing::default(), &s, later),
            s
        );

        let policies = Missing {
            policies: vec!["p"],
            sites: Vec::new(),
        };
        let missing = offer_status(&o, Ok(&want), &have, &policies, &s, later);
        assert_eq!(missing.conditions[0].reason, "PolicyNotFound");
        assert_eq!(
            missing.conditions[0].message,
            "policy p not found in namespace ns"
        );
        assert_eq!(missing.conditions[0].last_transition_time, Time(later));

        let error = OfferError {
            field: "spec.targets[0].kind".into(),
            message: "Cluster targets are not supported yet".into(),
        };
        let invalid = offer_status(&o, Err(error), &have, &Missing::default(), &s, later);
        // Invalid offers keep (and count) their existing bindings.
        assert_eq!(
            (invalid.binding_count, invalid.compliant_binding_count),
            (2, 2)
        );
        assert_eq!(invalid.conditions[0].reason, "InvalidOffer");
        assert_eq!(
            invalid.conditions[0].message,
            "spec.targets[0].kind: Cluster targets are not supported yet"
        );
    }

    #[test]
    fn sites_an_offer_lists_that_the_topology_lacks_are_named_with_their_target() {
        let mut o = offer();
        let site_target = |sites: &[&str]| OfferTarget {
            name: None,
            api_version: None,
            kind: TargetKind::Site,
            mode: None,
            label_selector: None,
            sites: Some(sites.iter().map(|s| s.to_string()).collect()),
        };
        o.spec
            .targets
            .push(site_target(&["stadium", "edge-1", "fan-zone"]));
        o.spec.targets.push(site_target(&["edge-1"]));
        let known = [Candidate {
            reference: edgeplane_api::TargetRef::site("edge-1"),
            labels: Default::default(),
        }];
        let unknown = unknown_sites(&o, &known);
        assert_eq!(unknown, ["spec.targets[1].sites: stadium, fan-zone"]);
        assert!(unknown_sites(&offer(), &[]).is_empty());

        let now = Timestamp::from_second(1_000).unwrap_or_default();
        let missing = Missing {
            policies: Vec::new(),
            sites: unknown,
        };
        let s = offer_status(
            &o,
            Ok(&[desired("a")]),
            &[],
            &missing,
            &Default::default(),
            now,
        );
        assert_eq!(
            (
                s.conditions[0].status.as_str(),
                s.conditions[0].reason.as_str(),
                s.conditions[0].message.as_str()
            ),
            (
                "False",
                "SiteNotFound",
                "not in the network topology: spec.targets[1].sites: stadium, fan-zone (1 binding for the sites it has)"
            )
        );
        assert_eq!(s.binding_count, 1);
    }
}
