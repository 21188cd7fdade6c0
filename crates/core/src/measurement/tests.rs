use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Node, Pod};

use super::*;

fn agent(site: &str, name: &str, last_octet: u8) -> AgentNode {
    AgentNode {
        site: site.into(),
        name: name.into(),
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet)),
    }
}

/// Site a: a1..a3; site b: b1..b4; site c: c1.
fn world() -> Vec<AgentNode> {
    let mut nodes = vec![
        agent("a", "a1", 1),
        agent("a", "a2", 2),
        agent("a", "a3", 3),
        agent("b", "b1", 11),
        agent("b", "b2", 12),
        agent("b", "b3", 13),
        agent("b", "b4", 14),
        agent("c", "c1", 21),
    ];
    nodes.sort();
    nodes
}

fn names(peers: &[AgentNode]) -> Vec<&str> {
    peers.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn peers_are_the_own_site_and_k_representatives_per_remote_site_from_the_agents_rank() {
    let nodes = world();
    // a1 is rank 0 in a: the first two of b, the only node of c.
    assert_eq!(
        names(&peers("a1", &nodes, 2)),
        ["a2", "a3", "b1", "b2", "c1"]
    );
    // a2 is rank 1: b2, b3.
    assert_eq!(
        names(&peers("a2", &nodes, 2)),
        ["a1", "a3", "b2", "b3", "c1"]
    );
    // a3 is rank 2: b3, b4.
    assert_eq!(
        names(&peers("a3", &nodes, 2)),
        ["a1", "a2", "b3", "b4", "c1"]
    );
    // b4 is rank 3 in b: wraps over a (3 nodes) to a1, a2.
    assert_eq!(
        names(&peers("b4", &nodes, 2)),
        ["a1", "a2", "b1", "b2", "b3", "c1"]
    );
    // K larger than a site: the whole site, once.
    assert_eq!(
        names(&peers("c1", &nodes, 9)),
        ["a1", "a2", "a3", "b1", "b2", "b3", "b4"]
    );
    // K = 0: the own site only.
    assert_eq!(names(&peers("b1", &nodes, 0)), ["b2", "b3", "b4"]);
    // Not an agent node: nothing to probe.
    assert!(peers("z9", &nodes, 2).is_empty());
}

#[test]
fn peer_counts_grow_linearly_with_the_sites() {
    // 100 sites of 10 nodes: each agent probes 9 + 2 x 99 peers, whatever the number of
    // nodes per remote site.
    let mut nodes = Vec::new();
    for s in 0..100 {
        for n in 0..10 {
            nodes.push(agent(&format!("s{s:03}"), &format!("s{s:03}-n{n}"), 1));
        }
    }
    nodes.sort();
    let total: usize = nodes.iter().map(|n| peers(&n.name, &nodes, 2).len()).sum();
    assert_eq!(total, 1000 * (9 + 2 * 99));
    // Every node of every site is probed by its site's 9 others and 20 agents of each
    // other site's rotation (10 agents x 2 representatives / 10 nodes = 2 per site).
    let mut probed: BTreeMap<String, usize> = BTreeMap::new();
    for n in &nodes {
        for p in peers(&n.name, &nodes, 2) {
            *probed.entry(p.name).or_default() += 1;
        }
    }
    assert!(probed.values().all(|c| *c == 9 + 2 * 99), "{probed:?}");
}

#[test]
fn the_publisher_is_the_lowest_named_agent_of_the_site() {
    let nodes = world();
    assert_eq!(publisher("b", &nodes), Some("b1"));
    let without_b1: Vec<AgentNode> = nodes.into_iter().filter(|n| n.name != "b1").collect();
    assert_eq!(publisher("b", &without_b1), Some("b2"));
    assert_eq!(publisher("z", &without_b1), None);
}

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn node(name: &str, site: Option<&str>) -> Node {
    let labels = site.map_or(String::new(), |s| {
        format!(", labels: {{topology.kubernetes.io/zone: {s}}}")
    });
    yaml(&format!("metadata: {{name: {name}{labels}}}"))
}

fn pod(name: &str, node: &str, ip: &str, phase: &str, ready: &str) -> Pod {
    yaml(&format!(
        "metadata: {{name: {name}}}\nspec: {{nodeName: {node}, containers: [{{name: agent}}]}}\nstatus: {{phase: {phase}, podIP: '{ip}', conditions: [{{type: Ready, status: '{ready}'}}]}}"
    ))
}

#[test]
fn agent_nodes_are_nodes_with_a_site_and_a_running_ready_agent_pod() {
    let nodes = vec![
        node("n1", Some("a")),
        node("n2", Some("a")),
        node("n3", None),
        node("n4", Some("b")),
        node("n5", Some("b")),
    ];
    let pods = vec![
        // Two pods on n1 (a rollout): the lowest-named ready one.
        pod("agent-z", "n1", "10.0.0.9", "Running", "True"),
        pod("agent-b", "n1", "10.0.0.1", "Running", "True"),
        pod("agent-c", "n2", "10.0.0.2", "Pending", "False"),
        pod("agent-d", "n3", "10.0.0.3", "Running", "True"),
        pod("agent-e", "n4", "not-an-ip", "Running", "True"),
        pod("agent-f", "n5", "fd00::5", "Running", "True"),
    ];
    let (agents, warnings) = agent_nodes(&nodes, &pods, "topology.kubernetes.io/zone");
    assert_eq!(
        agents,
        vec![
            agent("a", "n1", 1),
            AgentNode {
                site: "b".into(),
                name: "n5".into(),
                address: "fd00::5".parse().expect("address"),
            },
        ]
    );
    assert_eq!(
        warnings,
        ["pod agent-e: status.podIP \"not-an-ip\" is not an IP address (ignored)"]
    );
}

fn pair(peer: &str, site: &str, rtt_p90_ms: f64) -> PairFigures {
    PairFigures {
        peer: peer.into(),
        peer_site: site.into(),
        rtt_p50_ns: Some(rtt_p90_ms * 0.8e6),
        rtt_p90_ns: Some(rtt_p90_ms * 1e6),
        rtt_p99_ns: Some(rtt_p90_ms * 1.5e6),
        forward_ns: None,
        jitter_ns: Some(100_000.0),
        ipdv_ns: Some(120_000.0),
        settled: 100,
        received: 100,
        bandwidth_bps: None,
        stale: false,
    }
}

#[test]
fn site_links_take_the_median_of_half_the_p90_round_trips_and_pool_the_loss() {
    let pairs = vec![
        pair("a2", "a", 0.5), // own site: no link
        PairFigures {
            settled: 100,
            received: 90,
            jitter_ns: Some(300_000.0),
            bandwidth_bps: Some(1e9),
            ..pair("b1", "b", 10.0)
        },
        PairFigures {
            settled: 100,
            received: 100,
            jitter_ns: Some(200_000.0),
            ..pair("b2", "b", 40.0)
        },
        pair("b3", "b", 20.0),
        // Stale: left out, whatever it says.
        PairFigures {
            stale: true,
            ..pair("c1", "c", 0.001)
        },
        // Never answered: no figures, left out.
        PairFigures {
            rtt_p90_ns: None,
            ..pair("d1", "d", 1.0)
        },
    ];
    let links = site_links("a", &pairs);
    assert_eq!(links.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(
        links["b"],
        LinkFigures {
            // Median of 5, 20 and 10 ms.
            latency_ns: 10e6,
            one_way: false,
            // Median of 300, 200 and 100 us.
            jitter_ns: Some(200_000.0),
            // 10 lost of 300.
            loss: Some(10.0 / 300.0),
            bandwidth_bps: Some(1e9),
            peers: 3,
        }
    );
    let time: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().expect("time");
    let entries = measured_links("a", &links, time);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (
            e.from.as_str(),
            e.to.as_str(),
            e.one_way,
            e.latency.as_deref(),
            e.jitter.as_deref(),
            e.loss.as_deref(),
            e.bandwidth.as_deref()
        ),
        (
            "a",
            "b",
            false,
            Some("10ms"),
            Some("200us"),
            Some("3.333%"),
            Some("1Gbps")
        )
    );
    assert_eq!(e.time.0, time);
}

#[test]
fn synchronized_clocks_publish_the_forward_delay_one_way() {
    let pairs = vec![
        PairFigures {
            forward_ns: Some(3e6),
            ..pair("b1", "b", 10.0)
        },
        PairFigures {
            forward_ns: Some(7e6),
            ..pair("b2", "b", 10.0)
        },
    ];
    let links = site_links("a", &pairs);
    assert_eq!((links["b"].latency_ns, links["b"].one_way), (7e6, true));
    // One peer without a one-way figure: the round trip for all, both ways.
    let mixed = vec![pairs[0].clone(), pair("b3", "b", 8.0)];
    let links = site_links("a", &mixed);
    assert_eq!((links["b"].latency_ns, links["b"].one_way), (5e6, false));
}

fn link(latency_ms: f64) -> LinkFigures {
    LinkFigures {
        latency_ns: latency_ms * 1e6,
        one_way: false,
        jitter_ns: Some(100_000.0),
        loss: Some(0.0),
        bandwidth_bps: None,
        peers: 1,
    }
}

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + seconds).expect("time")
}

