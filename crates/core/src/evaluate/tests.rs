use super::*;
use std::collections::BTreeMap;

use edgeplane_api::{Compliance, ConstraintPolicyRule, TargetRef};
use jiff::Timestamp;

use crate::manifests::{Object, decode, parse_documents};
use crate::network::{Location, NodeId};
use crate::snapshot::Snapshot;

/// edge-1 (nodes e1a, e1b) -- 3ms -- metro (node m1); stadium -- 2ms -- edge-1;
/// campus -> edge-1 one-way; far has no link. Pods in namespace ar.
const WORLD: &str = r#"
apiVersion: network.edgeplane.io/v1alpha1
kind: NetworkTopology
metadata: {name: default}
spec:
  sites:
  - {name: stadium, labels: {kind: users}}
  - {name: campus, labels: {kind: users}}
  - {name: far}
  links:
  - {from: stadium, to: edge-1, latency: 2ms, jitter: 500us, bandwidth: 1Gbps, loss: "0.1%"}
  - {from: edge-1, to: metro, latency: 3ms, jitter: 1ms, bandwidth: 10Gbps}
  - {from: campus, to: edge-1, latency: 1ms, oneWay: true}
---
apiVersion: v1
kind: Node
metadata:
  name: e1a
  labels: {topology.kubernetes.io/zone: edge-1, tier: edge, feature.node.kubernetes.io/cpu-cpuid.AVX512F: "true"}
status: {allocatable: {cpu: "16", memory: 64Gi}}
---
apiVersion: v1
kind: Node
metadata:
  name: e1b
  labels: {topology.kubernetes.io/zone: edge-1}
status: {allocatable: {cpu: "4", memory: 8Gi}}
---
apiVersion: v1
kind: Node
metadata:
  name: m1
  labels: {topology.kubernetes.io/zone: metro}
---
{apiVersion: v1, kind: Pod, metadata: {name: r0, namespace: ar}, spec: {nodeName: e1a, containers: [{name: c, image: i}]}}
---
{apiVersion: v1, kind: Pod, metadata: {name: r1, namespace: ar}, spec: {nodeName: m1, containers: [{name: c, image: i}]}}
---
{apiVersion: v1, kind: Pod, metadata: {name: g0, namespace: ar}, spec: {nodeName: e1b, containers: [{name: c, image: i}]}}
---
{apiVersion: v1, kind: Pod, metadata: {name: waiting, namespace: ar}, spec: {containers: [{name: c, image: i}]}}
---
{apiVersion: v1, kind: Pod, metadata: {name: lost, namespace: ar}, spec: {nodeName: ghost, containers: [{name: c, image: i}]}}
"#;

fn view() -> ClusterView {
    let docs = parse_documents("world.yaml", WORLD).unwrap_or_default();
    let objects: Vec<Object> = docs.iter().filter_map(|d| decode(d).ok()).collect();
    assert_eq!(objects.len(), 9);
    let s = Snapshot::from_objects(objects);
    match ClusterView::build(s.topology(), &s.nodes, &s.pods, Timestamp::UNIX_EPOCH) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn pod(name: &str) -> TargetRef {
    TargetRef::pod("ar", name)
}

fn site(name: &str) -> TargetRef {
    TargetRef::site(name)
}

fn targets(list: &[(&str, TargetRef)]) -> BTreeMap<String, TargetRef> {
    list.iter()
        .map(|(r, t)| (r.to_string(), t.clone()))
        .collect()
}

fn rule(name: &str, request: &str, limit: Option<&str>) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: name.into(),
        request: request.into(),
        limit: limit.map(Into::into),
    }
}

/// (compliance, value, reason) of one evaluation.
fn eval(
    rule: &ConstraintPolicyRule,
    list: &[(&str, TargetRef)],
) -> (Compliance, Option<String>, String) {
    let o = evaluate_rule(&view(), &targets(list), rule);
    assert_eq!(o.rule, rule.name);
    (o.compliance, o.value, o.reason.unwrap_or_default())
}

