//! Asking the network for a path before giving up on a pod (design.md section 6).
//!
//! When the planner leaves a pod unplaced because every feasible node puts a rule of one
//! of its bindings in Violation, the scheduler asks the network controller's `Discover`:
//! the binding's rules, the binding's other end as the source (the node of a placed pod,
//! or a site), and the nodes that could take the pod apart from that binding as
//! candidates. It allocates the best offer, records the allocation on the pod
//! (annotation `network.edgeplane.io/allocation` and the finalizer
//! `network.edgeplane.io/path-release`), and leaves the pod unplaced: the controller
//! activates the path in the NetworkTopology, that change replans the pod, and the planner
//! then sees the path in the graph. The release loop ([`super::release`]) gives the path
//! back when the pod goes away.
//!
//! This module is the pure part: which question to ask, which offer to take, and the
//! patch that records an allocation. [`NetworkDiscovery`] says which controller to ask.

use std::sync::Arc;

use edgeplane_api::names::{ALLOCATION_ANNOTATION, PATH_RELEASE_FINALIZER};
use edgeplane_api::{TargetKind, TargetRef};
use edgeplane_core::planner::feasibility::eligible_node_names;
use edgeplane_core::planner::{PendingPod, PlacedPod, PlanBinding, PlanNode, RuleProvider};
use edgeplane_netctl::{DiscoverRequest, Endpoint, PathOffer};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Service};

use crate::netctl::{NetworkControllers, Resolved};

/// Which network controller the scheduler asks, looked up at each plan run.
pub trait NetworkDiscovery: Send + Sync {
    /// The controller to ask now; `None` when there is none.
    fn resolve(&self, services: &[Arc<Service>]) -> Option<Resolved>;
}

impl NetworkDiscovery for NetworkControllers {
    fn resolve(&self, services: &[Arc<Service>]) -> Option<Resolved> {
        NetworkControllers::resolve(self, services)
    }
}

/// No network controller: nothing to discover.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDiscovery;

impl NetworkDiscovery for NoDiscovery {
    fn resolve(&self, _services: &[Arc<Service>]) -> Option<Resolved> {
        None
    }
}

/// The binding and rule an unplaced reason names when every feasible node puts a binding
/// in Violation (the planner's `every feasible node puts binding B rule R in Violation`).
pub fn violated_binding(reason: &str) -> Option<(&str, &str)> {
    let rest = reason.strip_prefix("every feasible node puts binding ")?;
    let (binding, rest) = rest.split_once(" rule ")?;
    let (rule, _) = rest.split_once(" in Violation")?;
    Some((binding, rule))
}

/// A `Discover` question for one unplaced pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Question {
    /// `namespace/name` of the binding no node satisfies.
    pub binding: String,
    pub request: DiscoverRequest,
}

/// The binding's namespace: the offer's (`namespace/offer`).
fn binding_key(binding: &PlanBinding) -> String {
    let namespace = binding
        .offer
        .split_once('/')
        .map_or("default", |(ns, _)| ns);
    format!("{namespace}/{}", binding.name)
}

fn is_pod(target: &TargetRef, pod: &PendingPod) -> bool {
    target.kind == TargetKind::Pod
        && target.name == pod.key.name
        && target.namespace.as_deref().unwrap_or("default") == pod.key.namespace
}

