//! The placement rules that depend on other pods: inter-pod affinity and anti-affinity,
//! topology spread constraints, host ports, and pod priority, read from a pod spec with
//! kube-scheduler's semantics (InterPodAffinity, PodTopologySpread, NodePorts,
//! PrioritySort). Only what is needed to judge them is kept: selectors compiled, namespace
//! selectors resolved into namespaces, `matchLabelKeys` merged into the selectors, as the
//! API server and kube-scheduler do.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1 as api;

use super::{NodeSelectorTerm, Toleration};
use crate::selector::{Requirement, Selector};
use crate::validate::FieldError;

/// Which namespaces a pod affinity term looks at.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespaces {
    /// `namespaceSelector: {}`: every namespace.
    All,
    /// The listed namespaces and those the namespace selector matched (the pod's own
    /// namespace when neither is given).
    Only(BTreeSet<String>),
}

impl Namespaces {
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Only(set) => set.contains(namespace),
        }
    }
}

/// One pod (anti-)affinity term, resolved for the pod that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodAffinityTerm {
    /// `None`: no `labelSelector`, which matches no pod.
    pub selector: Option<Selector>,
    pub namespaces: Namespaces,
    pub topology_key: String,
}

impl PodAffinityTerm {
    /// Whether a pod with this namespace and these labels is one the term is about.
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.contains(namespace)
            && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }
}

/// A preferred term and its weight (1..100).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WeightedTerm {
    pub weight: i32,
    pub term: PodAffinityTerm,
}

/// One `topologySpreadConstraints` entry. Pods are counted in the pod's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    /// `whenUnsatisfiable: DoNotSchedule` (a filter); false: `ScheduleAnyway` (a score).
    pub hard: bool,
    /// `None`: no `labelSelector`, which matches no pod.
    pub selector: Option<Selector>,
    pub min_domains: Option<i32>,
    /// `nodeAffinityPolicy: Honor` (the default): count only nodes that match the pod's
    /// nodeSelector and required node affinity.
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore): count only nodes whose taints the pod
    /// tolerates.
    pub honor_node_taints: bool,
}

/// A host port a container asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub port: i32,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// `0.0.0.0` when unset.
    pub ip: String,
}

impl HostPort {
    /// kube-scheduler's NodePorts conflict: same port and protocol, and the same address
    /// or either on every address (`0.0.0.0`).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == ANY_IP || other.ip == ANY_IP)
    }
}

const ANY_IP: &str = "0.0.0.0";

/// The rules of one pod that involve other pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InterPodRules {
    /// `spec.priority`, or the value of its `priorityClassName`; 0 by default.
    pub priority: i32,
    pub affinity: Vec<PodAffinityTerm>,
    pub anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<WeightedTerm>,
    pub preferred_anti_affinity: Vec<WeightedTerm>,
    pub spread: Vec<SpreadConstraint>,
    pub host_ports: Vec<HostPort>,
}

impl InterPodRules {
    /// Whether any rule (priority aside) is set.
    pub fn is_empty(&self) -> bool {
        self.affinity.is_empty()
            && self.anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
            && self.spread.is_empty()
            && self.host_ports.is_empty()
    }
}

/// What the cluster knows that a pod's rules refer to: namespace labels (for
/// `namespaceSelector`) and PriorityClasses (for `priorityClassName`).
#[derive(Clone, Debug, Default)]
pub struct RulesContext {
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub priority_classes: BTreeMap<String, i32>,
}

impl RulesContext {
    /// The context of these Namespaces and PriorityClasses.
    pub fn new<'a>(
        namespaces: impl IntoIterator<Item = &'a api::Namespace>,
        classes: impl IntoIterator<Item = &'a k8s_openapi::api::scheduling::v1::PriorityClass>,
    ) -> RulesContext {
        RulesContext {
            namespace_labels: namespaces
                .into_iter()
                .filter_map(|n| {
                    Some((
                        n.metadata.name.clone()?,
                        n.metadata.labels.clone().unwrap_or_default(),
                    ))
                })
                .collect(),
            priority_classes: classes
                .into_iter()
                .filter_map(|c| Some((c.metadata.name.clone()?, c.value)))
                .collect(),
        }
    }
}

