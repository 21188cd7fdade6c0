//! Rules: a measured value judged against a request and a limit.
//!
//! `request` is the preferred value and `limit` the worst acceptable one. Their order gives
//! the direction: a limit above the request means lower is better (latency), below means
//! higher is better (bandwidth). Equal values, or no limit, make a hard threshold in the
//! metric's natural direction.

use edgeplane_api::{Compliance, ConstraintPolicyRule};

use crate::values::{Unit, Value, ValueError};

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// How a rule's metric is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Between every pair of targets of a binding (latency, bandwidth, ...).
    Pairwise,
    /// On the node hosting the single target of a binding (cpu, node labels, ...).
    Node,
}

/// What a provider measures: the unit of its values and its natural direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metric {
    pub unit: Unit,
    pub natural: Direction,
    pub scope: Scope,
}

/// Built-in rule names.
pub mod builtin {
    pub const LATENCY: &str = "latency";
    pub const JITTER: &str = "jitter";
    pub const BANDWIDTH: &str = "bandwidth";
    pub const PACKET_LOSS: &str = "packet-loss";
    pub const CPU: &str = "cpu";
    pub const MEMORY: &str = "memory";
    pub const NODE_LABEL: &str = "node-label";
    pub const NODE_FEATURE: &str = "node-feature";

    pub const ALL: [&str; 8] = [
        LATENCY,
        JITTER,
        BANDWIDTH,
        PACKET_LOSS,
        CPU,
        MEMORY,
        NODE_LABEL,
        NODE_FEATURE,
    ];
}

/// The metric of a built-in rule; `None` for names served by external providers.
pub fn builtin_metric(name: &str) -> Option<Metric> {
    use Direction::*;
    let (unit, natural, scope) = match name {
        builtin::LATENCY | builtin::JITTER => (Unit::Duration, LowerIsBetter, Scope::Pairwise),
        builtin::BANDWIDTH => (Unit::BitRate, HigherIsBetter, Scope::Pairwise),
        builtin::PACKET_LOSS => (Unit::Ratio, LowerIsBetter, Scope::Pairwise),
        builtin::CPU => (Unit::Cores, HigherIsBetter, Scope::Node),
        builtin::MEMORY => (Unit::Bytes, HigherIsBetter, Scope::Node),
        builtin::NODE_LABEL => (Unit::Text, HigherIsBetter, Scope::Node),
        // `cpu-cpuid.AVX512F` or `cpu-cpuid.AVX512F=false`: see `crate::evaluate`.
        builtin::NODE_FEATURE => (Unit::Text, HigherIsBetter, Scope::Node),
        _ => return None,
    };
    Some(Metric {
        unit,
        natural,
        scope,
    })
}

/// A rule whose values parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub request: Value,
    /// Equal to `request` when the policy gave no limit.
    pub limit: Value,
    pub direction: Direction,
}

/// Which of a rule's fields did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {source}")]
pub struct RuleError {
    /// `request` or `limit`.
    pub field: &'static str,
    pub source: ValueError,
}

impl Rule {
    /// Parses a policy rule for a metric.
    pub fn parse(rule: &ConstraintPolicyRule, metric: Metric) -> Result<Rule, RuleError> {
        let request = Value::parse(&rule.request, metric.unit).map_err(|source| RuleError {
            field: "request",
            source,
        })?;
        let limit = match &rule.limit {
            Some(limit) => Value::parse(limit, metric.unit).map_err(|source| RuleError {
                field: "limit",
                source,
            })?,
            None => request.clone(),
        };
        let direction = match (request.magnitude(), limit.magnitude()) {
            (Some(r), Some(l)) if l > r => Direction::LowerIsBetter,
            (Some(r), Some(l)) if l < r => Direction::HigherIsBetter,
            _ => metric.natural,
        };
        Ok(Rule {
            name: rule.name.clone(),
            request,
            limit,
            direction,
        })
    }

    /// True when request and limit coincide: anything worse than the request violates.
    pub fn is_hard(&self) -> bool {
        self.request == self.limit
    }

    /// Judges a measured value. Booleans and text must equal the request.
    pub fn judge(&self, measured: &Value) -> Compliance {
        match (
            measured.magnitude(),
            self.request.magnitude(),
            self.limit.magnitude(),
        ) {
            (Some(v), Some(request), Some(limit)) => {
                let (v, request, limit) = self.oriented(v, request, limit);
                if v <= request {
                    Compliance::Compliant
                } else if v <= limit {
                    Compliance::Limit
                } else {
                    Compliance::Violation
                }
            }
            _ if *measured == self.request => Compliance::Compliant,
            _ => Compliance::Violation,
        }
    }

