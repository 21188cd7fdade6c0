//! Live migration in the KubeVirt stand-in: a `VirtualMachineInstanceMigration` moves its
//! VMI to a new virt-launcher pod on a node its `spec.addedNodeSelector` selects, without
//! interruption: the source pod keeps running until the target pod runs, then the VMI's
//! `status.nodeName` becomes the target node and the source pod is removed.
//!
//! Phases: Pending (created) -> Scheduling (the target pod exists, not bound) ->
//! Scheduled (bound) -> Running (the target pod runs: the guest's memory is copied) ->
//! Succeeded; or Failed, with a condition saying why, when the VMI does not run, no node
//! other than the source matches the selector, or the target pod cannot be scheduled or
//! fails. `status.migrationState` follows upstream's schema and the VMI's
//! `status.migrationState` mirrors it. Not simulated: how long copying memory takes (the
//! migration completes at the next pass after the target runs), post-copy, aborts,
//! migration policies, `evictionStrategy: LiveMigrate`, the LiveMigratable condition.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{KUBEVIRT_LABEL, MANAGER, VM_NAME_LABEL, VMI_STORAGE, launcher_pod};
use crate::api::{DeleteOptions, State, Subresource, WriteOptions};
use crate::controller::record_event;
use crate::object;

pub const VMIM_STORAGE: &str = "virtualmachineinstancemigrations.kubevirt.io";
/// The label of a migration's target launcher pod: the migration's uid.
pub const MIGRATION_JOB_LABEL: &str = "kubevirt.io/migrationJobUID";
/// The CRD the embedded cluster serves for `VirtualMachineInstanceMigration` (upstream has
/// no static one; see the file's header).
pub const MIGRATION_CRD: &str = include_str!("migration-crd.yaml");

fn finished(migration: &Value) -> bool {
    matches!(
        object::get_str(migration, &["status", "phase"]),
        Some("Succeeded" | "Failed")
    )
}

/// Whether `pod` is the target pod of an unfinished migration (so not yet the VMI's).
pub(super) fn is_migration_target(pod: &Value) -> bool {
    object::labels(pod).contains_key(MIGRATION_JOB_LABEL)
}

/// The target launcher pod of `migration` for `vmi`: the VMI's own launcher pod, named
/// after the migration, on a node `addedNodeSelector` selects.
pub fn target_pod(vmi: &Value, migration: &Value) -> Value {
    let mut pod = launcher_pod(vmi);
    let digest = Sha256::digest(object::uid(migration).as_bytes());
    let suffix: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    object::set_meta(
        &mut pod,
        "name",
        json!(format!(
            "virt-launcher-{}-{}",
            object::name(vmi),
            &suffix[..5]
        )),
    );
    object::set_path(
        &mut pod,
        &["metadata", "labels", MIGRATION_JOB_LABEL],
        json!(object::uid(migration)),
    );
    let added = object::string_map(object::get_path(migration, &["spec", "addedNodeSelector"]));
    for (k, v) in added {
        object::set_path(&mut pod, &["spec", "nodeSelector", &k], json!(v));
    }
    // The VMI's own placement (its nodeSelector, affinity, tolerations) still holds: the
    // selector narrows it, as upstream adds it to the target pod's.
    pod
}

