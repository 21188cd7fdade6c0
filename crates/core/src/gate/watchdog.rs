//! The gate watchdog's decisions: which pods waiting at the planner's gate to release to
//! kube-scheduler because no planning scheduler is alive to plan them.
//!
//! A pod is released when no scheduler is alive and it has waited at the gate for the
//! timeout **without a scheduler**: counted from the later of its creation (the webhook
//! gates at admission) and the moment the last scheduler stopped being alive (its Lease
//! expired or was released). A scheduler that comes back in time keeps every pod; a pod
//! that has waited an hour for a plan while the scheduler was alive (Unplaceable) is not
//! released the moment the scheduler restarts.

use std::time::Duration;

use edgeplane_api::names::{GATE_REMOVED_ANNOTATION, PLANNER_GATE};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::liveness::Liveness;
use crate::planner::PodKey;

/// The default time a pod may wait at the gate with no scheduler alive.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A pod at the planner's gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatedPod {
    pub key: PodKey,
    /// When it was gated: its creation.
    pub since: Option<Timestamp>,
}

/// A pod to release, and why (the annotation's value; the Event adds the details).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ungate {
    pub pod: PodKey,
    /// How long it waited with no scheduler alive.
    pub waited: Duration,
    pub reason: String,
}

/// What one look decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub ungate: Vec<Ungate>,
    /// When the next pod's time runs out (if no scheduler comes back): look again then.
    pub next: Option<Timestamp>,
}

fn add(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_add(SignedDuration::try_from(d).ok()?).ok()
}

/// `5m`, `90s`, `1h30m`.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Which of `pods` to release at `now`, given whether a scheduler is alive and the
/// `timeout`. Pods come out in the order given.
pub fn decide(
    pods: &[GatedPod],
    liveness: &Liveness,
    now: Timestamp,
    timeout: Duration,
) -> Decision {
    let Liveness::Dead { since, why } = liveness else {
        return Decision::default();
    };
    let mut decision = Decision::default();
    for pod in pods {
        // Without a creation time, count from the scheduler's end (or from now).
        let start = match (pod.since, *since) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a.or(b).unwrap_or(now),
        };
        let Some(deadline) = add(start, timeout) else {
            continue;
        };
        if now >= deadline {
            let waited = Duration::try_from(now.duration_since(start)).unwrap_or(timeout);
            decision.ungate.push(Ungate {
                pod: pod.key.clone(),
                waited,
                reason: format!(
                    "no planning scheduler alive for {} while the pod waited at the gate: {why}",
                    short(waited)
                ),
            });
        } else {
            decision.next = Some(decision.next.map_or(deadline, |n| n.min(deadline)));
        }
    }
    decision
}

/// `~` and `/` escaped for a JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The JSON patch that removes the planner's gate from `pod` (testing that it is still
/// where the cached pod had it, so a pod changed meanwhile is looked at again) and records
/// `reason` in the annotation `edgeplane.io/gate-removed`. `None` when the pod carries no
/// planner gate.
pub fn ungate_patch(pod: &Pod, reason: &str) -> Option<json_patch::Patch> {
    let gates = pod.spec.as_ref()?.scheduling_gates.as_deref()?;
    let index = gates.iter().position(|g| g.name == PLANNER_GATE)?;
    let mut ops = vec![
        json!({"op": "test", "path": format!("/spec/schedulingGates/{index}/name"), "value": PLANNER_GATE}),
        json!({"op": "remove", "path": format!("/spec/schedulingGates/{index}")}),
    ];
    if pod.metadata.annotations.is_some() {
        ops.push(json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", escape(GATE_REMOVED_ANNOTATION)),
            "value": reason,
        }));
    } else {
        ops.push(json!({
            "op": "add",
            "path": "/metadata/annotations",
            "value": {GATE_REMOVED_ANNOTATION: reason},
        }));
    }
    serde_json::from_value(Value::Array(ops)).ok()
}

