//! Kubernetes label selectors: `matchLabels` and `matchExpressions` with In, NotIn, Exists
//! and DoesNotExist. A selector is validated once when compiled, then matched many times.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A validated selector. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A selector that is not valid, with the path of the offending field relative to the
/// selector (`matchExpressions[1].operator`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SelectorError {
    pub field: String,
    pub message: String,
}

impl Selector {
    /// Validates and compiles a selector.
    pub fn compile(selector: &LabelSelector) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            validate_key(key, &format!("matchLabels[{key:?}]"))?;
            requirements.push(Requirement::In(key.clone(), vec![value.clone()]));
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("matchExpressions[{i}]");
            validate_key(&expr.key, &format!("{field}.key"))?;
            let values = expr.values.clone().unwrap_or_default();
            let requirement = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(SelectorError {
                        field: format!("{field}.values"),
                        message: format!("operator {} needs at least one value", expr.operator),
                    });
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(SelectorError {
                        field: format!("{field}.values"),
                        message: format!("operator {} takes no values", expr.operator),
                    });
                }
                "In" => Requirement::In(expr.key.clone(), values),
                "NotIn" => Requirement::NotIn(expr.key.clone(), values),
                "Exists" => Requirement::Exists(expr.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(expr.key.clone()),
                other => {
                    return Err(SelectorError {
                        field: format!("{field}.operator"),
                        message: format!(
                            "unknown operator {other:?} (expected In, NotIn, Exists, DoesNotExist)"
                        ),
                    });
                }
            };
            requirements.push(requirement);
        }
        Ok(Selector { requirements })
    }

    /// A selector from `matchLabels` only.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Selector {
        Selector {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|req| match req {
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
        })
    }
}

/// Label keys: an optional DNS subdomain prefix and a name of up to 63 characters.
fn validate_key(key: &str, field: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && part.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(SelectorError {
            field: field.to_string(),
            message: format!("{key:?} is not a valid label key"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn compile(match_labels: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> Selector {
        let selector = LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        };
        match Selector::compile(&selector) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn operators() {
        let app = labels(&[("app", "ar"), ("tier", "edge")]);
        let other = labels(&[("app", "video")]);
        let table = [
            (compile(&[], vec![]), true, true),
            (compile(&[("app", "ar")], vec![]), true, false),
            (
                compile(&[], vec![expr("app", "In", &["ar", "vr"])]),
                true,
                false,
            ),
            (
                compile(&[], vec![expr("app", "NotIn", &["ar"])]),
                false,
                true,
            ),
            (
                compile(&[], vec![expr("tier", "NotIn", &["core"])]),
                true,
                true,
            ),
            (compile(&[], vec![expr("tier", "Exists", &[])]), true, false),
            (
                compile(&[], vec![expr("tier", "DoesNotExist", &[])]),
                false,
                true,
            ),
            (
                compile(&[("app", "ar")], vec![expr("tier", "In", &["core"])]),
                false,
                false,
            ),
        ];
        for (i, (selector, on_app, on_other)) in table.into_iter().enumerate() {
            assert_eq!(selector.matches(&app), on_app, "case {i} on app");
            assert_eq!(selector.matches(&other), on_other, "case {i} on other");
        }
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let cases = [
            (
                vec![expr("app", "Equals", &["x"])],
                "matchExpressions[0].operator",
            ),
            (vec![expr("app", "In", &[])], "matchExpressions[0].values"),
            (
                vec![expr("app", "Exists", &["x"])],
                "matchExpressions[0].values",
            ),
            (vec![expr("-bad", "Exists", &[])], "matchExpressions[0].key"),
            (
                vec![expr("Example.com/x", "Exists", &[])],
                "matchExpressions[0].key",
            ),
        ];
        for (exprs, field) in cases {
            let selector = LabelSelector {
                match_labels: None,
                match_expressions: Some(exprs),
            };
            let err = Selector::compile(&selector).err();
            assert_eq!(err.map(|e| e.field), Some(field.to_string()));
        }
        let ok = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("example.com/x_y.z", "Exists", &[])]),
        };
        assert!(Selector::compile(&ok).is_ok());
    }
}
