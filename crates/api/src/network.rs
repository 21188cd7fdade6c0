//! `network.edgeplane.io/v1alpha1`: NetworkTopology, the network model that latency,
//! jitter, bandwidth and packet-loss rules are judged against.
//!
//! Sites are where nodes are (a node's site is the value of its `siteLabel` label) and
//! where users are (sites declared in `spec.sites` that hold no node, such as `stadium`).
//! Links join sites; traffic between two sites follows the minimum-latency path. The
//! meaning of every field is in docs/network.md; the graph built from it lives in
//! `edgeplane_core::network`.

// Printer columns repeat `type_` inside `#[kube(...)]`, which clippy's
// duplicated-attributes lint misreads as repeated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The label that names a node's site unless a topology says otherwise.
pub const DEFAULT_SITE_LABEL: &str = "topology.kubernetes.io/zone";
/// How old a measurement may be and still override the spec, unless a topology says
/// otherwise.
pub const DEFAULT_MEASUREMENT_MAX_AGE: &str = "5m";

/// The network between sites: how nodes map to sites, the sites where users are, the links
/// between sites, and the metrics of paths inside a site and inside a node.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "network.edgeplane.io",
    version = "v1alpha1",
    kind = "NetworkTopology",
    plural = "networktopologies",
    singular = "networktopology",
    shortname = "ntop",
    category = "edgeplane",
    status = "NetworkTopologyStatus",
    derive = "PartialEq",
    doc = "The network between sites: sites from node labels and user sites, links with latency, jitter, bandwidth and loss.",
    printcolumn(name = "Site-Label", type_ = "string", json_path = ".spec.siteLabel"),
    printcolumn(name = "Sites", type_ = "integer", json_path = ".status.siteCount"),
    printcolumn(name = "Links", type_ = "integer", json_path = ".status.linkCount"),
    printcolumn(
        name = "Measured",
        type_ = "integer",
        json_path = ".status.measuredLinkCount",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkTopologySpec {
    /// The node label whose value names a node's site. A node without it is a site of its
    /// own, named like the node.
    #[serde(default = "default_site_label")]
    #[schemars(length(min = 1, max = 317))]
    pub site_label: String,
    /// Metrics between two pods on the same node. Defaults: latency 20us, jitter 2us,
    /// bandwidth 100Gbps, loss 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_node: Option<PathSpec>,
    /// Metrics between two nodes of the same site (and between a site's nodes and its
    /// users). Defaults: latency 200us, jitter 20us, bandwidth 10Gbps, loss 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_site: Option<PathSpec>,
    /// Sites declared by name, with labels that Site targets of offers select on. Sites
    /// that hold no node stand for user populations ("stadium", "campus-east"). Sites of
    /// nodes need not be declared, but declaring them keeps the topology valid when all
    /// their nodes are gone, and gives them labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 10000),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub sites: Vec<TopologySite>,
    /// Links between sites. Both ends must be declared sites or sites of nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50000))]
    pub links: Vec<Link>,
    /// How old a measurement in the status may be and still override the spec's link.
    /// Defaults to 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub measurement_max_age: Option<String>,
}

fn default_site_label() -> String {
    DEFAULT_SITE_LABEL.to_string()
}

/// Metrics of a path that is not a link: inside a node or inside a site. A missing field
/// takes its default.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathSpec {
    /// One-way latency, for example `200us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"))]
    pub latency: Option<String>,
    /// Jitter (latency variation), for example `20us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"))]
    pub jitter: Option<String>,
    /// Bit rate, for example `10Gbps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub bandwidth: Option<String>,
    /// Packet loss ratio, for example `0.01%` or `0.0001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub loss: Option<String>,
}

/// A site declared in the topology.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopologySite {
    /// The site's name: the value of the site label on its nodes, or a name of its own for
    /// a site of users.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// Labels of the site, selected by the labelSelector of Site targets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Whether paths between other sites may pass through this site. Defaults to true;
    /// set it to false for sites of users, whose links reach the users and carry no
    /// traffic onwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit: Option<bool>,
}

/// A link between two sites. Bidirectional (the same metrics both ways) unless `oneWay`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.from != self.to",
    "message": "a link joins two different sites"
}]))]
pub struct Link {
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub from: String,
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub to: String,
    /// One-way latency of the link, for example `4ms`.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"))]
    pub latency: String,
    /// Jitter; 0 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"))]
    pub jitter: Option<String>,
    /// Capacity; unlimited when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub bandwidth: Option<String>,
    /// Packet loss ratio; 0 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub loss: Option<String>,
    /// The link carries traffic only from `from` to `to`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
}

/// Observed state of a topology: measurements and a summary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkTopologyStatus {
    /// Measured links, written by the measurement agent. A measurement younger than
    /// `spec.measurementMaxAge` overrides the metrics it carries on the spec's link with
    /// the same ends (or adds the link when the spec has none); older ones are ignored.
    /// Keyed by `from` and `to`: each site's agent owns its site's entries (server-side
    /// apply, field manager `edgeplane-agent-SITE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50000),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["from", "to"])
    )]
    pub measured: Vec<MeasuredLink>,
    /// Paths activated by the network controller (field manager `edgeplane-netctl`): each
    /// is a link between its sites beside the spec's links, and traffic between those
    /// sites takes whichever has the lower latency. Removed when no allocation uses its
    /// catalogue entry any more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000))]
    pub activated_paths: Vec<ActivatedPath>,
    /// Number of sites (declared ones and those of nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_count: Option<i32>,
    /// Number of links in the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_count: Option<i32>,
    /// Number of measurements fresh enough to be used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_link_count: Option<i32>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: True when the topology builds into a graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Bandwidth reserved on each directed link that placed bindings' bandwidth rules
    /// cross (docs/network.md, "Bandwidth as a reserved resource"), by (from, to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50000))]
    pub bandwidth: Vec<LinkBandwidth>,
}

/// What bandwidth rules reserve on one direction of a link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkBandwidth {
    #[schemars(length(min = 1, max = 63))]
    pub from: String,
    #[schemars(length(min = 1, max = 63))]
    pub to: String,
    /// The link's bandwidth in this direction (spec, fresh measurement or activated
    /// path); absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// The sum of what the bindings over it reserve.
    pub reserved: String,
    /// The capacity less what is reserved, at least 0; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
    /// How many directions of pairs of binding targets use the link.
    pub demands: i32,
    /// The reservations exceed the capacity: bindings over it get a fair share below
    /// their request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oversubscribed: bool,
}

/// A measurement of a link. Metrics it does not carry keep the spec's values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasuredLink {
    #[schemars(length(min = 1, max = 63))]
    pub from: String,
    #[schemars(length(min = 1, max = 63))]
    pub to: String,
    /// The measurement is of the direction from `from` to `to` only; otherwise it applies
    /// both ways.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    /// When the measurement was taken.
    pub time: Time,
}

/// A catalogue entry activated by the network controller: a link between two sites, with
/// the metrics of the entry, for as long as some allocation uses it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivatedPath {
    #[schemars(length(min = 1, max = 63))]
    pub from: String,
    #[schemars(length(min = 1, max = 63))]
    pub to: String,
    /// The path carries traffic only from `from` to `to`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
    pub latency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    /// The NetworkPathCatalogue the entry belongs to.
    pub catalogue: String,
    /// The catalogue entry.
    pub entry: String,
    /// The bindings whose allocations keep the path active, `namespace/name`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
}
