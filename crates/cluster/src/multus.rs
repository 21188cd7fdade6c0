//! A Multus stand-in, called by the simulated kubelet when it starts a pod: the networks
//! of the pod's `k8s.v1.cni.cncf.io/networks` annotation must exist as
//! NetworkAttachmentDefinitions, or the pod stays ContainerCreating with the Event the
//! kubelet publishes for Multus' error (retried at each start attempt, as the kubelet
//! retries the sandbox); once they exist the pod gets `k8s.v1.cni.cncf.io/network-status`
//! and an `AddedInterface` Event per interface.
//!
//! Not simulated: IPAM (secondary interfaces get no address: edgeplane's links are layer 2),
//! the CNI configuration's content (it is not parsed), `default-route`, device info of
//! SR-IOV, and the cluster's default network being anything but the pod IP.

use edgeplane_core::multus::{
    NETWORKS_ANNOTATION, NetworkSelection, NetworkStatus, parse_selections,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::State;
use crate::object;

pub const NAD_STORAGE: &str = "network-attachment-definitions.k8s.cni.cncf.io";
/// The name Multus reports for the cluster's default network.
pub const DEFAULT_NETWORK: &str = "sim-pod-network";

/// What Multus does for a pod being started.
#[derive(Debug, Clone, PartialEq)]
pub enum Attach {
    /// The pod asks for no secondary network.
    Nothing,
    /// The sandbox cannot be created: the message of the kubelet's FailedCreatePodSandBox.
    Failed(String),
    /// Attached: the `network-status` text and one `AddedInterface` message per interface.
    Attached(String, Vec<String>),
}

/// Attaches the networks `pod` asks for, its default interface having `ip`.
pub fn attach(st: &State, pod: &Value, ip: &str) -> Attach {
    let Some(text) = object::annotations(pod).get(NETWORKS_ANNOTATION).cloned() else {
        return Attach::Nothing;
    };
    let namespace = object::namespace(pod);
    let name = object::name(pod);
    let prefix = format!(
        "Failed to create pod sandbox: plugin type=\"multus\" name=\"multus-cni-network\" failed (add): Multus: [{namespace}/{name}/{}]",
        object::uid(pod)
    );
    let selections: Vec<NetworkSelection> = match parse_selections(&text, namespace) {
        Ok(s) => s,
        Err(e) => {
            return Attach::Failed(format!(
                "{prefix}: error parsing the networks annotation: {e}"
            ));
        }
    };
    if selections.is_empty() {
        return Attach::Nothing;
    }
    for s in &selections {
        let ns = s.namespace.clone().unwrap_or_else(|| namespace.to_string());
        if st
            .store
            .get(NAD_STORAGE, &(ns.clone(), s.name.clone()))
            .is_none()
        {
            return Attach::Failed(format!(
                "{prefix}: error loading k8s delegates k8s args: TryLoadPodDelegates: error in getting k8s network for pod: GetNetworkDelegates: failed getting the delegate: getKubernetesDelegate: cannot find a network-attachment-definition ({}) in namespace ({ns}): network-attachment-definitions.k8s.cni.cncf.io \"{}\" not found",
                s.name, s.name
            ));
        }
    }
    let mut statuses = vec![NetworkStatus {
        name: DEFAULT_NETWORK.into(),
        interface: Some("eth0".into()),
        ips: vec![ip.to_string()],
        mac: Some(mac(object::uid(pod), "eth0")),
        default: true,
    }];
    let mut events = Vec::new();
    for (k, s) in selections.iter().enumerate() {
        let ns = s.namespace.clone().unwrap_or_else(|| namespace.to_string());
        let ifname = s
            .interface
            .clone()
            .unwrap_or_else(|| format!("net{}", k + 1));
        events.push(format!("Add {ifname} [] from {ns}/{}", s.name));
        statuses.push(NetworkStatus {
            name: format!("{ns}/{}", s.name),
            interface: Some(ifname.clone()),
            ips: Vec::new(),
            mac: Some(mac(object::uid(pod), &ifname)),
            default: false,
        });
    }
    match serde_json::to_string(&statuses) {
        Ok(text) => Attach::Attached(text, events),
        Err(e) => Attach::Failed(format!("{prefix}: {e}")),
    }
}

/// A locally administered MAC address, stable for a pod's interface.
fn mac(uid: &str, interface: &str) -> String {
    let digest = Sha256::digest(format!("{uid}/{interface}").as_bytes());
    let bytes: Vec<String> = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("02:{}", bytes.join(":"))
}
