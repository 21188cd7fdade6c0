//! Whether a pod may run on a node at all, as kube-scheduler decides it: taints against
//! tolerations, `nodeSelector`, required node affinity, schedulability, and resources.

use std::collections::BTreeMap;

use super::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, PendingPod, PlanNode, Resources, Taint,
    TaintEffect, Toleration, TolerationOperator,
};

/// Whether a toleration tolerates a taint: keys equal (an empty key with `Exists`
/// matches every key), values equal for `Equal`, effects equal or the toleration's empty.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration.effect.is_some_and(|e| e != taint.effect) {
        return false;
    }
    match toleration.operator {
        TolerationOperator::Exists => toleration.key.is_empty() || toleration.key == taint.key,
        TolerationOperator::Equal => toleration.key == taint.key && toleration.value == taint.value,
    }
}

/// The first taint (NoSchedule or NoExecute) that no toleration tolerates.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        taint.effect != TaintEffect::PreferNoSchedule
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// Whether every `nodeSelector` label is on the node with that value.
pub fn matches_node_selector(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether one requirement holds for a value (`None`: the label is absent). `Gt` and `Lt`
/// compare integers; a value or a requirement that is not an integer does not match.
pub fn requirement_holds(requirement: &NodeRequirement, value: Option<&str>) -> bool {
    let values = &requirement.values;
    match requirement.operator {
        NodeOperator::In => value.is_some_and(|v| values.iter().any(|x| x == v)),
        NodeOperator::NotIn => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        NodeOperator::Exists => value.is_some(),
        NodeOperator::DoesNotExist => value.is_none(),
        NodeOperator::Gt | NodeOperator::Lt => {
            let (Some(v), Some(bound)) = (value, values.first()) else {
                return false;
            };
            match (v.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(v), Ok(bound)) if requirement.operator == NodeOperator::Gt => v > bound,
                (Ok(v), Ok(bound)) => v < bound,
                _ => false,
            }
        }
    }
}

/// Whether a node selector term matches: every label expression and every field
/// (`metadata.name` is the only field Kubernetes supports) holds. A term with no
/// requirement matches nothing, as in Kubernetes.
pub fn term_matches(
    term: &NodeSelectorTerm,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    term.match_expressions
        .iter()
        .all(|r| requirement_holds(r, labels.get(&r.key).map(String::as_str)))
        && term.match_fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(name);
            requirement_holds(r, value)
        })
}

/// Whether the required node affinity (ORed terms; none: no requirement) matches.
pub fn affinity_matches(
    terms: &[NodeSelectorTerm],
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    terms.is_empty() || terms.iter().any(|t| term_matches(t, name, labels))
}

/// Why a node cannot take a pod regardless of what else runs there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misfit {
    Unschedulable,
    NodeSelector,
    Affinity,
    Taint(Taint),
}

/// The names of the nodes that may take `pod` (resources aside), sorted: the candidate
/// nodes of a network controller's or an external provider's question.
pub fn eligible_node_names(nodes: &[PlanNode], pod: &PendingPod) -> Vec<String> {
    let mut names: Vec<String> = nodes
        .iter()
        .filter(|n| static_misfit(n, pod).is_none())
        .map(|n| n.name.clone())
        .collect();
    names.sort();
    names
}

/// The first static reason a node cannot take a pod, or `None` when it can (resources
/// aside).
pub fn static_misfit(node: &PlanNode, pod: &PendingPod) -> Option<Misfit> {
    if !node.schedulable {
        return Some(Misfit::Unschedulable);
    }
    if !matches_node_selector(&pod.node_selector, &node.labels) {
        return Some(Misfit::NodeSelector);
    }
    if !affinity_matches(&pod.affinity, &node.name, &node.labels) {
        return Some(Misfit::Affinity);
    }
    untolerated(&node.taints, &pod.tolerations).map(|t| Misfit::Taint(t.clone()))
}

