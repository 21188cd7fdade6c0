//! Seeded random MEC instances, shared by the tests and the benchmark.
//!
//! A region site, metro sites and edge sites hold the nodes (a tree of links, plus links
//! between neighbouring edges); user sites (stadiums, campuses) hang off two edges each.
//! Applications are chains of 2-4 pods: each consecutive pair is bound by a pod-pod policy
//! (latency, jitter, bandwidth) and the first pod to a user site by a pod-site policy
//! (latency, jitter, packet-loss): three rules per binding. Some pods want edge or metro
//! nodes, some need a GPU (tainted nodes with `nvidia.com/gpu`). Edge nodes are small, so
//! the sites near the users run out first: that is where grouping decisions matter.

use std::collections::BTreeMap;

use edgeplane_api::{
    ConstraintPolicyRule, Link, NetworkTopology, NetworkTopologySpec, TargetRef, TopologySite,
};

use super::{Namespaces, PodAffinityTerm, SpreadConstraint};
use super::{
    NodeOperator, NodeRequirement, NodeSelectorTerm, PendingPod, PlacedPod, PlanBinding, PlanInput,
    PlanNode, PlanRule, PodKey, Resources, Taint, TaintEffect, Toleration, TolerationOperator,
};
use crate::evaluate::{ClusterView, NodeFacts};
use crate::network::{NetworkGraph, NodeInfo};
use crate::selector::Selector;

pub use crate::rng::Rng;

/// How big an instance is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size {
    pub pods: usize,
    pub nodes: usize,
    /// Sites that hold nodes (user sites come on top).
    pub sites: usize,
    /// Total cpu requested over total cpu allocatable.
    pub load: f64,
}

impl Size {
    /// 12 pods, 30 nodes, 6 sites: solved exactly.
    pub const S: Size = Size {
        pods: 12,
        nodes: 30,
        sites: 6,
        load: 0.5,
    };
    pub const M: Size = Size {
        pods: 200,
        nodes: 500,
        sites: 20,
        load: 0.45,
    };
    pub const L: Size = Size {
        pods: 2000,
        nodes: 5000,
        sites: 100,
        load: 0.45,
    };

    /// 10,000 pods over 20,000 nodes and 1,000 sites (issue 18's XL shape); the benchmark
    /// plans it with [`add_pod_rules`] (anti-affinity and spread on a fifth of the
    /// applications).
    pub const XL: Size = Size {
        pods: 10_000,
        nodes: 20_000,
        sites: 1_000,
        load: 0.45,
    };

    pub fn named(name: &str) -> Option<Size> {
        match name {
            "S" | "s" => Some(Size::S),
            "M" | "m" => Some(Size::M),
            "L" | "l" => Some(Size::L),
            "XL" | "xl" => Some(Size::XL),
            _ => None,
        }
    }
}

/// A generated problem; [`Instance::input`] borrows it as planner input.
#[derive(Clone, Debug)]
pub struct Instance {
    pub topology: NetworkTopology,
    pub view: ClusterView,
    pub nodes: Vec<PlanNode>,
    pub placed: Vec<PlacedPod>,
    pub pending: Vec<PendingPod>,
    pub bindings: Vec<PlanBinding>,
}

impl Instance {
    pub fn input(&self) -> PlanInput<'_> {
        PlanInput {
            view: &self.view,
            nodes: self.nodes.clone(),
            placed: self.placed.clone(),
            pending: self.pending.clone(),
            bindings: self.bindings.clone(),
        }
    }
}

const ZONE: &str = "topology.kubernetes.io/zone";
const GIB: i64 = 1 << 30;

fn rule(name: &str, request: &str, limit: &str) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: name.into(),
        request: request.into(),
        limit: Some(limit.into()),
    }
}

/// Pod-pod policies: (name, rules).
fn pod_pod_policies() -> Vec<(&'static str, Vec<ConstraintPolicyRule>)> {
    vec![
        (
            "pp-tight",
            vec![
                rule("latency", "1ms", "5ms"),
                rule("jitter", "200us", "1ms"),
                rule("bandwidth", "5Gbps", "1Gbps"),
            ],
        ),
        (
            "pp-medium",
            vec![
                rule("latency", "3ms", "10ms"),
                rule("jitter", "500us", "2ms"),
                rule("bandwidth", "1Gbps", "500Mbps"),
            ],
        ),
        (
            "pp-loose",
            vec![
                rule("latency", "8ms", "25ms"),
                rule("jitter", "1ms", "5ms"),
                rule("bandwidth", "500Mbps", "100Mbps"),
            ],
        ),
    ]
}

