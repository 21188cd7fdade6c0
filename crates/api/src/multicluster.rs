//! `multicluster.edgeplane.io/v1alpha1`: MemberCluster and MecApplication, the hub's view
//! of the clusters it places onto and the applications it places (docs/multicluster.md).
//!
//! A member cluster is a placement target at a site of the hub's NetworkTopology, with a
//! capacity vector (allocatable minus requested). A MEC application lists its manifests,
//! the workloads among them that are placed (components, with replicas in total and a
//! spread over clusters) and the ConstraintPolicies that bind components to each other
//! and to user sites. The planner that reads them is `edgeplane_core::hub`.

// Printer columns repeat `type_` inside `#[kube(...)]`, which clippy's
// duplicated-attributes lint misreads as repeated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::constraint::Compliance;

/// The API group of the hub's kinds.
pub const GROUP: &str = "multicluster.edgeplane.io";
/// `multicluster.edgeplane.io/v1alpha1`.
pub const API_VERSION: &str = "multicluster.edgeplane.io/v1alpha1";
/// Label of a MemberCluster that runs edgeplane itself (value `"true"`): in direct mode
/// and in `plan --clusters` the hub also writes into it, for each constraint of a placed
/// component to a user site, a copy of the ConstraintPolicy and a ConstraintPolicyOffer
/// binding the component's pods to the same Site, so the member's own planner places the
/// pods by it (`edgeplane_core::hub::member_offers`).
pub const RUNS_EDGEPLANE_LABEL: &str = "multicluster.edgeplane.io/edgeplane";

impl MemberCluster {
    /// Whether it carries [`RUNS_EDGEPLANE_LABEL`]`: "true"`.
    pub fn runs_edgeplane(&self) -> bool {
        self.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(RUNS_EDGEPLANE_LABEL))
            .is_some_and(|v| v == "true")
    }
}

// ---------------------------------------------------------------------------------------
// MemberCluster
// ---------------------------------------------------------------------------------------

/// A Kubernetes cluster the hub places applications onto.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "multicluster.edgeplane.io",
    version = "v1alpha1",
    kind = "MemberCluster",
    plural = "memberclusters",
    singular = "membercluster",
    shortname = "mc",
    category = "edgeplane",
    status = "MemberClusterStatus",
    derive = "PartialEq",
    doc = "A member cluster: a placement target at a site of the hub's NetworkTopology, with its capacity.",
    printcolumn(name = "Site", type_ = "string", json_path = ".spec.site"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Karmada",
        type_ = "string",
        json_path = ".spec.karmadaCluster",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterSpec {
    /// The site of the hub's NetworkTopology where the cluster is: the network between
    /// this cluster and users or other clusters is the topology's between their sites.
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub site: String,
    /// The Secret holding the kubeconfig of the cluster (direct mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<SecretRef>,
    /// The name of the cluster in Karmada (cluster.karmada.io/v1alpha1 Cluster), when
    /// Karmada carries the placement out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub karmada_cluster: Option<String>,
    /// Taints of the cluster: components whose workload does not tolerate them are not
    /// placed there (the workload's pod template tolerations are read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub taints: Vec<ClusterTaint>,
}

/// A namespaced reference to a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A taint of a whole cluster, with a node taint's fields.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTaint {
    #[schemars(length(min = 1, max = 317))]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub value: Option<String>,
    pub effect: TaintEffect,
}

/// What a taint does to components that do not tolerate it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

/// Observed state of a member cluster, kept by the hub (read from files in offline mode).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterStatus {
    /// What the cluster's nodes offer and what its pods already request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<ClusterCapacity>,
    /// `Ready`: True while the hub reaches the cluster and its nodes are ready. A cluster
    /// that is not Ready receives no component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Direct mode: the kinds of the objects the hub has applied to the cluster (those it
    /// found there with its label, and those it just applied). The hub looks for its
    /// objects by kind, so it keeps looking at these after no application has the kind
    /// any more, and removes what is left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_kinds: Vec<AppliedKind>,
}

