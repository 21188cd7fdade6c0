//! The binding status state machine: from the previous status, this evaluation's results
//! and the time, the next status; and what a change of it tells `kubectl describe`.

use std::collections::BTreeMap;
use std::time::Duration;

use edgeplane_api::{
    Compliance, ConstraintPolicyBindingStatus, PolicyDetail, RuleDetail, TargetRef,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::condition;
use crate::events::{EventSpec, EventType, reasons};
use crate::rules::worst;

/// The result of evaluating one rule of one policy for a binding.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleOutcome {
    pub rule: String,
    pub compliance: Compliance,
    /// The measured value as printed (`3.2ms`); for pairwise rules the worst pair's.
    pub value: Option<String>,
    pub reason: Option<String>,
}

/// The results of one policy. `error` is set when the policy itself could not be used
/// (it does not exist, or a rule does not parse); its rules are then empty.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyOutcome {
    pub policy: String,
    pub rules: Vec<RuleOutcome>,
    pub error: Option<String>,
}

impl PolicyOutcome {
    pub fn compliance(&self) -> Compliance {
        if self.error.is_some() {
            Compliance::Error
        } else {
            worst(self.rules.iter().map(|r| r.compliance))
        }
    }
}

/// The next status, and what changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub status: ConstraintPolicyBindingStatus,
    /// `(from, to)` when the compliance changed.
    pub transition: Option<(Compliance, Compliance)>,
    /// The binding has been in Violation, continuously, for at least `grace`.
    pub grace_elapsed: bool,
}

pub const CONDITION_COMPLIANT: &str = "Compliant";
pub const CONDITION_GRACE_ELAPSED: &str = "GraceElapsed";

/// Whether the status can change with time alone, its inputs unchanged: a Violation
/// whose grace has not elapsed yet (the GraceElapsed condition turns True).
pub fn changes_with_time(status: &ConstraintPolicyBindingStatus) -> bool {
    status.compliance == Compliance::Violation
        && !status
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_GRACE_ELAPSED && c.status == "True")
}

/// Computes the next status of a binding.
///
/// - `compliance` is the worst over policies (a policy is the worst over its rules);
/// - `firstReason` is the reason of the first policy, then rule, at that compliance;
/// - `lastComplianceChangeTimestamp` moves only when the compliance changes (or is first set);
/// - `violatingSince` is set on entering Violation, kept while in it, cleared on leaving;
/// - `lastMitigatedTimestamp` is carried over (the descheduler owns it).
pub fn next_status(
    previous: Option<&ConstraintPolicyBindingStatus>,
    outcomes: &[PolicyOutcome],
    now: Timestamp,
    grace: Duration,
    generation: Option<i64>,
) -> Evaluation {
    let before = previous.map(|p| p.compliance).unwrap_or_default();
    let compliance = worst(outcomes.iter().map(PolicyOutcome::compliance));

    let details: Vec<PolicyDetail> = outcomes
        .iter()
        .map(|p| PolicyDetail {
            policy: p.policy.clone(),
            compliance: p.compliance(),
            reason: p.error.clone().or_else(|| {
                let c = p.compliance();
                p.rules
                    .iter()
                    .find(|r| r.compliance == c)
                    .and_then(|r| r.reason.clone())
            }),
            rule_details: p
                .rules
                .iter()
                .map(|r| RuleDetail {
                    rule: r.rule.clone(),
                    compliance: r.compliance,
                    value: r.value.clone(),
                    reason: r.reason.clone(),
                })
                .collect(),
        })
        .collect();
    let first_reason = details
        .iter()
        .find(|d| d.compliance == compliance && d.reason.is_some())
        .and_then(|d| d.reason.clone());

    let changed = previous.is_none_or(|p| p.compliance != compliance);
    let last_change = match previous.and_then(|p| p.last_compliance_change_timestamp.clone()) {
        Some(t) if !changed => Some(t),
        _ => Some(Time(now)),
    };
    let violating_since = if compliance == Compliance::Violation {
        previous
            .filter(|p| p.compliance == Compliance::Violation)
            .and_then(|p| p.violating_since.clone())
            .or(Some(Time(now)))
    } else {
        None
    };
    let grace_elapsed = violating_since
        .as_ref()
        .is_some_and(|since| now.duration_since(since.0).as_secs_f64() >= grace.as_secs_f64());

    let previous_conditions = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    let (compliant_status, grace_status) = (
        match compliance {
            Compliance::Compliant | Compliance::Limit => "True",
            Compliance::Violation => "False",
            Compliance::Pending | Compliance::Error => "Unknown",
        },
        if grace_elapsed { "True" } else { "False" },
    );
    let conditions = vec![
        condition(
            previous_conditions,
            CONDITION_COMPLIANT,
            compliant_status,
            compliance.as_str(),
            first_reason.as_deref().unwrap_or(match compliance {
                Compliance::Compliant => "every rule meets its request",
                Compliance::Pending => "not every target is placed or measured yet",
                _ => "",
            }),
            now,
            generation,
        ),
        condition(
            previous_conditions,
            CONDITION_GRACE_ELAPSED,
            grace_status,
            if grace_elapsed {
                "ViolationPastGrace"
            } else {
                "WithinGrace"
            },
            &if grace_elapsed {
                format!(
                    "in Violation for longer than the grace of {}",
                    crate::values::format_duration(grace)
                )
            } else {
                format!("grace is {}", crate::values::format_duration(grace))
            },
            now,
            generation,
        ),
    ];

    let status = ConstraintPolicyBindingStatus {
        compliance,
        first_reason,
        targets: None,
        details,
        last_compliance_change_timestamp: last_change,
        violating_since,
        last_mitigated_timestamp: previous.and_then(|p| p.last_mitigated_timestamp.clone()),
        last_evaluated_timestamp: Some(Time(now)),
        observed_generation: generation,
        conditions,
    };
    Evaluation {
        status,
        transition: changed.then_some((before, compliance)),
        grace_elapsed,
    }
}

