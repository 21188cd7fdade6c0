use super::*;
use std::collections::BTreeMap;

use edgeplane_api::NetworkTopology;
use edgeplane_api::network::DEFAULT_SITE_LABEL;
use jiff::Timestamp;

use super::metrics::LINK_DEFAULTS;

fn topology(yaml: &str) -> NetworkTopology {
    match serde_saphyr::from_str::<NetworkTopology>(yaml) {
        Ok(t) => t,
        Err(e) => panic!("bad test topology: {e}"),
    }
}

fn node(name: &str, zone: Option<&str>) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        labels: zone
            .map(|z| BTreeMap::from([(DEFAULT_SITE_LABEL.to_string(), z.to_string())]))
            .unwrap_or_default(),
    }
}

fn now() -> Timestamp {
    "2026-01-01T12:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn build(t: &NetworkTopology, nodes: &[NodeInfo]) -> NetworkGraph {
    match NetworkGraph::build(Some(t), nodes, now()) {
        Ok(g) => g,
        Err(e) => panic!("build: {e}"),
    }
}

fn build_err(yaml: &str, nodes: &[NodeInfo]) -> String {
    match NetworkGraph::build(Some(&topology(yaml)), nodes, now()) {
        Ok(_) => panic!("expected an error for\n{yaml}"),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str =
    "apiVersion: network.edgeplane.io/v1alpha1\nkind: NetworkTopology\nmetadata: {name: default}\n";

/// a - b - c with a slower direct a - c, an equal-latency detour a - d - c, a one-way
/// link from c to the users, an isolated site e.
fn metro() -> (NetworkGraph, Vec<NodeInfo>) {
    let t = topology(&format!(
        "{HEADER}spec:
  sites: [{{name: users, labels: {{kind: users}}}}, {{name: e}}, {{name: d}}, {{name: b}}]
  links:
  - {{from: a, to: b, latency: 1ms, jitter: 100us, bandwidth: 10Gbps, loss: '0.1%'}}
  - {{from: b, to: c, latency: 2ms, jitter: 200us, bandwidth: 1Gbps, loss: '0.2%'}}
  - {{from: a, to: c, latency: 4ms}}
  - {{from: a, to: d, latency: 2ms, jitter: 1ms}}
  - {{from: d, to: c, latency: 1ms}}
  - {{from: c, to: users, latency: 1ms, oneWay: true}}
"
    ));
    let nodes = vec![
        node("n1", Some("a")),
        node("n2", Some("a")),
        node("n3", Some("c")),
        node("n4", None),
    ];
    (build(&t, &nodes), nodes)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-9)
}

fn id(g: &NetworkGraph, node: &str) -> Location {
    Location::Node(g.node_id(node).unwrap_or(NodeId(u32::MAX)))
}

fn site(g: &NetworkGraph, name: &str) -> Location {
    Location::Site(g.site_id(name).unwrap_or(SiteId(u32::MAX)))
}

#[test]
fn sites_come_from_declarations_and_node_labels_in_name_order() {
    let (g, _) = metro();
    let names: Vec<&str> = g.sites().map(|s| g.site_name(s)).collect();
    // n4 has no zone label: it is a site of its own, named like the node.
    assert_eq!(names, ["a", "b", "c", "d", "e", "n4", "users"]);
    let a = g.site_id("a").unwrap_or(SiteId(0));
    assert_eq!(g.nodes_in(a).len(), 2);
    assert!(
        g.nodes_in(g.site_id("users").unwrap_or(SiteId(0)))
            .is_empty()
    );
    assert_eq!(g.site_of(NodeId(2)), g.site_id("c").unwrap_or(SiteId(0)));
    assert!(g.is_declared(g.site_id("users").unwrap_or(SiteId(0))) && !g.is_declared(a));
    assert_eq!(
        g.site_labels(g.site_id("users").unwrap_or(SiteId(0)))
            .get("kind")
            .map(String::as_str),
        Some("users")
    );
    assert_eq!(g.spec_link_count(), 6);
    assert_eq!(g.edge_count(), 11);
}

#[test]
fn same_node_intra_site_and_node_at_its_own_site() {
    let (g, _) = metro();
    assert_eq!(
        g.metrics(id(&g, "n1"), id(&g, "n1")),
        Some(DEFAULT_SAME_NODE)
    );
    assert_eq!(
        g.metrics(id(&g, "n1"), id(&g, "n2")),
        Some(DEFAULT_INTRA_SITE)
    );
    assert_eq!(
        g.metrics(id(&g, "n1"), site(&g, "a")),
        Some(DEFAULT_INTRA_SITE)
    );
    assert_eq!(
        g.metrics(site(&g, "a"), id(&g, "n2")),
        Some(DEFAULT_INTRA_SITE)
    );
    assert_eq!(
        g.metrics(site(&g, "users"), site(&g, "users")),
        Some(DEFAULT_INTRA_SITE)
    );
}

#[test]
fn multi_hop_path_adds_latency_and_jitter_takes_the_bottleneck_and_compounds_loss() {
    let (g, _) = metro();
    // a -> b -> c: 1ms + 2ms = 3ms beats the direct 4ms link; a -> d -> c is also 3ms
    // in 2 hops, and [a, b, c] comes before [a, d, c] by name.
    let m = g.metrics(id(&g, "n1"), id(&g, "n3"));
    let Some(m) = m else { panic!("no path") };
    assert!(close(
        m.value(PathMetric::Latency).magnitude().unwrap_or(0.0),
        3e6
    ));
    assert!(close(
        m.value(PathMetric::Jitter).magnitude().unwrap_or(0.0),
        300e3
    ));
    assert!(close(
        m.value(PathMetric::Bandwidth).magnitude().unwrap_or(0.0),
        1e9
    ));
    // 1 - (1 - 0.001)(1 - 0.002) = 0.002998
    assert!(close(
        m.value(PathMetric::PacketLoss).magnitude().unwrap_or(0.0),
        0.002998
    ));
    assert_eq!(m.value(PathMetric::Latency).to_string(), "3ms");
    assert_eq!(m.value(PathMetric::PacketLoss).to_string(), "0.2998%");
    let path = g
        .path(g.site_of(NodeId(0)), g.site_of(NodeId(2)))
        .unwrap_or_default();
    let names: Vec<&str> = path.iter().map(|s| g.site_name(*s)).collect();
    assert_eq!(names, ["a", "b", "c"]);
    // The reverse direction takes the same links backwards.
    let back = g.metrics(id(&g, "n3"), id(&g, "n1"));
    assert_eq!(back, Some(m));
}

#[test]
fn one_way_links_and_unreachable_sites() {
    let (g, _) = metro();
    // c -> users is one-way: users can be reached from n3 (and from a via c) but
    // nothing leads back from users.
    let to_users = g.metrics(id(&g, "n3"), site(&g, "users"));
    assert_eq!(to_users.map(|m| m.latency_ns), Some(1e6));
    assert_eq!(g.metrics(site(&g, "users"), id(&g, "n3")), None);
    assert_eq!(
        g.metrics(id(&g, "n1"), site(&g, "users"))
            .map(|m| m.latency_ns),
        Some(4e6)
    );
    // e has no link at all; n4 is a site of its own without links.
    assert_eq!(g.metrics(id(&g, "n1"), site(&g, "e")), None);
    assert_eq!(g.metrics(id(&g, "n1"), id(&g, "n4")), None);
    assert_eq!(g.path(SiteId(0), g.site_id("e").unwrap_or(SiteId(0))), None);
    // Ids that did not come from this graph are no path either, not a panic.
    assert_eq!(g.metrics(Location::Node(NodeId(99)), id(&g, "n1")), None);
    assert_eq!(g.metrics(Location::Site(SiteId(99)), id(&g, "n1")), None);
}

#[test]
fn ties_prefer_fewer_hops_then_names() {
    // x -> y directly in 3ms, or x -> a -> y in 1ms + 2ms: the same latency, so the
    // direct link (1 hop) wins; its jitter tells which path was taken.
    let t = topology(&format!(
        "{HEADER}spec:
  sites: [{{name: x}}, {{name: y}}, {{name: a}}, {{name: m}}, {{name: z}}, {{name: w}}]
  links:
  - {{from: x, to: y, latency: 3ms, jitter: 1us}}
  - {{from: x, to: a, latency: 1ms, jitter: 5us}}
  - {{from: a, to: y, latency: 2ms, jitter: 5us}}
  - {{from: x, to: z, latency: 1ms, jitter: 7us}}
  - {{from: z, to: w, latency: 1ms, jitter: 7us}}
  - {{from: x, to: m, latency: 1ms, jitter: 3us}}
  - {{from: m, to: w, latency: 1ms, jitter: 3us}}
"
    ));
    let g = build(&t, &[]);
    let s = |n: &str| g.site_id(n).unwrap_or(SiteId(0));
    assert_eq!(
        g.site_metrics(s("x"), s("y")).map(|m| m.jitter_ns),
        Some(1e3)
    );
    // x -> m -> w and x -> z -> w: same latency and hops; m comes before z.
    assert_eq!(
        g.site_metrics(s("x"), s("w")).map(|m| m.jitter_ns),
        Some(6e3)
    );
    let names: Vec<&str> = g
        .path(s("x"), s("w"))
        .unwrap_or_default()
        .iter()
        .map(|id| g.site_name(*id))
        .collect();
    assert_eq!(names, ["x", "m", "w"]);
}

#[test]
fn paths_end_at_sites_without_transit_but_never_pass_through_them() {
    let yaml = |transit: &str| {
        format!(
            "{HEADER}spec:
  sites: [{{name: stadium{transit}}}]
  links:
  - {{from: stadium, to: edge-1, latency: 1ms}}
  - {{from: stadium, to: edge-2, latency: 1ms}}
  - {{from: edge-1, to: metro, latency: 3ms}}
  - {{from: edge-2, to: metro, latency: 3ms}}
"
        )
    };
    let nodes = [
        node("e1", Some("edge-1")),
        node("e2", Some("edge-2")),
        node("m", Some("metro")),
    ];
    let through = build(&topology(&yaml("")), &nodes);
    assert_eq!(
        through
            .metrics(id(&through, "e1"), id(&through, "e2"))
            .map(|m| m.latency_ns),
        Some(2e6)
    );
    let users = build(&topology(&yaml(", transit: false")), &nodes);
    assert!(!users.is_transit(users.site_id("stadium").unwrap_or(SiteId(0))));
    assert_eq!(
        users
            .metrics(id(&users, "e1"), id(&users, "e2"))
            .map(|m| m.latency_ns),
        Some(6e6)
    );
    // The users are still reached, and reach out.
    assert_eq!(
        users
            .metrics(id(&users, "m"), site(&users, "stadium"))
            .map(|m| m.latency_ns),
        Some(4e6)
    );
    assert_eq!(
        users
            .metrics(site(&users, "stadium"), id(&users, "m"))
            .map(|m| m.latency_ns),
        Some(4e6)
    );
}

#[test]
fn without_a_topology_only_same_node_and_intra_site_are_known() {
    let nodes = [
        node("n1", Some("a")),
        node("n2", Some("a")),
        node("n3", Some("b")),
    ];
    let g = match NetworkGraph::build(None, &nodes, now()) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        g.metrics(id(&g, "n1"), id(&g, "n2")),
        Some(DEFAULT_INTRA_SITE)
    );
    assert_eq!(g.metrics(id(&g, "n1"), id(&g, "n3")), None);
}