/// The `Discover` question for an unplaced pod, when its reason is a binding that no node
/// satisfies and the binding's other end is known: a site, or a pod placed on a node (the
/// first in role order). `None` otherwise.
pub fn request_for(
    pod: &PendingPod,
    reason: &str,
    bindings: &[PlanBinding],
    nodes: &[PlanNode],
    placed: &[PlacedPod],
) -> Option<Question> {
    let (name, _) = violated_binding(reason)?;
    let binding = bindings.iter().find(|b| b.name == name)?;
    let source = binding
        .targets
        .values()
        .filter(|t| !is_pod(t, pod))
        .find_map(|t| match t.kind {
            TargetKind::Site => Some(Endpoint::Site(t.name.clone())),
            TargetKind::Pod => {
                let namespace = t.namespace.as_deref().unwrap_or("default");
                placed
                    .iter()
                    .find(|p| p.key.name == t.name && p.key.namespace == namespace)
                    .map(|p| Endpoint::Node(p.node.clone()))
            }
            _ => None,
        })?;
    let rules = binding
        .rules
        .iter()
        .filter(|r| !matches!(r.provider, RuleProvider::Broken(_)))
        .map(|r| r.spec.clone())
        .collect();
    let candidate_nodes = eligible_node_names(nodes, pod);
    if candidate_nodes.is_empty() {
        return None;
    }
    let key = binding_key(binding);
    Some(Question {
        binding: key.clone(),
        request: DiscoverRequest {
            rules,
            source,
            candidate_nodes,
            binding: key,
        },
    })
}

/// The offer to allocate: the controller's first (offers come best first) that has not
/// expired.
pub fn choose(offers: &[PathOffer], now: Timestamp) -> Option<&PathOffer> {
    offers.iter().find(|o| o.expires >= now)
}

/// The allocation a pod holds (its `network.edgeplane.io/allocation` annotation).
pub fn allocation_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(ALLOCATION_ANNOTATION)
        .map(String::as_str)
        .filter(|id| !id.is_empty())
}

/// The strategic merge patch that records an allocation on a pod: the annotation, and the
/// finalizer (merged into the pod's list, not replacing it).
pub fn allocation_patch(id: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "annotations": {ALLOCATION_ANNOTATION: id},
            "finalizers": [PATH_RELEASE_FINALIZER],
        }
    })
}