/// Reads a pod's inter-pod rules; errors name the field relative to the spec
/// (`affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey`).
pub fn inter_pod_rules(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    spec: &api::PodSpec,
    context: &RulesContext,
) -> Result<InterPodRules, FieldError> {
    let mut rules = InterPodRules {
        priority: spec
            .priority_class_name
            .as_ref()
            .and_then(|c| context.priority_classes.get(c).copied())
            .or(spec.priority)
            .unwrap_or(0),
        ..InterPodRules::default()
    };
    let term = |t: &api::PodAffinityTerm, field: String| {
        affinity_term(namespace, labels, t, &field, context)
    };
    if let Some(affinity) = &spec.affinity {
        if let Some(a) = &affinity.pod_affinity {
            let base = "affinity.podAffinity";
            for (i, t) in a
                .required_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .enumerate()
            {
                rules.affinity.push(term(
                    t,
                    format!("{base}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                )?);
            }
            for (i, w) in a
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .enumerate()
            {
                let field = format!("{base}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
                rules.preferred_affinity.push(weighted(w, &field, &term)?);
            }
        }
        if let Some(a) = &affinity.pod_anti_affinity {
            let base = "affinity.podAntiAffinity";
            for (i, t) in a
                .required_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .enumerate()
            {
                rules.anti_affinity.push(term(
                    t,
                    format!("{base}.requiredDuringSchedulingIgnoredDuringExecution[{i}]"),
                )?);
            }
            for (i, w) in a
                .preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .enumerate()
            {
                let field = format!("{base}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
                rules
                    .preferred_anti_affinity
                    .push(weighted(w, &field, &term)?);
            }
        }
    }
    for (i, c) in spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .enumerate()
    {
        rules.spread.push(spread(
            labels,
            c,
            &format!("topologySpreadConstraints[{i}]"),
        )?);
    }
    for (i, container) in spec.containers.iter().enumerate() {
        for (j, port) in container.ports.iter().flatten().enumerate() {
            let field = format!("containers[{i}].ports[{j}]");
            let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
                continue;
            };
            if !(1..=65535).contains(&host_port) {
                return Err(FieldError::new(
                    format!("{field}.hostPort"),
                    format!("{host_port} is not a port number (1..65535)"),
                ));
            }
            let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".into());
            if !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                return Err(FieldError::new(
                    format!("{field}.protocol"),
                    format!("{protocol:?} is not TCP, UDP or SCTP"),
                ));
            }
            let ip = port
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| ANY_IP.into());
            rules.host_ports.push(HostPort {
                port: host_port,
                protocol,
                ip,
            });
        }
    }
    Ok(rules)
}

fn weighted(
    w: &api::WeightedPodAffinityTerm,
    field: &str,
    term: &impl Fn(&api::PodAffinityTerm, String) -> Result<PodAffinityTerm, FieldError>,
) -> Result<WeightedTerm, FieldError> {
    if !(1..=100).contains(&w.weight) {
        return Err(FieldError::new(
            format!("{field}.weight"),
            format!("{} is not in 1..100", w.weight),
        ));
    }
    Ok(WeightedTerm {
        weight: w.weight,
        term: term(&w.pod_affinity_term, format!("{field}.podAffinityTerm"))?,
    })
}

fn selector(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    field: &str,
) -> Result<Option<Selector>, FieldError> {
    selector
        .map(|s| {
            Selector::compile(s)
                .map_err(|e| FieldError::new(format!("{field}.{}", e.field), e.problem.to_string()))
        })
        .transpose()
}

/// `matchLabelKeys` become `key In (the pod's value)`, `mismatchLabelKeys` `key NotIn
/// (the pod's value)`; keys the pod does not carry are ignored (as the API server does).
fn merge_label_keys(
    selector: Option<Selector>,
    labels: &BTreeMap<String, String>,
    keys: Option<&Vec<String>>,
    mismatch: Option<&Vec<String>>,
    field: &str,
) -> Result<Option<Selector>, FieldError> {
    let mut selector = selector;
    for (list, name, negate) in [
        (keys, "matchLabelKeys", false),
        (mismatch, "mismatchLabelKeys", true),
    ] {
        for (i, key) in list.iter().copied().flatten().enumerate() {
            if !crate::selector::is_label_key(key) {
                return Err(FieldError::new(
                    format!("{field}.{name}[{i}]"),
                    format!("{key:?} is not a valid label key"),
                ));
            }
            if selector
                .as_ref()
                .is_some_and(|s| s.requirements().iter().any(|r| r.key() == key))
            {
                return Err(FieldError::new(
                    format!("{field}.{name}[{i}]"),
                    format!("{key:?} is also in labelSelector"),
                ));
            }
            let Some(value) = labels.get(key) else {
                continue;
            };
            let requirement = if negate {
                Requirement::NotIn(key.clone(), vec![value.clone()])
            } else {
                Requirement::In(key.clone(), vec![value.clone()])
            };
            // Keys only refine a selector that exists: no labelSelector matches nothing.
            selector = selector.map(|s| s.and(requirement));
        }
    }
    Ok(selector)
}

fn affinity_term(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    t: &api::PodAffinityTerm,
    field: &str,
    context: &RulesContext,
) -> Result<PodAffinityTerm, FieldError> {
    if t.topology_key.is_empty() || !crate::selector::is_label_key(&t.topology_key) {
        return Err(FieldError::new(
            format!("{field}.topologyKey"),
            format!("{:?} is not a label key", t.topology_key),
        ));
    }
    let compiled = selector(t.label_selector.as_ref(), &format!("{field}.labelSelector"))?;
    let compiled = merge_label_keys(
        compiled,
        labels,
        t.match_label_keys.as_ref(),
        t.mismatch_label_keys.as_ref(),
        field,
    )?;
    let namespace_selector = selector(
        t.namespace_selector.as_ref(),
        &format!("{field}.namespaceSelector"),
    )?;
    let listed: BTreeSet<String> = t.namespaces.iter().flatten().cloned().collect();
    let namespaces = match namespace_selector {
        Some(s) if s.is_empty() => Namespaces::All,
        Some(s) => {
            let mut set = listed;
            set.extend(
                context
                    .namespace_labels
                    .iter()
                    .filter(|(_, l)| s.matches(l))
                    .map(|(n, _)| n.clone()),
            );
            Namespaces::Only(set)
        }
        None if listed.is_empty() => Namespaces::Only(BTreeSet::from([namespace.to_string()])),
        None => Namespaces::Only(listed),
    };
    Ok(PodAffinityTerm {
        selector: compiled,
        namespaces,
        topology_key: t.topology_key.clone(),
    })
}

fn spread(
    labels: &BTreeMap<String, String>,
    c: &api::TopologySpreadConstraint,
    field: &str,
) -> Result<SpreadConstraint, FieldError> {
    if c.max_skew < 1 {
        return Err(FieldError::new(
            format!("{field}.maxSkew"),
            format!("{} must be at least 1", c.max_skew),
        ));
    }
    if c.topology_key.is_empty() || !crate::selector::is_label_key(&c.topology_key) {
        return Err(FieldError::new(
            format!("{field}.topologyKey"),
            format!("{:?} is not a label key", c.topology_key),
        ));
    }
    let hard = match c.when_unsatisfiable.as_str() {
        "DoNotSchedule" => true,
        "ScheduleAnyway" => false,
        other => {
            return Err(FieldError::new(
                format!("{field}.whenUnsatisfiable"),
                format!("{other:?} is not DoNotSchedule or ScheduleAnyway"),
            ));
        }
    };
    if let Some(m) = c.min_domains {
        if m < 1 {
            return Err(FieldError::new(
                format!("{field}.minDomains"),
                format!("{m} must be at least 1"),
            ));
        }
        if !hard {
            return Err(FieldError::new(
                format!("{field}.minDomains"),
                "is only allowed with whenUnsatisfiable DoNotSchedule",
            ));
        }
    }
    let policy = |value: Option<&String>, name: &str, default: bool| match value.map(String::as_str)
    {
        None => Ok(default),
        Some("Honor") => Ok(true),
        Some("Ignore") => Ok(false),
        Some(other) => Err(FieldError::new(
            format!("{field}.{name}"),
            format!("{other:?} is not Honor or Ignore"),
        )),
    };
    let compiled = selector(c.label_selector.as_ref(), &format!("{field}.labelSelector"))?;
    Ok(SpreadConstraint {
        max_skew: c.max_skew,
        topology_key: c.topology_key.clone(),
        hard,
        selector: merge_label_keys(compiled, labels, c.match_label_keys.as_ref(), None, field)?,
        min_domains: c.min_domains,
        honor_node_affinity: policy(c.node_affinity_policy.as_ref(), "nodeAffinityPolicy", true)?,
        honor_node_taints: policy(c.node_taints_policy.as_ref(), "nodeTaintsPolicy", false)?,
    })
}

/// Whether a node is counted for a spread constraint of a pod with these node rules
/// (`nodeAffinityPolicy`, `nodeTaintsPolicy`) — the caller checks the topology keys.
pub fn spread_counts_node(
    constraint: &SpreadConstraint,
    node: super::NodeFacts<'_>,
    node_selector: &BTreeMap<String, String>,
    affinity: &[NodeSelectorTerm],
    tolerations: &[Toleration],
) -> bool {
    (!constraint.honor_node_affinity
        || (super::matches_node_selector(node_selector, node.labels)
            && super::affinity_matches(affinity, node.name, node.labels)))
        && (!constraint.honor_node_taints || super::untolerated(node.taints, tolerations).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> api::PodSpec {
        serde_json::from_value(json).unwrap_or_default()
    }

    #[test]
    fn reads_terms_spread_ports_and_priority() {
        let labels = BTreeMap::from([
            ("app".to_string(), "upf".to_string()),
            ("rev".into(), "7".into()),
        ]);
        let context = RulesContext {
            namespace_labels: BTreeMap::from([
                (
                    "core".to_string(),
                    BTreeMap::from([("tier".to_string(), "5g".to_string())]),
                ),
                ("web".to_string(), BTreeMap::new()),
            ]),
            priority_classes: BTreeMap::from([("critical".to_string(), 1000)]),
        };
        let s = spec(serde_json::json!({
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
            "priorityClassName": "critical",
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "upf"}}, "topologyKey": "kubernetes.io/hostname",
                 "matchLabelKeys": ["rev"], "namespaceSelector": {"matchLabels": {"tier": "5g"}}}
            ]}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "upf"}}}]
        }));
        let rules = inter_pod_rules("ran", &labels, &s, &context).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.priority, 1000);
        let anti = &rules.anti_affinity[0];
        assert_eq!(
            anti.namespaces,
            Namespaces::Only(BTreeSet::from(["core".to_string()]))
        );
        assert!(anti.matches("core", &labels));
        let other_rev = BTreeMap::from([
            ("app".to_string(), "upf".to_string()),
            ("rev".into(), "8".into()),
        ]);
        assert!(!anti.matches("core", &other_rev));
        assert!(!anti.matches("ran", &labels));
        assert_eq!(rules.spread[0].max_skew, 1);
        assert!(rules.spread[0].hard && rules.spread[0].honor_node_affinity);
        assert!(!rules.spread[0].honor_node_taints);
        assert_eq!(
            rules.host_ports,
            vec![HostPort {
                port: 8080,
                protocol: "TCP".into(),
                ip: "0.0.0.0".into()
            }]
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let labels = BTreeMap::new();
        let cases = [
            (
                serde_json::json!({"containers": [], "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ""}]}}}),
                "affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
            ),
            (
                serde_json::json!({"containers": [], "topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}),
                "topologySpreadConstraints[0].maxSkew",
            ),
            (
                serde_json::json!({"containers": [], "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]}),
                "topologySpreadConstraints[0].whenUnsatisfiable",
            ),
            (
                serde_json::json!({"containers": [{"name": "a", "ports": [{"containerPort": 1, "hostPort": 70000}]}]}),
                "containers[0].ports[0].hostPort",
            ),
            (
                serde_json::json!({"containers": [], "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "podAffinityTerm": {"topologyKey": "zone"}}]}}}),
                "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            ),
        ];
        for (json, field) in cases {
            let err = inter_pod_rules("d", &labels, &spec(json), &RulesContext::default())
                .err()
                .map(|e| e.field);
            assert_eq!(err.as_deref(), Some(field));
        }
    }

    #[test]
    fn default_namespaces_and_missing_selector() {
        let labels = BTreeMap::new();
        let s = spec(
            serde_json::json!({"containers": [], "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "zone"},
                {"topologyKey": "zone", "labelSelector": {}, "namespaceSelector": {}}]}}}),
        );
        let rules = inter_pod_rules("d", &labels, &s, &RulesContext::default())
            .unwrap_or_else(|e| panic!("{e}"));
        // No labelSelector matches no pod; an empty one every pod, here of every namespace.
        assert!(!rules.affinity[0].matches("d", &labels));
        assert!(rules.affinity[1].matches("elsewhere", &labels));
        assert_eq!(
            rules.affinity[0].namespaces,
            Namespaces::Only(BTreeSet::from(["d".to_string()]))
        );
    }
}
