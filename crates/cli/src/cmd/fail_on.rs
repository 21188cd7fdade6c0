//! What `check`, `plan` and `sim` exit with: `--fail-on` turns conditions of the result
//! into exit status 3, so CI can gate on them; 2 stays "invalid input".

use std::process::ExitCode;

use edgeplane_core::outcome::{FailOn, Outcome};

/// Exit status when a `--fail-on` condition (or a scenario's expectation) holds; 2 is
/// invalid input (files, flags, scenario).
pub const FAILED: u8 = 3;

/// The exit statuses, for the help of the commands that take `--fail-on`.
pub const EXIT_STATUS: &str = "Exit status: 0 done; 1 the command itself failed; 2 invalid input; 3 a --fail-on condition held";
/// The same for `sim`, whose scenarios may carry expectations.
pub const SIM_EXIT_STATUS: &str = "Exit status: 0 done; 1 the command itself failed; 2 invalid input; 3 a --fail-on condition held or an expectation of the scenario (spec.expect) failed";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A binding is in Violation.
    Violation,
    /// A binding is in Limit.
    Limit,
    /// A pod has no node (check: no spec.nodeName, workload replicas included; plan: the
    /// planner left it unplaced; sim: not bound at the end).
    Unplaced,
    /// A binding is in Error.
    Error,
}

impl From<Condition> for FailOn {
    fn from(c: Condition) -> FailOn {
        match c {
            Condition::Violation => FailOn::Violation,
            Condition::Limit => FailOn::Limit,
            Condition::Unplaced => FailOn::Unplaced,
            Condition::Error => FailOn::Error,
        }
    }
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct FailOnArgs {
    /// Exit with status 3 when a condition holds at the end (comma-separated or repeated):
    /// violation, limit, error (a binding in that compliance), unplaced (a pod without a
    /// node).
    #[arg(
        long = "fail-on",
        value_enum,
        value_delimiter = ',',
        value_name = "CONDITION"
    )]
    pub fail_on: Vec<Condition>,
}

impl FailOnArgs {
    /// Prints each condition asked for that holds (`failed (--fail-on violation): 3
    /// bindings in Violation`); true when one did.
    pub fn report(&self, outcome: &Outcome) -> bool {
        let asked: Vec<FailOn> = self.fail_on.iter().map(|c| FailOn::from(*c)).collect();
        let failures = outcome.failures(&asked);
        for (condition, what) in &failures {
            eprintln!("failed (--fail-on {condition}): {what}");
        }
        !failures.is_empty()
    }

    /// The exit code of a run that otherwise succeeded.
    pub fn exit_code(&self, outcome: &Outcome) -> ExitCode {
        if self.report(outcome) {
            ExitCode::from(FAILED)
        } else {
            ExitCode::SUCCESS
        }
    }
}
