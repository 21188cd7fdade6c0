//! What the objects say at the end of a run: pods, bindings, workloads and the map.

use std::collections::HashMap;

use edgeplane_cluster::api::ApiServer;

use super::WorkloadState;
use super::map::{SiteMap, site_map};
use crate::journal::ComplianceCounts;
use crate::lite;
use crate::observer::{BINDINGS, NODES, PODS, TOPOLOGIES};

/// What the objects say at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct FinalState {
    pub pods_placed: usize,
    pub pods_unplaced: usize,
    pub pods_failed: usize,
    pub standalone_failed: usize,
    pub bindings: ComplianceCounts,
    pub workloads: Vec<WorkloadState>,
    pub map: SiteMap,
}

/// Reads the end state from the API server, one object at a time (a large run holds
/// thousands of pods; none is kept parsed longer than needed).
pub fn final_state(api: &ApiServer) -> FinalState {
    let st = api.lock();
    let each = |storage: &str| st.store.range(storage, None, None);
    let mut out = FinalState::default();
    for b in each(BINDINGS) {
        out.bindings
            .add(lite::decode::<lite::Binding>(b.json()).compliance());
    }
    // Pods by state; pods per node; live pods per controller.
    let mut on_node: HashMap<String, Vec<String>> = HashMap::new();
    let mut live_by_owner: HashMap<String, (usize, usize)> = HashMap::new();
    for stored in each(PODS) {
        let p: lite::Pod = lite::decode(stored.json());
        let owner = p.metadata.controller();
        match p.status.phase.as_str() {
            "Failed" => {
                out.pods_failed += 1;
                if owner.is_none() {
                    out.standalone_failed += 1;
                }
                continue;
            }
            "Succeeded" => continue,
            _ => {}
        }
        let deleting = p.metadata.deleting();
        if p.spec.node_name.is_empty() {
            if !deleting {
                out.pods_unplaced += 1;
            }
        } else {
            if !deleting {
                out.pods_placed += 1;
            }
            on_node
                .entry(p.spec.node_name.clone())
                .or_default()
                .push(format!("{}/{}", p.metadata.namespace, p.metadata.name));
        }
        if let Some(o) = owner
            && !deleting
        {
            let e = live_by_owner.entry(o).or_default();
            e.0 += 1;
            if p.status.phase == "Running" {
                e.1 += 1;
            }
        }
    }
    // Workloads: Deployments count the pods of their ReplicaSets.
    let mut rs_to_deployment: HashMap<String, String> = HashMap::new();
    for rs in each("replicasets.apps") {
        let rs: lite::Workload = lite::decode(rs.json());
        if let Some(d) = rs.metadata.controller() {
            rs_to_deployment.insert(rs.metadata.uid.clone(), d);
        }
    }
    let mut by_workload: HashMap<String, (usize, usize)> = HashMap::new();
    for (owner, counts) in &live_by_owner {
        let top = rs_to_deployment.get(owner).unwrap_or(owner);
        let e = by_workload.entry(top.clone()).or_default();
        e.0 += counts.0;
        e.1 += counts.1;
    }
    let mut workloads = Vec::new();
    for (storage, kind) in [
        ("deployments.apps", "Deployment"),
        ("statefulsets.apps", "StatefulSet"),
        ("replicasets.apps", "ReplicaSet"),
        ("daemonsets.apps", "DaemonSet"),
    ] {
        for stored in each(storage) {
            let w: lite::Workload = lite::decode(stored.json());
            if (kind == "ReplicaSet" && w.metadata.controller().is_some()) || w.metadata.deleting()
            {
                continue;
            }
            let replicas = if kind == "DaemonSet" {
                w.status.desired_number_scheduled.unwrap_or(0)
            } else {
                w.spec.replicas.unwrap_or(1)
            }
            .max(0) as usize;
            let (live, running) = by_workload
                .get(&w.metadata.uid)
                .copied()
                .unwrap_or_default();
            workloads.push(WorkloadState {
                kind: kind.to_string(),
                namespace: w.metadata.namespace,
                name: w.metadata.name,
                replicas,
                pods: live,
                running,
            });
        }
    }
    workloads
        .sort_by(|a, b| (&a.namespace, &a.name, &a.kind).cmp(&(&b.namespace, &b.name, &b.kind)));
    out.workloads = workloads;
    let topology = each(TOPOLOGIES)
        .find(|t| t.key.1 == edgeplane_core::snapshot::DEFAULT_TOPOLOGY)
        .map(|t| t.value());
    let nodes: Vec<lite::Node> = each(NODES).map(|n| lite::decode(n.json())).collect();
    out.map = site_map(topology.as_ref(), &nodes, &on_node);
    out
}
