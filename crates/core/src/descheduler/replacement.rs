//! Which pod to move: where the planner would put a pod's replacement, and whether that
//! restores its bindings.

use edgeplane_api::Compliance;

use super::action::{Predicted, Prediction};
use crate::evaluate::ClusterView;
use crate::planner::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, PendingPod, PlacedPod, PlanBinding, PlanInput,
    PlanNode, PlanOptions,
};

/// The label kubelets put on their Node with the host's name (the gate-mode scheduler pins
/// a pod with it when the pod has its own required affinity terms).
pub(super) const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// A running pod's required node affinity without the pin the planning scheduler wrote
/// (`metadata.name In [node]`, or `kubernetes.io/hostname In [host]` ANDed into each term):
/// its replacement comes from the workload's template, which has no pin. Terms left empty
/// are dropped (the pod had no affinity of its own).
pub fn unpinned(terms: &[NodeSelectorTerm]) -> Vec<NodeSelectorTerm> {
    let pin = |r: &NodeRequirement, key: &str| {
        r.key == key && r.operator == NodeOperator::In && r.values.len() == 1
    };
    terms
        .iter()
        .map(|t| NodeSelectorTerm {
            match_expressions: t
                .match_expressions
                .iter()
                .filter(|r| !pin(r, HOSTNAME_LABEL))
                .cloned()
                .collect(),
            match_fields: t
                .match_fields
                .iter()
                .filter(|r| !pin(r, "metadata.name"))
                .cloned()
                .collect(),
        })
        .filter(|t| !t.match_expressions.is_empty() || !t.match_fields.is_empty())
        .collect()
}

/// What the planner is asked about one pod: the cluster with every other pod where it is.
#[derive(Clone, Debug)]
pub struct ReplacementQuestion<'a> {
    pub view: &'a ClusterView,
    pub nodes: Vec<PlanNode>,
    /// Every running pod but the one asked about.
    pub placed: Vec<PlacedPod>,
    /// The pod as its replacement would be (see [`unpinned`]).
    pub pod: PendingPod,
    /// Where it runs now.
    pub current_node: String,
    /// Every binding the pod is a target of (the one in Violation among them).
    pub bindings: Vec<PlanBinding>,
    /// The binding in Violation.
    pub binding: String,
}

/// Where the planner would put the replacement of a pod, and whether every binding of the
/// pod would then be at Limit or better. Rules the planner cannot judge (Error: an
/// external provider, a missing policy) are left out of the verdict.
pub fn predict_replacement(question: ReplacementQuestion<'_>, options: &PlanOptions) -> Predicted {
    let key = question.pod.key.clone();
    let input = PlanInput {
        view: question.view,
        nodes: question.nodes,
        placed: question.placed,
        pending: vec![question.pod],
        bindings: question.bindings,
    };
    let plan = crate::planner::plan(&input, options);
    let Some(node) = plan.node_of(&key).map(str::to_string) else {
        let reason = plan
            .unplaced
            .iter()
            .find(|u| u.pod == key)
            .map(|u| u.reason.clone())
            .unwrap_or_else(|| "the planner does not place it".into());
        return Predicted::Fails(format!("its replacement could not be placed: {reason}"));
    };
    if node == question.current_node {
        return Predicted::Fails(format!(
            "the planner would put its replacement back on {node}"
        ));
    }
    for b in &plan.bindings {
        for r in &b.rules {
            if matches!(r.compliance, Compliance::Violation | Compliance::Pending) {
                return Predicted::Fails(format!(
                    "on {node}, binding {} rule {} would be {}{}",
                    b.name,
                    r.rule,
                    r.compliance,
                    r.reason
                        .as_ref()
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    let graph = question.view.graph();
    let site = graph
        .node_id(&node)
        .map(|id| graph.site_name(graph.site_of(id)).to_string())
        .filter(|s| *s != node);
    let rules: Vec<String> = plan
        .bindings
        .iter()
        .filter(|b| b.name == question.binding)
        .flat_map(|b| &b.rules)
        .filter(|r| r.compliance != Compliance::Error)
        .map(|r| match &r.value {
            Some(v) => format!("{} {v} ({})", r.rule, r.compliance),
            None => format!("{} ({})", r.rule, r.compliance),
        })
        .collect();
    let note = rules.join(", ");
    Predicted::Restores(Prediction {
        node,
        site,
        limits: plan.summary.rules_limit,
        cost: plan.summary.cost,
        note,
    })
}
