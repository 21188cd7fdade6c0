//! The NetworkAttachmentDefinition of each link of a lane, and which CNI plugin it uses.

use std::collections::BTreeMap;

use edgeplane_api::names::NETWORK_API_VERSION;
use edgeplane_api::{Colocate, LinkType, ServiceChain};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{CHAIN_LABEL, LANE_LABEL, link_network};
use crate::multus::{NadSpec, NetworkAttachmentDefinition};

/// The CNI version of the configurations edgeplane writes.
pub const CNI_VERSION: &str = "0.3.1";

/// The plugin of a link between hops on `from` and `to` (`None`: not placed yet).
/// `auto` bridges when both ends share a node and uses macvlan otherwise; before both are
/// placed it follows `colocate` (`Required`: they will share a node).
pub fn link_cni(
    type_: LinkType,
    colocate: Colocate,
    from: Option<&str>,
    to: Option<&str>,
) -> &'static str {
    match type_ {
        LinkType::Bridge => "bridge",
        LinkType::Macvlan => "macvlan",
        LinkType::Sriov => "sriov",
        LinkType::Auto => match (from, to) {
            (Some(a), Some(b)) if a == b => "bridge",
            (Some(_), Some(_)) => "macvlan",
            _ if colocate == Colocate::Required => "bridge",
            _ => "macvlan",
        },
    }
}

/// The CNI configuration of a link: layer 2 only (no IPAM), since the hops of a chain
/// forward frames between their interfaces and address nothing on them. A bridge's Linux
/// name (at most 15 characters) comes from a hash of the network's name, so links never
/// share a bridge.
pub fn cni_config(network: &str, cni: &str) -> String {
    let config = match cni {
        "bridge" => {
            let digest = Sha256::digest(network.as_bytes());
            let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            json!({"cniVersion": CNI_VERSION, "name": network, "type": "bridge",
                   "bridge": format!("sc{}", &hex[..12]), "ipam": {}})
        }
        "macvlan" => json!({"cniVersion": CNI_VERSION, "name": network, "type": "macvlan",
                            "mode": "bridge", "ipam": {}}),
        other => json!({"cniVersion": CNI_VERSION, "name": network, "type": other, "ipam": {}}),
    };
    config.to_string()
}

/// The NAD of the link from hop `from` to hop `to` of lane `lane`, owned by the chain.
pub fn nad_object(
    chain: &ServiceChain,
    lane: usize,
    from: &str,
    to: &str,
    cni: &str,
) -> NetworkAttachmentDefinition {
    let name = chain.metadata.name.clone().unwrap_or_default();
    let network = link_network(&name, lane, from, to);
    NetworkAttachmentDefinition {
        metadata: ObjectMeta {
            name: Some(network.clone()),
            namespace: chain.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (CHAIN_LABEL.to_string(), name.clone()),
                (LANE_LABEL.to_string(), lane.to_string()),
            ])),
            owner_references: owner(chain).map(|o| vec![o]),
            annotations: chain
                .spec
                .network
                .as_ref()
                .and_then(|n| n.resource_name.clone())
                .filter(|_| cni == "sriov")
                .map(|r| {
                    BTreeMap::from([(crate::multus::RESOURCE_NAME_ANNOTATION.to_string(), r)])
                }),
            ..ObjectMeta::default()
        },
        spec: NadSpec {
            config: Some(cni_config(&network, cni)),
        },
        ..NetworkAttachmentDefinition::default()
    }
}

/// The owner reference to a chain (none before it has a uid: offline rendering).
pub fn owner(chain: &ServiceChain) -> Option<OwnerReference> {
    chain.metadata.uid.as_ref().map(|uid| OwnerReference {
        api_version: NETWORK_API_VERSION.into(),
        kind: "ServiceChain".into(),
        name: chain.metadata.name.clone().unwrap_or_default(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}
