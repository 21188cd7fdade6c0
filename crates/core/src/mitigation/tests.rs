use super::*;
use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{
    AllocationPurpose, Compliance, ConstraintPolicyRule, NetworkPathCatalogue, NetworkTopology,
    PathAllocation,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::network::{Location, NetworkGraph, NodeInfo, PathMetric, SiteId};

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

fn now() -> Timestamp {
    "2026-01-01T12:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    match serde_saphyr::from_str(text) {
        Ok(t) => t,
        Err(e) => panic!("bad test input: {e}\n{text}"),
    }
}

fn node(name: &str, site: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        labels: BTreeMap::from([(DEFAULT_SITE_LABEL.to_string(), site.to_string())]),
    }
}

fn graph_of(topology: &NetworkTopology) -> NetworkGraph {
    let nodes = [
        node("m1", "metro-1"),
        node("e3", "edge-3"),
        node("e9", "edge-9"),
        node("d", "dc"),
    ];
    match NetworkGraph::build(Some(topology), &nodes, now()) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

fn graph() -> NetworkGraph {
    graph_of(&yaml(TOPOLOGY))
}

fn rule(name: &str, request: &str, limit: &str) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: name.into(),
        request: request.into(),
        limit: (!limit.is_empty()).then(|| limit.to_string()),
    }
}