#[test]
fn pairwise_latency_between_a_pod_and_the_users_of_a_site() {
    let latency = rule("latency", "3ms", Some("5ms"));
    assert_eq!(
        eval(
            &latency,
            &[("renderer", pod("r0")), ("users", site("stadium"))]
        ),
        (
            Compliance::Compliant,
            Some("2ms".into()),
            "latency 2ms between renderer (e1a) and users (stadium) meets the request 3ms".into()
        )
    );
    // metro -> edge-1 -> stadium: 3ms + 2ms.
    assert_eq!(
            eval(&latency, &[("renderer", pod("r1")), ("users", site("stadium"))]),
            (
                Compliance::Limit,
                Some("5ms".into()),
                "latency 5ms between renderer (m1) and users (stadium) is worse than the request 3ms but within the limit 5ms".into()
            )
        );
    let strict = rule("latency", "1ms", Some("4ms"));
    assert_eq!(
        eval(
            &strict,
            &[("renderer", pod("r1")), ("users", site("stadium"))]
        )
        .2,
        "latency 5ms between renderer (m1) and users (stadium) is worse than the limit 4ms"
    );
    assert_eq!(
        eval(
            &strict,
            &[("renderer", pod("r1")), ("users", site("stadium"))]
        )
        .0,
        Compliance::Violation
    );
    // Two pods of one site: intraSite (200us by default).
    assert_eq!(
        eval(&latency, &[("a", pod("r0")), ("b", pod("g0"))]).1,
        Some("200us".into())
    );
}

#[test]
fn the_worst_pair_decides_and_is_named() {
    let latency = rule("latency", "3ms", Some("5ms"));
    // r1-g0 3ms, r1-stadium 5ms, g0-stadium 2ms.
    let (c, v, reason) = eval(
        &latency,
        &[
            ("game", pod("g0")),
            ("renderer", pod("r1")),
            ("users", site("stadium")),
        ],
    );
    assert_eq!((c, v.as_deref()), (Compliance::Limit, Some("5ms")));
    assert!(reason.starts_with("latency 5ms between renderer (m1) and users (stadium)"));
}

#[test]
fn jitter_bandwidth_and_loss_along_the_path() {
    let pair = [("renderer", pod("r1")), ("users", site("stadium"))];
    let (c, v, _) = eval(&rule("jitter", "1ms", Some("2ms")), &pair);
    assert_eq!((c, v.as_deref()), (Compliance::Limit, Some("1.5ms")));
    let (c, v, reason) = eval(&rule("bandwidth", "1Gbps", Some("100Mbps")), &pair);
    assert_eq!((c, v.as_deref()), (Compliance::Compliant, Some("1Gbps")));
    assert!(reason.contains("meets the request 1Gbps"), "{reason}");
    let (c, v, _) = eval(&rule("packet-loss", "0.01%", Some("0.5%")), &pair);
    assert_eq!((c, v.as_deref()), (Compliance::Limit, Some("0.1%")));
    let (c, v, reason) = eval(&rule("packet-loss", "0.01%", None), &pair);
    assert_eq!((c, v.as_deref()), (Compliance::Violation, Some("0.1%")));
    assert!(
        reason.ends_with("does not meet the required 0.01%"),
        "{reason}"
    );
}

#[test]
fn no_path_is_a_violation_naming_the_pair_and_direction() {
    let latency = rule("latency", "3ms", Some("5ms"));
    assert_eq!(
        eval(&latency, &[("renderer", pod("r0")), ("users", site("far"))]),
        (
            Compliance::Violation,
            None,
            "latency: no path between renderer (e1a) and users (far)".into()
        )
    );
    // campus reaches edge-1 over a one-way link; nothing leads back.
    assert_eq!(
        eval(
            &latency,
            &[("renderer", pod("r0")), ("users", site("campus"))]
        )
        .2,
        "latency: no path from renderer (e1a) to users (campus)"
    );
}

