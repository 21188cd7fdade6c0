//! A NetworkFunction's status from what runs: pods and Multus' `network-status`, or
//! VirtualMachines, their VMIs and the VMIs' interfaces.

use edgeplane_api::{InterfaceStatus, NetworkFunction, NetworkFunctionStatus, ReplicaStatus};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::{FieldError, Port, describe};
use crate::multus::{network_status, qualified};
use crate::status::condition;

pub const CONDITION_SCHEDULED: &str = "Scheduled";
pub const CONDITION_INTERFACES_READY: &str = "InterfacesReady";
pub const CONDITION_READY: &str = "Ready";

/// What was seen of one replica.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedReplica {
    pub name: String,
    pub node: Option<String>,
    pub phase: Option<String>,
    /// The pod or the VMI is Running.
    pub running: bool,
    /// The pod or the VMI ended or cannot run (`Failed`, `Unknown`).
    pub failed: bool,
    /// The interfaces that are attached, in the order of the spec's then the ports'.
    pub interfaces: Vec<InterfaceStatus>,
    /// How many interfaces the replica should have.
    pub expected_interfaces: usize,
}

impl ObservedReplica {
    pub fn ready(&self) -> bool {
        self.running && self.interfaces.len() == self.expected_interfaces
    }
}

/// The interfaces a replica should have: (name, `namespace/network`), the spec's then the
/// ports'.
pub fn expected_interfaces(nf: &NetworkFunction, ports: &[Port]) -> Vec<(String, String)> {
    let namespace = nf.metadata.namespace.as_deref().unwrap_or("default");
    nf.spec
        .interfaces
        .iter()
        .map(|i| (i.name.clone(), qualified(&i.network, namespace)))
        .chain(ports.iter().map(|p| (p.name.clone(), p.network.clone())))
        .collect()
}

/// A Container replica from its pod: the k-th expected interface is Multus' `net<k+1>`
/// (the rendered annotation names them so).
pub fn observe_pod(pod: &Pod, expected: &[(String, String)]) -> ObservedReplica {
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
    let gated = pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty());
    let reported = network_status(pod);
    let interfaces = expected
        .iter()
        .enumerate()
        .filter_map(|(k, (name, network))| {
            let ifname = format!("net{}", k + 1);
            reported
                .iter()
                .find(|s| s.interface.as_deref() == Some(ifname.as_str()) && &s.name == network)
                .map(|s| InterfaceStatus {
                    name: name.clone(),
                    network: Some(network.clone()),
                    ips: s.ips.clone(),
                    mac: s.mac.clone(),
                })
        })
        .collect();
    ObservedReplica {
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        phase: if gated {
            Some("Gated".into())
        } else {
            phase.clone()
        },
        running: phase.as_deref() == Some("Running"),
        failed: matches!(phase.as_deref(), Some("Failed" | "Unknown")),
        interfaces,
        expected_interfaces: expected.len(),
    }
}

