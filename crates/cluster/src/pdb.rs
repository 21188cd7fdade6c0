//! PodDisruptionBudget arithmetic: how many of a budget's pods are healthy, how many must
//! stay healthy, and so how many voluntary disruptions (evictions) are allowed now.

use serde_json::Value;

/// The computed part of a PDB's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub expected_pods: i64,
    pub desired_healthy: i64,
    pub current_healthy: i64,
    pub disruptions_allowed: i64,
}

/// `minAvailable` / `maxUnavailable`: an integer or a percentage.
#[derive(Debug, Clone, Copy, PartialEq)]
enum IntOrPercent {
    Int(i64),
    Percent(i64),
}

fn int_or_percent(v: &Value) -> Option<IntOrPercent> {
    match v {
        Value::Number(n) => n.as_i64().map(IntOrPercent::Int),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => p.trim().parse().ok().map(IntOrPercent::Percent),
            None => s.trim().parse().ok().map(IntOrPercent::Int),
        },
        _ => None,
    }
}

/// `value` scaled against `total`, rounding up like the disruption controller.
fn scaled(v: IntOrPercent, total: i64) -> i64 {
    match v {
        IntOrPercent::Int(n) => n,
        IntOrPercent::Percent(p) => (p * total + 99) / 100,
    }
}

/// Whether a pod counts as healthy for a budget: not being deleted, and Ready.
pub fn pod_is_healthy(pod: &Value) -> bool {
    if crate::object::deletion_timestamp(pod).is_some() {
        return false;
    }
    pod.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The pods a budget covers, among the pods of its namespace. A budget with no selector
/// covers nothing; an empty selector covers every pod of the namespace.
pub fn selects(pdb: &Value, pod: &Value) -> bool {
    let Some(sel) = pdb.get("spec").and_then(|s| s.get("selector")) else {
        return false;
    };
    if sel.is_null() {
        return false;
    }
    crate::selector::from_api(sel).is_ok_and(|s| s.matches(&crate::object::labels(pod)))
}

/// Computes a budget. `controller_scale` is the summed replica count of the controllers
/// owning the pods (needed for percentages and `maxUnavailable`); without it the number of
/// covered pods stands in.
pub fn compute(pdb: &Value, pods: &[&Value], controller_scale: Option<i64>) -> Budget {
    let spec = pdb.get("spec").cloned().unwrap_or(Value::Null);
    let active: Vec<&&Value> = pods
        .iter()
        .filter(|p| {
            !matches!(
                p.get("status")
                    .and_then(|s| s.get("phase"))
                    .and_then(Value::as_str),
                Some("Succeeded") | Some("Failed")
            )
        })
        .collect();
    let current_healthy = active.iter().filter(|p| pod_is_healthy(p)).count() as i64;
    let pod_count = active.len() as i64;
    let (expected, desired) = if let Some(min) = spec.get("minAvailable").and_then(int_or_percent) {
        match min {
            IntOrPercent::Int(n) => (pod_count, n),
            p @ IntOrPercent::Percent(_) => {
                let expected = controller_scale.unwrap_or(pod_count);
                (expected, scaled(p, expected))
            }
        }
    } else if let Some(max) = spec.get("maxUnavailable").and_then(int_or_percent) {
        let expected = controller_scale.unwrap_or(pod_count);
        (expected, (expected - scaled(max, expected)).max(0))
    } else {
        // Neither set: the API rejects that; treat as "no disruption allowed".
        (pod_count, pod_count)
    };
    Budget {
        expected_pods: expected,
        desired_healthy: desired,
        current_healthy,
        disruptions_allowed: (current_healthy - desired).max(0),
    }
}

/// Whether a budget lets `pod` be evicted now.
pub fn allows_eviction(pdb: &Value, budget: &Budget, pod: &Value) -> bool {
    if budget.disruptions_allowed > 0 {
        return true;
    }
    if pod_is_healthy(pod) {
        return false;
    }
    // An unhealthy pod may go when the budget is met (IfHealthyBudget) or always
    // (AlwaysAllow).
    let policy = pdb
        .get("spec")
        .and_then(|s| s.get("unhealthyPodEvictionPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("IfHealthyBudget");
    policy == "AlwaysAllow" || budget.current_healthy >= budget.desired_healthy
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ready: bool) -> Value {
        json!({"metadata": {"labels": {"app": "a"}}, "status": {"phase": "Running",
               "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn min_available_integer() {
        let pdb = json!({"spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "a"}}}});
        let (a, b, c) = (pod(true), pod(true), pod(true));
        let b3 = compute(&pdb, &[&a, &b, &c], None);
        assert_eq!(b3.disruptions_allowed, 1);
        let b2 = compute(&pdb, &[&a, &b], None);
        assert_eq!(b2.disruptions_allowed, 0);
        assert!(!allows_eviction(&pdb, &b2, &a));
        assert!(selects(&pdb, &a));
    }

    #[test]
    fn percentages_and_max_unavailable_use_controller_scale() {
        let pods: Vec<Value> = (0..4).map(|_| pod(true)).collect();
        let refs: Vec<&Value> = pods.iter().collect();
        let pct = json!({"spec": {"minAvailable": "50%", "selector": {}}});
        assert_eq!(compute(&pct, &refs, Some(4)).desired_healthy, 2);
        assert_eq!(compute(&pct, &refs, Some(4)).disruptions_allowed, 2);
        let max = json!({"spec": {"maxUnavailable": 1, "selector": {}}});
        let b = compute(&max, &refs, Some(5));
        assert_eq!(
            (b.expected_pods, b.desired_healthy, b.disruptions_allowed),
            (5, 4, 0)
        );
        let maxp = json!({"spec": {"maxUnavailable": "25%", "selector": {}}});
        assert_eq!(compute(&maxp, &refs, Some(4)).disruptions_allowed, 1);
    }

    #[test]
    fn unhealthy_pods_may_go_when_the_budget_is_met() {
        let pdb = json!({"spec": {"minAvailable": 1, "selector": {}}});
        let (good, bad) = (pod(true), pod(false));
        let b = compute(&pdb, &[&good, &bad], None);
        assert_eq!(b.disruptions_allowed, 0);
        assert!(allows_eviction(&pdb, &b, &bad));
        assert!(!allows_eviction(&pdb, &b, &good));
        let strict = json!({"spec": {"minAvailable": 2, "selector": {}}});
        let b = compute(&strict, &[&good, &bad], None);
        assert!(!allows_eviction(&strict, &b, &bad));
        let always = json!({"spec": {"minAvailable": 2, "selector": {}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}});
        assert!(allows_eviction(&always, &b, &bad));
        assert!(!selects(&json!({"spec": {}}), &good));
    }
}