    /// Normalized cost: 0 at the request or better, 1 at the limit, linear in between and
    /// beyond. A hard rule costs 0 when met and 1 when not.
    pub fn cost(&self, measured: &Value) -> f64 {
        match (
            measured.magnitude(),
            self.request.magnitude(),
            self.limit.magnitude(),
        ) {
            (Some(v), Some(request), Some(limit)) => {
                let (v, request, limit) = self.oriented(v, request, limit);
                if v <= request {
                    0.0
                } else if limit > request {
                    (v - request) / (limit - request)
                } else {
                    1.0
                }
            }
            _ if *measured == self.request => 0.0,
            _ => 1.0,
        }
    }

    /// A one-line explanation of a judgement, for status reasons and events:
    /// `latency 12ms is worse than the limit 10ms`.
    pub fn explain(&self, measured: &Value, compliance: Compliance) -> String {
        let name = &self.name;
        match compliance {
            Compliance::Compliant => {
                format!("{name} {measured} meets the request {}", self.request)
            }
            Compliance::Limit => format!(
                "{name} {measured} is worse than the request {} but within the limit {}",
                self.request, self.limit
            ),
            Compliance::Violation if self.is_hard() => {
                format!(
                    "{name} {measured} does not meet the required {}",
                    self.request
                )
            }
            Compliance::Violation => {
                format!("{name} {measured} is worse than the limit {}", self.limit)
            }
            Compliance::Pending => format!("{name} is not measured yet"),
            Compliance::Error => format!("{name} could not be evaluated"),
        }
    }

    /// Mirrors higher-is-better values so that the comparisons above read lower-is-better.
    fn oriented(&self, v: f64, request: f64, limit: f64) -> (f64, f64, f64) {
        match self.direction {
            Direction::LowerIsBetter => (v, request, limit),
            Direction::HigherIsBetter => (-v, -request, -limit),
        }
    }
}

