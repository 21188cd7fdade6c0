//! The group planner: where every waiting pod should run, decided for the whole group at
//! once (design.md section 5).
//!
//! [`plan`] is a pure function of a [`PlanInput`] (nodes, pods already running, pods to
//! place, bindings with their rules, and the cluster view that holds the network graph)
//! and [`PlanOptions`]. It returns a [`Plan`]: pod -> node, the pods left unplaced with a
//! reason each, the predicted compliance of every binding and rule, and a summary.
//!
//! # Problem
//!
//! Hard constraints: a node's allocatable (cpu, memory, pods, extended resources) minus
//! what is already requested on it; `nodeSelector` and required node affinity; taints
//! (NoSchedule, NoExecute) against tolerations; unschedulable nodes; required pod affinity
//! and anti-affinity (with the symmetry of running pods' anti-affinity), DoNotSchedule
//! topology spread and host ports (`podrules`); and no rule of a binding whose pod targets
//! are all placed may end in Violation.
//!
//! A *rule* is one (binding, policy, rule) triple. Its value is the worst over the pairs of
//! the binding's targets (pairwise rules), over the nodes of its pod targets (node rules),
//! or the external provider's cost at the pods' nodes. Its normalized cost is 0 at or
//! better than the request and 1 at the limit, linear in between.
//!
//! Objective, lexicographic: (1) most pods placed, higher priorities first; (2) fewest
//! rules in Limit; (3) least soft penalty (preferred pod affinity and anti-affinity,
//! ScheduleAnyway spread); (4) least total normalized cost. Only rules of bindings whose pod targets are all placed count;
//! the others are reported Pending.
//!
//! # Strategies
//!
//! - [`Strategy::Optimal`] (default): a group-aware greedy construction (sites as
//!   candidates, with a look-ahead to the peers still to place), then local search
//!   (insert, relocate) and large-neighbourhood search that re-optimizes small groups of
//!   connected pods exactly. When the group has at most `exact_limit` pods, a branch and
//!   bound search starts from that plan and, when it exhausts the search space within the
//!   budget, proves it optimal ([`Summary::optimal`]); when the budget runs out first, the
//!   plan is the best found so far and [`Summary::stopped`] says which budget ended it.
//! - [`Strategy::Greedy`]: Turnbuckle's behaviour, for comparison: pods in input order,
//!   each on its cheapest node given the peers placed before it.
//!
//! Work is bounded by an iteration budget (deterministic under a seed) and an optional
//! deadline; the best plan found so far is always returned.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetRef};

use crate::evaluate::{BuiltinRule, ClusterView};

pub mod bound;
mod candidates;
mod compile;
pub mod convert;
mod exact;
pub mod external;
pub mod feasibility;
mod greedy;
mod heuristic;
pub mod instances;
pub mod lanes;
mod links;
pub mod objective;
mod podrules;
pub(crate) use podrules::pod_rule_verdicts;
mod report;
mod state;

/// "None" in the planner's index tables: no node, no domain, no site.
pub(crate) const NONE: u32 = u32::MAX;

pub use crate::placement::{
    HostPort, InterPodRules, Namespaces, PodAffinityTerm, SpreadConstraint, WeightedTerm,
};
pub use crate::placement::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, Taint, TaintEffect, Toleration,
    TolerationOperator,
};
pub use convert::{pending_pod, placed_pod, plan_node, pod_requests};
pub use external::{
    CachedCosts, CostError, CostQuery, ExternalCosts, NodeCosts, fill_external_costs,
};

/// Resource quantities: CPU in millicores, memory in bytes, a pod count, and extended
/// resources (`nvidia.com/gpu`, `hugepages-2Mi`) in their integer units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub pods: i64,
    pub extended: BTreeMap<String, i64>,
}

impl Resources {
    /// What one pod asks for with these cpu and memory requests.
    pub fn pod(cpu_millis: i64, memory_bytes: i64) -> Resources {
        Resources {
            cpu_millis,
            memory_bytes,
            pods: 1,
            extended: BTreeMap::new(),
        }
    }
}

/// A node the planner may use.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanNode {
    pub name: String,
    pub allocatable: Resources,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// False for cordoned nodes (`spec.unschedulable`).
    pub schedulable: bool,
}

/// A pod's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> PodKey {
        PodKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A pod that runs already and stays where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedPod {
    pub key: PodKey,
    pub node: String,
    pub requests: Resources,
    pub labels: BTreeMap<String, String>,
    /// Its required anti-affinity (which pods to place must respect) and host ports; the
    /// rest of its rules were judged when it was scheduled.
    pub pod_rules: InterPodRules,
}

/// A pod to place.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingPod {
    pub key: PodKey,
    pub requests: Resources,
    pub node_selector: BTreeMap<String, String>,
    /// Required node affinity: at least one term must match. Empty: no requirement.
    pub affinity: Vec<NodeSelectorTerm>,
    pub tolerations: Vec<Toleration>,
    pub labels: BTreeMap<String, String>,
    /// Pod affinity and anti-affinity, topology spread, host ports and priority.
    pub pod_rules: InterPodRules,
}

