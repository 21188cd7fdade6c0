//! Label selectors: the string form (`app=web,env in (a,b),!legacy`) never panics, and
//! what it accepts means the same as the `metav1.LabelSelector` with the same
//! requirements, which the API form must then accept too. Field selectors never panic.

use std::collections::BTreeMap;

use edgeplane_cluster::selector::FieldSelector;
use edgeplane_core::selector::{Requirement, Selector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = FieldSelector::parse(text);
    let Ok(parsed) = Selector::parse(text) else {
        return;
    };
    // Gt and Lt exist only in the string form.
    if parsed
        .requirements()
        .iter()
        .any(|r| matches!(r, Requirement::GreaterThan(..) | Requirement::LessThan(..)))
    {
        for labels in label_sets(&parsed, data) {
            let _ = parsed.matches(&labels);
        }
        return;
    }
    let api = LabelSelector {
        match_labels: None,
        match_expressions: Some(parsed.requirements().iter().map(expression).collect()),
    };
    let compiled = Selector::compile(&api).unwrap_or_else(|e| {
        panic!("{text:?} parses as a string but its LabelSelector is refused: {e}")
    });
    for labels in label_sets(&parsed, data) {
        assert_eq!(
            parsed.matches(&labels),
            compiled.matches(&labels),
            "{text:?} and its LabelSelector disagree on {labels:?}"
        );
    }
}

fn expression(requirement: &Requirement) -> LabelSelectorRequirement {
    let (key, operator, values) = match requirement {
        Requirement::Equals(k, v) => (k, "In", Some(vec![v.clone()])),
        Requirement::NotEquals(k, v) => (k, "NotIn", Some(vec![v.clone()])),
        Requirement::In(k, vs) => (k, "In", Some(vs.clone())),
        Requirement::NotIn(k, vs) => (k, "NotIn", Some(vs.clone())),
        Requirement::Exists(k) => (k, "Exists", None),
        Requirement::DoesNotExist(k) => (k, "DoesNotExist", None),
        Requirement::GreaterThan(..) | Requirement::LessThan(..) => {
            unreachable!("filtered out by the caller")
        }
    };
    LabelSelectorRequirement {
        key: key.clone(),
        operator: operator.to_string(),
        values,
    }
}

/// Label sets that hit the selector's edges: each key of a requirement absent, set to one
/// of the values the selector names, or to a value it does not name; which one is picked by
/// the input's bytes, so the fuzzer steers it.
fn label_sets(selector: &Selector, data: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut sets = vec![BTreeMap::new()];
    for round in 0..8usize {
        let mut labels = BTreeMap::new();
        for (i, requirement) in selector.requirements().iter().enumerate() {
            let pick = data.get((round * 7 + i) % data.len().max(1)).copied();
            let pick = pick.unwrap_or(0) as usize + round;
            let named: Vec<String> = match requirement {
                Requirement::Equals(_, v) | Requirement::NotEquals(_, v) => vec![v.clone()],
                Requirement::In(_, vs) | Requirement::NotIn(_, vs) => vs.clone(),
                Requirement::GreaterThan(_, n) | Requirement::LessThan(_, n) => {
                    vec![
                        n.saturating_sub(1).to_string(),
                        n.saturating_add(1).to_string(),
                    ]
                }
                Requirement::Exists(_) | Requirement::DoesNotExist(_) => Vec::new(),
            };
            match pick % 3 {
                0 => {}
                1 if !named.is_empty() => {
                    labels.insert(
                        requirement.key().to_string(),
                        named[pick % named.len()].clone(),
                    );
                }
                _ => {
                    labels.insert(requirement.key().to_string(), "other-value".to_string());
                }
            }
        }
        sets.push(labels);
    }
    sets
}
