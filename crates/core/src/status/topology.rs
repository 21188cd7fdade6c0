//! A topology's status summary: `siteCount`, `linkCount`, `measuredLinkCount`,
//! `observedGeneration` and `Valid` with the first problem, so `kubectl get ntop` tells
//! whether the network model is usable. `status.measured` (the measurement agent's) and
//! `status.activatedPaths` (the network controller's) are carried, never written here.

use edgeplane_api::{LinkBandwidth, NetworkTopology, NetworkTopologyStatus};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use serde::Serialize;

use super::{CONDITION_VALID, OwnedStatus, condition};
use crate::evaluate::ClusterView;
use crate::network::{Reservations, check_topology};
use crate::values::Value;

/// The summary of a topology over the current nodes (`measured` is carried over).
pub fn topology_status(
    topology: &NetworkTopology,
    nodes: &[Node],
    previous: &NetworkTopologyStatus,
    now: Timestamp,
) -> NetworkTopologyStatus {
    let generation = topology.metadata.generation;
    let link_count = i32::try_from(topology.spec.links.len()).unwrap_or(i32::MAX);
    let first_problem = check_topology(topology)
        .into_iter()
        .next()
        .map(|e| e.to_string());
    let built = match first_problem {
        Some(problem) => Err(problem),
        None => ClusterView::build(Some(topology), nodes, &[], now).map_err(|e| e.to_string()),
    };
    let (site_count, measured, cond) = match &built {
        Ok(view) => {
            let graph = view.graph();
            let sites = graph.site_count();
            (
                Some(i32::try_from(sites).unwrap_or(i32::MAX)),
                Some(i32::try_from(graph.measurements_used()).unwrap_or(i32::MAX)),
                (
                    "True",
                    "Built",
                    format!(
                        "{sites} site{}, {link_count} link{}, {} node{}",
                        if sites == 1 { "" } else { "s" },
                        if link_count == 1 { "" } else { "s" },
                        graph.node_count(),
                        if graph.node_count() == 1 { "" } else { "s" }
                    ),
                ),
            )
        }
        Err(problem) => (
            previous.site_count,
            previous.measured_link_count,
            ("False", "InvalidTopology", problem.clone()),
        ),
    };
    NetworkTopologyStatus {
        measured: previous.measured.clone(),
        activated_paths: previous.activated_paths.clone(),
        site_count,
        link_count: Some(link_count),
        measured_link_count: measured,
        observed_generation: generation,
        bandwidth: previous.bandwidth.clone(),
        conditions: vec![condition(
            &previous.conditions,
            CONDITION_VALID,
            cond.0,
            cond.1,
            &cond.2,
            now,
            generation,
        )],
    }
}

/// `status.bandwidth`: each link the reservations of `view` use, by (from, to), its
/// capacity, reserved total and what is available (docs/network.md).
pub fn link_bandwidth(view: &ClusterView) -> Vec<LinkBandwidth> {
    link_bandwidth_of(view.graph(), view.reservations())
}

fn link_bandwidth_of(graph: &crate::network::NetworkGraph, r: &Reservations) -> Vec<LinkBandwidth> {
    let rate = |bps: f64| Value::bits_per_second(bps).to_string();
    let finite = |bps: f64| bps.is_finite().then(|| rate(bps));
    r.links()
        .iter()
        .map(|l| LinkBandwidth {
            from: graph.site_name(l.from).to_string(),
            to: graph.site_name(l.to).to_string(),
            capacity: finite(l.capacity_bps),
            reserved: rate(l.reserved_bps),
            available: finite(l.available_bps()),
            demands: i32::try_from(l.demands).unwrap_or(i32::MAX),
            oversubscribed: l.oversubscribed(),
        })
        .collect()
}

/// The fields of a topology's status the topology controller owns: the summary without
/// `measured` and `activatedPaths`, so applying it never takes those from their writers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TopologySummary(NetworkTopologyStatus);

impl TopologySummary {
    pub fn of(status: &NetworkTopologyStatus) -> TopologySummary {
        TopologySummary(NetworkTopologyStatus {
            measured: Vec::new(),
            activated_paths: Vec::new(),
            ..status.clone()
        })
    }
}

impl OwnedStatus for TopologySummary {
    type Object = NetworkTopology;
}

/// Equal in the fields the topology controller writes.
pub fn same_summary(a: &NetworkTopologyStatus, b: &NetworkTopologyStatus) -> bool {
    TopologySummary::of(a) == TopologySummary::of(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{Demand, Location, NetworkGraph, NodeInfo};

    #[test]
    fn link_bandwidth_lists_each_direction_used_with_its_figures() {
        let topology: NetworkTopology = serde_saphyr::from_str(
            r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites: [{name: stadium, transit: false}]
  links:
  - {from: stadium, to: edge-1, latency: 1ms, bandwidth: 1Gbps, oneWay: true}
  - {from: edge-1, to: stadium, latency: 1ms, oneWay: true}
"#,
        )
        .expect("topology");
        let node = NodeInfo {
            name: "e1".into(),
            labels: [(
                "topology.kubernetes.io/zone".to_string(),
                "edge-1".to_string(),
            )]
            .into(),
        };
        let graph =
            NetworkGraph::build(Some(&topology), &[node], Timestamp::UNIX_EPOCH).expect("graph");
        let e1 = Location::Node(graph.node_id("e1").expect("e1"));
        let stadium = Location::Site(graph.site_id("stadium").expect("stadium"));
        let demand = |from, to| Demand {
            owner: "tv/x".into(),
            from,
            to,
            request_bps: 1e9,
            limit_bps: 4e8,
        };
        let demands: Vec<Demand> = (0..3)
            .flat_map(|_| [demand(e1, stadium), demand(stadium, e1)])
            .collect();
        let reserved = Reservations::compute(&graph, &demands);
        let shown = link_bandwidth_of(&graph, &reserved);
        assert_eq!(
            shown,
            vec![
                LinkBandwidth {
                    from: "edge-1".into(),
                    to: "stadium".into(),
                    capacity: None,
                    reserved: "3Gbps".into(),
                    available: None,
                    demands: 3,
                    oversubscribed: false,
                },
                LinkBandwidth {
                    from: "stadium".into(),
                    to: "edge-1".into(),
                    capacity: Some("1Gbps".into()),
                    reserved: "1.2Gbps".into(),
                    available: Some("0bps".into()),
                    demands: 3,
                    oversubscribed: true,
                },
            ]
        );
    }
}