/// How a rule is judged.
#[derive(Clone, Debug)]
pub enum RuleProvider {
    /// A built-in provider.
    Builtin(BuiltinRule),
    /// An external provider's answers (see [`external`]).
    External(ExternalRule),
    /// The rule cannot be evaluated (no provider, bad value, missing policy): it is
    /// reported in Error and does not constrain the plan.
    Broken(String),
    /// A built-in path metric judged along the targets in order, not pairwise: a
    /// service chain's lane ([`lanes`]).
    Lane(lanes::LaneRule),
}

/// What an external provider said about a rule: for each pod target, the normalized cost
/// of each node (0 at or better than the request, 1 at the limit; negative: the node is
/// infeasible). Nodes it did not score are infeasible for that pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExternalRule {
    pub costs: BTreeMap<PodKey, BTreeMap<String, f64>>,
    /// Set when the provider could not be asked; the rule is then reported in Error.
    pub error: Option<String>,
}

/// One rule of one policy of a binding.
#[derive(Clone, Debug)]
pub struct PlanRule {
    pub policy: String,
    pub spec: ConstraintPolicyRule,
    pub provider: RuleProvider,
}

impl PlanRule {
    /// A rule judged by its built-in provider, or Broken with the reason it cannot be.
    pub fn builtin(policy: &str, spec: &ConstraintPolicyRule) -> PlanRule {
        let provider = match BuiltinRule::compile(spec) {
            Ok(rule) => RuleProvider::Builtin(rule),
            Err(e) => RuleProvider::Broken(e.to_string()),
        };
        PlanRule {
            policy: policy.to_string(),
            spec: spec.clone(),
            provider,
        }
    }
}

/// A binding: the objects filling its roles, and the rules of its policies.
#[derive(Clone, Debug)]
pub struct PlanBinding {
    pub name: String,
    /// `namespace/name` of the offer.
    pub offer: String,
    pub targets: BTreeMap<String, TargetRef>,
    pub rules: Vec<PlanRule>,
}

/// Everything the planner looks at. The nodes of `view`'s graph are the nodes that exist;
/// `nodes` says which of them may receive pods and what they offer (a graph node missing
/// from `nodes` receives none).
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub view: &'a ClusterView,
    pub nodes: Vec<PlanNode>,
    pub placed: Vec<PlacedPod>,
    pub pending: Vec<PendingPod>,
    pub bindings: Vec<PlanBinding>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Group planning: exact on small groups, heuristic on large ones.
    #[default]
    Optimal,
    /// Turnbuckle's pod-by-pod placement, for comparison.
    Greedy,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Optimal => "optimal",
            Strategy::Greedy => "greedy",
        }
    }
}

/// How hard to work.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub strategy: Strategy,
    /// Stop improving at this instant and return the best plan found.
    pub deadline: Option<Instant>,
    /// Stop improving after this many search steps (deterministic).
    pub max_iterations: u64,
    /// Seeds the order in which the local search visits neighbourhoods.
    pub seed: u64,
    /// Groups of at most this many pods are solved exactly.
    pub exact_limit: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            strategy: Strategy::Optimal,
            deadline: None,
            max_iterations: 20_000_000,
            seed: 0,
            exact_limit: 16,
        }
    }
}

impl PlanOptions {
    /// Options with a deadline `budget` from now.
    pub fn with_time_budget(mut self, budget: Duration) -> Self {
        self.deadline = Instant::now().checked_add(budget);
        self
    }
}

/// What stopped a search before it finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `max_iterations` steps were taken.
    Iterations,
    /// The deadline (`--time-budget`) passed.
    Deadline,
}

impl Stop {
    /// `iteration budget`, `time budget`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Iterations => "iteration budget",
            Stop::Deadline => "time budget",
        }
    }
}

/// Which algorithm produced the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Exact,
    Heuristic,
    Greedy,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Heuristic => "heuristic",
            Method::Greedy => "greedy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub pod: PodKey,
    pub node: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unplaced {
    pub pod: PodKey,
    pub reason: String,
}

/// The predicted outcome of one rule of a binding.
#[derive(Clone, Debug, PartialEq)]
pub struct RulePlan {
    pub policy: String,
    pub rule: String,
    /// The worst pair's (or node's) value as printed (`3.2ms`).
    pub value: Option<String>,
    pub compliance: Compliance,
    /// Normalized cost; 0 unless Limit (Violation has the cost of its value, Error and
    /// Pending 0).
    pub cost: f64,
    pub reason: Option<String>,
}