/// A kind of object, as a manifest names it.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct AppliedKind {
    pub api_version: String,
    pub kind: String,
}

/// A cluster's resources as quantities by resource name (`cpu`, `memory`, `pods`,
/// `nvidia.com/gpu`): the placement target's capacity vector is allocatable minus
/// requested.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCapacity {
    #[serde(default)]
    pub allocatable: BTreeMap<String, String>,
    #[serde(default)]
    pub requested: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------
// MecApplication
// ---------------------------------------------------------------------------------------

/// A MEC application placed across member clusters.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "multicluster.edgeplane.io",
    version = "v1alpha1",
    kind = "MecApplication",
    plural = "mecapplications",
    singular = "mecapplication",
    namespaced,
    shortname = "mecapp",
    category = "edgeplane",
    status = "MecApplicationStatus",
    derive = "PartialEq",
    doc = "A MEC application: its manifests, the components placed across member clusters, and their constraints.",
    printcolumn(
        name = "Distribution",
        type_ = "string",
        json_path = ".spec.distribution"
    ),
    printcolumn(
        name = "Compliance",
        type_ = "string",
        json_path = ".status.compliance"
    ),
    printcolumn(
        name = "Clusters",
        type_ = "integer",
        json_path = ".status.clusterCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MecApplicationSpec {
    /// The application's manifests, inline. Every one goes to each cluster the application
    /// uses, except the components' workloads, which go only where they have replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "resources_schema")]
    pub resources: Vec<serde_json::Value>,
    /// The manifests from a ConfigMap of the application's namespace instead (every
    /// value a multi-document YAML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_from: Option<ResourcesFrom>,
    /// The workloads among the resources that are placed.
    #[schemars(length(min = 1, max = 64))]
    pub components: Vec<Component>,
    /// ConstraintPolicies of the namespace and what they bind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub constraints: Vec<ApplicationConstraint>,
    /// ConstraintBased: the hub decides; Prescriptive: `placement` says, the hub checks.
    #[serde(default)]
    pub distribution: Distribution,
    /// The placement, for `distribution: Prescriptive`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub placement: Vec<ClusterPlacement>,
    /// ClosedLoop: re-placed on violation and outage; OpenLoop: never moved once placed.
    #[serde(default)]
    pub delegation: Delegation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
}

/// Free-form manifests: the API server keeps them as written.
fn resources_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "description": "The application's manifests, inline.",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-embedded-resource": true
        }
    })
}

/// Where the manifests come from when not inline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesFrom {
    #[schemars(length(min = 1, max = 253))]
    pub config_map: String,
}

/// A workload of the application that the hub places, with its replicas in total.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// The component's name, used by constraints and in the placement.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: String,
    pub workload: WorkloadRef,
    /// Replicas in total, over every cluster.
    #[schemars(range(min = 0, max = 100000))]
    pub replicas: i32,
    /// How many clusters the replicas may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// A workload among the application's resources.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Kinds of workloads the hub places.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    ReplicaSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
        }
    }
}

/// Bounds on the number of clusters a component's replicas use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    /// At least this many clusters (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_clusters: Option<i32>,
    /// At most this many clusters (default: as many as the replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_clusters: Option<i32>,
}

/// A ConstraintPolicy of the application's namespace and the targets it binds: its
/// pairwise rules hold between every pair of targets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationConstraint {
    #[schemars(length(min = 1, max = 253))]
    pub policy: String,
    #[schemars(length(min = 1, max = 8))]
    pub targets: Vec<ConstraintTarget>,
}

/// A component of the application, or a site of the hub's NetworkTopology (its users).
/// Exactly one of the two.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.component) != has(self.site)",
    "message": "a target names exactly one of component and site"
}]))]
pub struct ConstraintTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub site: Option<String>,
}

/// Who decides where the components go.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Distribution {
    /// The hub places by the constraints.
    #[default]
    ConstraintBased,
    /// The placement is given in `spec.placement`; the hub only checks it.
    Prescriptive,
}

