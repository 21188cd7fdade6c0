use std::collections::BTreeMap;

use edgeplane_api::network::DEFAULT_SITE_LABEL;
use edgeplane_api::{
    ChainConstraints, ChainEnd, Compliance, ConstraintPolicyRule, Hop, InterfaceBinding,
    InterfaceStatus, NetworkFunction, NetworkFunctionSpec, NetworkFunctionStatus, NetworkTopology,
    NfRuntime, ReplicaStatus, ServiceChain, ServiceChainSpec,
};
use jiff::Timestamp;

use super::*;
use crate::network::{NetworkGraph, NodeInfo};
use crate::nf::Port;

fn now() -> Timestamp {
    "2026-12-07T10:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn graph() -> NetworkGraph {
    let topology: NetworkTopology = serde_saphyr::from_str(
        "metadata: {name: default}
spec:
  sameNode: {latency: 20us, jitter: 2us}
  intraSite: {latency: 200us, jitter: 20us}
  sites: [{name: ran-3, transit: false}, {name: core-gw, transit: false}]
  links:
  - {from: ran-3, to: edge-a, latency: 300us, jitter: 30us}
  - {from: edge-a, to: core-gw, latency: 400us}
",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let nodes: Vec<NodeInfo> = ["e1", "e2"]
        .into_iter()
        .map(|n| NodeInfo {
            name: n.into(),
            labels: BTreeMap::from([(DEFAULT_SITE_LABEL.to_string(), "edge-a".to_string())]),
        })
        .collect();
    NetworkGraph::build(Some(&topology), &nodes, now()).unwrap_or_else(|e| panic!("{e}"))
}

/// An NF with `replicas`, its replicas on `nodes` with the interfaces `attached`.
fn nf(name: &str, replicas: i32, placed: &[(Option<&str>, &[&str])]) -> NetworkFunction {
    let mut nf = NetworkFunction::new(
        name,
        NetworkFunctionSpec {
            runtime: if name == "fw" {
                NfRuntime::VirtualMachine
            } else {
                NfRuntime::Container
            },
            image: format!("{name}:1"),
            replicas,
            resources: BTreeMap::new(),
            interfaces: vec![],
            requires: vec![],
            pod_template: None,
            vm_template: None,
        },
    );
    nf.metadata.namespace = Some("upf".into());
    nf.status = Some(NetworkFunctionStatus {
        replicas: placed
            .iter()
            .enumerate()
            .map(|(i, (node, attached))| ReplicaStatus {
                name: format!("{name}-{i}"),
                node: node.map(str::to_string),
                phase: Some("Running".into()),
                interfaces: attached
                    .iter()
                    .map(|a| InterfaceStatus {
                        name: a.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    });
    nf
}

fn rule(name: &str, request: &str, limit: &str) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: name.into(),
        request: request.into(),
        limit: Some(limit.into()),
    }
}

fn chain(hops: &[(&str, &str)]) -> ServiceChain {
    let mut c = ServiceChain::new(
        "up",
        ServiceChainSpec {
            hops: hops
                .iter()
                .map(|(h, f)| Hop {
                    name: h.to_string(),
                    network_function: f.to_string(),
                })
                .collect(),
            ingress: Some(ChainEnd {
                site: "ran-3".into(),
            }),
            egress: Some(ChainEnd {
                site: "core-gw".into(),
            }),
            network: None,
            placement: None,
            constraints: Some(ChainConstraints {
                end_to_end: vec![rule("latency", "500us", "1ms")],
                per_link: vec![rule("jitter", "50us", "100us")],
            }),
        },
    );
    c.metadata.namespace = Some("upf".into());
    c.metadata.uid = Some("uid-up".into());
    c
}

fn nfs() -> BTreeMap<String, NetworkFunction> {
    [
        nf(
            "fw",
            2,
            &[(Some("e1"), &["up-out"]), (Some("e2"), &["up-out"])],
        ),
        nf("dpi", 2, &[(Some("e1"), &["up-in", "up-out"]), (None, &[])]),
        nf("nat", 2, &[(Some("e2"), &["up-in"]), (None, &[])]),
    ]
    .into_iter()
    .map(|n| (n.metadata.name.clone().unwrap_or_default(), n))
    .collect()
}

#[test]
fn a_three_hop_chain_gets_links_latencies_and_lane_bindings() {
    let nfs = nfs();
    let graph = graph();
    let c = chain(&[("fw", "fw"), ("dpi", "dpi"), ("nat", "nat")]);
    let decision = decide(
        &c,
        &ChainFacts {
            nfs: &|n| nfs.get(n).cloned(),
            graph: Some(&graph),
            binding_status: &|_| None,
            now: now(),
        },
    );
    assert!(decision.errors.is_empty());
    let nads: Vec<(String, String)> = decision
        .nads
        .iter()
        .map(|n| {
            let config: serde_json::Value =
                serde_json::from_str(n.spec.config.as_deref().unwrap_or_default())
                    .unwrap_or_default();
            (
                n.metadata.name.clone().unwrap_or_default(),
                config["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // Lane 0: fw and dpi share e1 (bridge), nat is on e2 (macvlan); lane 1 is not placed.
    assert_eq!(
        nads,
        [
            ("up-0-fw-dpi".to_string(), "bridge".to_string()),
            ("up-0-dpi-nat".to_string(), "macvlan".to_string()),
            ("up-1-fw-dpi".to_string(), "macvlan".to_string()),
            ("up-1-dpi-nat".to_string(), "macvlan".to_string()),
        ]
    );
    let bridge: serde_json::Value =
        serde_json::from_str(decision.nads[0].spec.config.as_deref().unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(bridge["cniVersion"], "0.3.1");
    assert_eq!(bridge["name"], "up-0-fw-dpi");
    assert!(
        bridge["bridge"]
            .as_str()
            .is_some_and(|b| b.len() <= 15 && b.starts_with("sc"))
    );
    assert_eq!(decision.nads[0].kind, "NetworkAttachmentDefinition");
    assert_eq!(decision.nads[0].metadata.namespace.as_deref(), Some("upf"));

    let status = &decision.status;
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.path.as_deref(), Some("ran-3>fw>dpi>nat>core-gw"));
    assert_eq!(status.lane_count, Some(2));
    assert_eq!(status.ready_lanes, Some(1));
    // ran-3 -> e1 300us, e1 -> e1 20us, e1 -> e2 200us, e2 -> core-gw 400us.
    assert_eq!(status.worst_latency.as_deref(), Some("920us"));
    assert_eq!(status.reason.as_deref(), Some("not placed: dpi-1, nat-1"));
    let lane0 = &status.lanes[0];
    type Link<'a> = (&'a str, &'a str, bool, Option<&'a str>, Option<&'a str>);
    let links: Vec<Link> = lane0
        .links
        .iter()
        .map(|l| {
            (
                l.from.as_str(),
                l.to.as_str(),
                l.ready,
                l.cni.as_deref(),
                l.latency.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        links,
        [
            ("fw", "dpi", true, Some("bridge"), Some("20us")),
            ("dpi", "nat", true, Some("macvlan"), Some("200us")),
        ]
    );
    let e2e = lane0.end_to_end.clone().unwrap_or_default();
    assert_eq!(e2e.latency.as_deref(), Some("920us"));
    assert_eq!(e2e.compliance, Compliance::Limit);
    assert_eq!(
        status.lanes[1].end_to_end.as_ref().map(|e| e.compliance),
        Some(Compliance::Pending)
    );
    assert!(!status.lanes[1].links[0].ready);

    let lane0_binding = &decision.bindings[0];
    assert_eq!(
        lane0_binding.binding.metadata.name.as_deref(),
        Some("up-lane-0")
    );
    let roles: Vec<String> = lane0_binding
        .binding
        .spec
        .targets
        .iter()
        .map(|(role, t)| format!("{role}={t}"))
        .collect();
    assert_eq!(
        roles,
        [
            "egress=Site core-gw",
            "hop-dpi=NetworkFunction upf/dpi",
            "hop-fw=NetworkFunction upf/fw",
            "hop-nat=NetworkFunction upf/nat",
            "ingress=Site ran-3",
        ]
    );
    let details: Vec<(String, String, Compliance, Option<String>)> = lane0_binding
        .evaluation
        .status
        .details
        .iter()
        .flat_map(|p| {
            p.rule_details.iter().map(|r| {
                (
                    p.policy.clone(),
                    r.rule.clone(),
                    r.compliance,
                    r.value.clone(),
                )
            })
        })
        .collect();
    assert_eq!(
        details,
        [
            (
                "endToEnd".into(),
                "latency".into(),
                Compliance::Limit,
                Some("920us".into())
            ),
            (
                "perLink".into(),
                "jitter".into(),
                Compliance::Compliant,
                Some("20us".into())
            ),
        ]
    );
}

#[test]
fn hops_get_ports_on_the_links_of_their_lane() {
    let c = chain(&[("fw", "fw"), ("dpi", "dpi"), ("nat", "nat")]);
    let port = |name: &str, network: &str| Port {
        name: name.into(),
        network: network.into(),
        binding: InterfaceBinding::Bridge,
    };
    assert_eq!(
        ports(&c, "dpi", 2),
        [
            vec![
                port("up-in", "upf/up-0-fw-dpi"),
                port("up-out", "upf/up-0-dpi-nat")
            ],
            vec![
                port("up-in", "upf/up-1-fw-dpi"),
                port("up-out", "upf/up-1-dpi-nat")
            ],
        ]
    );
    assert_eq!(
        ports(&c, "fw", 1),
        [vec![port("up-out", "upf/up-0-fw-dpi")]]
    );
    assert_eq!(ports(&c, "other", 1), Vec::<Vec<Port>>::new());
    let nfs = nfs();
    let merged = ports_of(&nfs["nat"], &[&c], &|_| false);
    assert_eq!(merged, [vec![], vec![]], "an invalid chain wires nothing");
    // Too long for a name: cut, with a hash of the whole so that links stay apart.
    let long = link_network(
        "a-very-long-chain-name-of-forty-chars-xx",
        12,
        "firewall-number-one",
        "deep-inspection",
    );
    assert_eq!(
        long,
        "a-very-long-chain-name-of-forty-chars-xx-12-firewall-05f283f6d7"
    );
    assert_ne!(
        long,
        link_network(
            "a-very-long-chain-name-of-forty-chars-xx",
            12,
            "firewall-number-one",
            "dpi"
        )
    );
}

#[test]
fn a_bad_chain_creates_nothing_and_names_every_field() {
    let mut nfs = nfs();
    nfs.insert("nat".into(), nf("nat", 3, &[]));
    let graph = graph();
    let mut c = chain(&[
        ("fw", "fw"),
        ("fw", "dpi"),
        ("x", "dpi"),
        ("nat", "nat"),
        ("gone", "missing"),
    ]);
    c.spec.egress = Some(ChainEnd {
        site: "nowhere".into(),
    });
    c.spec.constraints = Some(ChainConstraints {
        end_to_end: vec![rule("cpu", "1", "2"), rule("latency", "fast", "1ms")],
        per_link: vec![],
    });
    let decision = decide(
        &c,
        &ChainFacts {
            nfs: &|n| nfs.get(n).cloned(),
            graph: Some(&graph),
            binding_status: &|_| None,
            now: now(),
        },
    );
    assert_eq!(
        decision
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "spec.hops[1].name: hop \"fw\" appears twice (also spec.hops[0])",
            "spec.hops[2].networkFunction: network function \"dpi\" is already hop \"fw\"; traffic passes a function once",
            "spec.hops[3].networkFunction: NetworkFunction nat has 3 replicas, hop \"fw\"'s has 2; lane i joins replica i of every hop",
            "spec.hops[4].networkFunction: NetworkFunction upf/missing does not exist",
            "spec.egress.site: site \"nowhere\" is not in the NetworkTopology",
            "spec.constraints.endToEnd[0]: rule \"cpu\" cannot be judged along a lane (one of: latency, jitter, bandwidth, packet-loss)",
            "spec.constraints.endToEnd[1]: rule latency: request: \"fast\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h)",
        ]
    );
    assert!(decision.nads.is_empty() && decision.bindings.is_empty());
    assert_eq!(decision.status.phase.as_deref(), Some("Invalid"));
    assert_eq!(
        decision.status.reason.as_deref(),
        Some("spec.hops[1].name: hop \"fw\" appears twice (also spec.hops[0])")
    );
    assert_eq!(decision.status.conditions[0].type_, "Valid");
    assert_eq!(decision.status.conditions[0].status, "False");
}

#[test]
fn sriov_links_name_the_device_plugin_resource() {
    use edgeplane_api::{ChainNetwork, LinkType};
    let mut c = chain(&[("fw", "fw"), ("dpi", "dpi")]);
    c.spec.network = Some(ChainNetwork {
        type_: LinkType::Sriov,
        resource_name: Some("intel.com/sriov_netdevice".into()),
    });
    let nad = nad_object(&c, 0, "fw", "dpi", "sriov");
    assert_eq!(
        nad.metadata.annotations,
        Some(BTreeMap::from([(
            "k8s.v1.cni.cncf.io/resourceName".to_string(),
            "intel.com/sriov_netdevice".to_string()
        )]))
    );
    // Only on sriov links.
    assert_eq!(
        nad_object(&c, 0, "fw", "dpi", "macvlan")
            .metadata
            .annotations,
        None
    );
    // A resource without sriov is refused, naming the field.
    c.spec.network = Some(ChainNetwork {
        type_: LinkType::Auto,
        resource_name: Some("intel.com/sriov_netdevice".into()),
    });
    let topology_sites = |_: &str| true;
    let errors = check(&c, &|name: &str| nfs().get(name).cloned(), &topology_sites)
        .err()
        .unwrap_or_default();
    assert!(
        errors.iter().any(|e| e
            .to_string()
            .starts_with("spec.network.resourceName: only an sriov network")),
        "{errors:?}"
    );
}

#[test]
fn auto_links_follow_placement_and_colocation() {
    use edgeplane_api::{Colocate, LinkType};
    assert_eq!(
        link_cni(LinkType::Auto, Colocate::Preferred, Some("a"), Some("a")),
        "bridge"
    );
    assert_eq!(
        link_cni(LinkType::Auto, Colocate::Preferred, Some("a"), Some("b")),
        "macvlan"
    );
    assert_eq!(
        link_cni(LinkType::Auto, Colocate::Required, None, Some("b")),
        "bridge"
    );
    assert_eq!(
        link_cni(LinkType::Auto, Colocate::None, None, None),
        "macvlan"
    );
    assert_eq!(
        link_cni(LinkType::Sriov, Colocate::Required, Some("a"), Some("a")),
        "sriov"
    );
}

#[test]
fn colocation_asks_each_hop_for_the_node_of_the_previous_one() {
    use edgeplane_api::{ChainPlacement, Colocate};
    let mut c = chain(&[("fw", "fw"), ("dpi", "dpi"), ("nat", "nat")]);
    assert_eq!(
        colocation(&c, "fw", 2),
        [None, None],
        "the first hop follows nobody"
    );
    let preferred = colocation(&c, "nat", 2);
    let term = serde_json::to_value(&preferred[1]).unwrap_or_default();
    assert_eq!(
        term,
        serde_json::json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
            "podAffinityTerm": {"labelSelector": {"matchLabels": {
                "network.edgeplane.io/network-function": "dpi", "network.edgeplane.io/replica": "1"}},
                "topologyKey": "kubernetes.io/hostname"}}]})
    );
    c.spec.placement = Some(ChainPlacement {
        colocate: Colocate::Required,
    });
    let required = colocation(&c, "dpi", 1);
    assert!(required[0].as_ref().is_some_and(|a| {
        a.required_during_scheduling_ignored_during_execution
            .as_ref()
            .is_some_and(|t| t[0].topology_key == "kubernetes.io/hostname")
    }));
    c.spec.placement = Some(ChainPlacement {
        colocate: Colocate::None,
    });
    assert_eq!(colocation(&c, "dpi", 1), [None]);
    let nfs = nfs();
    assert_eq!(colocation_of(&nfs["dpi"], &[&c], &|_| false), [None, None]);
}