/// Whether a node's labels satisfy a node selector.
fn selects(selector: &BTreeMap<String, String>, node: &Value) -> bool {
    let labels = object::labels(node);
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// One pass over the migrations (see the module's documentation).
pub(super) fn reconcile(st: &mut State) {
    let (Some(def), Some(vmi_def), Some(pod_def)) = (
        st.registry.by_storage(VMIM_STORAGE),
        st.registry.by_storage(VMI_STORAGE),
        st.registry.find("", "v1", "pods"),
    ) else {
        return;
    };
    let manager = WriteOptions::manager(MANAGER);
    let migrations: Vec<Arc<Value>> = st
        .store
        .range(VMIM_STORAGE, None, None)
        .map(|v| v.value_arc())
        .filter(|m| !finished(m) && object::deletion_timestamp(m).is_none())
        .collect();
    for migration in &migrations {
        let ns = object::namespace(migration).to_string();
        let name = object::name(migration).to_string();
        let uid = object::uid(migration).to_string();
        let vmi_name = object::get_str(migration, &["spec", "vmiName"])
            .unwrap_or_default()
            .to_string();
        let now = st.now();
        let mut status = migration
            .get("status")
            .filter(|s| s.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        let pods: Vec<Arc<Value>> = st
            .store
            .range("pods", Some(&ns), None)
            .map(|p| p.value_arc())
            .filter(|p| {
                let labels = object::labels(p);
                labels.get(KUBEVIRT_LABEL).map(String::as_str) == Some("virt-launcher")
                    && labels.get(VM_NAME_LABEL) == Some(&vmi_name)
            })
            .collect();
        let target = pods
            .iter()
            .find(|p| object::labels(p).get(MIGRATION_JOB_LABEL) == Some(&uid))
            .cloned();
        let vmi = st.store.get(VMI_STORAGE, &(ns.clone(), vmi_name.clone()));
        let source_node = vmi
            .as_ref()
            .and_then(|v| object::get_str(v, &["status", "nodeName"]))
            .unwrap_or_default()
            .to_string();
        let source = pods
            .iter()
            .find(|p| {
                !is_migration_target(p)
                    && object::get_str(p, &["spec", "nodeName"]) == Some(source_node.as_str())
                    && object::deletion_timestamp(p).is_none()
            })
            .or_else(|| {
                pods.iter().find(|p| {
                    object::get_str(p, &["spec", "nodeName"]) == Some(source_node.as_str())
                        && object::labels(p).get(MIGRATION_JOB_LABEL) != Some(&uid)
                })
            })
            .cloned();
        let failure = |why: String| -> Option<String> { Some(why) };
        let mut failed: Option<String> = None;
        let mut vmi_update: Option<Value> = None;
        let mut delete_pods: Vec<String> = Vec::new();
        match (&vmi, &target) {
            (None, _) => failed = failure(format!("VMI {ns}/{vmi_name} does not exist")),
            (Some(v), None) => {
                let running = object::get_str(v, &["status", "phase"]) == Some("Running");
                let added =
                    object::string_map(object::get_path(migration, &["spec", "addedNodeSelector"]));
                let mut selector =
                    object::string_map(object::get_path(v, &["spec", "nodeSelector"]));
                let conflict: Vec<String> = added
                    .iter()
                    .filter(|(k, val)| selector.get(*k).is_some_and(|own| own != *val))
                    .map(|(k, _)| k.clone())
                    .collect();
                selector.extend(added.clone());
                let candidates: Vec<String> = st
                    .store
                    .range("nodes", None, None)
                    .map(|n| n.value_arc())
                    .filter(|n| selects(&selector, n))
                    .map(|n| object::name(&n).to_string())
                    .filter(|n| *n != source_node)
                    .collect();
                if !running || source.is_none() {
                    failed = failure(format!("VMI {ns}/{vmi_name} is not running"));
                } else if !conflict.is_empty() {
                    // Added to the VMI's own selector, never replacing it.
                    failed = failure(format!(
                        "addedNodeSelector {} conflicts with the VMI's nodeSelector",
                        conflict.join(", ")
                    ));
                } else if candidates.is_empty() {
                    failed = failure(format!(
                        "no node but the source node {source_node} matches addedNodeSelector {}",
                        json!(added)
                    ));
                } else {
                    let pod = target_pod(v, migration);
                    let target_name = object::name(&pod).to_string();
                    match st.create(&pod_def, Some(&ns), pod, &manager) {
                        Ok(_) => {
                            status["phase"] = json!("Scheduling");
                            status["migrationState"] = json!({
                                "sourceNode": source_node,
                                "sourcePod": source.as_ref().map(|p| object::name(p)).unwrap_or_default(),
                                "targetPod": target_name,
                                "migrationUid": uid,
                                "mode": "PreCopy",
                            });
                        }
                        Err(e) => {
                            failed =
                                failure(format!("the target pod cannot be created: {}", e.message))
                        }
                    }
                }
            }
            (Some(v), Some(t)) => {
                let node = object::get_str(t, &["spec", "nodeName"]).unwrap_or_default();
                let phase = object::get_str(t, &["status", "phase"]).unwrap_or("Pending");
                let unschedulable = object::get_path(t, &["status", "conditions"])
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|c| {
                        c.get("type") == Some(&json!("PodScheduled"))
                            && c.get("reason") == Some(&json!("Unschedulable"))
                    })
                    .map(|c| {
                        c.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    });
                let current = object::get_str(migration, &["status", "phase"]);
                if let Some(why) = unschedulable {
                    failed = failure(format!("the target pod cannot be scheduled: {why}"));
                    delete_pods.push(object::name(t).to_string());
                } else if matches!(phase, "Failed" | "Succeeded")
                    || object::deletion_timestamp(t).is_some()
                {
                    failed = failure(format!("the target pod {} ended", object::name(t)));
                    delete_pods.push(object::name(t).to_string());
                } else if source.is_none() && current != Some("Running") {
                    failed = failure(format!(
                        "VMI {ns}/{vmi_name} stopped running on {source_node}"
                    ));
                    delete_pods.push(object::name(t).to_string());
                } else if node.is_empty() {
                    status["phase"] = json!("Scheduling");
                } else if phase != "Running" {
                    status["phase"] = json!("Scheduled");
                    status["migrationState"]["targetNode"] = json!(node);
                } else if current != Some("Running") {
                    // The target runs: the guest's memory is copied, the source still
                    // runs it.
                    status["phase"] = json!("Running");
                    status["migrationState"]["targetNode"] = json!(node);
                    status["migrationState"]["startTimestamp"] = json!(now);
                    let mut new = (**v).clone();
                    new["status"]["migrationState"] = status["migrationState"].clone();
                    vmi_update = Some(new);
                } else {
                    // Copied: the VMI runs on the target, the source pod goes.
                    status["phase"] = json!("Succeeded");
                    status["migrationState"]["endTimestamp"] = json!(now);
                    status["migrationState"]["completed"] = json!(true);
                    let mut new = (**v).clone();
                    new["status"]["nodeName"] = json!(node);
                    new["status"]["migrationState"] = status["migrationState"].clone();
                    vmi_update = Some(new);
                    if let Some(s) = &source {
                        delete_pods.push(object::name(s).to_string());
                    }
                }
            }
        }
        if let Some(why) = &failed {
            status["phase"] = json!("Failed");
            status["migrationState"]["failed"] = json!(true);
            status["migrationState"]["failureReason"] = json!(why);
            status["migrationState"]["endTimestamp"] = json!(now);
            status["conditions"] = json!([{"type": "Failed", "status": "True",
                "reason": "MigrationFailed", "message": why}]);
            if let Some(v) = &vmi {
                let mut new = (**v).clone();
                new["status"]["migrationState"] = status["migrationState"].clone();
                vmi_update = Some(new);
            }
        }
        if let Some(new) = vmi_update {
            let _ = st.update(
                &vmi_def,
                Some(&ns),
                &vmi_name,
                new,
                Subresource::Main,
                &manager,
            );
        }
        for pod in delete_pods {
            let _ = st.delete(&pod_def, Some(&ns), &pod, &DeleteOptions::default());
        }
        if migration.get("status") != Some(&status) {
            let mut new = (**migration).clone();
            new["status"] = status.clone();
            let _ = st.update(&def, Some(&ns), &name, new, Subresource::Status, &manager);
            match status["phase"].as_str() {
                Some("Succeeded") => record_event(
                    st,
                    migration,
                    "Normal",
                    "SuccessfulMigration",
                    &format!(
                        "VMI {vmi_name} migrated from {source_node} to {}",
                        status["migrationState"]["targetNode"]
                            .as_str()
                            .unwrap_or_default()
                    ),
                    MANAGER,
                ),
                Some("Failed") => record_event(
                    st,
                    migration,
                    "Warning",
                    "FailedMigration",
                    failed.as_deref().unwrap_or("failed"),
                    MANAGER,
                ),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_pod_is_the_vmis_launcher_pod_narrowed_to_the_selected_node() {
        let vmi = json!({
            "metadata": {"name": "fw-0", "namespace": "upf", "uid": "u-1",
                         "labels": {"network.edgeplane.io/network-function": "fw"}},
            "spec": {"domain": {"resources": {"requests": {"cpu": "2", "memory": "2Gi"}}},
                     "nodeSelector": {"edge": "true"}},
        });
        let migration = json!({"metadata": {"name": "fw-0-edgeplane-x", "namespace": "upf", "uid": "m-1"},
            "spec": {"vmiName": "fw-0", "addedNodeSelector": {"kubernetes.io/hostname": "c1"}}});
        let pod = target_pod(&vmi, &migration);
        // Named after the migration, not the source pod's name (derived from the VMI's uid).
        assert!(object::name(&pod).starts_with("virt-launcher-fw-0-"));
        assert_ne!(object::name(&pod), object::name(&launcher_pod(&vmi)));
        let labels = object::labels(&pod);
        assert_eq!(labels[MIGRATION_JOB_LABEL], "m-1");
        assert_eq!(labels["vm.kubevirt.io/name"], "fw-0");
        assert_eq!(labels["network.edgeplane.io/network-function"], "fw");
        assert!(is_migration_target(&pod));
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"edge": "true", "kubernetes.io/hostname": "c1"})
        );
    }
}