fn pod_site_policies() -> Vec<(&'static str, Vec<ConstraintPolicyRule>)> {
    vec![
        (
            "ps-tight",
            vec![
                rule("latency", "2ms", "6ms"),
                rule("jitter", "500us", "1500us"),
                rule("packet-loss", "0.1%", "0.5%"),
            ],
        ),
        (
            "ps-medium",
            vec![
                rule("latency", "5ms", "12ms"),
                rule("jitter", "1ms", "3ms"),
                rule("packet-loss", "0.2%", "1%"),
            ],
        ),
    ]
}

fn ms(x: f64) -> String {
    format!("{:.0}us", x * 1000.0)
}

/// Generates an instance of `size` from `seed`.
pub fn generate(size: Size, seed: u64) -> Instance {
    let mut rng = Rng::new(seed);
    let node_sites = size.sites.max(1);
    let metros = if node_sites >= 3 {
        (node_sites / 6).max(1)
    } else {
        0
    };
    let edges = node_sites - 1 - metros;
    let users = (node_sites / 8).max(1);
    let mut site_names = vec!["region".to_string()];
    site_names.extend((0..metros).map(|i| format!("metro-{i}")));
    site_names.extend((0..edges).map(|i| format!("edge-{i}")));
    let user_names: Vec<String> = (0..users).map(|i| format!("users-{i}")).collect();

    let mut links = Vec::new();
    let link = |from: &str, to: &str, lat: f64, jit: f64, bw: &str, loss: &str| Link {
        from: from.into(),
        to: to.into(),
        latency: ms(lat),
        jitter: Some(ms(jit)),
        bandwidth: Some(bw.into()),
        loss: Some(loss.into()),
        one_way: false,
    };
    for m in 0..metros {
        let lat = rng.range(6.0, 12.0);
        let jit = rng.range(0.4, 1.0);
        links.push(link(
            "region",
            &format!("metro-{m}"),
            lat,
            jit,
            "100Gbps",
            "0.01%",
        ));
    }
    for e in 0..edges {
        let up = if metros > 0 {
            format!("metro-{}", e % metros)
        } else {
            "region".to_string()
        };
        let lat = rng.range(1.5, 4.0);
        let jit = rng.range(0.2, 0.6);
        let bw = ["10Gbps", "5Gbps", "2Gbps"][rng.below(3)];
        links.push(link(&format!("edge-{e}"), &up, lat, jit, bw, "0.02%"));
        if e + 1 < edges && rng.chance(0.5) {
            let lat = rng.range(1.0, 3.0);
            let jit = rng.range(0.1, 0.5);
            let bw = ["10Gbps", "1Gbps"][rng.below(2)];
            links.push(link(
                &format!("edge-{e}"),
                &format!("edge-{}", e + 1),
                lat,
                jit,
                bw,
                "0.05%",
            ));
        }
    }
    for u in &user_names {
        let anchors: Vec<String> = if edges > 0 {
            let a = rng.below(edges);
            let b = (a + 1 + rng.below(edges.max(2) - 1)) % edges;
            let mut v = vec![format!("edge-{a}")];
            if b != a {
                v.push(format!("edge-{b}"));
            }
            v
        } else {
            vec!["region".to_string()]
        };
        for a in anchors {
            let lat = rng.range(0.5, 2.0);
            let jit = rng.range(0.1, 0.6);
            let loss = ["0.05%", "0.1%", "0.2%"][rng.below(3)];
            links.push(link(u, &a, lat, jit, "1Gbps", loss));
        }
    }
    let mut sites: Vec<TopologySite> = user_names
        .iter()
        .map(|u| TopologySite {
            name: u.clone(),
            labels: BTreeMap::from([("kind".to_string(), "users".to_string())]),
            // Users are where traffic ends, never a shortcut between edge sites.
            transit: Some(false),
        })
        .collect();
    sites.extend(site_names.iter().map(|s| TopologySite {
        name: s.clone(),
        labels: BTreeMap::new(),
        transit: None,
    }));
    let topology = NetworkTopology::new(
        "default",
        NetworkTopologySpec {
            site_label: ZONE.into(),
            same_node: None,
            intra_site: None,
            sites,
            links,
            measurement_max_age: None,
        },
    );

    // Nodes: the region and metros get bigger nodes, edges more of the small ones.
    let mut nodes = Vec::with_capacity(size.nodes);
    for i in 0..size.nodes {
        let s = if i < node_sites {
            i
        } else {
            rng.below(node_sites)
        };
        let site = &site_names[s];
        let (tier, cpu, mem) = if s == 0 {
            ("region", 64, 256)
        } else if s <= metros {
            ("metro", 32, 128)
        } else {
            ("edge", [4, 8, 8, 16][rng.below(4)], 32)
        };
        let gpu = tier != "region" && rng.chance(0.06);
        let mut allocatable = Resources {
            cpu_millis: cpu * 1000,
            memory_bytes: mem * GIB,
            pods: 110,
            extended: BTreeMap::new(),
        };
        let mut taints = Vec::new();
        if gpu {
            allocatable.extended.insert("nvidia.com/gpu".into(), 2);
            taints.push(Taint {
                key: "nvidia.com/gpu".into(),
                value: "present".into(),
                effect: TaintEffect::NoSchedule,
            });
        }
        let labels = BTreeMap::from([
            (ZONE.to_string(), site.clone()),
            ("edgeplane.io/tier".to_string(), tier.to_string()),
        ]);
        nodes.push(PlanNode {
            name: format!("{site}-n{i}"),
            allocatable,
            labels,
            taints,
            schedulable: !rng.chance(0.01),
        });
    }
    let capacity: i64 = nodes.iter().map(|n| n.allocatable.cpu_millis).sum();
    let per_pod = (capacity as f64 * size.load / size.pods.max(1) as f64).max(250.0);

    // Applications.
    let pp = pod_pod_policies();
    let ps = pod_site_policies();
    let mut pending = Vec::with_capacity(size.pods);
    let mut bindings = Vec::new();
    let mut app = 0;
    while pending.len() < size.pods {
        let len = (2 + rng.below(3)).min(size.pods - pending.len()).max(1);
        let namespace = format!("app-{}", app % 7);
        let first = pending.len();
        let edge_only = rng.chance(0.2);
        for k in 0..len {
            let cpu = ((per_pod * rng.range(0.3, 1.7)) / 250.0).round().max(1.0) as i64 * 250;
            let mut requests = Resources::pod(cpu.min(16_000), GIB * (1 + rng.below(8) as i64));
            let mut tolerations = Vec::new();
            if rng.chance(0.05) {
                requests.extended.insert("nvidia.com/gpu".into(), 1);
                tolerations.push(Toleration {
                    key: "nvidia.com/gpu".into(),
                    operator: TolerationOperator::Exists,
                    value: String::new(),
                    effect: None,
                });
            }
            let mut node_selector = BTreeMap::new();
            let mut affinity = Vec::new();
            if k == 0 && edge_only {
                node_selector.insert("edgeplane.io/tier".to_string(), "edge".to_string());
            } else if rng.chance(0.15) {
                affinity.push(NodeSelectorTerm {
                    match_expressions: vec![NodeRequirement {
                        key: "edgeplane.io/tier".into(),
                        operator: NodeOperator::In,
                        values: vec!["edge".into(), "metro".into()],
                    }],
                    match_fields: vec![],
                });
            }
            let name = format!("app{app}-{k}");
            pending.push(PendingPod {
                key: PodKey::new(&namespace, &name),
                requests,
                node_selector,
                affinity,
                tolerations,
                labels: BTreeMap::from([("app".to_string(), format!("app{app}"))]),
                pod_rules: Default::default(),
            });
        }
        let pod_ref = |i: usize, pending: &[PendingPod]| {
            TargetRef::pod(&pending[i].key.namespace, &pending[i].key.name)
        };
        let (name, rules) = &ps[rng.below(ps.len())];
        let user = &user_names[rng.below(user_names.len())];
        bindings.push(PlanBinding {
            name: format!("app{app}-users"),
            offer: format!("{namespace}/app{app}-users"),
            targets: BTreeMap::from([
                ("front".to_string(), pod_ref(first, &pending)),
                ("users".to_string(), TargetRef::site(user)),
            ]),
            rules: rules.iter().map(|r| PlanRule::builtin(name, r)).collect(),
        });
        for k in 1..len {
            let (name, rules) = &pp[rng.below(pp.len())];
            bindings.push(PlanBinding {
                name: format!("app{app}-link{k}"),
                offer: format!("{namespace}/app{app}-chain"),
                targets: BTreeMap::from([
                    ("a".to_string(), pod_ref(first + k - 1, &pending)),
                    ("b".to_string(), pod_ref(first + k, &pending)),
                ]),
                rules: rules.iter().map(|r| PlanRule::builtin(name, r)).collect(),
            });
        }
        app += 1;
    }
    build(topology, nodes, Vec::new(), pending, bindings)
}

