//! What each replica of a NetworkFunction is: a gated Pod or a halted VirtualMachine.

use std::collections::BTreeMap;

use edgeplane_api::names::{NETWORK_API_VERSION, PLANNER_GATE};
use edgeplane_api::{InterfaceBinding, NetworkFunction, NfRuntime};
use k8s_openapi::api::core::v1::{
    Affinity, Container, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    Pod, PodAffinity, PodSchedulingGate, PodSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use super::{FieldError, NF_LABEL, Port, REPLICA_LABEL, check, parse_requirement, replica_name};
use crate::kubevirt::{KUBEVIRT_API_VERSION, VirtualMachineInstanceSpec};
use crate::multus::{NETWORKS_ANNOTATION, NetworkSelection, qualified};

/// The name of the container of a Container NF (a `podTemplate` merges into it by name).
pub const CONTAINER_NAME: &str = "nf";
/// The VM's disk and volume holding the image.
pub const DISK_NAME: &str = "containerdisk";
/// The VM's interface on the pod network (KubeVirt's masquerade binding).
pub const POD_NETWORK: &str = "default";

/// One rendered replica.
#[derive(Clone, Debug, PartialEq)]
pub enum Replica {
    Pod(Box<Pod>),
    /// A `kubevirt.io/v1` VirtualMachine: core models only the part the planner reads
    /// (`crate::kubevirt`), so the whole object is JSON.
    VirtualMachine(Value),
}

impl Replica {
    pub fn name(&self) -> &str {
        match self {
            Replica::Pod(p) => p.metadata.name.as_deref().unwrap_or_default(),
            Replica::VirtualMachine(v) => v["metadata"]["name"].as_str().unwrap_or_default(),
        }
    }
}

/// Renders every replica of `nf`, or says everything that is wrong and renders nothing.
/// `ports[i]` are the chain links of replica i; `running(i)` whether replica i's VM is to
/// run (a VM is created halted and started once the controller says so).
pub fn render(
    nf: &NetworkFunction,
    ports: &[Vec<Port>],
    network_exists: &dyn Fn(&str) -> bool,
    running: &dyn Fn(usize) -> bool,
) -> Result<Vec<Replica>, Vec<FieldError>> {
    let all_ports: Vec<Port> = ports.iter().flatten().cloned().collect();
    let mut errors = check(nf, &all_ports, network_exists);
    if !errors.is_empty() {
        return Err(errors);
    }
    let count = usize::try_from(nf.spec.replicas).unwrap_or(0);
    let mut replicas = Vec::with_capacity(count);
    for i in 0..count {
        let own = ports.get(i).map(Vec::as_slice).unwrap_or_default();
        match render_replica(nf, i, own, running(i)) {
            Ok(r) => replicas.push(r),
            Err(e) => {
                errors.push(e);
                break;
            }
        }
    }
    if errors.is_empty() {
        Ok(replicas)
    } else {
        Err(errors)
    }
}

/// Replica `index` of a checked NF.
pub fn render_replica(
    nf: &NetworkFunction,
    index: usize,
    ports: &[Port],
    running: bool,
) -> Result<Replica, FieldError> {
    match nf.spec.runtime {
        NfRuntime::Container => render_pod(nf, index, ports).map(|p| Replica::Pod(Box::new(p))),
        NfRuntime::VirtualMachine => {
            render_vm(nf, index, ports, running).map(Replica::VirtualMachine)
        }
    }
}

/// The NF's interfaces then the chain's ports: (name, `namespace/network`, binding).
fn interfaces(nf: &NetworkFunction, ports: &[Port]) -> Vec<(String, String, InterfaceBinding)> {
    let namespace = nf.metadata.namespace.as_deref().unwrap_or("default");
    nf.spec
        .interfaces
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                qualified(&i.network, namespace),
                i.binding.unwrap_or_default(),
            )
        })
        .chain(
            ports
                .iter()
                .map(|p| (p.name.clone(), p.network.clone(), p.binding)),
        )
        .collect()
}

