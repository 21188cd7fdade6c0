//! The built-in rules: compiled once from a policy rule, judged on a binding's targets,
//! and scored on candidate nodes.

use std::collections::BTreeMap;

use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetKind, TargetRef};

use super::view::{ClusterView, Unlocated};
use crate::network::{HopSource, Location, NodeId, PathMetric, PathMetrics, SiteId};
use crate::rules::{Rule, builtin, builtin_metric};
use crate::status::RuleOutcome;
use crate::values::{Unit, Value};

/// The label prefix node-feature-discovery puts on the features it finds.
pub const NFD_LABEL_PREFIX: &str = "feature.node.kubernetes.io/";

/// Why a rule cannot be used at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("no provider for rule {0}")]
    NoProvider(String),
    /// `field` is `request` or `limit`.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// What a built-in rule checks.
#[derive(Clone, Debug, PartialEq)]
enum Check {
    Path(PathMetric),
    Cpu,
    Memory,
    /// The label `key` must equal `value`.
    Label {
        key: String,
        value: String,
    },
    /// The feature label `key` (absent reads `false`) must equal `value`; `feature` is how
    /// the rule named it.
    Feature {
        key: String,
        feature: String,
        value: String,
    },
}

/// A built-in rule, parsed once and evaluated many times.
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltinRule {
    rule: Rule,
    check: Check,
}

/// The cost of placing a target on a node for one rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Score {
    /// Normalized cost: 0 at the request or better, 1 at the limit.
    Feasible(f64),
    /// The rule would be in Violation there, or cannot be judged.
    Infeasible,
}

/// One judged measurement: the value, its compliance and cost, and where it was taken.
#[derive(Clone, Debug)]
struct Judged {
    compliance: Compliance,
    cost: f64,
    value: Option<String>,
    reason: String,
}

impl BuiltinRule {
    /// Parses a policy rule for its built-in provider.
    pub fn compile(spec: &ConstraintPolicyRule) -> Result<BuiltinRule, CompileError> {
        let metric = builtin_metric(&spec.name)
            .ok_or_else(|| CompileError::NoProvider(spec.name.clone()))?;
        let rule = Rule::parse(spec, metric).map_err(|e| CompileError::Invalid {
            field: e.field,
            message: e.source.to_string(),
        })?;
        let yes_no_limit = |what: &str| match &spec.limit {
            Some(limit) if limit.trim() != spec.request.trim() => Err(CompileError::Invalid {
                field: "limit",
                message: format!("{} is met or not: it takes no limit", what),
            }),
            _ => Ok(()),
        };
        let check = match spec.name.as_str() {
            builtin::CPU => Check::Cpu,
            builtin::MEMORY => Check::Memory,
            builtin::NODE_LABEL => {
                yes_no_limit(builtin::NODE_LABEL)?;
                let (key, value) = spec
                    .request
                    .trim()
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .ok_or_else(|| CompileError::Invalid {
                        field: "request",
                        message: format!(
                            "{:?} is not a label requirement (expected key=value, for example topology.kubernetes.io/region=metro)",
                            spec.request
                        ),
                    })?;
                Check::Label {
                    key: key.trim().to_string(),
                    value: value.trim().to_string(),
                }
            }
            builtin::NODE_FEATURE => {
                yes_no_limit(builtin::NODE_FEATURE)?;
                let text = spec.request.trim();
                let (feature, value) = match text.split_once('=') {
                    Some((f, v)) => (f.trim(), v.trim()),
                    None => (text, "true"),
                };
                if feature.is_empty() || value.is_empty() || feature.contains(char::is_whitespace) {
                    return Err(CompileError::Invalid {
                        field: "request",
                        message: format!(
                            "{:?} is not a node feature (expected a node-feature-discovery feature such as cpu-cpuid.AVX512F, or cpu-cpuid.AVX512F=false)",
                            spec.request
                        ),
                    });
                }
                let key = if feature.contains('/') {
                    feature.to_string()
                } else {
                    format!("{NFD_LABEL_PREFIX}{feature}")
                };
                Check::Feature {
                    key,
                    feature: feature.to_string(),
                    value: value.to_string(),
                }
            }
            other => match PathMetric::for_rule(other) {
                Some(m) => Check::Path(m),
                None => return Err(CompileError::NoProvider(spec.name.clone())),
            },
        };
        Ok(BuiltinRule { rule, check })
    }

    pub fn name(&self) -> &str {
        &self.rule.name
    }

