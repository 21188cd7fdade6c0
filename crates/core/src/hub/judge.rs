//! Rules judged between clusters and sites, with the same rule semantics as inside a
//! cluster: path rules by `rules::Rule` on the topology's metrics, node rules by
//! `evaluate::BuiltinRule` on the cluster's labels.

use edgeplane_api::{Compliance, ConstraintPolicyRule};

use crate::evaluate::{BuiltinRule, ClusterView, Score};
use crate::network::{Location, NetworkGraph, PathMetric, PathMetrics};
use crate::rules::{Rule, builtin_metric};
use crate::values::Value;

/// How one rule is judged.
#[derive(Clone, Debug)]
pub(super) enum Judge {
    Path {
        metric: PathMetric,
        rule: Rule,
    },
    Node(BuiltinRule),
    /// Cannot be judged (input validation rejects these; the planner reports them).
    Broken(String),
}

impl Judge {
    pub(super) fn compile(spec: &ConstraintPolicyRule) -> Judge {
        if let Some(metric) = PathMetric::for_rule(&spec.name) {
            let Some(kind) = builtin_metric(&spec.name) else {
                return Judge::Broken(format!("no provider for rule {}", spec.name));
            };
            return match Rule::parse(spec, kind) {
                Ok(rule) => Judge::Path { metric, rule },
                Err(e) => Judge::Broken(e.to_string()),
            };
        }
        match BuiltinRule::compile(spec) {
            Ok(rule) => Judge::Node(rule),
            Err(e) => Judge::Broken(e.to_string()),
        }
    }
}

/// The worst judgement of a rule so far, over the pairs (or clusters) judged.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Worst {
    pub compliance: Compliance,
    pub cost: f64,
    /// The measured value of the worst pair, and from where to where (named only when a
    /// reason is written: the search judges millions of pairs).
    pub value: Option<(Value, Location, Location)>,
}

impl Worst {
    /// Nothing judged yet.
    pub(super) fn none() -> Worst {
        Worst {
            compliance: Compliance::Pending,
            cost: 0.0,
            value: None,
        }
    }

    /// Keeps the worse of the two: higher compliance first, then higher cost. Pending
    /// (nothing judged) never wins over a judgement.
    pub(super) fn merge(&mut self, other: Worst) {
        if other.compliance == Compliance::Pending {
            return;
        }
        if self.compliance == Compliance::Pending
            || (other.compliance, other.cost) > (self.compliance, self.cost)
        {
            *self = other;
        }
    }
}

/// The metrics between two places: a cluster with itself is `intraSite` (its nodes are
/// the cluster's, the pods of two components meet inside it), otherwise the topology's.
pub(super) fn between(graph: &NetworkGraph, a: Location, b: Location) -> Option<PathMetrics> {
    match (a, b) {
        (Location::Node(x), Location::Node(y)) if x == y => Some(graph.intra_site()),
        _ => graph.metrics(a, b),
    }
}

/// Judges a path rule between two places, both directions; no path is a Violation.
pub(super) fn judge_pair(
    view: &ClusterView,
    metric: PathMetric,
    rule: &Rule,
    a: Location,
    b: Location,
) -> Worst {
    let graph = view.graph();
    let mut worst = Worst::none();
    for (from, to) in [(a, b), (b, a)] {
        let judged = match between(graph, from, to) {
            None => Worst {
                compliance: Compliance::Violation,
                cost: f64::INFINITY,
                value: None,
            },
            Some(path) => {
                let value = path.value(metric);
                Worst {
                    compliance: rule.judge(&value),
                    cost: rule.cost(&value),
                    value: Some((value, from, to)),
                }
            }
        };
        worst.merge(judged);
    }
    worst
}

/// Judges a node rule on a cluster (its labels; cpu and memory rules read what the view's
/// facts say of it).
pub(super) fn judge_node(view: &ClusterView, rule: &BuiltinRule, at: Location) -> Worst {
    let Location::Node(node) = at else {
        return Worst::none();
    };
    match rule.score(view, node, &[]) {
        Score::Feasible(cost) => Worst {
            compliance: if cost > 0.0 {
                Compliance::Limit
            } else {
                Compliance::Compliant
            },
            cost,
            value: None,
        },
        Score::Infeasible => Worst {
            compliance: Compliance::Violation,
            cost: f64::INFINITY,
            value: None,
        },
    }
}

/// The one-line reason of a rule's outcome.
pub(super) fn reason(view: &ClusterView, judge: &Judge, worst: &Worst, at: &str) -> String {
    match judge {
        Judge::Broken(message) => message.clone(),
        Judge::Path { rule, .. } => match &worst.value {
            Some((value, from, to)) => format!(
                "{} ({} to {})",
                rule.explain(value, worst.compliance),
                view.location_name(*from),
                view.location_name(*to)
            ),
            None if worst.compliance == Compliance::Violation => {
                format!("{}: no path ({at})", rule.name)
            }
            None => format!("{} has no placed pair yet", rule.name),
        },
        Judge::Node(rule) => match worst.compliance {
            Compliance::Violation => format!("{} is not met on {at}", rule.name()),
            Compliance::Pending => format!("{} has no placed cluster yet", rule.name()),
            _ => format!("{} is met on {at}", rule.name()),
        },
    }
}
