//! The reference controller against the embedded cluster, on virtual time.

use std::sync::Arc;
use std::time::Duration;

use edgeplane_api::{Compliance, NetworkPathCatalogue, NetworkTopology};
use edgeplane_cluster::{ClusterConfig, EmbeddedCluster, NodeSpec};
use edgeplane_core::network::{Location, NetworkGraph, NodeInfo, PathMetric};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use super::rule;
use crate::controller::*;
use crate::{ClientOptions, GrpcNetworkController, ReferenceConfig, ReferenceController};

const ZONE: &str = "topology.kubernetes.io/zone";

/// metro-1 - edge-3 is measured at 30ms (degraded from 4ms); the users at the stadium
/// reach the network at edge-3; edge-9 hangs off the data centre.
const TOPOLOGY: &str = "apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: metro-1}, {name: edge-3}, {name: edge-9}, {name: dc}, {name: stadium, transit: false}]
  links:
  - {from: metro-1, to: edge-3, latency: 4ms, jitter: 300us, bandwidth: 1Gbps}
  - {from: metro-1, to: dc, latency: 6ms, bandwidth: 100Gbps}
  - {from: edge-9, to: dc, latency: 10ms, bandwidth: 10Gbps}
  - {from: stadium, to: edge-3, latency: 1ms, jitter: 200us, bandwidth: 1Gbps}
status:
  measured:
  - {from: metro-1, to: edge-3, latency: 30ms, time: '2026-01-01T11:59:00Z'}
";

const CATALOGUE: &str = "apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkPathCatalogue
metadata: {name: default}
spec:
  entries:
  - {name: slice-a, from: metro-1, to: edge-3, latency: 4ms, jitter: 100us, bandwidth: 1Gbps, capacity: {bindings: 2}, cost: 10}
  - {name: express, from: edge-3, to: metro-1, latency: 1ms, bandwidth: 10Gbps, capacity: {bindings: 1}, cost: 50}
  - {name: far, from: edge-9, to: dc, latency: 2ms, capacity: {bindings: 1}, cost: 1}
";

async fn cluster() -> EmbeddedCluster {
    let config = ClusterConfig::default()
        .start_time("2026-01-01T12:00:00Z".parse().unwrap())
        .with_node(NodeSpec::new("m1").label(ZONE, "metro-1"))
        .with_node(NodeSpec::new("e3").label(ZONE, "edge-3"))
        .with_node(NodeSpec::new("e9").label(ZONE, "edge-9"))
        .with_node(NodeSpec::new("d").label(ZONE, "dc"));
    let cluster = EmbeddedCluster::start(config).await;
    let crds = edgeplane_api::crdgen::all()
        .into_iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    cluster.apply_objects(crds).await.unwrap();
    cluster.load_yaml(TOPOLOGY).await.unwrap();
    cluster
}

fn controller(cluster: &EmbeddedCluster) -> ReferenceController {
    ReferenceController::new(
        cluster.client(),
        Arc::new(cluster.clock()),
        ReferenceConfig::default(),
    )
}

fn mitigate_request(binding: &str, rules: &[PolicyRule]) -> MitigateRequest {
    MitigateRequest {
        binding: binding.into(),
        source: Endpoint::Node("m1".into()),
        destination: Endpoint::Site("stadium".into()),
        rules: rules.to_vec(),
    }
}

fn latency_rules() -> Vec<PolicyRule> {
    vec![rule("latency", "5ms", "10ms"), rule("jitter", "1ms", "2ms")]
}

async fn topology(cluster: &EmbeddedCluster) -> NetworkTopology {
    Api::<NetworkTopology>::all(cluster.client())
        .get("default")
        .await
        .unwrap()
}

async fn catalogue(cluster: &EmbeddedCluster) -> NetworkPathCatalogue {
    Api::<NetworkPathCatalogue>::all(cluster.client())
        .get("default")
        .await
        .unwrap()
}

