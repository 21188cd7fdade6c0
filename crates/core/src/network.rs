//! The network graph: sites, the nodes in them, and the metrics of the path between any
//! two locations, precomputed so that a lookup is O(1).
//!
//! # Model
//!
//! - **Sites.** Every site declared in `spec.sites`, and every site a node is in. A node's
//!   site is the value of its `spec.siteLabel` label; a node without that label (or with
//!   an empty value) is in the site named like the node, usually a site of its own.
//!   Sites are numbered in name order ([`SiteId`]); nodes in input order ([`NodeId`]).
//! - **Links** join two known sites (declared, or the site of a node: a link never
//!   introduces a site, so a misspelt name is an error). A link carries traffic both ways
//!   with the same metrics unless `oneWay`. Omitted metrics: jitter 0, loss 0, bandwidth
//!   unlimited; latency is required.
//! - **Measurements** (`status.measured`) override the metrics they carry on the link with
//!   the same ends and direction, or add that link, when they are at most
//!   `spec.measurementMaxAge` (default 5m) older than the `now` given to
//!   [`NetworkGraph::build`]; older ones are ignored, as are measurements naming unknown
//!   sites (those are reported by [`NetworkGraph::warnings`], since the status is written
//!   by an agent and must not make the whole topology unusable).
//! - **Transit.** A declared site with `transit: false` (a site of users) can be the end of
//!   a path but is never passed through.
//! - **Paths.** Between two sites traffic follows the path of least latency; among equal
//!   latencies the one with fewer hops; among those, the one whose sequence of site names
//!   is first in lexicographic order. Along the path latency and jitter add up, bandwidth
//!   is the smallest link bandwidth, and loss is `1 - Π(1 - loss_i)`. Latencies are summed
//!   in whole nanoseconds, so equal sums compare equal.
//!
//! # Locations
//!
//! A [`Location`] is a node or a site ("the users at that site"). [`NetworkGraph::metrics`]
//! of two locations is:
//!
//! | a, b | metrics |
//! | --- | --- |
//! | the same node twice | `sameNode` |
//! | two nodes of one site | `intraSite` |
//! | a node and the site it is in | `intraSite` |
//! | a site and itself | `intraSite` |
//! | anything else | the path from a's site to b's site (`None` when there is none) |
//!
//! The path is directed: with one-way links `metrics(a, b)` and `metrics(b, a)` may
//! differ. No `intraSite` leg is added at the ends of an inter-site path.
//!
//! Stored metrics are `f32` (about 7 significant digits), 16 bytes per site pair: 16 MB for
//! 1,000 sites, plus 4 MB of predecessors to recover the paths themselves.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use edgeplane_api::network::{DEFAULT_MEASUREMENT_MAX_AGE, DEFAULT_SITE_LABEL};
use edgeplane_api::{NetworkTopology, PathSpec};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

use crate::values::{Unit, Value, parse_duration_field};

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

/// A node's dense index: its position in the `nodes` given to [`NetworkGraph::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// A site's dense index: its position among all sites in name order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl SiteId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where one end of a path is: on a node, or at a site (where its users are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Node(NodeId),
    Site(SiteId),
}

/// One of the metrics a path has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathMetric {
    Latency,
    Jitter,
    Bandwidth,
    PacketLoss,
}

impl PathMetric {
    /// The metric a built-in pairwise rule reads.
    pub fn for_rule(rule: &str) -> Option<PathMetric> {
        use crate::rules::builtin;
        match rule {
            builtin::LATENCY => Some(PathMetric::Latency),
            builtin::JITTER => Some(PathMetric::Jitter),
            builtin::BANDWIDTH => Some(PathMetric::Bandwidth),
            builtin::PACKET_LOSS => Some(PathMetric::PacketLoss),
            _ => None,
        }
    }
}

/// Metrics of a path. Latency and jitter in nanoseconds, bandwidth in bits per second
/// (`f32::INFINITY` when no link on the path states one), loss as a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathMetrics {
    pub latency_ns: f32,
    pub jitter_ns: f32,
    pub bandwidth_bps: f32,
    pub loss: f32,
}

impl PathMetrics {
    /// Marks an unreachable pair in the matrix.
    const UNREACHABLE: PathMetrics = PathMetrics {
        latency_ns: f32::INFINITY,
        jitter_ns: f32::INFINITY,
        bandwidth_bps: 0.0,
        loss: 1.0,
    };

    /// The metric as a value in the rule's unit, rounded to the precision stored (7
    /// significant digits, so that `1.5ms` prints as `1.5ms`, not as the nearest `f32`);
    /// loss to 4 significant digits (`1 - (1 - 0.005%)(1 - 0.001%)` is `0.006%`, not
    /// `0.00599995%`), far finer than any loss measurement.
    pub fn value(&self, metric: PathMetric) -> Value {
        match metric {
            PathMetric::Latency => Value::duration_ns(significant(self.latency_ns, 7)),
            PathMetric::Jitter => Value::duration_ns(significant(self.jitter_ns, 7)),
            PathMetric::Bandwidth => Value::bits_per_second(significant(self.bandwidth_bps, 7)),
            PathMetric::PacketLoss => Value::ratio(significant(self.loss, 4)),
        }
    }

    /// `latency 3ms, jitter 400us, bandwidth 1Gbps, loss 0.01%`.
    pub fn describe(&self) -> String {
        let bandwidth = if self.bandwidth_bps.is_infinite() {
            "unlimited".to_string()
        } else {
            self.value(PathMetric::Bandwidth).to_string()
        };
        format!(
            "latency {}, jitter {}, bandwidth {bandwidth}, loss {}",
            self.value(PathMetric::Latency),
            self.value(PathMetric::Jitter),
            self.value(PathMetric::PacketLoss)
        )
    }
}

/// Rounds an `f32` to `digits` significant digits as an `f64`: with 7, the decimal it most
/// likely came from.
fn significant(x: f32, digits: i32) -> f64 {
    let x = f64::from(x);
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = digits - 1 - x.abs().log10().floor() as i32;
    if !(-300..=300).contains(&digits) {
        return x;
    }
    let factor = 10f64.powi(digits);
    let rounded = (x * factor).round() / factor;
    if rounded.is_finite() { rounded } else { x }
}

/// A topology that cannot be used, with the field at fault (`spec.links[3].latency`), or
/// an empty field for problems of the node list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct TopologyError {
    pub field: String,
    pub message: String,
}

impl TopologyError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        TopologyError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Metrics of one link (one directed edge of the graph), in full precision: latency in
/// whole nanoseconds, jitter in nanoseconds, bandwidth in bits per second (`INFINITY` when
/// unlimited), loss as a fraction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkMetrics {
    pub latency_ns: u64,
    pub jitter_ns: f64,
    pub bandwidth_bps: f64,
    pub loss: f64,
}

impl LinkMetrics {
    /// Parses the values of a link as the topology's links are parsed: `latency` is
    /// required; omitted `jitter` is 0, `bandwidth` unlimited, `loss` 0. Every problem is
    /// reported, located under `field` (`spec.entries[2].latency: "fast" is not a
    /// duration ...`).
    pub fn parse(
        field: &str,
        latency: &str,
        jitter: Option<&str>,
        bandwidth: Option<&str>,
        loss: Option<&str>,
    ) -> Result<LinkMetrics, Vec<TopologyError>> {
        let mut errors = Vec::new();
        let partial = parse_partial(field, Some(latency), jitter, bandwidth, loss, &mut errors);
        if errors.is_empty() {
            Ok(partial.or(LINK_DEFAULTS))
        } else {
            Err(errors)
        }
    }

    /// The metrics as the graph stores them.
    pub fn compact(&self) -> PathMetrics {
        PathMetrics {
            latency_ns: self.latency_ns as f32,
            jitter_ns: self.jitter_ns as f32,
            bandwidth_bps: self.bandwidth_bps as f32,
            loss: self.loss as f32,
        }
    }
}

/// Metrics that a spec entry or a measurement gives; `None` where it gives none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct PartialMetrics {
    latency_ns: Option<f64>,
    jitter_ns: Option<f64>,
    bandwidth_bps: Option<f64>,
    loss: Option<f64>,
}

