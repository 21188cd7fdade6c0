//! Taints against tolerations, and reading both from Kubernetes objects.

use k8s_openapi::api::core::v1 as api;

use super::{Taint, TaintEffect, Toleration, TolerationOperator};
use crate::validate::FieldError;

/// The taint a cordoned node is treated as having (kube-scheduler's NodeUnschedulable).
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// Whether a toleration tolerates a taint: keys equal (an empty key with `Exists`
/// matches every key), values equal for `Equal`, effects equal or the toleration's empty.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration.effect.is_some_and(|e| e != taint.effect) {
        return false;
    }
    match toleration.operator {
        TolerationOperator::Exists => toleration.key.is_empty() || toleration.key == taint.key,
        TolerationOperator::Equal => toleration.key == taint.key && toleration.value == taint.value,
    }
}

/// The first taint (NoSchedule or NoExecute) that no toleration tolerates.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        taint.effect != TaintEffect::PreferNoSchedule
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// Whether the tolerations let a pod onto a cordoned node.
pub fn tolerates_unschedulable(tolerations: &[Toleration]) -> bool {
    let cordon = Taint {
        key: UNSCHEDULABLE_TAINT_KEY.to_string(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    };
    tolerations.iter().any(|t| tolerates(t, &cordon))
}

fn unknown_effect(effect: &str) -> String {
    format!("unknown effect {effect:?} (expected NoSchedule, PreferNoSchedule, NoExecute)")
}

/// A node's taints (fields relative to the node's spec: `taints[0].effect`).
pub fn taints(list: &[api::Taint]) -> Result<Vec<Taint>, FieldError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            taint(t).ok_or_else(|| {
                FieldError::new(format!("taints[{i}].effect"), unknown_effect(&t.effect))
            })
        })
        .collect()
}

/// A node's taints as kube-scheduler reads them: a taint of an unknown effect is neither
/// NoSchedule nor NoExecute, so it keeps no pod off and is left out.
pub fn effective_taints(list: &[api::Taint]) -> Vec<Taint> {
    list.iter().filter_map(taint).collect()
}

fn taint(t: &api::Taint) -> Option<Taint> {
    Some(Taint {
        key: t.key.clone(),
        value: t.value.clone().unwrap_or_default(),
        effect: TaintEffect::parse(&t.effect)?,
    })
}

/// The tolerations of a pod spec (fields relative to the spec).
pub fn tolerations(list: Option<&Vec<api::Toleration>>) -> Result<Vec<Toleration>, FieldError> {
    list.into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| {
            toleration(t).map_err(|(field, message)| {
                FieldError::new(format!("tolerations[{i}].{field}"), message)
            })
        })
        .collect()
}

/// The tolerations of a pod spec as kube-scheduler reads them: one with an unknown
/// operator or effect tolerates nothing, so it is left out.
pub fn effective_tolerations(list: &[api::Toleration]) -> Vec<Toleration> {
    list.iter().filter_map(|t| toleration(t).ok()).collect()
}

/// One toleration, or the field (`operator`, `effect`) that is wrong and why.
fn toleration(t: &api::Toleration) -> Result<Toleration, (&'static str, String)> {
    let operator = match t.operator.as_deref() {
        None | Some("Equal") => TolerationOperator::Equal,
        Some("Exists") => TolerationOperator::Exists,
        Some(other) => {
            return Err((
                "operator",
                format!("unknown operator {other:?} (expected Equal, Exists)"),
            ));
        }
    };
    let effect = match t.effect.as_deref() {
        None | Some("") => None,
        Some(e) => Some(TaintEffect::parse(e).ok_or_else(|| ("effect", unknown_effect(e)))?),
    };
    Ok(Toleration {
        key: t.key.clone().unwrap_or_default(),
        operator,
        value: t.value.clone().unwrap_or_default(),
        effect,
    })
}

/// The taint the node lifecycle controller puts on a node whose kubelet stopped posting
/// status (Ready Unknown).
pub const UNREACHABLE_TAINT_KEY: &str = "node.kubernetes.io/unreachable";
/// The taint it puts on a node that reports Ready False.
pub const NOT_READY_TAINT_KEY: &str = "node.kubernetes.io/not-ready";