/// `status.targets`: each role and the name of the object filling it, in role order,
/// without spaces so that `kubectl get cpb --no-headers | awk` keeps its columns.
pub fn targets_summary(targets: &BTreeMap<String, TargetRef>) -> String {
    targets
        .iter()
        .map(|(role, target)| format!("{role}={}", target.name))
        .collect::<Vec<_>>()
        .join(",")
}

/// Equal but for `lastEvaluatedTimestamp` and `lastMitigatedTimestamp`.
/// Field by field rather than comparing stripped copies: it runs on every evaluation.
pub fn same_status(a: &ConstraintPolicyBindingStatus, b: &ConstraintPolicyBindingStatus) -> bool {
    // Destructured so that a field added to the status cannot be forgotten here.
    let ConstraintPolicyBindingStatus {
        compliance,
        first_reason,
        targets,
        details,
        last_compliance_change_timestamp,
        violating_since,
        last_mitigated_timestamp: _,
        last_evaluated_timestamp: _,
        observed_generation,
        conditions,
    } = a;
    *compliance == b.compliance
        && *first_reason == b.first_reason
        && *targets == b.targets
        && *details == b.details
        && *last_compliance_change_timestamp == b.last_compliance_change_timestamp
        && *violating_since == b.violating_since
        && *observed_generation == b.observed_generation
        && *conditions == b.conditions
}

/// `Compliant -> Violation: latency 12ms between ...`, on the binding itself: the Event
/// names its object, so the note does not (`kubectl describe cpb` lists it under the
/// binding).
pub fn compliance_event(from: Compliance, to: Compliance, reason: Option<&str>) -> EventSpec {
    let type_ = match to {
        Compliance::Violation | Compliance::Error => EventType::Warning,
        _ => EventType::Normal,
    };
    let note = match reason {
        Some(r) => format!("{from} -> {to}: {r}"),
        None => format!("{from} -> {to}"),
    };
    EventSpec {
        type_,
        reason: reasons::COMPLIANCE_CHANGED,
        action: "Evaluate",
        note,
    }
}

/// The Event on each pod a binding targets when the binding's compliance changes, so
/// `kubectl describe pod` tells the story: `binding ar-latency-1b5b441ca8 (renderer):
/// Compliant -> Violation: latency 12ms ...`. Same reason and type as the binding's own.
pub fn pod_compliance_event(
    binding: &str,
    role: &str,
    from: Compliance,
    to: Compliance,
    reason: Option<&str>,
) -> EventSpec {
    let mut event = compliance_event(from, to, reason);
    event.note = format!("binding {binding} ({role}): {}", event.note);
    event
}