/// `slice-a (path stadium, edge-1; latency 1ms, jitter 100us, bandwidth 1Gbps) for node
/// edge-1-a`.
pub fn describe_offer(offer: &PathOffer) -> String {
    let e = &offer.expected;
    let mut metrics = vec![format!("latency {}", e.latency)];
    if !e.jitter.is_empty() {
        metrics.push(format!("jitter {}", e.jitter));
    }
    if !e.bandwidth.is_empty() {
        metrics.push(format!("bandwidth {}", e.bandwidth));
    }
    if !e.loss.is_empty() {
        metrics.push(format!("loss {}", e.loss));
    }
    format!(
        "{} (path {}; {}; {}) for node {}",
        offer.entry,
        offer.path.join(", "),
        metrics.join(", "),
        offer.compliance,
        offer.node
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeplane_api::{Compliance, ConstraintPolicyRule};
    use edgeplane_core::planner::{PlanRule, PodKey, Resources};
    use edgeplane_netctl::ExpectedMetrics;
    use std::collections::BTreeMap;

    #[test]
    fn reads_the_binding_from_the_planners_reason() {
        assert_eq!(
            violated_binding(
                "every feasible node puts binding ar-latency-1b5b441ca8 rule latency in Violation (best: 14ms to stadium, limit 10ms)"
            ),
            Some(("ar-latency-1b5b441ca8", "latency"))
        );
        assert_eq!(
            violated_binding("every feasible node puts binding b rule packet-loss in Violation"),
            Some(("b", "packet-loss"))
        );
        assert_eq!(violated_binding("no node has 16 CPU free"), None);
    }

    fn node(name: &str, schedulable: bool) -> PlanNode {
        PlanNode {
            name: name.into(),
            allocatable: Resources::pod(4000, 1 << 33),
            labels: BTreeMap::new(),
            taints: vec![],
            schedulable,
        }
    }

    fn pending(name: &str) -> PendingPod {
        PendingPod {
            key: PodKey::new("ar", name),
            requests: Resources::pod(1000, 0),
            node_selector: BTreeMap::new(),
            affinity: vec![],
            tolerations: vec![],
            labels: BTreeMap::new(),
            pod_rules: Default::default(),
        }
    }

    fn binding(name: &str, peer: TargetRef) -> PlanBinding {
        let rule = ConstraintPolicyRule {
            name: "latency".into(),
            request: "2ms".into(),
            limit: Some("5ms".into()),
        };
        PlanBinding {
            name: name.into(),
            offer: "ar/o".into(),
            targets: BTreeMap::from([
                ("peer".to_string(), peer),
                ("renderer".to_string(), TargetRef::pod("ar", "r")),
            ]),
            rules: vec![
                PlanRule::builtin("p", &rule),
                PlanRule {
                    policy: "gone".into(),
                    spec: rule.clone(),
                    provider: RuleProvider::Broken("policy ar/gone does not exist".into()),
                },
            ],
        }
    }

    const REASON: &str = "every feasible node puts binding b rule latency in Violation (best: 7ms to stadium, limit 5ms)";

    #[test]
    fn asks_from_the_bindings_other_end_over_the_feasible_nodes() {
        let nodes = [node("n2", true), node("cordoned", false), node("n1", true)];
        let q = request_for(
            &pending("r"),
            REASON,
            &[binding("b", TargetRef::site("stadium"))],
            &nodes,
            &[],
        );
        let Some(q) = q else { panic!("no question") };
        assert_eq!(q.binding, "ar/b");
        assert_eq!(q.request.binding, "ar/b");
        assert_eq!(q.request.source, Endpoint::Site("stadium".into()));
        assert_eq!(q.request.candidate_nodes, ["n1", "n2"]);
        // Broken rules are not sent.
        assert_eq!(q.request.rules.len(), 1);

        // A pod peer: its node, once placed.
        let b = [binding("b", TargetRef::pod("ar", "state"))];
        assert_eq!(request_for(&pending("r"), REASON, &b, &nodes, &[]), None);
        let placed = [PlacedPod {
            key: PodKey::new("ar", "state"),
            node: "m1".into(),
            requests: Resources::default(),
            labels: BTreeMap::new(),
            pod_rules: Default::default(),
        }];
        let q = request_for(&pending("r"), REASON, &b, &nodes, &placed);
        assert_eq!(
            q.map(|q| q.request.source),
            Some(Endpoint::Node("m1".into()))
        );
        // Other reasons: no question.
        assert_eq!(
            request_for(
                &pending("r"),
                "no node has 16 CPU free",
                &b,
                &nodes,
                &placed
            ),
            None
        );
    }

    fn offer(id: &str, expires: &str) -> PathOffer {
        PathOffer {
            id: id.into(),
            node: "n1".into(),
            path: vec!["stadium".into(), "edge-1".into()],
            expected: ExpectedMetrics {
                latency: "1ms".into(),
                jitter: "100us".into(),
                bandwidth: String::new(),
                loss: "0%".into(),
            },
            cost: 1.0,
            expires: expires.parse().unwrap_or_else(|e| panic!("{e}")),
            entry: "fast-1".into(),
            compliance: Compliance::Compliant,
        }
    }

    #[test]
    fn takes_the_best_offer_that_has_not_expired() {
        let now: Timestamp = "2025-06-01T00:01:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let offers = [
            offer("old", "2025-06-01T00:00:59Z"),
            offer("best", "2025-06-01T00:02:00Z"),
            offer("next", "2025-06-01T00:02:00Z"),
        ];
        assert_eq!(choose(&offers, now).map(|o| o.id.as_str()), Some("best"));
        assert_eq!(choose(&offers[..1], now), None);
        assert_eq!(
            describe_offer(&offers[1]),
            "fast-1 (path stadium, edge-1; latency 1ms, jitter 100us, loss 0%; Compliant) for node n1"
        );
    }

    #[test]
    fn records_the_allocation_with_annotation_and_finalizer() {
        let patch = allocation_patch("offer.fast-1.1748736120.ab12");
        assert_eq!(
            patch,
            serde_json::json!({"metadata": {
                "annotations": {"network.edgeplane.io/allocation": "offer.fast-1.1748736120.ab12"},
                "finalizers": ["network.edgeplane.io/path-release"]}})
        );
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "annotations": {"network.edgeplane.io/allocation": "x"}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(allocation_of(&pod), Some("x"));
        assert_eq!(allocation_of(&Pod::default()), None);
    }
}
