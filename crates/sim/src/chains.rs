//! Service chains over a run: each chain's lanes whenever its status changes (the node of
//! every hop, the end-to-end latency and compliance) and the live migrations of its VM
//! hops (KubeVirt's VirtualMachineInstanceMigrations the descheduler created). The
//! observer records them from the chains' and migrations' watches; the report carries
//! them (`chains`) and the HTML map draws each lane from ingress to egress through its
//! hops' nodes at every moment.

use std::collections::BTreeMap;

use edgeplane_api::ServiceChain;
use serde::Serialize;
use serde_json::Value;

/// The binding label the descheduler puts on the migrations it creates (the lane's
/// binding, `<chain>-lane-<i>`).
const BINDING_LABEL: &str = "constraint.edgeplane.io/binding";

/// One chain over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainRecord {
    /// `namespace/name`.
    pub name: String,
    pub ingress: Option<String>,
    pub egress: Option<String>,
    /// The hops' names, in order.
    pub hops: Vec<String>,
    /// The lanes whenever they changed, the first when the chain first had lanes.
    pub history: Vec<ChainSample>,
    /// Live migrations of its VM hops, in the order they were created.
    pub migrations: Vec<MigrationRecord>,
}

/// The lanes of a chain from `at` on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainSample {
    /// Seconds of virtual time since the start.
    pub at: f64,
    pub lanes: Vec<LaneState>,
}

/// One lane: where its hops run, its latency along ingress > hops > egress, its binding's
/// compliance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LaneState {
    pub lane: usize,
    pub hops: Vec<HopState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    pub compliance: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HopState {
    pub name: String,
    /// The replica's object: the pod, or the VM.
    pub replica: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A VirtualMachineInstanceMigration as last seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationRecord {
    pub name: String,
    pub vmi: String,
    /// The lane binding it restores (the descheduler's label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    pub created_at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_node: Option<String>,
    /// The node asked for (`addedNodeSelector`), then the one it ran to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_node: Option<String>,
    pub phase: String,
    /// When it was last seen to change phase to Succeeded or Failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<f64>,
}

/// The chains of a run by `namespace/name`, and the migrations not (yet) tied to one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chains {
    pub chains: BTreeMap<String, ChainRecord>,
    /// Migrations by `namespace/name`.
    pub migrations: BTreeMap<String, MigrationRecord>,
}

impl Chains {
    /// A chain changed (or appeared) at `at` seconds.
    pub fn chain(&mut self, at: f64, object: &Value) {
        let Ok(chain) = serde_json::from_value::<ServiceChain>(object.clone()) else {
            return;
        };
        let namespace = chain.metadata.namespace.clone().unwrap_or_default();
        let name = chain.metadata.name.clone().unwrap_or_default();
        let key = format!("{namespace}/{name}");
        let record = self.chains.entry(key.clone()).or_default();
        record.name = key;
        record.ingress = chain.spec.ingress.as_ref().map(|e| e.site.clone());
        record.egress = chain.spec.egress.as_ref().map(|e| e.site.clone());
        record.hops = chain.spec.hops.iter().map(|h| h.name.clone()).collect();
        let lanes: Vec<LaneState> = chain
            .status
            .map(|s| s.lanes)
            .unwrap_or_default()
            .into_iter()
            .map(|l| LaneState {
                lane: usize::try_from(l.index).unwrap_or_default(),
                hops: l
                    .hops
                    .into_iter()
                    .map(|h| HopState {
                        name: h.name,
                        replica: h.replica,
                        node: h.node,
                    })
                    .collect(),
                latency: l.end_to_end.as_ref().and_then(|e| e.latency.clone()),
                compliance: l
                    .end_to_end
                    .map(|e| e.compliance.to_string())
                    .unwrap_or_else(|| "Pending".into()),
            })
            .collect();
        if lanes.is_empty() && record.history.is_empty() {
            return;
        }
        match record.history.last_mut() {
            Some(last) if last.lanes == lanes => {}
            // Several writes in one instant: the last tells it.
            Some(last) if last.at == at => last.lanes = lanes,
            _ => record.history.push(ChainSample { at, lanes }),
        }
    }