#[test]
fn same_node_and_intra_site_can_be_set() {
    let t = topology(&format!(
        "{HEADER}spec:\n  sameNode: {{latency: 5us}}\n  intraSite: {{latency: 1ms, bandwidth: 25Gbps, loss: '0.5%'}}\n"
    ));
    let nodes = [node("n1", Some("a")), node("n2", Some("a"))];
    let g = build(&t, &nodes);
    let same = g.same_node();
    assert_eq!(same.latency_ns, 5e3);
    assert_eq!(same.jitter_ns, DEFAULT_SAME_NODE.jitter_ns);
    let intra = g.metrics(id(&g, "n1"), id(&g, "n2"));
    assert_eq!(
        intra.map(|m| m.value(PathMetric::PacketLoss).to_string()),
        Some("0.5%".into())
    );
    assert_eq!(intra.map(|m| m.bandwidth_bps), Some(25e9));
}

#[test]
fn a_custom_site_label_and_nodes_in_declared_sites() {
    let t = topology(&format!(
        "{HEADER}spec:\n  siteLabel: example.com/pop\n  sites: [{{name: pop-1}}]\n  links: [{{from: pop-1, to: pop-2, latency: 2ms}}]\n"
    ));
    let nodes = [
        NodeInfo {
            name: "n1".into(),
            labels: BTreeMap::from([("example.com/pop".to_string(), "pop-1".to_string())]),
        },
        NodeInfo {
            name: "n2".into(),
            labels: BTreeMap::from([("example.com/pop".to_string(), "pop-2".to_string())]),
        },
    ];
    let g = build(&t, &nodes);
    assert_eq!(
        g.metrics(id(&g, "n1"), id(&g, "n2")).map(|m| m.latency_ns),
        Some(2e6)
    );
}

