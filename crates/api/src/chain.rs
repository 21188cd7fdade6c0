//! `network.edgeplane.io/v1alpha1`: ServiceChain, network functions that traffic flows
//! through in order, from an ingress site to an egress site.
//!
//! A chain whose network functions have N replicas forms N lanes; lane i joins replica i of
//! each hop. The chain controller writes a NetworkAttachmentDefinition per link and lane,
//! reports per-link readiness and the end-to-end latency of each lane, and keeps one
//! ConstraintPolicyBinding per lane. `edgeplane_core::chain` holds the decisions.

// Printer columns repeat `type_` inside `#[kube(...)]`, which clippy's
// duplicated-attributes lint misreads as repeated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::constraint::{Compliance, ConstraintPolicyRule};

/// Network functions chained in order: traffic enters at `ingress`, passes every hop, and
/// leaves at `egress`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "network.edgeplane.io",
    version = "v1alpha1",
    kind = "ServiceChain",
    plural = "servicechains",
    singular = "servicechain",
    shortname = "sc",
    category = "edgeplane",
    namespaced,
    status = "ServiceChainStatus",
    derive = "PartialEq",
    doc = "Network functions chained in order from an ingress site to an egress site, one lane per replica.",
    printcolumn(name = "Hops", type_ = "string", json_path = ".status.path"),
    printcolumn(name = "Lanes", type_ = "integer", json_path = ".status.laneCount"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyLanes"),
    printcolumn(name = "Latency", type_ = "string", json_path = ".status.worstLatency"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.reason",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceChainSpec {
    /// The hops, in the order traffic passes them. Each names a NetworkFunction of the
    /// chain's namespace; no network function appears twice.
    #[schemars(
        length(min = 1, max = 16),
        extend(
            "x-kubernetes-list-type" = "map",
            "x-kubernetes-list-map-keys" = ["name"],
            "x-kubernetes-validations" = [
                {
                    "rule": "self.all(h, self.exists_one(g, g.name == h.name))",
                    "message": "a hop name appears once"
                },
                {
                    "rule": "self.all(h, self.exists_one(g, g.networkFunction == h.networkFunction))",
                    "message": "a network function is one hop of a chain"
                }
            ]
        )
    )]
    pub hops: Vec<Hop>,
    /// Where traffic enters: a site of the NetworkTopology (users or nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<ChainEnd>,
    /// Where traffic leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<ChainEnd>,
    /// The kind of network the links are. Defaults to `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ChainNetwork>,
    /// Whether the hops of a lane should share a node. Defaults to `Preferred`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<ChainPlacement>,
    /// What each lane promises: `endToEnd` rules are judged along the whole lane (latency
    /// sums from ingress to egress), `perLink` rules on every link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<ChainConstraints>,
}

/// One hop of a chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// The hop's name in the chain (link and lane names use it).
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 20)
    )]
    pub name: String,
    /// The NetworkFunction, in the chain's namespace.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(min = 1, max = 253)
    )]
    pub network_function: String,
}

/// An end of a chain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainEnd {
    /// A site of the NetworkTopology.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub site: String,
}

/// The network of a chain's links.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainNetwork {
    /// `auto` (a bridge when both hops of a link share a node, macvlan otherwise),
    /// `bridge`, `macvlan` or `sriov`.
    #[serde(default, rename = "type")]
    pub type_: LinkType,
    /// With `sriov`: the device plugin's resource the links' virtual functions come from
    /// (`intel.com/sriov_netdevice`), written as each link NAD's
    /// `k8s.v1.cni.cncf.io/resourceName` annotation, from which Multus' resource injector
    /// adds the request to the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
        ),
        length(min = 1, max = 316)
    )]
    pub resource_name: Option<String>,
}

impl ServiceChainSpec {
    /// The links' kind (`network.type`, `auto` when absent).
    pub fn link_type(&self) -> LinkType {
        self.network.as_ref().map(|n| n.type_).unwrap_or_default()
    }

    /// Whether a lane's hops should share a node (`placement.colocate`, `Preferred` when
    /// absent).
    pub fn colocate(&self) -> Colocate {
        self.placement
            .as_ref()
            .map(|p| p.colocate)
            .unwrap_or_default()
    }
}

/// The CNI plugin a link's NetworkAttachmentDefinition uses.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    #[default]
    Auto,
    Bridge,
    Macvlan,
    Sriov,
}

impl LinkType {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Auto => "auto",
            LinkType::Bridge => "bridge",
            LinkType::Macvlan => "macvlan",
            LinkType::Sriov => "sriov",
        }
    }
}

/// How a chain's hops are placed relative to each other.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainPlacement {
    #[serde(default)]
    pub colocate: Colocate,
}

/// Whether the hops of a lane share a node.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Colocate {
    Required,
    #[default]
    Preferred,
    None,
}

/// The rules a lane is held to (same fields as a ConstraintPolicy's rules).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainConstraints {
    /// Judged along the lane: latency and jitter add up from ingress to egress, bandwidth
    /// is the narrowest link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub end_to_end: Vec<ConstraintPolicyRule>,
    /// Judged on every link of the lane.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub per_link: Vec<ConstraintPolicyRule>,
}

/// What the chain controller sees of a chain.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceChainStatus {
    /// `Invalid` (see the Ready condition), `Pending` (some hop is not placed), `Wiring`
    /// (placed, some link not ready), `Ready` (every link of every lane is ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The hops, `ingress>fw>dpi>nat>egress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane_count: Option<i32>,
    /// Lanes with every link ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_lanes: Option<i32>,
    /// The highest end-to-end latency of the lanes whose hops are all placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_latency: Option<String>,
    /// Why the chain is not Ready, in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<LaneStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid` (the spec and the NFs it names can be chained; when not, the message names
    /// the field), `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One lane: replica i of every hop.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaneStatus {
    pub index: i32,
    pub hops: Vec<LaneHop>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end: Option<EndToEnd>,
    /// The lane's ConstraintPolicyBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

/// A hop of a lane.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaneHop {
    pub name: String,
    /// The replica's Pod or VirtualMachine.
    pub replica: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A link between two consecutive hops of a lane.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    pub from: String,
    pub to: String,
    /// The link's NetworkAttachmentDefinition.
    pub network: String,
    /// `bridge`, `macvlan` or `sriov`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
    /// Both ends have the interface attached.
    pub ready: bool,
    /// The one-way latency between the two hops' nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
}

/// A lane judged end to end.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndToEnd {
    /// The latency from ingress through every hop to egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// The lane binding's compliance (Pending until the binding is evaluated).
    #[serde(default)]
    pub compliance: Compliance,
}
