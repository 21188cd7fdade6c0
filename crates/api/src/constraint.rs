//! `constraint.edgeplane.io/v1alpha1`: ConstraintPolicy, ConstraintPolicyOffer and
//! ConstraintPolicyBinding. Field names follow Turnbuckle's so that its manifests port by
//! changing the API group.

// Printer columns repeat `type_` and `priority` inside `#[kube(...)]`, which clippy's
// duplicated-attributes lint misreads as repeated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names;

// ---------------------------------------------------------------------------------------
// ConstraintPolicy
// ---------------------------------------------------------------------------------------

/// A named set of rules. Each rule names a provider (latency, bandwidth, cpu, ...) and
/// gives the preferred value (`request`) and the worst acceptable one (`limit`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "constraint.edgeplane.io",
    version = "v1alpha1",
    kind = "ConstraintPolicy",
    plural = "constraintpolicies",
    singular = "constraintpolicy",
    namespaced,
    shortname = "cp",
    category = "edgeplane",
    status = "ConstraintPolicyStatus",
    derive = "PartialEq",
    doc = "A named set of constraint rules (latency, bandwidth, node capabilities, ...).",
    printcolumn(name = "Rules", type_ = "integer", json_path = ".status.ruleCount"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicySpec {
    /// The rules of the policy. The binding's compliance for the policy is the worst of
    /// its rules.
    #[schemars(length(min = 1))]
    pub rules: Vec<ConstraintPolicyRule>,
}

/// One rule: a provider name and the values it is judged against.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicyRule {
    /// Provider of the rule: `latency`, `jitter`, `bandwidth`, `packet-loss`, `cpu`,
    /// `memory`, `node-label`, `node-feature`, or the name of an external provider.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(max = 253)
    )]
    pub name: String,
    /// The preferred value, for example `5ms`, `100Mbps`, `0.1%`, `4`, `true`.
    #[schemars(length(min = 1))]
    pub request: String,
    /// The worst acceptable value. Above request for lower-is-better metrics, below it for
    /// higher-is-better ones. When omitted (or equal to request) the rule is a hard
    /// threshold in the provider's natural direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// Observed state of a policy: whether its rules parse for their providers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicyStatus {
    /// Number of rules in the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_count: Option<i32>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid`: True when every rule parses for its provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------
// ConstraintPolicyOffer
// ---------------------------------------------------------------------------------------

/// Offers a set of policies to every combination of objects matched by its targets. The
/// offer controller creates one ConstraintPolicyBinding per combination.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "constraint.edgeplane.io",
    version = "v1alpha1",
    kind = "ConstraintPolicyOffer",
    plural = "constraintpolicyoffers",
    singular = "constraintpolicyoffer",
    namespaced,
    shortname = "cpo",
    category = "edgeplane",
    status = "ConstraintPolicyOfferStatus",
    derive = "PartialEq",
    doc = "Offers constraint policies to every combination of the objects its targets select.",
    printcolumn(
        name = "Policies",
        type_ = "string",
        json_path = ".spec.policies",
        priority = 1
    ),
    printcolumn(
        name = "Period",
        type_ = "string",
        json_path = ".spec.period",
        priority = 1
    ),
    printcolumn(
        name = "ViolationPolicy",
        type_ = "string",
        json_path = ".spec.violationPolicy",
        priority = 1
    ),
    printcolumn(name = "Count", type_ = "integer", json_path = ".status.bindingCount"),
    printcolumn(
        name = "Compliant",
        type_ = "integer",
        json_path = ".status.compliantBindingCount"
    ),
    printcolumn(name = "Grace", type_ = "string", json_path = ".spec.grace"),
    printcolumn(
        name = "Selector",
        type_ = "string",
        json_path = ".status.bindingSelector",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicyOfferSpec {
    /// The roles of the offer. A binding takes one matched object per role, and no object
    /// fills two roles of one binding.
    #[schemars(length(min = 1, max = 8))]
    pub targets: Vec<OfferTarget>,
    /// Names of ConstraintPolicies (same namespace) applied to every binding.
    #[schemars(
        length(min = 1),
        inner(regex(
            pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        ))
    )]
    pub policies: Vec<String>,
    /// How often bindings are re-evaluated (they are also re-evaluated when a target moves
    /// or the topology changes).
    #[serde(default = "default_period")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub period: String,
    /// How long a binding must be in Violation, continuously, before the violation policy
    /// acts.
    #[serde(default = "default_grace")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub grace: String,
    /// What to do about a binding in Violation past its grace.
    #[serde(default)]
    pub violation_policy: ViolationPolicy,
    /// With `Evict`: how long to wait after asking the network controller to mitigate
    /// before evicting. Defaults to the grace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub mitigation_grace: Option<String>,
}

