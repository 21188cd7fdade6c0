//! A read-only snapshot of a live cluster: every object edgeplane plans and judges from
//! (nodes, pods, workloads, the topology and catalogue, policies, offers and bindings), as
//! the manifests an offline command reads would hold them. `edgeplane explain --kubeconfig`
//! reads it; it only lists, never writes or watches.

use edgeplane_core::kubevirt::VirtualMachine;
use edgeplane_core::manifests::Object;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("listing {kind}: {source}")]
    List {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name}: {source}")]
    Decode {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Lists every kind edgeplane reads. A custom kind the cluster does not serve (its CRD is
/// not installed: KubeVirt's VirtualMachine, or edgeplane's own before `helm install`)
/// reads as none.
pub async fn read(client: &Client) -> Result<Vec<Object>, SnapshotError> {
    let mut objects = Vec::new();
    let o = &mut objects;
    add_boxed(client, "Node", o, Object::Node).await?;
    add_boxed(client, "Pod", o, Object::Pod).await?;
    add_boxed(client, "Deployment", o, Object::Deployment).await?;
    add_boxed(client, "StatefulSet", o, Object::StatefulSet).await?;
    add_boxed(client, "ReplicaSet", o, Object::ReplicaSet).await?;
    add_boxed(client, "NetworkTopology", o, Object::Topology).await?;
    add_boxed(client, "NetworkPathCatalogue", o, Object::Catalogue).await?;
    add(client, "ConstraintPolicy", o, Object::Policy).await?;
    add(client, "ConstraintPolicyOffer", o, Object::Offer).await?;
    add(client, "ConstraintPolicyBinding", o, Object::Binding).await?;
    add_boxed(client, "Namespace", o, Object::Namespace).await?;
    add_boxed(client, "PriorityClass", o, Object::PriorityClass).await?;
    objects.extend(
        virtual_machines(client)
            .await?
            .into_iter()
            .map(|o| Object::VirtualMachine(Box::new(o))),
    );
    Ok(objects)
}

/// Lists `K` into `objects`, each wrapped as the manifests' [`Object`].
async fn add<K>(
    client: &Client,
    kind: &'static str,
    objects: &mut Vec<Object>,
    wrap: impl Fn(K) -> Object,
) -> Result<(), SnapshotError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    objects.extend(list::<K>(client, kind).await?.into_iter().map(wrap));
    Ok(())
}

/// [`add`] for the kinds an [`Object`] holds boxed.
async fn add_boxed<K>(
    client: &Client,
    kind: &'static str,
    objects: &mut Vec<Object>,
    wrap: impl Fn(Box<K>) -> Object,
) -> Result<(), SnapshotError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    add(client, kind, objects, |k: K| wrap(Box::new(k))).await
}

async fn list<K>(client: &Client, kind: &'static str) -> Result<Vec<K>, SnapshotError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => Ok(list.items),
        Err(e) if not_served(&e) => Ok(Vec::new()),
        Err(source) => Err(SnapshotError::List { kind, source }),
    }
}

async fn virtual_machines(client: &Client) -> Result<Vec<VirtualMachine>, SnapshotError> {
    let gvk = GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "virtualmachines");
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let items = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) if not_served(&e) => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::List {
                kind: "VirtualMachine",
                source,
            });
        }
    };
    items
        .into_iter()
        .map(|o| {
            let name = o.metadata.name.clone().unwrap_or_default();
            serde_json::to_value(&o)
                .and_then(serde_json::from_value)
                .map_err(|source| SnapshotError::Decode {
                    kind: "VirtualMachine",
                    name,
                    source,
                })
        })
        .collect()
}

/// 404 on a list: the kind is not served (its CRD is not installed).
fn not_served(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// One kind a scenario snapshot holds.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    /// Whether `status` is kept: what the simulator reads from it (a node's allocatable,
    /// a topology's measurements).
    keep_status: bool,
}

