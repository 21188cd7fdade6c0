//! What a run of `check`, `plan` or `sim` ended with, and which of the conditions CI asked
//! to fail on (`--fail-on violation,unplaced`) hold.

use std::fmt;

use edgeplane_api::Compliance;

/// A condition a run can be asked to fail on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailOn {
    /// Some binding is in Violation.
    Violation,
    /// Some binding is in Limit.
    Limit,
    /// Some pod has no node (`plan`: the planner left it unplaced; `check`: it has no
    /// `spec.nodeName`; `sim`: it is not bound at the end).
    Unplaced,
    /// Some binding is in Error.
    Error,
}

impl FailOn {
    pub const ALL: [FailOn; 4] = [
        FailOn::Violation,
        FailOn::Limit,
        FailOn::Unplaced,
        FailOn::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Violation => "violation",
            FailOn::Limit => "limit",
            FailOn::Unplaced => "unplaced",
            FailOn::Error => "error",
        }
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The counts a run ended with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub violation: usize,
    pub limit: usize,
    pub error: usize,
    /// Pods without a node.
    pub unplaced: usize,
}

impl Outcome {
    /// Counts bindings by compliance; `unplaced` pods are set by the caller.
    pub fn from_compliance(bindings: impl IntoIterator<Item = Compliance>) -> Outcome {
        let mut outcome = Outcome::default();
        for c in bindings {
            match c {
                Compliance::Violation => outcome.violation += 1,
                Compliance::Limit => outcome.limit += 1,
                Compliance::Error => outcome.error += 1,
                Compliance::Pending | Compliance::Compliant => {}
            }
        }
        outcome
    }

    /// The conditions asked for that hold, each with what holds
    /// (`(Violation, "3 bindings in Violation")`), in the order of [`FailOn::ALL`], each
    /// once.
    pub fn failures(&self, asked: &[FailOn]) -> Vec<(FailOn, String)> {
        let bindings = |n: usize, c: &str| match n {
            1 => format!("1 binding in {c}"),
            n => format!("{n} bindings in {c}"),
        };
        FailOn::ALL
            .into_iter()
            .filter(|c| asked.contains(c))
            .filter_map(|c| {
                let (count, what) = match c {
                    FailOn::Violation => (self.violation, bindings(self.violation, "Violation")),
                    FailOn::Limit => (self.limit, bindings(self.limit, "Limit")),
                    FailOn::Error => (self.error, bindings(self.error, "Error")),
                    FailOn::Unplaced => (
                        self.unplaced,
                        match self.unplaced {
                            1 => "1 pod without a node".to_string(),
                            n => format!("{n} pods without a node"),
                        },
                    ),
                };
                (count > 0).then_some((c, what))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_conditions_asked_for_and_holding_fail_in_a_fixed_order() {
        let mut outcome = Outcome::from_compliance([
            Compliance::Compliant,
            Compliance::Limit,
            Compliance::Violation,
            Compliance::Violation,
            Compliance::Pending,
        ]);
        outcome.unplaced = 1;
        assert_eq!(outcome.failures(&[]), vec![]);
        assert_eq!(outcome.failures(&[FailOn::Error]), vec![]);
        assert_eq!(
            outcome.failures(&[
                FailOn::Unplaced,
                FailOn::Limit,
                FailOn::Violation,
                FailOn::Limit
            ]),
            vec![
                (FailOn::Violation, "2 bindings in Violation".to_string()),
                (FailOn::Limit, "1 binding in Limit".to_string()),
                (FailOn::Unplaced, "1 pod without a node".to_string()),
            ]
        );
        outcome.unplaced = 7;
        assert_eq!(
            outcome.failures(&[FailOn::Unplaced]),
            vec![(FailOn::Unplaced, "7 pods without a node".to_string())]
        );
    }
}