fn default_period() -> String {
    "30s".to_string()
}

fn default_grace() -> String {
    "1m".to_string()
}

/// One role of an offer: which objects may fill it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.mode) || self.kind == 'ServiceChain'",
    "message": "only ServiceChain targets have a mode"
}]))]
pub struct OfferTarget {
    /// The role's name, used as the key of the binding's targets. Defaults to
    /// `target-<index>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub name: Option<String>,
    /// API version of the selected objects; defaults from the kind (`v1` for Pod,
    /// `network.edgeplane.io/v1alpha1` for Site, NetworkFunction and ServiceChain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the selected objects.
    pub kind: TargetKind,
    /// For composite targets (service chains): which end of the chain is meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_mode_schema")]
    pub mode: Option<TargetMode>,
    /// Selects objects by label (pods by their labels, sites by the labels given in the
    /// NetworkTopology). An absent selector selects every object of the kind in the
    /// offer's namespace (for sites: every site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// For `Site` targets: site names, as an alternative or in addition to the selector
    /// (an object matches when it is named here or matched by the selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
}

/// Kinds of objects an offer can target.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TargetKind {
    /// A v1 Pod in the offer's namespace.
    Pod,
    /// A site of the NetworkTopology: the nodes there, or the users there.
    Site,
    /// A NetworkFunction in the offer's namespace: stands for each of its replicas' pods
    /// (a VM's virt-launcher pod), selected by the NetworkFunction's labels.
    NetworkFunction,
    /// A member cluster (designed; not supported yet).
    Cluster,
    /// A ServiceChain in the offer's namespace: stands for the pods of its first hop
    /// (`mode: Start`), of its last hop (`mode: End`), or of every hop (no mode).
    ServiceChain,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Pod => "Pod",
            TargetKind::Site => "Site",
            TargetKind::NetworkFunction => "NetworkFunction",
            TargetKind::Cluster => "Cluster",
            TargetKind::ServiceChain => "ServiceChain",
        }
    }

    /// The apiVersion objects of this kind are served under.
    pub fn default_api_version(self) -> &'static str {
        match self {
            TargetKind::Pod => "v1",
            TargetKind::Site | TargetKind::NetworkFunction | TargetKind::ServiceChain => {
                names::NETWORK_API_VERSION
            }
            TargetKind::Cluster => "multicluster.edgeplane.io/v1alpha1",
        }
    }

    /// Whether the object lives in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            TargetKind::Pod | TargetKind::NetworkFunction | TargetKind::ServiceChain
        )
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Option<TargetMode>` as a plain string enum: schemars would add `null` to the enum,
/// which the API server does not accept in a structural schema.
fn optional_mode_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["Start", "End"],
        "description": "For composite targets (service chains): which end of the chain is meant."
    })
}

/// Which end of a composite target is meant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TargetMode {
    Start,
    End,
}

/// What the descheduler does about a binding in Violation past its grace.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ViolationPolicy {
    /// Record an Event, nothing else.
    #[default]
    Ignore,
    /// Ask the network controller to mitigate; never evict.
    Mediate,
    /// Mediate first, then evict the one pod whose move restores compliance.
    Evict,
}

impl ViolationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationPolicy::Ignore => "Ignore",
            ViolationPolicy::Mediate => "Mediate",
            ViolationPolicy::Evict => "Evict",
        }
    }
}

/// Observed state of an offer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicyOfferStatus {
    /// How many bindings the offer currently has.
    #[serde(default)]
    pub binding_count: i32,
    /// How many of them are Compliant.
    #[serde(default)]
    pub compliant_binding_count: i32,
    /// Label selector of the offer's bindings (`kubectl get cpb -l ...`).
    #[serde(default)]
    pub binding_selector: String,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True when the offer's targets and policies are valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

// ---------------------------------------------------------------------------------------
// ConstraintPolicyBinding
// ---------------------------------------------------------------------------------------

/// One combination of objects matched by an offer, with its live compliance. Created and
/// deleted by the offer controller; status written by the binding controller.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "constraint.edgeplane.io",
    version = "v1alpha1",
    kind = "ConstraintPolicyBinding",
    plural = "constraintpolicybindings",
    singular = "constraintpolicybinding",
    namespaced,
    shortname = "cpb",
    category = "edgeplane",
    status = "ConstraintPolicyBindingStatus",
    derive = "PartialEq",
    doc = "A combination of objects matched by an offer, with its live compliance.",
    printcolumn(name = "Offer", type_ = "string", json_path = ".spec.offer"),
    printcolumn(name = "Targets", type_ = "string", json_path = ".status.targets"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.compliance"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.firstReason"),
    printcolumn(
        name = "Violating-Since",
        type_ = "date",
        json_path = ".status.violatingSince",
        priority = 1
    ),
    printcolumn(
        name = "Last-Change",
        type_ = "date",
        json_path = ".status.lastComplianceChangeTimestamp",
        priority = 1
    ),
    printcolumn(
        name = "Last-Mitigation",
        type_ = "date",
        json_path = ".status.lastMitigatedTimestamp",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicyBindingSpec {
    /// Name of the offer (same namespace) the binding was expanded from.
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    pub offer: String,
    /// The object filling each role of the offer.
    #[schemars(length(min = 1))]
    pub targets: BTreeMap<String, TargetRef>,
}

/// A reference to one object filling a role.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// Member cluster of the object; empty for the local cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Namespace of the object; empty for cluster-scoped kinds (Site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub api_version: String,
    pub kind: TargetKind,
    #[schemars(length(min = 1))]
    pub name: String,
}

impl TargetRef {
    /// A v1 Pod in the local cluster.
    pub fn pod(namespace: impl Into<String>, name: impl Into<String>) -> TargetRef {
        TargetRef {
            cluster: None,
            namespace: Some(namespace.into()),
            api_version: TargetKind::Pod.default_api_version().into(),
            kind: TargetKind::Pod,
            name: name.into(),
        }
    }

    /// A site of the network topology.
    pub fn site(name: impl Into<String>) -> TargetRef {
        TargetRef {
            cluster: None,
            namespace: None,
            api_version: TargetKind::Site.default_api_version().into(),
            kind: TargetKind::Site,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for TargetRef {
    /// `Pod default/ar-render-0`, `Site stadium`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", self.kind)?;
        if let Some(cluster) = &self.cluster {
            write!(f, "{cluster}:")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Compliance of a rule, a policy or a binding. The order of the variants is their
/// severity: aggregation takes the maximum.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum Compliance {
    /// Not evaluated yet (a target is not placed, or a provider has no measurement).
    #[default]
    Pending,
    /// At or better than the request.
    Compliant,
    /// Between request and limit: acceptable, not preferred.
    Limit,
    /// Worse than the limit.
    Violation,
    /// The rule could not be evaluated (bad value, no provider, provider failure).
    Error,
}

impl Compliance {
    pub const ALL: [Compliance; 5] = [
        Compliance::Pending,
        Compliance::Compliant,
        Compliance::Limit,
        Compliance::Violation,
        Compliance::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Pending => "Pending",
            Compliance::Compliant => "Compliant",
            Compliance::Limit => "Limit",
            Compliance::Violation => "Violation",
            Compliance::Error => "Error",
        }
    }
}

impl std::fmt::Display for Compliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed state of a binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintPolicyBindingStatus {
    /// Worst compliance over the binding's policies.
    #[serde(default)]
    pub compliance: Compliance,
    /// The reason of the first rule (in policy and rule order) at the binding's compliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reason: Option<String>,
    /// The targets as `role=name`, in role order (`renderer=render-0,users=stadium`): a
    /// printer column cannot join the entries of `spec.targets`, so the binding
    /// controller spells them out for `kubectl get cpb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<String>,
    /// Per policy, per rule results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<PolicyDetail>,
    /// When `compliance` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_compliance_change_timestamp: Option<Time>,
    /// When the binding entered Violation; absent when it is not in Violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violating_since: Option<Time>,
    /// When the network controller was last asked to mitigate the binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_mitigated_timestamp: Option<Time>,
    /// When the binding was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluated_timestamp: Option<Time>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Compliant` (True/False with the compliance as reason) and `GraceElapsed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Compliance of one policy of a binding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDetail {
    pub policy: String,
    pub compliance: Compliance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub rule_details: Vec<RuleDetail>,
}

/// Compliance of one rule of a policy of a binding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleDetail {
    pub rule: String,
    pub compliance: Compliance,
    /// The measured value, printed in the rule's unit (`3.2ms`, `850Mbps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Helpers shared by code that builds bindings.
impl ConstraintPolicyBinding {
    /// The offer's `namespace/name`.
    pub fn offer_key(&self) -> String {
        format!(
            "{}/{}",
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.spec.offer
        )
    }

    /// The name of the offer the binding belongs to: its offer label (what the offer's
    /// status selects by), else `spec.offer`.
    pub fn owner_offer(&self) -> &str {
        self.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(names::OFFER_LABEL))
            .unwrap_or(&self.spec.offer)
    }
}

/// The label selector string that selects the bindings of an offer.
pub fn binding_selector(offer: &str) -> String {
    format!("{}={offer}", names::OFFER_LABEL)
}
