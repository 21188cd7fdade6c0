//! What a scenario expects at the end of its run (`spec.expect`), and whether a run met
//! it: the final counts of the summary, each exact or bounded.
//!
//! ```yaml
//! expect:
//!   podsPlaced: 8
//!   podsUnplaced: 0
//!   evictions: 0
//!   mitigations: ">= 4"
//!   bindings: {Compliant: 19, Limit: "<= 5", Violation: 0}
//! ```

use std::collections::BTreeMap;
use std::fmt;

use edgeplane_api::Compliance;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{FileErrors, ScenarioError, scalar_text};
use crate::report::Summary;

/// A count of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    PodsPlaced,
    PodsUnplaced,
    Evictions,
    Mitigations,
    /// Bindings in this compliance at the end.
    Bindings(Compliance),
}

impl Measure {
    /// Where it is written: `spec.expect.podsPlaced`, `spec.expect.bindings.Limit`.
    pub fn field(self) -> String {
        let key = match self {
            Measure::PodsPlaced => "podsPlaced",
            Measure::PodsUnplaced => "podsUnplaced",
            Measure::Evictions => "evictions",
            Measure::Mitigations => "mitigations",
            Measure::Bindings(c) => return format!("spec.expect.bindings.{}", c.as_str()),
        };
        format!("spec.expect.{key}")
    }

    fn of(self, s: &Summary) -> usize {
        match self {
            Measure::PodsPlaced => s.pods_placed,
            Measure::PodsUnplaced => s.pods_unplaced,
            Measure::Evictions => s.evictions,
            Measure::Mitigations => s.mitigations,
            Measure::Bindings(c) => {
                let b = &s.bindings;
                match c {
                    Compliance::Pending => b.pending,
                    Compliance::Compliant => b.compliant,
                    Compliance::Limit => b.limit,
                    Compliance::Violation => b.violation,
                    Compliance::Error => b.error,
                }
            }
        }
    }
}

/// What a count must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Exactly(usize),
    AtLeast(usize),
    AtMost(usize),
}

impl Bound {
    fn holds(self, actual: usize) -> bool {
        match self {
            Bound::Exactly(n) => actual == n,
            Bound::AtLeast(n) => actual >= n,
            Bound::AtMost(n) => actual <= n,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Exactly(n) => write!(f, "{n}"),
            Bound::AtLeast(n) => write!(f, ">= {n}"),
            Bound::AtMost(n) => write!(f, "<= {n}"),
        }
    }
}

/// One expectation of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub measure: Measure,
    pub bound: Bound,
}

impl Expectation {
    /// Judges the expectation against a run's summary.
    pub fn judge(&self, summary: &Summary) -> ExpectationResult {
        let actual = self.measure.of(summary);
        ExpectationResult {
            field: self.measure.field(),
            expected: self.bound.to_string(),
            actual,
            met: self.bound.holds(actual),
        }
    }
}

/// An expectation judged (the JSON report's `expectations`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectationResult {
    /// `spec.expect.mitigations`
    pub field: String,
    /// `>= 4`
    pub expected: String,
    pub actual: usize,
    pub met: bool,
}

impl fmt::Display for ExpectationResult {
    /// `spec.expect.mitigations: expected >= 4, got 3`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.field, self.expected, self.actual
        )
    }
}

/// `spec.expect` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawExpect {
    pods_placed: Option<Value>,
    pods_unplaced: Option<Value>,
    evictions: Option<Value>,
    mitigations: Option<Value>,
    #[serde(default)]
    bindings: BTreeMap<String, Value>,
}

/// The expectations of `spec.expect`, in a fixed order: pods placed and unplaced,
/// evictions, mitigations, then bindings from Pending to Error.
pub(super) fn expectations(
    file: &FileErrors,
    raw: Option<RawExpect>,
) -> Result<Vec<Expectation>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let counts = [
        (Measure::PodsPlaced, raw.pods_placed),
        (Measure::PodsUnplaced, raw.pods_unplaced),
        (Measure::Evictions, raw.evictions),
        (Measure::Mitigations, raw.mitigations),
    ];
    for (measure, value) in counts {
        if let Some(v) = value {
            out.push(Expectation {
                measure,
                bound: bound(file, &measure.field(), &v)?,
            });
        }
    }
    for key in raw.bindings.keys() {
        if !Compliance::ALL.iter().any(|c| c.as_str() == key) {
            return Err(file.at(
                Some(&format!("spec.expect.bindings.{key}")),
                "is not a compliance (expected Pending, Compliant, Limit, Violation or Error)",
            ));
        }
    }
    for c in Compliance::ALL {
        if let Some(v) = raw.bindings.get(c.as_str()) {
            let measure = Measure::Bindings(c);
            out.push(Expectation {
                measure,
                bound: bound(file, &measure.field(), v)?,
            });
        }
    }
    Ok(out)
}