/// When the taint manager evicts a pod from a node with `NoExecute` taints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoExecute {
    /// Some `NoExecute` taint is not tolerated: evict at once.
    Now,
    /// Every one is tolerated, the shortest toleration lasting this many seconds from the
    /// taint's `timeAdded`.
    After(i64),
    /// Tolerated without a time limit (or no `NoExecute` taint): never.
    Never,
}

/// The taint manager's rule: a pod that does not tolerate a `NoExecute` taint goes at
/// once; one that tolerates them all goes after the shortest `tolerationSeconds` of the
/// tolerations it uses (negative counts as 0); tolerations without `tolerationSeconds`
/// tolerate forever. Tolerations that do not parse tolerate nothing.
pub fn no_execute(taints: &[Taint], tolerations: &[api::Toleration]) -> NoExecute {
    let parsed: Vec<(Toleration, Option<i64>)> = tolerations
        .iter()
        .filter_map(|t| Some((toleration(t).ok()?, t.toleration_seconds)))
        .collect();
    let mut shortest: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == TaintEffect::NoExecute) {
        let used: Vec<Option<i64>> = parsed
            .iter()
            .filter(|(t, _)| tolerates(t, taint))
            .map(|(_, seconds)| *seconds)
            .collect();
        if used.is_empty() {
            return NoExecute::Now;
        }
        for seconds in used.into_iter().flatten() {
            let seconds = seconds.max(0);
            shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
        }
    }
    match shortest {
        Some(seconds) => NoExecute::After(seconds),
        None => NoExecute::Never,
    }
}

