//! `network.edgeplane.io/v1alpha1`: NetworkPathCatalogue, the alternate paths and slices
//! the reference network controller can activate between sites, each with metrics and a
//! finite capacity, and the allocations that hold that capacity.
//!
//! The catalogue's spec is written by operators; its status (allocations, counts, the
//! `Valid` condition) by the network controller (`edgeplane netctl serve`, field manager
//! `edgeplane-netctl`). Allocations live in the status so that a restarted controller
//! recovers them from the API. docs/netctl.md says what every field means.

// Printer columns repeat `type_` inside `#[kube(...)]`, which clippy's
// duplicated-attributes lint misreads as repeated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Alternate paths and slices between sites that a network controller can activate, each
/// with the metrics it gives and how many bindings (or how much bandwidth) it can carry.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "network.edgeplane.io",
    version = "v1alpha1",
    kind = "NetworkPathCatalogue",
    plural = "networkpathcatalogues",
    singular = "networkpathcatalogue",
    shortname = "npc",
    category = "edgeplane",
    status = "NetworkPathCatalogueStatus",
    derive = "PartialEq",
    doc = "Alternate paths and slices between sites, with metrics and a finite capacity, that the network controller activates to repair bindings.",
    printcolumn(name = "Entries", type_ = "integer", json_path = ".status.entryCount"),
    printcolumn(
        name = "Allocated",
        type_ = "integer",
        json_path = ".status.allocationCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPathCatalogueSpec {
    /// The paths the controller may activate. Names are unique within the catalogue.
    #[serde(default)]
    #[schemars(
        length(max = 1000),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub entries: Vec<CatalogueEntry>,
}

/// One alternate path or slice between two sites. Once activated it is a link between its
/// sites in the network graph, beside any link the topology already has there (traffic
/// takes whichever has the lower latency).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.from != self.to",
    "message": "a path joins two different sites"
}]))]
pub struct CatalogueEntry {
    /// The entry's name, unique in the catalogue: lowercase letters, digits and '-'.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// A site of the NetworkTopology (declared, or the site of a node).
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub from: String,
    /// A site of the NetworkTopology, other than `from`.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub to: String,
    /// One-way latency of the path once activated, for example `2ms`.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"))]
    pub latency: String,
    /// Jitter; 0 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$"))]
    pub jitter: Option<String>,
    /// Bit rate of the path, for example `1Gbps`; unlimited when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub bandwidth: Option<String>,
    /// Packet loss ratio, for example `0.001%`; 0 when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub loss: Option<String>,
    /// The path carries traffic only from `from` to `to`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
    /// How much the path can carry: a number of bindings, a total bandwidth, or both.
    pub capacity: PathCapacity,
    /// Relative cost of using the path (lower is better); the controller picks the
    /// cheapest entry that restores a binding's compliance. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cost: Option<i64>,
    /// Free text for operators (what the path is, who provides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The capacity of a catalogue entry. Each limit given applies; at least one is required.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.bindings) || has(self.bandwidth)",
    "message": "a capacity gives bindings, bandwidth or both"
}]))]
pub struct PathCapacity {
    /// How many allocations (one per binding) the path carries at once. 0 stops new
    /// allocations without touching existing ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub bindings: Option<i32>,
    /// The total bandwidth allocations may reserve, for example `2Gbps`. An allocation
    /// reserves the request of its binding's `bandwidth` rule (nothing without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub bandwidth: Option<String>,
}

/// Observed state of a catalogue, written by the network controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPathCatalogueStatus {
    /// The capacity in use: one allocation per binding and entry. Capacity is counted
    /// from this list, so a restarted controller recovers it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100000),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"])
    )]
    pub allocations: Vec<PathAllocation>,
    /// Number of valid entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_count: Option<i32>,
    /// Number of allocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_count: Option<i32>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: True when every entry parses and joins known sites; otherwise False with
    /// the located problems (`spec.entries[2].latency: "fast" is not a duration ...`).
    /// Invalid entries are never offered nor activated; valid ones still are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Capacity of one entry held for one binding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathAllocation {
    /// The allocation's id, as Allocate, Mitigate and Release name it.
    #[schemars(length(min = 1, max = 253))]
    pub id: String,
    /// The catalogue entry whose capacity it holds.
    pub entry: String,
    /// The binding it serves, `namespace/name`.
    pub binding: String,
    /// Why it was made: Mitigate (the descheduler repairing a binding) or Discover (the
    /// planner placing a pod on a node the path makes suitable).
    pub purpose: AllocationPurpose,
    /// Bandwidth reserved on an entry whose capacity counts bandwidth (the request of the
    /// binding's bandwidth rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// When the allocation was made.
    pub allocated_at: Time,
    /// Who asked for it over gRPC (`cert:<name>` from a client certificate, or
    /// `connection:<address>`); only the same identity may release it. Absent for
    /// allocations made in process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// Why an allocation was made.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum AllocationPurpose {
    Mitigate,
    Discover,
}

impl std::fmt::Display for AllocationPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AllocationPurpose::Mitigate => "Mitigate",
            AllocationPurpose::Discover => "Discover",
        })
    }
}