/// Whether `requests` fit in `free`, resource by resource.
pub fn fits(requests: &Resources, free: &Resources) -> bool {
    requests.cpu_millis <= free.cpu_millis
        && requests.memory_bytes <= free.memory_bytes
        && requests.pods <= free.pods
        && requests
            .extended
            .iter()
            .all(|(k, v)| *v <= 0 || free.extended.get(k).is_some_and(|f| v <= f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    fn toleration(
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

    #[test]
    fn taints_and_tolerations_table() {
        use TaintEffect::*;
        use TolerationOperator::*;
        let gpu = taint("dedicated", "gpu", NoSchedule);
        let cases = [
            (
                toleration("dedicated", Equal, "gpu", Some(NoSchedule)),
                true,
            ),
            (toleration("dedicated", Equal, "gpu", None), true),
            (toleration("dedicated", Equal, "cpu", None), false),
            (
                toleration("dedicated", Equal, "gpu", Some(NoExecute)),
                false,
            ),
            (toleration("dedicated", Exists, "", None), true),
            (toleration("other", Exists, "", None), false),
            (toleration("", Exists, "", None), true),
            (toleration("", Exists, "", Some(NoExecute)), false),
            (toleration("", Equal, "", None), false),
        ];
        for (i, (t, expected)) in cases.iter().enumerate() {
            assert_eq!(tolerates(t, &gpu), *expected, "case {i}");
        }
        // PreferNoSchedule never keeps a pod off; NoExecute does.
        let soft = [taint("a", "", PreferNoSchedule)];
        assert_eq!(untolerated(&soft, &[]), None);
        let hard = [taint("a", "", PreferNoSchedule), taint("b", "x", NoExecute)];
        assert_eq!(
            untolerated(&hard, &[]).map(|t| t.to_string()),
            Some("b=x:NoExecute".into())
        );
        assert_eq!(
            untolerated(&hard, &[toleration("b", Exists, "", None)]),
            None
        );
    }

    fn req(key: &str, operator: NodeOperator, values: &[&str]) -> NodeRequirement {
        NodeRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn affinity_operators() {
        use NodeOperator::*;
        let labels: BTreeMap<String, String> = [("zone", "edge-1"), ("cores", "16")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cases = [
            (req("zone", In, &["edge-1", "edge-2"]), true),
            (req("zone", In, &["metro"]), false),
            (req("zone", NotIn, &["metro"]), true),
            (req("tier", NotIn, &["metro"]), true),
            (req("zone", Exists, &[]), true),
            (req("tier", Exists, &[]), false),
            (req("tier", DoesNotExist, &[]), true),
            (req("cores", Gt, &["8"]), true),
            (req("cores", Gt, &["16"]), false),
            (req("cores", Lt, &["32"]), true),
            (req("zone", Gt, &["1"]), false),
            (req("tier", Lt, &["1"]), false),
        ];
        for (i, (r, expected)) in cases.iter().enumerate() {
            let term = NodeSelectorTerm {
                match_expressions: vec![r.clone()],
                match_fields: vec![],
            };
            assert_eq!(term_matches(&term, "n1", &labels), *expected, "case {i}");
        }
        let by_name = NodeSelectorTerm {
            match_expressions: vec![],
            match_fields: vec![req("metadata.name", In, &["n1", "n2"])],
        };
        assert!(term_matches(&by_name, "n1", &labels));
        assert!(!term_matches(&by_name, "n3", &labels));
        // Terms are ORed; expressions of one term ANDed; an empty term matches nothing.
        let metro = NodeSelectorTerm {
            match_expressions: vec![req("zone", In, &["metro"])],
            match_fields: vec![],
        };
        assert!(affinity_matches(
            &[metro.clone(), by_name.clone()],
            "n1",
            &labels
        ));
        assert!(!affinity_matches(&[metro], "n1", &labels));
        assert!(affinity_matches(&[], "n1", &labels));
        assert!(!affinity_matches(
            &[NodeSelectorTerm::default()],
            "n1",
            &labels
        ));
        let both = NodeSelectorTerm {
            match_expressions: vec![req("zone", In, &["edge-1"])],
            match_fields: vec![req("metadata.name", In, &["n2"])],
        };
        assert!(!term_matches(&both, "n1", &labels));
    }

    #[test]
    fn resources_fit_dimension_by_dimension() {
        let mut free = Resources::pod(4000, 8 << 30);
        free.pods = 2;
        free.extended.insert("nvidia.com/gpu".into(), 1);
        assert!(fits(&Resources::pod(4000, 8 << 30), &free));
        assert!(!fits(&Resources::pod(4001, 1), &free));
        assert!(!fits(&Resources::pod(1, (8 << 30) + 1), &free));
        let mut gpu = Resources::pod(1, 1);
        gpu.extended.insert("nvidia.com/gpu".into(), 1);
        assert!(fits(&gpu, &free));
        gpu.extended.insert("nvidia.com/gpu".into(), 2);
        assert!(!fits(&gpu, &free));
        let mut fpga = Resources::pod(1, 1);
        fpga.extended.insert("example.com/fpga".into(), 1);
        assert!(!fits(&fpga, &free));
        free.pods = 0;
        assert!(!fits(&Resources::pod(0, 0), &free));
    }

    #[test]
    fn static_misfits_in_order() {
        let node = PlanNode {
            name: "n1".into(),
            allocatable: Resources::pod(1000, 1000),
            labels: BTreeMap::from([("zone".to_string(), "edge-1".to_string())]),
            taints: vec![taint("dedicated", "gpu", TaintEffect::NoSchedule)],
            schedulable: true,
        };
        let mut pod = PendingPod {
            key: super::super::PodKey::new("default", "p"),
            requests: Resources::pod(1, 1),
            node_selector: BTreeMap::new(),
            affinity: vec![],
            tolerations: vec![],
            labels: BTreeMap::new(),
        };
        assert!(matches!(static_misfit(&node, &pod), Some(Misfit::Taint(_))));
        pod.tolerations.push(toleration(
            "dedicated",
            TolerationOperator::Exists,
            "",
            None,
        ));
        assert_eq!(static_misfit(&node, &pod), None);
        pod.node_selector.insert("zone".into(), "metro".into());
        assert_eq!(static_misfit(&node, &pod), Some(Misfit::NodeSelector));
        let mut cordoned = node.clone();
        cordoned.schedulable = false;
        assert_eq!(static_misfit(&cordoned, &pod), Some(Misfit::Unschedulable));
    }
}