    /// Whether the rule is judged between pairs of targets.
    pub fn is_pairwise(&self) -> bool {
        matches!(self.check, Check::Path(_))
    }

    /// Evaluates the rule for a binding's targets (role -> object).
    pub fn evaluate(
        &self,
        view: &ClusterView,
        targets: &BTreeMap<String, TargetRef>,
    ) -> RuleOutcome {
        match self.evaluate_until(view, targets, &|| false) {
            Ok(outcome) => outcome,
            Err(Interrupted) => unreachable_outcome(self.name()),
        }
    }

    /// [`BuiltinRule::evaluate`] that gives up as soon as `interrupted` says so (a server
    /// whose caller has gone or whose deadline has passed). The work is linear in the
    /// targets plus quadratic in the distinct *locations* they are at (bounded by the
    /// nodes and sites of the topology), not quadratic in the targets.
    pub fn evaluate_until(
        &self,
        view: &ClusterView,
        targets: &BTreeMap<String, TargetRef>,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<RuleOutcome, Interrupted> {
        let name = self.name();
        let outcome = |compliance, value: Option<String>, reason: String| RuleOutcome {
            rule: name.to_string(),
            compliance,
            value,
            reason: Some(reason),
        };
        let located: Vec<(&str, &TargetRef, Result<Location, Unlocated>)> = targets
            .iter()
            .filter(|(_, t)| self.is_pairwise() || t.kind == TargetKind::Pod)
            .map(|(role, t)| (role.as_str(), t, view.locate(t)))
            .collect();
        if self.is_pairwise() && located.len() < 2 {
            return Ok(outcome(
                Compliance::Error,
                None,
                format!(
                    "{name} is judged between two targets, and the binding has {}",
                    located.len()
                ),
            ));
        }
        if !self.is_pairwise() && located.is_empty() {
            return Ok(outcome(
                Compliance::Error,
                None,
                format!("{name} is judged on the node of a Pod target, and the binding has none"),
            ));
        }
        if interrupted() {
            return Err(Interrupted);
        }
        // Errors first (they need a fix), then targets that are not placed yet.
        let mut pending = None;
        for (role, target, location) in &located {
            let Err(why) = location else { continue };
            let (compliance, reason) = match why {
                Unlocated::NotPlaced => (
                    Compliance::Pending,
                    format!("{role} ({target}) is not placed yet"),
                ),
                Unlocated::NoSuchPod => (
                    Compliance::Pending,
                    format!("{role} ({target}) does not exist"),
                ),
                Unlocated::UnknownNode(node) => (
                    Compliance::Error,
                    format!("{role} ({target}) runs on node {node:?}, which is not known"),
                ),
                Unlocated::UnknownSite => (
                    Compliance::Error,
                    format!(
                        "{role}: site {:?} is not in the network topology",
                        target.name
                    ),
                ),
                Unlocated::UnsupportedKind(kind) => (
                    Compliance::Error,
                    format!("{role}: {kind} targets have no location yet"),
                ),
            };
            if compliance == Compliance::Error {
                return Ok(outcome(compliance, None, reason));
            }
            pending.get_or_insert(reason);
        }
        if let Some(reason) = pending {
            return Ok(outcome(Compliance::Pending, None, reason));
        }
        let places: Vec<(&str, Location)> = located
            .iter()
            .filter_map(|(role, _, l)| l.as_ref().ok().map(|l| (*role, *l)))
            .collect();
        let mut worst: Option<Judged> = None;
        let beats = |worst: &Option<Judged>, compliance: Compliance, cost: f64| {
            worst
                .as_ref()
                .is_none_or(|w| (compliance, cost) > (w.compliance, w.cost))
        };
        match &self.check {
            Check::Path(metric) => {
                for (count, (i, j)) in representative_pairs(&places).into_iter().enumerate() {
                    if count % INTERRUPT_EVERY == 0 && interrupted() {
                        return Err(Interrupted);
                    }
                    let ((role_a, a), (role_b, b)) = (places[i], places[j]);
                    let (there, there_by) = self.path_between(view, *metric, a, b);
                    let (back, back_by) = self.path_between(view, *metric, b, a);
                    let symmetric =
                        there.map(|m| m.value(*metric)) == back.map(|m| m.value(*metric));
                    let directions = if symmetric {
                        [Some((there, true)), None]
                    } else {
                        [Some((there, true)), Some((back, false))]
                    };
                    for (path, forward) in directions.into_iter().flatten() {
                        // Only a pair that would become the worst has its reason written:
                        // formatting every pair was most of the work.
                        let (compliance, cost) = self.rank_path(*metric, path);
                        if !beats(&worst, compliance, cost) {
                            continue;
                        }
                        let place =
                            |role: &str, l: Location| format!("{role} ({})", view.location_name(l));
                        let (pa, pb) = (place(role_a, a), place(role_b, b));
                        let mut where_ = match (symmetric, forward) {
                            (true, _) => format!("between {pa} and {pb}"),
                            (false, true) => format!("from {pa} to {pb}"),
                            (false, false) => format!("from {pb} to {pa}"),
                        };
                        if let Some((x, y)) = if forward { there_by } else { back_by } {
                            let g = view.graph();
                            where_ = format!(
                                "{where_} (its fair share of the link {} -> {}, whose reservations exceed its capacity)",
                                g.site_name(x),
                                g.site_name(y)
                            );
                        }
                        let mut judged = self.judge_path(*metric, path, &where_);
                        let (from, to) = if forward { (a, b) } else { (b, a) };
                        judged.reason += &measured_note(view, *metric, from, to);
                        worst = Some(judged);
                    }
                }
            }
            _ => {
                for (count, (role, location)) in places.iter().enumerate() {
                    if count % INTERRUPT_EVERY == 0 && interrupted() {
                        return Err(Interrupted);
                    }
                    if let Location::Node(node) = location {
                        let place = format!("on {role} ({})", view.graph().node_name(*node));
                        let judged = self.judge_node(view, *node, &place);
                        if beats(&worst, judged.compliance, judged.cost) {
                            worst = Some(judged);
                        }
                    }
                }
            }
        }
        Ok(match worst {
            Some(j) => outcome(j.compliance, j.value, j.reason),
            None => outcome(
                Compliance::Pending,
                None,
                format!("{name}: nothing to judge"),
            ),
        })
    }

    /// The path's metrics from `a` to `b`; for bandwidth, what this rule's request gets
    /// given the reservations of the view, and the over-subscribed link that limits it.
    fn path_between(
        &self,
        view: &ClusterView,
        metric: PathMetric,
        a: Location,
        b: Location,
    ) -> (Option<PathMetrics>, Option<(SiteId, SiteId)>) {
        if metric != PathMetric::Bandwidth {
            return (view.graph().metrics(a, b), None);
        }
        let request = self.rule.request.magnitude().unwrap_or(f64::INFINITY);
        match view.shared_metrics(a, b, request) {
            Some((path, by)) => (Some(path), by),
            None => (None, None),
        }
    }

    /// The compliance and cost [`BuiltinRule::judge_path`] gives a path, without its
    /// reason.
    fn rank_path(&self, metric: PathMetric, path: Option<PathMetrics>) -> (Compliance, f64) {
        match path {
            None => (Compliance::Violation, f64::INFINITY),
            Some(path) => {
                let value = path.value(metric);
                (self.rule.judge(&value), self.rule.cost(&value))
            }
        }
    }

    /// Judges one path's metric (`None`: no path).
    fn judge_path(&self, metric: PathMetric, path: Option<PathMetrics>, place: &str) -> Judged {
        let Some(path) = path else {
            return Judged {
                compliance: Compliance::Violation,
                cost: f64::INFINITY,
                value: None,
                reason: format!("{}: no path {place}", self.name()),
            };
        };
        let value = path.value(metric);
        let text = if metric == PathMetric::Bandwidth && path.bandwidth_bps.is_infinite() {
            "unlimited".to_string()
        } else {
            value.to_string()
        };
        let compliance = self.rule.judge(&value);
        Judged {
            compliance,
            cost: self.rule.cost(&value),
            reason: explain(&self.rule, &text, place, compliance),
            value: Some(text),
        }
    }

    /// Judges a node rule on one node.
    fn judge_node(&self, view: &ClusterView, node: NodeId, place: &str) -> Judged {
        let name = self.name();
        let facts = view.facts(node).cloned().unwrap_or_default();
        let quantity = |measured: Option<f64>, unit: Unit, what: &str| match measured {
            Some(m) => {
                let value = Value::quantity(unit, m);
                let compliance = self.rule.judge(&value);
                Judged {
                    compliance,
                    cost: self.rule.cost(&value),
                    reason: explain(&self.rule, &value.to_string(), place, compliance),
                    value: Some(value.to_string()),
                }
            }
            None => Judged {
                compliance: Compliance::Pending,
                cost: 0.0,
                value: None,
                reason: format!("{name}: the node {place} reports no allocatable {what}"),
            },
        };
        match &self.check {
            Check::Cpu => quantity(facts.cpu, Unit::Cores, "cpu"),
            Check::Memory => quantity(facts.memory, Unit::Bytes, "memory"),
            Check::Label { key, value } => {
                let actual = facts.labels.get(key);
                let ok = actual == Some(value);
                let measured = match actual {
                    Some(v) => format!("{key}={v}"),
                    None => format!("{key} unset"),
                };
                yes_no(name, ok, measured, &format!("{key}={value}"), place)
            }
            Check::Feature {
                key,
                feature,
                value,
            } => {
                let actual = facts.labels.get(key).map(String::as_str).unwrap_or("false");
                let is_bool =
                    |s: &str| s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false");
                let ok = if is_bool(actual) && is_bool(value) {
                    actual.eq_ignore_ascii_case(value)
                } else {
                    actual == value
                };
                yes_no(
                    name,
                    ok,
                    format!("{feature}={actual}"),
                    &format!("{feature}={value}"),
                    place,
                )
            }
            Check::Path(_) => Judged {
                compliance: Compliance::Error,
                cost: f64::INFINITY,
                value: None,
                reason: format!("{name} is not a node rule"),
            },
        }
    }

    /// The cost of running a target on `node` given where its peers are: for pairwise
    /// rules the worst over the peers (both directions; no peers costs 0), for node rules
    /// the node's own. Violation, no path, or nothing to measure is infeasible.
    pub fn score(&self, view: &ClusterView, node: NodeId, peers: &[Location]) -> Score {
        let here = Location::Node(node);
        let mut worst = 0.0f64;
        match &self.check {
            Check::Path(metric) => {
                for peer in peers {
                    for path in [
                        self.path_between(view, *metric, here, *peer).0,
                        self.path_between(view, *metric, *peer, here).0,
                    ] {
                        let Some(path) = path else {
                            return Score::Infeasible;
                        };
                        let value = path.value(*metric);
                        if self.rule.judge(&value) == Compliance::Violation {
                            return Score::Infeasible;
                        }
                        worst = worst.max(self.rule.cost(&value));
                    }
                }
            }
            _ => {
                if node.index() >= view.graph().node_count() {
                    return Score::Infeasible;
                }
                let judged = self.judge_node(view, node, "");
                if matches!(
                    judged.compliance,
                    Compliance::Violation | Compliance::Pending | Compliance::Error
                ) {
                    return Score::Infeasible;
                }
                worst = judged.cost;
            }
        }
        Score::Feasible(worst)
    }
}

/// The evaluation was given up because its caller no longer wants the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the evaluation was interrupted")]
pub struct Interrupted;

/// How many pairs are judged between two looks at the interruption flag.
const INTERRUPT_EVERY: usize = 256;

fn unreachable_outcome(name: &str) -> RuleOutcome {
    // `evaluate` passes a flag that is never raised; answer Error rather than panic should
    // that ever change.
    RuleOutcome {
        rule: name.to_string(),
        compliance: Compliance::Error,
        value: None,
        reason: Some(format!("{name}: the evaluation was interrupted")),
    }
}

/// The pairs `(i, j)`, `i < j`, of `places` that stand for every pair of targets: two
/// targets at the same locations as an earlier pair measure the same path, so only the
/// first pair of each pair of locations (and of each location with two targets) is judged.
/// In the order of the full double loop, so the worst pair found, and the roles its reason
/// names, are those the full loop finds. Linear in `places` plus the square of the number
/// of distinct locations.
pub(super) fn representative_pairs(places: &[(&str, Location)]) -> Vec<(usize, usize)> {
    // location -> (first index, second index)
    let mut seen: std::collections::HashMap<Location, (usize, Option<usize>)> =
        std::collections::HashMap::new();
    let mut firsts = Vec::new();
    for (index, (_, location)) in places.iter().enumerate() {
        match seen.get_mut(location) {
            Some((_, second @ None)) => *second = Some(index),
            Some(_) => {}
            None => {
                seen.insert(*location, (index, None));
                firsts.push(index);
            }
        }
    }
    let mut pairs = Vec::new();
    for (k, &i) in firsts.iter().enumerate() {
        for &j in &firsts[k + 1..] {
            pairs.push((i, j));
        }
    }
    pairs.extend(
        seen.values()
            .filter_map(|(first, second)| second.map(|s| (*first, s))),
    );
    pairs.sort_unstable();
    pairs
}

/// What the path's `metric` rests on, for a topology that uses measurement: `; measured
/// metro -> edge-1 at 2026-12-07T10:00:00Z` for the hops a fresh measurement set, `; spec
/// for edge-1 -> far (measurement stale since 2026-12-07T10:05:00Z), far -> x (not
/// measured)` for those whose figure is the spec's, both when the path mixes them. Empty
/// when the topology has no measurement (every figure is the spec's) or the path has no
/// hop (one site).
fn measured_note(view: &ClusterView, metric: PathMetric, a: Location, b: Location) -> String {
    let g = view.graph();
    let hops = g.hop_sources(a, b, metric);
    let mut measured = Vec::new();
    let mut spec = Vec::new();
    for (x, y, source) in hops {
        let hop = format!("{} -> {}", g.site_name(x), g.site_name(y));
        match source {
            HopSource::Measured(t) => measured.push(format!("{hop} at {t}")),
            HopSource::Stale(t) => spec.push(format!("{hop} (measurement stale since {t})")),
            HopSource::NotMeasured => spec.push(format!("{hop} (not measured)")),
        }
    }
    let mut note = String::new();
    if !measured.is_empty() {
        note += &format!("; measured {}", measured.join(", "));
    }
    if !spec.is_empty() {
        note += &format!("; spec for {}", spec.join(", "));
    }
    note
}

fn yes_no(name: &str, ok: bool, measured: String, required: &str, place: &str) -> Judged {
    let (compliance, cost, reason) = if ok {
        (
            Compliance::Compliant,
            0.0,
            format!("{name} {measured} {place} meets the request {required}"),
        )
    } else {
        (
            Compliance::Violation,
            1.0,
            format!("{name} {measured} {place} does not meet the required {required}"),
        )
    };
    Judged {
        compliance,
        cost,
        value: Some(measured),
        reason: reason.replace("  ", " "),
    }
}

/// `latency 12ms between a (x) and b (y) is worse than the limit 10ms`.
fn explain(rule: &Rule, measured: &str, place: &str, compliance: Compliance) -> String {
    let name = &rule.name;
    let text = match compliance {
        Compliance::Compliant => format!(
            "{name} {measured} {place} meets the request {}",
            rule.request
        ),
        Compliance::Limit => format!(
            "{name} {measured} {place} is worse than the request {} but within the limit {}",
            rule.request, rule.limit
        ),
        Compliance::Violation if rule.is_hard() => format!(
            "{name} {measured} {place} does not meet the required {}",
            rule.request
        ),
        Compliance::Violation => format!(
            "{name} {measured} {place} is worse than the limit {}",
            rule.limit
        ),
        Compliance::Pending => format!("{name} is not measured yet"),
        Compliance::Error => format!("{name} could not be evaluated"),
    };
    text.replace("  ", " ")
}

/// Evaluates one rule of a policy for a binding's targets with the built-in providers:
/// Error with `no provider for rule X` when the name has none, Error naming the field when
/// a value does not parse.
pub fn evaluate_rule(
    view: &ClusterView,
    targets: &BTreeMap<String, TargetRef>,
    rule: &ConstraintPolicyRule,
) -> RuleOutcome {
    match evaluate_rule_until(view, targets, rule, &|| false) {
        Ok(outcome) => outcome,
        Err(Interrupted) => unreachable_outcome(&rule.name),
    }
}

/// [`evaluate_rule`] that gives up as soon as `interrupted` says so.
pub fn evaluate_rule_until(
    view: &ClusterView,
    targets: &BTreeMap<String, TargetRef>,
    rule: &ConstraintPolicyRule,
    interrupted: &dyn Fn() -> bool,
) -> Result<RuleOutcome, Interrupted> {
    match BuiltinRule::compile(rule) {
        Ok(compiled) => compiled.evaluate_until(view, targets, interrupted),
        Err(e) => Ok(RuleOutcome {
            rule: rule.name.clone(),
            compliance: Compliance::Error,
            value: None,
            reason: Some(e.to_string()),
        }),
    }
}

/// Checks a policy rule's syntax for its built-in provider beyond its unit (label
/// requirements, features, limits of yes/no rules). Rules of external providers pass.
pub fn check_rule(rule: &ConstraintPolicyRule) -> Result<(), CompileError> {
    match BuiltinRule::compile(rule) {
        Ok(_) | Err(CompileError::NoProvider(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