impl PartialMetrics {
    fn or(self, defaults: LinkMetrics) -> LinkMetrics {
        LinkMetrics {
            latency_ns: self
                .latency_ns
                .map(|l| l.round() as u64)
                .unwrap_or(defaults.latency_ns),
            jitter_ns: self.jitter_ns.unwrap_or(defaults.jitter_ns),
            bandwidth_bps: self.bandwidth_bps.unwrap_or(defaults.bandwidth_bps),
            loss: self.loss.unwrap_or(defaults.loss),
        }
    }
}

/// Default metrics between two pods of one node.
pub const DEFAULT_SAME_NODE: PathMetrics = PathMetrics {
    latency_ns: 20e3,
    jitter_ns: 2e3,
    bandwidth_bps: 100e9,
    loss: 0.0,
};

/// Default metrics between two nodes of one site.
pub const DEFAULT_INTRA_SITE: PathMetrics = PathMetrics {
    latency_ns: 200e3,
    jitter_ns: 20e3,
    bandwidth_bps: 10e9,
    loss: 0.0,
};

fn edge_from(p: PathMetrics) -> LinkMetrics {
    LinkMetrics {
        latency_ns: p.latency_ns as u64,
        jitter_ns: f64::from(p.jitter_ns),
        bandwidth_bps: f64::from(p.bandwidth_bps),
        loss: f64::from(p.loss),
    }
}

/// Defaults of a link's omitted metrics (latency is required on links).
const LINK_DEFAULTS: LinkMetrics = LinkMetrics {
    latency_ns: 0,
    jitter_ns: 0.0,
    bandwidth_bps: f64::INFINITY,
    loss: 0.0,
};

/// The spec of a topology, parsed.
struct ParsedSpec {
    site_label: String,
    same_node: PathMetrics,
    intra_site: PathMetrics,
    /// `(name, labels, transit)`.
    sites: Vec<(String, BTreeMap<String, String>, bool)>,
    /// `(from, to, metrics, one_way, index in spec.links)`.
    links: Vec<(String, String, LinkMetrics, bool, usize)>,
    max_age_ns: f64,
}

/// Checks the parts of a topology that do not depend on the nodes: values parse and are in
/// range, names are valid, sites are declared once, links are not duplicated or loops.
/// Every problem is reported, in field order. [`NetworkGraph::build`] checks the same and
/// also that link ends are known sites.
pub fn check_topology(topology: &NetworkTopology) -> Vec<TopologyError> {
    let mut errors = Vec::new();
    parse_spec(topology, &mut errors);
    for (i, m) in topology
        .status
        .iter()
        .flat_map(|s| s.measured.iter())
        .enumerate()
    {
        let field = format!("status.measured[{i}]");
        parse_partial(
            &field,
            m.latency.as_deref(),
            m.jitter.as_deref(),
            m.bandwidth.as_deref(),
            m.loss.as_deref(),
            &mut errors,
        );
    }
    errors
}

fn parse_value(
    field: &str,
    text: &str,
    unit: Unit,
    errors: &mut Vec<TopologyError>,
) -> Option<f64> {
    match Value::parse(text, unit) {
        Ok(v) => v.magnitude(),
        Err(e) => {
            errors.push(TopologyError::new(field, e.to_string()));
            None
        }
    }
}

fn parse_partial(
    field: &str,
    latency: Option<&str>,
    jitter: Option<&str>,
    bandwidth: Option<&str>,
    loss: Option<&str>,
    errors: &mut Vec<TopologyError>,
) -> PartialMetrics {
    let mut one = |name: &str, text: Option<&str>, unit| {
        text.and_then(|t| parse_value(&format!("{field}.{name}"), t, unit, errors))
    };
    PartialMetrics {
        latency_ns: one("latency", latency, Unit::Duration),
        jitter_ns: one("jitter", jitter, Unit::Duration),
        bandwidth_bps: one("bandwidth", bandwidth, Unit::BitRate),
        loss: one("loss", loss, Unit::Ratio),
    }
}

fn parse_path_spec(
    field: &str,
    spec: Option<&PathSpec>,
    defaults: PathMetrics,
    errors: &mut Vec<TopologyError>,
) -> PathMetrics {
    let Some(spec) = spec else {
        return defaults;
    };
    let partial = parse_partial(
        field,
        spec.latency.as_deref(),
        spec.jitter.as_deref(),
        spec.bandwidth.as_deref(),
        spec.loss.as_deref(),
        errors,
    );
    partial.or(edge_from(defaults)).compact()
}

/// A site name must be usable as a label value: at most 63 characters, alphanumeric at
/// both ends, `-`, `_` and `.` inside.
pub fn is_site_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name
            .chars()
            .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

fn parse_spec(topology: &NetworkTopology, errors: &mut Vec<TopologyError>) -> ParsedSpec {
    let spec = &topology.spec;
    if spec.site_label.trim().is_empty() {
        errors.push(TopologyError::new("spec.siteLabel", "must not be empty"));
    }
    let same_node = parse_path_spec(
        "spec.sameNode",
        spec.same_node.as_ref(),
        DEFAULT_SAME_NODE,
        errors,
    );
    let intra_site = parse_path_spec(
        "spec.intraSite",
        spec.intra_site.as_ref(),
        DEFAULT_INTRA_SITE,
        errors,
    );
    let mut sites = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, site) in spec.sites.iter().enumerate() {
        let field = format!("spec.sites[{i}].name");
        if !is_site_name(&site.name) {
            errors.push(TopologyError::new(
                field,
                format!(
                    "{:?} is not a valid site name (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)",
                    site.name
                ),
            ));
            continue;
        }
        if let Some(first) = seen.insert(&site.name, i) {
            errors.push(TopologyError::new(
                field,
                format!(
                    "site {:?} is declared twice (also spec.sites[{first}])",
                    site.name
                ),
            ));
            continue;
        }
        sites.push((
            site.name.clone(),
            site.labels.clone(),
            site.transit.unwrap_or(true),
        ));
    }
    let mut links = Vec::new();
    let mut directions: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, link) in spec.links.iter().enumerate() {
        let field = format!("spec.links[{i}]");
        let mut ok = true;
        for (end, name) in [("from", &link.from), ("to", &link.to)] {
            if !is_site_name(name) {
                errors.push(TopologyError::new(
                    format!("{field}.{end}"),
                    format!("{name:?} is not a valid site name"),
                ));
                ok = false;
            }
        }
        if ok && link.from == link.to {
            errors.push(TopologyError::new(
                format!("{field}.to"),
                format!(
                    "a link joins two different sites (both ends are {:?})",
                    link.to
                ),
            ));
            ok = false;
        }
        let before = errors.len();
        let partial = parse_partial(
            &field,
            Some(&link.latency),
            link.jitter.as_deref(),
            link.bandwidth.as_deref(),
            link.loss.as_deref(),
            errors,
        );
        ok &= errors.len() == before;
        if !ok {
            continue;
        }
        let mut dirs = vec![(link.from.as_str(), link.to.as_str())];
        if !link.one_way {
            dirs.push((link.to.as_str(), link.from.as_str()));
        }
        let mut duplicate = false;
        for dir in dirs {
            if let Some(first) = directions.insert(dir, i) {
                errors.push(TopologyError::new(
                    field.clone(),
                    format!(
                        "duplicate link from {:?} to {:?} (also spec.links[{first}])",
                        dir.0, dir.1
                    ),
                ));
                duplicate = true;
                break;
            }
        }
        if !duplicate {
            links.push((
                link.from.clone(),
                link.to.clone(),
                partial.or(LINK_DEFAULTS),
                link.one_way,
                i,
            ));
        }
    }
    let max_age_text = spec
        .measurement_max_age
        .as_deref()
        .unwrap_or(DEFAULT_MEASUREMENT_MAX_AGE);
    let max_age_ns = match parse_duration_field(max_age_text) {
        Ok(d) => d.as_nanos() as f64,
        Err(e) => {
            errors.push(TopologyError::new("spec.measurementMaxAge", e.to_string()));
            0.0
        }
    };
    ParsedSpec {
        site_label: spec.site_label.clone(),
        same_node,
        intra_site,
        sites,
        links,
        max_age_ns,
    }
}

