//! Network functions and service chains in GitOps mode (`edgeplane plan`): what the NF and
//! chain controllers would create in a cluster, rendered from files, planned, and written.
//!
//! - Before planning, [`expand`] replaces each NetworkFunction document by its replicas as
//!   the NF controller renders them (`nf::render`, with the chains' ports and co-location):
//!   a Pod per replica for `Container`, a VirtualMachine (running) for `VirtualMachine`.
//!   The planner's gate is left off the pods: in GitOps mode the default scheduler places
//!   them, and the written node affinity (or [`super::UNPLACED_GATE`]) says where. Each
//!   ServiceChain document is left out: its objects are the NADs of its links, which
//!   depend on the placement.
//! - The lanes of the chains are planned as units, as the scheduler plans them
//!   (`chain::plan::lane_plan_bindings`, [`lane_bindings`]).
//! - After planning, [`networks`] gives each link's NetworkAttachmentDefinition: a bridge
//!   where both hops were planned on one node, macvlan otherwise (or the chain's
//!   `network.type`), as the chain controller would write it.
//!
//! The NetworkFunctions and ServiceChains themselves are not written: the rendered objects
//! replace them, so a cluster needs no NF controller to run the output (and one running
//! there would not fight it: it would find its replicas already present, but without the
//! owner references a live NF gives them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use edgeplane_api::{NetworkFunction, ServiceChain};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value as Json;

use crate::chain;
use crate::manifests::Document;
use crate::multus::qualified;
use crate::nf::{self, NF_LABEL, Replica, describe, replica_name};
use crate::planner::{Plan, PlanBinding, PodKey};
use crate::snapshot::Snapshot;
use crate::workloads::Workload;

/// The input with network functions rendered: see the module's documentation.
#[derive(Clone, Debug, Default)]
pub struct Expanded {
    /// The input documents, each NetworkFunction replaced by its replicas, each
    /// ServiceChain left out.
    pub documents: Vec<Document>,
    /// What the planner reads: the objects of [`Expanded::documents`], with the NFs and
    /// chains of the input kept for offers that target them and for lanes.
    pub snapshot: Snapshot,
    /// `NetworkFunction upf/fw: written as its replicas fw-0, fw-1`, for stderr.
    pub notes: Vec<String>,
}

