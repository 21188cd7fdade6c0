//! Simulated nodes: a builder for Node objects with capacity, labels and taints, and the
//! node-lifecycle part of failing and recovering a node (Ready condition and the
//! `node.kubernetes.io/unreachable` taints, as the node lifecycle controller sets them).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-edgeplane";

/// A node to add to the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    /// Allocatable cpu, as a quantity (`"4"`, `"3500m"`).
    pub cpu: String,
    /// Allocatable memory (`"16Gi"`).
    pub memory: String,
    /// Maximum number of pods.
    pub pods: u32,
    /// Extended resources (`"example.com/gpu": "2"`).
    pub extended: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Taints as `{key, value, effect}` objects.
    pub taints: Vec<Value>,
}

impl NodeSpec {
    /// A 4-cpu, 16Gi, 110-pod node labelled with its hostname.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), name.clone());
        labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
        labels.insert("kubernetes.io/arch".to_string(), "amd64".to_string());
        NodeSpec {
            name,
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: 110,
            extended: BTreeMap::new(),
            labels,
            taints: Vec::new(),
        }
    }

    pub fn cpu(mut self, cpu: impl Into<String>) -> Self {
        self.cpu = cpu.into();
        self
    }

    pub fn memory(mut self, memory: impl Into<String>) -> Self {
        self.memory = memory.into();
        self
    }

    pub fn pods(mut self, pods: u32) -> Self {
        self.pods = pods;
        self
    }

    pub fn resource(mut self, name: impl Into<String>, quantity: impl Into<String>) -> Self {
        self.extended.insert(name.into(), quantity.into());
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints
            .push(json!({"key": key, "value": value, "effect": effect}));
        self
    }

    /// The Node object, with a Ready status.
    pub fn to_object(&self, index: usize, now: &str) -> Value {
        let mut resources = json!({"cpu": self.cpu, "memory": self.memory, "pods": self.pods.to_string(), "ephemeral-storage": "100Gi"});
        for (k, v) in &self.extended {
            resources[k] = json!(v);
        }
        let mut spec = json!({"podCIDR": pod_cidr(index), "podCIDRs": [pod_cidr(index)]});
        if !self.taints.is_empty() {
            spec["taints"] = json!(self.taints);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": self.labels},
            "spec": spec,
            "status": ready_status(&self.name, index, &resources, now),
        })
    }
}

fn pod_cidr(index: usize) -> String {
    format!("10.{}.{}.0/24", 244 + (index / 256) % 12, index % 256)
}

/// The InternalIP of the node with this index.
pub fn node_ip(index: usize) -> String {
    format!("172.18.{}.{}", index / 250, index % 250 + 2)
}

/// The status a healthy kubelet posts.
pub fn ready_status(name: &str, index: usize, resources: &Value, now: &str) -> Value {
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
             "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure",
             "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID",
             "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
        ],
        "addresses": [
            {"type": "InternalIP", "address": node_ip(index)},
            {"type": "Hostname", "address": name},
        ],
        "nodeInfo": {
            "machineID": format!("{index:032x}"),
            "systemUUID": format!("{index:032x}"),
            "bootID": format!("{index:032x}"),
            "kernelVersion": "6.1.0-edgeplane",
            "osImage": "edgeplane simulated node",
            "containerRuntimeVersion": "sim://1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    })
}

/// Whether a node reports Ready=True.
pub fn is_ready(node: &Value) -> bool {
    node.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The taints the node lifecycle controller puts on an unreachable node.
pub fn unreachable_taints(now: &str) -> Vec<Value> {
    vec![
        json!({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": now}),
        json!({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": now}),
    ]
}

/// A node's taints without the lifecycle controller's unreachable/not-ready ones.
pub fn without_lifecycle_taints(node: &Value) -> Vec<Value> {
    node.get("spec")
        .and_then(|s| s.get("taints"))
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter(|t| {
                    !matches!(
                        t.get("key").and_then(Value::as_str),
                        Some("node.kubernetes.io/unreachable")
                            | Some("node.kubernetes.io/not-ready")
                    )
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_ready_nodes() {
        let n = NodeSpec::new("edge-1")
            .cpu("8")
            .label("topology.kubernetes.io/zone", "edge")
            .taint("dedicated", "edge", "NoSchedule")
            .resource("example.com/gpu", "1")
            .to_object(3, "2025-01-01T00:00:00Z");
        assert!(is_ready(&n));
        assert_eq!(n["status"]["allocatable"]["cpu"], "8");
        assert_eq!(n["status"]["allocatable"]["example.com/gpu"], "1");
        assert_eq!(
            n["metadata"]["labels"]["topology.kubernetes.io/zone"],
            "edge"
        );
        assert_eq!(n["spec"]["taints"][0]["key"], "dedicated");
        let failed = json!({"spec": {"taints": [n["spec"]["taints"][0].clone(), unreachable_taints("t")[0].clone()]}});
        assert_eq!(without_lifecycle_taints(&failed).len(), 1);
    }
}
