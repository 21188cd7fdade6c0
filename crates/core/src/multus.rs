//! The part of Multus edgeplane writes and reads: NetworkAttachmentDefinitions, the pod
//! annotation that asks for secondary interfaces, and the one Multus writes back.
//!
//! Upstream schema: /work/shared/crds/multus (the whole spec is one CNI JSON string).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// `k8s.cni.cncf.io/v1`
pub const NAD_API_VERSION: &str = "k8s.cni.cncf.io/v1";
pub const NAD_KIND: &str = "NetworkAttachmentDefinition";
/// The pod annotation naming the networks a pod attaches to.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// On a NAD: the device plugin resource its interfaces come from (SR-IOV).
pub const RESOURCE_NAME_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";
/// The pod annotation where Multus reports the attached interfaces.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// A NetworkAttachmentDefinition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttachmentDefinition {
    #[serde(default = "nad_api_version")]
    pub api_version: String,
    #[serde(default = "nad_kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NadSpec,
}

impl Default for NetworkAttachmentDefinition {
    fn default() -> Self {
        NetworkAttachmentDefinition {
            api_version: nad_api_version(),
            kind: nad_kind(),
            metadata: ObjectMeta::default(),
            spec: NadSpec::default(),
        }
    }
}

fn nad_api_version() -> String {
    NAD_API_VERSION.into()
}

fn nad_kind() -> String {
    NAD_KIND.into()
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NadSpec {
    /// The CNI configuration, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// One entry of the `networks` annotation in its JSON form.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSelection {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// One entry of the `network-status` annotation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// `namespace/name` for secondary networks; the default network's name otherwise.
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
}

/// Parses the networks a pod asks for: the JSON array form or the comma list of
/// `[namespace/]name[@interface]`. Names without a namespace are in `namespace`.
pub fn parse_selections(text: &str, namespace: &str) -> Result<Vec<NetworkSelection>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut selections = if text.starts_with('[') {
        serde_json::from_str::<Vec<NetworkSelection>>(text)
            .map_err(|e| format!("{NETWORKS_ANNOTATION} is not a JSON list of networks: {e}"))?
    } else {
        text.split(',')
            .map(|item| {
                let item = item.trim();
                let (path, interface) = match item.split_once('@') {
                    Some((p, i)) => (p, Some(i.to_string())),
                    None => (item, None),
                };
                let (ns, name) = match path.split_once('/') {
                    Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
                    None => (None, path.to_string()),
                };
                NetworkSelection {
                    name,
                    namespace: ns,
                    interface,
                }
            })
            .collect()
    };
    for (i, s) in selections.iter_mut().enumerate() {
        if s.name.is_empty() {
            return Err(format!("{NETWORKS_ANNOTATION}: network {i} has no name"));
        }
        if s.namespace.as_deref().is_none_or(str::is_empty) {
            s.namespace = Some(namespace.to_string());
        }
    }
    Ok(selections)
}

/// What Multus reported on a pod; empty when the annotation is absent. A malformed
/// annotation reads as nothing attached (Multus writes it, not users).
pub fn network_status(pod: &Pod) -> Vec<NetworkStatus> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NETWORK_STATUS_ANNOTATION))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// `namespace/name` of a network reference, `name` alone meaning `namespace`.
pub fn qualified(reference: &str, namespace: &str) -> String {
    if reference.contains('/') {
        reference.to_string()
    } else {
        format!("{namespace}/{reference}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_read_both_forms() {
        assert_eq!(
            parse_selections("a, other/b@net5", "ns"),
            Ok(vec![
                NetworkSelection {
                    name: "a".into(),
                    namespace: Some("ns".into()),
                    interface: None
                },
                NetworkSelection {
                    name: "b".into(),
                    namespace: Some("other".into()),
                    interface: Some("net5".into())
                },
            ])
        );
        assert_eq!(
            parse_selections(r#"[{"name":"a","interface":"net1"}]"#, "ns"),
            Ok(vec![NetworkSelection {
                name: "a".into(),
                namespace: Some("ns".into()),
                interface: Some("net1".into())
            }])
        );
        assert!(parse_selections("[{]", "ns").is_err());
        assert!(parse_selections("a,,b", "ns").is_err());
        assert_eq!(qualified("x", "ns"), "ns/x");
        assert_eq!(qualified("o/x", "ns"), "o/x");
    }
}
