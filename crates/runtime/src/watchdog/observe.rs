//! What the gate watchdog reads from the caches: the pods waiting at the planner's gate.
//! Pure: objects in, facts out.

use std::sync::Arc;

use edgeplane_core::gate::GatedPod;
use edgeplane_core::planner::convert::pod_key;
use edgeplane_core::scheduler::Mode;
use edgeplane_core::scheduler::input::is_pending;
use k8s_openapi::api::core::v1::Pod;

/// The pods that carry the planner's gate, are not bound and are neither finished nor being
/// deleted, with when they were gated (their creation: the webhook gates at admission, and
/// a gate in a template is there from the start).
pub fn gated_pods(pods: &[Arc<Pod>]) -> Vec<GatedPod> {
    let mut out: Vec<GatedPod> = pods
        .iter()
        .filter(|p| is_pending(Mode::Gate, p))
        .map(|p| GatedPod {
            key: pod_key(p),
            since: p.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    out.sort_by(|a, b| (a.since, &a.key).cmp(&(b.since, &b.key)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::names::PLANNER_GATE;
    use edgeplane_core::planner::PodKey;
    use serde_json::json;

    fn pod(name: &str, spec: serde_json::Value, deleting: bool) -> Arc<Pod> {
        let mut meta = json!({"name": name, "namespace": "ar",
            "creationTimestamp": "2025-06-01T00:00:00Z"});
        if deleting {
            meta["deletionTimestamp"] = json!("2025-06-01T00:01:00Z");
        }
        Arc::new(
            serde_json::from_value(json!({"metadata": meta, "spec": spec}))
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[test]
    fn only_pods_waiting_at_the_planners_gate() {
        let gate = json!([{"name": PLANNER_GATE}]);
        let pods = [
            pod(
                "gated",
                json!({"containers": [], "schedulingGates": gate}),
                false,
            ),
            pod(
                "other-gate",
                json!({"containers": [], "schedulingGates": [{"name": "x"}]}),
                false,
            ),
            pod(
                "deleting",
                json!({"containers": [], "schedulingGates": gate}),
                true,
            ),
            pod(
                "bound",
                json!({"containers": [], "nodeName": "n", "schedulingGates": gate}),
                false,
            ),
            pod("free", json!({"containers": []}), false),
        ];
        let keys: Vec<PodKey> = gated_pods(&pods).into_iter().map(|g| g.key).collect();
        assert_eq!(keys, [PodKey::new("ar", "gated")]);
    }
}
