//! Evaluation of the built-in rules, and scoring of candidate nodes, from a view of the
//! cluster: the network graph, what each node offers, and where each pod runs.
//!
//! - **Pairwise rules** (latency, jitter, bandwidth, packet-loss) are judged on every pair
//!   of targets of a binding, in both directions; the worst (by compliance, then by cost)
//!   decides and its reason names the pair: `latency 12ms between renderer (edge-3-a) and
//!   users (stadium) is worse than the limit 10ms`. A pair with no path is in Violation
//!   with the reason `no path ...`.
//! - **Node rules** (cpu, memory, node-label, node-feature) are judged on the node of every
//!   Pod target (usually the one target of the binding); the worst decides. `cpu` and
//!   `memory` read the node's allocatable; `node-label` takes `key=value` and needs the
//!   node's label `key` to equal `value`; `node-feature` takes a node-feature-discovery
//!   feature, `cpu-cpuid.AVX512F` (meaning `=true`) or `cpu-cpuid.AVX512F=false`, read from
//!   the label `feature.node.kubernetes.io/<feature>` (a key containing `/` is used as
//!   it is); an absent label reads as `false`.
//! - A target that is not placed yet, or a pod that does not exist, makes the rule
//!   Pending; a site or node that is not known makes it Error; so does a rule name without
//!   a built-in provider (`no provider for rule X`).

use std::collections::{BTreeMap, HashMap};

use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{Compliance, ConstraintPolicyRule, NetworkTopology, TargetKind, TargetRef};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::network::{
    Location, NetworkGraph, NodeId, NodeInfo, PathMetric, PathMetrics, TopologyError,
};
use crate::rules::{Rule, builtin, builtin_metric};
use crate::status::RuleOutcome;
use crate::values::{Unit, Value};

/// The label prefix node-feature-discovery puts on the features it finds.
pub const NFD_LABEL_PREFIX: &str = "feature.node.kubernetes.io/";

/// What node rules read from a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFacts {
    /// Allocatable CPU in cores, when the node reports it.
    pub cpu: Option<f64>,
    /// Allocatable memory in bytes, when the node reports it.
    pub memory: Option<f64>,
    pub labels: BTreeMap<String, String>,
}

impl NodeFacts {
    pub fn from_node(node: &Node) -> NodeFacts {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let read = |name: &str, unit| {
            allocatable
                .and_then(|a| a.get(name))
                .and_then(|q| Value::parse(&q.0, unit).ok())
                .and_then(|v| v.magnitude())
        };
        NodeFacts {
            cpu: read("cpu", Unit::Cores),
            memory: read("memory", Unit::Bytes),
            labels: node.metadata.labels.clone().unwrap_or_default(),
        }
    }
}

/// Where a pod is, as far as the view knows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Placement {
    On(NodeId),
    /// `spec.nodeName` names a node the view does not have.
    UnknownNode(String),
    Unplaced,
}

/// Everything evaluation needs: the network graph, node facts by [`NodeId`], and where
/// every pod runs. Controllers build one from their caches, offline commands from
/// manifests; nothing here reads files or the API.
#[derive(Clone, Debug)]
pub struct ClusterView {
    graph: NetworkGraph,
    facts: Vec<NodeFacts>,
    pods: HashMap<(String, String), Placement>,
}

/// Why a target has no location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unlocated {
    /// A pod without `spec.nodeName` (Pending).
    NotPlaced,
    /// A pod the view does not have (Pending: it may not be created yet).
    NoSuchPod,
    /// A pod on a node the view does not have (Error).
    UnknownNode(String),
    /// A site the topology does not have (Error).
    UnknownSite,
    /// A kind that has no location (Error).
    UnsupportedKind(TargetKind),
}