/// A VirtualMachine replica from the VM and its VMI (absent while halted): interfaces by
/// their name in `status.interfaces` of the VMI.
pub fn observe_vm(
    vm: &Value,
    vmi: Option<&Value>,
    expected: &[(String, String)],
) -> ObservedReplica {
    let name = vm["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(vmi) = vmi else {
        let halted = vm["spec"]["runStrategy"].as_str() == Some("Halted");
        return ObservedReplica {
            name,
            phase: Some(if halted { "Halted" } else { "Starting" }.into()),
            expected_interfaces: expected.len(),
            ..ObservedReplica::default()
        };
    };
    let status = &vmi["status"];
    let phase = status["phase"].as_str().map(str::to_string);
    let reported = status["interfaces"].as_array().cloned().unwrap_or_default();
    let interfaces = expected
        .iter()
        .filter_map(|(iface, network)| {
            let r = reported
                .iter()
                .find(|r| r["name"].as_str() == Some(iface))?;
            let mut ips: Vec<String> = r["ipAddresses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if ips.is_empty()
                && let Some(ip) = r["ipAddress"].as_str()
            {
                ips.push(ip.to_string());
            }
            Some(InterfaceStatus {
                name: iface.clone(),
                network: Some(network.clone()),
                ips,
                mac: r["mac"].as_str().map(str::to_string),
            })
        })
        .collect();
    ObservedReplica {
        name,
        node: status["nodeName"].as_str().map(str::to_string),
        running: phase.as_deref() == Some("Running"),
        failed: matches!(phase.as_deref(), Some("Failed" | "Unknown")),
        phase,
        interfaces,
        expected_interfaces: expected.len(),
    }
}

/// The status of `nf`: `errors` from [`super::check`] (the NF renders nothing then),
/// `observed[i]` what runs of replica i (`None`: nothing yet).
pub fn nf_status(
    nf: &NetworkFunction,
    previous: Option<&NetworkFunctionStatus>,
    observed: &[Option<ObservedReplica>],
    errors: &[FieldError],
    now: Timestamp,
) -> NetworkFunctionStatus {
    let generation = nf.metadata.generation;
    let before = previous
        .map(|p| p.conditions.as_slice())
        .unwrap_or_default();
    let cond = |type_: &str, ok: bool, reason: &str, message: &str| {
        condition(
            before,
            type_,
            if ok { "True" } else { "False" },
            reason,
            message,
            now,
            generation,
        )
    };
    if !errors.is_empty() {
        let message = describe(errors);
        return NetworkFunctionStatus {
            phase: Some("Invalid".into()),
            ready_replicas: Some(0),
            nodes: None,
            reason: Some(errors[0].to_string()),
            replicas: Vec::new(),
            observed_generation: generation,
            conditions: vec![
                cond(CONDITION_SCHEDULED, false, "Invalid", &message),
                cond(CONDITION_INTERFACES_READY, false, "Invalid", &message),
                cond(CONDITION_READY, false, "Invalid", &message),
            ],
        };
    }
    let wanted = usize::try_from(nf.spec.replicas).unwrap_or(0);
    let name = nf.metadata.name.as_deref().unwrap_or_default();
    let replicas: Vec<ReplicaStatus> = (0..wanted)
        .map(|i| match observed.get(i).and_then(Option::as_ref) {
            Some(o) => ReplicaStatus {
                name: o.name.clone(),
                node: o.node.clone(),
                phase: o.phase.clone(),
                interfaces: o.interfaces.clone(),
            },
            None => ReplicaStatus {
                name: super::replica_name(name, i),
                ..ReplicaStatus::default()
            },
        })
        .collect();
    let seen = |i: usize| observed.get(i).and_then(Option::as_ref);
    let unplaced: Vec<String> = (0..wanted)
        .filter(|&i| seen(i).is_none_or(|o| o.node.is_none()))
        .map(|i| replicas[i].name.clone())
        .collect();
    let detached: Vec<String> = (0..wanted)
        .filter(|&i| seen(i).is_none_or(|o| o.interfaces.len() < o.expected_interfaces))
        .map(|i| replicas[i].name.clone())
        .collect();
    let ready = (0..wanted)
        .filter(|&i| seen(i).is_some_and(ObservedReplica::ready))
        .count();
    let failed = (0..wanted).any(|i| seen(i).is_some_and(|o| o.failed));
    let running = (0..wanted).all(|i| seen(i).is_some_and(|o| o.running));
    let (phase, reason) = if ready == wanted {
        ("Ready", None)
    } else if failed {
        (
            "Degraded",
            Some(format!("{} of {wanted} replicas ready", ready)),
        )
    } else if running {
        (
            "Running",
            Some(format!("interfaces not attached: {}", detached.join(", "))),
        )
    } else if !unplaced.is_empty() {
        (
            "Pending",
            Some(format!("not placed: {}", unplaced.join(", "))),
        )
    } else {
        (
            "Pending",
            Some(format!("{ready} of {wanted} replicas ready")),
        )
    };
    let list = |names: &[String]| names.join(", ");
    let nodes = replicas
        .iter()
        .map(|r| r.node.as_deref().unwrap_or("-"))
        .collect::<Vec<_>>()
        .join(",");
    NetworkFunctionStatus {
        phase: Some(phase.into()),
        ready_replicas: Some(i32::try_from(ready).unwrap_or(i32::MAX)),
        nodes: (!nodes.is_empty()).then_some(nodes),
        reason,
        replicas,
        observed_generation: generation,
        conditions: vec![
            if unplaced.is_empty() {
                cond(
                    CONDITION_SCHEDULED,
                    true,
                    "Placed",
                    "every replica has a node",
                )
            } else {
                cond(
                    CONDITION_SCHEDULED,
                    false,
                    "NotPlaced",
                    &format!("not placed: {}", list(&unplaced)),
                )
            },
            if detached.is_empty() {
                cond(
                    CONDITION_INTERFACES_READY,
                    true,
                    "Attached",
                    "every interface is attached",
                )
            } else {
                cond(
                    CONDITION_INTERFACES_READY,
                    false,
                    "NotAttached",
                    &format!("interfaces not attached on: {}", list(&detached)),
                )
            },
            cond(
                CONDITION_READY,
                ready == wanted,
                if ready == wanted { "Ready" } else { phase },
                &format!("{ready} of {wanted} replicas ready"),
            ),
        ],
    }
}

/// Whether a VM replica may start: its NF is valid (the caller renders nothing otherwise)
/// and the networks of its interfaces exist, so its launcher pod does not hang in
/// ContainerCreating waiting for a NetworkAttachmentDefinition.
pub fn may_start(expected: &[(String, String)], network_exists: &dyn Fn(&str) -> bool) -> bool {
    expected.iter().all(|(_, n)| network_exists(n))
}
