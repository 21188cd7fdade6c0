//! Why a pod runs (or would run) where it does: every node of the cluster with the verdict
//! the planner's rules give it for this pod, the value of each rule of the pod's bindings
//! there, and why the chosen node won (`edgeplane explain pod/NAME`).
//!
//! The pod is judged alone, every other pod where it runs or where the plan puts it: a
//! node is rejected by the same placement rules and resource accounting as the planner's
//! ([`crate::placement`], [`crate::planner::feasibility`]), by a rule between pods the
//! planner would see broken there (required pod affinity or anti-affinity, a
//! `DoNotSchedule` topology spread constraint, a host port), and by a rule in Violation; the
//! others are ranked by the planner's objective for one pod (fewest rules in Limit, then
//! least total normalized cost). The planner settles whole groups at once, so the node it
//! chose can rank below another for this pod alone (that node's room went to a peer, or a
//! peer's rules were better served); the explanation then says so.

use std::collections::BTreeMap;

use edgeplane_api::{Compliance, TargetKind, TargetRef};
use serde::Serialize;

use crate::evaluate::{ClusterView, Score};
use crate::network::Location;
use crate::placement::Misfit;
use crate::planner::feasibility::{fits, static_misfit};
use crate::planner::{PendingPod, PlanInput, PlanNode, PodKey, Resources, RuleProvider};
use crate::quantity::format_amount;

/// The verdicts on every node for one pod.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub pod: String,
    /// The node the pod runs on or is planned on; `None` when it could not be placed.
    pub chosen: Option<String>,
    /// Every node, feasible ones first in rank order, then the rejected ones by name.
    pub nodes: Vec<NodeVerdict>,
    /// Why the chosen node won, or why none could be chosen.
    pub summary: String,
}

/// One node as a home for the pod.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVerdict {
    pub node: String,
    pub site: String,
    /// Why the pod cannot run there; `None` when it can.
    pub rejected: Option<String>,
    /// Rank among the feasible nodes (1 is best for this pod alone).
    pub rank: Option<usize>,
    /// Rules of the pod's bindings in Limit with the pod there.
    pub limit: usize,
    /// Total normalized cost of those rules (0 at the request, 1 at the limit).
    pub cost: f64,
    pub rules: Vec<RuleAtNode>,
}

/// One rule of one of the pod's bindings, with the pod on the node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleAtNode {
    pub binding: String,
    pub policy: String,
    pub rule: String,
    pub value: Option<String>,
    pub compliance: Compliance,
    pub reason: Option<String>,
    /// The pod's share of the rule's normalized cost there (0 unless Compliant or Limit).
    pub cost: f64,
}

/// Explains where `pod` (one of `input.pending`) goes. `others` are the nodes of the other
/// pending pods (from a plan; pods absent from it are unplaced); `chosen` is the pod's node
/// in that plan, or the node it runs on.
pub fn explain(
    input: &PlanInput<'_>,
    others: &BTreeMap<PodKey, String>,
    pod: &PendingPod,
    chosen: Option<&str>,
) -> Explanation {
    let mut view: ClusterView = input.view.clone();
    for (key, node) in others {
        view.place(&key.namespace, &key.name, Some(node));
    }
    let used = used_by_node(input, others, &pod.key);
    // Rules between pods (affinity, anti-affinity, spread, host ports), as the planner
    // judges them with the other pods where they run or are planned.
    let between = input
        .pending
        .iter()
        .position(|p| p.key == pod.key)
        .map(|at| crate::planner::pod_rule_verdicts(input, others, at))
        .unwrap_or_default();
    let mut nodes: Vec<NodeVerdict> = input
        .nodes
        .iter()
        .map(|node| {
            view.place(&pod.key.namespace, &pod.key.name, Some(&node.name));
            let mut verdict = verdict(input, &view, node, pod, used.get(node.name.as_str()));
            if verdict.rejected.is_none()
                && let Some(why) = between.get(&node.name)
            {
                verdict.rejected = Some(format!("{why} would be broken"));
            }
            verdict
        })
        .collect();
    rank(&mut nodes);
    let summary = summarize(&nodes, chosen);
    Explanation {
        pod: pod.key.to_string(),
        chosen: chosen.map(str::to_string),
        nodes,
        summary,
    }
}