impl ClusterView {
    /// Builds the graph from a topology and Node objects (nodes without a name are
    /// skipped) and records where each pod runs.
    pub fn build(
        topology: Option<&NetworkTopology>,
        nodes: &[Node],
        pods: &[Pod],
        now: Timestamp,
    ) -> Result<ClusterView, TopologyError> {
        let named: Vec<&Node> = nodes.iter().filter(|n| n.metadata.name.is_some()).collect();
        let infos: Vec<NodeInfo> = named
            .iter()
            .filter_map(|n| NodeInfo::from_node(n))
            .collect();
        let graph = NetworkGraph::build(topology, &infos, now)?;
        let facts = named.iter().map(|n| NodeFacts::from_node(n)).collect();
        let mut view = ClusterView {
            graph,
            facts,
            pods: HashMap::new(),
        };
        for pod in pods {
            if let Some(name) = &pod.metadata.name {
                let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
                let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
                view.place(namespace, name, node);
            }
        }
        Ok(view)
    }

    /// A view of a graph and its nodes' facts (`facts[i]` belongs to `NodeId(i)`), with no
    /// pods yet.
    pub fn from_parts(graph: NetworkGraph, mut facts: Vec<NodeFacts>) -> ClusterView {
        facts.resize(graph.node_count(), NodeFacts::default());
        ClusterView {
            graph,
            facts,
            pods: HashMap::new(),
        }
    }

    /// Records that a pod runs on `node` (or is not placed, with `None`).
    pub fn place(&mut self, namespace: &str, pod: &str, node: Option<&str>) {
        let placement = match node {
            None | Some("") => Placement::Unplaced,
            Some(node) => match self.graph.node_id(node) {
                Some(id) => Placement::On(id),
                None => Placement::UnknownNode(node.to_string()),
            },
        };
        self.pods
            .insert((namespace.to_string(), pod.to_string()), placement);
    }

    pub fn graph(&self) -> &NetworkGraph {
        &self.graph
    }

    pub fn facts(&self, node: NodeId) -> Option<&NodeFacts> {
        self.facts.get(node.index())
    }

    /// The node a pod runs on.
    pub fn node_of(&self, namespace: &str, pod: &str) -> Option<NodeId> {
        match self.pods.get(&(namespace.to_string(), pod.to_string())) {
            Some(Placement::On(id)) => Some(*id),
            _ => None,
        }
    }

    /// Where a binding's target is: the node of a pod, or a site.
    pub fn locate(&self, target: &TargetRef) -> Result<Location, Unlocated> {
        match target.kind {
            TargetKind::Pod => {
                let namespace = target.namespace.as_deref().unwrap_or("default");
                match self.pods.get(&(namespace.to_string(), target.name.clone())) {
                    Some(Placement::On(id)) => Ok(Location::Node(*id)),
                    Some(Placement::UnknownNode(n)) => Err(Unlocated::UnknownNode(n.clone())),
                    Some(Placement::Unplaced) => Err(Unlocated::NotPlaced),
                    None => Err(Unlocated::NoSuchPod),
                }
            }
            TargetKind::Site => self
                .graph
                .site_id(&target.name)
                .map(Location::Site)
                .ok_or(Unlocated::UnknownSite),
            kind => Err(Unlocated::UnsupportedKind(kind)),
        }
    }

