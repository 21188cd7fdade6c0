//! The hub planner on a small map: users at `stadium`; edge clusters at `ee` (1 ms from
//! the stadium) and `ew` (3 ms); a metro cluster 4 ms behind each edge; a region cluster
//! 10 ms behind the metro. The stadium carries no transit traffic, so the two edges are
//! 8 ms apart through the metro.

use std::collections::BTreeMap;

use edgeplane_api::multicluster::{MecApplication, MemberCluster};
use edgeplane_api::{Compliance, ConstraintPolicy, ConstraintPolicyRule, NetworkTopology};
use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::placement::TaintEffect;

fn topology() -> NetworkTopology {
    serde_json::from_value(json!({
        "apiVersion": "network.edgeplane.io/v1alpha1",
        "kind": "NetworkTopology",
        "metadata": {"name": "default"},
        "spec": {
            "sites": [{"name": "stadium", "transit": false}, {"name": "ee"}, {"name": "ew"},
                      {"name": "metro"}, {"name": "region"}],
            "links": [
                {"from": "stadium", "to": "ee", "latency": "1ms"},
                {"from": "stadium", "to": "ew", "latency": "3ms"},
                {"from": "ee", "to": "metro", "latency": "4ms"},
                {"from": "ew", "to": "metro", "latency": "4ms"},
                {"from": "metro", "to": "region", "latency": "10ms"}
            ]
        }
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn cluster(name: &str, site: &str, cpu: i64) -> Cluster {
    Cluster {
        name: name.into(),
        site: site.into(),
        labels: BTreeMap::new(),
        taints: Vec::new(),
        ready: true,
        free: Resources {
            cpu_millis: cpu * 1000,
            memory_bytes: 1 << 40,
            pods: 110,
            extended: BTreeMap::new(),
        },
    }
}

fn clusters() -> Vec<Cluster> {
    vec![
        cluster("edge-east", "ee", 4),
        cluster("edge-west", "ew", 8),
        cluster("metro-1", "metro", 64),
        cluster("region-1", "region", 256),
    ]
}

fn component(name: &str, replicas: u32, cpu: i64) -> Component {
    Component {
        name: name.into(),
        replicas,
        requests: Resources::pod(cpu * 1000, 1 << 20),
        tolerations: Vec::new(),
        min_clusters: 1,
        max_clusters: replicas.max(1),
    }
}

fn latency(request: &str, limit: &str) -> ConstraintPolicyRule {
    ConstraintPolicyRule {
        name: "latency".into(),
        request: request.into(),
        limit: Some(limit.into()),
    }
}

fn constraint(policy: &str, targets: &[Target], rule: ConstraintPolicyRule) -> Constraint {
    Constraint {
        policy: policy.into(),
        targets: targets.to_vec(),
        rules: vec![rule],
    }
}

fn comp(name: &str) -> Target {
    Target::Component(name.into())
}

fn site(name: &str) -> Target {
    Target::Site(name.into())
}

fn app(name: &str, components: Vec<Component>, constraints: Vec<Constraint>) -> Application {
    Application {
        namespace: "ar".into(),
        name: name.into(),
        components,
        constraints,
        prescribed: None,
    }
}

fn run_with(clusters: Vec<Cluster>, apps: Vec<Application>, options: HubOptions) -> HubPlan {
    let topology = topology();
    let view = objects::view(Some(&topology), &clusters, Timestamp::UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{e}"));
    plan(
        &HubInput {
            view: &view,
            clusters,
            applications: apps,
        },
        &options,
    )
}

fn run(clusters: Vec<Cluster>, apps: Vec<Application>) -> HubPlan {
    run_with(clusters, apps, HubOptions::default())
}

fn shares(plan: &AppPlan, component: &str) -> Vec<(String, u32)> {
    plan.shares_of(component)
        .into_iter()
        .map(|(c, n)| (c.to_string(), n))
        .collect()
}

fn pairs(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(c, n)| (c.to_string(), *n)).collect()
}

#[test]
fn replicas_fill_the_nearest_cluster_then_the_next_nearest() {
    let plan = run(
        clusters(),
        vec![app(
            "game",
            vec![component("render", 6, 1)],
            vec![constraint(
                "near-fans",
                &[comp("render"), site("stadium")],
                latency("2ms", "5ms"),
            )],
        )],
    );
    let game = &plan.applications[0];
    // edge-east has room for 4; edge-west (3 ms: Limit) takes the rest, not metro (5 ms).
    assert_eq!(
        shares(game, "render"),
        pairs(&[("edge-east", 4), ("edge-west", 2)])
    );
    assert!(game.unplaced.is_empty());
    assert_eq!(game.rules.len(), 1);
    assert_eq!(game.rules[0].compliance, Compliance::Limit);
    assert_eq!(game.rules[0].value.as_deref(), Some("3ms"));
    assert_eq!(
        game.rule_counts(),
        RuleCounts {
            limit: 1,
            ..Default::default()
        }
    );
}

#[test]
fn max_clusters_caps_the_split_and_leaves_the_rest_unplaced_with_the_reason() {
    let mut render = component("render", 10, 1);
    render.max_clusters = 1;
    let plan = run(
        clusters(),
        vec![app(
            "game",
            vec![render],
            vec![constraint(
                "near-fans",
                &[comp("render"), site("stadium")],
                latency("2ms", "3ms"),
            )],
        )],
    );
    let game = &plan.applications[0];
    // One cluster only: edge-west (Limit) holds more of them than edge-east, and more
    // replicas placed comes before fewer rules in Limit.
    assert_eq!(shares(game, "render"), pairs(&[("edge-west", 8)]));
    assert_eq!(
        game.unplaced.get("render"),
        Some(&Unplaced {
            replicas: 2,
            reason:
                "only 8 of 10 replicas fit on the clusters it may use (1 cluster, maxClusters 1)"
                    .into()
        })
    );
    assert_eq!(game.rules[0].compliance, Compliance::Limit);
}

#[test]
fn min_clusters_puts_one_replica_on_each_then_fills_the_best() {
    let mut render = component("render", 4, 1);
    render.min_clusters = 2;
    render.max_clusters = 2;
    let plan = run(
        clusters(),
        vec![app(
            "game",
            vec![render],
            vec![constraint(
                "near-fans",
                &[comp("render"), site("stadium")],
                latency("2ms", "5ms"),
            )],
        )],
    );
    assert_eq!(
        shares(&plan.applications[0], "render"),
        pairs(&[("edge-east", 3), ("edge-west", 1)])
    );
}

#[test]
fn min_clusters_that_the_constraints_cannot_give_leaves_the_component_unplaced() {
    let mut render = component("render", 4, 1);
    render.min_clusters = 3;
    let plan = run(
        clusters(),
        vec![app(
            "game",
            vec![render],
            vec![constraint(
                "near-fans",
                &[comp("render"), site("stadium")],
                latency("4ms", "4ms"),
            )],
        )],
    );
    let game = &plan.applications[0];
    assert!(game.placement.is_empty());
    assert_eq!(
        game.unplaced.get("render"),
        Some(&Unplaced {
            replicas: 4,
            reason:
                "spread: only 2 clusters can take it without a rule in Violation (minClusters 3)"
                    .into()
        })
    );
    assert_eq!(game.rule_counts().pending, 1);
}

#[test]
fn a_peer_goes_into_the_same_cluster_when_it_fits_and_to_the_nearest_one_otherwise() {
    let apps = || {
        vec![app(
            "game",
            vec![component("render", 2, 1), component("state", 1, 2)],
            vec![
                constraint(
                    "near-fans",
                    &[comp("render"), site("stadium")],
                    latency("2ms", "2ms"),
                ),
                constraint(
                    "near-state",
                    &[comp("render"), comp("state")],
                    latency("1ms", "5ms"),
                ),
            ],
        )]
    };
    let plan = run(clusters(), apps());
    let game = &plan.applications[0];
    assert_eq!(shares(game, "render"), pairs(&[("edge-east", 2)]));
    assert_eq!(shares(game, "state"), pairs(&[("edge-east", 1)]));
    // Inside one cluster the topology's intraSite (200us) holds.
    assert_eq!(game.rules[1].value.as_deref(), Some("200us"));
    assert_eq!(game.rule_counts().compliant, 2);

    // With room for the renderers only, state goes to the metro (4 ms: Limit), not to
    // edge-west (8 ms: Violation).
    let mut tight = clusters();
    tight[0].free.cpu_millis = 3000;
    let plan = run(tight, apps());
    let game = &plan.applications[0];
    assert_eq!(shares(game, "render"), pairs(&[("edge-east", 2)]));
    assert_eq!(shares(game, "state"), pairs(&[("metro-1", 1)]));
    assert_eq!(game.rules[1].compliance, Compliance::Limit);
    assert_eq!(game.rules[1].value.as_deref(), Some("4ms"));
}

#[test]
fn another_first_cluster_is_tried_when_the_best_leaves_a_peer_nowhere() {
    // edge-east is the better place for render (1 ms to the users against 3 ms), but
    // state needs the GPU only edge-west has, and must be within 1 ms of render.
    let mut list = clusters();
    list[1].free.extended.insert("nvidia.com/gpu".into(), 1);
    let mut state = component("state", 1, 1);
    state.requests.extended.insert("nvidia.com/gpu".into(), 1);
    let apps = || {
        vec![app(
            "game",
            vec![component("render", 1, 1), state.clone()],
            vec![
                constraint(
                    "near-fans",
                    &[comp("render"), site("stadium")],
                    latency("2ms", "5ms"),
                ),
                constraint(
                    "near-state",
                    &[comp("render"), comp("state")],
                    latency("1ms", "1ms"),
                ),
            ],
        )]
    };
    let greedy = run_with(list.clone(), apps(), HubOptions { alternatives: 0 });
    let game = &greedy.applications[0];
    assert_eq!(shares(game, "render"), pairs(&[("edge-east", 1)]));
    assert_eq!(
        game.unplaced.get("state").map(|u| u.reason.as_str()),
        Some(
            "every cluster with room puts policy near-state rule latency in Violation (for example on edge-west: latency 8ms does not meet the required 1ms (edge-west to edge-east))"
        )
    );

    let plan = run(list, apps());
    let game = &plan.applications[0];
    assert_eq!(shares(game, "render"), pairs(&[("edge-west", 1)]));
    assert_eq!(shares(game, "state"), pairs(&[("edge-west", 1)]));
    assert!(game.holds());
}

#[test]
fn later_applications_plan_around_the_capacity_earlier_ones_took() {
    let near = || {
        vec![constraint(
            "near-fans",
            &[comp("render"), site("stadium")],
            latency("2ms", "5ms"),
        )]
    };
    let plan = run(
        clusters(),
        vec![
            app("first", vec![component("render", 1, 3)], near()),
            app("second", vec![component("render", 1, 3)], near()),
        ],
    );
    assert_eq!(
        shares(&plan.applications[0], "render"),
        pairs(&[("edge-east", 1)])
    );
    assert_eq!(
        shares(&plan.applications[1], "render"),
        pairs(&[("edge-west", 1)])
    );
}

#[test]
fn unplaced_reasons_name_what_is_missing() {
    let mut list = clusters();
    let plan = run(
        list.clone(),
        vec![app("huge", vec![component("render", 1, 500)], Vec::new())],
    );
    assert_eq!(
        plan.applications[0].unplaced["render"].reason,
        "no cluster has 500 cpu free for one replica (largest free: 256 on region-1)"
    );

    for c in &mut list {
        c.taints.push(Taint {
            key: "dedicated".into(),
            value: "tenant-a".into(),
            effect: TaintEffect::NoSchedule,
        });
    }
    list[3].ready = false;
    let plan = run(
        list.clone(),
        vec![app("tainted", vec![component("render", 1, 1)], Vec::new())],
    );
    assert_eq!(
        plan.applications[0].unplaced["render"].reason,
        "every Ready cluster has a taint it does not tolerate (for example dedicated=tenant-a:NoSchedule on edge-east)"
    );

    for c in &mut list {
        c.ready = false;
    }
    let plan = run(
        list,
        vec![app("nowhere", vec![component("render", 1, 1)], Vec::new())],
    );
    assert_eq!(
        plan.applications[0].unplaced["render"].reason,
        "no member cluster is Ready"
    );
}

#[test]
fn a_prescribed_placement_is_judged_as_given() {
    let mut game = app(
        "game",
        vec![component("render", 3, 1)],
        vec![constraint(
            "near-fans",
            &[comp("render"), site("stadium")],
            latency("2ms", "5ms"),
        )],
    );
    game.prescribed = Some(BTreeMap::from([
        (
            "edge-east".to_string(),
            BTreeMap::from([("render".to_string(), 1)]),
        ),
        (
            "region-1".to_string(),
            BTreeMap::from([("render".to_string(), 1)]),
        ),
    ]));
    let plan = run(clusters(), vec![game]);
    let game = &plan.applications[0];
    assert_eq!(
        shares(game, "render"),
        pairs(&[("edge-east", 1), ("region-1", 1)])
    );
    assert_eq!(game.rules[0].compliance, Compliance::Violation);
    assert_eq!(game.rules[0].value.as_deref(), Some("15ms"));
    assert_eq!(
        game.unplaced["render"],
        Unplaced {
            replicas: 1,
            reason: "the prescribed placement gives 2 of 3 replicas".into()
        }
    );
    assert!(!game.holds());
}

#[test]
fn node_rules_read_the_cluster_labels() {
    let mut list = clusters();
    list[1].labels.insert("tier".into(), "edge".into());
    let plan = run(
        list,
        vec![app(
            "game",
            vec![component("render", 1, 1)],
            vec![constraint(
                "on-edge",
                &[comp("render")],
                ConstraintPolicyRule {
                    name: "node-label".into(),
                    request: "tier=edge".into(),
                    limit: None,
                },
            )],
        )],
    );
    assert_eq!(
        shares(&plan.applications[0], "render"),
        pairs(&[("edge-west", 1)])
    );
    assert_eq!(
        plan.applications[0].rules[0].compliance,
        Compliance::Compliant
    );
}

// ---------------------------------------------------------------------------------------
// From objects
// ---------------------------------------------------------------------------------------

fn member(name: &str, site: &str, cpu: &str, ready: bool) -> MemberCluster {
    serde_json::from_value(json!({
        "apiVersion": "multicluster.edgeplane.io/v1alpha1",
        "kind": "MemberCluster",
        "metadata": {"name": name},
        "spec": {"site": site},
        "status": {
            "capacity": {"allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
                         "requested": {"cpu": "1", "memory": "4Gi", "pods": "10"}},
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "Probed", "message": ""}]
        }
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn mecapp(spec: serde_json::Value) -> MecApplication {
    serde_json::from_value(json!({
        "apiVersion": "multicluster.edgeplane.io/v1alpha1",
        "kind": "MecApplication",
        "metadata": {"name": "ar-game", "namespace": "ar"},
        "spec": spec
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn deployment(name: &str, cpu: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "x",
                                  "resources": {"requests": {"cpu": cpu}}}]}}}
    })
}

fn policy(name: &str, rules: serde_json::Value) -> ConstraintPolicy {
    serde_json::from_value(json!({
        "apiVersion": "constraint.edgeplane.io/v1alpha1", "kind": "ConstraintPolicy",
        "metadata": {"name": name, "namespace": "ar"},
        "spec": {"rules": rules}
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn objects_become_the_planner_input_and_are_planned() {
    let topology = topology();
    let members = vec![
        member("edge-east", "ee", "4", true),
        member("edge-west", "ew", "8", true),
        member("metro-1", "metro", "64", false),
    ];
    let apps = vec![mecapp(json!({
        "resources": [deployment("ar-render", "1")],
        "components": [{"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"},
                        "replicas": 5, "spread": {"maxClusters": 2}}],
        "constraints": [{"policy": "near-fans", "targets": [{"component": "render"}, {"site": "stadium"}]}]
    }))];
    let policies = vec![policy(
        "near-fans",
        json!([{"name": "latency", "request": "2ms", "limit": "5ms"}]),
    )];
    let built = build_input(
        &HubObjects {
            topology: Some(&topology),
            clusters: &members,
            applications: &apps,
            policies: &policies,
        },
        Timestamp::UNIX_EPOCH,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    // Allocatable 4 cpu less 1 requested.
    assert_eq!(built.clusters[0].free.cpu_millis, 3000);
    assert_eq!(built.clusters[0].free.pods, 100);
    assert!(!built.clusters[2].ready);
    assert_eq!(built.applications[0].components[0].max_clusters, 2);
    let plan = plan(
        &HubInput {
            view: &built.view,
            clusters: built.clusters,
            applications: built.applications,
        },
        &HubOptions::default(),
    );
    assert_eq!(
        shares(&plan.applications[0], "render"),
        pairs(&[("edge-east", 3), ("edge-west", 2)])
    );
}

#[test]
fn bad_objects_are_reported_with_object_and_field() {
    let topology = topology();
    let mut bad_quantity = member("edge-east", "ee", "four", true);
    bad_quantity.metadata.labels = None;
    let members = vec![bad_quantity, member("lost", "atlantis", "4", true)];
    let apps = vec![mecapp(json!({
        "resources": [deployment("ar-render", "1")],
        "components": [
            {"name": "render", "workload": {"kind": "Deployment", "name": "ar-render"}, "replicas": 2,
             "spread": {"minClusters": 3}},
            {"name": "state", "workload": {"kind": "StatefulSet", "name": "game-state"}, "replicas": 1}
        ],
        "constraints": [
            {"policy": "near-fans", "targets": [{"component": "render"}, {"site": "moon"}]},
            {"policy": "missing", "targets": [{"component": "render"}]},
            {"policy": "external", "targets": [{"component": "ghost"}, {"site": "stadium"}]}
        ]
    }))];
    let policies = vec![
        policy("near-fans", json!([{"name": "latency", "request": "2ms"}])),
        policy(
            "external",
            json!([{"name": "gpu-temperature", "request": "60"}]),
        ),
    ];
    let errors = build_input(
        &HubObjects {
            topology: Some(&topology),
            clusters: &members,
            applications: &apps,
            policies: &policies,
        },
        Timestamp::UNIX_EPOCH,
    )
    .err()
    .unwrap_or_default();
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "MemberCluster edge-east: status.capacity.allocatable[\"cpu\"]: \"four\" is not a non-negative quantity",
            "MemberCluster lost: spec.site: site \"atlantis\" is not a site of the hub's NetworkTopology (declare it in spec.sites or link it)",
            "MecApplication ar/ar-game: spec.components[0].spread.minClusters: 3 is more than maxClusters 2",
            "MecApplication ar/ar-game: spec.components[1].workload: no StatefulSet \"game-state\" among spec.resources",
            "MecApplication ar/ar-game: spec.constraints[0].targets[1].site: site \"moon\" is not a site of the hub's NetworkTopology",
            "MecApplication ar/ar-game: spec.constraints[1].policy: no ConstraintPolicy ar/missing",
            "MecApplication ar/ar-game: spec.constraints[2].policy: ConstraintPolicy ar/external spec.rules[0].name: the hub judges built-in rules only, not \"gpu-temperature\"",
            "MecApplication ar/ar-game: spec.constraints[2].targets[0].component: no component \"ghost\" in spec.components",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Invariants on generated instances
// ---------------------------------------------------------------------------------------

/// On seeded instances: no rule in Violation, every component within its spread and with
/// no more replicas than asked, no cluster given more than it had free, and every
/// component short of replicas says why.
#[test]
fn plans_of_generated_instances_keep_every_promise() {
    let size = instances::Size {
        clusters: 200,
        user_sites: 6,
        applications: 400,
    };
    for seed in 1..=5 {
        let instance = instances::generate(size, seed).unwrap_or_else(|e| panic!("{e}"));
        let view = objects::view(
            Some(&instance.topology),
            &instance.clusters,
            Timestamp::UNIX_EPOCH,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let input = HubInput {
            view: &view,
            clusters: instance.clusters.clone(),
            applications: instance.applications.clone(),
        };
        let plan = plan(&input, &HubOptions::default());
        let mut used: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
        let mut placed_total = 0u64;
        for (app, planned) in instance.applications.iter().zip(&plan.applications) {
            assert_eq!(
                planned.rule_counts().violation,
                0,
                "seed {seed} {}",
                app.name
            );
            for component in &app.components {
                let shares = planned.shares_of(&component.name);
                let placed: u32 = shares.iter().map(|(_, n)| n).sum();
                placed_total += u64::from(placed);
                assert!(placed <= component.replicas);
                if placed > 0 {
                    assert!(
                        (component.min_clusters as usize..=component.max_clusters as usize)
                            .contains(&shares.len()),
                        "seed {seed} {}/{}: {} clusters",
                        app.name,
                        component.name,
                        shares.len()
                    );
                }
                match planned.unplaced.get(&component.name) {
                    Some(u) => {
                        assert_eq!(u.replicas, component.replicas - placed);
                        assert!(!u.reason.is_empty() && u.reason != "not placed");
                    }
                    None => assert_eq!(placed, component.replicas),
                }
                for (cluster, n) in shares {
                    let slot = used.entry(cluster).or_default();
                    let n = i64::from(n);
                    slot.0 += component.requests.cpu_millis * n;
                    slot.1 += component.requests.memory_bytes * n;
                    slot.2 += component.requests.pods * n;
                }
            }
        }
        for cluster in &instance.clusters {
            let (cpu, memory, pods) = used.get(cluster.name.as_str()).copied().unwrap_or_default();
            assert!(
                cpu <= cluster.free.cpu_millis
                    && memory <= cluster.free.memory_bytes
                    && pods <= cluster.free.pods,
                "seed {seed}: {} overcommitted",
                cluster.name
            );
        }
        assert!(placed_total > 0);
    }
}
