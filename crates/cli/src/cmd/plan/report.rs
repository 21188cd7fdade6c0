//! The `--report` JSON of `edgeplane plan`: the plan as data (docs/planner.md).

use std::collections::BTreeMap;

use edgeplane_core::planner::Plan;
use serde::Serialize;

use super::network::Allocation;

/// The `--report` JSON.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Paths the network controller allocated for pods no node satisfied
    /// (`--network-controller`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<ReportAllocation>,
    pub assignments: Vec<ReportAssignment>,
    pub unplaced: Vec<ReportUnplaced>,
    pub bindings: Vec<ReportBinding>,
    pub summary: ReportSummary,
}

#[derive(Serialize, Debug)]
pub struct ReportAssignment {
    pub namespace: String,
    pub name: String,
    pub node: String,
}

#[derive(Serialize, Debug)]
pub struct ReportUnplaced {
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

#[derive(Serialize, Debug)]
pub struct ReportBinding {
    pub name: String,
    pub offer: String,
    pub targets: BTreeMap<String, String>,
    pub compliance: String,
    pub rules: Vec<ReportRule>,
}

/// A network path allocated for an unplaced pod: the paper's pipeline, step 3.
#[derive(Serialize, Debug)]
pub struct ReportAllocation {
    pub namespace: String,
    pub name: String,
    /// `namespace/name` of the binding no node satisfied without the path.
    pub binding: String,
    /// The allocation's id at the network controller (to release it).
    pub allocation: String,
    /// The node the path leads to.
    pub node: String,
    /// Sites from the binding's other end to the node.
    pub path: Vec<String>,
    pub entry: String,
    pub latency: String,
    /// How the controller expects the binding's rules to fare on the path.
    pub compliance: String,
}

#[derive(Serialize, Debug)]
pub struct ReportRule {
    pub policy: String,
    pub rule: String,
    pub value: Option<String>,
    pub compliance: String,
    /// Normalized cost; null for a Violation without a finite cost.
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    pub pods: usize,
    pub placed: usize,
    pub unplaced: usize,
    pub rules_compliant: usize,
    pub rules_limit: usize,
    pub rules_violation: usize,
    pub rules_error: usize,
    pub rules_pending: usize,
    pub cost: f64,
    pub optimal: bool,
    /// `iteration budget` or `time budget` when one ended the search (then not optimal).
    pub stopped: Option<String>,
    pub strategy: String,
    pub method: String,
    pub plan_millis: u64,
    pub iterations: u64,
    /// What no plan can beat (docs/planner.md, "How good is the plan?"); null for a plan
    /// proven optimal.
    pub bound: Option<ReportBound>,
    /// Pods the bound allows beyond those placed; null without a bound.
    pub gap: Option<usize>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ReportBound {
    /// No plan places more pods.
    pub placed: usize,
    /// A plan placing `placed` pods has at least this many rules in Limit.
    pub limit: usize,
    pub groups: usize,
    /// Groups solved to the end (the others are bounded by their size).
    pub exact_groups: usize,
    /// Regions whose capacity cannot hold every pod that can only run there (they
    /// lowered `placed`; `limit` then counts only rules whose targets do not move).
    pub regions: usize,
}

impl Report {
    pub fn new(plan: &Plan, allocations: &[Allocation]) -> Report {
        let s = &plan.summary;
        Report {
            allocations: allocations
                .iter()
                .map(|a| ReportAllocation {
                    namespace: a.pod.namespace.clone(),
                    name: a.pod.name.clone(),
                    binding: a.binding.clone(),
                    allocation: a.id.clone(),
                    node: a.offer.node.clone(),
                    path: a.offer.path.clone(),
                    entry: a.offer.entry.clone(),
                    latency: a.offer.expected.latency.clone(),
                    compliance: a.offer.compliance.to_string(),
                })
                .collect(),
            assignments: plan
                .assignments
                .iter()
                .map(|a| ReportAssignment {
                    namespace: a.pod.namespace.clone(),
                    name: a.pod.name.clone(),
                    node: a.node.clone(),
                })
                .collect(),
            unplaced: plan
                .unplaced
                .iter()
                .map(|u| ReportUnplaced {
                    namespace: u.pod.namespace.clone(),
                    name: u.pod.name.clone(),
                    reason: u.reason.clone(),
                })
                .collect(),
            bindings: plan
                .bindings
                .iter()
                .map(|b| ReportBinding {
                    name: b.name.clone(),
                    offer: b.offer.clone(),
                    targets: b
                        .targets
                        .iter()
                        .map(|(role, t)| (role.clone(), t.to_string()))
                        .collect(),
                    compliance: b.compliance.to_string(),
                    rules: b
                        .rules
                        .iter()
                        .map(|r| ReportRule {
                            policy: r.policy.clone(),
                            rule: r.rule.clone(),
                            value: r.value.clone(),
                            compliance: r.compliance.to_string(),
                            cost: r.cost.is_finite().then(|| round(r.cost)),
                            reason: r.reason.clone(),
                        })
                        .collect(),
                })
                .collect(),
            summary: ReportSummary {
                pods: s.pods,
                placed: s.placed,
                unplaced: s.unplaced,
                rules_compliant: s.rules_compliant,
                rules_limit: s.rules_limit,
                rules_violation: s.rules_violation,
                rules_error: s.rules_error,
                rules_pending: s.rules_pending,
                cost: round(s.cost),
                optimal: s.optimal,
                stopped: s.stopped.map(|w| w.as_str().to_string()),
                strategy: s.strategy.unwrap_or_default().as_str().to_string(),
                method: s.method.map(|m| m.as_str()).unwrap_or("none").to_string(),
                plan_millis: s.elapsed.as_millis() as u64,
                iterations: s.iterations,
                bound: s.bound.map(|b| ReportBound {
                    placed: b.placed,
                    limit: b.limit,
                    groups: b.groups,
                    exact_groups: b.exact_groups,
                    regions: b.regions,
                }),
                gap: s.gap(),
            },
        }
    }
}

/// Six decimals: costs are ratios of measurements with far fewer significant digits.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
