//! A MecApplication's status from the hub's plan: where its components run, what is left
//! unplaced, the worst compliance of its rules, and `Placed` (True when every replica has
//! a cluster; otherwise False with the first unplaced component's reason), so `kubectl
//! get mecapp` tells whether the application runs as asked.

use edgeplane_api::multicluster::{ClusterPlacement, MecApplication, MecApplicationStatus};
use jiff::Timestamp;

use super::{OwnedStatus, condition};
use crate::hub::AppPlan;

/// The condition that says whether every replica has a cluster.
pub const CONDITION_PLACED: &str = "Placed";
/// The condition that says whether no rule of the application is in Violation (or
/// Error); its transition time is since when, which the hub's closed loop compares with
/// its grace.
pub const CONDITION_RULES_HOLD: &str = "RulesHold";

pub fn application_status(
    app: &MecApplication,
    plan: &AppPlan,
    previous: &MecApplicationStatus,
    now: Timestamp,
) -> MecApplicationStatus {
    let generation = app.metadata.generation;
    let placement: Vec<ClusterPlacement> = plan
        .placement
        .iter()
        .map(|share| ClusterPlacement {
            cluster: share.cluster.clone(),
            components: share
                .components
                .iter()
                .map(|(c, n)| (c.clone(), i32::try_from(*n).unwrap_or(i32::MAX)))
                .collect(),
        })
        .collect();
    let (status, reason, message) = match plan.unplaced.iter().next() {
        None => {
            let clusters = placement.len();
            (
                "True",
                "Placed",
                format!(
                    "every replica placed on {clusters} cluster{}",
                    if clusters == 1 { "" } else { "s" }
                ),
            )
        }
        Some((component, unplaced)) => (
            "False",
            "Unplaced",
            format!(
                "{component}: {} replica{} unplaced: {}",
                unplaced.replicas,
                if unplaced.replicas == 1 { "" } else { "s" },
                unplaced.reason
            ),
        ),
    };
    MecApplicationStatus {
        cluster_count: i32::try_from(placement.len()).unwrap_or(i32::MAX),
        placement,
        unplaced: plan
            .unplaced
            .iter()
            .map(|(c, u)| (c.clone(), i32::try_from(u.replicas).unwrap_or(i32::MAX)))
            .collect(),
        compliance: plan.compliance(),
        conditions: vec![
            condition(
                &previous.conditions,
                CONDITION_PLACED,
                status,
                reason,
                &message,
                now,
                generation,
            ),
            rules_hold(plan, &previous.conditions, now, generation),
        ],
    }
}

fn rules_hold(
    plan: &AppPlan,
    previous: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    now: Timestamp,
    generation: Option<i64>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    use edgeplane_api::Compliance;
    let broken = plan
        .rules
        .iter()
        .find(|r| matches!(r.compliance, Compliance::Violation | Compliance::Error));
    match broken {
        None => condition(
            previous,
            CONDITION_RULES_HOLD,
            "True",
            "RulesHold",
            "no rule in Violation",
            now,
            generation,
        ),
        Some(rule) => condition(
            previous,
            CONDITION_RULES_HOLD,
            "False",
            rule.compliance.as_str(),
            &format!("policy {} rule {}: {}", rule.policy, rule.rule, rule.reason),
            now,
            generation,
        ),
    }
}

impl OwnedStatus for MecApplicationStatus {
    type Object = MecApplication;
    const FIELD_MANAGER: &'static str = crate::hub::karmada::FIELD_MANAGER;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edgeplane_api::Compliance;
    use serde_json::json;

    use super::*;
    use crate::hub::{RuleVerdict, Share, Unplaced};

    #[test]
    fn the_status_says_where_and_why_not() {
        let app: MecApplication = serde_json::from_value(json!({
            "apiVersion": "multicluster.edgeplane.io/v1alpha1", "kind": "MecApplication",
            "metadata": {"name": "ar-game", "namespace": "ar", "generation": 3},
            "spec": {"components": [
                {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"}, "replicas": 6}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut plan = AppPlan {
            namespace: "ar".into(),
            name: "ar-game".into(),
            placement: vec![Share {
                cluster: "edge-east".into(),
                components: BTreeMap::from([("render".into(), 4)]),
            }],
            unplaced: BTreeMap::from([(
                "render".into(),
                Unplaced {
                    replicas: 2,
                    reason:
                        "no cluster has 1 cpu free for one replica (largest free: 0 on edge-west)"
                            .into(),
                },
            )]),
            rules: vec![RuleVerdict {
                policy: "near-fans".into(),
                rule: "latency".into(),
                compliance: Compliance::Limit,
                value: Some("3ms".into()),
                cost: 0.3,
                reason: String::new(),
            }],
            warnings: Vec::new(),
        };
        let t0 = Timestamp::UNIX_EPOCH;
        let status = application_status(&app, &plan, &MecApplicationStatus::default(), t0);
        assert_eq!(status.cluster_count, 1);
        assert_eq!(status.placement[0].components["render"], 4);
        assert_eq!(status.unplaced["render"], 2);
        assert_eq!(status.compliance, Compliance::Limit);
        let placed = &status.conditions[0];
        assert_eq!(
            (placed.status.as_str(), placed.reason.as_str()),
            ("False", "Unplaced")
        );
        assert_eq!(
            placed.message,
            "render: 2 replicas unplaced: no cluster has 1 cpu free for one replica (largest free: 0 on edge-west)"
        );
        assert_eq!(placed.observed_generation, Some(3));

        // Placed later: the condition turns True and its transition time moves.
        plan.unplaced.clear();
        let later = Timestamp::from_second(60).unwrap_or(t0);
        let next = application_status(&app, &plan, &status, later);
        assert_eq!(next.conditions[0].status, "True");
        assert_eq!(
            next.conditions[0].message,
            "every replica placed on 1 cluster"
        );
        assert_ne!(
            next.conditions[0].last_transition_time,
            status.conditions[0].last_transition_time
        );
        assert!(next.unplaced.is_empty());
    }
}
