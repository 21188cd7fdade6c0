//! Evaluation of the built-in rules, and scoring of candidate nodes, from a view of the
//! cluster: the network graph, what each node offers, and where each pod runs.
//!
//! - **Pairwise rules** (latency, jitter, bandwidth, packet-loss) are judged on every pair
//!   of targets of a binding, in both directions; the worst (by compliance, then by cost)
//!   decides and its reason names the pair: `latency 12ms between renderer (edge-3-a) and
//!   users (stadium) is worse than the limit 10ms`. A pair with no path is in Violation
//!   with the reason `no path ...`.
//! - **Node rules** (cpu, memory, node-label, node-feature) are judged on the node of every
//!   Pod target (usually the one target of the binding); the worst decides. `cpu` and
//!   `memory` read the node's allocatable; `node-label` takes `key=value` and needs the
//!   node's label `key` to equal `value`; `node-feature` takes a node-feature-discovery
//!   feature, `cpu-cpuid.AVX512F` (meaning `=true`) or `cpu-cpuid.AVX512F=false`, read from
//!   the label `feature.node.kubernetes.io/<feature>` (a key containing `/` is used as
//!   it is); an absent label reads as `false`.
//! - A target that is not placed yet, or a pod that does not exist, makes the rule
//!   Pending; a site or node that is not known makes it Error; so does a rule name without
//!   a built-in provider (`no provider for rule X`).

mod builtin;
mod view;

#[cfg(test)]
mod tests;

pub use builtin::{
    BuiltinRule, CompileError, Interrupted, NFD_LABEL_PREFIX, Score, check_rule, evaluate_rule,
    evaluate_rule_until,
};
pub use view::{BindingRules, ClusterView, NodeFacts, Unlocated, bandwidth_demands, site_label};