/// Renders the network functions of `documents` (decoded into `snapshot`). An invalid NF
/// or chain is an error naming its document and field: nothing is half-rendered.
pub fn expand(documents: &[Document], snapshot: &Snapshot) -> Result<Expanded, String> {
    let sites: BTreeSet<String> =
        crate::sites::site_candidates(snapshot.topology(), &snapshot.nodes)
            .into_iter()
            .map(|c| c.reference.name)
            .collect();
    let lookup = |namespace: &str, name: &str| {
        snapshot
            .functions
            .iter()
            .find(|f| {
                f.metadata.namespace.as_deref() == Some(namespace)
                    && f.metadata.name.as_deref() == Some(name)
            })
            .cloned()
    };
    // Chains first: an NF's ports come from the valid chains it is a hop of.
    let mut valid: BTreeSet<(String, String)> = BTreeSet::new();
    for doc in documents.iter().filter(|d| is_kind(d, "ServiceChain")) {
        let chain: ServiceChain = crate::manifests::typed(doc, true).map_err(|e| e.to_string())?;
        let namespace = chain.metadata.namespace.clone().unwrap_or_default();
        chain::check(&chain, &|n| lookup(&namespace, n), &|s| sites.contains(s)).map_err(
            |errors| {
                format!(
                    "{}: ServiceChain {namespace}/{}: {}",
                    doc.location(),
                    chain.metadata.name.as_deref().unwrap_or_default(),
                    describe(&errors)
                )
            },
        )?;
        valid.insert((namespace, chain.metadata.name.clone().unwrap_or_default()));
    }
    let chains: Vec<&ServiceChain> = snapshot.chains.iter().collect();
    let is_valid = |c: &ServiceChain| {
        valid.contains(&(
            c.metadata.namespace.clone().unwrap_or_default(),
            c.metadata.name.clone().unwrap_or_default(),
        ))
    };
    // Networks that exist once the output is applied: the input's NADs and the links of
    // the chains.
    let mut networks: BTreeSet<String> = documents
        .iter()
        .filter(|d| d.kind() == "NetworkAttachmentDefinition")
        .filter_map(|d| {
            let meta = d.value.get("metadata")?;
            let namespace = meta
                .get("namespace")
                .and_then(Json::as_str)
                .unwrap_or("default");
            Some(qualified(meta.get("name")?.as_str()?, namespace))
        })
        .collect();
    for f in &snapshot.functions {
        for ports in chain::ports_of(f, &chains, &is_valid) {
            networks.extend(ports.into_iter().map(|p| p.network));
        }
    }

    let mut out = Expanded::default();
    for doc in documents {
        if is_kind(doc, "ServiceChain") {
            continue;
        }
        if !is_kind(doc, "NetworkFunction") {
            out.documents.push(doc.clone());
            continue;
        }
        let f: NetworkFunction = crate::manifests::typed(doc, true).map_err(|e| e.to_string())?;
        let replicas = render(&f, &chains, &is_valid, &|n| networks.contains(n)).map_err(|e| {
            format!(
                "{}: NetworkFunction {}/{}: {e}",
                doc.location(),
                f.metadata.namespace.as_deref().unwrap_or_default(),
                f.metadata.name.as_deref().unwrap_or_default()
            )
        })?;
        out.notes.push(format!(
            "NetworkFunction {}/{}: written as its replicas {}",
            f.metadata.namespace.as_deref().unwrap_or_default(),
            f.metadata.name.as_deref().unwrap_or_default(),
            replicas
                .iter()
                .map(|r| r.get("metadata").and_then(|m| m.get("name")))
                .filter_map(|n| n.and_then(Json::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for (i, value) in replicas.into_iter().enumerate() {
            out.documents.push(Document {
                source: doc.source.clone(),
                index: doc.index,
                item: Some(i),
                value,
            });
        }
    }
    let mut objects = Vec::with_capacity(out.documents.len());
    for doc in &out.documents {
        objects.push(crate::manifests::decode(doc).map_err(|e| e.to_string())?);
    }
    out.snapshot = Snapshot::from_objects(objects);
    out.snapshot.functions = snapshot.functions.clone();
    out.snapshot.chains = snapshot.chains.clone();
    Ok(out)
}

fn is_kind(doc: &Document, kind: &str) -> bool {
    doc.kind() == kind && doc.api_version() == edgeplane_api::names::NETWORK_API_VERSION
}

/// The replicas of one NF as JSON, as the NF controller renders them, pods ungated.
fn render(
    f: &NetworkFunction,
    chains: &[&ServiceChain],
    valid: &dyn Fn(&ServiceChain) -> bool,
    network_exists: &dyn Fn(&str) -> bool,
) -> Result<Vec<Json>, String> {
    let ports = chain::ports_of(f, chains, valid);
    let colocation = chain::colocation_of(f, chains, valid);
    let mut replicas =
        nf::render(f, &ports, network_exists, &|_| true).map_err(|e| describe(&e))?;
    for (replica, affinity) in replicas.iter_mut().zip(&colocation) {
        if let Some(affinity) = affinity {
            nf::add_pod_affinity(replica, affinity);
        }
    }
    replicas
        .into_iter()
        .map(|replica| match replica {
            Replica::Pod(mut pod) => {
                if let Some(spec) = pod.spec.as_mut() {
                    let gates = spec.scheduling_gates.take().unwrap_or_default();
                    let kept: Vec<_> = gates
                        .into_iter()
                        .filter(|g| g.name != edgeplane_api::names::PLANNER_GATE)
                        .collect();
                    spec.scheduling_gates = (!kept.is_empty()).then_some(kept);
                }
                let mut value = serde_json::to_value(&*pod).map_err(|e| e.to_string())?;
                // kubectl writes the kind; the typed object leaves it out.
                if let Some(map) = value.as_object_mut() {
                    map.insert("apiVersion".into(), "v1".into());
                    map.insert("kind".into(), "Pod".into());
                }
                Ok(value)
            }
            Replica::VirtualMachine(value) => Ok(value),
        })
        .collect()
}

/// One planner binding per lane of the snapshot's chains whose pods are among
/// `workloads`: every lane is planned as a unit against its end-to-end budget.
pub fn lane_bindings(snapshot: &Snapshot, workloads: &[Workload]) -> Vec<PlanBinding> {
    if snapshot.chains.is_empty() {
        return Vec::new();
    }
    // The planner's pods of the NFs, as the pods the scheduler would see.
    let mut pending = BTreeSet::new();
    let mut pods = Vec::new();
    for pod in workloads.iter().flat_map(|w| &w.pods) {
        if !pod.labels.contains_key(NF_LABEL) {
            continue;
        }
        pending.insert(pod.key.clone());
        pods.push(Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(pod.key.name.clone()),
                namespace: Some(pod.key.namespace.clone()),
                labels: Some(pod.labels.clone()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }));
    }
    let chains: Vec<Arc<ServiceChain>> = snapshot.chains.iter().cloned().map(Arc::new).collect();
    chain::plan::lane_plan_bindings(&chains, &pods, &pending).bindings
}

/// The NetworkAttachmentDefinition of every link of every lane of `chains`, with the CNI
/// the placement in `plan` calls for, in chain, lane and hop order.
pub fn networks(chains: &[ServiceChain], plan: &Plan) -> Vec<Json> {
    let node_of: BTreeMap<&PodKey, &str> = plan
        .assignments
        .iter()
        .map(|a| (&a.pod, a.node.as_str()))
        .collect();
    let mut out = Vec::new();
    for chain in chains {
        let namespace = chain.metadata.namespace.as_deref().unwrap_or("default");
        let (type_, colocate) = (chain.spec.link_type(), chain.spec.colocate());
        let lanes = lane_count(chain, plan);
        for lane in 0..lanes {
            for pair in chain.spec.hops.windows(2) {
                let node = |nf: &str| {
                    node_of
                        .get(&PodKey::new(namespace, replica_name(nf, lane)))
                        .copied()
                };
                let cni = chain::link_cni(
                    type_,
                    colocate,
                    node(&pair[0].network_function),
                    node(&pair[1].network_function),
                );
                let nad = chain::nad_object(chain, lane, &pair[0].name, &pair[1].name, cni);
                if let Ok(value) = serde_json::to_value(&nad) {
                    out.push(value);
                }
            }
        }
    }
    out
}

/// The lanes of a chain: the replica count of its first hop's NF, read back from the
/// plan's pods (a valid chain's hops all have it).
fn lane_count(chain: &ServiceChain, plan: &Plan) -> usize {
    let namespace = chain.metadata.namespace.as_deref().unwrap_or("default");
    let Some(first) = chain.spec.hops.first() else {
        return 0;
    };
    let keys: BTreeSet<&PodKey> = plan
        .assignments
        .iter()
        .map(|a| &a.pod)
        .chain(plan.unplaced.iter().map(|u| &u.pod))
        .collect();
    (0..)
        .take_while(|&i| {
            keys.contains(&PodKey::new(
                namespace,
                replica_name(&first.network_function, i),
            ))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::{decode, parse_documents};

    const INPUT: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: upf}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: dpi, namespace: upf}
spec: {runtime: Container, image: dpi:3, replicas: 2}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: ServiceChain
metadata: {name: up, namespace: upf}
spec:
  hops: [{name: dpi, networkFunction: dpi}, {name: nat, networkFunction: nat}]
  constraints: {endToEnd: [{name: latency, request: 1ms}]}
---
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkFunction
metadata: {name: nat, namespace: upf}
spec: {runtime: VirtualMachine, image: nat:1, replicas: 2}
"#;

    fn read(text: &str) -> (Vec<Document>, Snapshot) {
        let docs = parse_documents("upf.yaml", text).unwrap_or_default();
        let snapshot = Snapshot::from_objects(docs.iter().filter_map(|d| decode(d).ok()));
        (docs, snapshot)
    }

    fn names(docs: &[Document]) -> Vec<String> {
        docs.iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d.kind(),
                    d.value["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn each_network_function_is_written_as_its_replicas_where_it_stood() {
        let (docs, snapshot) = read(INPUT);
        let Ok(expanded) = expand(&docs, &snapshot) else {
            panic!("expands")
        };
        assert_eq!(
            names(&expanded.documents),
            [
                "Namespace upf",
                "Pod dpi-0",
                "Pod dpi-1",
                "VirtualMachine nat-0",
                "VirtualMachine nat-1"
            ]
        );
        // Located at the NF's document, item by item.
        assert_eq!(expanded.documents[2].location(), "upf.yaml[1].items[1]");
        // No planner gate (the default scheduler runs GitOps output), the chain's ports.
        let pod = &expanded.documents[1].value;
        assert!(pod["spec"].get("schedulingGates").is_none(), "{pod:#}");
        assert_eq!(
            pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
            r#"[{"name":"up-0-dpi-nat","namespace":"upf","interface":"net1"}]"#
        );
        assert_eq!(expanded.documents[3].value["spec"]["runStrategy"], "Always");
        // The planner reads the replicas, and still knows the chain and the NFs.
        assert_eq!(expanded.snapshot.pods.len(), 2);
        assert_eq!(expanded.snapshot.virtual_machines.len(), 2);
        assert_eq!(expanded.snapshot.chains.len(), 1);
        assert_eq!(expanded.snapshot.functions.len(), 2);
        assert_eq!(
            expanded.notes,
            [
                "NetworkFunction upf/dpi: written as its replicas dpi-0, dpi-1",
                "NetworkFunction upf/nat: written as its replicas nat-0, nat-1"
            ]
        );
        // Both lanes are planned as units.
        let workloads = crate::workloads::workloads(&expanded.snapshot);
        let lanes: Vec<String> = lane_bindings(&expanded.snapshot, &workloads)
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(lanes, ["up-lane-0", "up-lane-1"]);
    }

    #[test]
    fn an_invalid_chain_or_function_is_an_error_naming_its_document_and_field() {
        let (docs, snapshot) =
            read(&INPUT.replace("networkFunction: nat}", "networkFunction: nap}"));
        let err = expand(&docs, &snapshot).err().unwrap_or_default();
        assert!(
            err.starts_with("upf.yaml[2]: ServiceChain upf/up: spec.hops[1].networkFunction:"),
            "{err}"
        );
        let (docs, snapshot) = read(&format!(
            "{INPUT}---\n{}",
            "apiVersion: network.edgeplane.io/v1alpha1\nkind: NetworkFunction\nmetadata: {name: fw, namespace: upf}\nspec: {runtime: Container, image: fw, replicas: 1, interfaces: [{name: north, network: missing}]}\n"
        ));
        let err = expand(&docs, &snapshot).err().unwrap_or_default();
        assert!(
            err.starts_with("upf.yaml[4]: NetworkFunction upf/fw: spec.interfaces[0].network:"),
            "{err}"
        );
    }

    #[test]
    fn a_link_is_a_bridge_where_its_hops_share_a_node_and_macvlan_elsewhere() {
        let (_, snapshot) = read(INPUT);
        let assign = |pod: &str, node: &str| crate::planner::Assignment {
            pod: PodKey::new("upf", pod),
            node: node.into(),
        };
        let plan = Plan {
            assignments: vec![
                assign("dpi-0", "n1"),
                assign("nat-0", "n1"),
                assign("dpi-1", "n1"),
                assign("nat-1", "n2"),
            ],
            ..Plan::default()
        };
        let written: Vec<(String, String)> = networks(&snapshot.chains, &plan)
            .iter()
            .map(|n| {
                let config: Json =
                    serde_json::from_str(n["spec"]["config"].as_str().unwrap_or("{}"))
                        .unwrap_or_default();
                (
                    n["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    config["type"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(
            written,
            [
                ("up-0-dpi-nat".to_string(), "bridge".to_string()),
                ("up-1-dpi-nat".to_string(), "macvlan".to_string())
            ]
        );
    }
}
