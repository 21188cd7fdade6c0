//! A member cluster's health and capacity as the hub observes it through the member's own
//! API server (the kubeconfig in `spec.kubeconfigSecretRef`): the `Ready` condition from
//! reachability and ready nodes, the capacity from the nodes' allocatable and the
//! requests of the pods bound to them. A member that cannot be reached is NotReady with
//! the error; a kubeconfig Secret that is missing or malformed is NotReady with a message
//! naming the Secret. The condition's `lastTransitionTime` says since when, which the
//! closed loop ([`super::closed_loop`]) compares with a failover toleration.

use std::collections::BTreeMap;

use edgeplane_api::multicluster::{ClusterCapacity, MemberClusterStatus, SecretRef};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};

use crate::placement::{ResourceList, effective_node_allocatable, effective_pod_requests};
use crate::quantity::format_milli;
use crate::status::condition;

/// The condition that says whether the hub reaches the member and it has a ready node.
pub const CONDITION_READY: &str = "Ready";
/// The key of the kubeconfig in the Secret (Karmada's and Cluster API's name for it).
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// What probing a member found.
#[derive(Clone, Debug)]
pub enum Probe {
    /// The member answered with its nodes and pods.
    Reached { nodes: Vec<Node>, pods: Vec<Pod> },
    /// The member's API server did not answer (the error).
    Unreachable(String),
    /// The kubeconfig Secret is missing or malformed (the message names it).
    Kubeconfig(String),
    /// Karmada's `Cluster` (`cluster.karmada.io/v1alpha1`) for the member, as JSON, in the
    /// Karmada modes when the member has no kubeconfig Secret; `None`: Karmada has no
    /// Cluster of that name (the name in the message).
    KarmadaCluster(Option<serde_json::Value>, String),
}

/// The member's status after a probe: capacity from what it answered (the previous one
/// kept when it did not), and `Ready`.
pub fn member_status(
    previous: &MemberClusterStatus,
    probe: &Probe,
    now: Timestamp,
    generation: Option<i64>,
) -> MemberClusterStatus {
    let (capacity, status, reason, message) = match probe {
        Probe::Reached { nodes, pods } => {
            let ready = nodes.iter().filter(|n| node_ready(n)).count();
            let (status, reason) = if ready > 0 {
                ("True", "Reachable")
            } else {
                ("False", "NoReadyNode")
            };
            (
                Some(capacity(nodes, pods)),
                status,
                reason,
                format!("{ready} of {} nodes ready", nodes.len()),
            )
        }
        Probe::Unreachable(error) => (
            previous.capacity.clone(),
            "False",
            "Unreachable",
            error.clone(),
        ),
        Probe::Kubeconfig(error) => (
            previous.capacity.clone(),
            "False",
            "KubeconfigInvalid",
            error.clone(),
        ),
        Probe::KarmadaCluster(None, name) => (
            previous.capacity.clone(),
            "False",
            "KarmadaClusterMissing",
            format!("Karmada has no Cluster {name:?} (spec.karmadaCluster)"),
        ),
        Probe::KarmadaCluster(Some(cluster), _) => {
            let (ready, message) = karmada_ready(cluster);
            (
                Some(karmada_capacity(cluster)),
                if ready { "True" } else { "False" },
                if ready {
                    "KarmadaReady"
                } else {
                    "KarmadaNotReady"
                },
                message,
            )
        }
    };
    MemberClusterStatus {
        capacity,
        applied_kinds: previous.applied_kinds.clone(),
        conditions: vec![condition(
            &previous.conditions,
            CONDITION_READY,
            status,
            reason,
            &message,
            now,
            generation,
        )],
    }
}

/// Karmada's view of a cluster's health: its `Ready` condition and its message.
fn karmada_ready(cluster: &serde_json::Value) -> (bool, String) {
    let ready = cluster
        .pointer("/status/conditions")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(serde_json::Value::as_str) == Some("Ready"));
    match ready {
        Some(c) => {
            let text = |k: &str| {
                c.get(k)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
            };
            let message = format!("Karmada: {} {}", text("reason"), text("message"))
                .trim_end()
                .to_string();
            (text("status") == "True", message)
        }
        None => (false, "Karmada: no Ready condition yet".to_string()),
    }
}

