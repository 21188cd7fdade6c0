//! The network rules of a request, and how they fare on the route between two endpoints.

use edgeplane_api::{Compliance, ConstraintPolicyRule};

use crate::network::{ExtraLink, Location, NetworkGraph, PathMetric, PathMetrics, Route};
use crate::rules::{Direction, Rule, builtin_metric};

/// The network rules of a request, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRules {
    rules: Vec<(Rule, PathMetric)>,
    /// Names of the rules the network cannot repair (cpu, external providers' rules ...).
    pub ignored: Vec<String>,
}

/// A rule of a request that does not parse, located by its index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rules[{index}] ({name}).{field}: {message}")]
pub struct RuleInputError {
    pub index: usize,
    pub name: String,
    pub field: &'static str,
    pub message: String,
}

impl PathRules {
    /// Parses the network rules (latency, jitter, bandwidth, packet-loss) of a request;
    /// other rules are set aside in `ignored`.
    pub fn parse(rules: &[ConstraintPolicyRule]) -> Result<PathRules, RuleInputError> {
        let mut parsed = Vec::new();
        let mut ignored = Vec::new();
        for (index, spec) in rules.iter().enumerate() {
            let (Some(metric), Some(path)) =
                (builtin_metric(&spec.name), PathMetric::for_rule(&spec.name))
            else {
                ignored.push(spec.name.clone());
                continue;
            };
            let rule = Rule::parse(spec, metric).map_err(|e| RuleInputError {
                index,
                name: spec.name.clone(),
                field: e.field,
                message: e.source.to_string(),
            })?;
            parsed.push((rule, path));
        }
        Ok(PathRules {
            rules: parsed,
            ignored,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The bandwidth an allocation for these rules reserves on an entry whose capacity
    /// counts bandwidth: the largest request of a higher-is-better bandwidth rule, or 0.
    pub fn bandwidth_reservation_bps(&self) -> f64 {
        self.rules
            .iter()
            .filter(|(r, m)| {
                *m == PathMetric::Bandwidth && r.direction == Direction::HigherIsBetter
            })
            .filter_map(|(r, _)| r.request.magnitude())
            .fold(0.0, f64::max)
    }
}

/// How the rules fare on the route between two endpoints (both directions).
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The worst compliance over rules and directions (Compliant with no rules).
    pub compliance: Compliance,
    /// Rules whose worst direction is in Limit.
    pub limit_count: usize,
    /// Sum over rules of the normalized cost of their worst direction.
    pub cost: f64,
    /// The route from the first endpoint to the second, and back.
    pub forward: Option<Route>,
    pub backward: Option<Route>,
    /// The explanation of the worst rule (`latency 11.5ms from edge-9-a to stadium is worse
    /// than the limit 5ms`).
    pub reason: String,
}

impl Judgement {
    /// The rules hold: nothing worse than Limit.
    pub fn holds(&self) -> bool {
        self.compliance <= Compliance::Limit
    }

    /// Whether either direction's route takes the extra link `index` (into the `extra`
    /// given to [`judge`]).
    pub fn uses(&self, index: usize) -> bool {
        self.forward.as_ref().is_some_and(|r| r.uses(index))
            || self.backward.as_ref().is_some_and(|r| r.uses(index))
    }

    /// The metrics from the first endpoint to the second.
    pub fn expected(&self) -> Option<PathMetrics> {
        self.forward.as_ref().map(|r| r.metrics)
    }
}

/// Judges `rules` between two locations on the graph with `extra` links added.
pub fn judge(
    graph: &NetworkGraph,
    a: (Location, &str),
    b: (Location, &str),
    rules: &PathRules,
    extra: &[ExtraLink],
) -> Judgement {
    let forward = graph.route_with(a.0, b.0, extra);
    let backward = graph.route_with(b.0, a.0, extra);
    let mut compliance = Compliance::Compliant;
    let mut limit_count = 0;
    let mut cost = 0.0;
    let mut reason = String::new();
    let mut worst_key = (Compliance::Pending, f64::NEG_INFINITY);
    let symmetric = forward.as_ref().map(|r| r.metrics) == backward.as_ref().map(|r| r.metrics);
    for (rule, metric) in &rules.rules {
        let mut rule_worst = (Compliance::Pending, 0.0f64, String::new());
        let mut directions = vec![(&forward, a.1, b.1)];
        if !symmetric {
            directions.push((&backward, b.1, a.1));
        }
        for (route, from, to) in directions {
            let place = if symmetric {
                format!("between {from} and {to}")
            } else {
                format!("from {from} to {to}")
            };
            let (c, k, text) = match route {
                None => (
                    Compliance::Violation,
                    f64::INFINITY,
                    format!("{}: no path {place}", rule.name),
                ),
                Some(route) => {
                    let value = route.metrics.value(*metric);
                    let shown = if *metric == PathMetric::Bandwidth
                        && route.metrics.bandwidth_bps.is_infinite()
                    {
                        "unlimited".to_string()
                    } else {
                        value.to_string()
                    };
                    let c = rule.judge(&value);
                    let explained = rule.explain(&value, c);
                    // `latency 5ms meets ...` -> `latency 5ms between a and b meets ...`
                    let text = match explained.strip_prefix(&format!("{} {value}", rule.name)) {
                        Some(rest) => format!("{} {shown} {place}{rest}", rule.name),
                        None => explained,
                    };
                    (c, rule.cost(&value), text)
                }
            };
            if (c, k) > (rule_worst.0, rule_worst.1) {
                rule_worst = (c, k, text);
            }
        }
        if rule_worst.0 == Compliance::Limit {
            limit_count += 1;
        }
        compliance = compliance.max(rule_worst.0);
        cost += rule_worst.1;
        if (rule_worst.0, rule_worst.1) > worst_key {
            worst_key = (rule_worst.0, rule_worst.1);
            reason = rule_worst.2;
        }
    }
    Judgement {
        compliance,
        limit_count,
        cost,
        forward,
        backward,
        reason,
    }
}
