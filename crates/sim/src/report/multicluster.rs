//! `report.multicluster`: what a run of a hub and its members recorded over time
//! (written by `crate::multicluster::record`).

use std::collections::BTreeMap;

use serde::Serialize;

/// `report.multicluster`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiClusterReport {
    /// `direct` or `karmada`.
    pub mode: String,
    pub clusters: Vec<ClusterReport>,
    pub applications: Vec<ApplicationReport>,
    /// The applications' Deployments in the members.
    pub workloads: Vec<WorkloadReport>,
    /// The ConstraintPolicyBindings in the members at the end: in a member running
    /// edgeplane, those of the hub's offers bind the pods placed there to the user sites.
    pub member_bindings: Vec<MemberBinding>,
}

/// A binding in a member at the end of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberBinding {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The offer (`namespace/name`) that made it.
    pub offer: String,
    pub compliance: String,
    /// Why, when it is not Compliant.
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub name: String,
    pub site: String,
    pub nodes: usize,
    /// Ready as the hub's MemberCluster status says, at each change.
    pub readiness: Vec<Readiness>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub at_seconds: f64,
    pub ready: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationReport {
    pub namespace: String,
    pub name: String,
    /// `status.placement` at each change: cluster -> component -> replicas.
    pub placements: Vec<PlacementAt>,
    /// Changes from one placement to another (not the first placement).
    pub moves: Vec<Move>,
}

pub type Placement = BTreeMap<String, BTreeMap<String, i32>>;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementAt {
    pub at_seconds: f64,
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    pub at_seconds: f64,
    pub from: Placement,
    pub to: Placement,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The application (`namespace.name`) of the hub's label.
    pub application: String,
    pub history: Vec<WorkloadAt>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAt {
    pub at_seconds: f64,
    /// `spec.replicas`; `None` once the Deployment is gone.
    pub replicas: Option<i32>,
    pub ready: i32,
}