/// The API server's `DefaultTolerationSeconds` admission: a pod that tolerates neither
/// `not-ready` nor `unreachable` `NoExecute` taints (a toleration with that key, or an
/// empty key, and effect `NoExecute` or none) gets one for `seconds`
/// (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`,
/// 300 by default).
pub fn add_default_tolerations(
    tolerations: &mut Vec<api::Toleration>,
    not_ready_seconds: i64,
    unreachable_seconds: i64,
) {
    for (key, seconds) in [
        (NOT_READY_TAINT_KEY, not_ready_seconds),
        (UNREACHABLE_TAINT_KEY, unreachable_seconds),
    ] {
        let tolerated = tolerations.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or_default();
            let effect = t.effect.as_deref().unwrap_or_default();
            (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        });
        if !tolerated {
            tolerations.push(api::Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(seconds),
                value: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::testing::{taint, toleration};

    fn noexec(key: &str, seconds: Option<i64>) -> api::Toleration {
        api::Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn the_taint_manager_evicts_after_the_shortest_toleration() {
        let unreachable = [
            taint(UNREACHABLE_TAINT_KEY, "", TaintEffect::NoSchedule),
            taint(UNREACHABLE_TAINT_KEY, "", TaintEffect::NoExecute),
        ];
        assert_eq!(no_execute(&unreachable, &[]), NoExecute::Now);
        assert_eq!(
            no_execute(&unreachable, &[noexec(UNREACHABLE_TAINT_KEY, Some(300))]),
            NoExecute::After(300)
        );
        // A fast-failover application tolerates for 30 s; the shorter one counts.
        assert_eq!(
            no_execute(
                &unreachable,
                &[
                    noexec(UNREACHABLE_TAINT_KEY, Some(300)),
                    noexec(UNREACHABLE_TAINT_KEY, Some(30))
                ]
            ),
            NoExecute::After(30)
        );
        // A DaemonSet's toleration has no time limit.
        assert_eq!(
            no_execute(&unreachable, &[noexec(UNREACHABLE_TAINT_KEY, None)]),
            NoExecute::Never
        );
        assert_eq!(
            no_execute(&unreachable, &[noexec(NOT_READY_TAINT_KEY, Some(300))]),
            NoExecute::Now
        );
        assert_eq!(
            no_execute(&unreachable, &[noexec(UNREACHABLE_TAINT_KEY, Some(-5))]),
            NoExecute::After(0)
        );
        // NoSchedule taints alone evict nothing.
        assert_eq!(no_execute(&unreachable[..1], &[]), NoExecute::Never);
    }

    #[test]
    fn default_tolerations_are_added_unless_the_pod_has_its_own() {
        let mut none = Vec::new();
        add_default_tolerations(&mut none, 300, 300);
        assert_eq!(
            none,
            [
                noexec(NOT_READY_TAINT_KEY, Some(300)),
                noexec(UNREACHABLE_TAINT_KEY, Some(300))
            ]
        );
        let mut own = vec![noexec(UNREACHABLE_TAINT_KEY, Some(30))];
        add_default_tolerations(&mut own, 300, 300);
        assert_eq!(
            own,
            [
                noexec(UNREACHABLE_TAINT_KEY, Some(30)),
                noexec(NOT_READY_TAINT_KEY, Some(300))
            ]
        );
        // Tolerating everything tolerates both.
        let mut all = vec![api::Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        }];
        add_default_tolerations(&mut all, 300, 300);
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn taints_and_tolerations_table() {
        use TaintEffect::*;
        use TolerationOperator::*;
        let gpu = taint("dedicated", "gpu", NoSchedule);
        let cases = [
            (
                toleration("dedicated", Equal, "gpu", Some(NoSchedule)),
                true,
            ),
            (toleration("dedicated", Equal, "gpu", None), true),
            (toleration("dedicated", Equal, "cpu", None), false),
            (
                toleration("dedicated", Equal, "gpu", Some(NoExecute)),
                false,
            ),
            (toleration("dedicated", Exists, "", None), true),
            (toleration("other", Exists, "", None), false),
            (toleration("", Exists, "", None), true),
            (toleration("", Exists, "", Some(NoExecute)), false),
            (toleration("", Equal, "", None), false),
        ];
        for (i, (t, expected)) in cases.iter().enumerate() {
            assert_eq!(tolerates(t, &gpu), *expected, "case {i}");
        }
        // PreferNoSchedule never keeps a pod off; NoExecute does.
        let soft = [taint("a", "", PreferNoSchedule)];
        assert_eq!(untolerated(&soft, &[]), None);
        let hard = [taint("a", "", PreferNoSchedule), taint("b", "x", NoExecute)];
        assert_eq!(
            untolerated(&hard, &[]).map(|t| t.to_string()),
            Some("b=x:NoExecute".into())
        );
        assert_eq!(
            untolerated(&hard, &[toleration("b", Exists, "", None)]),
            None
        );
    }

    /// An empty key with `Exists` tolerates every taint, the cordon included; an empty key
    /// with `Equal` (which the API server rejects) tolerates nothing. The planner and the
    /// embedded cluster agreed on this before they shared the rule.
    #[test]
    fn empty_key_tolerations() {
        use TolerationOperator::*;
        let everything = toleration("", Exists, "", None);
        assert!(tolerates_unschedulable(std::slice::from_ref(&everything)));
        assert!(tolerates(
            &everything,
            &taint("node.kubernetes.io/unreachable", "", TaintEffect::NoExecute)
        ));
        assert!(!tolerates(
            &toleration("", Equal, "x", None),
            &taint("k", "x", TaintEffect::NoSchedule)
        ));
        assert!(!tolerates_unschedulable(&[toleration(
            "dedicated",
            Exists,
            "",
            None
        )]));
    }

    /// The planner refuses a toleration the API server would reject, naming the field; the
    /// embedded cluster's scheduler, whose API server stores it unchecked, used to read an
    /// unknown operator as `Equal`. kube-scheduler's `ToleratesTaint` answers false for it,
    /// so it now tolerates nothing there.
    #[test]
    fn unknown_operators_and_effects() {
        let list = vec![
            api::Toleration {
                key: Some("k".into()),
                operator: Some("Matches".into()),
                value: Some("v".into()),
                ..Default::default()
            },
            api::Toleration {
                key: Some("k".into()),
                effect: Some("Sometimes".into()),
                ..Default::default()
            },
            api::Toleration {
                key: Some("k".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            },
        ];
        let err = tolerations(Some(&list)).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("tolerations[0].operator: unknown operator \"Matches\" (expected Equal, Exists)")
        );
        assert_eq!(
            effective_tolerations(&list),
            vec![toleration("k", TolerationOperator::Exists, "", None)]
        );
        let node_taints = vec![
            api::Taint {
                key: "a".into(),
                effect: "Sometimes".into(),
                ..Default::default()
            },
            api::Taint {
                key: "b".into(),
                value: Some("x".into()),
                effect: "NoExecute".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            taints(&node_taints).err().map(|e| e.field),
            Some("taints[0].effect".to_string())
        );
        assert_eq!(
            effective_taints(&node_taints),
            vec![taint("b", "x", TaintEffect::NoExecute)]
        );
    }
}