impl Distribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::ConstraintBased => "ConstraintBased",
            Distribution::Prescriptive => "Prescriptive",
        }
    }
}

/// Whether the hub moves components after placing them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Delegation {
    /// Re-placed on violation after grace and on member outage.
    #[default]
    ClosedLoop,
    /// Never moved once placed.
    OpenLoop,
}

/// How long a member may be unreachable before its components fail over.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failover {
    #[schemars(range(min = 0, max = 86400))]
    pub toleration_seconds: i64,
}

/// The replicas of each component on one cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlacement {
    #[schemars(length(min = 1, max = 253))]
    pub cluster: String,
    #[serde(default)]
    pub components: BTreeMap<String, i32>,
}

/// Where the application runs and how well.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MecApplicationStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<ClusterPlacement>,
    /// How many clusters the placement uses.
    #[serde(default)]
    pub cluster_count: i32,
    /// Replicas of each component that no cluster took.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unplaced: BTreeMap<String, i32>,
    /// The worst compliance of the application's constraints.
    #[serde(default)]
    pub compliance: Compliance,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;
    use serde_json::{Value, json};

    fn schema(
        crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> Value {
        let schema = crd.spec.versions[0]
            .schema
            .clone()
            .and_then(|s| s.open_api_v3_schema);
        serde_json::to_value(schema).unwrap_or(Value::Null)
    }

    #[test]
    fn names_scope_and_short_names() {
        let mc = MemberCluster::crd();
        assert_eq!(mc.spec.scope, "Cluster");
        assert_eq!(mc.spec.names.short_names, Some(vec!["mc".to_string()]));
        let app = MecApplication::crd();
        assert_eq!(app.spec.scope, "Namespaced");
        assert_eq!(app.spec.names.short_names, Some(vec!["mecapp".to_string()]));
        assert_eq!(app.spec.group, GROUP);
        let columns: Vec<String> = mc.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(columns, ["Site", "Ready", "Karmada", "Age"]);
    }

    #[test]
    fn schemas_require_what_placement_needs() {
        let mc = schema(MemberCluster::crd());
        assert_eq!(
            mc.pointer("/properties/spec/required"),
            Some(&json!(["site"]))
        );
        let app = schema(MecApplication::crd());
        let spec = "/properties/spec/properties";
        assert_eq!(
            app.pointer(&format!("{spec}/distribution/enum")),
            Some(&json!(["ConstraintBased", "Prescriptive"]))
        );
        assert_eq!(
            app.pointer(&format!(
                "{spec}/components/items/properties/workload/properties/kind/enum"
            )),
            Some(&json!(["Deployment", "StatefulSet", "ReplicaSet"]))
        );
        assert_eq!(
            app.pointer(&format!(
                "{spec}/constraints/items/properties/targets/items/x-kubernetes-validations/0/rule"
            )),
            Some(&json!("has(self.component) != has(self.site)"))
        );
        assert_eq!(
            app.pointer(&format!(
                "{spec}/resources/items/x-kubernetes-preserve-unknown-fields"
            )),
            Some(&json!(true))
        );
    }

    #[test]
    fn an_application_reads_as_the_issue_writes_it() {
        let app: MecApplicationSpec = serde_json::from_value(json!({
            "components": [
                {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"},
                 "replicas": 6, "spread": {"minClusters": 1, "maxClusters": 3}},
                {"name": "state", "workload": {"kind": "StatefulSet", "name": "game-state"}, "replicas": 1}
            ],
            "constraints": [{"policy": "near-fans", "targets": [{"component": "render"}, {"site": "stadium"}]}],
            "failover": {"tolerationSeconds": 120}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.distribution, Distribution::ConstraintBased);
        assert_eq!(app.delegation, Delegation::ClosedLoop);
        assert_eq!(
            app.components[0].spread.and_then(|s| s.max_clusters),
            Some(3)
        );
        assert_eq!(
            app.constraints[0].targets[1].site.as_deref(),
            Some("stadium")
        );
    }
}
