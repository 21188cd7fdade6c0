//! External providers in planning: their rules take part through a table of node costs per
//! (pod, rule), filled before planning by asking the provider's `EndpointCost` once per
//! distinct question.
//!
//! The question names the rule (name, request, limit), the nodes that may take the pod and
//! the nodes of the binding's running pods; replicas of one workload ask the same question,
//! so [`CachedCosts`] asks the provider once for all of them. The transport (gRPC, with
//! its own timeouts) lives outside core behind [`ExternalCosts`].

use std::collections::{BTreeMap, HashMap};

use edgeplane_api::TargetKind;

use super::feasibility::eligible_node_names;
use super::{PlanInput, PodKey, RuleProvider};

/// Node costs per pod.
type CostTable = BTreeMap<PodKey, BTreeMap<String, f64>>;

/// One `EndpointCost` question.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CostQuery {
    pub rule: String,
    pub request: String,
    pub limit: Option<String>,
    /// Nodes that may take the pod, by name, sorted.
    pub nodes: Vec<String>,
    /// Nodes of the binding's pods that already run, sorted.
    pub peers: Vec<String>,
}

/// Why a cost question got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// No provider serves the rule.
    #[error("no provider for rule {rule}")]
    NoProvider { rule: String },
    /// The question was not among those asked before planning.
    #[error("{rule} was not asked")]
    NotAsked { rule: String },
    /// The provider could not be reached, or answered with an error.
    #[error("{0}")]
    Provider(String),
}

/// Node costs by node name.
pub type NodeCosts = BTreeMap<String, f64>;

/// Answers `EndpointCost`: a cost per node (0 at or better than the request, 1 at the
/// limit, negative: infeasible), or why there is none. `source` is the pod that asks;
/// identical questions of other pods (replicas) share its answer.
pub trait ExternalCosts {
    fn endpoint_cost(&mut self, source: &PodKey, query: &CostQuery)
    -> Result<NodeCosts, CostError>;
}

/// Remembers answers, so that one plan asks each distinct question once.
pub struct CachedCosts<T> {
    inner: T,
    cache: HashMap<CostQuery, Result<NodeCosts, CostError>>,
    calls: usize,
}

impl<T: ExternalCosts> CachedCosts<T> {
    pub fn new(inner: T) -> Self {
        CachedCosts {
            inner,
            cache: HashMap::new(),
            calls: 0,
        }
    }

    /// Questions that reached the provider.
    pub fn calls(&self) -> usize {
        self.calls
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: ExternalCosts> ExternalCosts for CachedCosts<T> {
    fn endpoint_cost(
        &mut self,
        source: &PodKey,
        query: &CostQuery,
    ) -> Result<NodeCosts, CostError> {
        if let Some(answer) = self.cache.get(query) {
            return answer.clone();
        }
        self.calls += 1;
        let answer = self.inner.endpoint_cost(source, query);
        self.cache.insert(query.clone(), answer.clone());
        answer
    }
}

/// Fills the cost tables of every external rule whose table is empty. A provider error
/// marks the rule in Error (it then does not constrain the plan).
pub fn fill_external_costs(input: &mut PlanInput<'_>, provider: &mut dyn ExternalCosts) {
    // Each pending pod's eligible nodes, worked out only when an external rule asks about
    // the pod: most plans have no external rule, and a table of node names for every pod
    // costs hundreds of MB at thousands of pods and nodes.
    let pending: HashMap<&PodKey, &super::PendingPod> =
        input.pending.iter().map(|p| (&p.key, p)).collect();
    let mut eligible: HashMap<&PodKey, Vec<String>> = HashMap::new();
    let nodes = &input.nodes;
    let mut eligible_nodes = |key: &PodKey| -> Option<Vec<String>> {
        let (key, pod) = pending.get_key_value(key)?;
        let names = eligible
            .entry(key)
            .or_insert_with(|| eligible_node_names(nodes, pod));
        Some(names.clone())
    };
    let placed: HashMap<&PodKey, &str> = input
        .placed
        .iter()
        .map(|p| (&p.key, p.node.as_str()))
        .collect();
    let mut fills: Vec<(usize, usize, Result<CostTable, String>)> = Vec::new();
    for (b, binding) in input.bindings.iter().enumerate() {
        let keys: Vec<PodKey> = binding
            .targets
            .values()
            .filter(|t| t.kind == TargetKind::Pod)
            .map(|t| PodKey::new(t.namespace.as_deref().unwrap_or("default"), &t.name))
            .collect();
        let mut peers: Vec<String> = keys
            .iter()
            .filter_map(|k| placed.get(k).map(|n| n.to_string()))
            .collect();
        peers.sort();
        for (r, rule) in binding.rules.iter().enumerate() {
            let RuleProvider::External(ext) = &rule.provider else {
                continue;
            };
            if ext.error.is_some() || !ext.costs.is_empty() {
                continue;
            }
            let mut table = BTreeMap::new();
            let mut failed = None;
            for key in &keys {
                let Some(nodes) = eligible_nodes(key) else {
                    continue;
                };
                let query = CostQuery {
                    rule: rule.spec.name.clone(),
                    request: rule.spec.request.clone(),
                    limit: rule.spec.limit.clone(),
                    nodes,
                    peers: peers.clone(),
                };
                match provider.endpoint_cost(key, &query) {
                    Ok(costs) => {
                        table.insert(key.clone(), costs);
                    }
                    Err(e) => {
                        failed = Some(format!("{}: the provider failed: {e}", rule.spec.name));
                        break;
                    }
                }
            }
            fills.push((b, r, failed.map_or(Ok(table), Err)));
        }
    }
    for (b, r, fill) in fills {
        if let RuleProvider::External(ext) = &mut input.bindings[b].rules[r].provider {
            match fill {
                Ok(table) => ext.costs = table,
                Err(e) => ext.error = Some(e),
            }
        }
    }
}