#[test]
fn unplaced_missing_and_unknown_targets() {
    let latency = rule("latency", "3ms", Some("5ms"));
    let (c, _, reason) = eval(
        &latency,
        &[("a", pod("waiting")), ("users", site("stadium"))],
    );
    assert_eq!(c, Compliance::Pending);
    assert_eq!(reason, "a (Pod ar/waiting) is not placed yet");
    let (c, _, reason) = eval(&latency, &[("a", pod("gone")), ("b", pod("r0"))]);
    assert_eq!(
        (c, reason.as_str()),
        (Compliance::Pending, "a (Pod ar/gone) does not exist")
    );
    let (c, _, reason) = eval(&latency, &[("a", pod("lost")), ("b", pod("waiting"))]);
    assert_eq!(
        c,
        Compliance::Error,
        "an unknown node outranks a pending target"
    );
    assert_eq!(
        reason,
        "a (Pod ar/lost) runs on node \"ghost\", which is not known"
    );
    let (c, _, reason) = eval(&latency, &[("a", pod("r0")), ("users", site("mars"))]);
    assert_eq!(c, Compliance::Error);
    assert_eq!(
        reason,
        "users: site \"mars\" is not in the network topology"
    );
    let (c, _, reason) = eval(&latency, &[("a", pod("r0"))]);
    assert_eq!(c, Compliance::Error);
    assert!(reason.contains("between two targets"), "{reason}");
}

#[test]
fn rules_without_a_provider_or_with_bad_values_are_errors() {
    let (c, _, reason) = eval(&rule("gpu-temperature", "70", None), &[("a", pod("r0"))]);
    assert_eq!(
        (c, reason.as_str()),
        (Compliance::Error, "no provider for rule gpu-temperature")
    );
    let (c, _, reason) = eval(
        &rule("latency", "fast", None),
        &[("a", pod("r0")), ("b", pod("g0"))],
    );
    assert_eq!(c, Compliance::Error);
    assert!(
        reason.starts_with("request: \"fast\" is not a duration"),
        "{reason}"
    );
}

#[test]
fn cpu_and_memory_read_the_allocatable_of_the_pods_node() {
    let cpu = rule("cpu", "8", Some("4"));
    assert_eq!(
        eval(&cpu, &[("renderer", pod("r0"))]),
        (
            Compliance::Compliant,
            Some("16".into()),
            "cpu 16 on renderer (e1a) meets the request 8".into()
        )
    );
    assert_eq!(eval(&cpu, &[("renderer", pod("g0"))]).0, Compliance::Limit);
    let (c, _, reason) = eval(&cpu, &[("renderer", pod("r1"))]);
    assert_eq!(c, Compliance::Pending);
    assert!(reason.contains("reports no allocatable cpu"), "{reason}");
    let memory = rule("memory", "16Gi", Some("8Gi"));
    assert_eq!(eval(&memory, &[("r", pod("r0"))]).1, Some("64Gi".into()));
    assert_eq!(eval(&memory, &[("r", pod("g0"))]).0, Compliance::Limit);
    assert_eq!(
        eval(&rule("memory", "16Gi", None), &[("r", pod("g0"))]).0,
        Compliance::Violation
    );
    // Site targets are skipped by node rules; the pod's node decides.
    assert_eq!(
        eval(&cpu, &[("renderer", pod("r0")), ("users", site("stadium"))]).0,
        Compliance::Compliant
    );
    assert_eq!(
        eval(&cpu, &[("users", site("stadium"))]).0,
        Compliance::Error
    );
}