#[test]
fn publications_are_rate_limited_unless_the_change_is_significant() {
    let policy = PublishPolicy::default();
    let links = |ms: f64| BTreeMap::from([("b".to_string(), link(ms))]);
    assert_eq!(
        publish_due(&policy, None, &links(4.0), at(0)),
        Some(Publish::First)
    );
    let last = Published {
        links: links(4.0),
        at: at(0),
    };
    // 4 -> 4.5 ms is under 1 ms: nothing until the refresh.
    assert_eq!(publish_due(&policy, Some(&last), &links(4.5), at(10)), None);
    assert_eq!(publish_due(&policy, Some(&last), &links(4.5), at(29)), None);
    assert_eq!(
        publish_due(&policy, Some(&last), &links(4.5), at(30)),
        Some(Publish::Refresh)
    );
    // 4 -> 30 ms: at once, but not within the 5 s gap.
    assert_eq!(publish_due(&policy, Some(&last), &links(30.0), at(4)), None);
    assert_eq!(
        publish_due(&policy, Some(&last), &links(30.0), at(5)),
        Some(Publish::Changed("b: latency 4ms -> 30ms".into()))
    );
    // 100 -> 110 ms is over 1 ms but under 25 %: not significant.
    let slow = Published {
        links: links(100.0),
        at: at(0),
    };
    assert_eq!(
        publish_due(&policy, Some(&slow), &links(110.0), at(10)),
        None
    );
    // A link that went stale is significant: it must leave the status.
    assert_eq!(
        publish_due(&policy, Some(&last), &BTreeMap::new(), at(6)),
        Some(Publish::Changed("b: no fresh measurement any more".into()))
    );
    let lossy = BTreeMap::from([(
        "b".to_string(),
        LinkFigures {
            loss: Some(0.02),
            ..link(4.0)
        },
    )]);
    assert_eq!(
        publish_due(&policy, Some(&last), &lossy, at(6)),
        Some(Publish::Changed("b: loss changed".into()))
    );
}
