//! A KubeVirt stand-in: VirtualMachines start and stop VirtualMachineInstances, each VMI
//! runs in a virt-launcher pod (labelled `kubevirt.io=virt-launcher` and
//! `vm.kubevirt.io/name`, with the VMI's placement, its domain's requests plus an overhead,
//! and its Multus networks), and the VMI's status follows the pod: phase, `nodeName`,
//! `interfaces` (the pod network, then each Multus network with what Multus reported).
//!
//! Live migrations (`VirtualMachineInstanceMigration`) are in [`migration`].
//!
//! It runs only where the KubeVirt CRDs are loaded (the registry serves `kubevirt.io`).
//! Not simulated: the virt-launcher's real overhead formula, guest agents,
//! `spec.running` edits racing `runStrategy`, DataVolumes. docs/embedded-cluster.md says
//! more.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeplane_core::multus::{NETWORK_STATUS_ANNOTATION, NETWORKS_ANNOTATION, NetworkStatus};
use edgeplane_core::quantity::{format_milli, parse_milli};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::api::{ApiServer, DeleteOptions, State, Subresource, WriteOptions};
use crate::controller::{Feed, any_changed, record_event};
use crate::object;

pub mod migration;

pub use migration::{MIGRATION_CRD, MIGRATION_JOB_LABEL, VMIM_STORAGE};

const MANAGER: &str = "virt-controller";
pub const VM_STORAGE: &str = "virtualmachines.kubevirt.io";
pub const VMI_STORAGE: &str = "virtualmachineinstances.kubevirt.io";
/// The label of a VM's launcher pod naming the VM.
pub const VM_NAME_LABEL: &str = "vm.kubevirt.io/name";
/// The label every launcher pod has, `virt-launcher`.
pub const KUBEVIRT_LABEL: &str = "kubevirt.io";
/// What the launcher pod asks for beyond the guest's memory: the planner's constant.
pub use edgeplane_core::kubevirt::LAUNCHER_MEMORY_OVERHEAD;

/// Whether a VM's run strategy (or the older `spec.running`) asks for a running VMI.
pub fn wants_running(vm: &Value) -> bool {
    match object::get_str(vm, &["spec", "runStrategy"]) {
        Some("Always" | "RerunOnFailure" | "Once") => true,
        Some(_) => false,
        None => object::get_path(vm, &["spec", "running"]).and_then(Value::as_bool) == Some(true),
    }
}

/// The launcher pod of a VMI: its requests plus the overhead, its placement, its networks.
pub fn launcher_pod(vmi: &Value) -> Value {
    let name = object::name(vmi);
    let namespace = object::namespace(vmi);
    let spec = vmi.get("spec").cloned().unwrap_or_default();
    let mut requests: BTreeMap<String, Value> = spec
        .pointer("/domain/resources/requests")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let guest = requests
        .get("memory")
        .and_then(quantity_text)
        .and_then(|m| parse_milli(&m))
        .unwrap_or(0);
    let overhead = parse_milli(LAUNCHER_MEMORY_OVERHEAD).unwrap_or(0);
    requests.insert("memory".into(), json!(format_milli(guest + overhead)));
    if let Some(size) = spec
        .pointer("/domain/memory/hugepages/pageSize")
        .and_then(Value::as_str)
    {
        requests.insert(format!("hugepages-{size}"), json!(format_milli(guest)));
    }
    let networks = multus_networks(&spec, namespace);
    let digest = Sha256::digest(object::uid(vmi).as_bytes());
    let suffix: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    let mut labels: BTreeMap<String, String> = object::labels(vmi);
    labels.insert(KUBEVIRT_LABEL.into(), "virt-launcher".into());
    labels.insert(VM_NAME_LABEL.into(), name.to_string());
    labels.insert(
        "kubevirt.io/created-by".into(),
        object::uid(vmi).to_string(),
    );
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("virt-launcher-{name}-{}", &suffix[..5]),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                "name": name, "uid": object::uid(vmi), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "containers": [{"name": "compute", "image": "quay.io/kubevirt/virt-launcher:sim",
                "resources": {"requests": requests.clone(), "limits": requests}}],
        },
    });
    if !networks.is_empty() {
        let list: Vec<Value> = networks
            .iter()
            .map(|(_, ns, nad, ifname)| json!({"name": nad, "namespace": ns, "interface": ifname}))
            .collect();
        object::set_path(
            &mut pod,
            &["metadata", "annotations", NETWORKS_ANNOTATION],
            json!(Value::Array(list).to_string()),
        );
    }
    for field in ["nodeSelector", "affinity", "tolerations"] {
        if let Some(v) = spec.get(field) {
            object::set_path(&mut pod, &["spec", field], v.clone());
        }
    }
    pod
}