/// High-availability rules on a fifth of the applications (those whose index is a
/// multiple of 5), as `edgeplane bench planner --pod-rules` runs them: every pod of such an
/// application keeps off the nodes of the others (required anti-affinity by hostname) and
/// prefers to spread over the sites (ScheduleAnyway, maxSkew 1). Nodes get their hostname
/// label.
pub fn add_pod_rules(inst: &mut Instance) {
    const HOSTNAME: &str = "kubernetes.io/hostname";
    for node in &mut inst.nodes {
        node.labels
            .entry(HOSTNAME.to_string())
            .or_insert_with(|| node.name.clone());
    }
    let site_label = inst.topology.spec.site_label.clone();
    for pod in &mut inst.pending {
        let Some(app) = pod.labels.get("app") else {
            continue;
        };
        if app.trim_start_matches("app").parse::<usize>().unwrap_or(1) % 5 != 0 {
            continue;
        }
        let selector = Selector::from_labels(&BTreeMap::from([("app".to_string(), app.clone())]));
        let namespaces = Namespaces::Only([pod.key.namespace.clone()].into());
        pod.pod_rules.anti_affinity.push(PodAffinityTerm {
            selector: Some(selector.clone()),
            namespaces,
            topology_key: HOSTNAME.into(),
        });
        pod.pod_rules.spread.push(SpreadConstraint {
            max_skew: 1,
            topology_key: site_label.clone(),
            hard: false,
            selector: Some(selector),
            min_domains: None,
            honor_node_affinity: true,
            honor_node_taints: false,
        });
    }
}

