//! The placement rules between pods: exact placements for each rule, and a property test
//! whose plans are checked by an independent re-implementation of kube-scheduler's
//! filters (InterPodAffinity, PodTopologySpread, NodePorts) written here.

use std::collections::{BTreeMap, BTreeSet};

use edgeplane_api::{NetworkTopology, NetworkTopologySpec};

use super::instances::{self, Instance, Rng};
use super::*;
use crate::selector::Selector;

const ZONE: &str = "topology.kubernetes.io/zone";
const HOST: &str = "kubernetes.io/hostname";
const RACK: &str = "rack";

fn topology() -> NetworkTopology {
    NetworkTopology::new(
        "default",
        NetworkTopologySpec {
            site_label: ZONE.into(),
            same_node: None,
            intra_site: None,
            sites: vec![],
            links: vec![],
            measurement_max_age: None,
        },
    )
}

fn node(name: &str, zone: &str, cpu: i64) -> PlanNode {
    PlanNode {
        name: name.into(),
        allocatable: Resources {
            cpu_millis: cpu * 1000,
            memory_bytes: 64 << 30,
            pods: 110,
            extended: BTreeMap::new(),
        },
        labels: BTreeMap::from([
            (ZONE.to_string(), zone.to_string()),
            (HOST.to_string(), name.to_string()),
        ]),
        taints: vec![],
        schedulable: true,
    }
}

fn pod(name: &str, app: &str, cpu: i64) -> PendingPod {
    PendingPod {
        key: PodKey::new("default", name),
        requests: Resources::pod(cpu * 1000, 1 << 30),
        node_selector: BTreeMap::new(),
        affinity: vec![],
        tolerations: vec![],
        labels: BTreeMap::from([("app".to_string(), app.to_string())]),
        pod_rules: InterPodRules::default(),
    }
}

fn running(name: &str, app: &str, node: &str) -> PlacedPod {
    PlacedPod {
        key: PodKey::new("default", name),
        node: node.into(),
        requests: Resources::pod(1000, 1 << 30),
        labels: BTreeMap::from([("app".to_string(), app.to_string())]),
        pod_rules: InterPodRules::default(),
    }
}

fn term(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        selector: Selector::parse(&format!("app={app}")).ok(),
        namespaces: Namespaces::Only(BTreeSet::from(["default".to_string()])),
        topology_key: key.into(),
    }
}

fn spread(app: &str, key: &str, max_skew: i32, hard: bool) -> SpreadConstraint {
    SpreadConstraint {
        max_skew,
        topology_key: key.into(),
        hard,
        selector: Selector::parse(&format!("app={app}")).ok(),
        min_domains: None,
        honor_node_affinity: true,
        honor_node_taints: false,
    }
}

fn port(number: i32, protocol: &str, ip: &str) -> HostPort {
    HostPort {
        port: number,
        protocol: protocol.into(),
        ip: ip.into(),
    }
}

fn build(nodes: Vec<PlanNode>, placed: Vec<PlacedPod>, pending: Vec<PendingPod>) -> Instance {
    instances::build(topology(), nodes, placed, pending, vec![])
}

const STRATEGIES: [(&str, Strategy, usize); 3] = [
    ("exact", Strategy::Optimal, 16),
    ("heuristic", Strategy::Optimal, 0),
    ("greedy", Strategy::Greedy, 16),
];

fn run_all(inst: &Instance) -> Vec<(&'static str, Plan)> {
    STRATEGIES
        .iter()
        .map(|(name, strategy, exact_limit)| {
            let options = PlanOptions {
                strategy: *strategy,
                exact_limit: *exact_limit,
                ..PlanOptions::default()
            };
            (*name, plan(&inst.input(), &options))
        })
        .collect()
}

fn node_of<'p>(plan: &'p Plan, name: &str) -> Option<&'p str> {
    plan.node_of(&PodKey::new("default", name))
}