/// Capacity from Karmada's `status.resourceSummary`: allocatable, and requested =
/// allocated + allocating (quantities it cannot read count as none).
fn karmada_capacity(cluster: &serde_json::Value) -> ClusterCapacity {
    let read = |parts: &[&str]| -> BTreeMap<String, String> {
        let mut list = ResourceList::new();
        for part in parts {
            let Some(amounts) = cluster
                .pointer(&format!("/status/resourceSummary/{part}"))
                .and_then(serde_json::Value::as_object)
            else {
                continue;
            };
            for (resource, amount) in amounts {
                let text = amount
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| amount.to_string());
                if let Some(milli) = crate::quantity::parse_milli(&text).filter(|m| *m >= 0) {
                    *list.entry(resource.clone()).or_default() += milli;
                }
            }
        }
        list.into_iter()
            .map(|(r, milli)| (r, format_milli(milli)))
            .collect()
    };
    ClusterCapacity {
        allocatable: read(&["allocatable"]),
        requested: read(&["allocated", "allocating"]),
    }
}

fn node_ready(node: &Node) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    !unschedulable
        && node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What the ready nodes offer and what the pods bound to them request (pods that ended
/// request nothing), as quantities.
pub fn capacity(nodes: &[Node], pods: &[Pod]) -> ClusterCapacity {
    let mut allocatable = ResourceList::new();
    let mut ready_nodes = std::collections::BTreeSet::new();
    for node in nodes.iter().filter(|n| node_ready(n)) {
        ready_nodes.insert(node.metadata.name.clone().unwrap_or_default());
        for (resource, milli) in effective_node_allocatable(node) {
            *allocatable.entry(resource).or_default() += milli;
        }
    }
    let mut requested = ResourceList::new();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed"))
            || !node.is_some_and(|n| ready_nodes.contains(n))
        {
            continue;
        }
        if let Some(spec) = &pod.spec {
            for (resource, milli) in effective_pod_requests(spec) {
                *requested.entry(resource).or_default() += milli;
            }
        }
    }
    let text = |list: ResourceList| -> BTreeMap<String, String> {
        list.into_iter()
            .map(|(r, milli)| (r, format_milli(milli)))
            .collect()
    };
    ClusterCapacity {
        allocatable: text(allocatable),
        requested: text(requested),
    }
}

/// The kubeconfig text in the Secret `reference` names, for `member`; the error names the
/// Secret and the member.
pub fn kubeconfig_of(
    member: &str,
    reference: &SecretRef,
    secret: Option<&Secret>,
) -> Result<String, String> {
    let named = format!(
        "Secret {}/{} (spec.kubeconfigSecretRef of MemberCluster {member})",
        reference.namespace, reference.name
    );
    let Some(secret) = secret else {
        return Err(format!("{named} not found"));
    };
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(KUBECONFIG_KEY)) else {
        return Err(format!("{named} has no data key {KUBECONFIG_KEY:?}"));
    };
    match std::str::from_utf8(&bytes.0) {
        Ok(text) if !text.trim().is_empty() => Ok(text.to_string()),
        Ok(_) => Err(format!("{named}: data[{KUBECONFIG_KEY:?}] is empty")),
        Err(_) => Err(format!("{named}: data[{KUBECONFIG_KEY:?}] is not UTF-8")),
    }
}

impl crate::status::OwnedStatus for MemberClusterStatus {
    type Object = edgeplane_api::multicluster::MemberCluster;
    const FIELD_MANAGER: &'static str = super::FIELD_MANAGER;
}

