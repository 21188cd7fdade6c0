//! The part of a KubeVirt VirtualMachine the planner reads, and the launcher pod it runs
//! in (see [`crate::workloads`] for how a VM is planned).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, PodSpec, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// `kubevirt.io/v1`
pub const KUBEVIRT_API_VERSION: &str = "kubevirt.io/v1";

/// What a virt-launcher pod asks for beyond the guest's memory (libvirt, QEMU, the
/// launcher itself). KubeVirt computes it from the domain; a constant of its usual size is
/// close enough for placement, and the planner and the embedded cluster's KubeVirt
/// stand-in use the same one.
pub const LAUNCHER_MEMORY_OVERHEAD: &str = "200Mi";

/// The part of a KubeVirt VirtualMachine the planner reads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachine {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VirtualMachineSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_strategy: Option<String>,
    #[serde(default)]
    pub template: VirtualMachineTemplate,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    #[serde(default)]
    pub spec: VirtualMachineInstanceSpec,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineInstanceSpec {
    #[serde(default)]
    pub domain: Domain,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<DomainResources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<DomainMemory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<DomainCpu>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, Quantity>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainMemory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Quantity>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainCpu {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
}

impl VirtualMachine {
    /// The launcher pod's spec as the planner needs it: the domain's requests, and the
    /// launcher's memory overhead as the pod's `overhead`.
    pub fn pod_spec(&self) -> PodSpec {
        let vmi = &self.spec.template.spec;
        let mut requests: BTreeMap<String, Quantity> = vmi
            .domain
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        if !requests.contains_key("memory")
            && let Some(guest) = vmi.domain.memory.as_ref().and_then(|m| m.guest.clone())
        {
            requests.insert("memory".into(), guest);
        }
        if !requests.contains_key("cpu") {
            let cpu = vmi.domain.cpu.as_ref();
            let count = |f: fn(&DomainCpu) -> Option<u32>| cpu.and_then(f).unwrap_or(1).max(1);
            let vcpus = count(|c| c.cores) * count(|c| c.sockets) * count(|c| c.threads);
            requests.insert("cpu".into(), Quantity(vcpus.to_string()));
        }
        PodSpec {
            containers: vec![k8s_openapi::api::core::v1::Container {
                name: "compute".into(),
                resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                    requests: Some(requests),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            node_selector: vmi.node_selector.clone(),
            affinity: vmi.affinity.clone(),
            tolerations: vmi.tolerations.clone(),
            overhead: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity(LAUNCHER_MEMORY_OVERHEAD.into()),
            )])),
            ..PodSpec::default()
        }
    }

    /// The labels of the launcher pod.
    pub fn pod_labels(&self) -> BTreeMap<String, String> {
        self.spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default()
    }
}