/// A small instance for exactness tests: 4-8 pods, 6-12 nodes, 2-4 sites, tight
/// capacity and thresholds so that Limit and Violation trade-offs appear.
pub fn small(seed: u64) -> Instance {
    let mut rng = Rng::new(seed.wrapping_mul(7919).wrapping_add(17));
    let pods = 4 + rng.below(5);
    let nodes = 6 + rng.below(7);
    let sites = 2 + rng.below(3);
    let mut inst = generate(
        Size {
            pods,
            nodes,
            sites,
            load: rng.range(0.3, 0.9),
        },
        rng.next_u64(),
    );
    // A running pod sometimes joins a binding.
    if rng.chance(0.3) && !inst.pending.is_empty() {
        let node = inst.nodes[rng.below(inst.nodes.len())].name.clone();
        let key = PodKey::new("app-0", "running-0");
        inst.placed.push(PlacedPod {
            key: key.clone(),
            node,
            requests: Resources::pod(500, GIB),
            labels: BTreeMap::new(),
            pod_rules: Default::default(),
        });
        let target = &inst.pending[rng.below(inst.pending.len())].key;
        let (name, rules) = &pod_pod_policies()[rng.below(3)];
        let pod = |k: &PodKey| TargetRef::pod(&k.namespace, &k.name);
        inst.bindings.push(PlanBinding {
            name: "running-link".into(),
            offer: "app-0/running".into(),
            targets: BTreeMap::from([("a".to_string(), pod(target)), ("b".to_string(), pod(&key))]),
            rules: rules.iter().map(|r| PlanRule::builtin(name, r)).collect(),
        });
    }
    inst
}

/// Builds the view of a topology and nodes, and the instance around it.
pub fn build(
    topology: NetworkTopology,
    nodes: Vec<PlanNode>,
    placed: Vec<PlacedPod>,
    pending: Vec<PendingPod>,
    bindings: Vec<PlanBinding>,
) -> Instance {
    let infos: Vec<NodeInfo> = nodes
        .iter()
        .map(|n| NodeInfo {
            name: n.name.clone(),
            labels: n.labels.clone(),
        })
        .collect();
    let facts: Vec<NodeFacts> = nodes
        .iter()
        .map(|n| NodeFacts {
            cpu: Some(n.allocatable.cpu_millis as f64 / 1000.0),
            memory: Some(n.allocatable.memory_bytes as f64),
            labels: n.labels.clone(),
        })
        .collect();
    // Generated topologies are valid by construction: a failure is a bug here.
    let graph = NetworkGraph::build(Some(&topology), &infos, jiff::Timestamp::UNIX_EPOCH)
        .expect("generated topologies are valid");
    let view = ClusterView::from_parts(graph, facts);
    Instance {
        topology,
        view,
        nodes,
        placed,
        pending,
        bindings,
    }
}

impl Size {
    /// `12 pods / 30 nodes / 6 sites`.
    pub fn describe(&self) -> String {
        format!(
            "{} pods / {} nodes / {} sites",
            self.pods, self.nodes, self.sites
        )
    }
}