/// A directed edge of the graph, in compressed adjacency form.
#[derive(Clone, Copy, Debug)]
struct Edge {
    to: u32,
    metrics: LinkMetrics,
}

/// The directed edges of every site, in compressed form: the edges of site `s` are
/// `edges[start[s]..start[s + 1]]`, sorted by target.
#[derive(Clone, Debug, Default)]
struct Adjacency {
    start: Vec<u32>,
    edges: Vec<Edge>,
}

impl Adjacency {
    /// From directed edges keyed `(from, to)`; BTreeMap order groups them by source and
    /// sorts them by target.
    fn from_directed(site_count: usize, directed: &BTreeMap<(u32, u32), LinkMetrics>) -> Self {
        let mut start = vec![0u32; site_count + 1];
        for (a, _) in directed.keys() {
            start[*a as usize + 1] += 1;
        }
        for i in 0..site_count {
            start[i + 1] += start[i];
        }
        let edges = directed
            .iter()
            .map(|((_, b), m)| Edge {
                to: *b,
                metrics: *m,
            })
            .collect();
        Adjacency { start, edges }
    }

    fn directed(&self) -> BTreeMap<(u32, u32), LinkMetrics> {
        let mut out = BTreeMap::new();
        for a in 0..self.start.len().saturating_sub(1) {
            for e in self.of(a) {
                out.insert((a as u32, e.to), e.metrics);
            }
        }
        out
    }

    fn of(&self, site: usize) -> &[Edge] {
        match (self.start.get(site), self.start.get(site + 1)) {
            (Some(a), Some(b)) => &self.edges[*a as usize..*b as usize],
            _ => &[],
        }
    }

    /// The metrics of the directed edge `a -> b`, which exists when called from the search.
    fn edge(&self, a: u32, b: u32) -> LinkMetrics {
        let edges = self.of(a as usize);
        match edges.binary_search_by_key(&b, |e| e.to) {
            Ok(i) => edges[i].metrics,
            Err(_) => LINK_DEFAULTS,
        }
    }
}

/// Whether a parallel edge `candidate` carries the traffic instead of `current`: the one
/// with the lower latency does; on a tie the activated (or what-if) one does, since it was
/// set up for that traffic.
fn takes_over(candidate: &LinkMetrics, current: &LinkMetrics) -> bool {
    candidate.latency_ns <= current.latency_ns
}

/// A link added to the graph for a what-if question ([`NetworkGraph::route_with`]): the
/// network controller asking what a catalogue entry would change once activated. It joins
/// its sites beside their other links exactly as an activated path does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtraLink {
    pub from: SiteId,
    pub to: SiteId,
    pub metrics: LinkMetrics,
    pub one_way: bool,
}

/// A path between two locations: its metrics, the sites it passes (both ends included;
/// one site for two locations in the same site), and which extra links it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub metrics: PathMetrics,
    pub sites: Vec<SiteId>,
    /// Indices (into the `extra` given to [`NetworkGraph::route_with`]) of the extra links
    /// on the route, sorted.
    pub extras: Vec<usize>,
}

impl Route {
    /// Whether the route takes the extra link `index`.
    pub fn uses(&self, index: usize) -> bool {
        self.extras.binary_search(&index).is_ok()
    }
}

