//! Kubernetes label selectors, one implementation for edgeplane's decisions and for the
//! embedded cluster's API server: `metav1.LabelSelector` (`matchLabels`, and
//! `matchExpressions` with In, NotIn, Exists and DoesNotExist), validated once when
//! compiled, and the string form of `labelSelector=` queries. A selector is compiled once,
//! then matched many times.
//!
//! ```
//! use std::collections::BTreeMap;
//! use edgeplane_core::selector::Selector;
//!
//! let selector = Selector::parse("app=web,tier in (edge,metro),!legacy")?;
//! let labels = BTreeMap::from([("app".to_string(), "web".to_string()), ("tier".into(), "edge".into())]);
//! assert!(selector.matches(&labels));
//! assert_eq!(selector.to_query(), "app=web,tier in (edge,metro),!legacy");
//! # Ok::<(), edgeplane_core::selector::ParseError>(())
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One requirement of a label selector. `Equals` and `NotEquals` come from `matchLabels`
/// and the `=`, `==`, `!=` of the string form; `GreaterThan` and `LessThan` only from the
/// string form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl Requirement {
    /// Whether an object with these labels satisfies the requirement. `GreaterThan` and
    /// `LessThan` hold only for labels that are integers.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::GreaterThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Requirement::LessThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        }
    }

    /// The label the requirement is about.
    pub fn key(&self) -> &str {
        match self {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::DoesNotExist(k)
            | Requirement::GreaterThan(k, _)
            | Requirement::LessThan(k, _) => k,
        }
    }
}

/// A validated selector: the conjunction of its requirements. The empty selector matches
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// A `metav1.LabelSelector` that is not valid, with the path of the offending field
/// relative to the selector (`matchExpressions[1].operator`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SelectorError {
    pub field: String,
    pub problem: SelectorProblem,
}

/// What is wrong with a field of a `metav1.LabelSelector`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorProblem {
    #[error("operator {0} needs at least one value")]
    NeedsValues(String),
    #[error("operator {0} takes no values")]
    TakesNoValues(String),
    #[error("unknown operator {0:?} (expected In, NotIn, Exists, DoesNotExist)")]
    UnknownOperator(String),
    #[error("{0:?} is not a valid label key")]
    InvalidKey(String),
    #[error("{0:?} is not a valid label value: {LABEL_VALUE_RULE}")]
    InvalidValue(String),
}

/// The API server's rule for label values, as it words it.
pub const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, at most 63 characters";

/// A string-form selector that does not parse; worded as the Kubernetes API server words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("found {}, expected: {expected}", found_text(.found))]
    Unexpected {
        /// The token found, `None` at the end of the string.
        found: Option<String>,
        expected: &'static str,
    },
    #[error("for 'Gt', 'Lt' operators, the value must be an integer, got {0:?}")]
    NotAnInteger(String),
    #[error("expected '(' after 'in'/'notin'")]
    MissingParenthesis,
    #[error("invalid label key \"{0}\"")]
    InvalidKey(String),
    #[error("invalid label value: \"{0}\": {LABEL_VALUE_RULE}")]
    InvalidValue(String),
}

fn found_text(found: &Option<String>) -> String {
    match found {
        Some(token) => format!("'{token}'"),
        None => "end of string".to_string(),
    }
}