#[test]
fn two_replicas_of_a_packet_core_never_share_a_node() {
    let replica = |name: &str| {
        let mut p = pod(name, "upf", 1);
        p.pod_rules.anti_affinity.push(term("upf", HOST));
        p
    };
    // Without the rule every strategy packs both onto e1, the first node that fits.
    let plain = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![],
        vec![pod("upf-0", "upf", 1), pod("upf-1", "upf", 1)],
    );
    for (name, plan) in run_all(&plain) {
        assert_eq!(node_of(&plan, "upf-0"), node_of(&plan, "upf-1"), "{name}");
    }
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![],
        vec![replica("upf-0"), replica("upf-1"), replica("upf-2")],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(plan.summary.placed, 2, "{name}");
        let mut nodes: Vec<&str> = plan.assignments.iter().map(|a| a.node.as_str()).collect();
        nodes.sort_unstable();
        assert_eq!(nodes, ["e1", "e2"], "{name}");
        assert_eq!(
            plan.unplaced[0].reason,
            "every node with room for it breaks a rule between pods: required pod anti-affinity (topologyKey kubernetes.io/hostname) (for example on e1)",
            "{name}"
        );
    }
}

#[test]
fn replicas_spread_over_zones_with_max_skew_one() {
    let replica = |i: usize| {
        let mut p = pod(&format!("web-{i}"), "web", 1);
        p.pod_rules.spread.push(spread("web", ZONE, 1, true));
        p
    };
    // z1 has two large nodes, z2 and z3 one small node each; a running replica is in z1.
    let inst = build(
        vec![
            node("a1", "z1", 16),
            node("a2", "z1", 16),
            node("b1", "z2", 4),
            node("c1", "z3", 4),
        ],
        vec![running("web-old", "web", "a1")],
        (0..5).map(replica).collect(),
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(plan.summary.placed, 5, "{name}");
        let mut per_zone: BTreeMap<&str, usize> = BTreeMap::from([("z1", 1)]);
        for a in &plan.assignments {
            let zone = match a.node.as_str() {
                "a1" | "a2" => "z1",
                "b1" => "z2",
                _ => "z3",
            };
            *per_zone.entry(zone).or_default() += 1;
        }
        assert_eq!(
            per_zone,
            BTreeMap::from([("z1", 2), ("z2", 2), ("z3", 2)]),
            "{name}"
        );
    }
    // minDomains 3 with two zones: the least count is taken as 0, so each zone takes at
    // most maxSkew (1) pods.
    let few = build(
        vec![node("a1", "z1", 16), node("b1", "z2", 16)],
        vec![],
        (0..4)
            .map(|i| {
                let mut p = replica(i);
                p.pod_rules.spread[0].min_domains = Some(3);
                p
            })
            .collect(),
    );
    for (name, plan) in run_all(&few) {
        assert_eq!(plan.summary.placed, 2, "{name}");
        assert_ne!(node_of(&plan, "web-0"), None, "{name}");
    }
}

#[test]
fn anti_affinity_against_an_already_running_pod() {
    let mut app = pod("app", "app", 1);
    app.pod_rules.anti_affinity.push(term("db", HOST));
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![running("db-0", "db", "e1")],
        vec![app.clone()],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(node_of(&plan, "app"), Some("e2"), "{name}");
    }
    // Zone-wide: no node of the running pod's zone will do.
    let mut zonal = app.clone();
    zonal.pod_rules.anti_affinity = vec![term("db", ZONE)];
    let inst = build(
        vec![
            node("e1", "z1", 8),
            node("e2", "z1", 8),
            node("e3", "z2", 1),
        ],
        vec![running("db-0", "db", "e1")],
        vec![zonal],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(node_of(&plan, "app"), Some("e3"), "{name}");
    }
}