/// The network graph with all-pairs site metrics. Immutable once built; rebuild it when
/// the topology or the nodes change.
#[derive(Clone, Debug)]
pub struct NetworkGraph {
    site_names: Vec<String>,
    site_index: HashMap<String, SiteId>,
    site_labels: Vec<BTreeMap<String, String>>,
    site_declared: Vec<bool>,
    /// Whether paths may pass through the site.
    site_transit: Vec<bool>,
    /// Nodes of site `s`: `site_nodes[site_node_start[s]..site_node_start[s + 1]]`.
    site_node_start: Vec<u32>,
    site_nodes: Vec<NodeId>,
    node_names: Vec<String>,
    node_index: HashMap<String, NodeId>,
    node_site: Vec<SiteId>,
    same_node: PathMetrics,
    intra_site: PathMetrics,
    /// Row-major `sites x sites`: metrics of the path from row to column.
    matrix: Vec<PathMetrics>,
    /// Row-major: the site before the column on the path from the row; `u32::MAX` when
    /// unreachable or on the diagonal.
    predecessor: Vec<u32>,
    /// Directed edges: spec links, fresh measurements, activated paths.
    adjacency: Adjacency,
    site_label: String,
    spec_link_count: usize,
    measurements_used: usize,
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
        if let Some(topology) = topology {
            let (used, warned) =
                apply_measurements(topology, &parsed, &lookup, now, &mut directed)?;
            measurements_used = used;
            warnings = warned;
            activated_used = apply_activated(topology, &lookup, &mut directed, &mut warnings);
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

    #[inline]
    fn site_of_location(&self, location: Location) -> Option<SiteId> {
        match location {
            Location::Node(n) => self.node_site.get(n.index()).copied(),
            Location::Site(s) => (s.index() < self.site_names.len()).then_some(s),
        }
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

/// Applies the fresh measurements of a topology's status to the directed edges. Returns how
/// many were used and warnings about those that were not usable.
fn apply_measurements(
    topology: &NetworkTopology,
    parsed: &ParsedSpec,
    lookup: &dyn Fn(&str) -> Option<SiteId>,
    now: Timestamp,
    directed: &mut BTreeMap<(u32, u32), LinkMetrics>,
) -> Result<(usize, Vec<String>), TopologyError> {
    let Some(status) = &topology.status else {
        return Ok((0, Vec::new()));
    };
    // The newest fresh measurement of each direction wins.
    let mut newest: BTreeMap<(u32, u32), (Timestamp, usize)> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, m) in status.measured.iter().enumerate() {
        let field = format!("status.measured[{i}]");
        let mut errors = Vec::new();
        parse_partial(
            &field,
            m.latency.as_deref(),
            m.jitter.as_deref(),
            m.bandwidth.as_deref(),
            m.loss.as_deref(),
            &mut errors,
        );
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
        let age_ns = now.duration_since(m.time.0).as_nanos() as f64;
        if age_ns > parsed.max_age_ns {
            continue;
        }
        let (Some(a), Some(b)) = (lookup(&m.from), lookup(&m.to)) else {
            warnings.push(format!(
                "{field}: ignored: it names an unknown site ({:?} -> {:?})",
                m.from, m.to
            ));
            continue;
        };
        if a == b {
            warnings.push(format!("{field}: ignored: both ends are {:?}", m.from));
            continue;
        }
        let mut dirs = vec![(a.0, b.0)];
        if !m.one_way {
            dirs.push((b.0, a.0));
        }
        for dir in dirs {
            let newer = newest.get(&dir).is_none_or(|(t, _)| m.time.0 >= *t);
            if newer {
                newest.insert(dir, (m.time.0, i));
            }
        }
    }
    let mut used = BTreeSet::new();
    for (dir, (_, i)) in newest {
        let m = &status.measured[i];
        let partial = parse_partial(
            "",
            m.latency.as_deref(),
            m.jitter.as_deref(),
            m.bandwidth.as_deref(),
            m.loss.as_deref(),
            &mut Vec::new(),
        );
        match directed.get_mut(&dir) {
            Some(edge) => *edge = partial.or(*edge),
            None if partial.latency_ns.is_some() => {
                directed.insert(dir, partial.or(LINK_DEFAULTS));
            }
            None => {
                warnings.push(format!(
                    "status.measured[{i}]: ignored: it carries no latency and the spec has no link from {:?} to {:?}",
                    m.from, m.to
                ));
                continue;
            }
        }
        used.insert(i);
    }
    Ok((used.len(), warnings))
}

/// Reusable state of one single-source search.
struct Search {
    /// (latency, hops) of the best path found so far.
    dist: Vec<(u64, u32)>,
    pred: Vec<u32>,
    metrics: Vec<LinkMetrics>,
    settled: Vec<bool>,
    /// Sites in the order they were settled; the source first.
    order: Vec<u32>,
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
}

impl Search {
    fn new(n: usize) -> Search {
        Search {
            dist: vec![(u64::MAX, u32::MAX); n],
            pred: vec![u32::MAX; n],
            metrics: vec![LINK_DEFAULTS; n],
            settled: vec![false; n],
            order: Vec::with_capacity(n),
            heap: BinaryHeap::new(),
        }
    }

    fn run(&mut self, adjacency: &Adjacency, transit: &[bool], source: u32) {
        // Reset only what the previous run touched: every site that got a distance was
        // settled, since the heap is always drained.
        for v in self.order.drain(..) {
            let v = v as usize;
            self.dist[v] = (u64::MAX, u32::MAX);
            self.pred[v] = u32::MAX;
            self.settled[v] = false;
        }
        self.heap.clear();
        let s = source as usize;
        self.dist[s] = (0, 0);
        self.metrics[s] = LinkMetrics {
            latency_ns: 0,
            jitter_ns: 0.0,
            bandwidth_bps: f64::INFINITY,
            loss: 0.0,
        };
        self.heap.push(Reverse((0, 0, source)));
        while let Some(Reverse((latency, hops, u))) = self.heap.pop() {
            let ui = u as usize;
            if self.settled[ui] || (latency, hops) != self.dist[ui] {
                continue;
            }
            self.settled[ui] = true;
            self.order.push(u);
            if ui != s {
                let p = self.pred[ui] as usize;
                let edge = adjacency.edge(self.pred[ui], u);
                let before = self.metrics[p];
                self.metrics[ui] = LinkMetrics {
                    latency_ns: latency,
                    jitter_ns: before.jitter_ns + edge.jitter_ns,
                    bandwidth_bps: before.bandwidth_bps.min(edge.bandwidth_bps),
                    loss: 1.0 - (1.0 - before.loss) * (1.0 - edge.loss),
                };
            }
            // Paths end at a site that carries no transit; they do not pass through it.
            if ui != s && !transit.get(ui).copied().unwrap_or(true) {
                continue;
            }
            for e in adjacency.of(ui) {
                let v = e.to as usize;
                if self.settled[v] {
                    continue;
                }
                let candidate = (
                    latency.saturating_add(e.metrics.latency_ns),
                    hops.saturating_add(1),
                );
                let better = match candidate.cmp(&self.dist[v]) {
                    Ordering::Less => true,
                    Ordering::Equal => self.names_before(u, self.pred[v]),
                    Ordering::Greater => false,
                };
                if better {
                    self.dist[v] = candidate;
                    self.pred[v] = u;
                    self.heap.push(Reverse((candidate.0, candidate.1, e.to)));
                }
            }
        }
    }

    /// Whether the path to `a` comes before the path to `b` in site-name order. Both are
    /// settled and have the same number of hops; site ids are in name order, so the first
    /// differing site from the source decides, which is the last one found walking back.
    fn names_before(&self, a: u32, b: u32) -> bool {
        if b == u32::MAX {
            return true;
        }
        let (mut x, mut y) = (a, b);
        let mut decision = x < y;
        while x != y && x != u32::MAX && y != u32::MAX {
            decision = x < y;
            x = self.pred[x as usize];
            y = self.pred[y as usize];
        }
        decision
    }
}

impl NetworkGraph {
    /// The route from `a` to `b` if the `extra` links were added to the graph as activated
    /// paths are (beside the existing links; the lower latency carries the traffic, an
    /// extra link on a tie). With no extra links it is the route the graph already has.
    /// One single-source search over a copy of the edges: O(E log S).
    pub fn route_with(&self, a: Location, b: Location, extra: &[ExtraLink]) -> Option<Route> {
        if let (Location::Node(x), Location::Node(y)) = (a, b)
            && x == y
        {
            let site = self.node_site.get(x.index()).copied()?;
            return Some(Route {
                metrics: self.same_node,
                sites: vec![site],
                extras: Vec::new(),
            });
        }
        let sa = self.site_of_location(a)?;
        let sb = self.site_of_location(b)?;
        if sa == sb {
            return Some(Route {
                metrics: self.intra_site,
                sites: vec![sa],
                extras: Vec::new(),
            });
        }
        let n = self.site_names.len();
        let mut directed = self.adjacency.directed();
        // Direction -> the extra link that carries it.
        let mut extra_dirs: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for (index, link) in extra.iter().enumerate() {
            if link.from == link.to || link.from.index() >= n || link.to.index() >= n {
                continue;
            }
            let mut dirs = vec![(link.from.0, link.to.0)];
            if !link.one_way {
                dirs.push((link.to.0, link.from.0));
            }
            for dir in dirs {
                let replace = directed
                    .get(&dir)
                    .is_none_or(|current| takes_over(&link.metrics, current));
                if replace {
                    directed.insert(dir, link.metrics);
                    extra_dirs.insert(dir, index);
                }
            }
        }
        let adjacency = Adjacency::from_directed(n, &directed);
        let mut search = Search::new(n);
        search.run(&adjacency, &self.site_transit, sa.0);
        let target = sb.index();
        if !search.settled[target] {
            return None;
        }
        let mut sites = vec![sb];
        let mut at = sb.0;
        let mut extras = Vec::new();
        while at != sa.0 {
            let p = search.pred[at as usize];
            if p == u32::MAX || sites.len() > n {
                return None;
            }
            extras.extend(extra_dirs.get(&(p, at)).copied());
            at = p;
            sites.push(SiteId(p));
        }
        sites.reverse();
        extras.sort_unstable();
        extras.dedup();
        Some(Route {
            metrics: search.metrics[target].compact(),
            sites,
            extras,
        })
    }
}

/// Adds the paths the network controller activated (`status.activatedPaths`) as links
/// beside the others: per direction, the lower latency carries the traffic, an activated
/// path on a tie (see [`takes_over`]). Activated paths are written by a controller, so one
/// that cannot be used (unknown site, bad value) is skipped with a warning rather than
/// failing the topology. Returns how many were used.
fn apply_activated(
    topology: &NetworkTopology,
    lookup: &dyn Fn(&str) -> Option<SiteId>,
    directed: &mut BTreeMap<(u32, u32), LinkMetrics>,
    warnings: &mut Vec<String>,
) -> usize {
    let Some(status) = &topology.status else {
        return 0;
    };
    let mut used = 0;
    for (i, path) in status.activated_paths.iter().enumerate() {
        let field = format!("status.activatedPaths[{i}]");
        let metrics = match LinkMetrics::parse(
            &field,
            &path.latency,
            path.jitter.as_deref(),
            path.bandwidth.as_deref(),
            path.loss.as_deref(),
        ) {
            Ok(m) => m,
            Err(errors) => {
                for e in errors {
                    warnings.push(format!("{e} (the activated path is ignored)"));
                }
                continue;
            }
        };
        let (Some(a), Some(b)) = (lookup(&path.from), lookup(&path.to)) else {
            warnings.push(format!(
                "{field}: ignored: it names an unknown site ({:?} -> {:?})",
                path.from, path.to
            ));
            continue;
        };
        if a == b {
            warnings.push(format!("{field}: ignored: both ends are {:?}", path.from));
            continue;
        }
        let mut dirs = vec![(a.0, b.0)];
        if !path.one_way {
            dirs.push((b.0, a.0));
        }
        for dir in dirs {
            let replace = directed
                .get(&dir)
                .is_none_or(|current| takes_over(&metrics, current));
            if replace {
                directed.insert(dir, metrics);
            }
        }
        used += 1;
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(yaml: &str) -> NetworkTopology {
        match serde_saphyr::from_str::<NetworkTopology>(yaml) {
            Ok(t) => t,
            Err(e) => panic!("bad test topology: {e}"),
        }
    }

    fn node(name: &str, zone: Option<&str>) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            labels: zone
                .map(|z| BTreeMap::from([(DEFAULT_SITE_LABEL.to_string(), z.to_string())]))
                .unwrap_or_default(),
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn build(t: &NetworkTopology, nodes: &[NodeInfo]) -> NetworkGraph {
        match NetworkGraph::build(Some(t), nodes, now()) {
            Ok(g) => g,
            Err(e) => panic!("build: {e}"),
        }
    }

    fn build_err(yaml: &str, nodes: &[NodeInfo]) -> String {
        match NetworkGraph::build(Some(&topology(yaml)), nodes, now()) {
            Ok(_) => panic!("expected an error for\n{yaml}"),
            Err(e) => e.to_string(),
        }
    }

    const HEADER: &str = "apiVersion: network.edgeplane.io/v1alpha1\nkind: NetworkTopology\nmetadata: {name: default}\n";

    /// a - b - c with a slower direct a - c, an equal-latency detour a - d - c, a one-way
    /// link from c to the users, an isolated site e.
    fn metro() -> (NetworkGraph, Vec<NodeInfo>) {
        let t = topology(&format!(
            "{HEADER}spec:
  sites: [{{name: users, labels: {{kind: users}}}}, {{name: e}}, {{name: d}}, {{name: b}}]
  links:
  - {{from: a, to: b, latency: 1ms, jitter: 100us, bandwidth: 10Gbps, loss: '0.1%'}}
  - {{from: b, to: c, latency: 2ms, jitter: 200us, bandwidth: 1Gbps, loss: '0.2%'}}
  - {{from: a, to: c, latency: 4ms}}
  - {{from: a, to: d, latency: 2ms, jitter: 1ms}}
  - {{from: d, to: c, latency: 1ms}}
  - {{from: c, to: users, latency: 1ms, oneWay: true}}
"
        ));
        let nodes = vec![
            node("n1", Some("a")),
            node("n2", Some("a")),
            node("n3", Some("c")),
            node("n4", None),
        ];
        (build(&t, &nodes), nodes)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-9)
    }

    fn id(g: &NetworkGraph, node: &str) -> Location {
        Location::Node(g.node_id(node).unwrap_or(NodeId(u32::MAX)))
    }

    fn site(g: &NetworkGraph, name: &str) -> Location {
        Location::Site(g.site_id(name).unwrap_or(SiteId(u32::MAX)))
    }

    #[test]
    fn sites_come_from_declarations_and_node_labels_in_name_order() {
        let (g, _) = metro();
        let names: Vec<&str> = g.sites().map(|s| g.site_name(s)).collect();
        // n4 has no zone label: it is a site of its own, named like the node.
        assert_eq!(names, ["a", "b", "c", "d", "e", "n4", "users"]);
        let a = g.site_id("a").unwrap_or(SiteId(0));
        assert_eq!(g.nodes_in(a).len(), 2);
        assert!(
            g.nodes_in(g.site_id("users").unwrap_or(SiteId(0)))
                .is_empty()
        );
        assert_eq!(g.site_of(NodeId(2)), g.site_id("c").unwrap_or(SiteId(0)));
        assert!(g.is_declared(g.site_id("users").unwrap_or(SiteId(0))) && !g.is_declared(a));
        assert_eq!(
            g.site_labels(g.site_id("users").unwrap_or(SiteId(0)))
                .get("kind")
                .map(String::as_str),
            Some("users")
        );
        assert_eq!(g.spec_link_count(), 6);
        assert_eq!(g.edge_count(), 11);
    }

    #[test]
    fn same_node_intra_site_and_node_at_its_own_site() {
        let (g, _) = metro();
        assert_eq!(
            g.metrics(id(&g, "n1"), id(&g, "n1")),
            Some(DEFAULT_SAME_NODE)
        );
        assert_eq!(
            g.metrics(id(&g, "n1"), id(&g, "n2")),
            Some(DEFAULT_INTRA_SITE)
        );
        assert_eq!(
            g.metrics(id(&g, "n1"), site(&g, "a")),
            Some(DEFAULT_INTRA_SITE)
        );
        assert_eq!(
            g.metrics(site(&g, "a"), id(&g, "n2")),
            Some(DEFAULT_INTRA_SITE)
        );
        assert_eq!(
            g.metrics(site(&g, "users"), site(&g, "users")),
            Some(DEFAULT_INTRA_SITE)
        );
    }

    #[test]
    fn multi_hop_path_adds_latency_and_jitter_takes_the_bottleneck_and_compounds_loss() {
        let (g, _) = metro();
        // a -> b -> c: 1ms + 2ms = 3ms beats the direct 4ms link; a -> d -> c is also 3ms
        // in 2 hops, and [a, b, c] comes before [a, d, c] by name.
        let m = g.metrics(id(&g, "n1"), id(&g, "n3"));
        let Some(m) = m else { panic!("no path") };
        assert!(close(
            m.value(PathMetric::Latency).magnitude().unwrap_or(0.0),
            3e6
        ));
        assert!(close(
            m.value(PathMetric::Jitter).magnitude().unwrap_or(0.0),
            300e3
        ));
        assert!(close(
            m.value(PathMetric::Bandwidth).magnitude().unwrap_or(0.0),
            1e9
        ));
        // 1 - (1 - 0.001)(1 - 0.002) = 0.002998
        assert!(close(
            m.value(PathMetric::PacketLoss).magnitude().unwrap_or(0.0),
            0.002998
        ));
        assert_eq!(m.value(PathMetric::Latency).to_string(), "3ms");
        assert_eq!(m.value(PathMetric::PacketLoss).to_string(), "0.2998%");
        let path = g
            .path(g.site_of(NodeId(0)), g.site_of(NodeId(2)))
            .unwrap_or_default();
        let names: Vec<&str> = path.iter().map(|s| g.site_name(*s)).collect();
        assert_eq!(names, ["a", "b", "c"]);
        // The reverse direction takes the same links backwards.
        let back = g.metrics(id(&g, "n3"), id(&g, "n1"));
        assert_eq!(back, Some(m));
    }

    #[test]
    fn one_way_links_and_unreachable_sites() {
        let (g, _) = metro();
        // c -> users is one-way: users can be reached from n3 (and from a via c) but
        // nothing leads back from users.
        let to_users = g.metrics(id(&g, "n3"), site(&g, "users"));
        assert_eq!(to_users.map(|m| m.latency_ns), Some(1e6));
        assert_eq!(g.metrics(site(&g, "users"), id(&g, "n3")), None);
        assert_eq!(
            g.metrics(id(&g, "n1"), site(&g, "users"))
                .map(|m| m.latency_ns),
            Some(4e6)
        );
        // e has no link at all; n4 is a site of its own without links.
        assert_eq!(g.metrics(id(&g, "n1"), site(&g, "e")), None);
        assert_eq!(g.metrics(id(&g, "n1"), id(&g, "n4")), None);
        assert_eq!(g.path(SiteId(0), g.site_id("e").unwrap_or(SiteId(0))), None);
        // Ids that did not come from this graph are no path either, not a panic.
        assert_eq!(g.metrics(Location::Node(NodeId(99)), id(&g, "n1")), None);
        assert_eq!(g.metrics(Location::Site(SiteId(99)), id(&g, "n1")), None);
    }

    #[test]
    fn ties_prefer_fewer_hops_then_names() {
        // x -> y directly in 3ms, or x -> a -> y in 1ms + 2ms: the same latency, so the
        // direct link (1 hop) wins; its jitter tells which path was taken.
        let t = topology(&format!(
            "{HEADER}spec:
  sites: [{{name: x}}, {{name: y}}, {{name: a}}, {{name: m}}, {{name: z}}, {{name: w}}]
  links:
  - {{from: x, to: y, latency: 3ms, jitter: 1us}}
  - {{from: x, to: a, latency: 1ms, jitter: 5us}}
  - {{from: a, to: y, latency: 2ms, jitter: 5us}}
  - {{from: x, to: z, latency: 1ms, jitter: 7us}}
  - {{from: z, to: w, latency: 1ms, jitter: 7us}}
  - {{from: x, to: m, latency: 1ms, jitter: 3us}}
  - {{from: m, to: w, latency: 1ms, jitter: 3us}}
"
        ));
        let g = build(&t, &[]);
        let s = |n: &str| g.site_id(n).unwrap_or(SiteId(0));
        assert_eq!(
            g.site_metrics(s("x"), s("y")).map(|m| m.jitter_ns),
            Some(1e3)
        );
        // x -> m -> w and x -> z -> w: same latency and hops; m comes before z.
        assert_eq!(
            g.site_metrics(s("x"), s("w")).map(|m| m.jitter_ns),
            Some(6e3)
        );
        let names: Vec<&str> = g
            .path(s("x"), s("w"))
            .unwrap_or_default()
            .iter()
            .map(|id| g.site_name(*id))
            .collect();
        assert_eq!(names, ["x", "m", "w"]);
    }

    #[test]
    fn paths_end_at_sites_without_transit_but_never_pass_through_them() {
        let yaml = |transit: &str| {
            format!(
                "{HEADER}spec:
  sites: [{{name: stadium{transit}}}]
  links:
  - {{from: stadium, to: edge-1, latency: 1ms}}
  - {{from: stadium, to: edge-2, latency: 1ms}}
  - {{from: edge-1, to: metro, latency: 3ms}}
  - {{from: edge-2, to: metro, latency: 3ms}}
"
            )
        };
        let nodes = [
            node("e1", Some("edge-1")),
            node("e2", Some("edge-2")),
            node("m", Some("metro")),
        ];
        let through = build(&topology(&yaml("")), &nodes);
        assert_eq!(
            through
                .metrics(id(&through, "e1"), id(&through, "e2"))
                .map(|m| m.latency_ns),
            Some(2e6)
        );
        let users = build(&topology(&yaml(", transit: false")), &nodes);
        assert!(!users.is_transit(users.site_id("stadium").unwrap_or(SiteId(0))));
        assert_eq!(
            users
                .metrics(id(&users, "e1"), id(&users, "e2"))
                .map(|m| m.latency_ns),
            Some(6e6)
        );
        // The users are still reached, and reach out.
        assert_eq!(
            users
                .metrics(id(&users, "m"), site(&users, "stadium"))
                .map(|m| m.latency_ns),
            Some(4e6)
        );
        assert_eq!(
            users
                .metrics(site(&users, "stadium"), id(&users, "m"))
                .map(|m| m.latency_ns),
            Some(4e6)
        );
    }

    #[test]
    fn without_a_topology_only_same_node_and_intra_site_are_known() {
        let nodes = [
            node("n1", Some("a")),
            node("n2", Some("a")),
            node("n3", Some("b")),
        ];
        let g = match NetworkGraph::build(None, &nodes, now()) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            g.metrics(id(&g, "n1"), id(&g, "n2")),
            Some(DEFAULT_INTRA_SITE)
        );
        assert_eq!(g.metrics(id(&g, "n1"), id(&g, "n3")), None);
    }

    #[test]
    fn same_node_and_intra_site_can_be_set() {
        let t = topology(&format!(
            "{HEADER}spec:\n  sameNode: {{latency: 5us}}\n  intraSite: {{latency: 1ms, bandwidth: 25Gbps, loss: '0.5%'}}\n"
        ));
        let nodes = [node("n1", Some("a")), node("n2", Some("a"))];
        let g = build(&t, &nodes);
        let same = g.same_node();
        assert_eq!(same.latency_ns, 5e3);
        assert_eq!(same.jitter_ns, DEFAULT_SAME_NODE.jitter_ns);
        let intra = g.metrics(id(&g, "n1"), id(&g, "n2"));
        assert_eq!(
            intra.map(|m| m.value(PathMetric::PacketLoss).to_string()),
            Some("0.5%".into())
        );
        assert_eq!(intra.map(|m| m.bandwidth_bps), Some(25e9));
    }

    #[test]
    fn a_custom_site_label_and_nodes_in_declared_sites() {
        let t = topology(&format!(
            "{HEADER}spec:\n  siteLabel: example.com/pop\n  sites: [{{name: pop-1}}]\n  links: [{{from: pop-1, to: pop-2, latency: 2ms}}]\n"
        ));
        let nodes = [
            NodeInfo {
                name: "n1".into(),
                labels: BTreeMap::from([("example.com/pop".to_string(), "pop-1".to_string())]),
            },
            NodeInfo {
                name: "n2".into(),
                labels: BTreeMap::from([("example.com/pop".to_string(), "pop-2".to_string())]),
            },
        ];
        let g = build(&t, &nodes);
        assert_eq!(
            g.metrics(id(&g, "n1"), id(&g, "n2")).map(|m| m.latency_ns),
            Some(2e6)
        );
    }

    #[test]
    fn measurements_override_the_spec_when_fresh() {
        let yaml = |time: &str| {
            format!(
                "{HEADER}spec:
  sites: [{{name: a}}, {{name: b}}, {{name: c}}]
  links:
  - {{from: a, to: b, latency: 5ms, jitter: 1ms, bandwidth: 1Gbps}}
status:
  measured:
  - {{from: a, to: b, latency: 7ms, time: '{time}'}}
  - {{from: b, to: c, latency: 3ms, oneWay: true, time: '{time}'}}
  - {{from: a, to: nowhere, latency: 3ms, time: '{time}'}}
"
            )
        };
        let s = |g: &NetworkGraph, n: &str| g.site_id(n).unwrap_or(SiteId(0));
        // One minute old: fresh (the default bound is 5m).
        let g = build(&topology(&yaml("2026-01-01T11:59:00Z")), &[]);
        let ab = g.site_metrics(s(&g, "a"), s(&g, "b"));
        assert_eq!(ab.map(|m| m.latency_ns), Some(7e6));
        // Metrics the measurement does not carry keep the spec's values.
        assert_eq!(ab.map(|m| m.jitter_ns), Some(1e6));
        assert_eq!(ab.map(|m| m.bandwidth_bps), Some(1e9));
        assert_eq!(
            g.site_metrics(s(&g, "b"), s(&g, "a")).map(|m| m.latency_ns),
            Some(7e6)
        );
        // A measured link the spec lacks is added, here one-way.
        assert_eq!(
            g.site_metrics(s(&g, "a"), s(&g, "c")).map(|m| m.latency_ns),
            Some(10e6)
        );
        assert_eq!(g.site_metrics(s(&g, "c"), s(&g, "a")), None);
        assert_eq!(g.measurements_used(), 2);
        assert_eq!(g.warnings().len(), 1);
        assert!(g.warnings()[0].starts_with("status.measured[2]: ignored"));
        // Ten minutes old: stale, the spec applies and nothing is added.
        let g = build(&topology(&yaml("2026-01-01T11:50:00Z")), &[]);
        assert_eq!(
            g.site_metrics(s(&g, "a"), s(&g, "b")).map(|m| m.latency_ns),
            Some(5e6)
        );
        assert_eq!(g.site_metrics(s(&g, "a"), s(&g, "c")), None);
        assert_eq!(g.measurements_used(), 0);
        // A wider bound makes the same measurements fresh.
        let wide =
            yaml("2026-01-01T11:50:00Z").replace("spec:\n", "spec:\n  measurementMaxAge: 1h\n");
        let g = build(&topology(&wide), &[]);
        assert_eq!(
            g.site_metrics(s(&g, "a"), s(&g, "b")).map(|m| m.latency_ns),
            Some(7e6)
        );
    }

    /// The degraded-link repair the network controller performs: metro - edge is measured
    /// at 30ms; an activated 4ms path between the same sites carries the traffic instead,
    /// and the metrics between the sites (and beyond them) are the activated path's.
    #[test]
    fn an_activated_path_replaces_a_degraded_link() {
        let yaml = |activated: &str| {
            format!(
                "{HEADER}spec:
  sites: [{{name: metro}}, {{name: edge}}, {{name: users, transit: false}}]
  links:
  - {{from: metro, to: edge, latency: 4ms, jitter: 300us, bandwidth: 10Gbps}}
  - {{from: users, to: edge, latency: 1ms}}
status:
  measured:
  - {{from: metro, to: edge, latency: 30ms, jitter: 5ms, time: '2026-01-01T11:59:00Z'}}
{activated}"
            )
        };
        let nodes = [node("m", Some("metro")), node("e", Some("edge"))];
        let degraded = build(&topology(&yaml("")), &nodes);
        let m = degraded.metrics(id(&degraded, "m"), site(&degraded, "users"));
        assert_eq!(m.map(|m| m.latency_ns), Some(31e6));
        assert_eq!(degraded.activated_paths_used(), 0);
        let repaired = build(
            &topology(&yaml(
                "  activatedPaths:
  - {from: edge, to: metro, latency: 4ms, jitter: 100us, bandwidth: 1Gbps, loss: '0.001%', catalogue: default, entry: slice-a, bindings: [ar/b1]}
",
            )),
            &nodes,
        );
        assert_eq!(repaired.activated_paths_used(), 1);
        let between = repaired.metrics(id(&repaired, "m"), id(&repaired, "e"));
        let Some(between) = between else {
            panic!("no path")
        };
        assert_eq!(between.value(PathMetric::Latency).to_string(), "4ms");
        assert_eq!(between.value(PathMetric::Jitter).to_string(), "100us");
        assert_eq!(between.value(PathMetric::Bandwidth).to_string(), "1Gbps");
        assert_eq!(between.value(PathMetric::PacketLoss).to_string(), "0.001%");
        // Both ways (the path is not one-way), and onwards to the users.
        assert_eq!(
            repaired
                .metrics(id(&repaired, "e"), id(&repaired, "m"))
                .map(|m| m.latency_ns),
            Some(4e6)
        );
        assert_eq!(
            repaired
                .metrics(id(&repaired, "m"), site(&repaired, "users"))
                .map(|m| m.latency_ns),
            Some(5e6)
        );
        // What the controller asks before activating gives the same answer.
        let extra = ExtraLink {
            from: degraded.site_id("edge").unwrap_or(SiteId(0)),
            to: degraded.site_id("metro").unwrap_or(SiteId(0)),
            metrics: LinkMetrics::parse("", "4ms", Some("100us"), Some("1Gbps"), Some("0.001%"))
                .unwrap_or(LINK_DEFAULTS),
            one_way: false,
        };
        let route = degraded.route_with(id(&degraded, "m"), site(&degraded, "users"), &[extra]);
        let Some(route) = route else {
            panic!("no route")
        };
        assert!(route.uses(0));
        assert_eq!(route.extras, [0]);
        assert_eq!(route.metrics.latency_ns, 5e6);
        let names: Vec<&str> = route.sites.iter().map(|s| degraded.site_name(*s)).collect();
        assert_eq!(names, ["metro", "edge", "users"]);
    }

    #[test]
    fn a_slower_activated_path_stays_beside_a_faster_link_and_bad_ones_are_ignored() {
        let t = topology(&format!(
            "{HEADER}spec:
  sites: [{{name: a}}, {{name: b}}, {{name: c}}]
  links: [{{from: a, to: b, latency: 2ms, bandwidth: 100Mbps}}]
status:
  activatedPaths:
  - {{from: a, to: b, latency: 3ms, bandwidth: 10Gbps, catalogue: x, entry: slow}}
  - {{from: b, to: c, latency: 1ms, oneWay: true, catalogue: x, entry: new-link}}
  - {{from: a, to: nowhere, latency: 1ms, catalogue: x, entry: lost}}
  - {{from: a, to: c, latency: fast, catalogue: x, entry: typo}}
"
        ));
        let g = build(&t, &[]);
        let s = |n: &str| g.site_id(n).unwrap_or(SiteId(0));
        // Traffic keeps the 2ms link: the 3ms path is beside it, not instead of it.
        assert_eq!(
            g.site_metrics(s("a"), s("b")).map(|m| m.bandwidth_bps),
            Some(1e8)
        );
        // An activated path where there was no link adds one, here one-way.
        assert_eq!(
            g.site_metrics(s("a"), s("c")).map(|m| m.latency_ns),
            Some(3e6)
        );
        assert_eq!(g.site_metrics(s("c"), s("a")), None);
        assert_eq!(g.activated_paths_used(), 2);
        assert_eq!(
            g.warnings(),
            [
                "status.activatedPaths[2]: ignored: it names an unknown site (\"a\" -> \"nowhere\")",
                "status.activatedPaths[3].latency: \"fast\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h) (the activated path is ignored)",
            ]
        );
        // With no extra links a route is the graph's own.
        let r = g.route_with(Location::Site(s("a")), Location::Site(s("c")), &[]);
        assert_eq!(
            r.as_ref().map(|r| r.metrics),
            g.site_metrics(s("a"), s("c"))
        );
        assert_eq!(r.map(|r| r.extras), Some(vec![]));
    }

    #[test]
    fn the_newest_measurement_of_a_direction_wins() {
        let t = topology(&format!(
            "{HEADER}spec:
  sites: [{{name: a}}, {{name: b}}]
  links: [{{from: a, to: b, latency: 5ms}}]
status:
  measured:
  - {{from: a, to: b, latency: 9ms, time: '2026-01-01T11:59:30Z'}}
  - {{from: a, to: b, latency: 6ms, time: '2026-01-01T11:58:00Z'}}
"
        ));
        let g = build(&t, &[]);
        assert_eq!(
            g.site_metrics(SiteId(0), SiteId(1)).map(|m| m.latency_ns),
            Some(9e6)
        );
    }

    #[test]
    fn invalid_topologies_name_the_field() {
        let sites = "  sites: [{name: a}, {name: b}]\n";
        let cases = [
            (
                "  links: [{from: a, to: b, latency: fast}]\n",
                "spec.links[0].latency: \"fast\" is not a duration",
            ),
            (
                "  links: [{from: a, to: b, latency: 1ms, bandwidth: lots}]\n",
                "spec.links[0].bandwidth: \"lots\" is not a bit rate",
            ),
            (
                "  links: [{from: a, to: b, latency: -1ms}]\n",
                "spec.links[0].latency: \"-1ms\" is not a duration",
            ),
            (
                "  links: [{from: a, to: b, latency: 1ms, loss: '120%'}]\n",
                "spec.links[0].loss: \"120%\" is not a ratio",
            ),
            (
                "  links: [{from: a, to: b, latency: 1ms}, {from: b, to: zz, latency: 1ms}]\n",
                "spec.links[1].to: unknown site \"zz\" (declare it in spec.sites or label a node with topology.kubernetes.io/zone=zz)",
            ),
            (
                "  links: [{from: a, to: a, latency: 1ms}]\n",
                "spec.links[0].to: a link joins two different sites",
            ),
            (
                "  links: [{from: a, to: b, latency: 1ms}, {from: b, to: a, latency: 2ms, oneWay: true}]\n",
                "spec.links[1]: duplicate link from \"b\" to \"a\" (also spec.links[0])",
            ),
            (
                "  intraSite: {latency: 1 ms}\n",
                "spec.intraSite.latency: \"1 ms\" is not a duration",
            ),
            (
                "  measurementMaxAge: soon\n",
                "spec.measurementMaxAge: \"soon\" is not a duration",
            ),
        ];
        for (extra, expected) in cases {
            let yaml = format!("{HEADER}spec:\n{sites}{extra}");
            let got = build_err(&yaml, &[]);
            assert!(
                got.starts_with(expected),
                "{extra}\n  expected: {expected}\n  got:      {got}"
            );
        }
        let dup = format!("{HEADER}spec:\n  sites: [{{name: a}}, {{name: b}}, {{name: a}}]\n");
        assert_eq!(
            build_err(&dup, &[]),
            "spec.sites[2].name: site \"a\" is declared twice (also spec.sites[0])"
        );
        let bad_name = format!("{HEADER}spec:\n  sites: [{{name: -a}}]\n");
        assert!(
            build_err(&bad_name, &[])
                .starts_with("spec.sites[0].name: \"-a\" is not a valid site name")
        );
        let nodes = [node("n1", Some("a")), node("n1", Some("b"))];
        assert_eq!(
            build_err(&format!("{HEADER}spec: {{}}\n"), &nodes),
            "node \"n1\" appears twice"
        );
        let measured = format!(
            "{HEADER}spec: {{}}\nstatus:\n  measured: [{{from: a, to: b, jitter: lots, time: '2026-01-01T00:00:00Z'}}]\n"
        );
        assert!(
            build_err(&measured, &[])
                .starts_with("status.measured[0].jitter: \"lots\" is not a duration")
        );
    }

    #[test]
    fn check_reports_every_problem_without_nodes() {
        let t = topology(&format!(
            "{HEADER}spec:\n  sites: [{{name: a}}, {{name: a}}]\n  links:\n  - {{from: a, to: unknown-here, latency: x}}\n  - {{from: a, to: b, latency: 1ms, jitter: y}}\n"
        ));
        let fields: Vec<String> = check_topology(&t).into_iter().map(|e| e.field).collect();
        // Unknown sites are not judged here: they may be sites of nodes.
        assert_eq!(
            fields,
            [
                "spec.sites[1].name",
                "spec.links[0].latency",
                "spec.links[1].jitter"
            ]
        );
    }

    #[test]
    fn unlimited_bandwidth_is_infinite_and_described() {
        let t = topology(&format!(
            "{HEADER}spec:\n  sites: [{{name: a}}, {{name: b}}]\n  links: [{{from: a, to: b, latency: 2ms}}]\n"
        ));
        let g = build(&t, &[]);
        let m = g.site_metrics(SiteId(0), SiteId(1));
        assert_eq!(
            m.map(|m| m.describe()),
            Some("latency 2ms, jitter 0ns, bandwidth unlimited, loss 0%".into())
        );
    }
}

#[cfg(test)]
mod brute_force {
    //! The all-pairs search agrees with enumerating every simple path.
    use super::*;
    use edgeplane_api::{Link, NetworkTopologySpec, TopologySite};
    use proptest::prelude::*;

