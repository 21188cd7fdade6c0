//! `network.edgeplane.io/v1alpha1`: NetworkFunction, one spec for a network function that
//! runs as containers or as KubeVirt virtual machines, with secondary interfaces on Multus
//! networks.
//!
//! The NF controller renders each replica (a gated Pod, or a VirtualMachine created halted)
//! and reports what runs in the status. `edgeplane_core::nf` holds the rendering and the
//! checks the schema cannot make; docs/network-functions.md explains the model.

// Printer columns repeat `type_` inside `#[kube(...)]`, which clippy's
// duplicated-attributes lint misreads as repeated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A network function: an image run as `replicas` containers or virtual machines, each with
/// the same resources and secondary interfaces, on nodes that have the `requires` labels.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "network.edgeplane.io",
    version = "v1alpha1",
    kind = "NetworkFunction",
    plural = "networkfunctions",
    singular = "networkfunction",
    shortname = "nf",
    category = "edgeplane",
    namespaced,
    status = "NetworkFunctionStatus",
    derive = "PartialEq",
    doc = "A network function run as containers or KubeVirt virtual machines, with secondary interfaces on Multus networks.",
    printcolumn(name = "Runtime", type_ = "string", json_path = ".spec.runtime"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Nodes", type_ = "string", json_path = ".status.nodes"),
    printcolumn(
        name = "Image",
        type_ = "string",
        json_path = ".spec.image",
        priority = 1
    ),
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
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.runtime == 'VirtualMachine' || !has(self.vmTemplate)",
        "message": "vmTemplate is for runtime VirtualMachine",
        "fieldPath": ".vmTemplate"
    },
    {
        "rule": "self.runtime == 'Container' || !has(self.podTemplate)",
        "message": "podTemplate is for runtime Container",
        "fieldPath": ".podTemplate"
    },
    {
        "rule": "self.runtime == 'VirtualMachine' || !has(self.interfaces) || self.interfaces.all(i, !has(i.binding) || i.binding != 'masquerade')",
        "message": "binding masquerade is for runtime VirtualMachine",
        "fieldPath": ".interfaces"
    }
]))]
pub struct NetworkFunctionSpec {
    /// How each replica runs: `Container` (a Pod) or `VirtualMachine` (a KubeVirt
    /// VirtualMachine).
    pub runtime: NfRuntime,
    /// The container image, or the containerDisk image of the virtual machine.
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,
    /// How many replicas run. A ServiceChain joins replica i of each of its hops into lane i.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 64))]
    pub replicas: i32,
    /// What each replica requests (`cpu`, `memory`, `hugepages-1Gi`, extended resources).
    /// A virtual machine gets them as its domain's requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "resources_schema")]
    pub resources: BTreeMap<String, Quantity>,
    /// Secondary interfaces, in order: the first is `net1`, the second `net2`, and so on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub interfaces: Vec<NfInterface>,
    /// Node labels every replica's node must have, `key=value` or `key` (any value), for
    /// example Node Feature Discovery's `feature.node.kubernetes.io/network-sriov.capable=true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 380)))]
    pub requires: Vec<String>,
    /// For `Container`: fields of a PodSpec merged into what is rendered (a JSON merge
    /// patch of `spec`): sidecars, security context, tolerations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub pod_template: Option<serde_json::Value>,
    /// For `VirtualMachine`: fields of a VirtualMachineInstanceSpec merged into what is
    /// rendered (a JSON merge patch of `spec.template.spec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub vm_template: Option<serde_json::Value>,
}

fn default_replicas() -> i32 {
    1
}

/// A map of quantities (`"4"`, `4`, `8Gi`), without k8s-openapi's page-long description
/// of a Quantity repeated in the CRD.
fn resources_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 32,
        "additionalProperties": {
            "x-kubernetes-int-or-string": true,
            "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$"
        }
    })
}

/// An object whose fields the API server keeps as given (checked by the controller).
fn free_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// How a network function's replicas run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum NfRuntime {
    /// A Pod per replica.
    Container,
    /// A KubeVirt VirtualMachine per replica (its virt-launcher pod is what is placed).
    VirtualMachine,
}

impl NfRuntime {
    pub fn as_str(self) -> &'static str {
        match self {
            NfRuntime::Container => "Container",
            NfRuntime::VirtualMachine => "VirtualMachine",
        }
    }
}

/// A secondary interface on a Multus network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NfInterface {
    /// The interface's name in the NF (and the chain's link names refer to it).
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 15)
    )]
    pub name: String,
    /// The NetworkAttachmentDefinition, `name` (in the NF's namespace) or `namespace/name`.
    /// The links of a ServiceChain are not listed here: the chain adds them.
    #[schemars(
        regex(pattern = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 317)
    )]
    pub network: String,
    /// How a virtual machine attaches (KubeVirt's interface binding): `bridge` (default),
    /// `sriov`, or `masquerade`. For containers only `sriov` changes anything (the
    /// interface takes a VF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_binding_schema")]
    pub binding: Option<InterfaceBinding>,
}

/// `Option<InterfaceBinding>` as a plain string enum (no `null` in a structural schema).
fn optional_binding_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["bridge", "sriov", "masquerade"],
        "description": "How a virtual machine attaches: bridge (default), sriov or masquerade."
    })
}

/// KubeVirt's interface bindings that a network function may ask for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceBinding {
    #[default]
    Bridge,
    Sriov,
    Masquerade,
}

impl InterfaceBinding {
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceBinding::Bridge => "bridge",
            InterfaceBinding::Sriov => "sriov",
            InterfaceBinding::Masquerade => "masquerade",
        }
    }
}

/// What runs of a network function, written by the NF controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkFunctionStatus {
    /// `Invalid` (the spec cannot be rendered; see the Ready condition), `Pending` (replicas
    /// wait to be placed or started), `Running` (every replica runs, some interface is not
    /// up yet), `Ready` (every replica runs with all its interfaces), `Degraded` (fewer
    /// replicas run than asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Replicas running with every interface up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The nodes the replicas run on, in replica order (`-` for one not placed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<String>,
    /// Why the NF is not Ready, in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Each replica: its object, node, phase and interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaStatus>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Scheduled` (every replica has a node), `InterfacesReady` (every interface of every
    /// replica is attached), `Ready` (both, and the spec is valid; when it is not, the
    /// message names the field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One replica of a network function.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// The Pod or VirtualMachine, `<nf>-<index>`.
    pub name: String,
    /// The node it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The pod's phase, or the VMI's (`Halted` for a VM not started yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Its secondary interfaces as Multus or KubeVirt report them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStatus>,
}

/// An attached secondary interface.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStatus {
    /// The interface's name in the NF spec.
    pub name: String,
    /// The NetworkAttachmentDefinition, `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}