/// The graph as the binding controller would build it from the cluster.
async fn graph(cluster: &EmbeddedCluster) -> NetworkGraph {
    let nodes = Api::<Node>::all(cluster.client())
        .list(&ListParams::default())
        .await
        .unwrap();
    let infos: Vec<NodeInfo> = nodes.items.iter().filter_map(NodeInfo::from_node).collect();
    NetworkGraph::build(
        Some(&topology(cluster).await),
        &infos,
        cluster.clock().now(),
    )
    .unwrap()
}

async fn latency_m1_to_stadium(cluster: &EmbeddedCluster) -> String {
    let g = graph(cluster).await;
    let m = g
        .metrics(
            Location::Node(g.node_id("m1").unwrap()),
            Location::Site(g.site_id("stadium").unwrap()),
        )
        .unwrap();
    m.value(PathMetric::Latency).to_string()
}

#[tokio::test(start_paused = true)]
async fn mitigate_activates_the_cheapest_entry_that_restores_compliance() {
    let cluster = cluster().await;
    cluster.load_yaml(CATALOGUE).await.unwrap();
    // Other status writers: the topology status writer (field manager `edgeplane`).
    let topologies = Api::<NetworkTopology>::all(cluster.client());
    let summary = json!({
        "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkTopology",
        "metadata": {"name": "default"},
        "status": {"siteCount": 5, "linkCount": 4},
    });
    topologies
        .patch_status(
            "default",
            &PatchParams::apply("edgeplane"),
            &Patch::Apply(&summary),
        )
        .await
        .unwrap();
    assert_eq!(latency_m1_to_stadium(&cluster).await, "31ms");

    let netctl = controller(&cluster);
    let outcome = netctl
        .mitigate(&mitigate_request("ar/render-stadium", &latency_rules()))
        .await
        .unwrap();
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(outcome.entry.as_deref(), Some("slice-a"));
    assert_eq!(outcome.compliance, Some(Compliance::Compliant));
    assert_eq!(outcome.path, ["metro-1", "edge-3", "stadium"]);
    let expected = outcome.expected.clone().unwrap();
    assert_eq!(
        (
            expected.latency.as_str(),
            expected.jitter.as_str(),
            expected.bandwidth.as_str()
        ),
        ("5ms", "300us", "1Gbps")
    );
    assert_eq!(
        outcome.reason,
        "activated slice-a (metro-1 <-> edge-3): latency 5ms between m1 and stadium meets the request 5ms"
    );
    let id = outcome.allocation_id.clone().unwrap();
    assert!(id.starts_with("mitigate.slice-a."), "{id}");

    // The topology shows the activation, and the graph rebuilt from it the repair.
    let t = topology(&cluster).await;
    let status = t.status.clone().unwrap();
    assert_eq!(status.activated_paths.len(), 1);
    let active = &status.activated_paths[0];
    assert_eq!(
        (
            active.entry.as_str(),
            active.from.as_str(),
            active.to.as_str(),
            active.latency.as_str()
        ),
        ("slice-a", "metro-1", "edge-3", "4ms")
    );
    assert_eq!(active.bindings, ["ar/render-stadium"]);
    assert_eq!(latency_m1_to_stadium(&cluster).await, "5ms");
    // Nobody else's status was touched.
    assert_eq!(status.site_count, Some(5));
    assert_eq!(status.measured.len(), 1);

    // The catalogue holds the allocation.
    let c = catalogue(&cluster).await;
    let cs = c.status.unwrap();
    assert_eq!(cs.allocation_count, Some(1));
    assert_eq!(cs.allocations[0].id, id);
    assert_eq!(
        cs.allocations[0].purpose,
        edgeplane_api::AllocationPurpose::Mitigate
    );

    // The other writers carry on without clobbering the activation.
    let summary = json!({
        "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkTopology",
        "metadata": {"name": "default"},
        "status": {"siteCount": 5, "linkCount": 4, "measuredLinkCount": 1},
    });
    topologies
        .patch_status(
            "default",
            &PatchParams::apply("edgeplane"),
            &Patch::Apply(&summary),
        )
        .await
        .unwrap();
    let agent = json!({
        "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkTopology",
        "metadata": {"name": "default"},
        "status": {"measured": [{"from": "metro-1", "to": "edge-3", "latency": "31ms", "time": "2026-01-01T12:00:00Z"}]},
    });
    topologies
        .patch_status(
            "default",
            &PatchParams::apply("edgeplane-agent"),
            &Patch::Apply(&agent),
        )
        .await
        .unwrap();
    let status = topology(&cluster).await.status.unwrap();
    assert_eq!(status.activated_paths.len(), 1);
    assert_eq!(status.measured_link_count, Some(1));
    assert_eq!(latency_m1_to_stadium(&cluster).await, "5ms");

    // Mitigating again changes nothing: the same allocation, no second one.
    let again = netctl
        .mitigate(&mitigate_request("ar/render-stadium", &latency_rules()))
        .await
        .unwrap();
    assert!(again.accepted);
    assert_eq!(again.allocation_id.as_deref(), Some(id.as_str()));
    assert!(
        again
            .reason
            .starts_with("slice-a (metro-1 <-> edge-3) is active for this binding already"),
        "{}",
        again.reason
    );
    assert_eq!(
        catalogue(&cluster).await.status.unwrap().allocations.len(),
        1
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_catalogue_refuses_with_what_it_tried_and_release_frees_capacity() {
    let cluster = cluster().await;
    cluster.load_yaml(CATALOGUE).await.unwrap();
    let netctl = controller(&cluster);
    let mut entries = Vec::new();
    for b in ["ar/b1", "ar/b2", "ar/b3"] {
        let o = netctl
            .mitigate(&mitigate_request(b, &latency_rules()))
            .await
            .unwrap();
        assert!(o.accepted, "{o:?}");
        entries.push(o.entry.unwrap());
    }
    assert_eq!(entries, ["slice-a", "slice-a", "express"]);
    let refused = netctl
        .mitigate(&mitigate_request("ar/b4", &latency_rules()))
        .await
        .unwrap();
    assert!(!refused.accepted);
    assert_eq!(refused.allocation_id, None);
    assert_eq!(
        refused.reason,
        "no entry of catalogue default restores compliance (latency 31ms between m1 and stadium is worse than the limit 10ms): \
         slice-a (metro-1 <-> edge-3) is at capacity 2/2 bindings; \
         express (edge-3 <-> metro-1) is at capacity 1/1 bindings; \
         far (edge-9 <-> dc): not on the path between m1 and stadium"
    );
    let paths = topology(&cluster).await.status.unwrap().activated_paths;
    let active: Vec<(&str, Vec<String>)> = paths
        .iter()
        .map(|p| (p.entry.as_str(), p.bindings.clone()))
        .collect();
    assert_eq!(
        active,
        [
            ("slice-a", vec!["ar/b1".to_string(), "ar/b2".to_string()]),
            ("express", vec!["ar/b3".to_string()]),
        ]
    );

    // Releasing one of slice-a's allocations keeps it active for the other, frees room.
    let held = catalogue(&cluster).await.status.unwrap().allocations;
    let b1 = held
        .iter()
        .find(|a| a.binding == "ar/b1")
        .unwrap()
        .id
        .clone();
    let wrong = netctl
        .release(&ReleaseRequest {
            id: b1.clone(),
            binding: Some("ar/b2".into()),
            rules: vec![],
        })
        .await;
    assert!(
        matches!(wrong, Err(NetctlError::FailedPrecondition(_))),
        "{wrong:?}"
    );
    let freed = netctl
        .release(&ReleaseRequest {
            id: b1.clone(),
            binding: Some("ar/b1".into()),
            rules: latency_rules(),
        })
        .await;
    assert_eq!(
        freed,
        Ok(Released {
            released: true,
            deactivated: false
        })
    );
    // Releasing twice is harmless.
    assert_eq!(
        netctl
            .release(&ReleaseRequest {
                id: b1,
                binding: None,
                rules: vec![],
            })
            .await
            .map(|r| r.released),
        Ok(false)
    );
    let o = netctl
        .mitigate(&mitigate_request("ar/b4", &latency_rules()))
        .await
        .unwrap();
    assert_eq!(o.entry.as_deref(), Some("slice-a"));
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn allocations_survive_a_restart_and_release_deactivates_the_path() {
    let cluster = cluster().await;
    cluster.load_yaml(CATALOGUE).await.unwrap();
    let first = controller(&cluster);
    let question = DiscoverRequest {
        rules: vec![rule("latency", "2ms", "3ms")],
        source: Endpoint::Site("stadium".into()),
        candidate_nodes: vec!["m1".into(), "e9".into(), "gone".into()],
        binding: "ar/x".into(),
    };
    let offers = first.discover(&question).await.unwrap();
    let summary: Vec<(&str, &str, &str)> = offers
        .iter()
        .map(|o| {
            (
                o.node.as_str(),
                o.entry.as_str(),
                o.expected.latency.as_str(),
            )
        })
        .collect();
    // Only express gets stadium -> m1 under 3ms (2ms); slice-a gives 5ms.
    assert_eq!(summary, [("m1", "express", "2ms")]);
    let offer = offers[0].clone();
    assert_eq!(offer.path, ["stadium", "edge-3", "metro-1"]);
    assert_eq!(offer.cost, 50.0);
    assert_eq!(offer.compliance, Compliance::Compliant);
    assert_eq!(offer.expires.to_string(), "2026-01-01T12:01:00Z");
    // Offers reserve nothing.
    assert!(
        catalogue(&cluster)
            .await
            .status
            .is_none_or(|s| s.allocations.is_empty())
    );

    let allocate = |id: &str, binding: &str| AllocateRequest {
        id: id.into(),
        binding: binding.into(),
        rules: question.rules.clone(),
    };
    let done = first.allocate(&allocate(&offer.id, "ar/x")).await.unwrap();
    assert!(done.created);
    assert_eq!(done.entry, "express");
    // Idempotent.
    assert_eq!(
        first
            .allocate(&allocate(&offer.id, "ar/x"))
            .await
            .map(|a| a.created),
        Ok(false)
    );
    let active = topology(&cluster).await.status.unwrap().activated_paths;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].entry, "express");

    // A new instance (a restart) knows the capacity is taken.
    drop(first);
    let second = controller(&cluster);
    let offers = second
        .discover(&DiscoverRequest {
            binding: "ar/y".into(),
            ..question.clone()
        })
        .await
        .unwrap();
    assert!(offers.is_empty(), "{offers:?}");
    let refused = second.allocate(&allocate(&offer.id, "ar/y")).await;
    assert!(
        matches!(&refused, Err(NetctlError::FailedPrecondition(m)) if m == &format!("offer {} is allocated to binding ar/x already", offer.id)),
        "{refused:?}"
    );
    // Another offer of the same entry (made before the allocation) finds it full.
    let other = edgeplane_core::mitigation::offer_id(
        "default",
        "express",
        "m1",
        "campus",
        &question.rules,
        offer.expires,
    );
    assert_eq!(
        second.allocate(&allocate(&other, "ar/y")).await,
        Err(NetctlError::AtCapacity(
            "catalogue default: express (edge-3 <-> metro-1) is at capacity 1/1 bindings".into()
        ))
    );
    let released = second
        .release(&ReleaseRequest {
            id: offer.id.clone(),
            binding: Some("ar/x".into()),
            rules: question.rules.clone(),
        })
        .await;
    assert_eq!(
        released,
        Ok(Released {
            released: true,
            deactivated: true
        })
    );
    let status = topology(&cluster).await.status.unwrap();
    assert!(
        status.activated_paths.is_empty(),
        "{:?}",
        status.activated_paths
    );
    assert_eq!(status.measured.len(), 1);
    assert!(
        second
            .allocate(&allocate(&other, "ar/y"))
            .await
            .is_ok_and(|a| a.created)
    );

    // Offers expire.
    tokio::time::advance(Duration::from_secs(61)).await;
    let late = edgeplane_core::mitigation::offer_id(
        "default",
        "express",
        "m1",
        "elsewhere",
        &question.rules,
        offer.expires,
    );
    assert_eq!(
        second.allocate(&allocate(&late, "ar/z")).await,
        Err(NetctlError::FailedPrecondition(format!(
            "offer {late} expired at 2026-01-01T12:01:00Z; ask Discover again"
        )))
    );
    assert!(matches!(
        second.allocate(&allocate("slice-a", "ar/z")).await,
        Err(NetctlError::InvalidArgument(_))
    ));
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_entries_are_reported_in_the_status_and_the_valid_ones_still_serve() {
    let cluster = cluster().await;
    cluster
        .load_yaml(
            "apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkPathCatalogue
metadata: {name: default}
spec:
  entries:
  - {name: slice-a, from: metro-1, to: edge-3, latency: 4ms, capacity: {bindings: 2}}
  - {name: lost, from: metro-1, to: edge-99, latency: 4ms, capacity: {bindings: 1}}
  - {name: slow, from: metro-1, to: dc, latency: 1ms, bandwidth: plenty, capacity: {bindings: 1}}
",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let netctl = controller(&cluster);
    // No catalogue entry problem is fatal: the reconciler reports them.
    assert_eq!(netctl.reconcile().await, Ok(vec![]));
    let status = catalogue(&cluster).await.status.unwrap();
    assert_eq!(status.entry_count, Some(1));
    assert_eq!(status.allocation_count, Some(0));
    let valid = &status.conditions[0];
    assert_eq!(
        (valid.type_.as_str(), valid.status.as_str()),
        ("Valid", "False")
    );
    assert_eq!(valid.reason, "InvalidEntries");
    assert_eq!(
        valid.message,
        "2 of 3 entries cannot be used: spec.entries[1].to: unknown site \"edge-99\" (not in the NetworkTopology: declare it in spec.sites or label a node with topology.kubernetes.io/zone=edge-99); \
         spec.entries[2].bandwidth: \"plenty\" is not a bit rate (expected for example 100Mbps, 1Gbps, 10MB/s, 1MiB)"
    );
    let o = netctl
        .mitigate(&mitigate_request("ar/b", &latency_rules()))
        .await
        .unwrap();
    assert_eq!(o.entry.as_deref(), Some("slice-a"));

    // Bad questions are errors naming what is wrong.
    let bad_rule = netctl
        .mitigate(&mitigate_request("ar/b", &[rule("latency", "fast", "")]))
        .await;
    assert_eq!(
        bad_rule.map_err(|e| e.to_string()),
        Err("invalid request: rules[0] (latency).request: \"fast\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)".into())
    );
    let nowhere = MitigateRequest {
        destination: Endpoint::Site("atlantis".into()),
        ..mitigate_request("ar/b", &latency_rules())
    };
    assert_eq!(
        netctl.mitigate(&nowhere).await,
        Err(NetctlError::InvalidArgument(
            "destination: no site named \"atlantis\" in the NetworkTopology".into()
        ))
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn without_a_catalogue_nothing_is_activated_and_orphans_are_released() {
    let cluster = cluster().await;
    let netctl = controller(&cluster);
    let o = netctl
        .mitigate(&mitigate_request("ar/b", &latency_rules()))
        .await
        .unwrap();
    assert!(!o.accepted);
    assert_eq!(o.reason, "no NetworkPathCatalogue named \"default\"");

    cluster.load_yaml(CATALOGUE).await.unwrap();
    let o = netctl
        .mitigate(&mitigate_request("ar/gone", &latency_rules()))
        .await
        .unwrap();
    assert!(o.accepted);
    // The binding does not exist; within the grace the allocation stays.
    assert_eq!(netctl.reconcile().await, Ok(vec![]));
    tokio::time::advance(Duration::from_secs(601)).await;
    let released = netctl.reconcile().await.unwrap();
    assert_eq!(released, [o.allocation_id.unwrap()]);
    assert!(
        topology(&cluster)
            .await
            .status
            .unwrap()
            .activated_paths
            .is_empty()
    );
    // Ten minutes on, the 30ms measurement is stale; a fresh one shows the path is gone.
    let agent = json!({
        "apiVersion": "network.edgeplane.io/v1alpha1", "kind": "NetworkTopology",
        "metadata": {"name": "default"},
        "status": {"measured": [{"from": "metro-1", "to": "edge-3", "latency": "30ms", "time": "2026-01-01T12:10:00Z"}]},
    });
    Api::<NetworkTopology>::all(cluster.client())
        .patch_status(
            "default",
            &PatchParams::apply("edgeplane-agent"),
            &Patch::Apply(&agent),
        )
        .await
        .unwrap();
    assert_eq!(latency_m1_to_stadium(&cluster).await, "31ms");
    cluster.shutdown().await;
}

/// Refusals reported, in order.
#[derive(Default)]
struct Reports(std::sync::Mutex<Vec<(String, String)>>);

impl crate::RefusalReporter for Reports {
    fn refused(&self, binding: &str, note: String) {
        self.0.lock().unwrap().push((binding.to_string(), note));
    }
}

/// A binding `ar/b` of the pod `ar/ar-0` (on node m1) and the users at the stadium.
const BINDING: &str = "apiVersion: v1
kind: Namespace
metadata: {name: ar}
---
apiVersion: v1
kind: Pod
metadata: {name: ar-0, namespace: ar}
spec:
  nodeName: m1
  containers: [{name: render, image: render:1}]
---
apiVersion: constraint.edgeplane.io/v1alpha1
kind: ConstraintPolicyBinding
metadata: {name: b, namespace: ar}
spec:
  offer: ar-offer
  targets:
    render: {namespace: ar, apiVersion: v1, kind: Pod, name: ar-0}
    users: {apiVersion: network.edgeplane.io/v1alpha1, kind: Site, name: stadium}
";

/// The in-process server over loopback gRPC, as `edgeplane netctl serve` runs it (real
/// time: sockets and paused time do not mix). Remote callers are authorised: only bindings
/// that exist, between the places they occupy; Release only by the allocating identity.
#[tokio::test]
async fn the_reference_controller_serves_over_grpc() {
    let cluster = cluster().await;
    cluster.load_yaml(CATALOGUE).await.unwrap();
    cluster.load_yaml(BINDING).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let reports = Arc::new(Reports::default());
    let server = tokio::spawn(crate::reference::serve(
        listener,
        Arc::new(controller(&cluster).with_refusal_reporter(reports.clone())),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = GrpcNetworkController::new(&url, &ClientOptions::default()).unwrap();

    // A made-up binding takes nothing.
    let fake = client
        .mitigate(&mitigate_request("ar/fake-0", &latency_rules()))
        .await;
    assert_eq!(
        fake,
        Err(NetctlError::NotFound(format!(
            "network controller at {url}: not found: binding ar/fake-0 does not exist (ConstraintPolicyBinding ar/fake-0); only existing bindings may hold paths"
        )))
    );
    assert_eq!(
        catalogue(&cluster)
            .await
            .status
            .map(|s| s.allocations)
            .unwrap_or_default(),
        vec![]
    );
    assert!(
        topology(&cluster)
            .await
            .status
            .map(|s| s.activated_paths.is_empty())
            .unwrap_or(true)
    );

    let o = client
        .mitigate(&mitigate_request("ar/b", &latency_rules()))
        .await
        .unwrap();
    assert!(o.accepted);
    assert_eq!(o.entry.as_deref(), Some("slice-a"));
    let held = catalogue(&cluster).await.status.unwrap().allocations;
    assert_eq!(held.len(), 1);
    let holder = held[0].holder.clone().unwrap();
    assert!(holder.starts_with("connection:127.0.0.1:"), "{holder}");

    // Only between the binding's places.
    let elsewhere = client
        .mitigate(&MitigateRequest {
            source: Endpoint::Node("e9".into()),
            ..mitigate_request("ar/b", &latency_rules())
        })
        .await;
    assert_eq!(
        elsewhere,
        Err(NetctlError::PermissionDenied(format!(
            "network controller at {url}: permission denied: source: node e9 runs none of binding ar/b's pods (its pods run on m1)"
        )))
    );

    // Another identity (another connection) cannot release it; a Release without an id
    // is refused; its holder can.
    let id = o.allocation_id.clone().unwrap();
    let other = GrpcNetworkController::new(&url, &ClientOptions::default()).unwrap();
    let release = |id: &str| ReleaseRequest {
        id: id.into(),
        binding: None,
        rules: vec![],
    };
    let Err(NetctlError::PermissionDenied(message)) = other.release(&release(&id)).await else {
        panic!("another identity released the allocation")
    };
    let prefix = format!(
        "network controller at {url}: permission denied: allocation {id} was made by {holder}, not by connection:127.0.0.1:"
    );
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.ends_with("; only its holder may release it"),
        "{message}"
    );
    assert_eq!(
        client.release(&release("")).await,
        Err(NetctlError::InvalidArgument(format!(
            "network controller at {url}: invalid request: id: is required"
        )))
    );
    assert_eq!(
        catalogue(&cluster).await.status.unwrap().allocations.len(),
        1
    );
    assert_eq!(
        client.release(&release(&id)).await,
        Ok(Released {
            released: true,
            deactivated: true
        })
    );
    // The refusals about the existing binding were reported (not the made-up one's).
    let reported = reports.0.lock().unwrap().clone();
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert_eq!(reported[0].0, "ar/b");
    assert_eq!(
        reported[0].1,
        format!(
            "Mitigate from {holder} refused: permission denied: source: node e9 runs none of binding ar/b's pods (its pods run on m1)"
        )
    );
    assert_eq!(reported[1].0, "ar/b");
    assert!(
        reported[1]
            .1
            .starts_with("Release from connection:127.0.0.1:"),
        "{}",
        reported[1].1
    );
    let _ = stop.send(());
    assert!(server.await.unwrap().is_ok());
    cluster.shutdown().await;
}

/// Two controllers (two replicas, or an old and a new instance) asked at once never both
/// take the last unit of capacity. (The in-process client answers without yielding, so
/// here one runs before the other; `a_write_from_a_stale_read_is_a_conflict` covers the
/// interleaved case: the resourceVersion precondition refuses the stale write, and the
/// operation decides again from a fresh read.)
#[tokio::test(start_paused = true)]
async fn concurrent_controllers_never_share_the_last_unit_of_capacity() {
    let cluster = cluster().await;
    cluster.load_yaml(CATALOGUE).await.unwrap();
    let (a, b) = (controller(&cluster), controller(&cluster));
    // Only express (1 binding) gets m1 within 3ms of the stadium.
    let tight = [rule("latency", "2ms", "3ms")];
    let (for_x, for_y) = (
        mitigate_request("ar/x", &tight),
        mitigate_request("ar/y", &tight),
    );
    let (x, y) = tokio::join!(a.mitigate(&for_x), b.mitigate(&for_y));
    let (x, y) = (x.unwrap(), y.unwrap());
    let accepted: Vec<bool> = vec![x.accepted, y.accepted];
    assert_eq!(accepted.iter().filter(|a| **a).count(), 1, "{x:?}\n{y:?}");
    let loser = if x.accepted { &y } else { &x };
    assert!(
        loser
            .reason
            .contains("express (edge-3 <-> metro-1) is at capacity 1/1 bindings"),
        "{}",
        loser.reason
    );
    let held = catalogue(&cluster).await.status.unwrap().allocations;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].entry, "express");
    cluster.shutdown().await;
}

/// The write from a stale read is refused (and changes nothing): what makes the retry in
/// `transact` decide again from a fresh read.
#[tokio::test(start_paused = true)]
async fn a_write_from_a_stale_read_is_a_conflict() {
    let cluster = cluster().await;
    cluster.load_yaml(CATALOGUE).await.unwrap();
    let (a, b) = (controller(&cluster), controller(&cluster));
    let stale = a.load().await.unwrap();
    assert!(stale.allocations.is_empty());
    let o = b
        .mitigate(&mitigate_request("ar/y", &latency_rules()))
        .await
        .unwrap();
    assert!(o.accepted);
    let written = a.write(&stale, Vec::new()).await;
    assert!(matches!(
        written,
        Err(crate::reference::WriteError::Conflict)
    ));
    assert_eq!(
        catalogue(&cluster).await.status.unwrap().allocations.len(),
        1
    );
    cluster.shutdown().await;
}