fn quantity_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A VMI's Multus networks in order: (VM interface name, namespace, NAD, pod interface
/// `net<k>`).
fn multus_networks(spec: &Value, namespace: &str) -> Vec<(String, String, String, String)> {
    spec.get("networks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let iface = n.get("name")?.as_str()?.to_string();
            let reference = n.pointer("/multus/networkName")?.as_str()?;
            let (ns, nad) = reference.split_once('/').unwrap_or((namespace, reference));
            Some((iface, ns.to_string(), nad.to_string()))
        })
        .enumerate()
        .map(|(k, (iface, ns, nad))| (iface, ns, nad, format!("net{}", k + 1)))
        .collect()
}

/// The VMI's status from its launcher pod (`None`: none yet).
pub fn vmi_status(vmi: &Value, pod: Option<&Value>) -> Value {
    let mut status = vmi
        .get("status")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let Some(pod) = pod else {
        let phase = match object::get_str(vmi, &["status", "phase"]) {
            // The launcher pod went away under a running VMI: the VM is gone.
            Some("Running" | "Scheduled") => "Failed",
            Some(p) => p,
            None => "Pending",
        };
        status["phase"] = json!(phase);
        return status;
    };
    let node = object::get_str(pod, &["spec", "nodeName"]).unwrap_or_default();
    let pod_phase = object::get_str(pod, &["status", "phase"]).unwrap_or("Pending");
    let phase = match pod_phase {
        "Running" => "Running",
        "Failed" | "Unknown" => "Failed",
        "Succeeded" => "Succeeded",
        _ if node.is_empty() => "Scheduling",
        _ => "Scheduled",
    };
    status["phase"] = json!(phase);
    if !node.is_empty() {
        status["nodeName"] = json!(node);
    }
    if phase == "Running" {
        let ip = object::get_str(pod, &["status", "podIP"]).unwrap_or_default();
        let mut interfaces = vec![
            json!({"name": "default", "ipAddress": ip, "ipAddresses": [ip],
            "interfaceName": "eth0", "infoSource": "domain, guest-agent"}),
        ];
        let reported: Vec<NetworkStatus> = object::annotations(pod)
            .get(NETWORK_STATUS_ANNOTATION)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let spec = vmi.get("spec").cloned().unwrap_or_default();
        for (k, (iface, ns, nad, ifname)) in multus_networks(&spec, object::namespace(vmi))
            .into_iter()
            .enumerate()
        {
            let qualified = format!("{ns}/{nad}");
            if let Some(r) = reported
                .iter()
                .find(|r| r.name == qualified && r.interface.as_deref() == Some(ifname.as_str()))
            {
                interfaces.push(json!({"name": iface, "ipAddresses": r.ips, "mac": r.mac,
                    "interfaceName": format!("eth{}", k + 1), "podInterfaceName": ifname,
                    "infoSource": "domain, guest-agent, multus-status"}));
            }
        }
        status["interfaces"] = json!(interfaces);
        status["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    } else {
        status["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    }
    status
}

fn is_launcher_of(pod: &Value, vmi: &Value) -> bool {
    let labels = object::labels(pod);
    labels.get(KUBEVIRT_LABEL).map(String::as_str) == Some("virt-launcher")
        && labels.get(VM_NAME_LABEL).map(String::as_str) == Some(object::name(vmi))
        && labels.get("kubevirt.io/created-by").map(String::as_str) == Some(object::uid(vmi))
}

fn reconcile(st: &mut State) {
    let (Some(vm_def), Some(vmi_def), Some(pod_def)) = (
        st.registry.by_storage(VM_STORAGE),
        st.registry.by_storage(VMI_STORAGE),
        st.registry.find("", "v1", "pods"),
    ) else {
        return;
    };
    let manager = WriteOptions::manager(MANAGER);
    let vms: Vec<Arc<Value>> = st
        .store
        .range(VM_STORAGE, None, None)
        .map(|v| v.value_arc())
        .collect();
    for vm in &vms {
        let ns = object::namespace(vm).to_string();
        let name = object::name(vm).to_string();
        let vmi = st.store.get(VMI_STORAGE, &(ns.clone(), name.clone()));
        let running = wants_running(vm) && object::deletion_timestamp(vm).is_none();
        match (&vmi, running) {
            (None, true) => {
                let template = vm.pointer("/spec/template").cloned().unwrap_or_default();
                let mut labels = template
                    .pointer("/metadata/labels")
                    .filter(|l| l.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                labels["kubevirt.io/vm"] = json!(name);
                let body = json!({
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachineInstance",
                    "metadata": {"name": name, "namespace": ns, "labels": labels,
                        "ownerReferences": [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                            "name": name, "uid": object::uid(vm), "controller": true, "blockOwnerDeletion": true}]},
                    "spec": template.get("spec").cloned().unwrap_or_default(),
                    "status": {"phase": "Pending"},
                });
                if st.create(&vmi_def, Some(&ns), body, &manager).is_ok() {
                    record_event(
                        st,
                        vm,
                        "Normal",
                        "SuccessfulCreate",
                        &format!(
                            "Started the virtual machine by creating the new virtual machine instance {name}"
                        ),
                        MANAGER,
                    );
                }
            }
            // `Always` and `RerunOnFailure` run the VM again after its VMI ended: the
            // finished VMI goes, and the next pass starts a new one.
            (Some(v), true)
                if object::deletion_timestamp(v).is_none()
                    && matches!(
                        object::get_str(v, &["status", "phase"]),
                        Some("Failed" | "Succeeded")
                    )
                    && matches!(
                        object::get_str(vm, &["spec", "runStrategy"]),
                        Some("Always" | "RerunOnFailure") | None
                    ) =>
            {
                let _ = st.delete(&vmi_def, Some(&ns), &name, &DeleteOptions::default());
                record_event(
                    st,
                    vm,
                    "Normal",
                    "SuccessfulDelete",
                    &format!(
                        "Deleted the finished virtual machine instance {name} to start it again"
                    ),
                    MANAGER,
                );
            }
            (Some(v), false) if object::deletion_timestamp(v).is_none() => {
                let _ = st.delete(&vmi_def, Some(&ns), &name, &DeleteOptions::default());
                record_event(
                    st,
                    vm,
                    "Normal",
                    "SuccessfulDelete",
                    &format!(
                        "Stopped the virtual machine by deleting the virtual machine instance {}",
                        object::uid(v)
                    ),
                    MANAGER,
                );
            }
            _ => {}
        }
        let vmi = st.store.get(VMI_STORAGE, &(ns.clone(), name.clone()));
        let phase = vmi
            .as_ref()
            .and_then(|v| object::get_str(v, &["status", "phase"]).map(str::to_string));
        let printable = match (running, phase.as_deref()) {
            (false, None) => "Stopped",
            (false, Some(_)) => "Stopping",
            (true, Some("Running")) => "Running",
            (true, Some("Failed")) => "ErrorUnschedulable",
            (true, _) => "Starting",
        };
        let status = json!({"printableStatus": printable, "ready": phase.as_deref() == Some("Running"),
            "created": vmi.is_some()});
        if vm.get("status") != Some(&status) {
            let mut new = (**vm).clone();
            new["status"] = status;
            let _ = st.update(
                &vm_def,
                Some(&ns),
                &name,
                new,
                Subresource::Status,
                &manager,
            );
        }
    }
    migration::reconcile(st);
    let vmis: Vec<Arc<Value>> = st
        .store
        .range(VMI_STORAGE, None, None)
        .map(|v| v.value_arc())
        .collect();
    for vmi in &vmis {
        let ns = object::namespace(vmi).to_string();
        let name = object::name(vmi).to_string();
        let owner_gone = !vms
            .iter()
            .any(|vm| object::namespace(vm) == ns && object::name(vm) == name);
        if owner_gone && object::deletion_timestamp(vmi).is_none() {
            let _ = st.delete(&vmi_def, Some(&ns), &name, &DeleteOptions::default());
            continue;
        }
        let pods: Vec<Arc<Value>> = st
            .store
            .range("pods", Some(&ns), None)
            .map(|p| p.value_arc())
            .filter(|p| is_launcher_of(p, vmi))
            .collect();
        // While a migration runs there are two launcher pods: the VMI's is the one on its
        // node (the source), until the migration moves `status.nodeName` to the target.
        let node = object::get_str(vmi, &["status", "nodeName"]);
        let alive: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| object::deletion_timestamp(p).is_none())
            .collect();
        let live = alive
            .iter()
            .find(|p| node.is_some() && object::get_str(p, &["spec", "nodeName"]) == node)
            .or_else(|| alive.iter().find(|p| !migration::is_migration_target(p)))
            .map(|p| (*p).clone());
        let phase = object::get_str(vmi, &["status", "phase"]).unwrap_or("Pending");
        if object::deletion_timestamp(vmi).is_some() {
            for p in &pods {
                let _ = st.delete(
                    &pod_def,
                    Some(&ns),
                    object::name(p),
                    &DeleteOptions::default(),
                );
            }
            continue;
        }
        if live.is_none() && matches!(phase, "Pending") {
            let pod = launcher_pod(vmi);
            let _ = st.create(&pod_def, Some(&ns), pod, &manager);
            continue;
        }
        let status = vmi_status(vmi, live.as_deref());
        if vmi.get("status") != Some(&status) {
            let mut new = (**vmi).clone();
            new["status"] = status;
            let _ = st.update(&vmi_def, Some(&ns), &name, new, Subresource::Main, &manager);
        }
    }
}

/// Runs the KubeVirt stand-in until shutdown, from when the KubeVirt CRDs are loaded.
pub(crate) async fn run(api: Arc<ApiServer>, shutdown: CancellationToken) {
    // Until then it watches only CRDs: a task that woke on every pod change would reorder
    // the other tasks' work, and with it the seeded names of simulations without KubeVirt.
    let mut crds = Feed::new(&api, "customresourcedefinitions.apiextensions.k8s.io");
    while api.lock().registry.by_storage(VM_STORAGE).is_none() {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = any_changed(std::slice::from_mut(&mut crds)) => {}
        }
        let _ = crds.fetch(&api);
    }
    drop(crds);
    let mut feeds = vec![
        Feed::new(&api, VM_STORAGE),
        Feed::new(&api, VMI_STORAGE),
        Feed::new(&api, "pods"),
        Feed::new(&api, "customresourcedefinitions.apiextensions.k8s.io"),
    ];
    // Migrations are watched once their CRD is loaded (it may come after KubeVirt's).
    let mut migrations_watched = api.lock().registry.by_storage(VMIM_STORAGE).is_some();
    if migrations_watched {
        feeds.push(Feed::new(&api, VMIM_STORAGE));
    }
    {
        let mut st = api.lock();
        reconcile(&mut st);
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = any_changed(&mut feeds) => {}
        }
        for feed in &mut feeds {
            // What changed does not matter: every VM and VMI is looked at again.
            let _ = feed.fetch(&api);
        }
        if !migrations_watched && api.lock().registry.by_storage(VMIM_STORAGE).is_some() {
            feeds.push(Feed::new(&api, VMIM_STORAGE));
            migrations_watched = true;
        }
        let mut st = api.lock();
        reconcile(&mut st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vmi() -> Value {
        json!({
            "metadata": {"name": "fw-0", "namespace": "upf", "uid": "u-1",
                         "labels": {"network.edgeplane.io/network-function": "fw"}},
            "spec": {
                "domain": {"resources": {"requests": {"cpu": "2", "memory": "2Gi"}}},
                "networks": [{"name": "default", "pod": {}},
                             {"name": "north", "multus": {"networkName": "upf/n6"}},
                             {"name": "up-out", "multus": {"networkName": "up-0-fw-dpi"}}],
                "nodeSelector": {"edge": "true"},
            },
            "status": {"phase": "Pending"},
        })
    }

    #[test]
    fn run_strategies() {
        assert!(wants_running(&json!({"spec": {"runStrategy": "Always"}})));
        assert!(!wants_running(&json!({"spec": {"runStrategy": "Halted"}})));
        assert!(wants_running(&json!({"spec": {"running": true}})));
        assert!(!wants_running(&json!({"spec": {}})));
    }

    #[test]
    fn the_launcher_pod_carries_placement_requests_and_networks() {
        let pod = launcher_pod(&vmi());
        assert_eq!(object::name(&pod), "virt-launcher-fw-0-a24a7");
        let labels = object::labels(&pod);
        assert_eq!(labels["kubevirt.io"], "virt-launcher");
        assert_eq!(labels["vm.kubevirt.io/name"], "fw-0");
        assert_eq!(labels["network.edgeplane.io/network-function"], "fw");
        assert_eq!(pod["spec"]["nodeSelector"], json!({"edge": "true"}));
        // 2Gi of guest memory and the launcher's 200Mi.
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "2", "memory": "2357198848"}) // 2248Mi
        );
        assert_eq!(
            object::annotations(&pod)[NETWORKS_ANNOTATION],
            r#"[{"interface":"net1","name":"n6","namespace":"upf"},{"interface":"net2","name":"up-0-fw-dpi","namespace":"upf"}]"#
        );
    }

    #[test]
    fn the_vmi_follows_its_launcher_pod() {
        let vmi = vmi();
        assert_eq!(vmi_status(&vmi, None)["phase"], "Pending");
        let mut pod = launcher_pod(&vmi);
        assert_eq!(vmi_status(&vmi, Some(&pod))["phase"], "Scheduling");
        pod["spec"]["nodeName"] = json!("e1");
        assert_eq!(vmi_status(&vmi, Some(&pod))["phase"], "Scheduled");
        pod["status"] = json!({"phase": "Running", "podIP": "10.244.0.5"});
        pod["metadata"]["annotations"][NETWORK_STATUS_ANNOTATION] =
            json!(r#"[{"name":"upf/n6","interface":"net1","mac":"02:00:00:00:00:01"}]"#);
        let status = vmi_status(&vmi, Some(&pod));
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["nodeName"], "e1");
        let names: Vec<&str> = status["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["name"].as_str())
            .collect();
        // up-out is not attached yet: not reported.
        assert_eq!(names, ["default", "north"]);
        assert_eq!(status["interfaces"][1]["mac"], "02:00:00:00:00:01");
        let mut running = vmi.clone();
        running["status"] = status;
        assert_eq!(vmi_status(&running, None)["phase"], "Failed");
    }
}
