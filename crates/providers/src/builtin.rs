//! The built-in providers, answering from a view of the cluster.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use edgeplane_api::{ConstraintPolicyRule, TargetRef};
use edgeplane_core::evaluate::{
    BuiltinRule, ClusterView, CompileError, Interrupted, Score, evaluate_rule, evaluate_rule_until,
};
use edgeplane_core::network::Location;
use edgeplane_core::rules::builtin;
use edgeplane_core::status::RuleOutcome;

use crate::provider::{CostRequest, Interrupt, NodeCost, Provider, ProviderError, cost_to_wire};

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

    /// Evaluates on a blocking thread, so that a large request does not hold up a server's
    /// other calls, giving up when `interrupt` is raised (its outcome is then an Error
    /// nobody reads). Shared by every provider of the built-in rules.
    pub async fn evaluate_off_thread(
        view: Arc<ClusterView>,
        targets: BTreeMap<String, TargetRef>,
        rule: ConstraintPolicyRule,
        interrupt: Interrupt,
    ) -> RuleOutcome {
        let name = rule.name.clone();
        let work = tokio::task::spawn_blocking(move || {
            evaluate_rule_until(&view, &targets, &rule, &|| interrupt.is_raised())
        });
        let failed = |reason: String| RuleOutcome {
            rule: name.clone(),
            compliance: edgeplane_api::Compliance::Error,
            value: None,
            reason: Some(reason),
        };
        match work.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(Interrupted)) => failed(format!(
                "{name}: the evaluation was interrupted (the caller went away or its deadline passed)"
            )),
            Err(error) => failed(format!("{name}: the evaluation failed: {error}")),
        }
    }

    /// `endpoint_cost` without the async wrapper.
    pub fn costs(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        costs_until(&self.view(), request, &|| false)
    }

    /// [`BuiltinProvider::costs`] on a blocking thread, giving up when `interrupt` is
    /// raised (like [`BuiltinProvider::evaluate_off_thread`]).
    pub async fn costs_off_thread(
        view: Arc<ClusterView>,
        request: CostRequest,
        interrupt: Interrupt,
    ) -> Result<Vec<NodeCost>, ProviderError> {
        let work = tokio::task::spawn_blocking(move || {
            costs_until(&view, &request, &|| interrupt.is_raised())
        });
        work.await
            .map_err(|e| ProviderError::Failed(format!("the scoring failed: {e}")))?
    }
}

/// Scores the eligible nodes on `view`, giving up (as a failure) when `interrupted` says
/// so; looked at every [`COSTS_INTERRUPT_EVERY`] nodes.
fn costs_until(
    view: &ClusterView,
    request: &CostRequest,
    interrupted: &dyn Fn() -> bool,
) -> Result<Vec<NodeCost>, ProviderError> {
    let rule = BuiltinRule::compile(&request.rule).map_err(|e| match e {
        CompileError::NoProvider(name) => ProviderError::NoProvider(name),
        invalid => ProviderError::InvalidRequest(invalid.to_string()),
    })?;
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
    let mut costs = Vec::with_capacity(request.eligible_nodes.len());
    for (count, node) in request.eligible_nodes.iter().enumerate() {
        if count % COSTS_INTERRUPT_EVERY == 0 && interrupted() {
            return Err(ProviderError::Failed(
                "the scoring was interrupted (the caller went away or its deadline passed)".into(),
            ));
        }
        let score = match graph.node_id(node) {
            Some(id) => rule.score(view, id, &peers),
            None => Score::Infeasible,
        };
        costs.push(NodeCost {
            node: node.clone(),
            cost: cost_to_wire(score),
        });
    }
    Ok(costs)
}

/// Nodes scored between two looks at the interruption flag.
const COSTS_INTERRUPT_EVERY: usize = 64;

#[tonic::async_trait]
impl Provider for BuiltinProvider {
    async fn evaluate(
        &self,
        targets: &BTreeMap<String, TargetRef>,
        rule: &ConstraintPolicyRule,
    ) -> RuleOutcome {
        evaluate_rule(&self.view(), targets, rule)
    }

    /// On a blocking thread, looking at `interrupt` as it goes
    /// ([`BuiltinProvider::evaluate_off_thread`]).
    async fn evaluate_interruptible(
        &self,
        targets: BTreeMap<String, TargetRef>,
        rule: ConstraintPolicyRule,
        interrupt: Interrupt,
    ) -> RuleOutcome {
        BuiltinProvider::evaluate_off_thread(self.view(), targets, rule, interrupt).await
    }

    async fn endpoint_cost(&self, request: &CostRequest) -> Result<Vec<NodeCost>, ProviderError> {
        self.costs(request)
    }

    async fn endpoint_cost_interruptible(
        &self,
        request: CostRequest,
        interrupt: Interrupt,
    ) -> Result<Vec<NodeCost>, ProviderError> {
        BuiltinProvider::costs_off_thread(self.view(), request, interrupt).await
    }
}