#[test]
fn running_pods_anti_affinity_keeps_matching_pods_away() {
    // The running guard forbids app=noisy next to it; the noisy pod has no rule itself.
    let mut guard = running("guard", "guard", "e1");
    guard.pod_rules.anti_affinity.push(term("noisy", HOST));
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![guard],
        vec![pod("noisy", "noisy", 1), pod("quiet", "quiet", 1)],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(node_of(&plan, "noisy"), Some("e2"), "{name}");
        assert_eq!(node_of(&plan, "quiet"), Some("e1"), "{name}");
    }
    // Between pods of the plan: b carries no rule, a forbids app=b on its node.
    let mut a = pod("a", "a", 1);
    a.pod_rules.anti_affinity.push(term("b", HOST));
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![],
        vec![pod("b", "b", 1), a],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(plan.summary.placed, 2, "{name}");
        assert_ne!(node_of(&plan, "a"), node_of(&plan, "b"), "{name}");
    }
}

#[test]
fn required_affinity_follows_the_pods_it_wants() {
    let mut web = pod("web", "web", 1);
    web.pod_rules.affinity.push(term("cache", ZONE));
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z2", 8)],
        vec![running("cache-0", "cache", "e2")],
        vec![web.clone()],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(node_of(&plan, "web"), Some("e2"), "{name}");
    }
    // Nothing matches anywhere and web does not match its own term: it stays out.
    let lonely = build(vec![node("e1", "z1", 8)], vec![], vec![web]);
    for (name, plan) in run_all(&lonely) {
        assert_eq!(plan.summary.placed, 0, "{name}");
    }
    // A group with affinity to itself: the first pod goes anywhere, the others follow it
    // into its zone, even when that zone is small.
    let member = |i: usize| {
        let mut p = pod(&format!("ran-{i}"), "ran", 1);
        p.pod_rules.affinity.push(term("ran", ZONE));
        p
    };
    let inst = build(
        vec![
            node("e1", "z1", 2),
            node("e2", "z1", 1),
            node("e3", "z2", 2),
        ],
        vec![],
        (0..3).map(member).collect(),
    );
    for (name, plan) in run_all(&inst) {
        let zones: BTreeSet<&str> = plan
            .assignments
            .iter()
            .map(|a| if a.node == "e3" { "z2" } else { "z1" })
            .collect();
        assert_eq!(zones.len(), 1, "{name}: {:?}", plan.assignments);
        if name != "greedy" {
            assert_eq!(plan.summary.placed, 3, "{name}");
        }
    }
}

#[test]
fn priority_decides_who_is_left_unplaced() {
    let mut high = pod("high", "high", 3);
    high.pod_rules.priority = 1000;
    // Two low-priority pods that would fit together, listed first; one high-priority
    // pod that fits only alone. Placing it places fewer pods, and still wins.
    let inst = build(
        vec![node("e1", "z1", 4)],
        vec![],
        vec![pod("low-0", "low", 2), pod("low-1", "low", 2), high],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(node_of(&plan, "high"), Some("e1"), "{name}");
        assert_eq!(plan.summary.placed, 1, "{name}");
    }
    // Same priority: the count decides.
    let mut equal = pod("high", "high", 3);
    equal.pod_rules.priority = 0;
    let inst = build(
        vec![node("e1", "z1", 4)],
        vec![],
        vec![pod("low-0", "low", 2), pod("low-1", "low", 2), equal],
    );
    let plan = run_all(&inst).remove(0).1;
    assert_eq!(plan.summary.placed, 2);
    assert_eq!(node_of(&plan, "high"), None);
}

