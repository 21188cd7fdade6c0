//! Room for replacements (issue 17, item 4): evictions promise no room twice, in one cycle
//! or across cycles while earlier replacements still wait at the gate.

use super::*;

/// Three renderers in Violation, each the one pod of its binding, each restored by a move
/// to e2, which has room for two (8 cpu, 4 used). Limits out of the way.
fn three_renderers_two_places() -> World {
    let mut w = World::new(ViolationPolicy::Evict)
        .pod(pod("a", -600, owned()))
        .pod(pod("b", -600, owned()))
        .pod(pod("c", -600, owned()))
        .binding(binding("x", "o", Some(0), &["a"]))
        .binding(binding("y", "o", Some(1), &["b"]))
        .binding(binding("z", "o", Some(2), &["c"]))
        .restores("a", "e2", 0, 0.0)
        .restores("b", "e2", 0, 0.0)
        .restores("c", "e2", 0, 0.0)
        .room(room("e2", 8, 4));
    w.limits = Limits {
        per_cycle: 5,
        per_namespace: 5,
        per_offer: 5,
        min_pod_age: Duration::ZERO,
    };
    w
}

const NO_ROOM: &str = "not evicting: the replacement would have nowhere to run, so the pod stays where it is: ar/c: no room for its replacement on e2: it needs 2 cpu and the node has 8 allocatable, 4 requested by the pods on it and 4 held for ";