/// What the pods already running and the other planned pods request on each node.
fn used_by_node<'a>(
    input: &'a PlanInput<'_>,
    others: &'a BTreeMap<PodKey, String>,
    pod: &PodKey,
) -> BTreeMap<&'a str, Resources> {
    let mut used: BTreeMap<&str, Resources> = BTreeMap::new();
    for placed in input.placed.iter().filter(|p| &p.key != pod) {
        add(
            used.entry(placed.node.as_str()).or_default(),
            &placed.requests,
        );
    }
    for pending in input.pending.iter().filter(|p| &p.key != pod) {
        if let Some(node) = others.get(&pending.key) {
            add(used.entry(node.as_str()).or_default(), &pending.requests);
        }
    }
    used
}

fn add(total: &mut Resources, requests: &Resources) {
    total.cpu_millis += requests.cpu_millis;
    total.memory_bytes += requests.memory_bytes;
    total.pods += requests.pods;
    for (k, v) in &requests.extended {
        *total.extended.entry(k.clone()).or_default() += v;
    }
}

fn verdict(
    input: &PlanInput<'_>,
    view: &ClusterView,
    node: &PlanNode,
    pod: &PendingPod,
    used: Option<&Resources>,
) -> NodeVerdict {
    let site = view
        .graph()
        .node_id(&node.name)
        .map(|id| view.graph().site_name(view.graph().site_of(id)).to_string())
        .unwrap_or_default();
    let mut verdict = NodeVerdict {
        node: node.name.clone(),
        site,
        rejected: None,
        rank: None,
        limit: 0,
        cost: 0.0,
        rules: Vec::new(),
    };
    if let Some(misfit) = static_misfit(node, pod) {
        verdict.rejected = Some(misfit_reason(&misfit));
        return verdict;
    }
    let free = free(&node.allocatable, used);
    if !fits(&pod.requests, &free) {
        verdict.rejected = Some(room_reason(&pod.requests, &free));
        return verdict;
    }
    for binding in input.bindings.iter().filter(|b| targets_pod(b, &pod.key)) {
        for rule in &binding.rules {
            let (compliance, value, reason, cost) = match &rule.provider {
                RuleProvider::Builtin(compiled) => {
                    let outcome = compiled.evaluate(view, &binding.targets);
                    // The pod's own share: its pairs with the peers (or its node), as the
                    // planner scores a node for it.
                    let peers: Vec<Location> = binding
                        .targets
                        .values()
                        .filter(|t| !is_pod(t, &pod.key))
                        .filter_map(|t| view.locate(t).ok())
                        .collect();
                    let cost = match view.graph().node_id(&node.name) {
                        Some(id) => match compiled.score(view, id, &peers) {
                            Score::Feasible(cost) => cost,
                            Score::Infeasible => 0.0,
                        },
                        None => 0.0,
                    };
                    (outcome.compliance, outcome.value, outcome.reason, cost)
                }
                RuleProvider::External(external) => {
                    match external.costs.get(&pod.key).and_then(|c| c.get(&node.name)) {
                        Some(cost) if *cost >= 0.0 => (
                            if *cost > 0.0 {
                                Compliance::Limit
                            } else {
                                Compliance::Compliant
                            },
                            None,
                            Some(format!("the provider's normalized cost here is {cost:.2}")),
                            *cost,
                        ),
                        _ => (
                            Compliance::Violation,
                            None,
                            Some(
                                external
                                    .error
                                    .clone()
                                    .unwrap_or_else(|| "the provider rules the node out".into()),
                            ),
                            0.0,
                        ),
                    }
                }
                RuleProvider::Broken(why) => (Compliance::Error, None, Some(why.clone()), 0.0),
                // A lane is judged as a whole by the planner, not node by node.
                RuleProvider::Lane(_) => (
                    Compliance::Pending,
                    None,
                    Some(format!(
                        "{} is judged along the whole lane when it is planned",
                        rule.spec.name
                    )),
                    0.0,
                ),
            };
            if compliance == Compliance::Limit {
                verdict.limit += 1;
            }
            verdict.rules.push(RuleAtNode {
                binding: binding.name.clone(),
                policy: rule.policy.clone(),
                rule: rule.spec.name.clone(),
                value,
                compliance,
                reason,
                cost: if matches!(compliance, Compliance::Limit | Compliance::Compliant) {
                    cost
                } else {
                    0.0
                },
            });
        }
    }
    // Input order of bindings differs between manifests and a live cluster's lists.
    verdict
        .rules
        .sort_by(|a, b| (&a.binding, &a.policy, &a.rule).cmp(&(&b.binding, &b.policy, &b.rule)));
    // Summed in one order whatever the input's, so that equal inputs print equal costs.
    verdict.cost = verdict.rules.iter().map(|r| r.cost).sum();
    verdict.rejected = verdict
        .rules
        .iter()
        .find(|r| r.compliance == Compliance::Violation)
        .map(|r| {
            let why = r.reason.clone();
            format!(
                "binding {}: {}",
                r.binding,
                why.unwrap_or_else(|| format!("{} in Violation", r.rule))
            )
        });
    verdict
}

