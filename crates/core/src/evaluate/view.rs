//! [`ClusterView`]: the network graph, what each node offers, and where each pod runs.

use std::collections::{BTreeMap, HashMap};

use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{NetworkTopology, TargetKind, TargetRef};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};

use std::sync::Arc;

use crate::network::{
    Location, NetworkGraph, NodeId, NodeInfo, PathMetrics, Reservations, SiteId, TopologyError,
};
use crate::values::{Unit, Value};

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
/// manifests; nothing here reads files or the API. The graph and the node facts are
/// shared between clones: a view with pods moved is a clone of one without (the
/// scheduler's view cache places pods into a copy on every change), and copying the
/// graph and thousands of nodes' facts each time cost milliseconds.
#[derive(Clone, Debug)]
pub struct ClusterView {
    graph: Arc<NetworkGraph>,
    facts: Arc<Vec<NodeFacts>>,
    pods: HashMap<(String, String), Placement>,
    /// What the bandwidth rules of placed bindings reserve (docs/network.md): the one
    /// shared view every provider of the bandwidth rule reads.
    reservations: Arc<Reservations>,
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
            graph: Arc::new(graph),
            facts: Arc::new(facts),
            pods: HashMap::new(),
            reservations: Arc::default(),
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
            graph: Arc::new(graph),
            facts: Arc::new(facts),
            pods: HashMap::new(),
            reservations: Arc::default(),
        }
    }

    /// Sets what the bandwidth rules of placed bindings reserve (computed over this
    /// view's graph by `network::Reservations::compute`).
    pub fn set_reservations(&mut self, reservations: Arc<Reservations>) {
        self.reservations = reservations;
    }

    pub fn reservations(&self) -> &Reservations {
        &self.reservations
    }

    /// The metrics from `a` to `b` with bandwidth as much as a pair asking `request_bps`
    /// gets given the reservations (its fair share where a link is over-subscribed), and
    /// the link that limits it to less than the path's capacity, if one does.
    pub fn shared_metrics(
        &self,
        a: Location,
        b: Location,
        request_bps: f64,
    ) -> Option<(PathMetrics, Option<(SiteId, SiteId)>)> {
        let mut path = self.graph.metrics(a, b)?;
        let (got, by) = self
            .reservations
            .available(&self.graph, a, b, request_bps)?;
        if by.is_some() {
            path.bandwidth_bps = got as f32;
        }
        Some((path, by))
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

/// The site label of a topology, or the default one.
pub fn site_label(topology: Option<&NetworkTopology>) -> &str {
    topology
        .map(|t| t.spec.site_label.as_str())
        .unwrap_or(DEFAULT_SITE_LABEL)
}

/// A placed binding's rules, as [`bandwidth_demands`] reads them.
pub struct BindingRules<'a> {
    /// `namespace/name` of the binding.
    pub owner: String,
    pub targets: &'a BTreeMap<String, TargetRef>,
    pub rules: Vec<&'a edgeplane_api::ConstraintPolicyRule>,
}

/// What the bandwidth rules of bindings reserve (docs/network.md): for every pair of
/// targets of a binding whose targets all have a location, one demand per direction per
/// bandwidth rule, asking for its request and accepting its limit. Rules that do not parse
/// and bindings with a target not placed yet reserve nothing.
pub fn bandwidth_demands<'a>(
    view: &ClusterView,
    bindings: impl IntoIterator<Item = BindingRules<'a>>,
) -> Vec<crate::network::Demand> {
    let mut demands = Vec::new();
    for binding in bindings {
        let wanted: Vec<(f64, f64)> = binding
            .rules
            .iter()
            .filter(|r| r.name == crate::rules::builtin::BANDWIDTH)
            .filter_map(|r| {
                let metric = crate::rules::builtin_metric(&r.name)?;
                let rule = crate::rules::Rule::parse(r, metric).ok()?;
                let request = rule.request.magnitude()?;
                let limit = rule.limit.magnitude()?;
                (request.is_finite() && request > 0.0).then_some((request, limit.min(request)))
            })
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let Ok(places) = binding
            .targets
            .values()
            .map(|t| view.locate(t))
            .collect::<Result<Vec<Location>, _>>()
        else {
            continue;
        };
        for (i, a) in places.iter().enumerate() {
            for b in &places[i + 1..] {
                for (request, limit) in &wanted {
                    for (from, to) in [(*a, *b), (*b, *a)] {
                        demands.push(crate::network::Demand {
                            owner: binding.owner.clone(),
                            from,
                            to,
                            request_bps: *request,
                            limit_bps: *limit,
                        });
                    }
                }
            }
        }
    }
    demands
}
