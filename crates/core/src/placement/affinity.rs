//! `nodeSelector` and required node affinity, and reading them from a pod spec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as api;

use super::{NodeOperator, NodeRequirement, NodeSelectorTerm};
use crate::validate::FieldError;

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

const REQUIRED: &str = "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";

fn required_of(affinity: Option<&api::Affinity>) -> Option<&api::NodeSelector> {
    affinity
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
}

/// The required node affinity of a pod spec, validated (fields relative to the spec). A
/// required affinity with no terms matches no node, as in kube-scheduler (the API server
/// rejects it).
pub fn required_affinity(
    affinity: Option<&api::Affinity>,
) -> Result<Vec<NodeSelectorTerm>, FieldError> {
    let Some(required) = required_of(affinity) else {
        return Ok(Vec::new());
    };
    if required.node_selector_terms.is_empty() {
        return Ok(vec![NodeSelectorTerm::default()]);
    }
    required
        .node_selector_terms
        .iter()
        .enumerate()
        .map(|(i, term)| node_selector_term(term, &format!("{REQUIRED}.nodeSelectorTerms[{i}]")))
        .collect()
}

/// The required node affinity as kube-scheduler reads it: a term that does not parse
/// matches no node (the other terms still may).
pub fn effective_required_affinity(affinity: Option<&api::Affinity>) -> Vec<NodeSelectorTerm> {
    let Some(required) = required_of(affinity) else {
        return Vec::new();
    };
    if required.node_selector_terms.is_empty() {
        return vec![NodeSelectorTerm::default()];
    }
    required
        .node_selector_terms
        .iter()
        .map(|term| node_selector_term(term, "").unwrap_or_default())
        .collect()
}

fn node_selector_term(
    term: &api::NodeSelectorTerm,
    field: &str,
) -> Result<NodeSelectorTerm, FieldError> {
    let requirements = |list: &Option<Vec<api::NodeSelectorRequirement>>,
                        what: &str|
     -> Result<Vec<NodeRequirement>, FieldError> {
        let mut out = Vec::new();
        for (j, r) in list.iter().flatten().enumerate() {
            let at = format!("{field}.{what}[{j}]");
            let operator = NodeOperator::parse(&r.operator).ok_or_else(|| {
                FieldError::new(
                    format!("{at}.operator"),
                    format!(
                        "unknown operator {:?} (expected In, NotIn, Exists, DoesNotExist, Gt, Lt)",
                        r.operator
                    ),
                )
            })?;
            let values = r.values.clone().unwrap_or_default();
            let problem = match operator {
                NodeOperator::In | NodeOperator::NotIn if values.is_empty() => {
                    Some("needs at least one value")
                }
                NodeOperator::Exists | NodeOperator::DoesNotExist if !values.is_empty() => {
                    Some("takes no values")
                }
                NodeOperator::Gt | NodeOperator::Lt
                    if values.len() != 1 || values[0].parse::<i64>().is_err() =>
                {
                    Some("needs exactly one integer value")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(FieldError::new(
                    format!("{at}.values"),
                    format!("operator {} {problem}", r.operator),
                ));
            }
            if what == "matchFields" && r.key != "metadata.name" {
                return Err(FieldError::new(
                    format!("{at}.key"),
                    format!(
                        "{:?} is not a supported field (expected metadata.name)",
                        r.key
                    ),
                ));
            }
            out.push(NodeRequirement {
                key: r.key.clone(),
                operator,
                values,
            });
        }
        Ok(out)
    };
    Ok(NodeSelectorTerm {
        match_expressions: requirements(&term.match_expressions, "matchExpressions")?,
        match_fields: requirements(&term.match_fields, "matchFields")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn affinity(terms: serde_json::Value) -> api::Affinity {
        let value = serde_json::json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}});
        serde_json::from_value(value).unwrap_or_default()
    }

    /// A required affinity with no terms: the planner read it as no requirement, the
    /// embedded cluster's scheduler as matching no node. kube-scheduler matches no node.
    #[test]
    fn required_affinity_without_terms_matches_no_node() {
        let none = affinity(serde_json::json!([]));
        let labels = BTreeMap::new();
        for terms in [
            required_affinity(Some(&none)).unwrap_or_default(),
            effective_required_affinity(Some(&none)),
        ] {
            assert!(!affinity_matches(&terms, "n1", &labels));
        }
        assert_eq!(required_affinity(None), Ok(vec![]));
    }

    /// Terms the API server would reject: the planner refuses them, naming the field; the
    /// embedded cluster used to evaluate them anyway (`NotIn` without values matched
    /// every node, `Gt` read its first value, `matchFields` on another field read it as
    /// absent). kube-scheduler never matches a term that does not parse, and other terms
    /// still can.
    #[test]
    fn terms_that_do_not_parse_match_no_node() {
        let labels: BTreeMap<String, String> =
            BTreeMap::from([("zone".to_string(), "edge".to_string())]);
        let bad = [
            serde_json::json!({"matchExpressions": [{"key": "zone", "operator": "NotIn"}]}),
            serde_json::json!({"matchExpressions": [{"key": "n", "operator": "Gt", "values": ["1", "2"]}]}),
            serde_json::json!({"matchExpressions": [{"key": "zone", "operator": "Exists", "values": ["edge"]}]}),
            serde_json::json!({"matchFields": [{"key": "metadata.uid", "operator": "DoesNotExist"}]}),
            serde_json::json!({"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["edge"]}]}),
        ];
        let good = serde_json::json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["edge"]}]});
        for term in bad {
            let alone = affinity(serde_json::json!([term.clone()]));
            assert!(required_affinity(Some(&alone)).is_err(), "{term}");
            let terms = effective_required_affinity(Some(&alone));
            assert!(!affinity_matches(&terms, "n1", &labels), "{term}");
            let with_good = affinity(serde_json::json!([term.clone(), good.clone()]));
            let terms = effective_required_affinity(Some(&with_good));
            assert!(affinity_matches(&terms, "n1", &labels), "{term}");
        }
        let err = required_affinity(Some(&affinity(serde_json::json!([
            good,
            {"matchExpressions": [{"key": "zone", "operator": "In"}]}
        ]))))
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1].matchExpressions[0].values: operator In needs at least one value"
            )
        );
    }
}