fn rules(list: &[ConstraintPolicyRule]) -> PathRules {
    match PathRules::parse(list) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn allocation(id: &str, entry: &str, binding: &str, purpose: AllocationPurpose) -> PathAllocation {
    PathAllocation {
        id: id.into(),
        entry: entry.into(),
        binding: binding.into(),
        purpose,
        bandwidth: None,
        allocated_at: Time(now()),
        holder: None,
    }
}

fn node_loc(g: &NetworkGraph, name: &str) -> Location {
    Location::Node(g.node_id(name).unwrap_or(crate::network::NodeId(u32::MAX)))
}

fn site_loc(g: &NetworkGraph, name: &str) -> Location {
    Location::Site(g.site_id(name).unwrap_or(SiteId(u32::MAX)))
}

fn mitigate(
    g: &NetworkGraph,
    catalogue: &Catalogue,
    allocations: &[PathAllocation],
    rules: &PathRules,
) -> Mitigation {
    decide_mitigation(&MitigationInput {
        graph: g,
        catalogue,
        allocations,
        binding: "ar/render-stadium",
        source: (node_loc(g, "m1"), "m1"),
        destination: (site_loc(g, "stadium"), "stadium"),
        rules,
    })
}

fn chosen(decision: &Mitigation, catalogue: &Catalogue) -> String {
    match decision {
        Mitigation::Allocate { entry, .. } => catalogue.entries[*entry].name.clone(),
        other => panic!("expected an allocation, got {other:?}"),
    }
}

#[test]
fn the_cheapest_entry_that_restores_compliance_is_chosen() {
    let g = graph();
    let catalogue = Catalogue::parse(&yaml(CATALOGUE), &g);
    assert!(catalogue.problems.is_empty(), "{:?}", catalogue.problems);
    let r = rules(&[rule("latency", "5ms", "10ms"), rule("jitter", "1ms", "2ms")]);
    let decision = mitigate(&g, &catalogue, &[], &r);
    // far is cheaper but not on the path; slice-a (cost 10) beats express (cost 50).
    assert_eq!(chosen(&decision, &catalogue), "slice-a");
    let Mitigation::Allocate {
        judgement,
        replaces,
        ..
    } = decision
    else {
        unreachable!()
    };
    assert_eq!(replaces, None);
    assert_eq!(judgement.compliance, Compliance::Compliant);
    let expected = judgement.expected().map(|m| m.describe());
    assert_eq!(
        expected.as_deref(),
        Some("latency 5ms, jitter 300us, bandwidth 1Gbps, loss 0%")
    );
    let sites: Vec<&str> = judgement
        .forward
        .iter()
        .flat_map(|r| r.sites.iter().map(|s| g.site_name(*s)))
        .collect();
    assert_eq!(sites, ["metro-1", "edge-3", "stadium"]);
}

#[test]
fn full_entries_are_skipped_and_an_exhausted_catalogue_is_refused_with_what_was_tried() {
    let g = graph();
    let catalogue = Catalogue::parse(&yaml(CATALOGUE), &g);
    let r = rules(&[rule("latency", "5ms", "10ms")]);
    let mut held = vec![
        allocation("a1", "slice-a", "ar/other-1", AllocationPurpose::Mitigate),
        allocation("a2", "slice-a", "ar/other-2", AllocationPurpose::Discover),
    ];
    assert_eq!(
        chosen(&mitigate(&g, &catalogue, &held, &r), &catalogue),
        "express"
    );
    held.push(allocation(
        "a3",
        "express",
        "ar/other-3",
        AllocationPurpose::Mitigate,
    ));
    let Mitigation::Refuse { reason } = mitigate(&g, &catalogue, &held, &r) else {
        panic!("expected a refusal")
    };
    assert_eq!(
        reason,
        "no entry of catalogue default restores compliance (latency 31ms between m1 and stadium is worse than the limit 10ms): \
         slice-a (metro-1 <-> edge-3) is at capacity 2/2 bindings; \
         express (edge-3 <-> metro-1) is at capacity 1/1 bindings; \
         far (edge-9 <-> dc): not on the path between m1 and stadium"
    );
    held.push(allocation(
        "a4",
        "far",
        "ar/other-4",
        AllocationPurpose::Mitigate,
    ));
    let Mitigation::Refuse { reason } = mitigate(&g, &catalogue, &held, &r) else {
        panic!("expected a refusal")
    };
    assert!(
        reason.starts_with("catalogue default is exhausted (latency 31ms"),
        "{reason}"
    );
}

#[test]
fn mitigating_again_keeps_the_allocation_held() {
    let g = graph();
    let catalogue = Catalogue::parse(&yaml(CATALOGUE), &g);
    let r = rules(&[rule("latency", "5ms", "10ms")]);
    let held = [allocation(
        "mitigate.slice-a.x",
        "slice-a",
        "ar/render-stadium",
        AllocationPurpose::Mitigate,
    )];
    match mitigate(&g, &catalogue, &held, &r) {
        Mitigation::Held {
            id,
            entry,
            judgement,
        } => {
            assert_eq!(
                (id.as_str(), entry.as_str()),
                ("mitigate.slice-a.x", "slice-a")
            );
            assert_eq!(judgement.compliance, Compliance::Compliant);
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Held but no longer enough (the rule is tighter now): moved to an entry that is.
    let tight = rules(&[rule("latency", "2ms", "3ms")]);
    match mitigate(&g, &catalogue, &held, &tight) {
        Mitigation::Allocate {
            entry, replaces, ..
        } => {
            assert_eq!(catalogue.entries[entry].name, "express");
            assert_eq!(replaces.as_deref(), Some("mitigate.slice-a.x"));
        }
        other => panic!("expected a move, got {other:?}"),
    }
}

#[test]
fn paths_the_planner_allocated_for_the_binding_count_as_its_own() {
    let g = graph();
    let catalogue = Catalogue::parse(&yaml(CATALOGUE), &g);
    let r = rules(&[rule("latency", "5ms", "10ms")]);
    // Another binding's slice-a is not this binding's: it must hold one itself.
    let others = [allocation(
        "a1",
        "slice-a",
        "ar/other",
        AllocationPurpose::Discover,
    )];
    assert_eq!(
        chosen(&mitigate(&g, &catalogue, &others, &r), &catalogue),
        "slice-a"
    );
    // Its own (from Discover) is enough: nothing more is allocated.
    let own = [allocation(
        "offer.slice-a.1.x",
        "slice-a",
        "ar/render-stadium",
        AllocationPurpose::Discover,
    )];
    assert!(matches!(
        mitigate(&g, &catalogue, &own, &r),
        Mitigation::NotNeeded { .. }
    ));
    // Not enough any more: another entry is added beside it, slice-a is not taken twice.
    let tight = rules(&[rule("latency", "2ms", "3ms")]);
    match mitigate(&g, &catalogue, &own, &tight) {
        Mitigation::Allocate {
            entry, replaces, ..
        } => {
            assert_eq!(catalogue.entries[entry].name, "express");
            assert_eq!(replaces, None);
        }
        other => panic!("expected an allocation, got {other:?}"),
    }
}

#[test]
fn nothing_is_allocated_when_the_rules_hold_already() {
    let g = graph();
    let catalogue = Catalogue::parse(&yaml(CATALOGUE), &g);
    let r = rules(&[rule("latency", "20ms", "40ms"), rule("cpu", "4", "")]);
    assert_eq!(r.ignored, ["cpu"]);
    match mitigate(&g, &catalogue, &[], &r) {
        Mitigation::NotNeeded { judgement } => {
            assert_eq!(judgement.compliance, Compliance::Limit);
            assert_eq!(
                judgement.reason,
                "latency 31ms between m1 and stadium is worse than the request 20ms but within the limit 40ms"
            );
        }
        other => panic!("expected NotNeeded, got {other:?}"),
    }
    let only_cpu = rules(&[rule("cpu", "4", "")]);
    let Mitigation::Refuse { reason } = mitigate(&g, &catalogue, &[], &only_cpu) else {
        panic!("expected a refusal")
    };
    assert_eq!(
        reason,
        "none of the rules is a network rule (latency, jitter, bandwidth, packet-loss) (not network rules, ignored: cpu)"
    );
}

#[test]
fn at_equal_cost_fewer_rules_in_limit_win() {
    let g = graph();
    let mut spec: NetworkPathCatalogue = yaml(CATALOGUE);
    for e in &mut spec.spec.entries {
        e.cost = Some(5);
    }
    let catalogue = Catalogue::parse(&spec, &g);
    // slice-a gives 5ms (Limit against 3ms / 6ms), express 2ms (Compliant).
    let r = rules(&[rule("latency", "3ms", "6ms")]);
    assert_eq!(
        chosen(&mitigate(&g, &catalogue, &[], &r), &catalogue),
        "express"
    );
}

#[test]
fn bandwidth_capacity_counts_what_allocations_reserve() {
    let g = graph();
    let spec: NetworkPathCatalogue = yaml(
        "apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkPathCatalogue
metadata: {name: default}
spec:
  entries:
  - {name: slice-a, from: metro-1, to: edge-3, latency: 4ms, bandwidth: 1Gbps, capacity: {bandwidth: 1Gbps}}
",
    );
    let catalogue = Catalogue::parse(&spec, &g);
    let r = rules(&[
        rule("latency", "5ms", "10ms"),
        rule("bandwidth", "500Mbps", "100Mbps"),
    ]);
    assert_eq!(r.bandwidth_reservation_bps(), 5e8);
    let mut taken = allocation("a1", "slice-a", "ar/x", AllocationPurpose::Discover);
    taken.bandwidth = Some("400Mbps".into());
    assert_eq!(
        chosen(
            &mitigate(&g, &catalogue, std::slice::from_ref(&taken), &r),
            &catalogue
        ),
        "slice-a"
    );
    taken.bandwidth = Some("600Mbps".into());
    let Mitigation::Refuse { reason } = mitigate(&g, &catalogue, &[taken], &r) else {
        panic!("expected a refusal")
    };
    assert!(
        reason.ends_with("slice-a (metro-1 <-> edge-3) is at capacity: 600Mbps of 1Gbps reserved, 500Mbps more asked"),
        "{reason}"
    );
}

#[test]
fn invalid_entries_are_reported_with_their_field_and_left_out() {
    let g = graph();
    let spec: NetworkPathCatalogue = yaml(
        "apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkPathCatalogue
metadata: {name: default}
spec:
  entries:
  - {name: good, from: metro-1, to: edge-3, latency: 4ms, capacity: {bindings: 1}}
  - {name: lost, from: metro-1, to: edge-99, latency: 4ms, capacity: {bindings: 1}}
  - {name: slow, from: metro-1, to: dc, latency: fast, capacity: {bindings: 1}}
  - {name: good, from: dc, to: edge-9, latency: 1ms, capacity: {bindings: 1}}
  - {name: loop, from: dc, to: dc, latency: 1ms, capacity: {bindings: 1}}
  - {name: free, from: dc, to: edge-3, latency: 1ms, capacity: {}}
  - {name: pricey, from: dc, to: edge-3, latency: 1ms, loss: 120%, cost: -3, capacity: {bandwidth: lots}}
",
    );
    let catalogue = Catalogue::parse(&spec, &g);
    let names: Vec<&str> = catalogue.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["good"]);
    let problems: Vec<String> = catalogue.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems,
        [
            "spec.entries[1].to: unknown site \"edge-99\" (not in the NetworkTopology: declare it in spec.sites or label a node with topology.kubernetes.io/zone=edge-99)",
            "spec.entries[2].latency: \"fast\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)",
            "spec.entries[3].name: entry \"good\" is declared twice (also spec.entries[0])",
            "spec.entries[4].to: a path joins two different sites (both ends are \"dc\")",
            "spec.entries[5].capacity: gives neither bindings nor bandwidth (a path's capacity is finite)",
            "spec.entries[6].cost: -3 is negative",
            "spec.entries[6].capacity.bandwidth: \"lots\" is not a bit rate (expected for example 100Mbps, 1Gbps, 10MB/s, 1MiB)",
            "spec.entries[6].loss: \"120%\" is not a ratio (expected for example 0.1%, 0.001): a ratio is at most 1 (100%)",
        ]
    );
    // Without the graph, everything but the unknown site.
    assert_eq!(check_catalogue(&spec).len(), problems.len() - 1);
}

#[test]
fn discover_offers_the_entries_that_make_a_candidate_suitable() {
    let g = graph();
    let catalogue = Catalogue::parse(&yaml(CATALOGUE), &g);
    let r = rules(&[rule("latency", "5ms", "10ms")]);
    let candidates = [
        (node_loc(&g, "m1"), "m1"),
        (node_loc(&g, "e9"), "e9"),
        (node_loc(&g, "e3"), "e3"),
    ];
    let plans = discover(&DiscoverInput {
        graph: &g,
        catalogue: &catalogue,
        allocations: &[],
        source: (site_loc(&g, "stadium"), "stadium"),
        candidates: &candidates,
        rules: &r,
    });
    let offers: Vec<(&str, &str, String)> = plans
        .iter()
        .map(|p| {
            (
                candidates[p.candidate].1,
                catalogue.entries[p.entry].name.as_str(),
                p.judgement
                    .expected()
                    .map(|m| m.value(PathMetric::Latency).to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    // e3 needs no path (it is where the users are), e9 is too far whatever is activated;
    // m1 is made suitable by slice-a (cheaper) or express.
    assert_eq!(
        offers,
        [
            ("m1", "slice-a", "5ms".to_string()),
            ("m1", "express", "2ms".to_string())
        ]
    );
}

#[test]
fn ids_name_their_entry_and_expiry() {
    let rules = [rule("latency", "5ms", "10ms")];
    let expires: Timestamp = "2026-01-01T12:01:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let id = offer_id("default", "slice-a", "m1", "stadium", &rules, expires);
    assert!(id.starts_with("offer.slice-a.1767268860."), "{id}");
    assert_eq!(parse_offer_id(&id), Some(("slice-a".to_string(), expires)));
    assert_ne!(
        id,
        offer_id("default", "slice-a", "m2", "stadium", &rules, expires)
    );
    for bad in [
        "",
        "offer",
        "offer.slice-a",
        "offer.Slice.1.x",
        "offer.a.soon.x",
        "mitigate.a.b",
    ] {
        assert_eq!(parse_offer_id(bad), None, "{bad}");
    }
    let m = mitigation_id("default", "slice-a", "ar/b");
    assert_eq!(m, mitigation_id("default", "slice-a", "ar/b"));
    assert_ne!(m, mitigation_id("default", "slice-a", "ar/c"));
    assert!(m.starts_with("mitigate.slice-a."));
}

#[test]
fn active_paths_are_the_entries_in_use_with_their_bindings() {
    let g = graph();
    let spec: NetworkPathCatalogue = yaml(CATALOGUE);
    let catalogue = Catalogue::parse(&spec, &g);
    let allocations = [
        allocation("a1", "slice-a", "ar/z", AllocationPurpose::Mitigate),
        allocation("a2", "slice-a", "ar/a", AllocationPurpose::Discover),
        allocation("a3", "gone", "ar/q", AllocationPurpose::Mitigate),
    ];
    let paths = activated_paths(&spec, &catalogue, &allocations);
    assert_eq!(paths.len(), 1);
    assert_eq!(
        (
            paths[0].entry.as_str(),
            paths[0].latency.as_str(),
            paths[0].jitter.as_deref()
        ),
        ("slice-a", "4ms", Some("100us"))
    );
    assert_eq!(paths[0].bindings, ["ar/a", "ar/z"]);
    assert_eq!(paths[0].catalogue, "default");
    // The graph with the path activated is what the decision predicted.
    let mut topology: NetworkTopology = yaml(TOPOLOGY);
    if let Some(status) = topology.status.as_mut() {
        status.activated_paths = paths;
    }
    let activated = graph_of(&topology);
    let m = activated.metrics(node_loc(&activated, "m1"), site_loc(&activated, "stadium"));
    assert_eq!(m.map(|m| m.latency_ns), Some(5e6));
}

#[test]
fn orphaned_allocations_are_those_of_gone_bindings_past_the_grace() {
    let mut old = allocation("a1", "slice-a", "ar/gone", AllocationPurpose::Mitigate);
    old.allocated_at = Time(
        "2026-01-01T11:50:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH),
    );
    let fresh = allocation("a2", "slice-a", "ar/gone-too", AllocationPurpose::Discover);
    let kept = allocation("a3", "slice-a", "ar/here", AllocationPurpose::Mitigate);
    let all = [old, fresh, kept];
    let bindings = BTreeSet::from(["ar/here".to_string()]);
    let found: Vec<&str> = orphaned(&all, &bindings, now(), std::time::Duration::from_secs(300))
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(found, ["a1"]);
}