#[cfg(test)]
mod tests {
    use super::super::liveness::Death;
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_750_000_000 + secs).unwrap_or_else(|e| panic!("{e}"))
    }

    fn gated(name: &str, since: i64) -> GatedPod {
        GatedPod {
            key: PodKey::new("ar", name),
            since: Some(t(since)),
        }
    }

    fn dead(since: Option<i64>) -> Liveness {
        Liveness::Dead {
            since: since.map(t),
            why: Death::Released {
                lease: "edgeplane-system/edgeplane-scheduler".into(),
                at: since.map(t),
            },
        }
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn nothing_is_released_while_a_scheduler_is_alive() {
        let alive = Liveness::Alive {
            holder: "s".into(),
            until: t(10_000),
        };
        let pods = [gated("old", -86_400)];
        assert_eq!(
            decide(&pods, &alive, t(0), FIVE_MINUTES),
            Decision::default()
        );
    }

    #[test]
    fn pods_are_released_after_the_timeout_without_a_scheduler() {
        // The scheduler went at 100. a was gated long before, b at 200, c just now.
        let pods = [gated("a", -1000), gated("b", 200), gated("c", 390)];
        let d = decide(&pods, &dead(Some(100)), t(399), FIVE_MINUTES);
        assert_eq!(d.ungate, vec![]);
        assert_eq!(d.next, Some(t(400)));
        let d = decide(&pods, &dead(Some(100)), t(400), FIVE_MINUTES);
        assert_eq!(
            d.ungate,
            vec![Ungate {
                pod: PodKey::new("ar", "a"),
                waited: FIVE_MINUTES,
                reason: "no planning scheduler alive for 5m while the pod waited at the gate: the planning scheduler's Lease edgeplane-system/edgeplane-scheduler has no holder since 2025-06-15T15:08:20Z (the scheduler stopped)".into()
            }]
        );
        assert_eq!(d.next, Some(t(500)));
        let d = decide(&pods, &dead(Some(100)), t(700), FIVE_MINUTES);
        let names: Vec<&str> = d.ungate.iter().map(|u| u.pod.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(d.ungate[0].waited, Duration::from_secs(600));
        assert_eq!(d.next, None);
    }

    #[test]
    fn without_a_lease_the_pods_own_wait_counts() {
        let pods = [gated("a", 0)];
        assert!(
            decide(&pods, &dead(None), t(299), FIVE_MINUTES)
                .ungate
                .is_empty()
        );
        assert_eq!(
            decide(&pods, &dead(None), t(300), FIVE_MINUTES)
                .ungate
                .len(),
            1
        );
        // A configurable timeout.
        assert_eq!(
            decide(&pods, &dead(None), t(60), Duration::from_secs(60))
                .ungate
                .len(),
            1
        );
    }

    #[test]
    fn the_patch_removes_only_the_planners_gate_and_says_why() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ar"},
            "spec": {"containers": [], "schedulingGates": [{"name": "other"}, {"name": PLANNER_GATE}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let patch = ungate_patch(&pod, "no scheduler").unwrap_or_else(|| panic!("gated"));
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default(),
            json!([
                {"op": "test", "path": "/spec/schedulingGates/1/name", "value": PLANNER_GATE},
                {"op": "remove", "path": "/spec/schedulingGates/1"},
                {"op": "add", "path": "/metadata/annotations", "value": {"edgeplane.io/gate-removed": "no scheduler"}}
            ])
        );
        let mut value = serde_json::to_value(&pod).unwrap_or_default();
        json_patch::patch(&mut value, &patch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["spec"]["schedulingGates"], json!([{"name": "other"}]));
        // Existing annotations are kept.
        let mut annotated = pod.clone();
        annotated.metadata.annotations = Some([("a".to_string(), "b".to_string())].into());
        let patch = ungate_patch(&annotated, "why").unwrap_or_else(|| panic!("gated"));
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default()[2],
            json!({"op": "add", "path": "/metadata/annotations/edgeplane.io~1gate-removed", "value": "why"})
        );
        // Not gated: nothing to do.
        let mut free = pod;
        if let Some(s) = free.spec.as_mut() {
            s.scheduling_gates = None;
        }
        assert!(ungate_patch(&free, "why").is_none());
    }
}