/// Notes for rules in Error now that were not before (`rule latency of policy p: ...`),
/// for Events on the binding.
pub fn new_errors(
    previous: Option<&ConstraintPolicyBindingStatus>,
    outcomes: &[PolicyOutcome],
) -> Vec<String> {
    let was_error = |policy: &str, rule: Option<&str>| {
        previous.is_some_and(|p| {
            p.details.iter().any(|d| {
                d.policy == policy
                    && match rule {
                        None => d.compliance == Compliance::Error && d.rule_details.is_empty(),
                        Some(rule) => d
                            .rule_details
                            .iter()
                            .any(|r| r.rule == rule && r.compliance == Compliance::Error),
                    }
            })
        })
    };
    let mut notes = Vec::new();
    for p in outcomes {
        if let Some(error) = &p.error
            && !was_error(&p.policy, None)
        {
            notes.push(format!("policy {}: {error}", p.policy));
        }
        for r in &p.rules {
            if r.compliance == Compliance::Error && !was_error(&p.policy, Some(&r.rule)) {
                notes.push(format!(
                    "rule {} of policy {}: {}",
                    r.rule,
                    p.policy,
                    r.reason.as_deref().unwrap_or("error")
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use Compliance::*;

    fn rule(name: &str, c: Compliance, reason: &str) -> RuleOutcome {
        RuleOutcome {
            rule: name.into(),
            compliance: c,
            value: Some("1ms".into()),
            reason: Some(reason.into()),
        }
    }

    fn policy(name: &str, rules: Vec<RuleOutcome>) -> PolicyOutcome {
        PolicyOutcome {
            policy: name.into(),
            rules,
            error: None,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    const GRACE: Duration = Duration::from_secs(60);

    fn step(prev: Option<&ConstraintPolicyBindingStatus>, c: Compliance, t: i64) -> Evaluation {
        next_status(
            prev,
            &[policy(
                "p",
                vec![rule("latency", c, &format!("latency is {c}"))],
            )],
            at(t),
            GRACE,
            Some(1),
        )
    }

    #[test]
    fn aggregation_and_first_reason() {
        let outcomes = vec![
            policy(
                "a",
                vec![
                    rule("latency", Compliant, "ok"),
                    rule("jitter", Limit, "jitter high"),
                ],
            ),
            policy(
                "b",
                vec![
                    rule("bandwidth", Violation, "too slow"),
                    rule("loss", Violation, "lossy"),
                ],
            ),
        ];
        let e = next_status(None, &outcomes, at(0), GRACE, None);
        assert_eq!(e.status.compliance, Violation);
        assert_eq!(e.status.first_reason.as_deref(), Some("too slow"));
        assert_eq!(e.status.details[0].compliance, Limit);
        assert_eq!(e.status.details[0].reason.as_deref(), Some("jitter high"));
        assert_eq!(e.status.details[1].rule_details.len(), 2);
        assert_eq!(e.transition, Some((Pending, Violation)));

        let missing = PolicyOutcome {
            policy: "gone".into(),
            rules: vec![],
            error: Some("policy gone not found".into()),
        };
        let e = next_status(
            None,
            &[
                policy("a", vec![rule("latency", Violation, "bad")]),
                missing,
            ],
            at(0),
            GRACE,
            None,
        );
        assert_eq!(e.status.compliance, Error);
        assert_eq!(
            e.status.first_reason.as_deref(),
            Some("policy gone not found")
        );
        assert_eq!(
            next_status(None, &[], at(0), GRACE, None).status.compliance,
            Pending
        );
    }

    #[test]
    fn change_timestamp_moves_only_on_change() {
        let first = step(None, Compliant, 0);
        assert_eq!(
            first.status.last_compliance_change_timestamp,
            Some(Time(at(0)))
        );
        let same = step(Some(&first.status), Compliant, 30);
        assert_eq!(same.transition, None);
        assert_eq!(
            same.status.last_compliance_change_timestamp,
            Some(Time(at(0)))
        );
        assert_eq!(same.status.last_evaluated_timestamp, Some(Time(at(30))));
        let changed = step(Some(&same.status), Limit, 60);
        assert_eq!(changed.transition, Some((Compliant, Limit)));
        assert_eq!(
            changed.status.last_compliance_change_timestamp,
            Some(Time(at(60)))
        );
    }

    #[test]
    fn violating_since_and_grace() {
        let ok = step(None, Compliant, 0);
        assert_eq!(ok.status.violating_since, None);
        let v1 = step(Some(&ok.status), Violation, 10);
        assert_eq!(v1.status.violating_since, Some(Time(at(10))));
        assert!(!v1.grace_elapsed);
        let v2 = step(Some(&v1.status), Violation, 69);
        assert_eq!(v2.status.violating_since, Some(Time(at(10))));
        assert!(!v2.grace_elapsed);
        let v3 = step(Some(&v2.status), Violation, 70);
        assert!(v3.grace_elapsed);
        let grace = v3
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_GRACE_ELAPSED);
        assert_eq!(
            grace.map(|c| (c.status.as_str(), c.last_transition_time.clone())),
            Some(("True", Time(at(70))))
        );
        // Leaving Violation clears it; flapping back restarts the clock.
        let back = step(Some(&v3.status), Limit, 80);
        assert_eq!(back.status.violating_since, None);
        assert!(!back.grace_elapsed);
        let again = step(Some(&back.status), Violation, 90);
        assert_eq!(again.status.violating_since, Some(Time(at(90))));
        // Error interrupts a violation: it never counts towards grace.
        let err = step(Some(&again.status), Error, 200);
        assert_eq!(err.status.violating_since, None);
        assert!(!err.grace_elapsed);
    }

    #[test]
    fn mitigation_timestamp_is_carried_and_conditions_keep_transition_times() {
        let mut first = step(None, Compliant, 0).status;
        first.last_mitigated_timestamp = Some(Time(at(-5)));
        let next = step(Some(&first), Compliant, 30).status;
        assert_eq!(next.last_mitigated_timestamp, Some(Time(at(-5))));
        let compliant = next
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_COMPLIANT);
        assert_eq!(
            compliant.map(|c| c.last_transition_time.clone()),
            Some(Time(at(0)))
        );
        assert_eq!(compliant.map(|c| c.status.as_str()), Some("True"));
    }

    #[test]
    fn events_and_status_comparison() {
        let e = compliance_event(
            Compliance::Compliant,
            Compliance::Violation,
            Some("latency 8ms ..."),
        );
        assert_eq!(e.type_, EventType::Warning);
        assert_eq!(e.note, "Compliant -> Violation: latency 8ms ...");
        assert_eq!(
            compliance_event(Compliance::Error, Compliance::Limit, None).type_,
            EventType::Normal
        );
        let t = |s| Some(Time(jiff::Timestamp::from_second(s).unwrap_or_default()));
        let a = ConstraintPolicyBindingStatus {
            compliance: Compliance::Limit,
            last_evaluated_timestamp: t(10),
            ..Default::default()
        };
        let b = ConstraintPolicyBindingStatus {
            last_evaluated_timestamp: t(20),
            last_mitigated_timestamp: t(5),
            ..a.clone()
        };
        assert!(same_status(&a, &b));
        let c = ConstraintPolicyBindingStatus {
            compliance: Compliance::Violation,
            ..a.clone()
        };
        assert!(!same_status(&a, &c));
        let d = ConstraintPolicyBindingStatus {
            targets: Some("a=p".into()),
            ..a.clone()
        };
        assert!(!same_status(&a, &d));
    }

    #[test]
    fn targets_are_spelled_role_by_role_without_spaces() {
        let targets = BTreeMap::from([
            ("users".to_string(), TargetRef::site("stadium")),
            ("renderer".to_string(), TargetRef::pod("ar", "render-0")),
        ]);
        assert_eq!(targets_summary(&targets), "renderer=render-0,users=stadium");
        assert_eq!(targets_summary(&BTreeMap::new()), "");
    }

    #[test]
    fn pods_hear_of_their_bindings_compliance_with_their_role() {
        let event = pod_compliance_event(
            "ar-latency-1b5b441ca8",
            "renderer",
            Compliant,
            Violation,
            Some(
                "latency 12ms between renderer (edge-1-a) and users (stadium) is worse than the limit 5ms",
            ),
        );
        assert_eq!(
            event.note,
            "binding ar-latency-1b5b441ca8 (renderer): Compliant -> Violation: latency 12ms between renderer (edge-1-a) and users (stadium) is worse than the limit 5ms"
        );
        assert_eq!(event.type_, crate::events::EventType::Warning);
        assert_eq!(event.reason, crate::events::reasons::COMPLIANCE_CHANGED);
        let back = pod_compliance_event("b", "state", Violation, Limit, None);
        assert_eq!(back.note, "binding b (state): Violation -> Limit");
        assert_eq!(back.type_, crate::events::EventType::Normal);
    }
}
