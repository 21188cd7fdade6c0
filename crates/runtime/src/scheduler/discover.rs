//! Asking the network for a path before giving up on a pod (design.md section 6).
//!
//! When no node keeps a binding of a pod out of Violation, the scheduler asks the network
//! controller's `Discover` (rules, the pod, candidate nodes) for paths that would. The
//! network-controller API arrives with the descheduler issue; until then the call sits
//! behind [`NetworkDiscovery`], whose default ([`NoDiscovery`]) offers nothing. The
//! scheduler reports what a controller offered (log, metric); using a discovered path in
//! the plan (Allocate, then plan with the path's metrics) comes with that API. A
//! controller that activates a path updates the NetworkTopology, which replans the pods
//! left unplaced anyway.

use std::collections::BTreeMap;

use edgeplane_api::{ConstraintPolicyRule, TargetRef};
use edgeplane_core::planner::feasibility::static_misfit;
use edgeplane_core::planner::{PendingPod, PlanBinding, PlanNode, PodKey, RuleProvider};
use futures::future::BoxFuture;

/// A `Discover` question: paths that would let `pod` satisfy `rules` of `binding`
/// towards `peers`, from one of `candidate_nodes`.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoverRequest {
    pub pod: PodKey,
    /// The binding whose rule no node satisfies.
    pub binding: String,
    /// The binding's rules (all of them: a path must not break the others).
    pub rules: Vec<ConstraintPolicyRule>,
    /// The binding's other targets (pods, sites).
    pub peers: Vec<TargetRef>,
    /// Nodes that could take the pod apart from the binding (resources, selectors,
    /// affinity, taints), sorted.
    pub candidate_nodes: Vec<String>,
}

/// A path a network controller offers.
#[derive(Clone, Debug, PartialEq)]
pub struct PathOffer {
    pub id: String,
    /// The node the path serves.
    pub node: String,
    /// Path metrics as printed values (`latency: 2ms`).
    pub metrics: BTreeMap<String, String>,
    pub cost: f64,
}

/// The network controller's `Discover`, as the scheduler uses it.
pub trait NetworkDiscovery: Send + Sync {
    /// Whether a controller is registered; when not, the scheduler does not ask.
    fn enabled(&self) -> bool {
        true
    }

    /// Paths that would satisfy the request; an error text when the controller fails.
    fn discover<'a>(
        &'a self,
        request: &'a DiscoverRequest,
    ) -> BoxFuture<'a, Result<Vec<PathOffer>, String>>;
}

/// No network controller: nothing to discover.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDiscovery;

impl NetworkDiscovery for NoDiscovery {
    fn enabled(&self) -> bool {
        false
    }

    fn discover<'a>(
        &'a self,
        _request: &'a DiscoverRequest,
    ) -> BoxFuture<'a, Result<Vec<PathOffer>, String>> {
        Box::pin(async { Ok(Vec::new()) })
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

/// The `Discover` question for an unplaced pod, when its reason is a binding that no node
/// satisfies.
pub fn request_for(
    pod: &PendingPod,
    reason: &str,
    bindings: &[PlanBinding],
    nodes: &[PlanNode],
) -> Option<DiscoverRequest> {
    let (name, _) = violated_binding(reason)?;
    let binding = bindings.iter().find(|b| b.name == name)?;
    let rules = binding
        .rules
        .iter()
        .filter(|r| !matches!(r.provider, RuleProvider::Broken(_)))
        .map(|r| r.spec.clone())
        .collect();
    let peers = binding
        .targets
        .values()
        .filter(|t| {
            !(t.name == pod.key.name
                && t.namespace.as_deref().unwrap_or("default") == pod.key.namespace)
        })
        .cloned()
        .collect();
    let mut candidate_nodes: Vec<String> = nodes
        .iter()
        .filter(|n| static_misfit(n, pod).is_none())
        .map(|n| n.name.clone())
        .collect();
    candidate_nodes.sort();
    Some(DiscoverRequest {
        pod: pod.key.clone(),
        binding: binding.name.clone(),
        rules,
        peers,
        candidate_nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn no_discovery_offers_nothing() {
        let d = NoDiscovery;
        assert!(!d.enabled());
        let request = DiscoverRequest {
            pod: PodKey::new("ar", "r"),
            binding: "b".into(),
            rules: vec![],
            peers: vec![],
            candidate_nodes: vec![],
        };
        assert_eq!(d.discover(&request).await, Ok(vec![]));
    }
}