/// The worst of several compliances (`Pending` when there are none): the aggregation from
/// rules to a policy and from policies to a binding.
pub fn worst(compliances: impl IntoIterator<Item = Compliance>) -> Compliance {
    compliances.into_iter().max().unwrap_or(Compliance::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(name: &str, request: &str, limit: Option<&str>) -> Rule {
        let spec = ConstraintPolicyRule {
            name: name.into(),
            request: request.into(),
            limit: limit.map(Into::into),
        };
        let metric = builtin_metric(name).unwrap_or(Metric {
            unit: Unit::Number,
            natural: Direction::LowerIsBetter,
            scope: Scope::Pairwise,
        });
        match Rule::parse(&spec, metric) {
            Ok(rule) => rule,
            Err(e) => panic!("{name}: {e}"),
        }
    }

    fn v(text: &str, unit: Unit) -> Value {
        Value::parse(text, unit).unwrap_or(Value::Text(format!("unparsed {text}")))
    }

    #[test]
    fn direction_comes_from_request_and_limit_then_from_the_metric() {
        assert_eq!(
            rule("latency", "5ms", Some("10ms")).direction,
            Direction::LowerIsBetter
        );
        assert_eq!(
            rule("bandwidth", "1Gbps", Some("100Mbps")).direction,
            Direction::HigherIsBetter
        );
        // A policy may turn a metric around: prefer at least 2ms of latency (odd, but legal).
        assert_eq!(
            rule("latency", "5ms", Some("2ms")).direction,
            Direction::HigherIsBetter
        );
        // Equal or omitted limit: natural direction, hard threshold.
        let hard = rule("bandwidth", "1Gbps", None);
        assert_eq!(hard.direction, Direction::HigherIsBetter);
        assert!(hard.is_hard());
        assert_eq!(
            rule("latency", "5ms", Some("5ms")).direction,
            Direction::LowerIsBetter
        );
    }

    #[test]
    fn compliance_table() {
        let d = Unit::Duration;
        let b = Unit::BitRate;
        let cases = [
            (
                rule("latency", "5ms", Some("10ms")),
                v("4ms", d),
                Compliance::Compliant,
            ),
            (
                rule("latency", "5ms", Some("10ms")),
                v("5ms", d),
                Compliance::Compliant,
            ),
            (
                rule("latency", "5ms", Some("10ms")),
                v("7ms", d),
                Compliance::Limit,
            ),
            (
                rule("latency", "5ms", Some("10ms")),
                v("10ms", d),
                Compliance::Limit,
            ),
            (
                rule("latency", "5ms", Some("10ms")),
                v("10.1ms", d),
                Compliance::Violation,
            ),
            (
                rule("bandwidth", "1Gbps", Some("100Mbps")),
                v("2Gbps", b),
                Compliance::Compliant,
            ),
            (
                rule("bandwidth", "1Gbps", Some("100Mbps")),
                v("500Mbps", b),
                Compliance::Limit,
            ),
            (
                rule("bandwidth", "1Gbps", Some("100Mbps")),
                v("99Mbps", b),
                Compliance::Violation,
            ),
            (
                rule("bandwidth", "1Gbps", None),
                v("999Mbps", b),
                Compliance::Violation,
            ),
            (
                rule("latency", "5ms", None),
                v("5ms", d),
                Compliance::Compliant,
            ),
            (
                rule("packet-loss", "0.01%", Some("0.1%")),
                v("0.05%", Unit::Ratio),
                Compliance::Limit,
            ),
            (
                rule("node-feature", "cpu-cpuid.AVX512F", None),
                Value::Text("cpu-cpuid.AVX512F".into()),
                Compliance::Compliant,
            ),
            (
                rule("node-feature", "cpu-cpuid.AVX512F=false", None),
                Value::Text("cpu-cpuid.AVX512F=true".into()),
                Compliance::Violation,
            ),
            (
                rule("node-label", "zone=a", None),
                Value::Text("zone=a".into()),
                Compliance::Compliant,
            ),
            (
                rule("node-label", "zone=a", None),
                Value::Text("zone=b".into()),
                Compliance::Violation,
            ),
            (
                rule("cpu", "4", Some("2")),
                v("3", Unit::Cores),
                Compliance::Limit,
            ),
        ];
        for (rule, value, expected) in cases {
            assert_eq!(rule.judge(&value), expected, "{} {value}", rule.name);
        }
    }

    #[test]
    fn cost_is_zero_at_request_one_at_limit_linear_between() {
        let r = rule("latency", "5ms", Some("10ms"));
        let d = Unit::Duration;
        assert_eq!(r.cost(&v("1ms", d)), 0.0);
        assert_eq!(r.cost(&v("5ms", d)), 0.0);
        assert!((r.cost(&v("7.5ms", d)) - 0.5).abs() < 1e-12);
        assert!((r.cost(&v("10ms", d)) - 1.0).abs() < 1e-12);
        assert!((r.cost(&v("15ms", d)) - 2.0).abs() < 1e-12);
        let bw = rule("bandwidth", "1Gbps", Some("500Mbps"));
        assert!((bw.cost(&v("750Mbps", Unit::BitRate)) - 0.5).abs() < 1e-12);
        let hard = rule("bandwidth", "1Gbps", None);
        assert_eq!(hard.cost(&v("2Gbps", Unit::BitRate)), 0.0);
        assert_eq!(hard.cost(&v("900Mbps", Unit::BitRate)), 1.0);
    }

    #[test]
    fn bad_values_name_the_field() {
        let spec = ConstraintPolicyRule {
            name: "latency".into(),
            request: "5ms".into(),
            limit: Some("ten ms".into()),
        };
        let metric = builtin_metric("latency").map(|m| Rule::parse(&spec, m));
        let message = metric.and_then(|r| r.err()).map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.starts_with("limit: \"ten ms\" is not a duration")));
    }

    #[test]
    fn aggregation_is_worst_of_in_severity_order() {
        use Compliance::*;
        assert_eq!(worst([]), Pending);
        assert_eq!(worst([Compliant, Pending]), Compliant);
        assert_eq!(worst([Compliant, Limit]), Limit);
        assert_eq!(worst([Limit, Violation, Compliant]), Violation);
        assert_eq!(worst([Violation, Error]), Error);
        assert!(Pending < Compliant && Compliant < Limit && Limit < Violation && Violation < Error);
    }

    proptest! {
        /// Compliance and cost agree: Compliant iff cost 0, Limit iff 0 < cost <= 1,
        /// Violation iff cost > 1 (soft rules), in both directions.
        #[test]
        fn compliance_agrees_with_cost(request in 1.0f64..1000.0, spread in 1.0f64..1000.0, measured in 0.0f64..3000.0, lower in any::<bool>()) {
            let limit = if lower { request + spread } else { (request - spread).max(0.0) };
            prop_assume!(limit != request);
            let r = Rule {
                name: "x".into(),
                request: Value::quantity(Unit::Number, request),
                limit: Value::quantity(Unit::Number, limit),
                direction: if lower { Direction::LowerIsBetter } else { Direction::HigherIsBetter },
            };
            let m = Value::quantity(Unit::Number, measured);
            let cost = r.cost(&m);
            let expected = if cost == 0.0 { Compliance::Compliant } else if cost <= 1.0 + 1e-12 { Compliance::Limit } else { Compliance::Violation };
            let judged = r.judge(&m);
            // Right at the limit floating-point may land on either side; allow that.
            let at_limit = ((measured - limit).abs()) < 1e-9;
            prop_assert!(judged == expected || at_limit, "request {request} limit {limit} measured {measured}: {judged:?} vs cost {cost}");
        }
    }
}