#[test]
fn node_labels_and_features() {
    let label = rule("node-label", "tier=edge", None);
    assert_eq!(
        eval(&label, &[("r", pod("r0"))]),
        (
            Compliance::Compliant,
            Some("tier=edge".into()),
            "node-label tier=edge on r (e1a) meets the request tier=edge".into()
        )
    );
    assert_eq!(
        eval(&label, &[("r", pod("r1"))]),
        (
            Compliance::Violation,
            Some("tier unset".into()),
            "node-label tier unset on r (m1) does not meet the required tier=edge".into()
        )
    );
    let avx = rule("node-feature", "cpu-cpuid.AVX512F", None);
    assert_eq!(eval(&avx, &[("r", pod("r0"))]).0, Compliance::Compliant);
    assert_eq!(
            eval(&avx, &[("r", pod("g0"))]),
            (
                Compliance::Violation,
                Some("cpu-cpuid.AVX512F=false".into()),
                "node-feature cpu-cpuid.AVX512F=false on r (e1b) does not meet the required cpu-cpuid.AVX512F=true".into()
            )
        );
    let without = rule("node-feature", "cpu-cpuid.AVX512F=false", None);
    assert_eq!(eval(&without, &[("r", pod("g0"))]).0, Compliance::Compliant);
    let full_key = rule(
        "node-feature",
        "feature.node.kubernetes.io/cpu-cpuid.AVX512F=TRUE",
        None,
    );
    assert_eq!(
        eval(&full_key, &[("r", pod("r0"))]).0,
        Compliance::Compliant
    );
}

#[test]
fn rule_syntax_of_node_rules() {
    let bad = |name: &str, request: &str, limit: Option<&str>| {
        check_rule(&rule(name, request, limit))
            .err()
            .map(|e| e.to_string())
    };
    assert!(
        bad("node-label", "tier", None)
            .is_some_and(|e| e.starts_with("request: \"tier\" is not a label requirement"))
    );
    assert!(bad("node-label", "=edge", None).is_some());
    assert!(bad("node-feature", "cpu cpuid", None).is_some_and(|e| e.starts_with("request: ")));
    assert!(
        bad("node-feature", "x", Some("y"))
            .is_some_and(|e| e.starts_with("limit: node-feature is met or not"))
    );
    assert_eq!(bad("node-feature", "x", Some("x")), None);
    assert_eq!(bad("my-external-rule", "anything", None), None);
}

#[test]
fn a_view_from_parts_with_placements_set_by_hand() {
    // What the planner does: one graph, then what-if placements.
    let built = view();
    let graph = built.graph().clone();
    let facts: Vec<NodeFacts> = graph
        .nodes()
        .map(|n| built.facts(n).cloned().unwrap_or_default())
        .collect();
    let mut what_if = ClusterView::from_parts(graph, facts);
    let latency = rule("latency", "3ms", Some("5ms"));
    let pair = targets(&[("renderer", pod("x")), ("users", site("stadium"))]);
    assert_eq!(
        evaluate_rule(&what_if, &pair, &latency).compliance,
        Compliance::Pending
    );
    what_if.place("ar", "x", Some("m1"));
    assert_eq!(
        evaluate_rule(&what_if, &pair, &latency).compliance,
        Compliance::Limit
    );
    what_if.place("ar", "x", Some("e1b"));
    assert_eq!(
        evaluate_rule(&what_if, &pair, &latency).compliance,
        Compliance::Compliant
    );
    assert_eq!(what_if.node_of("ar", "x"), what_if.graph().node_id("e1b"));
    what_if.place("ar", "x", None);
    assert_eq!(what_if.node_of("ar", "x"), None);
}