#[test]
fn measurements_override_the_spec_when_fresh() {
    let yaml = |time: &str| {
        format!(
            "{HEADER}spec:
  sites: [{{name: a}}, {{name: b}}, {{name: c}}]
  links:
  - {{from: a, to: b, latency: 5ms, jitter: 1ms, bandwidth: 1Gbps}}
status:
  measured:
  - {{from: a, to: b, latency: 7ms, time: '{time}'}}
  - {{from: b, to: c, latency: 3ms, oneWay: true, time: '{time}'}}
  - {{from: a, to: nowhere, latency: 3ms, time: '{time}'}}
"
        )
    };
    let s = |g: &NetworkGraph, n: &str| g.site_id(n).unwrap_or(SiteId(0));
    // One minute old: fresh (the default bound is 5m).
    let g = build(&topology(&yaml("2026-01-01T11:59:00Z")), &[]);
    let ab = g.site_metrics(s(&g, "a"), s(&g, "b"));
    assert_eq!(ab.map(|m| m.latency_ns), Some(7e6));
    // Metrics the measurement does not carry keep the spec's values.
    assert_eq!(ab.map(|m| m.jitter_ns), Some(1e6));
    assert_eq!(ab.map(|m| m.bandwidth_bps), Some(1e9));
    assert_eq!(
        g.site_metrics(s(&g, "b"), s(&g, "a")).map(|m| m.latency_ns),
        Some(7e6)
    );
    // A measured link the spec lacks is added, here one-way.
    assert_eq!(
        g.site_metrics(s(&g, "a"), s(&g, "c")).map(|m| m.latency_ns),
        Some(10e6)
    );
    assert_eq!(g.site_metrics(s(&g, "c"), s(&g, "a")), None);
    assert_eq!(g.measurements_used(), 2);
    assert_eq!(g.warnings().len(), 1);
    assert!(g.warnings()[0].starts_with("status.measured[2]: ignored"));
    // Ten minutes old: stale, the spec applies and nothing is added.
    let g = build(&topology(&yaml("2026-01-01T11:50:00Z")), &[]);
    assert_eq!(
        g.site_metrics(s(&g, "a"), s(&g, "b")).map(|m| m.latency_ns),
        Some(5e6)
    );
    assert_eq!(g.site_metrics(s(&g, "a"), s(&g, "c")), None);
    assert_eq!(g.measurements_used(), 0);
    // A wider bound makes the same measurements fresh.
    let wide = yaml("2026-01-01T11:50:00Z").replace("spec:\n", "spec:\n  measurementMaxAge: 1h\n");
    let g = build(&topology(&wide), &[]);
    assert_eq!(
        g.site_metrics(s(&g, "a"), s(&g, "b")).map(|m| m.latency_ns),
        Some(7e6)
    );
}