    /// The best path by (latency, hops, names) among all simple paths from `s` to `t`.
    fn best(
        adjacency: &BTreeMap<usize, Vec<(usize, u64)>>,
        transit: &[bool],
        s: usize,
        t: usize,
    ) -> Option<(u64, Vec<usize>)> {
        fn walk(
            adjacency: &BTreeMap<usize, Vec<(usize, u64)>>,
            transit: &[bool],
            path: &mut Vec<usize>,
            latency: u64,
            t: usize,
            best: &mut Option<(u64, Vec<usize>)>,
        ) {
            let at = *path.last().unwrap_or(&0);
            if at == t {
                let better = best.as_ref().is_none_or(|(l, p)| {
                    (latency, path.len(), path.as_slice()) < (*l, p.len(), p.as_slice())
                });
                if better {
                    *best = Some((latency, path.clone()));
                }
                return;
            }
            if path.len() > 1 && !transit[at] {
                return;
            }
            for (next, l) in adjacency.get(&at).into_iter().flatten() {
                if !path.contains(next) {
                    path.push(*next);
                    walk(adjacency, transit, path, latency + l, t, best);
                    path.pop();
                }
            }
        }
        let mut result = None;
        walk(adjacency, transit, &mut vec![s], 0, t, &mut result);
        result
    }