#[test]
fn host_ports_conflict_per_node() {
    let with_port = |name: &str, p: HostPort| {
        let mut pod = pod(name, name, 1);
        pod.pod_rules.host_ports.push(p);
        pod
    };
    let mut taken = running("proxy", "proxy", "e1");
    taken
        .pod_rules
        .host_ports
        .push(port(8080, "TCP", "0.0.0.0"));
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![taken],
        vec![
            with_port("tcp", port(8080, "TCP", "0.0.0.0")),
            // Another protocol on the same port does not conflict.
            with_port("udp", port(8080, "UDP", "0.0.0.0")),
            with_port("tcp-2", port(8080, "TCP", "10.0.0.1")),
        ],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(node_of(&plan, "udp"), Some("e1"), "{name}");
        // Both TCP pods need e2 (the running proxy holds 8080 on every address of e1),
        // and a specific address conflicts with 0.0.0.0: one of them stays out.
        assert_eq!(plan.summary.placed, 2, "{name}");
        assert_eq!(
            plan.unplaced[0].reason,
            "every node with room for it breaks a rule between pods: hostPort 8080/TCP is taken (for example on e1)",
            "{name}"
        );
    }
}

#[test]
fn preferences_count_after_limits() {
    // Preferred anti-affinity between two replicas: apart when there is room.
    let replica = |name: &str| {
        let mut p = pod(name, "cdn", 1);
        p.pod_rules.preferred_anti_affinity.push(WeightedTerm {
            weight: 50,
            term: term("cdn", HOST),
        });
        p
    };
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z1", 8)],
        vec![],
        vec![replica("cdn-0"), replica("cdn-1")],
    );
    let plan = run_all(&inst).remove(0).1;
    assert_ne!(node_of(&plan, "cdn-0"), node_of(&plan, "cdn-1"));
    // Not at the cost of a pod: one node, both placed together.
    let inst = build(
        vec![node("e1", "z1", 8)],
        vec![],
        vec![replica("cdn-0"), replica("cdn-1")],
    );
    for (name, plan) in run_all(&inst) {
        assert_eq!(plan.summary.placed, 2, "{name}");
    }
    // ScheduleAnyway: spread when free to, pile up when not.
    let soft = |i: usize| {
        let mut p = pod(&format!("s-{i}"), "s", 1);
        p.pod_rules.spread.push(spread("s", ZONE, 1, false));
        p
    };
    let inst = build(
        vec![node("e1", "z1", 8), node("e2", "z2", 8)],
        vec![],
        (0..4).map(soft).collect(),
    );
    let plan = run_all(&inst).remove(0).1;
    let in_z1 = plan.assignments.iter().filter(|a| a.node == "e1").count();
    assert_eq!(in_z1, 2);
}

/// The benchmark's rules (`instances::add_pod_rules`) hold in the plans of a generated
/// instance: pods of a ruled application on distinct nodes.
#[test]
fn generated_high_availability_rules_hold() {
    let size = instances::Size {
        pods: 60,
        nodes: 150,
        sites: 8,
        load: 0.45,
    };
    let mut inst = instances::generate(size, 5);
    instances::add_pod_rules(&mut inst);
    let ruled: Vec<&PendingPod> = inst
        .pending
        .iter()
        .filter(|p| !p.pod_rules.anti_affinity.is_empty())
        .collect();
    assert!(ruled.len() >= 5, "{}", ruled.len());
    for (name, strategy, exact_limit) in STRATEGIES {
        // A short search: the rules must hold in whatever plan comes back.
        let options = PlanOptions {
            strategy,
            exact_limit,
            max_iterations: 30_000,
            ..PlanOptions::default()
        };
        let plan = plan(&inst.input(), &options);
        let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
        for pod in &ruled {
            if let Some(node) = plan.node_of(&pod.key) {
                assert!(
                    seen.insert((&pod.labels["app"], node)),
                    "{name}: two pods of {} on {node}",
                    pod.labels["app"]
                );
            }
        }
        assert!(plan.summary.placed >= 50, "{name}: {}", plan.summary.placed);
    }
}

// ---------------------------------------------------------------------------------------
// Property test: an independent reading of kube-scheduler's filters.

/// A pod as the checker sees it: where it is and what it carries.
#[derive(Clone, Copy)]
struct Placed<'a> {
    namespace: &'a str,
    labels: &'a BTreeMap<String, String>,
    node: &'a PlanNode,
    rules: &'a InterPodRules,
    cpu: i64,
}