#[test]
fn scoring_candidate_nodes() {
    let v = view();
    let g = v.graph();
    let n = |name: &str| g.node_id(name).unwrap_or(NodeId(u32::MAX));
    let stadium = [Location::Site(
        g.site_id("stadium").unwrap_or(crate::network::SiteId(0)),
    )];
    let compile = |r: ConstraintPolicyRule| match BuiltinRule::compile(&r) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let latency = compile(rule("latency", "1ms", Some("4ms")));
    // 2ms to the stadium: a third of the way from request to limit.
    match latency.score(&v, n("e1a"), &stadium) {
        Score::Feasible(c) => assert!((c - 1.0 / 3.0).abs() < 1e-6, "{c}"),
        Score::Infeasible => panic!("e1a is feasible"),
    }
    assert_eq!(latency.score(&v, n("m1"), &stadium), Score::Infeasible);
    assert_eq!(latency.score(&v, n("e1a"), &[]), Score::Feasible(0.0));
    let far = [Location::Site(
        g.site_id("far").unwrap_or(crate::network::SiteId(0)),
    )];
    assert_eq!(latency.score(&v, n("e1a"), &far), Score::Infeasible);
    // Peers on nodes: e1a and e1b share a site.
    assert_eq!(
        latency.score(&v, n("e1a"), &[Location::Node(n("e1b"))]),
        Score::Feasible(0.0)
    );
    let cpu = compile(rule("cpu", "8", Some("4")));
    assert_eq!(cpu.score(&v, n("e1a"), &[]), Score::Feasible(0.0));
    assert_eq!(cpu.score(&v, n("e1b"), &[]), Score::Feasible(1.0));
    assert_eq!(cpu.score(&v, n("m1"), &[]), Score::Infeasible);
    assert_eq!(cpu.score(&v, NodeId(99), &[]), Score::Infeasible);
    let avx = compile(rule("node-feature", "cpu-cpuid.AVX512F", None));
    assert_eq!(avx.score(&v, n("e1a"), &[]), Score::Feasible(0.0));
    assert_eq!(avx.score(&v, n("e1b"), &[]), Score::Infeasible);
}

#[test]
fn targets_at_the_same_places_are_judged_once_per_pair_of_places() {
    // 3,000 pods on three nodes (a 3,000-target request judged every pair: 4.5 million).
    let mut view = view();
    let nodes = ["e1a", "e1b", "m1"];
    let mut list = Vec::new();
    for i in 0..3000 {
        let name = format!("p{i:04}");
        view.place("ar", &name, Some(nodes[i % 3]));
        list.push((format!("role-{i:04}"), pod(&name)));
    }
    let many: BTreeMap<String, TargetRef> = list.into_iter().collect();
    let latency = rule("latency", "1ms", Some("2ms"));
    let checks = std::cell::Cell::new(0usize);
    let outcome = evaluate_rule_until(&view, &many, &latency, &|| {
        checks.set(checks.get() + 1);
        false
    });
    let Ok(outcome) = outcome else {
        panic!("interrupted without being asked to")
    };
    // The same answer as for the first target at each node: the worst pair (m1 to edge-1,
    // 3ms) named by the first roles that are there.
    assert_eq!(outcome.compliance, Compliance::Violation);
    assert_eq!(outcome.value.as_deref(), Some("3ms"));
    assert_eq!(
        outcome.reason.as_deref(),
        Some("latency 3ms between role-0000 (e1a) and role-0002 (m1) is worse than the limit 2ms")
    );
    // One look before the pairs and one per 256 pairs: 6 pairs of places, not 4.5
    // million pairs of targets.
    assert_eq!(checks.get(), 2);
}

#[test]
fn an_interrupted_evaluation_gives_up() {
    let latency = rule("latency", "1ms", Some("2ms"));
    let two = targets(&[("a", pod("r0")), ("b", pod("r1"))]);
    assert_eq!(
        evaluate_rule_until(&view(), &two, &latency, &|| true),
        Err(Interrupted)
    );
    let cpu = rule("cpu", "2", None);
    let one = targets(&[("a", pod("r0"))]);
    assert_eq!(
        evaluate_rule_until(&view(), &one, &cpu, &|| true),
        Err(Interrupted)
    );
}

#[test]
fn pairs_of_places_keep_the_order_of_the_pairs_of_targets() {
    let (e1a, e1b) = (Location::Node(NodeId(0)), Location::Node(NodeId(1)));
    let places = [("a", e1a), ("b", e1a), ("c", e1b), ("d", e1a), ("e", e1b)];
    // (a, b) stands for the pairs within e1a, (a, c) for e1a-e1b, (c, e) within e1b.
    assert_eq!(
        super::builtin::representative_pairs(&places),
        vec![(0, 1), (0, 2), (2, 4)]
    );
}

