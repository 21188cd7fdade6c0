//! Kinds of other projects that edgeplane reads and writes (KubeVirt's VirtualMachine and
//! VirtualMachineInstance, Multus' NetworkAttachmentDefinition, Karmada's
//! ResourceBinding and PropagationPolicy), as typed resources so
//! that caches and [`crate::Context`] take them like edgeplane's own. Only the metadata is
//! typed: the rest is kept as JSON, read and built by `edgeplane_core::{nf, chain}` and
//! checked against the upstream CRDs in the tests.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Serialize};

macro_rules! foreign_kind {
    ($(#[$doc:meta])* $name:ident, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
        pub struct $name {
            #[serde(default)]
            pub metadata: ObjectMeta,
            /// Everything but `apiVersion`, `kind` and `metadata`.
            #[serde(flatten)]
            pub rest: serde_json::Map<String, serde_json::Value>,
        }

        impl Resource for $name {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl $name {
            /// The object from JSON with `apiVersion`, `kind` and `metadata` (those two
            /// are dropped: the type says them).
            pub fn from_json(value: serde_json::Value) -> Result<$name, serde_json::Error> {
                let mut object: $name = serde_json::from_value(value)?;
                object.rest.remove("apiVersion");
                object.rest.remove("kind");
                Ok(object)
            }

            /// The whole object as JSON, `apiVersion` and `kind` included.
            pub fn to_json(&self) -> serde_json::Value {
                let mut value = serde_json::to_value(self).unwrap_or_default();
                value["apiVersion"] = serde_json::json!(<$name as Resource>::api_version(&()));
                value["kind"] = serde_json::json!($kind);
                value
            }
        }
    };
}

foreign_kind!(
    /// A KubeVirt `VirtualMachine` (`kubevirt.io/v1`).
    VirtualMachine,
    "kubevirt.io",
    "v1",
    "VirtualMachine",
    "virtualmachines"
);
foreign_kind!(
    /// A KubeVirt `VirtualMachineInstance` (`kubevirt.io/v1`): a running VM.
    VirtualMachineInstance,
    "kubevirt.io",
    "v1",
    "VirtualMachineInstance",
    "virtualmachineinstances"
);
foreign_kind!(
    /// A KubeVirt `VirtualMachineInstanceMigration` (`kubevirt.io/v1`): a live migration
    /// of one VMI, created by the descheduler to move a VM hop.
    VirtualMachineInstanceMigration,
    "kubevirt.io",
    "v1",
    "VirtualMachineInstanceMigration",
    "virtualmachineinstancemigrations"
);
foreign_kind!(
    /// A Multus `NetworkAttachmentDefinition` (`k8s.cni.cncf.io/v1`).
    NetworkAttachmentDefinition,
    "k8s.cni.cncf.io",
    "v1",
    "NetworkAttachmentDefinition",
    "network-attachment-definitions"
);
foreign_kind!(
    /// A Karmada `ResourceBinding` (`work.karmada.io/v1alpha2`): a workload and the
    /// clusters it is scheduled to (`spec.clusters`).
    ResourceBinding,
    "work.karmada.io",
    "v1alpha2",
    "ResourceBinding",
    "resourcebindings"
);
foreign_kind!(
    /// A Karmada `PropagationPolicy` (`policy.karmada.io/v1alpha1`).
    PropagationPolicy,
    "policy.karmada.io",
    "v1alpha1",
    "PropagationPolicy",
    "propagationpolicies"
);