fn term_selects(t: &PodAffinityTerm, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
    let in_namespace = match &t.namespaces {
        Namespaces::All => true,
        Namespaces::Only(set) => set.contains(namespace),
    };
    in_namespace && t.selector.as_ref().is_some_and(|s| s.matches(labels))
}

fn ports_clash(a: &HostPort, b: &HostPort) -> bool {
    a.port == b.port
        && a.protocol == b.protocol
        && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

/// The first filter that rejects pod `me` (a planned pod) given every other pod as an
/// existing pod; `None` when it passes them all.
fn rejected(
    me: &Placed<'_>,
    pod: &PendingPod,
    others: &[Placed<'_>],
    nodes: &[PlanNode],
) -> Option<String> {
    let label = |n: &PlanNode, k: &str| n.labels.get(k).cloned();
    // NodeResources and NodeAffinity, for completeness.
    let used: i64 = others
        .iter()
        .filter(|o| o.node.name == me.node.name)
        .map(|o| o.cpu)
        .sum::<i64>()
        + me.cpu;
    if used > me.node.allocatable.cpu_millis {
        return Some("cpu".into());
    }
    if pod
        .node_selector
        .iter()
        .any(|(k, v)| me.node.labels.get(k) != Some(v))
    {
        return Some("nodeSelector".into());
    }
    // NodePorts.
    for p in &me.rules.host_ports {
        for o in others.iter().filter(|o| o.node.name == me.node.name) {
            if o.rules.host_ports.iter().any(|q| ports_clash(p, q)) {
                return Some(format!("hostPort {}", p.port));
            }
        }
    }
    // InterPodAffinity: existing pods' anti-affinity.
    for o in others {
        for t in &o.rules.anti_affinity {
            if term_selects(t, me.namespace, me.labels)
                && let Some(value) = label(o.node, &t.topology_key)
                && label(me.node, &t.topology_key) == Some(value)
            {
                return Some("existing anti-affinity".into());
            }
        }
    }
    // The pod's own anti-affinity.
    for t in &me.rules.anti_affinity {
        let Some(value) = label(me.node, &t.topology_key) else {
            continue;
        };
        if others.iter().any(|o| {
            term_selects(t, o.namespace, o.labels)
                && label(o.node, &t.topology_key) == Some(value.clone())
        }) {
            return Some("anti-affinity".into());
        }
    }
    // The pod's own affinity: pods matching every term count.
    let terms = &me.rules.affinity;
    if !terms.is_empty() {
        let matching: Vec<&Placed<'_>> = others
            .iter()
            .filter(|o| terms.iter().all(|t| term_selects(t, o.namespace, o.labels)))
            .collect();
        let mut all_exist = true;
        for t in terms {
            let Some(value) = label(me.node, &t.topology_key) else {
                return Some("affinity: missing topology key".into());
            };
            if !matching
                .iter()
                .any(|o| label(o.node, &t.topology_key) == Some(value.clone()))
            {
                all_exist = false;
            }
        }
        if !all_exist {
            let any_counted = matching.iter().any(|o| {
                terms
                    .iter()
                    .any(|t| o.node.labels.contains_key(&t.topology_key))
            });
            let matches_self = terms
                .iter()
                .all(|t| term_selects(t, me.namespace, me.labels));
            if any_counted || !matches_self {
                return Some("affinity".into());
            }
        }
    }
    // PodTopologySpread (DoNotSchedule).
    let hard: Vec<&SpreadConstraint> = me.rules.spread.iter().filter(|c| c.hard).collect();
    for c in &hard {
        let Some(mine) = label(me.node, &c.topology_key) else {
            return Some("spread: missing topology key".into());
        };
        let counted = |n: &PlanNode| {
            hard.iter().all(|h| n.labels.contains_key(&h.topology_key))
                && (!c.honor_node_affinity
                    || pod
                        .node_selector
                        .iter()
                        .all(|(k, v)| n.labels.get(k) == Some(v)))
        };
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for n in nodes.iter().filter(|n| counted(n)) {
            counts.entry(n.labels[&c.topology_key].clone()).or_insert(0);
        }
        let selects = |ns: &str, labels: &BTreeMap<String, String>| {
            ns == me.namespace && c.selector.as_ref().is_some_and(|s| s.matches(labels))
        };
        for o in others
            .iter()
            .filter(|o| counted(o.node) && selects(o.namespace, o.labels))
        {
            *counts
                .entry(o.node.labels[&c.topology_key].clone())
                .or_insert(0) += 1;
        }
        let least = if (counts.len() as i32) < c.min_domains.unwrap_or(0) {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        let own = counts.get(&mine).copied().unwrap_or(0);
        let skew = own + i64::from(selects(me.namespace, me.labels)) - least;
        if skew > i64::from(c.max_skew) {
            return Some(format!("spread {} skew {skew}", c.topology_key));
        }
    }
    None
}

/// A small random instance: 3-6 nodes over 2-3 zones (some without a rack label), 2-3
/// applications of 1-4 pods with random rules, 0-2 running pods, and one pod with no rule
/// and a node with room for it.
fn random_instance(rng: &mut Rng) -> Instance {
    let zones = 2 + rng.below(2);
    let mut nodes: Vec<PlanNode> = (0..3 + rng.below(4))
        .map(|i| {
            let mut n = node(
                &format!("n{i}"),
                &format!("z{}", i % zones),
                2 + rng.below(3) as i64,
            );
            if rng.chance(0.7) {
                n.labels.insert(RACK.into(), format!("r{}", rng.below(2)));
            }
            n
        })
        .collect();
    let keys = [HOST, ZONE, RACK];
    let apps = 2 + rng.below(2);
    let mut pending = Vec::new();
    for a in 0..apps {
        let app = format!("a{a}");
        let other = format!("a{}", (a + 1) % apps);
        let mut rules = InterPodRules::default();
        if rng.chance(0.4) {
            rules.anti_affinity.push(term(&app, keys[rng.below(3)]));
        }
        if rng.chance(0.25) {
            rules.anti_affinity.push(term(&other, keys[rng.below(3)]));
        }
        if rng.chance(0.25) {
            let target = if rng.chance(0.5) { &app } else { &other };
            rules.affinity.push(term(target, keys[1 + rng.below(2)]));
            if rng.chance(0.3) {
                // Joint terms: a pod counts when it matches both.
                let mut second = term(target, keys[rng.below(3)]);
                second.namespaces = Namespaces::All;
                rules.affinity.push(second);
            }
        }
        if rng.chance(0.4) {
            let mut c = spread(&app, keys[rng.below(3)], 1 + rng.below(2) as i32, true);
            if rng.chance(0.3) {
                c.min_domains = Some(1 + rng.below(4) as i32);
            }
            c.honor_node_affinity = rng.chance(0.7);
            rules.spread.push(c);
        }
        if rng.chance(0.2) {
            rules.spread.push(spread(&app, ZONE, 1, false));
        }
        if rng.chance(0.15) {
            rules.anti_affinity.push(PodAffinityTerm {
                namespaces: Namespaces::All,
                ..term(&other, keys[rng.below(3)])
            });
        }
        let namespace = if rng.chance(0.2) { "other" } else { "default" };
        if rng.chance(0.2) {
            rules.host_ports.push(port(80, "TCP", "0.0.0.0"));
        }
        if rng.chance(0.2) {
            rules.preferred_anti_affinity.push(WeightedTerm {
                weight: 10,
                term: term(&app, HOST),
            });
        }
        let priority = [0, 0, 100][rng.below(3)];
        for r in 0..1 + rng.below(4) {
            let mut p = pod(&format!("{app}-{r}"), &app, 1);
            p.key.namespace = namespace.into();
            p.pod_rules = rules.clone();
            p.pod_rules.priority = priority;
            if rng.chance(0.15) {
                p.node_selector.insert(ZONE.into(), "z0".into());
            }
            pending.push(p);
        }
    }
    let mut placed = Vec::new();
    for r in 0..rng.below(3) {
        let at = nodes[rng.below(nodes.len())].name.clone();
        let mut p = running(&format!("old-{r}"), &format!("a{}", rng.below(apps)), &at);
        if rng.chance(0.2) {
            p.key.namespace = "other".into();
        }
        p.requests = Resources::pod(0, 0);
        if rng.chance(0.5) {
            p.pod_rules
                .anti_affinity
                .push(term(&format!("a{}", rng.below(apps)), keys[rng.below(2)]));
        }
        if rng.chance(0.2) {
            p.pod_rules.host_ports.push(port(80, "TCP", "0.0.0.0"));
        }
        placed.push(p);
    }
    // Room for a pod that no rule concerns: it must always be placed.
    let mut spare = node("spare", "z0", 64);
    spare.labels.remove(HOST);
    nodes.push(spare);
    let mut free = pod("free", "free", 1);
    free.requests.cpu_millis = 1;
    pending.push(free);
    instances::build(topology(), nodes, placed, pending, vec![])
}

#[test]
fn plans_never_break_a_required_pod_rule() {
    let cases: u64 = std::env::var("EDGEPLANE_PLANNER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut rng = Rng::new(18);
    let mut placed_total = 0;
    for case in 0..cases {
        let inst = random_instance(&mut rng);
        for (name, strategy, exact_limit) in STRATEGIES {
            let options = PlanOptions {
                strategy,
                exact_limit,
                max_iterations: 10_000,
                seed: case,
                ..PlanOptions::default()
            };
            let plan = plan(&inst.input(), &options);
            assert!(
                plan.node_of(&PodKey::new("default", "free")).is_some(),
                "case {case} {name}: the pod no rule concerns is not placed"
            );
            let node = |n: &str| inst.nodes.iter().find(|x| x.name == n);
            let mut pods: Vec<(Placed<'_>, Option<&PendingPod>)> = Vec::new();
            for r in &inst.placed {
                if let Some(n) = node(&r.node) {
                    pods.push((
                        Placed {
                            namespace: &r.key.namespace,
                            labels: &r.labels,
                            node: n,
                            rules: &r.pod_rules,
                            cpu: r.requests.cpu_millis,
                        },
                        None,
                    ));
                }
            }
            for a in &plan.assignments {
                let p = inst.pending.iter().find(|p| p.key == a.pod);
                let (Some(p), Some(n)) = (p, node(&a.node)) else {
                    panic!("case {case} {name}: unknown pod or node in {a:?}");
                };
                pods.push((
                    Placed {
                        namespace: &p.key.namespace,
                        labels: &p.labels,
                        node: n,
                        rules: &p.pod_rules,
                        cpu: p.requests.cpu_millis,
                    },
                    Some(p),
                ));
            }
            placed_total += plan.assignments.len();
            for (i, (me, pending)) in pods.iter().enumerate() {
                let Some(pending) = pending else { continue };
                let others: Vec<Placed<'_>> = pods
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, (o, _))| *o)
                    .collect();
                if let Some(why) = rejected(me, pending, &others, &inst.nodes) {
                    panic!(
                        "case {case} {name}: {} on {} breaks {why}; plan {:?}\nrunning {:#?}\npending {:#?}\nnodes {:?}",
                        pending.key,
                        me.node.name,
                        plan.assignments,
                        inst.placed,
                        inst.pending
                            .iter()
                            .map(|p| (&p.key.name, &p.pod_rules))
                            .collect::<Vec<_>>(),
                        inst.nodes
                            .iter()
                            .map(|n| (&n.name, &n.labels))
                            .collect::<Vec<_>>()
                    );
                }
            }
        }
    }
    // The instances are not vacuous: most pods find a node.
    assert!(placed_total > cases as usize * 3 * 4, "{placed_total}");
}