/// Since when the member has been NotReady (its Ready condition's transition time), or
/// `None` while it is Ready or was never probed.
pub fn not_ready_since(status: Option<&MemberClusterStatus>) -> Option<Timestamp> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY && c.status != "True")
        .map(|c| c.last_transition_time.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    #[test]
    fn a_member_known_to_karmada_only_takes_its_health_and_capacity_from_the_cluster() {
        let now = Timestamp::from_second(1000).unwrap_or_default();
        let cluster = json!({
            "apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "east"},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterReady", "message": "cluster is healthy and ready to accept workloads"}],
                "resourceSummary": {
                    "allocatable": {"cpu": "16", "memory": "64Gi"},
                    "allocated": {"cpu": "2500m", "memory": "4Gi"},
                    "allocating": {"cpu": "500m"}
                }
            }
        });
        let status = member_status(
            &MemberClusterStatus::default(),
            &Probe::KarmadaCluster(Some(cluster), "east".into()),
            now,
            Some(1),
        );
        let capacity = status.capacity.clone().unwrap_or_default();
        assert_eq!(capacity.allocatable["cpu"], "16");
        assert_eq!(capacity.requested["cpu"], "3");
        assert_eq!(capacity.requested["memory"], (4_i64 << 30).to_string());
        let c = &status.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (
                "True",
                "KarmadaReady",
                "Karmada: ClusterReady cluster is healthy and ready to accept workloads"
            )
        );
        // Karmada has no such Cluster: NotReady, the capacity it had kept.
        let gone = member_status(
            &status,
            &Probe::KarmadaCluster(None, "east".into()),
            now,
            Some(1),
        );
        assert_eq!(gone.capacity, status.capacity);
        let c = &gone.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            (
                "False",
                "KarmadaClusterMissing",
                "Karmada has no Cluster \"east\" (spec.karmadaCluster)"
            )
        );
    }

    fn node(name: &str, cpu: &str, ready: bool) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {
                "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn pod(node: &str, cpu: &str, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": phase}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn capacity_counts_ready_nodes_and_the_running_pods_on_them() {
        let nodes = [
            node("a", "4", true),
            node("b", "2", true),
            node("c", "8", false),
        ];
        let pods = [
            pod("a", "500m", "Running"),
            pod("b", "1", "Pending"),
            pod("a", "2", "Succeeded"),
            pod("c", "3", "Running"),
        ];
        let c = capacity(&nodes, &pods);
        assert_eq!(
            c.allocatable,
            BTreeMap::from([
                ("cpu".to_string(), "6".to_string()),
                ("memory".to_string(), (16u64 << 30).to_string()),
                ("pods".to_string(), "220".to_string()),
            ])
        );
        assert_eq!(
            c.requested,
            BTreeMap::from([
                ("cpu".to_string(), "1500m".to_string()),
                ("pods".to_string(), "2".to_string()),
            ])
        );
    }

    #[test]
    fn ready_follows_reachability_and_keeps_its_transition_time() {
        let t0 = Timestamp::UNIX_EPOCH;
        let t1 = Timestamp::from_second(30).unwrap_or(t0);
        let t2 = Timestamp::from_second(60).unwrap_or(t0);
        let reached = Probe::Reached {
            nodes: vec![node("a", "4", true)],
            pods: vec![],
        };
        let up = member_status(&MemberClusterStatus::default(), &reached, t0, Some(1));
        let ready = &up.conditions[0];
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            ("True", "Reachable", "1 of 1 nodes ready")
        );
        assert_eq!(not_ready_since(Some(&up)), None);
        let down = member_status(
            &up,
            &Probe::Unreachable("connection refused".into()),
            t1,
            Some(1),
        );
        assert_eq!(down.capacity, up.capacity, "the last capacity is kept");
        assert_eq!(
            (
                down.conditions[0].status.as_str(),
                down.conditions[0].reason.as_str()
            ),
            ("False", "Unreachable")
        );
        assert_eq!(not_ready_since(Some(&down)), Some(t1));
        // Still down later: the transition time stays at the first failure.
        let still = member_status(&down, &Probe::Unreachable("timeout".into()), t2, Some(1));
        assert_eq!(not_ready_since(Some(&still)), Some(t1));
        let none = member_status(
            &MemberClusterStatus::default(),
            &Probe::Reached {
                nodes: vec![node("a", "4", false)],
                pods: vec![],
            },
            t0,
            None,
        );
        assert_eq!(none.conditions[0].reason, "NoReadyNode");
    }

    #[test]
    fn a_missing_or_malformed_kubeconfig_secret_is_named() {
        let reference = SecretRef {
            namespace: "edgeplane-system".into(),
            name: "east".into(),
        };
        assert_eq!(
            kubeconfig_of("edge-east", &reference, None),
            Err("Secret edgeplane-system/east (spec.kubeconfigSecretRef of MemberCluster edge-east) not found".into())
        );
        let mut secret = Secret::default();
        assert_eq!(
            kubeconfig_of("edge-east", &reference, Some(&secret)),
            Err("Secret edgeplane-system/east (spec.kubeconfigSecretRef of MemberCluster edge-east) has no data key \"kubeconfig\"".into())
        );
        secret.data = Some(BTreeMap::from([(
            KUBECONFIG_KEY.to_string(),
            ByteString(vec![0xff, 0xfe]),
        )]));
        assert!(
            kubeconfig_of("edge-east", &reference, Some(&secret))
                .is_err_and(|e| e.ends_with("data[\"kubeconfig\"] is not UTF-8"))
        );
        secret.data = Some(BTreeMap::from([(
            KUBECONFIG_KEY.to_string(),
            ByteString(b"apiVersion: v1".to_vec()),
        )]));
        assert_eq!(
            kubeconfig_of("edge-east", &reference, Some(&secret)),
            Ok("apiVersion: v1".into())
        );
        let status = member_status(
            &MemberClusterStatus::default(),
            &Probe::Kubeconfig("Secret edgeplane-system/east ... not found".into()),
            Timestamp::UNIX_EPOCH,
            None,
        );
        assert_eq!(status.conditions[0].reason, "KubeconfigInvalid");
        assert!(
            status.conditions[0]
                .message
                .contains("edgeplane-system/east")
        );
    }
}