fn targets_pod(binding: &crate::planner::PlanBinding, pod: &PodKey) -> bool {
    binding.targets.values().any(|t| is_pod(t, pod))
}

fn is_pod(target: &TargetRef, pod: &PodKey) -> bool {
    target.kind == TargetKind::Pod
        && target.name == pod.name
        && target.namespace.as_deref().unwrap_or("default") == pod.namespace
}

fn free(allocatable: &Resources, used: Option<&Resources>) -> Resources {
    let Some(used) = used else {
        return allocatable.clone();
    };
    Resources {
        cpu_millis: allocatable.cpu_millis - used.cpu_millis,
        memory_bytes: allocatable.memory_bytes - used.memory_bytes,
        pods: allocatable.pods - used.pods,
        extended: allocatable
            .extended
            .iter()
            .map(|(k, v)| (k.clone(), v - used.extended.get(k).copied().unwrap_or(0)))
            .collect(),
    }
}

fn misfit_reason(misfit: &Misfit) -> String {
    match misfit {
        Misfit::Unschedulable => "the node is cordoned".into(),
        Misfit::NodeSelector => "the pod's nodeSelector does not match the node".into(),
        Misfit::Affinity => "the pod's required node affinity does not match the node".into(),
        Misfit::Taint(t) => format!("the pod does not tolerate the node's taint {t}"),
    }
}

/// The first resources the pod does not fit in: `insufficient cpu (requests 2, 500m free)`.
fn room_reason(requests: &Resources, free: &Resources) -> String {
    let amount = |resource: &str, units: i64, milli_per_unit: i128| {
        format_amount(resource, i128::from(units.max(0)) * milli_per_unit)
    };
    let mut short = Vec::new();
    // CPU is held in millicores, memory in bytes.
    for (resource, wanted, have, per_unit) in [
        ("cpu", requests.cpu_millis, free.cpu_millis, 1),
        ("memory", requests.memory_bytes, free.memory_bytes, 1000),
    ] {
        if wanted > have.max(0) {
            short.push(format!(
                "{resource} (requests {}, {} free)",
                amount(resource, wanted, per_unit),
                amount(resource, have, per_unit)
            ));
        }
    }
    if requests.pods > free.pods.max(0) {
        short.push("pods (the node runs its maximum)".to_string());
    }
    for (k, v) in &requests.extended {
        let have = free.extended.get(k).copied().unwrap_or(0).max(0);
        if *v > have {
            short.push(format!("{k} (requests {v}, {have} free)"));
        }
    }
    format!("insufficient {}", short.join(", "))
}

/// Feasible nodes first, by (rules in Limit, cost, name); rejected ones after, by name.
fn rank(nodes: &mut [NodeVerdict]) {
    nodes.sort_by(|a, b| match (&a.rejected, &b.rejected) {
        (None, None) => a
            .limit
            .cmp(&b.limit)
            .then(a.cost.total_cmp(&b.cost))
            .then(a.node.cmp(&b.node)),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(_), Some(_)) => a.node.cmp(&b.node),
    });
    for (i, node) in nodes
        .iter_mut()
        .filter(|n| n.rejected.is_none())
        .enumerate()
    {
        node.rank = Some(i + 1);
    }
}

fn describe(node: &NodeVerdict) -> String {
    format!(
        "{} ({}): {} rule{} in Limit, cost {:.2}",
        node.node,
        node.site,
        node.limit,
        if node.limit == 1 { "" } else { "s" },
        node.cost
    )
}

