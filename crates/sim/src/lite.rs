//! The few fields the simulator reads from stored objects, decoded straight from their JSON
//! text (skipping everything else), which is several times cheaper than building a
//! `serde_json::Value` for objects that change thousands of times in a large run.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub deletion_timestamp: Option<String>,
    pub owner_references: Vec<OwnerRef>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OwnerRef {
    pub uid: String,
    pub controller: Option<bool>,
}

impl Meta {
    /// The uid of the controller owner reference.
    pub fn controller(&self) -> Option<String> {
        self.owner_references
            .iter()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone())
    }

    pub fn deleting(&self) -> bool {
        self.deletion_timestamp.is_some()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pod {
    pub metadata: Meta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PodStatus {
    pub phase: String,
    pub reason: String,
    pub message: String,
}

/// A core/v1 Event (the shape events are stored in).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event {
    pub reason: String,
    pub message: String,
    pub involved_object: Involved,
    pub reporting_component: String,
    pub source: EventSource,
    pub count: Option<u64>,
    pub series: Option<EventSeries>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Involved {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventSource {
    pub component: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventSeries {
    pub count: Option<u64>,
}

impl Event {
    /// How many times it happened (a series counts every occurrence).
    pub fn occurrences(&self) -> u64 {
        self.series
            .as_ref()
            .and_then(|s| s.count)
            .or(self.count)
            .unwrap_or(1)
            .max(1)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Binding {
    pub metadata: Meta,
    pub spec: BindingSpec,
    pub status: BindingStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BindingSpec {
    pub offer: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BindingStatus {
    pub compliance: String,
    pub first_reason: String,
    pub details: Vec<PolicyDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PolicyDetail {
    pub rule_details: Vec<RuleDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RuleDetail {
    pub rule: String,
    pub value: Option<String>,
}

impl Binding {
    /// `status.compliance`, `Pending` when there is none yet.
    pub fn compliance(&self) -> &str {
        match self.status.compliance.as_str() {
            "" => "Pending",
            c => c,
        }
    }

    /// The offer that made it, `namespace/name`.
    pub fn offer(&self) -> String {
        let name = if self.spec.offer.is_empty() {
            self.metadata
                .labels
                .get(edgeplane_api::names::OFFER_LABEL)
                .map(String::as_str)
                .unwrap_or_default()
        } else {
            self.spec.offer.as_str()
        };
        format!("{}/{name}", self.metadata.namespace)
    }

    /// The measured value of the first rule named `rule` in the status details (every
    /// policy of a binding measures a pairwise rule over the same targets).
    pub fn rule_value(&self, rule: &str) -> Option<&str> {
        self.status
            .details
            .iter()
            .flat_map(|d| &d.rule_details)
            .find(|r| r.rule == rule && r.value.is_some())
            .and_then(|r| r.value.as_deref())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Node {
    pub metadata: Meta,
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

impl Node {
    pub fn ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    }
}

/// A Deployment, StatefulSet, ReplicaSet or DaemonSet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Workload {
    pub metadata: Meta,
    pub spec: WorkloadSpec,
    pub status: WorkloadStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkloadSpec {
    pub replicas: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadStatus {
    pub desired_number_scheduled: Option<i64>,
}

/// Decodes the fields of `T` from a stored object's JSON; the default when it does not
/// decode (the store only holds objects that did).
pub fn decode<T: for<'de> Deserialize<'de> + Default>(json: &str) -> T {
    serde_json::from_str(json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_needs_and_skips_the_rest() {
        let p: Pod = decode(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"d","uid":"u","deletionTimestamp":"2026-01-01T00:00:00Z","ownerReferences":[{"uid":"x"},{"uid":"rs","controller":true}],"labels":{"app":"w"}},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"i"}]},"status":{"phase":"Failed","reason":"NodeLost","conditions":[]}}"#,
        );
        assert_eq!(p.metadata.controller().as_deref(), Some("rs"));
        assert!(p.metadata.deleting());
        assert_eq!(
            (p.spec.node_name.as_str(), p.status.phase.as_str()),
            ("n1", "Failed")
        );
        let n: Node = decode(
            r#"{"metadata":{"name":"n"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
        );
        assert!(n.ready());
        let e: Event = decode(
            r#"{"reason":"Evicted","count":2,"series":{"count":5},"involvedObject":{"kind":"Pod","name":"p"}}"#,
        );
        assert_eq!(e.occurrences(), 5);
        let b: Binding = decode(r#"{"metadata":{"name":"b"}}"#);
        assert_eq!(b.compliance(), "Pending");
        assert_eq!(b.rule_value("latency"), None);
        let b: Binding = decode(
            r#"{"metadata":{"name":"b","namespace":"ar"},"spec":{"offer":"ar-stadium"},"status":{"compliance":"Limit","details":[{"policy":"p","compliance":"Limit","ruleDetails":[{"rule":"jitter","compliance":"Compliant","value":"1ms"},{"rule":"latency","compliance":"Limit"},{"rule":"latency","compliance":"Limit","value":"4ms"}]}]}}"#,
        );
        assert_eq!(b.offer(), "ar/ar-stadium");
        assert_eq!(b.rule_value("latency"), Some("4ms"));
    }
}