/// The degraded-link repair the network controller performs: metro - edge is measured
/// at 30ms; an activated 4ms path between the same sites carries the traffic instead,
/// and the metrics between the sites (and beyond them) are the activated path's.
#[test]
fn an_activated_path_replaces_a_degraded_link() {
    let yaml = |activated: &str| {
        format!(
            "{HEADER}spec:
  sites: [{{name: metro}}, {{name: edge}}, {{name: users, transit: false}}]
  links:
  - {{from: metro, to: edge, latency: 4ms, jitter: 300us, bandwidth: 10Gbps}}
  - {{from: users, to: edge, latency: 1ms}}
status:
  measured:
  - {{from: metro, to: edge, latency: 30ms, jitter: 5ms, time: '2026-01-01T11:59:00Z'}}
{activated}"
        )
    };
    let nodes = [node("m", Some("metro")), node("e", Some("edge"))];
    let degraded = build(&topology(&yaml("")), &nodes);
    let m = degraded.metrics(id(&degraded, "m"), site(&degraded, "users"));
    assert_eq!(m.map(|m| m.latency_ns), Some(31e6));
    assert_eq!(degraded.activated_paths_used(), 0);
    let repaired = build(
            &topology(&yaml(
                "  activatedPaths:
  - {from: edge, to: metro, latency: 4ms, jitter: 100us, bandwidth: 1Gbps, loss: '0.001%', catalogue: default, entry: slice-a, bindings: [ar/b1]}
",
            )),
            &nodes,
        );
    assert_eq!(repaired.activated_paths_used(), 1);
    let between = repaired.metrics(id(&repaired, "m"), id(&repaired, "e"));
    let Some(between) = between else {
        panic!("no path")
    };
    assert_eq!(between.value(PathMetric::Latency).to_string(), "4ms");
    assert_eq!(between.value(PathMetric::Jitter).to_string(), "100us");
    assert_eq!(between.value(PathMetric::Bandwidth).to_string(), "1Gbps");
    assert_eq!(between.value(PathMetric::PacketLoss).to_string(), "0.001%");
    // Both ways (the path is not one-way), and onwards to the users.
    assert_eq!(
        repaired
            .metrics(id(&repaired, "e"), id(&repaired, "m"))
            .map(|m| m.latency_ns),
        Some(4e6)
    );
    assert_eq!(
        repaired
            .metrics(id(&repaired, "m"), site(&repaired, "users"))
            .map(|m| m.latency_ns),
        Some(5e6)
    );
    // What the controller asks before activating gives the same answer.
    let extra = ExtraLink {
        from: degraded.site_id("edge").unwrap_or(SiteId(0)),
        to: degraded.site_id("metro").unwrap_or(SiteId(0)),
        metrics: LinkMetrics::parse("", "4ms", Some("100us"), Some("1Gbps"), Some("0.001%"))
            .unwrap_or(LINK_DEFAULTS),
        one_way: false,
    };
    let route = degraded.route_with(id(&degraded, "m"), site(&degraded, "users"), &[extra]);
    let Some(route) = route else {
        panic!("no route")
    };
    assert!(route.uses(0));
    assert_eq!(route.extras, [0]);
    assert_eq!(route.metrics.latency_ns, 5e6);
    let names: Vec<&str> = route.sites.iter().map(|s| degraded.site_name(*s)).collect();
    assert_eq!(names, ["metro", "edge", "users"]);
}