    /// `edge-3-a` for a node, `stadium` for a site.
    pub fn location_name(&self, location: Location) -> &str {
        match location {
            Location::Node(n) => self.graph.node_name(n),
            Location::Site(s) => self.graph.site_name(s),
        }
    }
}

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
            return outcome(
                Compliance::Error,
                None,
                format!(
                    "{name} is judged between two targets, and the binding has {}",
                    located.len()
                ),
            );
        }
        if !self.is_pairwise() && located.is_empty() {
            return outcome(
                Compliance::Error,
                None,
                format!("{name} is judged on the node of a Pod target, and the binding has none"),
            );
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
                return outcome(compliance, None, reason);
            }
            pending.get_or_insert(reason);
        }
        if let Some(reason) = pending {
            return outcome(Compliance::Pending, None, reason);
        }
        let places: Vec<(&str, Location)> = located
            .iter()
            .filter_map(|(role, _, l)| l.as_ref().ok().map(|l| (*role, *l)))
            .collect();
        let mut worst: Option<Judged> = None;
        let mut consider = |judged: Judged| {
            let replace = worst
                .as_ref()
                .is_none_or(|w| (judged.compliance, judged.cost) > (w.compliance, w.cost));
            if replace {
                worst = Some(judged);
            }
        };
        match &self.check {
            Check::Path(metric) => {
                for (i, (role_a, a)) in places.iter().enumerate() {
                    for (role_b, b) in &places[i + 1..] {
                        let place =
                            |role: &str, l: Location| format!("{role} ({})", view.location_name(l));
                        let (pa, pb) = (place(role_a, *a), place(role_b, *b));
                        let there = view.graph().metrics(*a, *b);
                        let back = view.graph().metrics(*b, *a);
                        let symmetric =
                            there.map(|m| m.value(*metric)) == back.map(|m| m.value(*metric));
                        if symmetric {
                            consider(self.judge_path(
                                *metric,
                                there,
                                &format!("between {pa} and {pb}"),
                            ));
                        } else {
                            consider(self.judge_path(
                                *metric,
                                there,
                                &format!("from {pa} to {pb}"),
                            ));
                            consider(self.judge_path(*metric, back, &format!("from {pb} to {pa}")));
                        }
                    }
                }
            }
            _ => {
                for (role, location) in &places {
                    if let Location::Node(node) = location {
                        let place = format!("on {role} ({})", view.graph().node_name(*node));
                        consider(self.judge_node(view, *node, &place));
                    }
                }
            }
        }
        match worst {
            Some(j) => outcome(j.compliance, j.value, j.reason),
            None => outcome(
                Compliance::Pending,
                None,
                format!("{name}: nothing to judge"),
            ),
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
                        view.graph().metrics(here, *peer),
                        view.graph().metrics(*peer, here),
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
    match BuiltinRule::compile(rule) {
        Ok(compiled) => compiled.evaluate(view, targets),
        Err(e) => RuleOutcome {
            rule: rule.name.clone(),
            compliance: Compliance::Error,
            value: None,
            reason: Some(e.to_string()),
        },
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

/// The site label of a topology, or the default one.
pub fn site_label(topology: Option<&NetworkTopology>) -> &str {
    topology
        .map(|t| t.spec.site_label.as_str())
        .unwrap_or(DEFAULT_SITE_LABEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{Object, decode, parse_documents};
    use crate::snapshot::Snapshot;

    /// edge-1 (nodes e1a, e1b) -- 3ms -- metro (node m1); stadium -- 2ms -- edge-1;
    /// campus -> edge-1 one-way; far has no link. Pods in namespace ar.
    const WORLD: &str = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites:
  - {name: stadium, labels: {kind: users}}
  - {name: campus, labels: {kind: users}}
  - {name: far}
  links:
  - {from: stadium, to: edge-1, latency: 2ms, jitter: 500us, bandwidth: 1Gbps, loss: "0.1%"}
  - {from: edge-1, to: metro, latency: 3ms, jitter: 1ms, bandwidth: 10Gbps}
  - {from: campus, to: edge-1, latency: 1ms, oneWay: true}
---
apiVersion: v1
kind: Node
metadata:
  name: e1a
  labels: {topology.kubernetes.io/zone: edge-1, tier: edge, feature.node.kubernetes.io/cpu-cpuid.AVX512F: "true"}
status: {allocatable: {cpu: "16", memory: 64Gi}}
---
apiVersion: v1
kind: Node
metadata:
  name: e1b
  labels: {topology.kubernetes.io/zone: edge-1}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Node
metadata:
  name: m1
  labels: {topology.kubernetes.io/zone: metro}
---
{apiVersion: v1, kind: Pod, metadata: {name: r0, namespace: ar}, spec: {nodeName: e1a, containers: []}}
---
{apiVersion: v1, kind: Pod, metadata: {name: r1, namespace: ar}, spec: {nodeName: m1, containers: []}}
---
{apiVersion: v1, kind: Pod, metadata: {name: g0, namespace: ar}, spec: {nodeName: e1b, containers: []}}
---
{apiVersion: v1, kind: Pod, metadata: {name: waiting, namespace: ar}, spec: {containers: []}}
---
{apiVersion: v1, kind: Pod, metadata: {name: lost, namespace: ar}, spec: {nodeName: ghost, containers: []}}
"#;

    fn view() -> ClusterView {
        let docs = parse_documents("world.yaml", WORLD).unwrap_or_default();
        let objects: Vec<Object> = docs.iter().filter_map(|d| decode(d).ok()).collect();
        assert_eq!(objects.len(), 9);
        let s = Snapshot::from_objects(objects);
        match ClusterView::build(s.topology(), &s.nodes, &s.pods, Timestamp::UNIX_EPOCH) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    fn pod(name: &str) -> TargetRef {
        TargetRef::pod("ar", name)
    }

    fn site(name: &str) -> TargetRef {
        TargetRef::site(name)
    }

    fn targets(list: &[(&str, TargetRef)]) -> BTreeMap<String, TargetRef> {
        list.iter()
            .map(|(r, t)| (r.to_string(), t.clone()))
            .collect()
    }

    fn rule(name: &str, request: &str, limit: Option<&str>) -> ConstraintPolicyRule {
        ConstraintPolicyRule {
            name: name.into(),
            request: request.into(),
            limit: limit.map(Into::into),
        }
    }

    /// (compliance, value, reason) of one evaluation.
    fn eval(
        rule: &ConstraintPolicyRule,
        list: &[(&str, TargetRef)],
    ) -> (Compliance, Option<String>, String) {
        let o = evaluate_rule(&view(), &targets(list), rule);
        assert_eq!(o.rule, rule.name);
        (o.compliance, o.value, o.reason.unwrap_or_default())
    }

    #[test]
    fn pairwise_latency_between_a_pod_and_the_users_of_a_site() {
        let latency = rule("latency", "3ms", Some("5ms"));
        assert_eq!(
            eval(
                &latency,
                &[("renderer", pod("r0")), ("users", site("stadium"))]
            ),
            (
                Compliance::Compliant,
                Some("2ms".into()),
                "latency 2ms between renderer (e1a) and users (stadium) meets the request 3ms"
                    .into()
            )
        );
        // metro -> edge-1 -> stadium: 3ms + 2ms.
        assert_eq!(
            eval(&latency, &[("renderer", pod("r1")), ("users", site("stadium"))]),
            (
                Compliance::Limit,
                Some("5ms".into()),
                "latency 5ms between renderer (m1) and users (stadium) is worse than the request 3ms but within the limit 5ms".into()
            )
        );
        let strict = rule("latency", "1ms", Some("4ms"));
        assert_eq!(
            eval(
                &strict,
                &[("renderer", pod("r1")), ("users", site("stadium"))]
            )
            .2,
            "latency 5ms between renderer (m1) and users (stadium) is worse than the limit 4ms"
        );
        assert_eq!(
            eval(
                &strict,
                &[("renderer", pod("r1")), ("users", site("stadium"))]
            )
            .0,
            Compliance::Violation
        );
        // Two pods of one site: intraSite (200us by default).
        assert_eq!(
            eval(&latency, &[("a", pod("r0")), ("b", pod("g0"))]).1,
            Some("200us".into())
        );
    }

    #[test]
    fn the_worst_pair_decides_and_is_named() {
        let latency = rule("latency", "3ms", Some("5ms"));
        // r1-g0 3ms, r1-stadium 5ms, g0-stadium 2ms.
        let (c, v, reason) = eval(
            &latency,
            &[
                ("game", pod("g0")),
                ("renderer", pod("r1")),
                ("users", site("stadium")),
            ],
        );
        assert_eq!((c, v.as_deref()), (Compliance::Limit, Some("5ms")));
        assert!(reason.starts_with("latency 5ms between renderer (m1) and users (stadium)"));
    }

    #[test]
    fn jitter_bandwidth_and_loss_along_the_path() {
        let pair = [("renderer", pod("r1")), ("users", site("stadium"))];
        let (c, v, _) = eval(&rule("jitter", "1ms", Some("2ms")), &pair);
        assert_eq!((c, v.as_deref()), (Compliance::Limit, Some("1.5ms")));
        let (c, v, reason) = eval(&rule("bandwidth", "1Gbps", Some("100Mbps")), &pair);
        assert_eq!((c, v.as_deref()), (Compliance::Compliant, Some("1Gbps")));
        assert!(reason.contains("meets the request 1Gbps"), "{reason}");
        let (c, v, _) = eval(&rule("packet-loss", "0.01%", Some("0.5%")), &pair);
        assert_eq!((c, v.as_deref()), (Compliance::Limit, Some("0.1%")));
        let (c, v, reason) = eval(&rule("packet-loss", "0.01%", None), &pair);
        assert_eq!((c, v.as_deref()), (Compliance::Violation, Some("0.1%")));
        assert!(
            reason.ends_with("does not meet the required 0.01%"),
            "{reason}"
        );
    }

    #[test]
    fn no_path_is_a_violation_naming_the_pair_and_direction() {
        let latency = rule("latency", "3ms", Some("5ms"));
        assert_eq!(
            eval(&latency, &[("renderer", pod("r0")), ("users", site("far"))]),
            (
                Compliance::Violation,
                None,
                "latency: no path between renderer (e1a) and users (far)".into()
            )
        );
        // campus reaches edge-1 over a one-way link; nothing leads back.
        assert_eq!(
            eval(
                &latency,
                &[("renderer", pod("r0")), ("users", site("campus"))]
            )
            .2,
            "latency: no path from renderer (e1a) to users (campus)"
        );
    }

    #[test]
    fn unplaced_missing_and_unknown_targets() {
        let latency = rule("latency", "3ms", Some("5ms"));
        let (c, _, reason) = eval(
            &latency,
            &[("a", pod("waiting")), ("users", site("stadium"))],
        );
        assert_eq!(c, Compliance::Pending);
        assert_eq!(reason, "a (Pod ar/waiting) is not placed yet");
        let (c, _, reason) = eval(&latency, &[("a", pod("gone")), ("b", pod("r0"))]);
        assert_eq!(
            (c, reason.as_str()),
            (Compliance::Pending, "a (Pod ar/gone) does not exist")
        );
        let (c, _, reason) = eval(&latency, &[("a", pod("lost")), ("b", pod("waiting"))]);
        assert_eq!(
            c,
            Compliance::Error,
            "an unknown node outranks a pending target"
        );
        assert_eq!(
            reason,
            "a (Pod ar/lost) runs on node \"ghost\", which is not known"
        );
        let (c, _, reason) = eval(&latency, &[("a", pod("r0")), ("users", site("mars"))]);
        assert_eq!(c, Compliance::Error);
        assert_eq!(
            reason,
            "users: site \"mars\" is not in the network topology"
        );
        let (c, _, reason) = eval(&latency, &[("a", pod("r0"))]);
        assert_eq!(c, Compliance::Error);
        assert!(reason.contains("between two targets"), "{reason}");
    }

    #[test]
    fn rules_without_a_provider_or_with_bad_values_are_errors() {
        let (c, _, reason) = eval(&rule("gpu-temperature", "70", None), &[("a", pod("r0"))]);
        assert_eq!(
            (c, reason.as_str()),
            (Compliance::Error, "no provider for rule gpu-temperature")
        );
        let (c, _, reason) = eval(
            &rule("latency", "fast", None),
            &[("a", pod("r0")), ("b", pod("g0"))],
        );
        assert_eq!(c, Compliance::Error);
        assert!(
            reason.starts_with("request: \"fast\" is not a duration"),
            "{reason}"
        );
    }

    #[test]
    fn cpu_and_memory_read_the_allocatable_of_the_pods_node() {
        let cpu = rule("cpu", "8", Some("4"));
        assert_eq!(
            eval(&cpu, &[("renderer", pod("r0"))]),
            (
                Compliance::Compliant,
                Some("16".into()),
                "cpu 16 on renderer (e1a) meets the request 8".into()
            )
        );
        assert_eq!(eval(&cpu, &[("renderer", pod("g0"))]).0, Compliance::Limit);
        let (c, _, reason) = eval(&cpu, &[("renderer", pod("r1"))]);
        assert_eq!(c, Compliance::Pending);
        assert!(reason.contains("reports no allocatable cpu"), "{reason}");
        let memory = rule("memory", "16Gi", Some("8Gi"));
        assert_eq!(eval(&memory, &[("r", pod("r0"))]).1, Some("64Gi".into()));
        assert_eq!(eval(&memory, &[("r", pod("g0"))]).0, Compliance::Limit);
        assert_eq!(
            eval(&rule("memory", "16Gi", None), &[("r", pod("g0"))]).0,
            Compliance::Violation
        );
        // Site targets are skipped by node rules; the pod's node decides.
        assert_eq!(
            eval(&cpu, &[("renderer", pod("r0")), ("users", site("stadium"))]).0,
            Compliance::Compliant
        );
        assert_eq!(
            eval(&cpu, &[("users", site("stadium"))]).0,
            Compliance::Error
        );
    }

    #[test]
    fn node_labels_and_features() {
        let label = rule("node-label", "tier=edge", None);
        assert_eq!(
            eval(&label, &[("r", pod("r0"))]),
            (
                Compliance::Compliant,
                Some("tier=edge".into()),
                "node-label tier=edge on r (e1a) meets the request tier=edge".into()
            )
        );
        assert_eq!(
            eval(&label, &[("r", pod("r1"))]),
            (
                Compliance::Violation,
                Some("tier unset".into()),
                "node-label tier unset on r (m1) does not meet the required tier=edge".into()
            )
        );
        let avx = rule("node-feature", "cpu-cpuid.AVX512F", None);
        assert_eq!(eval(&avx, &[("r", pod("r0"))]).0, Compliance::Compliant);
        assert_eq!(
            eval(&avx, &[("r", pod("g0"))]),
            (
                Compliance::Violation,
                Some("cpu-cpuid.AVX512F=false".into()),
                "node-feature cpu-cpuid.AVX512F=false on r (e1b) does not meet the required cpu-cpuid.AVX512F=true".into()
            )
        );
        let without = rule("node-feature", "cpu-cpuid.AVX512F=false", None);
        assert_eq!(eval(&without, &[("r", pod("g0"))]).0, Compliance::Compliant);
        let full_key = rule(
            "node-feature",
            "feature.node.kubernetes.io/cpu-cpuid.AVX512F=TRUE",
            None,
        );
        assert_eq!(
            eval(&full_key, &[("r", pod("r0"))]).0,
            Compliance::Compliant
        );
    }

    #[test]
    fn rule_syntax_of_node_rules() {
        let bad = |name: &str, request: &str, limit: Option<&str>| {
            check_rule(&rule(name, request, limit))
                .err()
                .map(|e| e.to_string())
        };
        assert!(
            bad("node-label", "tier", None)
                .is_some_and(|e| e.starts_with("request: \"tier\" is not a label requirement"))
        );
        assert!(bad("node-label", "=edge", None).is_some());
        assert!(bad("node-feature", "cpu cpuid", None).is_some_and(|e| e.starts_with("request: ")));
        assert!(
            bad("node-feature", "x", Some("y"))
                .is_some_and(|e| e.starts_with("limit: node-feature is met or not"))
        );
        assert_eq!(bad("node-feature", "x", Some("x")), None);
        assert_eq!(bad("my-external-rule", "anything", None), None);
    }

    #[test]
    fn a_view_from_parts_with_placements_set_by_hand() {
        // What the planner does: one graph, then what-if placements.
        let built = view();
        let graph = built.graph().clone();
        let facts: Vec<NodeFacts> = graph
            .nodes()
            .map(|n| built.facts(n).cloned().unwrap_or_default())
            .collect();
        let mut what_if = ClusterView::from_parts(graph, facts);
        let latency = rule("latency", "3ms", Some("5ms"));
        let pair = targets(&[("renderer", pod("x")), ("users", site("stadium"))]);
        assert_eq!(
            evaluate_rule(&what_if, &pair, &latency).compliance,
            Compliance::Pending
        );
        what_if.place("ar", "x", Some("m1"));
        assert_eq!(
            evaluate_rule(&what_if, &pair, &latency).compliance,
            Compliance::Limit
        );
        what_if.place("ar", "x", Some("e1b"));
        assert_eq!(
            evaluate_rule(&what_if, &pair, &latency).compliance,
            Compliance::Compliant
        );
        assert_eq!(what_if.node_of("ar", "x"), what_if.graph().node_id("e1b"));
        what_if.place("ar", "x", None);
        assert_eq!(what_if.node_of("ar", "x"), None);
    }

    #[test]
    fn scoring_candidate_nodes() {
        let v = view();
        let g = v.graph();
        let n = |name: &str| g.node_id(name).unwrap_or(NodeId(u32::MAX));
        let stadium = [Location::Site(
            g.site_id("stadium").unwrap_or(crate::network::SiteId(0)),
        )];
        let compile = |r: ConstraintPolicyRule| match BuiltinRule::compile(&r) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let latency = compile(rule("latency", "1ms", Some("4ms")));
        // 2ms to the stadium: a third of the way from request to limit.
        match latency.score(&v, n("e1a"), &stadium) {
            Score::Feasible(c) => assert!((c - 1.0 / 3.0).abs() < 1e-6, "{c}"),
            Score::Infeasible => panic!("e1a is feasible"),
        }
        assert_eq!(latency.score(&v, n("m1"), &stadium), Score::Infeasible);
        assert_eq!(latency.score(&v, n("e1a"), &[]), Score::Feasible(0.0));
        let far = [Location::Site(
            g.site_id("far").unwrap_or(crate::network::SiteId(0)),
        )];
        assert_eq!(latency.score(&v, n("e1a"), &far), Score::Infeasible);
        // Peers on nodes: e1a and e1b share a site.
        assert_eq!(
            latency.score(&v, n("e1a"), &[Location::Node(n("e1b"))]),
            Score::Feasible(0.0)
        );
        let cpu = compile(rule("cpu", "8", Some("4")));
        assert_eq!(cpu.score(&v, n("e1a"), &[]), Score::Feasible(0.0));
        assert_eq!(cpu.score(&v, n("e1b"), &[]), Score::Feasible(1.0));
        assert_eq!(cpu.score(&v, n("m1"), &[]), Score::Infeasible);
        assert_eq!(cpu.score(&v, NodeId(99), &[]), Score::Infeasible);
        let avx = compile(rule("node-feature", "cpu-cpuid.AVX512F", None));
        assert_eq!(avx.score(&v, n("e1a"), &[]), Score::Feasible(0.0));
        assert_eq!(avx.score(&v, n("e1b"), &[]), Score::Infeasible);
    }
}