#[test]
fn bandwidth_is_what_the_pair_gets_given_the_reservations() {
    // Three pairs of 1Gbps over stadium <-> edge-1 (1Gbps): each gets a third.
    let mut v = view();
    let g = v.graph();
    let stadium = Location::Site(g.site_id("stadium").expect("stadium"));
    let e1a = Location::Node(g.node_id("e1a").expect("e1a"));
    let demand = |from, to| crate::network::Demand {
        owner: "ar/x".into(),
        from,
        to,
        request_bps: 1e9,
        limit_bps: 1e8,
    };
    let demands: Vec<_> = (0..3)
        .flat_map(|_| [demand(e1a, stadium), demand(stadium, e1a)])
        .collect();
    let reserved = crate::network::Reservations::compute(g, &demands);
    v.set_reservations(std::sync::Arc::new(reserved));
    let pair = targets(&[("renderer", pod("r0")), ("users", site("stadium"))]);
    let o = evaluate_rule(&v, &pair, &rule("bandwidth", "1Gbps", Some("100Mbps")));
    assert_eq!(o.compliance, Compliance::Limit);
    assert_eq!(o.value.as_deref(), Some("333.3333Mbps"));
    let reason = o.reason.unwrap_or_default();
    assert!(
        reason.contains("its fair share of the link edge-1 -> stadium"),
        "{reason}"
    );
    // Below the limit it is a Violation; a pair across no shared link keeps the path's.
    let o = evaluate_rule(&v, &pair, &rule("bandwidth", "1Gbps", Some("500Mbps")));
    assert_eq!(o.compliance, Compliance::Violation);
    let local = targets(&[("a", pod("r0")), ("b", pod("g0"))]);
    let o = evaluate_rule(&v, &local, &rule("bandwidth", "1Gbps", Some("500Mbps")));
    assert_eq!(
        (o.compliance, o.value.as_deref()),
        (Compliance::Compliant, Some("10Gbps"))
    );
    // Without reservations the bottleneck decides, as before.
    let o = evaluate_rule(&view(), &pair, &rule("bandwidth", "1Gbps", Some("500Mbps")));
    assert_eq!(
        (o.compliance, o.value.as_deref()),
        (Compliance::Compliant, Some("1Gbps"))
    );
}

#[test]
fn placed_bindings_demand_their_bandwidth_both_ways() {
    let v = view();
    let placed = targets(&[("renderer", pod("r0")), ("users", site("stadium"))]);
    let waiting = targets(&[("renderer", pod("waiting")), ("users", site("stadium"))]);
    let bandwidth = rule("bandwidth", "1Gbps", Some("100Mbps"));
    let latency = rule("latency", "1ms", Some("5ms"));
    let demands = bandwidth_demands(
        &v,
        [
            BindingRules {
                owner: "ar/placed".into(),
                targets: &placed,
                rules: vec![&latency, &bandwidth],
            },
            BindingRules {
                owner: "ar/waiting".into(),
                targets: &waiting,
                rules: vec![&bandwidth],
            },
            BindingRules {
                owner: "ar/latency-only".into(),
                targets: &placed,
                rules: vec![&latency],
            },
        ],
    );
    let g = v.graph();
    let e1a = Location::Node(g.node_id("e1a").expect("e1a"));
    let stadium = Location::Site(g.site_id("stadium").expect("stadium"));
    let ends: Vec<(Location, Location, f64, f64)> = demands
        .iter()
        .map(|d| (d.from, d.to, d.request_bps, d.limit_bps))
        .collect();
    // Targets are in role order: renderer, then users.
    assert_eq!(
        ends,
        vec![(e1a, stadium, 1e9, 1e8), (stadium, e1a, 1e9, 1e8)]
    );
    assert!(demands.iter().all(|d| d.owner == "ar/placed"));
}