/// `3`, `"3"`, `">= 3"`, `"<= 3"` (spaces optional).
fn bound(file: &FileErrors, field: &str, value: &Value) -> Result<Bound, ScenarioError> {
    let invalid = || {
        file.at(
            Some(field),
            format!(
                "{:?} is not a count (expected for example 3, \">= 3\" or \"<= 3\")",
                scalar_text(value)
            ),
        )
    };
    let count = |text: &str| text.trim().parse::<usize>().map_err(|_| invalid());
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Bound::Exactly)
            .ok_or_else(invalid),
        Value::String(text) => {
            let text = text.trim();
            if let Some(rest) = text.strip_prefix(">=") {
                Ok(Bound::AtLeast(count(rest)?))
            } else if let Some(rest) = text.strip_prefix("<=") {
                Ok(Bound::AtMost(count(rest)?))
            } else {
                Ok(Bound::Exactly(count(text)?))
            }
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ComplianceCounts;

    fn parse(yaml: &str) -> Result<Vec<Expectation>, String> {
        let value =
            edgeplane_core::manifests::parse_single("s.yaml", yaml).map_err(|e| e.to_string())?;
        let raw: RawExpect = serde_json::from_value(value).map_err(|e| e.to_string())?;
        expectations(&FileErrors { source: "s.yaml" }, Some(raw)).map_err(|e| e.to_string())
    }

    #[test]
    fn counts_are_exact_or_bounded_in_a_fixed_order() {
        let got = parse(
            "bindings: {Violation: 0, Compliant: \">=19\"}\nmitigations: \" <= 4 \"\npodsPlaced: \"8\"\n",
        );
        assert_eq!(
            got,
            Ok(vec![
                Expectation {
                    measure: Measure::PodsPlaced,
                    bound: Bound::Exactly(8)
                },
                Expectation {
                    measure: Measure::Mitigations,
                    bound: Bound::AtMost(4)
                },
                Expectation {
                    measure: Measure::Bindings(Compliance::Compliant),
                    bound: Bound::AtLeast(19)
                },
                Expectation {
                    measure: Measure::Bindings(Compliance::Violation),
                    bound: Bound::Exactly(0)
                },
            ])
        );
    }

    #[test]
    fn bad_counts_name_the_field() {
        assert_eq!(
            parse("evictions: -1\n"),
            Err("s.yaml: spec.expect.evictions: \"-1\" is not a count (expected for example 3, \">= 3\" or \"<= 3\")".into())
        );
        assert_eq!(
            parse("bindings: {Limit: \"> 2\"}\n"),
            Err("s.yaml: spec.expect.bindings.Limit: \"> 2\" is not a count (expected for example 3, \">= 3\" or \"<= 3\")".into())
        );
        assert_eq!(
            parse("bindings: {Green: 2}\n"),
            Err("s.yaml: spec.expect.bindings.Green: is not a compliance (expected Pending, Compliant, Limit, Violation or Error)".into())
        );
        assert!(parse("podsLost: 0\n").is_err_and(|e| e.contains("unknown field `podsLost`")));
    }

    #[test]
    fn judged_against_the_summary() {
        let summary = Summary {
            pods_placed: 8,
            mitigations: 3,
            bindings: ComplianceCounts {
                limit: 5,
                ..ComplianceCounts::default()
            },
            ..Summary::default()
        };
        let judge = |measure, bound| Expectation { measure, bound }.judge(&summary);
        let r = judge(Measure::Mitigations, Bound::AtLeast(4));
        assert_eq!(
            (r.met, r.to_string()),
            (
                false,
                "spec.expect.mitigations: expected >= 4, got 3".into()
            )
        );
        assert!(judge(Measure::Bindings(Compliance::Limit), Bound::AtMost(5)).met);
        assert!(judge(Measure::PodsPlaced, Bound::Exactly(8)).met);
        assert!(!judge(Measure::PodsPlaced, Bound::Exactly(7)).met);
    }
}
