//! Network functions and service chains in a scenario: which objects they are, and the
//! upstream CRDs a run with them needs (KubeVirt's, for the VMs the NF controller renders
//! and the VMIs it reads; Multus', for the links' NetworkAttachmentDefinitions). The run
//! loads the CRDs the scenario includes before its components start, so everything the
//! controllers write is validated by the upstream schemas.

use edgeplane_core::manifests::Document;
use serde_json::Value;

use super::error::ScenarioError;
use super::model::{Action, Scenario};
use super::world::World;

/// The API group of NetworkFunction and ServiceChain.
const NETWORK_GROUP: &str = "network.edgeplane.io/";

/// The kinds (apiVersion, kind) a scenario with network functions needs beside edgeplane's.
pub const FUNCTION_CRDS: [(&str, &str); 3] = [
    ("kubevirt.io/v1", "VirtualMachine"),
    ("kubevirt.io/v1", "VirtualMachineInstance"),
    ("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"),
];

/// A NetworkFunction or a ServiceChain.
pub fn is_function(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str);
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    matches!(kind, Some("NetworkFunction" | "ServiceChain"))
        && api_version.is_some_and(|v| v.starts_with(NETWORK_GROUP))
}

/// A CustomResourceDefinition.
pub fn is_crd(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
}

/// The CRD serves KubeVirt's VirtualMachines.
pub fn is_kubevirt_crd(object: &Value) -> bool {
    is_crd(object)
        && object.pointer("/spec/group").and_then(Value::as_str) == Some("kubevirt.io")
        && object.pointer("/spec/names/kind").and_then(Value::as_str) == Some("VirtualMachine")
}

impl Scenario {
    /// Whether the scenario has NetworkFunctions or ServiceChains (from the start or
    /// applied by an event): the run then starts the NF and chain controllers, the
    /// scheduler's lane planning and the descheduler's lane repair.
    pub fn functions(&self) -> bool {
        self.objects.iter().any(is_function)
            || self.events.iter().any(|e| match &e.action {
                Action::Apply(objects) => objects.iter().any(is_function),
                _ => false,
            })
    }

    /// Whether the scenario includes KubeVirt's CRDs: the run then also installs the
    /// VirtualMachineInstanceMigration CRD (upstream ships none as a file; the embedded
    /// cluster's copy, `edgeplane_cluster::kubevirt::MIGRATION_CRD`).
    pub fn kubevirt(&self) -> bool {
        self.objects.iter().any(is_kubevirt_crd)
    }
}

/// A scenario whose objects include an NF or a chain must include KubeVirt's and Multus'
/// CRDs among the objects present from the start (`world` has admitted them); the error
/// names the first NF's file.
pub(super) fn check_crds(documents: &[Document], world: &World) -> Result<(), ScenarioError> {
    let Some(first) = documents.iter().find(|d| is_function(&d.value)) else {
        return Ok(());
    };
    check_against(world, |message| ScenarioError {
        location: first.location(),
        object: Some(first.describe()),
        field: Some("kind".into()),
        message,
    })
}

/// The same for an NF or chain that an event applies (`field` names the event).
pub(super) fn check_event_crds(
    objects: &[Value],
    world: &World,
    error: impl Fn(String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    if !objects.iter().any(is_function) {
        return Ok(());
    }
    check_against(world, error)
}

fn check_against(
    world: &World,
    error: impl Fn(String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    for (api_version, kind) in FUNCTION_CRDS {
        if world.registry.find_kind(api_version, kind).is_none() {
            return Err(error(format!(
                "network functions run on KubeVirt and Multus, and {api_version} {kind} is not among the scenario's objects (include the upstream CRDs: ../shared/crds/kubevirt and ../shared/crds/multus)"
            )));
        }
    }
    Ok(())
}