/// The world with `measured` as the topology's `status.measured` (a YAML flow list),
/// evaluated at `now`; measurements expire after the default 5 minutes.
fn measured_view(measured: &str, now: &str) -> ClusterView {
    let world = WORLD.replace(
        "  - {from: campus, to: edge-1, latency: 1ms, oneWay: true}\n",
        &format!(
            "  - {{from: campus, to: edge-1, latency: 1ms, oneWay: true}}\nstatus:\n  measured: {measured}\n"
        ),
    );
    let docs = parse_documents("world.yaml", &world).unwrap_or_default();
    let objects: Vec<Object> = docs.iter().filter_map(|d| decode(d).ok()).collect();
    assert_eq!(objects.len(), 9);
    let s = Snapshot::from_objects(objects);
    let now: Timestamp = now.parse().expect("a timestamp");
    match ClusterView::build(s.topology(), &s.nodes, &s.pods, now) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn measured_reason(view: &ClusterView, rule: &ConstraintPolicyRule, pod_name: &str) -> String {
    let o = evaluate_rule(
        view,
        &targets(&[("renderer", pod(pod_name)), ("users", site("stadium"))]),
        rule,
    );
    o.reason.unwrap_or_default()
}

#[test]
fn a_reason_on_a_measuring_topology_says_which_hops_are_measured_and_which_are_the_specs() {
    let latency = rule("latency", "10ms", None);
    // metro -> edge-1 measured at 10:00 (fresh at 10:01); edge-1 -> stadium never measured.
    let fresh = measured_view(
        "[{from: metro, to: edge-1, latency: 4ms, time: '2026-12-07T10:00:00Z'}]",
        "2026-12-07T10:01:00Z",
    );
    assert_eq!(
        measured_reason(&fresh, &latency, "r1"),
        "latency 6ms between renderer (m1) and users (stadium) meets the request 10ms; \
         measured metro -> edge-1 at 2026-12-07T10:00:00Z; \
         spec for edge-1 -> stadium (not measured)"
    );
    // The same measurement at 10:06 is past the 5m maximum age: the spec's 3ms again.
    let stale = measured_view(
        "[{from: metro, to: edge-1, latency: 4ms, time: '2026-12-07T10:00:00Z'}]",
        "2026-12-07T10:06:00Z",
    );
    assert_eq!(
        measured_reason(&stale, &latency, "r1"),
        "latency 5ms between renderer (m1) and users (stadium) meets the request 10ms; \
         spec for metro -> edge-1 (measurement stale since 2026-12-07T10:05:00Z), \
         edge-1 -> stadium (not measured)"
    );
    // A measurement that carries no jitter leaves the jitter the spec's on that hop.
    let jitter = rule("jitter", "10ms", None);
    assert_eq!(
        measured_reason(&fresh, &jitter, "r1"),
        "jitter 1.5ms between renderer (m1) and users (stadium) meets the request 10ms; \
         spec for metro -> edge-1 (not measured), edge-1 -> stadium (not measured)"
    );
}

#[test]
fn a_reason_names_the_newest_stale_measurement_and_none_for_one_site() {
    let latency = rule("latency", "10ms", None);
    // Two stale measurements of edge-1 - stadium (both ways): the newer one is named.
    let view = measured_view(
        "[{from: stadium, to: edge-1, latency: 9ms, time: '2026-12-07T09:00:00Z'}, \
          {from: edge-1, to: stadium, latency: 8ms, time: '2026-12-07T09:30:00Z'}]",
        "2026-12-07T10:00:00Z",
    );
    assert_eq!(
        measured_reason(&view, &latency, "r0"),
        "latency 2ms between renderer (e1a) and users (stadium) meets the request 10ms; \
         spec for edge-1 -> stadium (measurement stale since 2026-12-07T09:35:00Z)"
    );
    // Within one site there is no hop to name.
    let o = evaluate_rule(
        &view,
        &targets(&[("renderer", pod("r0")), ("users", site("edge-1"))]),
        &latency,
    );
    assert_eq!(
        o.reason.unwrap_or_default(),
        "latency 200us between renderer (e1a) and users (edge-1) meets the request 10ms"
    );
}

#[test]
fn a_topology_without_measurement_keeps_its_reasons_as_they_were() {
    // No status.measured at all: every figure is the spec's, and the reason says nothing.
    let latency = rule("latency", "10ms", None);
    assert_eq!(
        measured_reason(&view(), &latency, "r1"),
        "latency 5ms between renderer (m1) and users (stadium) meets the request 10ms"
    );
}