fn summarize(nodes: &[NodeVerdict], chosen: Option<&str>) -> String {
    let feasible: Vec<&NodeVerdict> = nodes.iter().filter(|n| n.rejected.is_none()).collect();
    let rejected = nodes.len() - feasible.len();
    let Some(chosen) = chosen else {
        return if feasible.is_empty() {
            format!("no node can take the pod: all {rejected} are rejected (reasons below)")
        } else {
            format!(
                "the pod is not placed although {} node{} could take it alone; the plan gave their room to pods that rank higher in the objective (most pods placed first)",
                feasible.len(),
                if feasible.len() == 1 { "" } else { "s" }
            )
        };
    };
    let Some(node) = nodes.iter().find(|n| n.node == chosen) else {
        return format!("{chosen} is not a node of the input");
    };
    if let Some(why) = &node.rejected {
        return format!(
            "{chosen} is chosen but, judged alone with the other pods where they are now, it is rejected: {why}"
        );
    }
    let best = feasible[0];
    let others = feasible.len() - 1;
    if best.node == chosen {
        let runner_up = feasible
            .get(1)
            .map(|n| format!("; the next best is {}", describe(n)))
            .unwrap_or_default();
        format!(
            "{} is the best of {} feasible node{}{runner_up}; {rejected} node{} rejected",
            describe(node),
            others + 1,
            if others == 0 { "" } else { "s" },
            if rejected == 1 { " is" } else { "s are" }
        )
    } else {
        format!(
            "{} ranks {} for this pod alone; {} is better for it alone, but the planner settles the pod's group as a whole (a node better for one pod can cost a peer its room or its rules)",
            describe(node),
            node.rank.unwrap_or_default(),
            describe(best)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::instances::{self, Instance};
    use crate::planner::{PlanBinding, PlanRule, convert};
    use edgeplane_api::{ConstraintPolicyRule, NetworkTopology};
    use k8s_openapi::api::core::v1::{Node, PodSpec};
    use serde_json::json;

    const TOPOLOGY: &str = "apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: edge-1}, {name: metro}, {name: stadium, transit: false}]
  links:
  - {from: stadium, to: edge-1, latency: 1ms}
  - {from: edge-1, to: metro, latency: 3ms}
";

    fn node(name: &str, zone: &str, cpu: &str, spec: serde_json::Value) -> PlanNode {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"}},
        }))
        .expect("a fixed node decodes");
        convert::plan_node(&node).expect("a fixed node converts")
    }

    fn pod(name: &str, cpu: &str) -> PendingPod {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]
        }))
        .expect("a fixed pod decodes");
        convert::pending_pod(PodKey::new("ar", name), BTreeMap::new(), &spec)
            .expect("a fixed pod converts")
    }

    /// render must be within 2ms of the stadium (limit 5ms); e1 is at the stadium's edge,
    /// e2 there too but cordoned, m1 in the metro (4ms), m2 in the metro but tainted.
    fn instance() -> Instance {
        let limits = crate::manifests::YamlLimits::default();
        let topology =
            crate::manifests::yaml_document(TOPOLOGY, &limits).expect("the topology parses");
        let topology: NetworkTopology =
            serde_json::from_value(topology).expect("the topology decodes");
        let nodes = vec![
            node("e1", "edge-1", "2", json!({})),
            node("e2", "edge-1", "2", json!({"unschedulable": true})),
            node("m1", "metro", "8", json!({})),
            node(
                "m2",
                "metro",
                "8",
                json!({"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}),
            ),
        ];
        let binding = PlanBinding {
            name: "render-near-fans".into(),
            offer: "ar/near-fans".into(),
            targets: BTreeMap::from([
                ("renderer".to_string(), TargetRef::pod("ar", "render")),
                ("users".to_string(), TargetRef::site("stadium")),
            ]),
            rules: vec![PlanRule::builtin(
                "near-fans",
                &ConstraintPolicyRule {
                    name: "latency".into(),
                    request: "2ms".into(),
                    limit: Some("5ms".into()),
                },
            )],
        };
        instances::build(
            topology,
            nodes,
            Vec::new(),
            vec![pod("render", "1"), pod("batch", "2")],
            vec![binding],
        )
    }

    fn verdicts(e: &Explanation) -> Vec<(String, Option<usize>, Option<String>)> {
        e.nodes
            .iter()
            .map(|n| (n.node.clone(), n.rank, n.rejected.clone()))
            .collect()
    }

    #[test]
    fn every_node_gets_a_verdict_and_the_best_one_wins() {
        let inst = instance();
        let input = inst.input();
        let e = explain(&input, &BTreeMap::new(), &inst.pending[0], Some("e1"));
        assert_eq!(
            verdicts(&e),
            vec![
                ("e1".into(), Some(1), None),
                ("m1".into(), Some(2), None),
                ("e2".into(), None, Some("the node is cordoned".into())),
                (
                    "m2".into(),
                    None,
                    Some(
                        "the pod does not tolerate the node's taint dedicated=db:NoSchedule".into()
                    )
                ),
            ]
        );
        let m1 = &e.nodes[1];
        assert_eq!((m1.limit, m1.rules.len()), (1, 1));
        assert_eq!(m1.rules[0].value.as_deref(), Some("4ms"));
        assert_eq!(m1.rules[0].compliance, Compliance::Limit);
        assert!((m1.cost - 2.0 / 3.0).abs() < 1e-9, "{}", m1.cost);
        assert_eq!(e.nodes[0].rules[0].compliance, Compliance::Compliant);
        assert_eq!(
            e.summary,
            "e1 (edge-1): 0 rules in Limit, cost 0.00 is the best of 2 feasible nodes; the next best is m1 (metro): 1 rule in Limit, cost 0.67; 2 nodes are rejected"
        );
    }

    fn rejected<'a>(e: &'a Explanation, node: &str) -> Option<&'a str> {
        e.nodes
            .iter()
            .find(|n| n.node == node)
            .and_then(|n| n.rejected.as_deref())
    }

    #[test]
    fn room_taken_by_other_planned_pods_rejects_a_node() {
        let inst = instance();
        let input = inst.input();
        let others = BTreeMap::from([(PodKey::new("ar", "batch"), "e1".to_string())]);
        let e = explain(&input, &others, &inst.pending[0], Some("m1"));
        assert_eq!(
            rejected(&e, "e1"),
            Some("insufficient cpu (requests 1, 0 free)")
        );
        assert_eq!(e.nodes[0].node, "m1");
        assert!(
            e.summary.starts_with(
                "m1 (metro): 1 rule in Limit, cost 0.67 is the best of 1 feasible node;"
            ),
            "{}",
            e.summary
        );
    }

    /// Two replicas that must not share a zone: with one planned in edge-1, the other is
    /// rejected there by the rule between them.
    #[test]
    fn rules_between_pods_reject_a_node() {
        let replica = |name: &str| {
            let spec: PodSpec = serde_json::from_value(json!({
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "upf"}},
                    "topologyKey": "topology.kubernetes.io/zone"
                }]}}
            }))
            .expect("a fixed pod decodes");
            let labels = BTreeMap::from([("app".to_string(), "upf".to_string())]);
            convert::pending_pod(PodKey::new("ar", name), labels, &spec)
                .expect("a fixed pod converts")
        };
        let mut inst = instance();
        inst.pending = vec![replica("upf-0"), replica("upf-1")];
        inst.bindings.clear();
        let input = inst.input();
        let others = BTreeMap::from([(PodKey::new("ar", "upf-0"), "e1".to_string())]);
        let e = explain(&input, &others, &inst.pending[1], Some("m1"));
        assert_eq!(
            rejected(&e, "e1"),
            Some(
                "required pod anti-affinity (topologyKey topology.kubernetes.io/zone) would be broken"
            )
        );
        assert_eq!(e.nodes[0].node, "m1");
        assert_eq!(e.nodes[0].rank, Some(1));
    }

    #[test]
    fn a_chosen_node_worse_for_the_pod_alone_is_said_so() {
        let inst = instance();
        let input = inst.input();
        let e = explain(&input, &BTreeMap::new(), &inst.pending[0], Some("m1"));
        assert!(
            e.summary.starts_with("m1 (metro): 1 rule in Limit, cost 0.67 ranks 2 for this pod alone; e1 (edge-1): 0 rules in Limit, cost 0.00 is better"),
            "{}",
            e.summary
        );
        let none = explain(&input, &BTreeMap::new(), &inst.pending[0], None);
        assert!(
            none.summary
                .starts_with("the pod is not placed although 2 nodes could take it alone"),
            "{}",
            none.summary
        );
    }
}
