//! The bound on plan quality (`planner::bound`): exact values on hand-made instances, and
//! never beaten by a proven optimum on generated ones.

use super::bound::{self, Bound};
use super::instances::{self, Instance};
use super::tests::{binding, cases, link, node, pod, pod_ref, run, site_ref, topology};
use super::*;

const ZONE: &str = "topology.kubernetes.io/zone";

fn bound_of(inst: &Instance) -> Bound {
    let input = inst.input();
    bound::compute(&compile::Problem::build(&input))
}

fn pinned(name: &str, zone: &str) -> PendingPod {
    let mut p = pod(name, 1);
    p.node_selector.insert(ZONE.into(), zone.into());
    p
}

/// `far` may only run on edge-2, 6ms from the users where its rule allows 3ms: no plan
/// places it; `near` is Compliant on edge-1.
#[test]
fn a_pod_in_violation_wherever_it_may_run_is_out_of_the_bound() {
    let inst = instances::build(
        topology(
            &["stadium"],
            vec![
                link("stadium", "edge-1", "1ms"),
                link("edge-1", "edge-2", "5ms"),
            ],
        ),
        vec![node("e1", "edge-1", 4), node("e2", "edge-2", 4)],
        vec![],
        vec![pod("near", 1), pinned("far", "edge-2")],
        vec![
            binding(
                "near-users",
                &[("front", pod_ref("near")), ("users", site_ref("stadium"))],
                &[("latency", "1ms", "3ms")],
            ),
            binding(
                "far-users",
                &[("front", pod_ref("far")), ("users", site_ref("stadium"))],
                &[("latency", "1ms", "3ms")],
            ),
        ],
    );
    assert_eq!(
        bound_of(&inst),
        Bound {
            placed: 1,
            limit: 0,
            groups: 2,
            exact_groups: 2,
            regions: 0
        }
    );
    let plan = run(&inst, Strategy::Greedy);
    assert_eq!(plan.summary.placed, 1);
    assert_eq!(plan.summary.bound, Some(bound_of(&inst)));
    assert_eq!(plan.summary.gap(), Some(0));
}

/// Each group is bounded alone with the whole cluster's room: both pods could have edge-1's
/// one free cpu, so the bound says 2 placed and no Limit, while any plan puts one of them
/// on edge-2 (2ms, in Limit). The bound is a bound, not the optimum.
#[test]
fn each_group_is_bounded_with_the_whole_clusters_room() {
    let inst = instances::build(
        topology(
            &["stadium"],
            vec![
                link("stadium", "edge-1", "1ms"),
                link("stadium", "edge-2", "2ms"),
            ],
        ),
        vec![node("e1", "edge-1", 1), node("e2", "edge-2", 4)],
        vec![],
        vec![pod("a", 1), pod("b", 1)],
        vec![
            binding(
                "a-users",
                &[("front", pod_ref("a")), ("users", site_ref("stadium"))],
                &[("latency", "1ms", "3ms")],
            ),
            binding(
                "b-users",
                &[("front", pod_ref("b")), ("users", site_ref("stadium"))],
                &[("latency", "1ms", "3ms")],
            ),
        ],
    );
    assert_eq!(
        bound_of(&inst),
        Bound {
            placed: 2,
            limit: 0,
            groups: 2,
            exact_groups: 2,
            regions: 0
        }
    );
    let plan = run(&inst, Strategy::Optimal);
    assert_eq!((plan.summary.placed, plan.summary.rules_limit), (2, 1));
    assert!(plan.summary.optimal);
    assert_eq!(plan.summary.bound, None, "a proven optimum needs no bound");
}

/// Both pods may only run on edge-1 (edge-2 is 5ms from the users, beyond the 3ms
/// limit), whose one node has one cpu free: each group alone could have it, but the region
/// holds one of them at most, so the bound is 1 pod, and the plan reaches it.
#[test]
fn pods_that_can_only_run_in_one_region_share_its_capacity() {
    let inst = instances::build(
        topology(
            &["stadium"],
            vec![
                link("stadium", "edge-1", "1ms"),
                link("stadium", "edge-2", "5ms"),
            ],
        ),
        vec![node("e1", "edge-1", 1), node("e2", "edge-2", 4)],
        vec![],
        vec![pod("a", 1), pod("b", 1), pod("c", 1)],
        vec![
            binding(
                "a-users",
                &[("front", pod_ref("a")), ("users", site_ref("stadium"))],
                &[("latency", "1ms", "3ms")],
            ),
            binding(
                "b-users",
                &[("front", pod_ref("b")), ("users", site_ref("stadium"))],
                &[("latency", "1ms", "3ms")],
            ),
        ],
    );
    // c has no rule: it runs anywhere and is not in the region.
    assert_eq!(
        bound_of(&inst),
        Bound {
            placed: 2,
            limit: 0,
            groups: 3,
            exact_groups: 3,
            regions: 1
        }
    );
    let plan = run(&inst, Strategy::Greedy);
    assert_eq!(plan.summary.placed, 2);
    assert_eq!(plan.summary.gap(), Some(0));
}

/// Two pods pinned 5ms apart with a rule of 1ms..6ms: placing both puts it in Limit; a pod
/// larger than every node is out.
#[test]
fn a_pair_that_must_be_apart_counts_a_limit_and_a_pod_too_large_counts_out() {
    let inst = instances::build(
        topology(
            &["stadium"],
            vec![
                link("stadium", "edge-1", "1ms"),
                link("edge-1", "edge-2", "5ms"),
            ],
        ),
        vec![node("e1", "edge-1", 4), node("e2", "edge-2", 4)],
        vec![],
        vec![
            pinned("a", "edge-1"),
            pinned("b", "edge-2"),
            pod("huge", 100),
        ],
        vec![binding(
            "a-b",
            &[("a", pod_ref("a")), ("b", pod_ref("b"))],
            &[("latency", "1ms", "6ms")],
        )],
    );
    assert_eq!(
        bound_of(&inst),
        Bound {
            placed: 2,
            limit: 1,
            groups: 2,
            exact_groups: 2,
            regions: 0
        }
    );
}

/// On generated small instances solved to proven optimality, the optimum never places
/// more pods than the bound, and when it places as many it has at least the bound's Limits.
#[test]
fn no_proven_optimum_beats_the_bound() {
    let mut checked = 0;
    for seed in 0..u64::from(cases() / 3) {
        let inst = instances::small(seed);
        let plan = run(&inst, Strategy::Optimal);
        if !plan.summary.optimal {
            continue;
        }
        checked += 1;
        let b = bound_of(&inst);
        assert_eq!(b.exact_groups, b.groups, "seed {seed}");
        assert!(b.placed >= plan.summary.placed, "seed {seed}: {b:?}");
        if b.placed == plan.summary.placed {
            assert!(
                b.limit <= plan.summary.rules_limit,
                "seed {seed}: {b:?} vs {} Limit",
                plan.summary.rules_limit
            );
        }
    }
    assert!(checked > 0);
}