#[test]
fn a_slower_activated_path_stays_beside_a_faster_link_and_bad_ones_are_ignored() {
    let t = topology(&format!(
        "{HEADER}spec:
  sites: [{{name: a}}, {{name: b}}, {{name: c}}]
  links: [{{from: a, to: b, latency: 2ms, bandwidth: 100Mbps}}]
status:
  activatedPaths:
  - {{from: a, to: b, latency: 3ms, bandwidth: 10Gbps, catalogue: x, entry: slow}}
  - {{from: b, to: c, latency: 1ms, oneWay: true, catalogue: x, entry: new-link}}
  - {{from: a, to: nowhere, latency: 1ms, catalogue: x, entry: lost}}
  - {{from: a, to: c, latency: fast, catalogue: x, entry: typo}}
"
    ));
    let g = build(&t, &[]);
    let s = |n: &str| g.site_id(n).unwrap_or(SiteId(0));
    // Traffic keeps the 2ms link: the 3ms path is beside it, not instead of it.
    assert_eq!(
        g.site_metrics(s("a"), s("b")).map(|m| m.bandwidth_bps),
        Some(1e8)
    );
    // An activated path where there was no link adds one, here one-way.
    assert_eq!(
        g.site_metrics(s("a"), s("c")).map(|m| m.latency_ns),
        Some(3e6)
    );
    assert_eq!(g.site_metrics(s("c"), s("a")), None);
    assert_eq!(g.activated_paths_used(), 2);
    assert_eq!(
        g.warnings(),
        [
            "status.activatedPaths[2]: ignored: it names an unknown site (\"a\" -> \"nowhere\")",
            "status.activatedPaths[3].latency: \"fast\" is not a duration (expected for example 250ns, 10us, 1.5ms, 2s, 1m, 1h) (the activated path is ignored)",
        ]
    );
    // With no extra links a route is the graph's own.
    let r = g.route_with(Location::Site(s("a")), Location::Site(s("c")), &[]);
    assert_eq!(
        r.as_ref().map(|r| r.metrics),
        g.site_metrics(s("a"), s("c"))
    );
    assert_eq!(r.map(|r| r.extras), Some(vec![]));
}

#[test]
fn the_newest_measurement_of_a_direction_wins() {
    let t = topology(&format!(
        "{HEADER}spec:
  sites: [{{name: a}}, {{name: b}}]
  links: [{{from: a, to: b, latency: 5ms}}]
status:
  measured:
  - {{from: a, to: b, latency: 9ms, time: '2026-01-01T11:59:30Z'}}
  - {{from: a, to: b, latency: 6ms, time: '2026-01-01T11:58:00Z'}}
"
    ));
    let g = build(&t, &[]);
    assert_eq!(
        g.site_metrics(SiteId(0), SiteId(1)).map(|m| m.latency_ns),
        Some(9e6)
    );
}

