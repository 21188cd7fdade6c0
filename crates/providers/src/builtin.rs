//! The built-in providers, answering from a view of the cluster.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use edgeplane_api::{ConstraintPolicyRule, TargetRef};
use edgeplane_core::evaluate::{BuiltinRule, ClusterView, CompileError, Score, evaluate_rule};
use edgeplane_core::network::Location;
use edgeplane_core::rules::builtin;
use edgeplane_core::status::RuleOutcome;

use crate::provider::{CostRequest, NodeCost, Provider, ProviderError, cost_to_wire};

/// Latency, jitter, bandwidth, packet-loss, cpu, memory, node-label and node-feature,
/// evaluated on the current [`ClusterView`]. Controllers swap the view as the cluster
/// changes with [`BuiltinProvider::replace_view`].
pub struct BuiltinProvider {
    view: RwLock<Arc<ClusterView>>,
}

impl BuiltinProvider {
    pub fn new(view: Arc<ClusterView>) -> BuiltinProvider {
        BuiltinProvider {
            view: RwLock::new(view),
        }
    }

    /// The rules this provider answers for.
    pub fn rules() -> &'static [&'static str] {
        &builtin::ALL
    }

    pub fn replace_view(&self, view: Arc<ClusterView>) {
        // A poisoned lock only means a panic elsewhere while swapping; the Arc inside is
        // still whole.
        let mut guard = self.view.write().unwrap_or_else(|p| p.into_inner());
        *guard = view;
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `endpoint_cost` without the async wrapper.
    pub fn costs(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        let rule = BuiltinRule::compile(&request.rule).map_err(|e| match e {
            CompileError::NoProvider(name) => ProviderError::NoProvider(name),
            invalid => ProviderError::InvalidRequest(invalid.to_string()),
        })?;
        let view = self.view();
        let graph = view.graph();
        let mut peers = Vec::with_capacity(request.peer_nodes.len());
        for peer in &request.peer_nodes {
            let location = graph
                .node_id(peer)
                .map(Location::Node)
                .or_else(|| graph.site_id(peer).map(Location::Site))
                .ok_or_else(|| {
                    ProviderError::InvalidRequest(format!(
                        "peer {peer:?} is neither a node nor a site of the topology"
                    ))
                })?;
            peers.push(location);
        }
        Ok(request
            .eligible_nodes
            .iter()
            .map(|node| {
                let score = match graph.node_id(node) {
                    Some(id) => rule.score(&view, id, &peers),
                    None => Score::Infeasible,
                };
                NodeCost {
                    node: node.clone(),
                    cost: cost_to_wire(score),
                }
            })
            .collect())
    }
}

#[tonic::async_trait]
impl Provider for BuiltinProvider {
    async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        evaluate_rule(&self.view(), targets, rule)
    }

    async fn endpoint_cost(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        self.costs(request)
    }
}