impl Selector {
    /// Validates and compiles a `metav1.LabelSelector`.
    pub fn compile(selector: &LabelSelector) -> Result<Selector, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            validate_key(key, &format!("matchLabels[{key:?}]"))?;
            validate_value(value, &format!("matchLabels[{key:?}]"))?;
            requirements.push(Requirement::Equals(key.clone(), value.clone()));
        }
        for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
            let field = format!("matchExpressions[{i}]");
            validate_key(&expr.key, &format!("{field}.key"))?;
            let values = expr.values.clone().unwrap_or_default();
            for (j, value) in values.iter().enumerate() {
                validate_value(value, &format!("{field}.values[{j}]"))?;
            }
            let error = |at: &str, problem| SelectorError {
                field: format!("{field}.{at}"),
                problem,
            };
            let requirement = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(error(
                        "values",
                        SelectorProblem::NeedsValues(expr.operator.clone()),
                    ));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(error(
                        "values",
                        SelectorProblem::TakesNoValues(expr.operator.clone()),
                    ));
                }
                "In" => Requirement::In(expr.key.clone(), values),
                "NotIn" => Requirement::NotIn(expr.key.clone(), values),
                "Exists" => Requirement::Exists(expr.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(expr.key.clone()),
                other => {
                    return Err(error(
                        "operator",
                        SelectorProblem::UnknownOperator(other.to_string()),
                    ));
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
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        }
    }

    /// This selector with one more requirement (`matchLabelKeys` add `key In (value)`).
    pub fn and(mut self, requirement: Requirement) -> Selector {
        self.requirements.push(requirement);
        self
    }

    /// The selector that selects everything.
    pub fn everything() -> Selector {
        Selector::default()
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches labels given as pairs (as the embedded cluster's store keeps them).
    pub fn matches_pairs(&self, labels: &[(String, String)]) -> bool {
        if self.requirements.is_empty() {
            return true;
        }
        let map: BTreeMap<String, String> = labels.iter().cloned().collect();
        self.matches(&map)
    }

    /// Parses the string form: `app=web,tier!=db,env in (a,b),!legacy,gpu`.
    pub fn parse(s: &str) -> Result<Selector, ParseError> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        if p.tokens.is_empty() {
            return Ok(Selector { requirements });
        }
        loop {
            requirements.push(p.requirement()?);
            match p.next() {
                None => break,
                Some(Token::Comma) => continue,
                Some(t) => {
                    return Err(ParseError::Unexpected {
                        found: Some(t.text()),
                        expected: "',' or 'end of string'",
                    });
                }
            }
        }
        if let Some(r) = requirements.iter().find(|r| !is_label_key(r.key())) {
            return Err(ParseError::InvalidKey(r.key().to_string()));
        }
        for r in &requirements {
            let values = match r {
                Requirement::Equals(_, v) | Requirement::NotEquals(_, v) => std::slice::from_ref(v),
                Requirement::In(_, vs) | Requirement::NotIn(_, vs) => vs.as_slice(),
                _ => &[],
            };
            if let Some(bad) = values.iter().find(|v| !is_label_value(v)) {
                return Err(ParseError::InvalidValue(bad.clone()));
            }
        }
        Ok(Selector { requirements })
    }

    /// Renders the selector in the string form (`kubectl get -l`, status fields).
    pub fn to_query(&self) -> String {
        self.requirements
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
                Requirement::GreaterThan(k, n) => format!("{k}>{n}"),
                Requirement::LessThan(k, n) => format!("{k}<{n}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Label keys: an optional DNS subdomain prefix and a name of up to 63 characters.
pub fn is_label_key(key: &str) -> bool {
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
    name_ok && prefix_ok
}

/// Label values: empty, or up to 63 alphanumerics, `-`, `_` and `.` that start and end
/// with an alphanumeric.
pub fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || value.len() <= 63
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate_value(value: &str, field: &str) -> Result<(), SelectorError> {
    if is_label_value(value) {
        Ok(())
    } else {
        Err(SelectorError {
            field: field.to_string(),
            problem: SelectorProblem::InvalidValue(value.to_string()),
        })
    }
}

fn validate_key(key: &str, field: &str) -> Result<(), SelectorError> {
    if is_label_key(key) {
        Ok(())
    } else {
        Err(SelectorError {
            field: field.to_string(),
            problem: SelectorProblem::InvalidKey(key.to_string()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Comma,
    LParen,
    RParen,
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    In,
    NotIn,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Comma => ",".into(),
            Token::LParen => "(".into(),
            Token::RParen => ")".into(),
            Token::Not => "!".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
        }
    }
}

fn lex(s: &str) -> Vec<Token> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::NotEq);
                i += 2;
            }
            '!' => {
                out.push(Token::Not);
                i += 1;
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::DoubleEq);
                i += 2;
            }
            '=' => {
                out.push(Token::Eq);
                i += 1;
            }
            '>' => {
                out.push(Token::Gt);
                i += 1;
            }
            '<' => {
                out.push(Token::Lt);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], ',' | '(' | ')' | '!' | '=' | '>' | '<')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Ident(word),
                });
            }
        }
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn ident(&mut self, expected: &'static str) -> Result<String, ParseError> {
        match self.next() {
            Some(Token::Ident(s)) => Ok(s),
            found => Err(ParseError::Unexpected {
                found: found.map(|t| t.text()),
                expected,
            }),
        }
    }

    /// A single value after `=`; it may be empty (`a=` or `a=,b`).
    fn value(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            _ => self.ident("identifier"),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, ParseError> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(Requirement::DoesNotExist(self.ident("identifier")?));
        }
        let key = self.ident("identifier")?;
        match self.peek() {
            None | Some(Token::Comma) => Ok(Requirement::Exists(key)),
            Some(Token::Eq) | Some(Token::DoubleEq) => {
                self.pos += 1;
                Ok(Requirement::Equals(key, self.value()?))
            }
            Some(Token::NotEq) => {
                self.pos += 1;
                Ok(Requirement::NotEquals(key, self.value()?))
            }
            Some(Token::Gt) | Some(Token::Lt) => {
                let gt = self.next() == Some(Token::Gt);
                let v = self.ident("integer")?;
                let n: i64 = v.parse().map_err(|_| ParseError::NotAnInteger(v))?;
                Ok(if gt {
                    Requirement::GreaterThan(key, n)
                } else {
                    Requirement::LessThan(key, n)
                })
            }
            Some(Token::In) | Some(Token::NotIn) => {
                let is_in = self.next() == Some(Token::In);
                if self.next() != Some(Token::LParen) {
                    return Err(ParseError::MissingParenthesis);
                }
                let mut values = Vec::new();
                loop {
                    match self.next() {
                        Some(Token::RParen) => break,
                        Some(Token::Ident(v)) => values.push(v),
                        Some(Token::Comma) => continue,
                        Some(t) => {
                            return Err(ParseError::Unexpected {
                                found: Some(t.text()),
                                expected: "',', ')' or identifier",
                            });
                        }
                        None => {
                            return Err(ParseError::Unexpected {
                                found: None,
                                expected: "')'",
                            });
                        }
                    }
                }
                Ok(if is_in {
                    Requirement::In(key, values)
                } else {
                    Requirement::NotIn(key, values)
                })
            }
            Some(t) => Err(ParseError::Unexpected {
                found: Some(t.text()),
                expected: "'=', '!=', '==', 'in', notin'",
            }),
        }
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

    /// The embedded cluster's API server used to accept `In` without values (matching
    /// nothing), `NotIn` without values (matching everything), `Exists` with values and an
    /// empty key; Kubernetes rejects all four, and so does the one implementation now.
    #[test]
    fn selectors_kubernetes_rejects_do_not_compile() {
        for (e, problem) in [
            (
                expr("a", "In", &[]),
                SelectorProblem::NeedsValues("In".into()),
            ),
            (
                expr("a", "NotIn", &[]),
                SelectorProblem::NeedsValues("NotIn".into()),
            ),
            (
                expr("a", "Exists", &["x"]),
                SelectorProblem::TakesNoValues("Exists".into()),
            ),
            (
                expr("", "Exists", &[]),
                SelectorProblem::InvalidKey(String::new()),
            ),
        ] {
            let selector = LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![e]),
            };
            assert_eq!(
                Selector::compile(&selector).err().map(|e| e.problem),
                Some(problem)
            );
        }
    }

    #[test]
    fn match_labels_print_as_equalities() {
        let selector = compile(&[("app", "web")], vec![expr("tier", "In", &["a", "b"])]);
        assert_eq!(selector.to_query(), "app=web,tier in (a,b)");
        assert_eq!(
            Selector::from_labels(&labels(&[("app", "web")])),
            compile(&[("app", "web")], vec![])
        );
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing!=x", true),
            ("n>4", true),
            ("n<5", false),
            ("app=web,tier=back", false),
            ("app=web, tier in (front)", true),
            ("app=", false),
        ];
        for (s, want) in cases {
            let sel = Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(sel.matches(&l), want, "{s}");
        }
    }

    #[test]
    fn rejects_malformed_selectors() {
        for s in [
            "app in web",
            "=x",
            "app=(",
            "a b",
            "x in (a",
            "n>x",
            "bad key!=1",
        ] {
            assert!(Selector::parse(s).is_err(), "{s} should not parse");
        }
    }

    /// The messages are the API server's: clients show them to people.
    #[test]
    fn parse_errors_are_worded_as_kubernetes_words_them() {
        let cases = [
            ("a b", "found 'b', expected: '=', '!=', '==', 'in', notin'"),
            ("x in (a", "found end of string, expected: ')'"),
            ("app in web", "expected '(' after 'in'/'notin'"),
            (
                "n>x",
                "for 'Gt', 'Lt' operators, the value must be an integer, got \"x\"",
            ),
            ("=x", "found '=', expected: identifier"),
            ("a=b)", "found ')', expected: ',' or 'end of string'"),
            ("Bad_/x", "invalid label key \"Bad_/x\""),
        ];
        for (s, message) in cases {
            assert_eq!(
                Selector::parse(s).err().map(|e| e.to_string()).as_deref(),
                Some(message),
                "{s}"
            );
        }
    }
}