    /// A migration changed (or appeared) at `at` seconds.
    pub fn migration(&mut self, at: f64, object: &Value) {
        let text = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let namespace = text("/metadata/namespace").unwrap_or_default();
        let name = text("/metadata/name").unwrap_or_default();
        let record = self
            .migrations
            .entry(format!("{namespace}/{name}"))
            .or_insert_with(|| MigrationRecord {
                name: name.clone(),
                created_at: at,
                ..MigrationRecord::default()
            });
        record.vmi = text("/spec/vmiName").unwrap_or_default();
        record.binding = object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(BINDING_LABEL))
            .and_then(Value::as_str)
            .map(|b| format!("{namespace}/{b}"));
        if let Some(source) = text("/status/migrationState/sourceNode") {
            record.source_node = Some(source);
        }
        record.target_node = text("/status/migrationState/targetNode").or_else(|| {
            object
                .pointer("/spec/addedNodeSelector")
                .and_then(|s| s.get("kubernetes.io/hostname"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let phase = text("/status/phase").unwrap_or_else(|| "Pending".into());
        if matches!(phase.as_str(), "Succeeded" | "Failed") && record.phase != phase {
            record.ended_at = Some(at);
        }
        record.phase = phase;
    }

    /// The chains, each with the migrations of its lanes (by their binding,
    /// `<chain>-lane-<i>`).
    pub fn records(&self) -> Vec<ChainRecord> {
        let mut out: Vec<ChainRecord> = self.chains.values().cloned().collect();
        for chain in &mut out {
            let prefix = format!("{}-lane-", chain.name);
            let mut mine: Vec<MigrationRecord> = self
                .migrations
                .values()
                .filter(|m| m.binding.as_deref().is_some_and(|b| b.starts_with(&prefix)))
                .cloned()
                .collect();
            mine.sort_by(|a, b| {
                a.created_at
                    .total_cmp(&b.created_at)
                    .then(a.name.cmp(&b.name))
            });
            chain.migrations = mine;
        }
        out
    }
}

/// The lanes of `chain` at `at` seconds (the last sample at or before it).
pub fn lanes_at(chain: &ChainRecord, at: f64) -> Option<&[LaneState]> {
    chain
        .history
        .iter()
        .rev()
        .find(|s| s.at <= at)
        .map(|s| s.lanes.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(nodes: [&str; 2], compliance: &str) -> Value {
        json!({
            "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "ServiceChain",
            "metadata": {"name": "up", "namespace": "upf"},
            "spec": {"hops": [{"name": "fw", "networkFunction": "fw"}, {"name": "nat", "networkFunction": "nat"}],
                     "ingress": {"site": "ran"}, "egress": {"site": "core"},
                     "constraints": {"endToEnd": [{"name": "latency", "request": "1ms"}]}},
            "status": {"lanes": [{"index": 0, "hops": [
                {"name": "fw", "replica": "fw-0", "node": nodes[0]},
                {"name": "nat", "replica": "nat-0", "node": nodes[1]}],
                "endToEnd": {"latency": "700us", "compliance": compliance}}]}
        })
    }

    #[test]
    fn a_chain_is_sampled_when_its_lanes_change_and_gets_its_lanes_migrations() {
        let mut c = Chains::default();
        c.chain(2.0, &chain(["a1", "b1"], "Compliant"));
        c.chain(3.0, &chain(["a1", "b1"], "Compliant"));
        c.chain(60.0, &chain(["c1", "b1"], "Compliant"));
        c.migration(
            59.0,
            &json!({"metadata": {"name": "fw-0-x", "namespace": "upf",
                                 "labels": {"constraint.edgeplane.io/binding": "up-lane-0"}},
                    "spec": {"vmiName": "fw-0", "addedNodeSelector": {"kubernetes.io/hostname": "c1"}}}),
        );
        c.migration(
            60.0,
            &json!({"metadata": {"name": "fw-0-x", "namespace": "upf",
                                 "labels": {"constraint.edgeplane.io/binding": "up-lane-0"}},
                    "spec": {"vmiName": "fw-0"},
                    "status": {"phase": "Succeeded", "migrationState": {"sourceNode": "a1", "targetNode": "c1"}}}),
        );
        let records = c.records();
        assert_eq!(records.len(), 1);
        let up = &records[0];
        assert_eq!(up.name, "upf/up");
        assert_eq!(
            (up.ingress.as_deref(), up.egress.as_deref()),
            (Some("ran"), Some("core"))
        );
        assert_eq!(up.hops, ["fw", "nat"]);
        // The second write changed nothing: two samples.
        assert_eq!(
            up.history.iter().map(|s| s.at).collect::<Vec<_>>(),
            [2.0, 60.0]
        );
        let at = |t: f64| lanes_at(up, t).unwrap()[0].hops[0].node.clone().unwrap();
        assert_eq!((at(30.0), at(60.0)), ("a1".to_string(), "c1".to_string()));
        assert!(lanes_at(up, 1.0).is_none());
        let m = &up.migrations[0];
        assert_eq!(
            (
                m.vmi.as_str(),
                m.source_node.as_deref(),
                m.target_node.as_deref(),
                m.phase.as_str()
            ),
            ("fw-0", Some("a1"), Some("c1"), "Succeeded")
        );
        assert_eq!((m.created_at, m.ended_at), (59.0, Some(60.0)));
        assert_eq!(m.binding.as_deref(), Some("upf/up-lane-0"));
    }
}
