//! Label and field selectors, as the API server parses them from `labelSelector=` and
//! `fieldSelector=` and as workloads carry them (`metav1.LabelSelector`). Label selectors
//! are [`edgeplane_core::selector`]'s, the one implementation edgeplane's decisions use too.
//!
//! ```
//! use std::collections::BTreeMap;
//! use edgeplane_cluster::selector::{FieldSelector, LabelSelector, from_api};
//! use serde_json::json;
//!
//! let from_query = LabelSelector::parse("app=web,tier in (edge)")?;
//! let from_object = from_api(&json!({"matchLabels": {"app": "web"},
//!     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["edge"]}]}))?;
//! let labels = BTreeMap::from([("app".to_string(), "web".to_string()), ("tier".into(), "edge".into())]);
//! assert!(from_query.matches(&labels) && from_object.matches(&labels));
//!
//! let fields = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed")?;
//! assert_eq!(fields.required_value("spec.nodeName"), Some("n1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::Deserialize;
use serde_json::Value;

pub use edgeplane_core::selector::{
    ParseError, Requirement, Selector as LabelSelector, SelectorError, SelectorProblem,
};

/// A `metav1.LabelSelector` the API server cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorError {
    /// It does not decode as a `metav1.LabelSelector`.
    #[error("{0}")]
    Shape(String),
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error(transparent)]
    Invalid(SelectorError),
}

/// Compiles a `metav1.LabelSelector` as objects carry it (`spec.selector`).
pub fn from_api(v: &Value) -> Result<LabelSelector, LabelSelectorError> {
    let typed = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector::deserialize(v)
        .map_err(|e| LabelSelectorError::Shape(e.to_string()))?;
    LabelSelector::compile(&typed).map_err(|e| match e.problem {
        SelectorProblem::UnknownOperator(operator) => LabelSelectorError::Operator(operator),
        _ => LabelSelectorError::Invalid(e),
    })
}

/// One term of a field selector: `field=value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub equal: bool,
    pub value: String,
}

/// A field selector term that is neither `field=value` nor `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector: '{selector}'; can't understand '{term}'")]
pub struct FieldSelectorError {
    pub selector: String,
    pub term: String,
}

/// A field selector: a conjunction of exact (in)equalities on named fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `metadata.name=x,spec.nodeName!=`, honouring `\,` `\=` `\\` escapes.
    pub fn parse(s: &str) -> Result<Self, FieldSelectorError> {
        let mut requirements = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (field, equal, value) = split_term(&term).ok_or_else(|| FieldSelectorError {
                selector: s.to_string(),
                term: term.clone(),
            })?;
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                equal,
                value: unescape(value.trim()),
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether the object matches, reading field values through `field` (absent fields
    /// read as the empty string, as on a real API server).
    pub fn matches(&self, field: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field(&r.field).unwrap_or_default();
            (actual == r.value) == r.equal
        })
    }

    /// The value a selector requires for a field with `=`, if any.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.equal && r.field == field)
            .map(|r| r.value.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

/// Splits `a!=b`, `a==b`, `a=b` at the first unescaped operator.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((&term[..i], false, &term[i + 2..]));
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((&term[..i], true, &term[i + 2..]));
            }
            b'=' => return Some((&term[..i], true, &term[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn converts_api_selectors() {
        let sel = from_api(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
        }))
        .unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
        assert_eq!(sel.to_query(), "app=web,tier in (a,b)");
        assert!(
            from_api(&json!({"matchExpressions": [{"key": "a", "operator": "Nope"}]})).is_err()
        );
    }

    /// The API server's words for a bad operator stay as they were; selectors Kubernetes
    /// rejects (which the embedded API server used to accept) are rejected.
    #[test]
    fn api_selector_errors() {
        let err = from_api(&json!({"matchExpressions": [{"key": "a", "operator": "Nope"}]}));
        assert_eq!(
            err.err().map(|e| e.to_string()).as_deref(),
            Some("\"Nope\" is not a valid label selector operator")
        );
        let err = from_api(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert_eq!(
            err.err().map(|e| e.to_string()).as_deref(),
            Some("matchExpressions[0].values: operator In needs at least one value")
        );
        assert!(from_api(&json!({"matchLabels": "app"})).is_err());
        assert_eq!(from_api(&json!({})), Ok(LabelSelector::everything()));
    }

    #[test]
    fn field_selectors() {
        let sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        let get = |phase: &'static str| {
            move |f: &str| match f {
                "spec.nodeName" => Some("n1".to_string()),
                "status.phase" => Some(phase.to_string()),
                _ => None,
            }
        };
        assert!(sel.matches(get("Running")));
        assert!(!sel.matches(get("Failed")));
        let esc = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(esc.requirements[0].value, "a,b");
        assert_eq!(
            FieldSelector::parse("spec.nodeName=").unwrap().requirements[0].value,
            ""
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