/// The predicted outcome of one binding.
#[derive(Clone, Debug, PartialEq)]
pub struct BindingPlan {
    pub name: String,
    pub offer: String,
    pub targets: BTreeMap<String, TargetRef>,
    pub compliance: Compliance,
    pub rules: Vec<RulePlan>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Pods to place.
    pub pods: usize,
    pub placed: usize,
    pub unplaced: usize,
    pub rules_compliant: usize,
    pub rules_limit: usize,
    pub rules_violation: usize,
    pub rules_error: usize,
    pub rules_pending: usize,
    /// Total normalized cost of the rules of bindings whose targets are all placed.
    pub cost: f64,
    /// The plan is proven optimal: the exact search explored (or bounded away) the whole
    /// search space within the budget. False whenever the budget ran out.
    pub optimal: bool,
    /// The budget ran out before the search finished: the plan is the best found by then.
    pub stopped: Option<Stop>,
    pub strategy: Option<Strategy>,
    pub method: Option<Method>,
    pub elapsed: Duration,
    /// Search steps taken (candidate evaluations and branch-and-bound nodes).
    pub iterations: u64,
    /// What no plan can beat (`planner::bound`): computed for heuristic and greedy plans
    /// (a plan proven optimal needs none).
    pub bound: Option<bound::Bound>,
}

impl Summary {
    /// Pods that waiting longer might still place: the bound minus the pods placed.
    pub fn gap(&self) -> Option<usize> {
        self.bound.map(|b| b.placed.saturating_sub(self.placed))
    }

    /// `bound 1815 pods (gap 41, 2.3 %); at least 402 rules in Limit at that`, or `None`.
    pub fn bound_note(&self) -> Option<String> {
        let b = self.bound?;
        let gap = b.placed.saturating_sub(self.placed);
        let pct = if b.placed == 0 {
            0.0
        } else {
            gap as f64 * 100.0 / b.placed as f64
        };
        let partial = if b.exact_groups < b.groups {
            format!(
                "; {} of {} groups bounded by their size only",
                b.groups - b.exact_groups,
                b.groups
            )
        } else {
            String::new()
        };
        let regions = if b.regions > 0 {
            format!("; {} regions short of capacity", b.regions)
        } else {
            String::new()
        };
        Some(format!(
            "bound {} pods (gap {gap}, {pct:.1} %), at least {} rules in Limit at that{partial}{regions}",
            b.placed, b.limit
        ))
    }

    /// How the plan was found, for messages: `exact, proven optimal`; `exact search
    /// stopped at the iteration budget after 200000 steps: best plan found, not proven
    /// optimal`; `heuristic`; `greedy`.
    pub fn search_note(&self) -> String {
        let Some(method) = self.method else {
            return "none".into();
        };
        let stopped = self.stopped.map(|why| {
            format!(
                "stopped at the {} after {} steps",
                why.as_str(),
                self.iterations
            )
        });
        match (method, stopped) {
            (Method::Exact, _) if self.optimal => "exact, proven optimal".into(),
            (Method::Exact, Some(stopped)) => {
                format!("exact search {stopped}: best plan found, not proven optimal")
            }
            (Method::Exact, None) => "exact, not proven optimal".into(),
            (method, Some(stopped)) => format!("{}, {stopped}", method.as_str()),
            (method, None) => method.as_str().into(),
        }
    }
}

/// The planner's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to place that got a node, in input order.
    pub assignments: Vec<Assignment>,
    /// Pods to place that did not, in input order, each with the reason.
    pub unplaced: Vec<Unplaced>,
    /// Every binding, in input order, with its predicted compliance.
    pub bindings: Vec<BindingPlan>,
    pub summary: Summary,
    /// Input problems that did not stop planning (unknown nodes of placed pods, ...).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The node planned for a pod.
    pub fn node_of(&self, pod: &PodKey) -> Option<&str> {
        self.assignments
            .iter()
            .find(|a| &a.pod == pod)
            .map(|a| a.node.as_str())
    }
}

/// Plans the pending pods of `input`.
pub fn plan(input: &PlanInput<'_>, options: &PlanOptions) -> Plan {
    let started = Instant::now();
    let problem = compile::Problem::build(input);
    let mut budget = objective::Budget::new(options.max_iterations, options.deadline);
    let (assignment, method, optimal) = match options.strategy {
        Strategy::Greedy => (greedy::solve(&problem, &mut budget), Method::Greedy, false),
        Strategy::Optimal => {
            let heuristic = heuristic::solve(&problem, options.seed, &mut budget);
            if problem.pods.len() <= options.exact_limit {
                let (best, proven) = exact::solve(&problem, heuristic, &mut budget);
                (best, Method::Exact, proven)
            } else {
                (heuristic, Method::Heuristic, false)
            }
        }
    };
    let mut plan = report::build(input, &problem, &assignment);
    plan.summary.optimal = optimal && !budget.exhausted();
    plan.summary.stopped = budget.stop();
    plan.summary.strategy = Some(options.strategy);
    plan.summary.method = Some(method);
    plan.summary.iterations = budget.used();
    if !plan.summary.optimal {
        plan.summary.bound = Some(bound::compute(&problem));
    }
    plan.summary.elapsed = started.elapsed();
    plan
}

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod podrules_tests;
#[cfg(test)]
mod tests;