fn skip_note(actions: &[Action], binding: &str) -> String {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Skip { binding: b, reason } if b.name == binding => Some(reason.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no skip for {binding}: {actions:?}"))
}

#[test]
fn one_cycle_evicts_only_as_many_as_there_is_room_for() {
    let w = three_renderers_two_places();
    let (actions, asked) = w.decide(100);
    assert_eq!(
        evicted(&actions),
        [
            ("x".into(), vec!["a".to_string()]),
            ("y".into(), vec!["b".to_string()])
        ]
    );
    assert_eq!(skips(&actions), [("z".to_string(), "no-room")]);
    assert_eq!(
        skip_note(&actions, "z"),
        format!(
            "{NO_ROOM}the replacement of ar/a (evicted this cycle), the replacement of ar/b (evicted this cycle)"
        )
    );
    // c was asked twice: with the held room (no node), then without (e2: the room is the
    // reason).
    assert_eq!(asked, ["a", "b", "c", "c"]);
}

#[test]
fn with_room_elsewhere_the_third_goes_there() {
    // e3 restores the binding too (at Limit): the planner, seeing e2 held, picks it.
    let mut w = three_renderers_two_places();
    w.add_prediction("c", restoring("e3", 1, 0.5));
    let (actions, _) = w.decide(100);
    assert_eq!(evicted(&actions).len(), 3);
    let Some(Action::Evict { candidates, .. }) = actions.last() else {
        panic!("{actions:?}")
    };
    assert_eq!(candidates[0].prediction.node, "e3");
}

#[test]
fn replacements_waiting_at_the_gate_or_still_to_come_hold_their_room() {
    // An earlier cycle evicted a (its replacement not created yet) and b (its replacement
    // a2 waits at the gate, planned on e2): c has no room, whatever the limits.
    let mut w = three_renderers_two_places();
    w.bindings.retain(|b| b.key.name == "z");
    let expected = |node: &str, at: i64| Replacement {
        controller: "rs-uid".into(),
        node: node.into(),
        demand: Demand {
            requests: renderer_requests(),
            ..Demand::default()
        },
        evicted_at: t(at),
        evicted_created: Some(t(-600)),
    };
    w.memory
        .replacements
        .insert(PodKey::new("ar", "a"), expected("e2", 50));
    w.memory
        .replacements
        .insert(PodKey::new("ar", "b"), expected("e2", 52));
    w.capacity.waiting.push(WaitingPod {
        key: PodKey::new("ar", "b2"),
        controller: Some("rs-uid".into()),
        created: Some(t(53)),
        requests: renderer_requests(),
        planned: Some("e2".into()),
    });
    w.capacity.arrivals.push(Arrival {
        key: PodKey::new("ar", "b2"),
        controller: "rs-uid".into(),
        created: t(53),
        waiting: true,
    });
    let (actions, _) = w.decide(100);
    assert!(evicted(&actions).is_empty(), "{actions:?}");
    // The replacements of one controller are alike: the oldest eviction (a) claims the
    // oldest new pod (b2), so one room is held for b2 and one for the replacement still to
    // come, never two for one pod.
    assert_eq!(
        skip_note(&actions, "z"),
        format!(
            "{NO_ROOM}ar/b2 (waiting at the gate), the replacement of ar/b (evicted, not created yet)"
        )
    );

    // Once both replacements are placed (they hold their room on e2 as pods), nothing is
    // held for them any more: the planner itself sees e2 full, as before this change.
    w.capacity.waiting.clear();
    w.capacity.arrivals = vec![
        Arrival {
            key: PodKey::new("ar", "a2"),
            controller: "rs-uid".into(),
            created: t(51),
            waiting: false,
        },
        Arrival {
            key: PodKey::new("ar", "b2"),
            controller: "rs-uid".into(),
            created: t(53),
            waiting: false,
        },
    ];
    w = w.room(room("e2", 8, 8));
    let (actions, asked) = w.decide(100);
    assert_eq!(skips(&actions), [("z".to_string(), "no-candidate")]);
    assert_eq!(asked, ["c"]);
    // With a node of 10 cpu there is room for exactly c.
    w = w.room(room("e2", 10, 8));
    let (actions, _) = w.decide(100);
    assert_eq!(evicted(&actions), [("z".into(), vec!["c".to_string()])]);
}

#[test]
fn an_unplaceable_waiting_pod_holds_nothing() {
    let mut w = three_renderers_two_places();
    w.capacity.waiting.push(WaitingPod {
        key: PodKey::new("ar", "stuck"),
        controller: None,
        created: Some(t(0)),
        requests: renderer_requests(),
        planned: None,
    });
    assert_eq!(evicted(&w.decide(100).0).len(), 2);
    // Planned on e2, it takes one of the two places.
    w.capacity.waiting[0].planned = Some("e2".into());
    assert_eq!(evicted(&w.decide(100).0).len(), 1);
}

#[test]
fn a_bare_pod_needs_no_room_and_rules_are_the_placement_rules() {
    // A bare pod does not come back: its eviction holds nothing (the planner still has to
    // find its replacement a place to restore the binding, as before).
    let mut w = three_renderers_two_places();
    for p in w.pods.values_mut() {
        p.owner = Owner::Bare;
        p.controller = None;
    }
    assert_eq!(evicted(&w.decide(100).0).len(), 3);
    // A replacement that does not tolerate the node's taint has no place there, whatever
    // the room (the planner and the ledger read the same rules).
    let mut w = three_renderers_two_places();
    w.capacity.nodes[0].taints = vec![crate::placement::Taint {
        key: "dedicated".into(),
        value: "gpu".into(),
        effect: crate::placement::TaintEffect::NoSchedule,
    }];
    let (actions, _) = w.decide(100);
    assert!(evicted(&actions).is_empty());
    assert!(
        skip_note(&actions, "x")
            .ends_with("no room for its replacement on e2: it does not tolerate the node's taint dedicated=gpu:NoSchedule"),
        "{}",
        skip_note(&actions, "x")
    );
}

#[test]
fn dry_run_counts_the_room_as_if_evicted() {
    let mut w = three_renderers_two_places();
    w.dry_run = true;
    let (actions, _) = w.decide(100);
    assert_eq!(
        skips(&actions),
        [
            ("x".to_string(), "dry-run"),
            ("y".to_string(), "dry-run"),
            ("z".to_string(), "no-room")
        ]
    );
}

#[test]
fn the_capacity_is_read_only_when_a_binding_reaches_the_predictions() {
    // Ignore and Mediate never read it (the fake counts; decide asserts at most once).
    let w = World::new(ViolationPolicy::Ignore)
        .pod(pod("p", -600, owned()))
        .binding(binding("b", "o", Some(0), &["p"]));
    let mut input_world = FakePlanner {
        world: &w,
        asked: Vec::new(),
        capacity_reads: 0,
    };
    let input = Input {
        now: t(60),
        bindings: &w.bindings,
        offers: &w.offers,
        pods: &w.pods,
        limits: &w.limits,
        controller: false,
        dry_run: false,
        mitigation_period: Duration::from_secs(60),
        memory: &w.memory,
        migrations: &[],
    };
    let _ = decide(&input, &mut input_world);
    assert_eq!(input_world.capacity_reads, 0);
}

#[test]
fn claims_pair_replacements_with_the_pods_of_their_controller() {
    let r = |controller: &str, at: i64| Replacement {
        controller: controller.into(),
        node: "e2".into(),
        demand: Demand::default(),
        evicted_at: t(at),
        evicted_created: Some(t(0)),
    };
    let arrival = |name: &str, controller: &str, created: i64, waiting: bool| Arrival {
        key: PodKey::new("ar", name),
        controller: controller.into(),
        created: t(created),
        waiting,
    };
    let expected = BTreeMap::from([
        (PodKey::new("ar", "a"), r("rs", 100)),
        (PodKey::new("ar", "b"), r("rs", 110)),
        (PodKey::new("ar", "c"), r("rs", 120)),
        (PodKey::new("ar", "s"), r("sts", 100)),
        (PodKey::new("ar", "young"), {
            // Evicted 2s after it was created (no minimum age): it is not its own
            // replacement, although the cache may show it running a moment longer.
            let mut r = r("young-rs", 100);
            r.evicted_created = Some(t(98));
            r
        }),
    ]);
    let arrivals = [
        // Older than every eviction (beyond the clock skew): another replica.
        arrival("old", "rs", 50, false),
        arrival("b2", "rs", 111, true),
        // 3s before a's eviction: within the skew, so a's.
        arrival("a2", "rs", 97, false),
        // The StatefulSet's replacement has the evicted pod's name; the old pod is
        // terminating and not an arrival.
        arrival("s", "sts", 101, true),
        arrival("young", "young-rs", 98, false),
    ];
    let claims = claims(&expected, &arrivals);
    assert_eq!(
        claims,
        BTreeMap::from([
            (
                PodKey::new("ar", "a"),
                Claim::Placed(PodKey::new("ar", "a2"))
            ),
            (
                PodKey::new("ar", "b"),
                Claim::Waiting(PodKey::new("ar", "b2"))
            ),
            (PodKey::new("ar", "c"), Claim::ToCome),
            (
                PodKey::new("ar", "s"),
                Claim::Waiting(PodKey::new("ar", "s"))
            ),
            (PodKey::new("ar", "young"), Claim::ToCome),
        ])
    );
}

#[test]
fn replacements_are_remembered_until_placed_or_too_old() {
    let mut w = three_renderers_two_places();
    w.limits.per_offer = 1;
    let actions = w.cycle(100);
    let Some(Action::Evict { candidates, .. }) = actions.first() else {
        panic!("{actions:?}")
    };
    // The runtime remembers the replacement of the pod it evicted.
    let Some(replacement) = candidates[0].replacement(t(100)) else {
        panic!("an owned pod has a replacement")
    };
    assert_eq!(replacement.node, "e2");
    assert_eq!(replacement.controller, "rs-uid");
    w.memory
        .replacements
        .insert(candidates[0].pod.clone(), replacement);
    // Not placed yet: kept.
    w.memory.settle(Some(&Capacity::default()), t(110));
    assert_eq!(w.memory.replacements.len(), 1);
    // Placed: forgotten (its room is in the node's use now).
    let placed = Capacity {
        arrivals: vec![Arrival {
            key: PodKey::new("ar", "a2"),
            controller: "rs-uid".into(),
            created: t(101),
            waiting: false,
        }],
        ..Capacity::default()
    };
    let mut m = w.memory.clone();
    m.settle(Some(&placed), t(110));
    assert!(m.replacements.is_empty());
    // Never seen: forgotten after REPLACEMENT_TIMEOUT.
    let mut m = w.memory.clone();
    m.settle(None, t(100 + 599));
    assert_eq!(m.replacements.len(), 1);
    m.settle(None, t(100 + 600));
    assert!(m.replacements.is_empty());
    // A bare pod has no replacement.
    let mut bare = candidates[0].clone();
    bare.controller = None;
    assert_eq!(bare.replacement(t(100)), None);
}