/// In apply order: namespaces before what lives in them, policies before offers.
const SCENARIO_KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        keep_status: false,
    },
    Kind {
        group: "scheduling.k8s.io",
        version: "v1",
        kind: "PriorityClass",
        plural: "priorityclasses",
        keep_status: false,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        keep_status: true,
    },
    Kind {
        group: "network.edgeplane.io",
        version: "v1alpha1",
        kind: "NetworkTopology",
        plural: "networktopologies",
        keep_status: true,
    },
    Kind {
        group: "network.edgeplane.io",
        version: "v1alpha1",
        kind: "NetworkPathCatalogue",
        plural: "networkpathcatalogues",
        keep_status: false,
    },
    Kind {
        group: "constraint.edgeplane.io",
        version: "v1alpha1",
        kind: "ConstraintPolicy",
        plural: "constraintpolicies",
        keep_status: false,
    },
    Kind {
        group: "constraint.edgeplane.io",
        version: "v1alpha1",
        kind: "ConstraintPolicyOffer",
        plural: "constraintpolicyoffers",
        keep_status: false,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        keep_status: false,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        keep_status: false,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        keep_status: false,
    },
    Kind {
        group: "kubevirt.io",
        version: "v1",
        kind: "VirtualMachine",
        plural: "virtualmachines",
        keep_status: false,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        keep_status: false,
    },
];

/// Namespaces of the platform, not of the applications: left out of a scenario.
const PLATFORM_NAMESPACES: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    edgeplane_api::names::SYSTEM_NAMESPACE,
];

/// The live cluster as scenario manifests (`edgeplane sim snapshot --from-cluster`): the
/// objects a scenario includes, as one would write them. Left out: what the cluster's
/// controllers make again in the simulator (pods and ReplicaSets owned by a controller,
/// bindings, which the offer controller makes), the platform's namespaces, and what the
/// API server sets (uid, resourceVersion, managedFields, timestamps, owner references,
/// status but a node's and a topology's). Bare pods keep their node. Lists only.
pub async fn scenario_manifests(client: &Client) -> Result<Vec<serde_json::Value>, SnapshotError> {
    let mut out = Vec::new();
    for kind in SCENARIO_KINDS {
        let gvk = GroupVersionKind::gvk(kind.group, kind.version, kind.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let items = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) if not_served(&e) => continue,
            Err(source) => {
                return Err(SnapshotError::List {
                    kind: kind.kind,
                    source,
                });
            }
        };
        for item in items {
            let name = item.metadata.name.clone().unwrap_or_default();
            let namespace = item.metadata.namespace.as_deref().unwrap_or_default();
            let owned = item
                .metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|r| r.controller == Some(true)));
            if owned
                || PLATFORM_NAMESPACES.contains(&namespace)
                || (kind.kind == "Namespace"
                    && (PLATFORM_NAMESPACES.contains(&name.as_str()) || name == "default"))
                // Built into every API server, and reserved: creating one is refused.
                || (kind.kind == "PriorityClass" && name.starts_with("system-"))
            {
                continue;
            }
            let mut value =
                serde_json::to_value(&item).map_err(|source| SnapshotError::Decode {
                    kind: kind.kind,
                    name: name.clone(),
                    source,
                })?;
            clean(&mut value, kind);
            out.push(value);
        }
    }
    Ok(out)
}

/// Keeps what a person would write: the identity, labels, annotations and spec.
fn clean(value: &mut serde_json::Value, kind: &Kind) {
    let api_version = if kind.group.is_empty() {
        kind.version.to_string()
    } else {
        format!("{}/{}", kind.group, kind.version)
    };
    value["apiVersion"] = serde_json::Value::String(api_version);
    value["kind"] = serde_json::Value::String(kind.kind.to_string());
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for field in [
            "uid",
            "resourceVersion",
            "managedFields",
            "creationTimestamp",
            "generation",
            "ownerReferences",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "finalizers",
        ] {
            meta.remove(field);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    if let Some(object) = value.as_object_mut() {
        if !kind.keep_status {
            object.remove("status");
        } else if kind.kind == "Node"
            && let Some(status) = object.get_mut("status").and_then(|s| s.as_object_mut())
        {
            // The simulated kubelet reports conditions of its own.
            status.retain(|k, _| matches!(k.as_str(), "capacity" | "allocatable"));
        }
    }
}
