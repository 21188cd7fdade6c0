//! [`NetworkGraph`]: sites, the nodes in them, and the precomputed metrics of every site
//! pair.

use std::collections::{BTreeMap, HashMap};

use edgeplane_api::NetworkTopology;
use edgeplane_api::network::DEFAULT_SITE_LABEL;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

use super::location::{Location, NodeId, SiteId};
use super::metrics::{DEFAULT_INTRA_SITE, DEFAULT_SAME_NODE, LinkMetrics, PathMetrics};
use super::overlay::{HopSource, MeasuredEdge, apply_activated, apply_measurements};
use super::search::{Adjacency, Edge, Search};
use super::spec::{ParsedSpec, TopologyError, parse_spec};

/// What the graph needs to know about a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl NodeInfo {
    /// The name and labels of a Node object; `None` when it has no name.
    pub fn from_node(node: &Node) -> Option<NodeInfo> {
        Some(NodeInfo {
            name: node.metadata.name.clone()?,
            labels: node.metadata.labels.clone().unwrap_or_default(),
        })
    }
}

/// The network graph with all-pairs site metrics. Immutable once built; rebuild it when
/// the topology or the nodes change.
#[derive(Clone, Debug)]
pub struct NetworkGraph {
    pub(super) site_names: Vec<String>,
    site_index: HashMap<String, SiteId>,
    site_labels: Vec<BTreeMap<String, String>>,
    site_declared: Vec<bool>,
    /// Whether paths may pass through the site.
    pub(super) site_transit: Vec<bool>,
    /// Nodes of site `s`: `site_nodes[site_node_start[s]..site_node_start[s + 1]]`.
    site_node_start: Vec<u32>,
    site_nodes: Vec<NodeId>,
    node_names: Vec<String>,
    node_index: HashMap<String, NodeId>,
    pub(super) node_site: Vec<SiteId>,
    pub(super) same_node: PathMetrics,
    pub(super) intra_site: PathMetrics,
    /// Row-major `sites x sites`: metrics of the path from row to column.
    matrix: Vec<PathMetrics>,
    /// Row-major: the site before the column on the path from the row; `u32::MAX` when
    /// unreachable or on the diagonal.
    predecessor: Vec<u32>,
    /// Directed edges: spec links, fresh measurements, activated paths.
    pub(super) adjacency: Adjacency,
    site_label: String,
    spec_link_count: usize,
    measurements_used: usize,
    /// The directed edges (site indices) whose metrics a fresh measurement set.
    measured_edges: BTreeMap<(u32, u32), MeasuredEdge>,
    /// The directed edges whose newest measurement is stale, with when it became so.
    stale_edges: BTreeMap<(u32, u32), MeasuredEdge>,
    /// Whether the topology's status has any measurement, fresh or stale.
    uses_measurement: bool,
    activated_used: usize,
    warnings: Vec<String>,
}

impl NetworkGraph {
    /// Builds the graph of a topology (or, without one, of the nodes alone with default
    /// `sameNode` and `intraSite` metrics and no links) and precomputes the metrics of
    /// every site pair: one Dijkstra per site, O(S · E log S) in all.
    ///
    /// `now` decides which measurements are fresh (see the module documentation).
    pub fn build(
        topology: Option<&NetworkTopology>,
        nodes: &[NodeInfo],
        now: Timestamp,
    ) -> Result<NetworkGraph, TopologyError> {
        let mut errors = Vec::new();
        let parsed = match topology {
            Some(t) => parse_spec(t, &mut errors),
            None => ParsedSpec {
                site_label: DEFAULT_SITE_LABEL.to_string(),
                same_node: DEFAULT_SAME_NODE,
                intra_site: DEFAULT_INTRA_SITE,
                sites: Vec::new(),
                links: Vec::new(),
                max_age_ns: 0.0,
            },
        };
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }

        // Sites: declared ones and those of nodes, numbered in name order.
        // name -> (labels, declared, transit)
        let mut labels_of: BTreeMap<String, (BTreeMap<String, String>, bool, bool)> = parsed
            .sites
            .iter()
            .map(|(name, labels, transit)| (name.clone(), (labels.clone(), true, *transit)))
            .collect();
        let mut node_site_names = Vec::with_capacity(nodes.len());
        let mut node_index = HashMap::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            if node.name.is_empty() {
                return Err(TopologyError::new("", format!("node {i} has no name")));
            }
            let id = NodeId(u32::try_from(i).map_err(|_| too_many("nodes"))?);
            if node_index.insert(node.name.clone(), id).is_some() {
                return Err(TopologyError::new(
                    "",
                    format!("node {:?} appears twice", node.name),
                ));
            }
            let site = node
                .labels
                .get(&parsed.site_label)
                .filter(|v| !v.is_empty())
                .unwrap_or(&node.name);
            labels_of
                .entry(site.clone())
                .or_insert_with(|| (BTreeMap::new(), false, true));
            node_site_names.push(site.clone());
        }
        let site_count = labels_of.len();
        let s_u32 = u32::try_from(site_count).map_err(|_| too_many("sites"))?;
        let mut site_names = Vec::with_capacity(site_count);
        let mut site_labels = Vec::with_capacity(site_count);
        let mut site_declared = Vec::with_capacity(site_count);
        let mut site_transit = Vec::with_capacity(site_count);
        let mut site_index = HashMap::with_capacity(site_count);
        for (i, (name, (labels, declared, transit))) in labels_of.into_iter().enumerate() {
            site_index.insert(name.clone(), SiteId(i as u32));
            site_names.push(name);
            site_labels.push(labels);
            site_declared.push(declared);
            site_transit.push(transit);
        }
        let node_site: Vec<SiteId> = node_site_names
            .iter()
            .map(|name| site_index.get(name).copied().unwrap_or(SiteId(0)))
            .collect();
        let mut site_node_start = vec![0u32; site_count + 1];
        for s in &node_site {
            site_node_start[s.index() + 1] += 1;
        }
        for i in 0..site_count {
            site_node_start[i + 1] += site_node_start[i];
        }
        let mut fill = site_node_start.clone();
        let mut site_nodes = vec![NodeId(0); nodes.len()];
        for (i, s) in node_site.iter().enumerate() {
            let slot = &mut fill[s.index()];
            site_nodes[*slot as usize] = NodeId(i as u32);
            *slot += 1;
        }

        // Directed edges from the spec, then fresh measurements on top.
        let lookup = |name: &str| site_index.get(name).copied();
        let mut directed: BTreeMap<(u32, u32), LinkMetrics> = BTreeMap::new();
        for (from, to, metrics, one_way, i) in &parsed.links {
            let field = format!("spec.links[{i}]");
            let hint = |name: &str| {
                format!(
                    "unknown site {name:?} (declare it in spec.sites or label a node with {}={name})",
                    parsed.site_label
                )
            };
            let a = lookup(from)
                .ok_or_else(|| TopologyError::new(format!("{field}.from"), hint(from)))?;
            let b =
                lookup(to).ok_or_else(|| TopologyError::new(format!("{field}.to"), hint(to)))?;
            directed.insert((a.0, b.0), *metrics);
            if !one_way {
                directed.insert((b.0, a.0), *metrics);
            }
        }
        let mut warnings = Vec::new();
        let mut measurements_used = 0;
        let mut activated_used = 0;
        let mut measured_edges = BTreeMap::new();
        let mut stale_edges = BTreeMap::new();
        if let Some(topology) = topology {
            let (used, warned) = apply_measurements(
                topology,
                &parsed,
                &lookup,
                now,
                &mut directed,
                &mut measured_edges,
                &mut stale_edges,
            )?;
            measurements_used = used;
            warnings = warned;
            let before: BTreeMap<(u32, u32), LinkMetrics> = measured_edges
                .keys()
                .filter_map(|k| directed.get(k).map(|m| (*k, *m)))
                .collect();
            activated_used = apply_activated(topology, &lookup, &mut directed, &mut warnings);
            // An activated path that took over a measured edge carries the traffic: the
            // measurement no longer describes it.
            measured_edges.retain(|k, _| before.get(k) == directed.get(k));
        }
        let adjacency = Adjacency::from_directed(site_count, &directed);

        let mut graph = NetworkGraph {
            site_names,
            site_index,
            site_labels,
            site_declared,
            site_transit,
            site_node_start,
            site_nodes,
            node_names: nodes.iter().map(|n| n.name.clone()).collect(),
            node_index,
            node_site,
            same_node: parsed.same_node,
            intra_site: parsed.intra_site,
            matrix: Vec::new(),
            predecessor: Vec::new(),
            adjacency,
            site_label: parsed.site_label,
            spec_link_count: topology.map(|t| t.spec.links.len()).unwrap_or(0),
            measurements_used,
            measured_edges,
            stale_edges,
            uses_measurement: topology
                .and_then(|t| t.status.as_ref())
                .is_some_and(|s| !s.measured.is_empty()),
            activated_used,
            warnings,
        };
        graph.compute_all_pairs(s_u32);
        Ok(graph)
    }

    /// One Dijkstra per source site over (latency, hops), ties broken by site names.
    fn compute_all_pairs(&mut self, sites: u32) {
        let n = sites as usize;
        self.matrix = vec![PathMetrics::UNREACHABLE; n * n];
        self.predecessor = vec![u32::MAX; n * n];
        let mut search = Search::new(n);
        for source in 0..sites {
            search.run(&self.adjacency, &self.site_transit, source);
            let row = source as usize * n;
            for (i, v) in search.order.iter().enumerate() {
                let v = *v as usize;
                let metrics = if i == 0 {
                    self.intra_site
                } else {
                    search.metrics[v].compact()
                };
                self.matrix[row + v] = metrics;
                self.predecessor[row + v] = search.pred[v];
            }
        }
    }

    /// The metrics from `a` to `b` (see the module documentation for the cases); `None`
    /// when no path leads from one to the other, or an id is out of range. O(1).
    #[inline]
    pub fn metrics(&self, a: Location, b: Location) -> Option<PathMetrics> {
        if let (Location::Node(x), Location::Node(y)) = (a, b)
            && x == y
        {
            return (x.index() < self.node_site.len()).then_some(self.same_node);
        }
        let sa = self.site_of_location(a)?;
        let sb = self.site_of_location(b)?;
        if sa == sb {
            return Some(self.intra_site);
        }
        self.site_metrics(sa, sb)
    }

    /// The metrics of the path from site `a` to site `b` (`intraSite` when equal).
    #[inline]
    pub fn site_metrics(&self, a: SiteId, b: SiteId) -> Option<PathMetrics> {
        let n = self.site_names.len();
        if a.index() >= n || b.index() >= n {
            return None;
        }
        let m = self.matrix[a.index() * n + b.index()];
        m.latency_ns.is_finite().then_some(m)
    }

    /// Where the `metric` of each hop of the path from `a` to `b` comes from, in path
    /// order. Empty when the topology has no measurement at all (every figure is the
    /// spec's, and reasons need not say so), or the locations share a site.
    pub fn hop_sources(
        &self,
        a: Location,
        b: Location,
        metric: super::PathMetric,
    ) -> Vec<(SiteId, SiteId, HopSource)> {
        if !self.uses_measurement {
            return Vec::new();
        }
        let (Some(sa), Some(sb)) = (self.site_of_location(a), self.site_of_location(b)) else {
            return Vec::new();
        };
        if sa == sb {
            return Vec::new();
        }
        let Some(path) = self.path(sa, sb) else {
            return Vec::new();
        };
        path.windows(2)
            .map(|hop| {
                let key = (hop[0].0, hop[1].0);
                let source = match (self.measured_edges.get(&key), self.stale_edges.get(&key)) {
                    (Some(fresh), _) if fresh.carries(metric) => HopSource::Measured(fresh.time),
                    (_, Some(stale)) if stale.carries(metric) => HopSource::Stale(stale.time),
                    _ => HopSource::NotMeasured,
                };
                (hop[0], hop[1], source)
            })
            .collect()
    }

    /// The sites along the path from `a` to `b`, both included; `None` when unreachable.
    pub fn path(&self, a: SiteId, b: SiteId) -> Option<Vec<SiteId>> {
        self.site_metrics(a, b)?;
        let n = self.site_names.len();
        let mut path = vec![b];
        let mut at = b;
        while at != a {
            let p = self.predecessor[a.index() * n + at.index()];
            if p == u32::MAX || path.len() > n {
                return None;
            }
            at = SiteId(p);
            path.push(at);
        }
        path.reverse();
        Some(path)
    }

    /// The site before `b` on the path from `a` to `b`; `None` when unreachable or equal.
    pub fn predecessor(&self, a: SiteId, b: SiteId) -> Option<SiteId> {
        let n = self.site_names.len();
        if a.index() >= n || b.index() >= n {
            return None;
        }
        let p = self.predecessor[a.index() * n + b.index()];
        (p != u32::MAX).then_some(SiteId(p))
    }

    #[inline]
    pub fn site_of_location(&self, location: Location) -> Option<SiteId> {
        match location {
            Location::Node(n) => self.node_site.get(n.index()).copied(),
            Location::Site(s) => (s.index() < self.site_names.len()).then_some(s),
        }
    }

    /// The bandwidth of the directed link `a -> b` as the graph uses it (spec, fresh
    /// measurement or activated path; `INFINITY` when none states one); `None` when there
    /// is no such link.
    pub fn link_bandwidth(&self, a: SiteId, b: SiteId) -> Option<f64> {
        let edges = self.adjacency.of(a.index());
        edges
            .binary_search_by_key(&b.0, |e| e.to)
            .ok()
            .map(|i| edges[i].metrics.bandwidth_bps)
    }

    /// The id of the node named `name`.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.node_index.get(name).copied()
    }

    /// The id of the site named `name`.
    pub fn site_id(&self, name: &str) -> Option<SiteId> {
        self.site_index.get(name).copied()
    }

    /// The site a node is in. Panics on an id that did not come from this graph.
    #[inline]
    pub fn site_of(&self, node: NodeId) -> SiteId {
        self.node_site[node.index()]
    }

    pub fn node_name(&self, node: NodeId) -> &str {
        self.node_names
            .get(node.index())
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn site_name(&self, site: SiteId) -> &str {
        self.site_names
            .get(site.index())
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The labels a site was declared with (empty for sites known only from nodes).
    pub fn site_labels(&self, site: SiteId) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.site_labels.get(site.index()).unwrap_or(&EMPTY)
    }

    /// Whether the site is in `spec.sites`.
    pub fn is_declared(&self, site: SiteId) -> bool {
        self.site_declared
            .get(site.index())
            .copied()
            .unwrap_or(false)
    }

    /// Whether paths between other sites may pass through the site.
    pub fn is_transit(&self, site: SiteId) -> bool {
        self.site_transit.get(site.index()).copied().unwrap_or(true)
    }

    /// The nodes of a site, in node id order (empty for a site of users only).
    pub fn nodes_in(&self, site: SiteId) -> &[NodeId] {
        let i = site.index();
        match (self.site_node_start.get(i), self.site_node_start.get(i + 1)) {
            (Some(a), Some(b)) => &self.site_nodes[*a as usize..*b as usize],
            _ => &[],
        }
    }

    pub fn node_count(&self) -> usize {
        self.node_names.len()
    }

    pub fn site_count(&self) -> usize {
        self.site_names.len()
    }

    /// Every site id, in name order.
    pub fn sites(&self) -> impl ExactSizeIterator<Item = SiteId> + '_ {
        (0..self.site_names.len() as u32).map(SiteId)
    }

    /// Every node id, in input order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = NodeId> + '_ {
        (0..self.node_names.len() as u32).map(NodeId)
    }

    /// The label that names a node's site.
    pub fn site_label(&self) -> &str {
        &self.site_label
    }

    /// Metrics between two pods of one node.
    pub fn same_node(&self) -> PathMetrics {
        self.same_node
    }

    /// Metrics between two nodes of one site.
    pub fn intra_site(&self) -> PathMetrics {
        self.intra_site
    }

    /// Number of links in the spec.
    pub fn spec_link_count(&self) -> usize {
        self.spec_link_count
    }

    /// Number of directed edges after measurements (a bidirectional link counts twice).
    pub fn edge_count(&self) -> usize {
        self.adjacency.edges.len()
    }

    /// Number of activated paths (`status.activatedPaths`) the graph uses.
    pub fn activated_paths_used(&self) -> usize {
        self.activated_used
    }

    /// Number of measurements fresh enough to have been applied.
    pub fn measurements_used(&self) -> usize {
        self.measurements_used
    }

    /// Problems that did not prevent the build (measurements naming unknown sites, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Bytes held by the graph's tables (an estimate that ignores allocator overhead).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let strings: usize = self
            .site_names
            .iter()
            .chain(self.node_names.iter())
            .map(|s| s.capacity() * 2 + size_of::<String>() * 2)
            .sum();
        self.matrix.capacity() * size_of::<PathMetrics>()
            + self.predecessor.capacity() * 4
            + self.adjacency.edges.capacity() * size_of::<Edge>()
            + self.node_site.capacity() * 4
            + self.site_nodes.capacity() * 4
            + strings
    }
}

fn too_many(what: &str) -> TopologyError {
    TopologyError::new("", format!("too many {what} (at most 2^32)"))
}