    proptest! {
        /// Asking what an extra link would change (`route_with`) gives what the graph says
        /// once the link is activated in the topology's status, and nothing changes
        /// without one.
        #[test]
        fn what_if_routes_match_the_graph_with_the_path_activated(
            links in prop::collection::vec((0usize..5, 0usize..5, 1u64..6, 1u64..900), 0..10),
            extra in (0usize..5, 0usize..5, 1u64..6, 1u64..900, any::<bool>()),
        ) {
            let names: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
            let mut spec_links = Vec::new();
            let mut seen = BTreeSet::new();
            for (a, b, ms, mbps) in links {
                if a == b || seen.contains(&(a, b)) || seen.contains(&(b, a)) {
                    continue;
                }
                seen.insert((a, b));
                spec_links.push(Link {
                    from: names[a].clone(),
                    to: names[b].clone(),
                    latency: format!("{ms}ms"),
                    jitter: Some(format!("{}us", mbps % 50)),
                    bandwidth: Some(format!("{mbps}Mbps")),
                    loss: None,
                    one_way: false,
                });
            }
            let (ea, eb, ems, embps, one_way) = extra;
            prop_assume!(ea != eb);
            let mut topology = NetworkTopology::new("t", NetworkTopologySpec {
                site_label: DEFAULT_SITE_LABEL.into(),
                same_node: None,
                intra_site: None,
                sites: names.iter().map(|n| TopologySite { name: n.clone(), labels: BTreeMap::new(), transit: None }).collect(),
                links: spec_links,
                measurement_max_age: None,
            });
            let before = NetworkGraph::build(Some(&topology), &[], Timestamp::UNIX_EPOCH)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (latency, jitter, bandwidth) = (format!("{ems}ms"), format!("{}us", embps % 70), format!("{embps}Mbps"));
            topology.status = Some(edgeplane_api::NetworkTopologyStatus {
                activated_paths: vec![edgeplane_api::ActivatedPath {
                    from: names[ea].clone(),
                    to: names[eb].clone(),
                    one_way,
                    latency: latency.clone(),
                    jitter: Some(jitter.clone()),
                    bandwidth: Some(bandwidth.clone()),
                    loss: None,
                    catalogue: "c".into(),
                    entry: "e".into(),
                    bindings: vec![],
                }],
                ..Default::default()
            });
            let after = NetworkGraph::build(Some(&topology), &[], Timestamp::UNIX_EPOCH)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let link = ExtraLink {
                from: SiteId(ea as u32),
                to: SiteId(eb as u32),
                metrics: LinkMetrics::parse("", &latency, Some(&jitter), Some(&bandwidth), None)
                    .map_err(|_| TestCaseError::fail("extra link"))?,
                one_way,
            };
            for s in 0..5u32 {
                for t in 0..5u32 {
                    let (a, b) = (Location::Site(SiteId(s)), Location::Site(SiteId(t)));
                    let plain = before.route_with(a, b, &[]);
                    prop_assert_eq!(plain.as_ref().map(|r| r.metrics), before.metrics(a, b));
                    if s != t {
                        prop_assert_eq!(plain.map(|r| r.sites), before.path(SiteId(s), SiteId(t)));
                    }
                    let what_if = before.route_with(a, b, &[link]);
                    prop_assert_eq!(what_if.as_ref().map(|r| r.metrics), after.metrics(a, b), "{} -> {}", s, t);
                    if s != t {
                        prop_assert_eq!(what_if.map(|r| r.sites), after.path(SiteId(s), SiteId(t)));
                    }
                }
            }
        }

        #[test]
        fn shortest_paths_match_exhaustive_search(
            links in prop::collection::vec((0usize..6, 0usize..6, 0u64..4, any::<bool>()), 0..14),
            transit in prop::collection::vec(prop::bool::weighted(0.8), 6),
        ) {
            let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
            let mut spec_links = Vec::new();
            let mut adjacency: BTreeMap<usize, Vec<(usize, u64)>> = BTreeMap::new();
            let mut seen = BTreeSet::new();
            for (a, b, ms, one_way) in links {
                if a == b || seen.contains(&(a, b)) || (!one_way && seen.contains(&(b, a))) {
                    continue;
                }
                seen.insert((a, b));
                adjacency.entry(a).or_default().push((b, ms * 1_000_000));
                if !one_way {
                    seen.insert((b, a));
                    adjacency.entry(b).or_default().push((a, ms * 1_000_000));
                }
                spec_links.push(Link {
                    from: names[a].clone(),
                    to: names[b].clone(),
                    latency: format!("{ms}ms"),
                    jitter: None,
                    bandwidth: None,
                    loss: None,
                    one_way,
                });
            }
            let topology = NetworkTopology::new("t", NetworkTopologySpec {
                site_label: DEFAULT_SITE_LABEL.into(),
                same_node: None,
                intra_site: None,
                sites: names.iter().zip(&transit).map(|(n, t)| TopologySite { name: n.clone(), labels: BTreeMap::new(), transit: Some(*t) }).collect(),
                links: spec_links,
                measurement_max_age: None,
            });
            let g = NetworkGraph::build(Some(&topology), &[], Timestamp::UNIX_EPOCH)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for s in 0..6 {
                for t in 0..6 {
                    if s == t { continue; }
                    let expected = best(&adjacency, &transit, s, t);
                    let got = g.path(SiteId(s as u32), SiteId(t as u32))
                        .map(|p| p.iter().map(|id| id.index()).collect::<Vec<_>>());
                    prop_assert_eq!(got.clone(), expected.as_ref().map(|(_, p)| p.clone()), "{} -> {}", s, t);
                    let latency = g.site_metrics(SiteId(s as u32), SiteId(t as u32)).map(|m| m.latency_ns as u64);
                    prop_assert_eq!(latency, expected.as_ref().map(|(l, _)| *l));
                }
            }
        }
    }
}