#[test]
fn invalid_topologies_name_the_field() {
    let sites = "  sites: [{name: a}, {name: b}]\n";
    let cases = [
        (
            "  links: [{from: a, to: b, latency: fast}]\n",
            "spec.links[0].latency: \"fast\" is not a duration",
        ),
        (
            "  links: [{from: a, to: b, latency: 1ms, bandwidth: lots}]\n",
            "spec.links[0].bandwidth: \"lots\" is not a bit rate",
        ),
        (
            "  links: [{from: a, to: b, latency: -1ms}]\n",
            "spec.links[0].latency: \"-1ms\" is not a duration",
        ),
        (
            "  links: [{from: a, to: b, latency: 1ms, loss: '120%'}]\n",
            "spec.links[0].loss: \"120%\" is not a ratio",
        ),
        (
            "  links: [{from: a, to: b, latency: 1ms}, {from: b, to: zz, latency: 1ms}]\n",
            "spec.links[1].to: unknown site \"zz\" (declare it in spec.sites or label a node with topology.kubernetes.io/zone=zz)",
        ),
        (
            "  links: [{from: a, to: a, latency: 1ms}]\n",
            "spec.links[0].to: a link joins two different sites",
        ),
        (
            "  links: [{from: a, to: b, latency: 1ms}, {from: b, to: a, latency: 2ms, oneWay: true}]\n",
            "spec.links[1]: duplicate link from \"b\" to \"a\" (also spec.links[0])",
        ),
        (
            "  intraSite: {latency: 1 ms}\n",
            "spec.intraSite.latency: \"1 ms\" is not a duration",
        ),
        (
            "  measurementMaxAge: soon\n",
            "spec.measurementMaxAge: \"soon\" is not a duration",
        ),
    ];
    for (extra, expected) in cases {
        let yaml = format!("{HEADER}spec:\n{sites}{extra}");
        let got = build_err(&yaml, &[]);
        assert!(
            got.starts_with(expected),
            "{extra}\n  expected: {expected}\n  got:      {got}"
        );
    }
    let dup = format!("{HEADER}spec:\n  sites: [{{name: a}}, {{name: b}}, {{name: a}}]\n");
    assert_eq!(
        build_err(&dup, &[]),
        "spec.sites[2].name: site \"a\" is declared twice (also spec.sites[0])"
    );
    let bad_name = format!("{HEADER}spec:\n  sites: [{{name: -a}}]\n");
    assert!(
        build_err(&bad_name, &[])
            .starts_with("spec.sites[0].name: \"-a\" is not a valid site name")
    );
    let nodes = [node("n1", Some("a")), node("n1", Some("b"))];
    assert_eq!(
        build_err(&format!("{HEADER}spec: {{}}\n"), &nodes),
        "node \"n1\" appears twice"
    );
    let measured = format!(
        "{HEADER}spec: {{}}\nstatus:\n  measured: [{{from: a, to: b, jitter: lots, time: '2026-01-01T00:00:00Z'}}]\n"
    );
    assert!(
        build_err(&measured, &[])
            .starts_with("status.measured[0].jitter: \"lots\" is not a duration")
    );
}

#[test]
fn check_reports_every_problem_without_nodes() {
    let t = topology(&format!(
        "{HEADER}spec:\n  sites: [{{name: a}}, {{name: a}}]\n  links:\n  - {{from: a, to: unknown-here, latency: x}}\n  - {{from: a, to: b, latency: 1ms, jitter: y}}\n"
    ));
    let fields: Vec<String> = check_topology(&t).into_iter().map(|e| e.field).collect();
    // Unknown sites are not judged here: they may be sites of nodes.
    assert_eq!(
        fields,
        [
            "spec.sites[1].name",
            "spec.links[0].latency",
            "spec.links[1].jitter"
        ]
    );
}

#[test]
fn unlimited_bandwidth_is_infinite_and_described() {
    let t = topology(&format!(
        "{HEADER}spec:\n  sites: [{{name: a}}, {{name: b}}]\n  links: [{{from: a, to: b, latency: 2ms}}]\n"
    ));
    let g = build(&t, &[]);
    let m = g.site_metrics(SiteId(0), SiteId(1));
    assert_eq!(
        m.map(|m| m.describe()),
        Some("latency 2ms, jitter 0ns, bandwidth unlimited, loss 0%".into())
    );
}
