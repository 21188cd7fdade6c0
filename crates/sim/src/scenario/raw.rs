//! The scenario file as written, before validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawScenario {
    pub(super) api_version: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) metadata: Option<RawMeta>,
    pub(super) spec: Option<RawSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeta {
    pub(super) name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // accepted for tooling, not used
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSpec {
    #[serde(default)]
    pub(super) description: Option<String>,
    pub(super) duration: Option<Value>,
    #[serde(default)]
    pub(super) settings: Option<RawSettings>,
    #[serde(default)]
    pub(super) include: Vec<String>,
    #[serde(default)]
    pub(super) resources: Vec<Value>,
    #[serde(default)]
    pub(super) events: Vec<RawEvent>,
    #[serde(default)]
    pub(super) expect: Option<super::expect::RawExpect>,
    /// Member clusters: the scenario is then a hub with members (docs/simulator.md).
    pub(super) clusters: Option<Vec<RawCluster>>,
    /// MecApplications, applied to the hub.
    #[serde(default)]
    pub(super) applications: Vec<Value>,
    pub(super) hub: Option<RawHub>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawCluster {
    pub(super) name: Option<String>,
    pub(super) site: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    pub(super) karmada_cluster: Option<String>,
    /// The member's own objects (its Nodes first of all), as a single-cluster scenario
    /// gives them.
    #[serde(default)]
    pub(super) include: Vec<String>,
    #[serde(default)]
    pub(super) resources: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawHub {
    pub(super) mode: Option<String>,
    pub(super) interval: Option<Value>,
    pub(super) grace: Option<Value>,
    pub(super) probe_timeout: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSettings {
    pub(super) quiet_period: Option<Value>,
    pub(super) max_wait: Option<Value>,
    pub(super) pod_startup: Option<Value>,
    pub(super) period: Option<Value>,
    pub(super) seed: Option<u64>,
    pub(super) node_monitor_grace_period: Option<Value>,
    pub(super) default_toleration_seconds: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawEvent {
    pub(super) at: Option<Value>,
    pub(super) note: Option<String>,
    pub(super) apply: Option<Vec<Value>>,
    pub(super) delete: Option<Vec<RawRef>>,
    pub(super) set_link: Option<RawLink>,
    pub(super) fail_node: Option<String>,
    pub(super) recover_node: Option<String>,
    pub(super) scale: Option<RawScale>,
    pub(super) fail_cluster: Option<String>,
    pub(super) recover_cluster: Option<String>,
    /// With spec.clusters: the member a failNode or recoverNode is addressed to.
    pub(super) cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRef {
    pub(super) api_version: Option<String>,
    pub(super) kind: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawLink {
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    pub(super) latency: Option<Value>,
    pub(super) jitter: Option<Value>,
    pub(super) bandwidth: Option<Value>,
    pub(super) loss: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawScale {
    pub(super) kind: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) replicas: Option<i64>,
}