fn metadata(nf: &NetworkFunction, index: usize) -> ObjectMeta {
    let name = nf.metadata.name.clone().unwrap_or_default();
    let owner = nf.metadata.uid.as_ref().map(|uid| OwnerReference {
        api_version: NETWORK_API_VERSION.into(),
        kind: "NetworkFunction".into(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    });
    ObjectMeta {
        name: Some(replica_name(&name, index)),
        namespace: Some(
            nf.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        labels: Some(labels(&name, index)),
        owner_references: owner.map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The labels of a replica (and of a VM's template, so its launcher pod has them).
pub fn labels(nf: &str, index: usize) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NF_LABEL.to_string(), nf.to_string()),
        (REPLICA_LABEL.to_string(), index.to_string()),
    ])
}

/// `requires` as one required node-affinity term (every requirement must hold).
pub fn required_affinity(requires: &[String]) -> Option<Affinity> {
    let expressions: Vec<NodeSelectorRequirement> = requires
        .iter()
        .filter_map(|t| parse_requirement(t).ok())
        .map(|(key, value)| match value {
            Some(v) => NodeSelectorRequirement {
                key,
                operator: "In".into(),
                values: Some(vec![v]),
            },
            None => NodeSelectorRequirement {
                key,
                operator: "Exists".into(),
                values: None,
            },
        })
        .collect();
    (!expressions.is_empty()).then(|| Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(expressions),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Affinity::default()
    })
}

fn render_pod(nf: &NetworkFunction, index: usize, ports: &[Port]) -> Result<Pod, FieldError> {
    let mut meta = metadata(nf, index);
    let selections: Vec<NetworkSelection> = interfaces(nf, ports)
        .into_iter()
        .enumerate()
        .map(|(k, (_, network, _))| {
            let (ns, name) = network.split_once('/').unwrap_or(("default", &network));
            NetworkSelection {
                name: name.to_string(),
                namespace: Some(ns.to_string()),
                interface: Some(format!("net{}", k + 1)),
            }
        })
        .collect();
    if !selections.is_empty() {
        let text = serde_json::to_string(&selections)
            .map_err(|e| FieldError::new("spec.interfaces", e.to_string()))?;
        meta.annotations = Some(BTreeMap::from([(NETWORKS_ANNOTATION.to_string(), text)]));
    }
    let resources = (!nf.spec.resources.is_empty()).then(|| ResourceRequirements {
        // Requests equal to limits: the Guaranteed class that CPU pinning and hugepages need.
        requests: Some(nf.spec.resources.clone()),
        limits: Some(nf.spec.resources.clone()),
        ..ResourceRequirements::default()
    });
    let spec = PodSpec {
        containers: vec![Container {
            name: CONTAINER_NAME.into(),
            image: Some(nf.spec.image.clone()),
            resources,
            ..Container::default()
        }],
        affinity: required_affinity(&nf.spec.requires),
        scheduling_gates: Some(vec![PodSchedulingGate {
            name: PLANNER_GATE.into(),
        }]),
        ..PodSpec::default()
    };
    let mut spec = match &nf.spec.pod_template {
        Some(template) => {
            let mut merged = serde_json::to_value(&spec)
                .map_err(|e| FieldError::new("spec.podTemplate", e.to_string()))?;
            merge(&mut merged, template);
            serde_json::from_value::<PodSpec>(merged).map_err(|e| {
                FieldError::new(
                    "spec.podTemplate",
                    format!("does not merge into a pod spec: {e}"),
                )
            })?
        }
        None => spec,
    };
    // The gate is what lets the planner place the pod; a template cannot take it away.
    let gates = spec.scheduling_gates.get_or_insert_with(Vec::new);
    if !gates.iter().any(|g| g.name == PLANNER_GATE) {
        gates.push(PodSchedulingGate {
            name: PLANNER_GATE.into(),
        });
    }
    Ok(Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    })
}

