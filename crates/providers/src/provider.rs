//! The provider trait and the types of its two operations.

use std::collections::BTreeMap;

use edgeplane_api::{ConstraintPolicyRule, TargetRef};
use edgeplane_core::evaluate::Score;
use edgeplane_core::planner::{CostQuery, PodKey};
use edgeplane_core::status::RuleOutcome;
pub use edgeplane_serve::grpc::Interrupt;

/// Evaluates rules for bindings and scores nodes, like a Turnbuckle rule provider.
///
/// `evaluate` never fails: a provider that cannot answer returns an outcome in Error with
/// the cause as reason. `endpoint_cost` fails with a [`ProviderError`] instead, since a cost
/// has no compliance to carry the failure.
#[tonic::async_trait]
pub trait Provider: Send + Sync {
    /// Evaluates `rule` for a binding whose roles are filled by `targets`.
    async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome;

    /// `evaluate` for a server, which raises `interrupt` when the caller no longer wants
    /// the answer (it went away, or its deadline passed): a provider whose work can be
    /// long stops early then (the outcome of interrupted work is not read). The default
    /// ignores the flag.
    async fn evaluate_interruptible(
        &self,
        targets: BTreeMap<String, TargetRef>,
        rule: ConstraintPolicyRule,
        interrupt: Interrupt,
    ) -> RuleOutcome {
        let _ = interrupt;
        self.evaluate(&targets, &rule).await
    }

    /// Scores each eligible node for running `request.source`, given the nodes (or sites)
    /// its peers are on. Lower is better; [`INFEASIBLE_COST`] (negative) rules a node out.
    async fn endpoint_cost(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError>;

    /// `endpoint_cost` for a server, with the interruption flag of
    /// [`Provider::evaluate_interruptible`]. The default ignores the flag.
    async fn endpoint_cost_interruptible(
        &self,
        request: CostRequest,
        interrupt: Interrupt,
    ) -> Result<Vec<NodeCost>, ProviderError> {
        let _ = interrupt;
        self.endpoint_cost(&request).await
    }
}

/// The question of `endpoint_cost`.
#[derive(Clone, Debug, PartialEq)]
pub struct CostRequest {
    pub source: TargetRef,
    pub rule: ConstraintPolicyRule,
    /// Where the source's peers run: node names, or site names for peers that are the
    /// users at a site (a name that is no node is looked up as a site).
    pub peer_nodes: Vec<String>,
    pub eligible_nodes: Vec<String>,
}

impl CostRequest {
    /// The `EndpointCost` request for one of the planner's questions, asked by `source`.
    pub fn for_query(source: &PodKey, query: &CostQuery) -> CostRequest {
        CostRequest {
            source: TargetRef::pod(&source.namespace, &source.name),
            rule: ConstraintPolicyRule {
                name: query.rule.clone(),
                request: query.request.clone(),
                limit: query.limit.clone(),
            },
            peer_nodes: query.peers.clone(),
            eligible_nodes: query.nodes.clone(),
        }
    }
}

/// Asks a provider one of the planner's questions and answers as the planner's
/// `ExternalCosts` does: normalized cost per node, negative for infeasible nodes; the
/// error text when the provider cannot answer.
pub async fn planner_costs(
    provider: &dyn Provider,
    source: &PodKey,
    query: &CostQuery,
) -> Result<BTreeMap<String, f64>, String> {
    let costs = provider
        .endpoint_cost(&CostRequest::for_query(source, query))
        .await
        .map_err(|e| e.to_string())?;
    Ok(costs
        .into_iter()
        .map(|c| {
            let cost = match cost_from_wire(c.cost) {
                Score::Feasible(cost) => cost,
                Score::Infeasible => -1.0,
            };
            (c.node, cost)
        })
        .collect())
}

/// The cost of one node, on the wire's integer scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCost {
    pub node: String,
    pub cost: i64,
}

/// Why a provider could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("no provider for rule {0}")]
    NoProvider(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The provider could not be reached, did not answer in time, failed, or answered
    /// something that is not a valid answer.
    #[error("{0}")]
    Failed(String),
}

/// Normalized costs (0 at the request, 1 at the limit) travel as integers: `cost * 1000`,
/// rounded.
pub const COST_SCALE: f64 = 1000.0;
/// The wire cost of a node where the rule would be in Violation (any negative cost means
/// infeasible when read).
pub const INFEASIBLE_COST: i64 = -1;

/// A score as a wire cost: `round(cost * 1000)`, capped at `i64::MAX / 2`, or -1.
pub fn cost_to_wire(score: Score) -> i64 {
    match score {
        Score::Infeasible => INFEASIBLE_COST,
        Score::Feasible(cost) if cost.is_nan() => INFEASIBLE_COST,
        Score::Feasible(cost) => {
            let scaled = (cost.max(0.0) * COST_SCALE).round();
            if scaled >= (i64::MAX / 2) as f64 {
                i64::MAX / 2
            } else {
                scaled as i64
            }
        }
    }
}

/// A wire cost as a score: negative is infeasible.
pub fn cost_from_wire(cost: i64) -> Score {
    if cost < 0 {
        Score::Infeasible
    } else {
        Score::Feasible(cost as f64 / COST_SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_scale_round_trips_to_a_thousandth() {
        assert_eq!(cost_to_wire(Score::Feasible(0.0)), 0);
        assert_eq!(cost_to_wire(Score::Feasible(1.0 / 3.0)), 333);
        assert_eq!(cost_to_wire(Score::Feasible(1.0)), 1000);
        assert_eq!(cost_to_wire(Score::Feasible(2.5)), 2500);
        assert_eq!(cost_to_wire(Score::Feasible(f64::INFINITY)), i64::MAX / 2);
        assert_eq!(cost_to_wire(Score::Feasible(f64::NAN)), -1);
        assert_eq!(cost_to_wire(Score::Infeasible), -1);
        assert_eq!(cost_from_wire(-7), Score::Infeasible);
        assert_eq!(cost_from_wire(500), Score::Feasible(0.5));
    }
}
