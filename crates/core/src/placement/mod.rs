//! Kubernetes placement rules, one implementation for the planner and for the embedded
//! cluster's scheduler: whether a pod may run on a node at all (cordons, `nodeSelector`,
//! required node affinity, taints against tolerations) and what it asks of the node's
//! resources (requests of containers, init containers and overhead, in exact milli-units).
//!
//! If the planner and the cluster's scheduler read these rules differently, a simulation
//! changes silently (the planner places a pod where the scheduler then refuses it), so both
//! call these functions. Reading Kubernetes objects comes in two strengths: the planner
//! refuses what the API server would reject, naming the field ([`tolerations`],
//! [`required_affinity`], [`pod_requests`]); the embedded cluster, whose API server does
//! not validate these fields, reads them as kube-scheduler does ([`effective_tolerations`],
//! [`effective_required_affinity`], [`effective_pod_requests`]: what does not parse never
//! matches, never tolerates, or requests nothing).
//!
//! ```
//! use std::collections::BTreeMap;
//! use edgeplane_core::placement::{self, Misfit, NodeFacts, PodRules, Taint, TaintEffect};
//! use k8s_openapi::api::core::v1::PodSpec;
//!
//! let spec: PodSpec = serde_json::from_value(serde_json::json!({
//!     "containers": [{"name": "a", "resources": {"requests": {"cpu": "9m", "memory": "1Gi"}}}],
//!     "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
//! }))?;
//! let requests = placement::pod_requests(&spec)?;
//! assert_eq!(requests["cpu"], 2000); // the init container's 2 cores, in millicores
//! assert_eq!(requests["pods"], 1000); // one pod, in milli-units
//!
//! let taints = [Taint { key: "dedicated".into(), value: "gpu".into(), effect: TaintEffect::NoSchedule }];
//! let (labels, none) = (BTreeMap::new(), BTreeMap::new());
//! let node = NodeFacts { name: "n1", labels: &labels, taints: &taints, unschedulable: false };
//! let pod = PodRules { node_selector: &none, affinity: &[], tolerations: &[] };
//! assert_eq!(placement::misfit(node, pod), Some(Misfit::Taint(taints[0].clone())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

mod affinity;
pub mod interpod;
mod requests;
mod taints;

pub use affinity::{
    affinity_matches, effective_required_affinity, matches_node_selector, required_affinity,
    requirement_holds, term_matches,
};
pub use interpod::{
    HostPort, InterPodRules, Namespaces, PodAffinityTerm, RulesContext, SpreadConstraint,
    WeightedTerm, inter_pod_rules, spread_counts_node,
};
pub use requests::{
    ResourceList, amount_fits, effective_node_allocatable, effective_pod_requests, insufficient,
    node_allocatable, pod_requests,
};
pub use taints::{
    NOT_READY_TAINT_KEY, NoExecute, UNREACHABLE_TAINT_KEY, UNSCHEDULABLE_TAINT_KEY,
    add_default_tolerations, effective_taints, effective_tolerations, no_execute, taints,
    tolerates, tolerates_unschedulable, tolerations, untolerated,
};

/// A taint's effect. `PreferNoSchedule` never keeps a pod off a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn parse(text: &str) -> Option<TaintEffect> {
        match text {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl fmt::Display for Taint {
    /// `dedicated=gpu:NoSchedule`, as kubectl prints taints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect.as_str())
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect.as_str())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TolerationOperator {
    Equal,
    Exists,
}

/// A toleration. An empty key with `Exists` tolerates every taint; no effect matches
/// every effect.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Toleration {
    pub key: String,
    pub operator: TolerationOperator,
    pub value: String,
    pub effect: Option<TaintEffect>,
}

/// Operators of node selector requirements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl NodeOperator {
    pub fn parse(text: &str) -> Option<NodeOperator> {
        match text {
            "In" => Some(NodeOperator::In),
            "NotIn" => Some(NodeOperator::NotIn),
            "Exists" => Some(NodeOperator::Exists),
            "DoesNotExist" => Some(NodeOperator::DoesNotExist),
            "Gt" => Some(NodeOperator::Gt),
            "Lt" => Some(NodeOperator::Lt),
            _ => None,
        }
    }
}

/// One requirement on a node label (or, in `match_fields`, on `metadata.name`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeRequirement {
    pub key: String,
    pub operator: NodeOperator,
    pub values: Vec<String>,
}

/// A node selector term: every requirement must hold. The terms of a required node
/// affinity are ORed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<NodeRequirement>,
    pub match_fields: Vec<NodeRequirement>,
}

/// What a node offers to the placement rules (resources aside).
#[derive(Clone, Copy, Debug)]
pub struct NodeFacts<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub taints: &'a [Taint],
    /// `spec.unschedulable`: cordoned.
    pub unschedulable: bool,
}

/// What a pod asks of a node's name, labels and taints.
#[derive(Clone, Copy, Debug)]
pub struct PodRules<'a> {
    pub node_selector: &'a BTreeMap<String, String>,
    /// Required node affinity: at least one term must match. Empty: no requirement.
    pub affinity: &'a [NodeSelectorTerm],
    pub tolerations: &'a [Toleration],
}

/// Why a node cannot take a pod regardless of what else runs there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misfit {
    Unschedulable,
    NodeSelector,
    Affinity,
    Taint(Taint),
}

/// The first reason a node cannot take a pod (resources aside), in kube-scheduler's filter
/// order, or `None` when it can. A cordoned node takes pods that tolerate
/// `node.kubernetes.io/unschedulable:NoSchedule` (DaemonSet pods do).
pub fn misfit(node: NodeFacts<'_>, pod: PodRules<'_>) -> Option<Misfit> {
    if node.unschedulable && !tolerates_unschedulable(pod.tolerations) {
        return Some(Misfit::Unschedulable);
    }
    if !matches_node_selector(pod.node_selector, node.labels) {
        return Some(Misfit::NodeSelector);
    }
    if !affinity_matches(pod.affinity, node.name, node.labels) {
        return Some(Misfit::Affinity);
    }
    untolerated(node.taints, pod.tolerations).map(|t| Misfit::Taint(t.clone()))
}

/// Constructors the placement tests (here and in the planner) share.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Taint, TaintEffect, Toleration, TolerationOperator};

    pub(crate) fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    pub(crate) fn toleration(
        key: &str,
        operator: TolerationOperator,
        value: &str,
        effect: Option<TaintEffect>,
    ) -> Toleration {
        Toleration {
            key: key.into(),
            operator,
            value: value.into(),
            effect,
        }
    }
}