fn render_vm(
    nf: &NetworkFunction,
    index: usize,
    ports: &[Port],
    running: bool,
) -> Result<Value, FieldError> {
    let name = nf.metadata.name.clone().unwrap_or_default();
    let meta = metadata(nf, index);
    let mut requests: BTreeMap<String, Quantity> = BTreeMap::new();
    let mut memory = json!(null);
    for (resource, amount) in &nf.spec.resources {
        match resource.strip_prefix("hugepages-") {
            // KubeVirt backs the guest's memory with hugepages of a size, and asks the
            // launcher pod for them itself.
            Some(size) => {
                memory = json!({"hugepages": {"pageSize": size}});
                requests
                    .entry("memory".into())
                    .or_insert_with(|| amount.clone());
            }
            None => {
                requests.insert(resource.clone(), amount.clone());
            }
        }
    }
    let all = interfaces(nf, ports);
    let mut vm_interfaces = vec![json!({"name": POD_NETWORK, "masquerade": {}})];
    let mut networks = vec![json!({"name": POD_NETWORK, "pod": {}})];
    for (iface, network, binding) in &all {
        let binding = match binding {
            InterfaceBinding::Sriov => "sriov",
            InterfaceBinding::Bridge | InterfaceBinding::Masquerade => "bridge",
        };
        vm_interfaces.push(json!({"name": iface, binding: {}}));
        networks.push(json!({"name": iface, "multus": {"networkName": network}}));
    }
    let mut domain = json!({
        "devices": {
            "disks": [{"name": DISK_NAME, "disk": {"bus": "virtio"}}],
            "interfaces": vm_interfaces,
        },
    });
    if !requests.is_empty() {
        domain["resources"] = json!({"requests": requests});
    }
    if !memory.is_null() {
        domain["memory"] = memory;
    }
    let mut template_spec = json!({
        "domain": domain,
        "networks": networks,
        "volumes": [{"name": DISK_NAME, "containerDisk": {"image": nf.spec.image}}],
    });
    if let Some(affinity) = required_affinity(&nf.spec.requires) {
        template_spec["affinity"] = serde_json::to_value(affinity)
            .map_err(|e| FieldError::new("spec.requires", e.to_string()))?;
    }
    if let Some(template) = &nf.spec.vm_template {
        merge(&mut template_spec, template);
        // The fields edgeplane reads back (domain resources, placement) must keep their
        // types; the rest is KubeVirt's to judge when the VM is applied.
        if let Err(e) = serde_json::from_value::<VirtualMachineInstanceSpec>(template_spec.clone())
        {
            return Err(FieldError::new(
                "spec.vmTemplate",
                format!("does not merge into a VirtualMachineInstance spec: {e}"),
            ));
        }
    }
    let meta =
        serde_json::to_value(&meta).map_err(|e| FieldError::new("metadata", e.to_string()))?;
    Ok(json!({
        "apiVersion": KUBEVIRT_API_VERSION,
        "kind": "VirtualMachine",
        "metadata": meta,
        "spec": {
            "runStrategy": if running { "Always" } else { "Halted" },
            "template": {
                "metadata": {"labels": labels(&name, index)},
                "spec": template_spec,
            },
        },
    }))
}

/// Adds the pod affinity chains ask for (`crate::chain::colocation`) to a replica: the
/// pod's, or the VM template's (KubeVirt copies it to the launcher pod). It goes in at
/// creation: a pod's affinity cannot change later.
pub fn add_pod_affinity(replica: &mut Replica, affinity: &PodAffinity) {
    match replica {
        Replica::Pod(pod) => {
            if let Some(spec) = pod.spec.as_mut() {
                spec.affinity
                    .get_or_insert_with(Affinity::default)
                    .pod_affinity = Some(affinity.clone());
            }
        }
        Replica::VirtualMachine(vm) => {
            if let Some(spec) = vm
                .pointer_mut("/spec/template/spec")
                .and_then(Value::as_object_mut)
                && let Ok(value) = serde_json::to_value(affinity)
            {
                let slot = spec.entry("affinity").or_insert_with(|| json!({}));
                // A template may have put anything there; indexing a non-object panics.
                if !slot.is_object() {
                    *slot = json!({});
                }
                slot["podAffinity"] = value;
            }
        }
    }
}

/// Merges `patch` into `target` as a JSON merge patch (RFC 7386: objects merge, `null`
/// removes), except that lists of objects with a `name` merge item by item by name, as
/// Kubernetes' strategic merge does for containers, volumes, interfaces and networks: a
/// template that adds a sidecar keeps the rendered container.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, value) in p {
                if value.is_null() {
                    t.remove(key);
                } else {
                    merge(t.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if named_items(t) && named_items(p) => {
            for item in p {
                match t.iter_mut().find(|x| x["name"] == item["name"]) {
                    Some(existing) => merge(existing, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn named_items(items: &[Value]) -> bool {
    items
        .iter()
        .all(|i| i.get("name").is_some_and(Value::is_string))
}
